/* CPU kernels of the norm family. */
#include "autograd/kernels_norm.h"

const struct vt_norm_kernels vt_cpu_norm_kernels = {0};
