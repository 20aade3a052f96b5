/* Kernels of the optim family (optimizer updates and flat-buffer norms): one table per device, reached
 * through vt_backend.optim. Ops in autograd/ops_optim*.c call them. */
#ifndef VT_KERNELS_OPTIM_H
#define VT_KERNELS_OPTIM_H

#include "autograd/backend.h"

struct vt_optim_kernels {
  int reserved; /* members are added with the ops that need them */
};

#endif
