/* STFT, complex magnitude and clamped log (autograd/ops_spectral.h). The transforms run on
 * FFTW's single-precision real plans, one plan pair per size, made once and kept (the FFTW
 * planner is not thread-safe: a mutex guards it; executing a plan is). */
#include "autograd/ops_spectral.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#include "autograd/ctx_impl.h"

#define PLAN_SLOTS 32

typedef struct {
  int n;
  fftwf_plan r2c, c2r;
} fft_plans;

static fft_plans g_plans[PLAN_SLOTS];
static int g_nplans;
static pthread_mutex_t g_plan_lock = PTHREAD_MUTEX_INITIALIZER;

/* The plans of size n (unaligned: executed on arena buffers), or NULL when none can be made. */
static const fft_plans *plans_for(int n) {
  const fft_plans *p = NULL;
  pthread_mutex_lock(&g_plan_lock);
  for (int i = 0; i < g_nplans && !p; i++)
    if (g_plans[i].n == n) p = &g_plans[i];
  if (!p && g_nplans < PLAN_SLOTS) {
    float *r = fftwf_malloc(sizeof(float) * (size_t)n);
    fftwf_complex *c = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(n / 2 + 1));
    unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
    fft_plans q = {n, r && c ? fftwf_plan_dft_r2c_1d(n, r, c, flags) : NULL,
                   r && c ? fftwf_plan_dft_c2r_1d(n, c, r, flags) : NULL};
    fftwf_free(r);
    fftwf_free(c);
    if (q.r2c && q.c2r) {
      g_plans[g_nplans] = q;
      p = &g_plans[g_nplans++];
    }
  }
  pthread_mutex_unlock(&g_plan_lock);
  return p;
}

static bool cpu_only(vt_ctx *ctx, const char *op) {
  if (ctx->device.type == VT_DEV_CPU) return true;
  vt_ctx_fail(ctx, op, "not available on the %s backend (CPU only)", ctx->be->name);
  return false;
}

/* n->i: 0 rows, 1 L, 2 frames, 3 n_fft, 4 hop; saved[0] the window or NULL */
static void stft_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *win = n->saved[0];
  float *dx = vt_grad(ctx, x);
  int64_t rows = n->i[0], len = n->i[1], frames = n->i[2];
  int nfft = (int)n->i[3], hop = (int)n->i[4], nb = nfft / 2 + 1;
  float *tmp = vt_arena_data(ctx, "stft backward",
                             sizeof(float) * (size_t)(rows * frames) * (size_t)(nfft + 2 * nb));
  const fft_plans *p = plans_for(nfft);
  if (!dx || !tmp || !p) {
    if (!p) vt_ctx_fail(ctx, "stft", "no FFTW plan of size %d", nfft);
    return;
  }
  const float *dy = n->out->grad, *w = win ? win->data : NULL;
  int64_t jobs = rows * frames;
#pragma omp parallel for schedule(static) if (jobs * nfft > 32768)
  for (int64_t j = 0; j < jobs; j++) {
    /* the adjoint of the onesided real DFT is c2r of the gradient with the bins between DC
     * and Nyquist halved (c2r counts each of them twice, as k and n - k) */
    float *fr = tmp + j * (nfft + 2 * nb), *spec = fr + nfft;
    const float *g = dy + j * 2 * nb;
    for (int k = 0; k < nb; k++) {
      float h = k == 0 || k == nfft / 2 ? 1.0f : 0.5f;
      spec[2 * k] = g[2 * k] * h;
      spec[2 * k + 1] = g[2 * k + 1] * h;
    }
    fftwf_execute_dft_c2r(p->c2r, (fftwf_complex *)spec, fr);
    if (w)
      for (int i = 0; i < nfft; i++) fr[i] *= w[i];
  }
  /* overlap-add of the frames (serial per row: frames overlap) */
#pragma omp parallel for schedule(static) if (rows > 1 && rows * len > 32768)
  for (int64_t r = 0; r < rows; r++)
    for (int64_t t = 0; t < frames; t++) {
      const float *fr = tmp + (r * frames + t) * (nfft + 2 * nb);
      float *d = dx + r * len + t * hop;
      for (int i = 0; i < nfft; i++) d[i] += fr[i];
    }
}

vt_tensor *vt_stft(vt_ctx *ctx, vt_tensor *x, vt_tensor *window, int n_fft, int hop) {
  const char *op = "stft";
  VT_OP_INPUTS(ctx, op, x);
  if (window) VT_OP_INPUTS(ctx, op, window);
  if (!cpu_only(ctx, op) || !vt_check_dtype(ctx, op, x, VT_F32) ||
      (window && !vt_check_dtype(ctx, op, window, VT_F32)))
    return &ctx->err_tensor;
  char s[96];
  if (n_fft < 2 || n_fft % 2 || hop < 1 || x->ndim < 1 || x->ndim >= VT_MAX_DIMS - 1 ||
      x->shape[x->ndim - 1] < n_fft)
    return vt_ctx_fail(ctx, op, "input %s: need [..., L] with L >= n_fft %d (even) and hop %d >= 1",
                       vt_shape_str(x, s, sizeof s), n_fft, hop);
  if (window && (window->ndim != 1 || window->shape[0] != n_fft))
    return vt_ctx_fail(ctx, op, "window %s must be [%d]", vt_shape_str(window, s, sizeof s), n_fft);
  const fft_plans *p = plans_for(n_fft);
  if (!p) return vt_ctx_fail(ctx, op, "no FFTW plan of size %d", n_fft);
  int64_t len = x->shape[x->ndim - 1], rows = vt_numel(x) / len, frames = 1 + (len - n_fft) / hop;
  int nb = n_fft / 2 + 1;
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)(x->ndim - 1));
  shape[x->ndim - 1] = frames;
  shape[x->ndim] = nb;
  shape[x->ndim + 1] = 2;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim + 2, shape);
  float *tmp = out ? vt_arena_data(ctx, op, sizeof(float) * (size_t)(rows * frames * n_fft)) : NULL;
  if (!tmp) return &ctx->err_tensor;
  const float *xd = x->data, *w = window ? window->data : NULL;
  float *o = out->data;
  int64_t jobs = rows * frames;
#pragma omp parallel for schedule(static) if (jobs * n_fft > 32768)
  for (int64_t j = 0; j < jobs; j++) {
    int64_t r = j / frames, t = j % frames;
    float *fr = tmp + j * n_fft;
    const float *src = xd + r * len + t * hop;
    for (int i = 0; i < n_fft; i++) fr[i] = w ? src[i] * w[i] : src[i];
    fftwf_execute_dft_r2c(p->r2c, fr, (fftwf_complex *)(o + j * 2 * nb));
  }
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
  const float *zd = z->data, *y = n->out->data, *dy = n->out->grad;
  int64_t m = vt_numel(n->out);
  for (int64_t i = 0; i < m; i++) {
    float s = dy[i] / y[i];
    dz[2 * i] += s * zd[2 * i];
    dz[2 * i + 1] += s * zd[2 * i + 1];
  }
}

vt_tensor *vt_complex_abs(vt_ctx *ctx, vt_tensor *z, float eps) {
  const char *op = "complex_abs";
  VT_OP_INPUTS(ctx, op, z);
  if (!cpu_only(ctx, op) || !vt_check_dtype(ctx, op, z, VT_F32)) return &ctx->err_tensor;
  char s[96];
  if (z->ndim < 2 || z->shape[z->ndim - 1] != 2 || !(eps > 0))
    return vt_ctx_fail(ctx, op, "input %s must be [..., 2] and eps %g > 0",
                       vt_shape_str(z, s, sizeof s), eps);
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, z->ndim - 1, z->shape);
  if (!out) return &ctx->err_tensor;
  const float *zd = z->data;
  float *y = out->data;
  int64_t m = vt_numel(out);
  for (int64_t i = 0; i < m; i++)
    y[i] = sqrtf(zd[2 * i] * zd[2 * i] + zd[2 * i + 1] * zd[2 * i + 1] + eps);
  vt_record(ctx, op, complex_abs_backward, out, 1, &z);
  return out;
}

static void log_clamp_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  const float *xd = x->data, *dy = n->out->grad, lo = n->f[0];
  int64_t m = vt_numel(x);
  for (int64_t i = 0; i < m; i++)
    if (xd[i] >= lo) dx[i] += dy[i] / xd[i];
}

vt_tensor *vt_log_clamp(vt_ctx *ctx, vt_tensor *x, float lo) {
  const char *op = "log_clamp";
  VT_OP_INPUTS(ctx, op, x);
  if (!cpu_only(ctx, op) || !vt_check_dtype(ctx, op, x, VT_F32)) return &ctx->err_tensor;
  if (!(lo > 0)) return vt_ctx_fail(ctx, op, "lower bound %g must be > 0", lo);
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  const float *xd = x->data;
  float *y = out->data;
  int64_t m = vt_numel(x);
  for (int64_t i = 0; i < m; i++) y[i] = logf(xd[i] > lo ? xd[i] : lo);
  vt_node *n = vt_record(ctx, op, log_clamp_backward, out, 1, &x);
  if (n) n->f[0] = lo;
  return out;
}
