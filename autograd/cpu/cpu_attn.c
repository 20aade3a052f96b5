/* CPU kernels of the attn family. */
#include "autograd/kernels_attn.h"

const struct vt_attn_kernels vt_cpu_attn_kernels = {0};
