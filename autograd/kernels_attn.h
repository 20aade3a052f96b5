/* Kernels of the attn family (fused flash-style attention): one table per device, reached
 * through vt_backend.attn. Ops in autograd/ops_attn*.c call them. */
#ifndef VT_KERNELS_ATTN_H
#define VT_KERNELS_ATTN_H

#include "autograd/backend.h"

struct vt_attn_kernels {
  int reserved; /* members are added with the ops that need them */
};

#endif
