// ctest-labels: unit grad
/* Conv-family checks beyond the PyTorch fixture cases of tests/op_table.h: long inputs that
 * take several im2col chunks against a direct loop, 1x1 grouped kernels and inputs used twice
 * by finite differences, and the error paths, which must not abort. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/ops_conv.h"
#include "tests/gradcheck.h"

/* A long 1-D input makes the kernels walk several im2col chunks (and a 1x1 conv the direct
 * path); compare with a plain loop, and check the gradients by finite differences on a
 * smaller grouped, dilated case with 1x1 kernels. */
typedef struct {
  int stride, pad, dil, groups;
} conv_args;

static vt_tensor *g_conv1d_args(vt_ctx *c, vt_tensor **in, void *u) {
  const conv_args *a = u;
  return vt_conv1d(c, in[0], in[1], in[2], a->stride, a->pad, a->dil, a->groups);
}

static void conv1d_ref(const float *x, const float *w, const float *b, int n, int cin, int l,
                       int cout, int k, const conv_args *a, int lout, float *y) {
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

static void check_long_conv(int cin, int cout, int k, int l, conv_args a) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  int n = 2, cin_g = cin / a.groups;
  int lout = (l + 2 * a.pad - a.dil * (k - 1) - 1) / a.stride + 1;
  size_t nx = (size_t)n * cin * l, nw = (size_t)cout * cin_g * k, ny = (size_t)n * cout * lout;
  float *x = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw),
        *b = malloc(sizeof(float) * (size_t)cout), *y = malloc(sizeof(float) * ny),
        *ref = malloc(sizeof(float) * ny);
  vt_rng r;
  vt_rng_seed(&r, 11);
  vt_test_fill_uniform(&r, x, (long)nx, -1, 1);
  vt_test_fill_uniform(&r, w, (long)nw, -1, 1);
  vt_test_fill_uniform(&r, b, cout, -1, 1);
  vt_tensor *tx = vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, cin, l}, x);
  vt_tensor *tw = vt_from_host(ctx, VT_F32, 3, (int64_t[]){cout, cin_g, k}, w);
  vt_tensor *tb = vt_from_host(ctx, VT_F32, 1, (int64_t[]){cout}, b);
  vt_tensor *out = vt_conv1d(ctx, tx, tw, tb, a.stride, a.pad, a.dil, a.groups);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  if (!vt_ctx_failed(ctx)) {
    CHECK(out->shape[2] == lout);
    vt_to_host(ctx, out, y);
    conv1d_ref(x, w, b, n, cin, l, cout, k, &a, lout, ref);
    /* sums of cin_g * k products of values in [-1, 1] */
    double tol = 4.0 * cin_g * k * FLT_EPSILON;
    CHECK_CLOSE("long conv1d", y, ref, (long)ny, tol, tol);
  }
  vt_ctx_free(ctx);
  free(x);
  free(w);
  free(b);
  free(y);
  free(ref);
}

static void test_long_and_1x1(void) {
  /* 64 * 7 unfolded rows: 9362 columns per chunk, so 20000 outputs take 3 chunks */
  check_long_conv(64, 8, 7, 40000, (conv_args){2, 3, 1, 1});
  check_long_conv(64, 8, 1, 20000, (conv_args){1, 0, 1, 1}); /* direct path */

  float x[2 * 4 * 9], w[6 * 2 * 1], b[6];
  vt_rng r;
  vt_rng_seed(&r, 3);
  vt_test_fill_uniform(&r, x, 72, -1, 1);
  vt_test_fill_uniform(&r, w, 12, -1, 1);
  vt_test_fill_uniform(&r, b, 6, -1, 1);
  conv_args a = {1, 0, 1, 2};
  vt_gc_input in[3] = {
      {VT_F32, 3, {2, 4, 9}, x, true}, {VT_F32, 3, {6, 2, 1}, w, true}, {VT_F32, 1, {6}, b, true}};
  CHECK_GRAD("conv1d 1x1 grouped", g_conv1d_args, &a, in, 3);
}

/* Each input used twice: the second backward must add to the gradient the first wrote. */
static vt_tensor *g_twice(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  vt_tensor *t1 = vt_conv_transpose1d(c, in[0], in[1], in[2], 2, 1, 1);
  vt_tensor *t2 = vt_conv_transpose1d(c, in[0], in[1], in[2], 2, 1, 1);
  vt_tensor *a = vt_mul(c, t1, t2); /* [2, 3, 12] */
  vt_tensor *y = vt_conv1d(c, a, in[3], NULL, 1, 1, 1, 1);
  return vt_add(c, y, vt_conv1d(c, a, in[3], NULL, 1, 1, 1, 1));
}

static void test_accumulate(void) {
  float x[2 * 4 * 6], w[4 * 3 * 3], b[3], w2[3 * 3 * 3];
  vt_rng r;
  vt_rng_seed(&r, 8);
  vt_test_fill_uniform(&r, x, 48, -1, 1);
  vt_test_fill_uniform(&r, w, 36, -1, 1);
  vt_test_fill_uniform(&r, b, 3, -1, 1);
  vt_test_fill_uniform(&r, w2, 27, -1, 1);
  vt_gc_input in[4] = {{VT_F32, 3, {2, 4, 6}, x, true},
                       {VT_F32, 3, {4, 3, 3}, w, true},
                       {VT_F32, 1, {3}, b, true},
                       {VT_F32, 3, {3, 3, 3}, w2, true}};
  CHECK_GRAD("conv ops with inputs used twice", g_twice, NULL, in, 4);
}

static void expect_error(vt_ctx *ctx, const char *what, const char *s1, const char *s2) {
  const char *e = vt_ctx_error(ctx);
  CHECK_MSG(vt_ctx_failed(ctx) && strstr(e, what) && strstr(e, s1) && (!s2 || strstr(e, s2)),
            "error for %s: \"%s\"", what, e);
  vt_ctx_clear_error(ctx);
}

static void test_errors(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *x = vt_zeros(ctx, VT_F32, 3, (int64_t[]){2, 4, 10});
  vt_tensor *w = vt_zeros(ctx, VT_F32, 3, (int64_t[]){6, 3, 3});
  vt_tensor *out = vt_conv1d(ctx, x, w, NULL, 1, 0, 1, 1);
  out = vt_conv1d(ctx, out, w, NULL, 1, 0, 1, 1); /* passes the error through */
  expect_error(ctx, "conv1d", "[2, 4, 10]", "[6, 3, 3]");
  vt_tensor *w2 = vt_zeros(ctx, VT_F32, 3, (int64_t[]){6, 2, 3});
  vt_tensor *b5 = vt_zeros(ctx, VT_F32, 1, (int64_t[]){5});
  vt_conv1d(ctx, x, w2, b5, 1, 0, 1, 2);
  expect_error(ctx, "conv1d", "bias", "[5]");
  vt_tensor *wlong = vt_zeros(ctx, VT_F32, 3, (int64_t[]){6, 4, 11});
  vt_conv1d(ctx, x, wlong, NULL, 1, 0, 1, 1);
  expect_error(ctx, "conv1d", "[2, 4, 10]", "[6, 4, 11]");
  vt_tensor *x4 = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 3, 5, 5});
  vt_tensor *w4 = vt_zeros(ctx, VT_F32, 4, (int64_t[]){2, 2, 3, 3});
  vt_conv2d(ctx, x4, w4, NULL, 1, 1, 0, 0);
  expect_error(ctx, "conv2d", "[1, 3, 5, 5]", "[2, 2, 3, 3]");
  vt_conv2d(ctx, x, w4, NULL, 1, 1, 0, 0);
  expect_error(ctx, "conv2d", "[2, 4, 10]", "4-D");
  vt_tensor *wt = vt_zeros(ctx, VT_F32, 3, (int64_t[]){3, 2, 4});
  vt_conv_transpose1d(ctx, x, wt, NULL, 2, 0, 0);
  expect_error(ctx, "conv_transpose1d", "[2, 4, 10]", "[3, 2, 4]");
  vt_tensor *wt4 = vt_zeros(ctx, VT_F32, 3, (int64_t[]){4, 2, 4});
  vt_conv_transpose1d(ctx, x, wt4, NULL, 2, 0, 2);
  expect_error(ctx, "conv_transpose1d", "output_padding 2", "[2, 4, 10]");
  vt_tensor *img = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 5, 4, 8});
  vt_pixel_shuffle(ctx, img, 2);
  expect_error(ctx, "pixel_shuffle", "[1, 5, 4, 8]", NULL);

  /* a backend without the conv family reports instead of crashing */
  const vt_backend *real = ctx->be;
  vt_backend fake = *real;
  fake.name = "fake";
  fake.conv = NULL;
  ctx->be = &fake;
  vt_conv1d(ctx, x, w2, NULL, 1, 0, 1, 2);
  expect_error(ctx, "conv1d", "not supported on the fake backend (no kernels of the conv family)",
               NULL);
  ctx->be = real;
  vt_ctx_free(ctx);
}

int main(void) {
  test_long_and_1x1();
  test_accumulate();
  test_errors();
  return vt_test_finish("test_ops_conv");
}
