/* Kernels of the conv family (conv1d, conv2d, conv-transpose1d, pixel shuffle): one table per device, reached
 * through vt_backend.conv. Ops in autograd/ops_conv*.c call them. */
#ifndef VT_KERNELS_CONV_H
#define VT_KERNELS_CONV_H

#include "autograd/backend.h"

struct vt_conv_kernels {
  int reserved; /* members are added with the ops that need them */
};

#endif
