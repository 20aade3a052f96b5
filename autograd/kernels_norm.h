/* Kernels of the norm family (LayerNorm, RMSNorm, GroupNorm, BatchNorm1d, RoPE, dropout, weight norm, VQ): one table per device, reached
 * through vt_backend.norm. Ops in autograd/ops_norm*.c call them. */
#ifndef VT_KERNELS_NORM_H
#define VT_KERNELS_NORM_H

#include "autograd/backend.h"

struct vt_norm_kernels {
  int reserved; /* members are added with the ops that need them */
};

#endif
