/* Parameter registration and initialisers of the building blocks; see nn_reg.h. */
#include "model/nn_reg.h"

#include <stdarg.h>
#include <stdio.h>

void *nn_reg_fail(nn_reg *r, const char *fmt, ...) {
  if (!r->failed && r->err && r->err_len) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, r->err_len, fmt, ap);
    va_end(ap);
  }
  r->failed = true;
  return NULL;
}

const char *nn_name(nn_reg *r, char *buf, size_t len, const char *a, const char *b, const char *c) {
  const char *parts[3] = {a, b, c};
  size_t n = 0;
  buf[0] = 0;
  for (int i = 0; i < 3; i++) {
    if (!parts[i] || !parts[i][0]) continue;
    int w = snprintf(buf + n, len - n, "%s%s", n ? "." : "", parts[i]);
    if (w < 0 || (size_t)w >= len - n) {
      nn_reg_fail(r, "parameter name %s.%s.%s: longer than %zu bytes", a ? a : "", b ? b : "",
                  c ? c : "", len - 1);
      return NULL;
    }
    n += (size_t)w;
  }
  return buf;
}

vt_tensor *nn_param(nn_reg *r, const char *prefix, const char *name, const char *leaf, int ndim,
                    const int64_t *shape) {
  if (r->failed) return NULL;
  char full[256];
  if (!nn_name(r, full, sizeof full, prefix, name, leaf)) return NULL;
  char err[384];
  vt_tensor *t = vt_params_add(r->ps, full, VT_F32, ndim, shape, err, sizeof err);
  return t ? t : nn_reg_fail(r, "%s", err);
}

/* Writes values produced by gen in chunks through a host buffer (no heap). */
#define NN_CHUNK 2048
#define NN_FILL(ps, t, expr)                                                                       \
  do {                                                                                             \
    float buf_[NN_CHUNK];                                                                          \
    int64_t n_ = vt_numel(t);                                                                      \
    for (int64_t i0_ = 0; i0_ < n_; i0_ += NN_CHUNK) {                                             \
      int64_t m_ = n_ - i0_ < NN_CHUNK ? n_ - i0_ : NN_CHUNK;                                      \
      for (int64_t i_ = 0; i_ < m_; i_++) buf_[i_] = (expr);                                       \
      nn_write(ps, t, i0_, buf_, m_);                                                              \
    }                                                                                              \
  } while (0)

void nn_write(const vt_params *ps, vt_tensor *t, int64_t offset, const float *host, int64_t n) {
  vt_buf_from_host(ps->be, (float *)t->data + offset, host, sizeof(float) * (size_t)n);
}

void nn_init_normal(const vt_params *ps, vt_tensor *t, vt_rng *rng, float mean, float std) {
  if (t) NN_FILL(ps, t, mean + std * vt_rng_normal(rng));
}

void nn_init_uniform(const vt_params *ps, vt_tensor *t, vt_rng *rng, float lo, float hi) {
  if (t) NN_FILL(ps, t, lo + (hi - lo) * vt_rng_uniform(rng));
}

void nn_init_const(const vt_params *ps, vt_tensor *t, float value) {
  if (t) NN_FILL(ps, t, value);
}
