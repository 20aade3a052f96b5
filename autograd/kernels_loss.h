/* Kernels of the loss family (cross-entropy (chunked), CTC and the other losses): one table per device, reached
 * through vt_backend.loss. Ops in autograd/ops_loss*.c call them. */
#ifndef VT_KERNELS_LOSS_H
#define VT_KERNELS_LOSS_H

#include "autograd/backend.h"

struct vt_loss_kernels {
  int reserved; /* members are added with the ops that need them */
};

#endif
