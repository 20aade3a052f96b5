// ctest-labels: unit grad
/* The direct 1-D correlation (autograd/cpu/cpu_conv1d.c) that thin convs and transposed convs
 * take: conv1d and conv_transpose1d against plain double loops over strides, dilations,
 * paddings, groups and lengths that put positions in the register tiles, in the checked
 * edges and in several threads' chunks, then their gradients by finite differences (the data
 * gradient of a strided conv and the forward of a transposed one are the polyphase path). */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "autograd/ops_conv.h"
#include "tests/gradcheck.h"

typedef struct {
  int stride, pad, dil, groups, opad;
  bool transpose;
} geo;

static void conv_ref(const float *x, const float *w, const float *b, int n, int cin, int l,
                     int cout, int k, const geo *a, int lout, float *y) {
  int cin_g = cin / a->groups, cout_g = cout / a->groups;
  for (int i = 0; i < n; i++)
    for (int o = 0; o < cout; o++)
      for (int t = 0; t < lout; t++) {
        double acc = b ? b[o] : 0;
        int g = o / cout_g;
        for (int ci = 0; ci < cin_g; ci++)
          for (int j = 0; j < k; j++) {
            int p = t * a->stride - a->pad + j * a->dil;
            if (p >= 0 && p < l)
              acc += (double)w[(o * cin_g + ci) * k + j] * x[(i * cin + g * cin_g + ci) * l + p];
          }
        y[(i * cout + o) * lout + t] = (float)acc;
      }
}

/* torch's ConvTranspose1d: y[co, t * stride - pad + j] += x[ci, t] * w[ci, co, j]. */
static void convt_ref(const float *x, const float *w, const float *b, int n, int cin, int l,
                      int cout, int k, const geo *a, int lout, float *y) {
  double *acc = calloc((size_t)n * cout * lout, sizeof(double));
  for (int i = 0; i < n; i++)
    for (int ci = 0; ci < cin; ci++)
      for (int t = 0; t < l; t++)
        for (int co = 0; co < cout; co++)
          for (int j = 0; j < k; j++) {
            int p = t * a->stride - a->pad + j;
            if (p >= 0 && p < lout)
              acc[((size_t)i * cout + co) * lout + p] +=
                  (double)x[(i * cin + ci) * l + t] * w[(ci * cout + co) * k + j];
          }
  for (int i = 0; i < n; i++)
    for (int co = 0; co < cout; co++)
      for (int p = 0; p < lout; p++)
        y[(i * cout + co) * lout + p] = (float)(acc[((size_t)i * cout + co) * lout + p] + b[co]);
  free(acc);
}

static vt_tensor *run(vt_ctx *c, vt_tensor *x, vt_tensor *w, vt_tensor *b, const geo *a) {
  if (a->transpose) return vt_conv_transpose1d(c, x, w, b, a->stride, a->pad, a->opad);
  return vt_conv1d(c, x, w, b, a->stride, a->pad, a->dil, a->groups);
}

static void check_forward(int cin, int cout, int k, int l, geo a) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  int n = 2, cin_g = cin / a.groups;
  int lout = a.transpose ? (l - 1) * a.stride - 2 * a.pad + k + a.opad
                         : (l + 2 * a.pad - a.dil * (k - 1) - 1) / a.stride + 1;
  size_t nx = (size_t)n * cin * l, nw = (size_t)cout * cin_g * k, ny = (size_t)n * cout * lout;
  float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw),
        *b = malloc(sizeof(float) * (size_t)cout), *y = malloc(sizeof(float) * ny),
        *ref = malloc(sizeof(float) * ny);
  vt_rng r;
  vt_rng_seed(&r, (uint64_t)(cin * 1000 + cout * 100 + k * 10 + l));
  vt_test_fill_uniform(&r, x, (long)nx, -1, 1);
  vt_test_fill_uniform(&r, w, (long)nw, -1, 1);
  vt_test_fill_uniform(&r, b, cout, -1, 1);
  vt_tensor *tx = vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, cin, l}, x);
  int64_t ws[3] = {a.transpose ? cin : cout, a.transpose ? cout : cin_g, k};
  vt_tensor *tw = vt_from_host(ctx, VT_F32, 3, ws, w);
  vt_tensor *tb = vt_from_host(ctx, VT_F32, 1, (int64_t[]){cout}, b);
  vt_tensor *out = run(ctx, tx, tw, tb, &a);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  if (!vt_ctx_failed(ctx)) {
    CHECK_MSG(out->shape[2] == lout, "length %lld, want %d", (long long)out->shape[2], lout);
    vt_to_host(ctx, out, y);
    if (a.transpose)
      convt_ref(x, w, b, n, cin, l, cout, k, &a, lout, ref);
    else
      conv_ref(x, w, b, n, cin, l, cout, k, &a, lout, ref);
    double tol = 4.0 * (a.transpose ? cin * k : cin_g * k) * FLT_EPSILON;
    char name[96];
    snprintf(name, sizeof name, "%s %d->%d k%d l%d s%d p%d d%d g%d", a.transpose ? "convT" : "conv",
             cin, cout, k, l, a.stride, a.pad, a.dil, a.groups);
    CHECK_CLOSE(name, y, ref, (long)ny, tol, tol);
  }
  vt_ctx_free(ctx);
  free(x);
  free(w);
  free(b);
  free(y);
  free(ref);
}

static vt_tensor *g_conv(vt_ctx *c, vt_tensor **in, void *u) {
  return run(c, in[0], in[1], in[2], u);
}

static void check_grad(int cin, int cout, int k, int l, geo a) {
  int cin_g = cin / a.groups;
  int64_t nw = (int64_t)cout * cin_g * k;
  float *x = malloc(sizeof(float) * (size_t)(2 * cin * l)), *w = malloc(sizeof(float) * nw),
        *b = malloc(sizeof(float) * (size_t)cout);
  vt_rng r;
  vt_rng_seed(&r, 5);
  vt_test_fill_uniform(&r, x, 2L * cin * l, -1, 1);
  vt_test_fill_uniform(&r, w, (long)nw, -1, 1);
  vt_test_fill_uniform(&r, b, cout, -1, 1);
  vt_gc_input in[3] = {
      {VT_F32, 3, {2, cin, l}, x, true},
      {VT_F32, 3, {a.transpose ? cin : cout, a.transpose ? cout : cin_g, k}, w, true},
      {VT_F32, 1, {cout}, b, true}};
  char name[96];
  snprintf(name, sizeof name, "grad %s %d->%d k%d l%d s%d p%d d%d", a.transpose ? "convT" : "conv",
           cin, cout, k, l, a.stride, a.pad, a.dil);
  CHECK_GRAD(name, g_conv, &a, in, 3);
  free(x);
  free(w);
  free(b);
}

/* The period discriminator's conv2d with a (k, 1) kernel, stride (s, 1), padding (p, 0): the
 * row runs of im2col / col2im with a one-column kernel, against a loop and finite differences. */
static void check_column_conv2d(int cin, int cout, int k, int h, int w, int s, int p) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  int n = 2, oh = (h + 2 * p - k) / s + 1;
  size_t nx = (size_t)n * cin * h * w, nw = (size_t)cout * cin * k, ny = (size_t)n * cout * oh * w;
  float *x = malloc(sizeof(float) * nx), *wt = malloc(sizeof(float) * nw),
        *b = malloc(sizeof(float) * (size_t)cout), *y = malloc(sizeof(float) * ny),
        *ref = malloc(sizeof(float) * ny);
  vt_rng r;
  vt_rng_seed(&r, 17);
  vt_test_fill_uniform(&r, x, (long)nx, -1, 1);
  vt_test_fill_uniform(&r, wt, (long)nw, -1, 1);
  vt_test_fill_uniform(&r, b, cout, -1, 1);
  for (int i = 0; i < n; i++)
    for (int o = 0; o < cout; o++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < w; ox++) {
          double acc = b[o];
          for (int ci = 0; ci < cin; ci++)
            for (int j = 0; j < k; j++) {
              int iy = oy * s - p + j;
              if (iy >= 0 && iy < h)
                acc += (double)wt[(o * cin + ci) * k + j] * x[((i * cin + ci) * h + iy) * w + ox];
            }
          y[((i * cout + o) * oh + oy) * w + ox] = (float)acc;
        }
  vt_tensor *out = vt_conv2d(ctx, vt_from_host(ctx, VT_F32, 4, (int64_t[]){n, cin, h, w}, x),
                             vt_from_host(ctx, VT_F32, 4, (int64_t[]){cout, cin, k, 1}, wt),
                             vt_from_host(ctx, VT_F32, 1, (int64_t[]){cout}, b), s, 1, p, 0);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  if (!vt_ctx_failed(ctx)) {
    vt_to_host(ctx, out, ref);
    double tol = 4.0 * cin * k * FLT_EPSILON;
    CHECK_CLOSE("column conv2d", ref, y, (long)ny, tol, tol);
  }
  vt_ctx_free(ctx);
  free(x);
  free(wt);
  free(b);
  free(y);
  free(ref);
}

static vt_tensor *g_col2d(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_conv2d(c, in[0], in[1], in[2], 3, 1, 2, 0);
}

int main(void) {
  check_column_conv2d(1, 4, 5, 100, 3, 3, 2);
  check_column_conv2d(4, 8, 5, 37, 7, 3, 2);
  check_column_conv2d(8, 8, 3, 20, 11, 1, 1);
  {
    float x[2 * 2 * 9 * 3], w[3 * 2 * 5], b[3];
    vt_rng r;
    vt_rng_seed(&r, 2);
    vt_test_fill_uniform(&r, x, 108, -1, 1);
    vt_test_fill_uniform(&r, w, 30, -1, 1);
    vt_test_fill_uniform(&r, b, 3, -1, 1);
    vt_gc_input in[3] = {{VT_F32, 4, {2, 2, 9, 3}, x, true},
                         {VT_F32, 4, {3, 2, 5, 1}, w, true},
                         {VT_F32, 1, {3}, b, true}};
    CHECK_GRAD("grad column conv2d", g_col2d, NULL, in, 3);
  }
  /* the codec's shapes: ResBlock convs (dilated, same padding), strided downsampling,
   * transposed upsampling with kernel 2 x rate and odd kernels, 1 to 9 channels */
  int ch[][2] = {{4, 4}, {1, 4}, {4, 1}, {3, 5}, {8, 8}, {9, 7}, {16, 5}};
  for (size_t c = 0; c < sizeof ch / sizeof ch[0]; c++) {
    int ci = ch[c][0], co = ch[c][1];
    check_forward(ci, co, 3, 70, (geo){1, 1, 1, 1, 0, false});
    check_forward(ci, co, 7, 133, (geo){1, 9, 3, 1, 0, false});
    check_forward(ci, co, 5, 91, (geo){3, 1, 1, 1, 0, false});
    check_forward(ci, co, 16, 203, (geo){8, 4, 1, 1, 0, false});
    check_forward(ci, co, 11, 57, (geo){5, 0, 2, 1, 0, false});
    check_forward(ci, co, 16, 29, (geo){8, 4, 1, 1, 0, true});
    check_forward(ci, co, 11, 37, (geo){5, 3, 1, 1, 0, true});
    check_forward(ci, co, 5, 41, (geo){3, 1, 1, 1, 2, true});
    check_forward(ci, co, 4, 40, (geo){1, 0, 1, 1, 0, true});
    check_forward(ci, co, 3, 5, (geo){1, 1, 1, 1, 0, false}); /* shorter than a tile */
  }
  check_forward(8, 4, 3, 64, (geo){1, 1, 1, 2, 0, false});
  check_forward(12, 6, 5, 100, (geo){2, 2, 2, 3, 0, false});
  /* long enough for several chunks (threads) of output positions */
  check_forward(4, 4, 7, 30011, (geo){1, 9, 3, 1, 0, false});
  check_forward(8, 4, 10, 9001, (geo){5, 2, 1, 1, 0, true});
  check_forward(2, 6, 5, 24007, (geo){3, 1, 1, 1, 0, false});

  check_grad(3, 4, 3, 37, (geo){1, 3, 3, 1, 0, false});
  check_grad(4, 3, 5, 41, (geo){3, 1, 1, 1, 0, false});
  check_grad(3, 2, 16, 7, (geo){8, 4, 1, 1, 0, true});
  check_grad(2, 3, 5, 9, (geo){3, 1, 1, 1, 1, true});
  return vt_test_finish("test_codec_conv");
}
