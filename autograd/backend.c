/* Device-buffer helpers over the backend vtable; see backend.h. */
#include "autograd/backend.h"

#include <stdio.h>

void *vt_buf_alloc(const vt_backend *be, size_t bytes) { return be->alloc(be, bytes); }

void *vt_buf_alloc_zeroed(const vt_backend *be, size_t bytes) {
  void *p = be->alloc(be, bytes);
  /* zero bytes are zero in every dtype; fill works in 4-byte words */
  if (p && bytes) be->fill(be, p, (int64_t)((bytes + 3) / 4), 0.0f);
  return p;
}

void vt_buf_free(const vt_backend *be, void *dev) {
  if (dev) be->free(be, dev);
}

void vt_buf_to_host(const vt_backend *be, void *host, const void *dev, size_t bytes) {
  if (bytes) be->copy(be, host, dev, bytes, VT_COPY_D2H);
}

void vt_buf_from_host(const vt_backend *be, void *dev, const void *host, size_t bytes) {
  if (bytes) be->copy(be, dev, host, bytes, VT_COPY_H2D);
}

void vt_buf_fill_f32(const vt_backend *be, float *dev, int64_t n, float value) {
  if (n > 0) be->fill(be, dev, n, value);
}

bool vt_backend_bf16_gemm(const vt_backend *be, char *buf, size_t len) {
  if (be->gemm_bf16_info) return be->gemm_bf16_info(be, buf, len);
  snprintf(buf, len, "the %s backend has no bf16 GEMM", be->name);
  return false;
}

void vt_backend_sync(const vt_backend *be) { be->synchronize(be); }

void vt_backend_free(const vt_backend *be) {
  if (be && be->release) be->release(be);
}

const char *vt_backend_family_name(vt_kernel_family f) {
  static const char *const names[VT_FAMILY_COUNT] = {"norm", "conv",  "attn",
                                                     "loss", "optim", "spectral"};
  return (unsigned)f < VT_FAMILY_COUNT ? names[f] : "unknown";
}

bool vt_backend_has_family(const vt_backend *be, vt_kernel_family f) {
  switch (f) {
  case VT_FAMILY_NORM: return be->norm != NULL;
  case VT_FAMILY_CONV: return be->conv != NULL;
  case VT_FAMILY_ATTN: return be->attn != NULL;
  case VT_FAMILY_LOSS: return be->loss != NULL;
  case VT_FAMILY_OPTIM: return be->optim != NULL;
  case VT_FAMILY_SPECTRAL: return be->spectral != NULL;
  default: return false;
  }
}
