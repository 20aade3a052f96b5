/* CPU kernels of the conv family. */
#include "autograd/kernels_conv.h"

const struct vt_conv_kernels vt_cpu_conv_kernels = {0};
