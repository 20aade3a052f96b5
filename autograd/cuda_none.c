/* Stand-ins used when the build has no CUDA toolkit: the CUDA device reports itself absent. */
#ifndef VT_HAVE_CUDA
#include "autograd/backend.h"

vt_backend *vt_backend_cuda(int device_index, const char **why) {
  (void)device_index;
  if (why) *why = "this build of vita-train has no CUDA backend (no CUDA toolkit was found)";
  return NULL;
}

int vt_cuda_device_count(void) { return 0; }
#endif
