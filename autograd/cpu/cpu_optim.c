/* CPU kernels of the optim family. */
#include "autograd/kernels_optim.h"

const struct vt_optim_kernels vt_cpu_optim_kernels = {0};
