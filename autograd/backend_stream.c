/* vt_backend_stream in a build without CUDA: no instance has a stream. The CUDA build's
 * version is autograd/cuda/cuda_stream.cu. */
#ifndef VT_HAVE_CUDA
#include "autograd/backend.h"

void *vt_backend_stream(const vt_backend *be) {
  (void)be;
  return NULL;
}
#endif
