/* CPU kernels of the loss family. */
#include "autograd/kernels_loss.h"

const struct vt_loss_kernels vt_cpu_loss_kernels = {0};
