/* STFT, complex magnitude and clamped log (autograd/ops_spectral.h): checks, the kernels of
 * the spectral family (autograd/kernels_spectral.h; FFTW on the CPU) and the backward
 * wiring. */
#include "autograd/ops_spectral.h"

#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/kernels_spectral.h"

/* Whether the backend has spectral-family kernel `member`. */
#define SPECTRAL_HAS(ctx, member) ((ctx)->be->spectral && (ctx)->be->spectral->member)

/* n->i: 0 rows, 1 L, 2 frames, 3 n_fft, 4 hop; saved[0] the window or NULL */
static void stft_backward(vt_ctx *ctx, vt_node *n) {
  const struct vt_spectral_kernels *k = ctx->be->spectral;
  vt_tensor *x = n->in[0], *win = n->saved[0];
  float *dx = vt_grad(ctx, x);
  int64_t rows = n->i[0], len = n->i[1], frames = n->i[2];
  int nfft = (int)n->i[3], hop = (int)n->i[4];
  int64_t work = k->stft_work(ctx->be, rows, frames, nfft);
  float *tmp = vt_arena_data(ctx, "stft backward", sizeof(float) * (size_t)(work > 0 ? work : 1));
  if (!dx || !tmp) return;
  if (!k->stft_backward(ctx->be, rows, len, frames, nfft, hop, win ? win->data : NULL, n->out->grad,
                        dx, tmp))
    vt_ctx_fail(ctx, "stft", "the %s backend cannot transform size %d", ctx->be->name, nfft);
}

vt_tensor *vt_stft(vt_ctx *ctx, vt_tensor *x, vt_tensor *window, int n_fft, int hop) {
  const char *op = "stft";
  VT_OP_INPUTS(ctx, op, x);
  if (window) VT_OP_INPUTS(ctx, op, window);
  if (!vt_need_kernels(ctx, op, VT_FAMILY_SPECTRAL,
                       SPECTRAL_HAS(ctx, stft) && SPECTRAL_HAS(ctx, stft_backward) &&
                           SPECTRAL_HAS(ctx, stft_work)) ||
      !vt_check_dtype(ctx, op, x, VT_F32) || (window && !vt_check_dtype(ctx, op, window, VT_F32)))
    return &ctx->err_tensor;
  char s[96];
  if (n_fft < 2 || n_fft % 2 || hop < 1 || x->ndim < 1 || x->ndim >= VT_MAX_DIMS - 1 ||
      x->shape[x->ndim - 1] < n_fft)
    return vt_ctx_fail(ctx, op, "input %s: need [..., L] with L >= n_fft %d (even) and hop %d >= 1",
                       vt_shape_str(x, s, sizeof s), n_fft, hop);
  if (window && (window->ndim != 1 || window->shape[0] != n_fft))
    return vt_ctx_fail(ctx, op, "window %s must be [%d]", vt_shape_str(window, s, sizeof s), n_fft);
  const struct vt_spectral_kernels *k = ctx->be->spectral;
  int64_t len = x->shape[x->ndim - 1], rows = vt_numel(x) / len, frames = 1 + (len - n_fft) / hop;
  int nb = n_fft / 2 + 1;
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)(x->ndim - 1));
  shape[x->ndim - 1] = frames;
  shape[x->ndim] = nb;
  shape[x->ndim + 1] = 2;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim + 2, shape);
  int64_t work = k->stft_work(ctx->be, rows, frames, n_fft);
  float *tmp = out ? vt_arena_data(ctx, op, sizeof(float) * (size_t)(work > 0 ? work : 1)) : NULL;
  if (!tmp) return &ctx->err_tensor;
  if (!k->stft(ctx->be, rows, len, frames, n_fft, hop, x->data, window ? window->data : NULL,
               out->data, tmp))
    return vt_ctx_fail(ctx, op, "the %s backend cannot transform size %d", ctx->be->name, n_fft);
  vt_node *n = vt_record(ctx, op, stft_backward, out, 1, &x);
  if (n) {
    n->saved[0] = window;
    n->i[0] = rows;
    n->i[1] = len;
    n->i[2] = frames;
    n->i[3] = n_fft;
    n->i[4] = hop;
  }
  return out;
}

static void complex_abs_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *z = n->in[0];
  float *dz = vt_grad(ctx, z);
  if (!dz) return;
  ctx->be->spectral->complex_abs_backward(ctx->be, vt_numel(n->out), z->data, n->out->data,
                                          n->out->grad, dz);
}

vt_tensor *vt_complex_abs(vt_ctx *ctx, vt_tensor *z, float eps) {
  const char *op = "complex_abs";
  VT_OP_INPUTS(ctx, op, z);
  if (!vt_need_kernels(ctx, op, VT_FAMILY_SPECTRAL,
                       SPECTRAL_HAS(ctx, complex_abs) && SPECTRAL_HAS(ctx, complex_abs_backward)) ||
      !vt_check_dtype(ctx, op, z, VT_F32))
    return &ctx->err_tensor;
  char s[96];
  if (z->ndim < 2 || z->shape[z->ndim - 1] != 2 || !(eps > 0))
    return vt_ctx_fail(ctx, op, "input %s must be [..., 2] and eps %g > 0",
                       vt_shape_str(z, s, sizeof s), eps);
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, z->ndim - 1, z->shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->spectral->complex_abs(ctx->be, vt_numel(out), eps, z->data, out->data);
  vt_record(ctx, op, complex_abs_backward, out, 1, &z);
  return out;
}

static void log_clamp_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  ctx->be->spectral->log_clamp_backward(ctx->be, vt_numel(x), n->f[0], x->data, n->out->grad, dx);
}

vt_tensor *vt_log_clamp(vt_ctx *ctx, vt_tensor *x, float lo) {
  const char *op = "log_clamp";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_need_kernels(ctx, op, VT_FAMILY_SPECTRAL,
                       SPECTRAL_HAS(ctx, log_clamp) && SPECTRAL_HAS(ctx, log_clamp_backward)) ||
      !vt_check_dtype(ctx, op, x, VT_F32))
    return &ctx->err_tensor;
  if (!(lo > 0)) return vt_ctx_fail(ctx, op, "lower bound %g must be > 0", lo);
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->spectral->log_clamp(ctx->be, vt_numel(x), lo, x->data, out->data);
  vt_node *n = vt_record(ctx, op, log_clamp_backward, out, 1, &x);
  if (n) n->f[0] = lo;
  return out;
}
