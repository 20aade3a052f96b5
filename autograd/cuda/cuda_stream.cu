/* vt_backend_stream on CUDA: the instance's own stream (NULL for the CPU instance). */
#include "autograd/cuda/cuda_common.cuh"

extern "C" void *vt_backend_stream(const vt_backend *be) {
  if (!be || be->device.type != VT_DEV_CUDA || !be->impl) return NULL;
  return (void *)VT_STREAM(be);
}
