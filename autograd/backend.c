/* Device-buffer helpers over the backend vtable; see backend.h. */
#include "autograd/backend.h"

void *vt_buf_alloc(const vt_backend *be, size_t bytes) { return be->alloc(bytes); }

void *vt_buf_alloc_zeroed(const vt_backend *be, size_t bytes) {
  void *p = be->alloc(bytes);
  /* zero bytes are zero in every dtype; fill works in 4-byte words */
  if (p && bytes) be->fill(p, (int64_t)((bytes + 3) / 4), 0.0f);
  return p;
}

void vt_buf_free(const vt_backend *be, void *dev) {
  if (dev) be->free(dev);
}

void vt_buf_to_host(const vt_backend *be, void *host, const void *dev, size_t bytes) {
  if (bytes) be->copy(host, dev, bytes, VT_COPY_D2H);
}

void vt_buf_from_host(const vt_backend *be, void *dev, const void *host, size_t bytes) {
  if (bytes) be->copy(dev, host, bytes, VT_COPY_H2D);
}

void vt_buf_fill_f32(const vt_backend *be, float *dev, int64_t n, float value) {
  if (n > 0) be->fill(dev, n, value);
}

void vt_backend_sync(const vt_backend *be) { be->synchronize(); }
