// ctest-labels: unit grad
/* Convolutions under bf16 mixed precision (autograd/cpu/cpu_conv.c's conv_gemm: the im2col
 * GEMMs on oneDNN's bf16 matmul) against the same ops in f32, forward and backward: conv1d
 * with stride, padding, dilation and groups, a 1x1 conv1d (read without unfolding), conv2d
 * with stride and padding, and conv_transpose1d.
 *
 * Tolerance from bf16's 8 significant bits: a GEMM of operands rounded to bf16 computes each
 * product within 2^-7 (+ 2^-16) of the f32 one, so each element of out, dx and dw (one GEMM
 * each) is off by at most 1.01 2^-7 times its magnitude sum |a||b|, which the same f32 ops
 * compute exactly when run on |x|, |w| and |dy|; 1e-5 of it more for f32 accumulation.
 * Each case checks that the bf16 path ran (the output differs).
 * Skips (77) without bf16 GEMM units. */
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_conv.h"
#include "tests/testutil.h"

typedef struct {
  const char *name;
  int kind; /* 0 conv1d, 1 conv2d, 2 conv_transpose1d */
  int64_t n, cin, cout, h, w, kh, kw;
  int stride, pad, dil, groups;
} ccase;

typedef struct {
  float *y, *dx, *dw;
  int64_t ny;
} cres;

static vt_tensor *input(vt_ctx *ctx, int nd, const int64_t *sh, const float *v) {
  vt_tensor *t = vt_new(ctx, VT_F32, nd, sh);
  vt_write_host(ctx, t, 0, vt_numel(t), v);
  vt_requires_grad(ctx, t);
  return t;
}

static float *grad_of(vt_ctx *ctx, const vt_tensor *t) {
  float *h = calloc((size_t)vt_numel(t), sizeof(float));
  if (t->grad) {
    vt_tensor g = *t;
    g.data = t->grad;
    vt_read_host(ctx, &g, 0, vt_numel(t), h);
  }
  return h;
}

static cres run(vt_ctx *ctx, const ccase *c, const float *x, const float *w, const float *dy) {
  int64_t xs[4] = {c->n, c->cin, c->h, c->w}, ws[4];
  int nd = c->kind == 1 ? 4 : 3;
  if (nd == 3) xs[2] = c->w;
  if (c->kind == 0) ws[0] = c->cout, ws[1] = c->cin / c->groups, ws[2] = c->kw;
  if (c->kind == 1) ws[0] = c->cout, ws[1] = c->cin, ws[2] = c->kh, ws[3] = c->kw;
  if (c->kind == 2) ws[0] = c->cin, ws[1] = c->cout, ws[2] = c->kw;
  vt_tensor *tx = input(ctx, nd, xs, x), *tw = input(ctx, nd, ws, w), *y;
  if (c->kind == 0)
    y = vt_conv1d(ctx, tx, tw, NULL, c->stride, c->pad, c->dil, c->groups);
  else if (c->kind == 1)
    y = vt_conv2d(ctx, tx, tw, NULL, c->stride, c->stride, c->pad, c->pad);
  else
    y = vt_conv_transpose1d(ctx, tx, tw, NULL, c->stride, c->pad, 0);
  cres r = {.ny = vt_numel(y)};
  vt_tensor *tdy = vt_new(ctx, VT_F32, y->ndim, y->shape);
  vt_write_host(ctx, tdy, 0, r.ny, dy);
  vt_tensor *loss = vt_sum(ctx, vt_reshape(ctx, vt_mul(ctx, y, tdy), 1, (int64_t[]){-1}), 0, false);
  CHECK_MSG(vt_backward(ctx, loss), "%s: %s", c->name, vt_ctx_error(ctx));
  r.y = calloc((size_t)r.ny, sizeof(float));
  vt_read_host(ctx, y, 0, r.ny, r.y);
  r.dx = grad_of(ctx, tx);
  r.dw = grad_of(ctx, tw);
  vt_ctx_reset(ctx);
  return r;
}

static double maxdiff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

/* The output's element count, from the case's sizes (PyTorch's formulas). */
static int64_t out_numel(const ccase *c) {
  if (c->kind == 0)
    return c->n * c->cout * ((c->w + 2 * c->pad - c->dil * (c->kw - 1) - 1) / c->stride + 1);
  if (c->kind == 1)
    return c->n * c->cout * ((c->h + 2 * c->pad - c->kh) / c->stride + 1) *
           ((c->w + 2 * c->pad - c->kw) / c->stride + 1);
  return c->n * c->cout * ((c->w - 1) * c->stride - 2 * c->pad + c->kw);
}

/* Every element within (1.01 2^-7 + 1e-5) times its magnitude (the same GEMM on |inputs|). */
static void check(const char *c, const char *what, const float *got, const float *want,
                  const float *mag, int64_t n) {
  int64_t bad = 0;
  double worst = 0, at = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)got[i] - want[i]), b = (1.01 * 0x1p-7 + 1e-5) * mag[i] + 1e-6;
    if (e > b) bad++;
    if (e > worst) worst = e, at = b;
  }
  printf("  %s %s: max |bf16 - f32| = %.3g (its bound %.3g), %lld over\n", c, what, worst, at,
         (long long)bad);
  CHECK_MSG(bad == 0, "%s %s: %lld elements over their bound", c, what, (long long)bad);
}

static void run_case(vt_ctx *ctx, const ccase *c, vt_rng *rng) {
  int64_t nx = c->n * c->cin * c->h * c->w, ny = out_numel(c);
  int64_t nw = c->kind == 1   ? c->cout * c->cin * c->kh * c->kw
               : c->kind == 2 ? c->cin * c->cout * c->kw
                              : c->cout * c->cin / c->groups * c->kw;
  float *x = malloc(4 * (size_t)nx), *w = malloc(4 * (size_t)nw), *dy = malloc(4 * (size_t)ny);
  float *ax = malloc(4 * (size_t)nx), *aw = malloc(4 * (size_t)nw), *ady = malloc(4 * (size_t)ny);
  vt_test_fill_uniform(rng, x, (long)nx, -2.0f, 2.0f);
  vt_test_fill_uniform(rng, w, (long)nw, -1.0f, 1.0f);
  vt_test_fill_uniform(rng, dy, (long)ny, -1.0f, 1.0f);
  for (int64_t i = 0; i < nx; i++) ax[i] = fabsf(x[i]);
  for (int64_t i = 0; i < nw; i++) aw[i] = fabsf(w[i]);
  for (int64_t i = 0; i < ny; i++) ady[i] = fabsf(dy[i]);
  char err[256];
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_F32, NULL, 0, err, sizeof err) == 0);
  cres f = run(ctx, c, x, w, dy), mag = run(ctx, c, ax, aw, ady);
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == 0);
  cres h = run(ctx, c, x, w, dy);
  CHECK(f.ny == ny && h.ny == ny);
  printf("%s:\n", c->name);
  check(c->name, "out", h.y, f.y, mag.y, ny);
  check(c->name, "dx", h.dx, f.dx, mag.dx, nx);
  check(c->name, "dw", h.dw, f.dw, mag.dw, nw);
  CHECK_MSG(maxdiff(h.y, f.y, ny) > 0, "%s: bf16 equals f32: the bf16 path did not run", c->name);
  cres *rs[3] = {&f, &mag, &h};
  for (int i = 0; i < 3; i++) free(rs[i]->y), free(rs[i]->dx), free(rs[i]->dw);
  free(x), free(w), free(dy), free(ax), free(aw), free(ady);
}

int main(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  char err[256];
  if (vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) != 0) {
    printf("skipped: %s\n", err);
    vt_ctx_free(ctx);
    return 77;
  }
  vt_rng rng;
  vt_rng_seed(&rng, 16);
  const ccase cases[] = {
      {"conv1d stride pad dil groups", 0, 2, 12, 8, 1, 77, 1, 5, 2, 3, 2, 2},
      {"conv1d 1x1 (no unfolding)", 0, 2, 32, 24, 1, 50, 1, 1, 1, 0, 1, 1},
      {"conv2d stride pad", 1, 2, 3, 16, 20, 18, 4, 4, 2, 1, 1, 1},
      {"conv_transpose1d", 2, 2, 8, 6, 1, 31, 1, 4, 2, 1, 1, 1},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, &cases[i], &rng);
  vt_ctx_free(ctx);
  return vt_test_finish("test_bf16_conv");
}
