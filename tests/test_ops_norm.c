// ctest-labels: unit grad
/* Norm-family checks that are not per-op cases (those, against PyTorch and by finite
 * differences, are rows of tests/op_table.h): dropout's reproducibility and mask statistics,
 * inputs shared by several ops, and the error paths (bad shapes, a backend without the
 * kernels) that must not abort. */
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/ops_norm.h"
#include "tests/gradcheck.h"

static vt_tensor *g_dropout(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_dropout_seeded(c, in[0], 0.4f, true, 77, 5);
}

/* Dropout has no PyTorch reference (different generators): check what defines it instead. */
static void test_dropout(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  enum { N = 100000 };
  float *ones = malloc(sizeof(float) * N), *a = malloc(sizeof(float) * N),
        *b = malloc(sizeof(float) * N), *g = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) ones[i] = 1.0f;
  int64_t n = N, half = N / 2;
  vt_tensor *x = vt_from_host(ctx, VT_F32, 1, &n, ones);
  /* identity cases return x itself */
  CHECK(vt_dropout_seeded(ctx, x, 0.0f, true, 1, 0) == x);
  CHECK(vt_dropout_seeded(ctx, x, 0.5f, false, 1, 0) == x);
  CHECK(vt_dropout(ctx, x, 0.5f, false, NULL) == x);
  /* the mask: about p dropped, the rest scaled by 1 / (1 - p) */
  vt_requires_grad(ctx, x);
  vt_tensor *y = vt_dropout_seeded(ctx, x, 0.3f, true, 42, 0);
  vt_to_host(ctx, y, a);
  long kept = 0, bad = 0;
  for (int i = 0; i < N; i++) {
    if (a[i] != 0.0f) kept++;
    if (a[i] != 0.0f && fabsf(a[i] - 1.0f / 0.7f) > 1e-6f) bad++;
  }
  /* binomial: sd = sqrt(N p (1 - p)) = 145; allow 5 sd */
  CHECK_MSG(labs(kept - 70000) < 725, "kept %ld of %d at p = 0.3", kept, N);
  CHECK(bad == 0);
  /* the gradient is the same mask and scale */
  vt_backward(ctx, vt_sum(ctx, y, VT_ALL_AXES, false));
  vt_grad_to_host(ctx, x, g);
  CHECK(memcmp(a, g, sizeof(float) * N) == 0);
  vt_ctx_reset(ctx);
  /* reproducible: same seed and offset, same mask; the offset shifts the counter */
  x = vt_from_host(ctx, VT_F32, 1, &n, ones);
  vt_tensor *xh = vt_from_host(ctx, VT_F32, 1, &half, ones);
  vt_to_host(ctx, vt_dropout_seeded(ctx, x, 0.3f, true, 42, 0), b);
  CHECK(memcmp(a, b, sizeof(float) * N) == 0);
  vt_to_host(ctx, vt_dropout_seeded(ctx, xh, 0.3f, true, 42, (uint64_t)half), b);
  CHECK(memcmp(a + half, b, sizeof(float) * (size_t)half) == 0);
  vt_to_host(ctx, vt_dropout_seeded(ctx, x, 0.3f, true, 43, 0), b);
  CHECK(memcmp(a, b, sizeof(float) * N) != 0);
  /* from an rng: equal states give equal masks, and each call advances the state */
  vt_rng r1, r2;
  vt_rng_seed(&r1, 9);
  vt_rng_seed(&r2, 9);
  vt_to_host(ctx, vt_dropout(ctx, x, 0.5f, true, &r1), a);
  vt_to_host(ctx, vt_dropout(ctx, x, 0.5f, true, &r2), b);
  CHECK(memcmp(a, b, sizeof(float) * N) == 0);
  vt_to_host(ctx, vt_dropout(ctx, x, 0.5f, true, &r1), b);
  CHECK(memcmp(a, b, sizeof(float) * N) != 0);
  /* p = 1 drops everything */
  vt_to_host(ctx, vt_dropout_seeded(ctx, x, 1.0f, true, 3, 0), b);
  bool zero = true;
  for (int i = 0; i < N; i++) zero &= b[i] == 0.0f;
  CHECK(zero);
  CHECK(!vt_ctx_failed(ctx));
  vt_ctx_free(ctx);
  free(ones);
  free(a);
  free(b);
  free(g);

  float h[24];
  vt_rng r;
  vt_rng_seed(&r, 5);
  vt_test_fill_uniform(&r, h, 24, -1.0f, 1.0f);
  vt_gc_input in[1] = {{VT_F32, 2, {4, 6}, h, true}};
  CHECK_GRAD("dropout", g_dropout, NULL, in, 1);
}

/* Each input feeds several ops (and one op twice): backward kernels must add to gradients
 * that earlier ones wrote. */
static vt_tensor *g_shared(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  vt_tensor *x = in[0], *w6 = in[1], *b6 = in[2], *w4 = in[3], *pos = in[4], *g2 = in[5];
  vt_tensor *y = vt_mul(c, vt_layer_norm(c, x, w6, b6, 1e-5f), vt_layer_norm(c, x, w6, b6, 1e-5f));
  y = vt_add(c, y, vt_rms_norm(c, x, w6, 1e-6f));
  y = vt_mul(c, y, vt_group_norm(c, x, 2, w4, NULL, 1e-5f));
  y = vt_add(c, y, vt_batch_norm1d(c, x, w4, NULL, NULL, NULL, true, 0.1f, 1e-5f));
  vt_tensor *q = vt_reshape(c, x, 4, (int64_t[]){2, 2, 2, 6});
  y = vt_add(c, y, vt_reshape(c, vt_rope(c, q, pos, 100.0f, VT_ROPE_BTHD), 3, x->shape));
  y = vt_add(c, y, vt_reshape(c, vt_rope(c, q, pos, 100.0f, VT_ROPE_BHTD), 3, x->shape));
  y = vt_add(c, y, vt_dropout_seeded(c, x, 0.25f, true, 5, 0));
  y = vt_add(c, y, vt_dropout_seeded(c, x, 0.25f, true, 5, 0));
  y = vt_add(c, y, vt_weight_norm(c, g2, x));
  return vt_add(c, y, vt_weight_norm(c, g2, x));
}

static void test_shared_inputs(void) {
  float x[48], w6[6], b6[6], w4[4], g2[2];
  int32_t pos[2] = {3, 1};
  vt_rng r;
  vt_rng_seed(&r, 21);
  vt_test_fill_uniform(&r, x, 48, -1, 1);
  vt_test_fill_uniform(&r, w6, 6, 0.5f, 1.5f);
  vt_test_fill_uniform(&r, b6, 6, -1, 1);
  vt_test_fill_uniform(&r, w4, 4, 0.5f, 1.5f);
  vt_test_fill_uniform(&r, g2, 2, 0.5f, 1.5f);
  vt_gc_input in[6] = {{VT_F32, 3, {2, 4, 6}, x, true}, {VT_F32, 1, {6}, w6, true},
                       {VT_F32, 1, {6}, b6, true},      {VT_F32, 1, {4}, w4, true},
                       {VT_I32, 1, {2}, pos, false},    {VT_F32, 1, {2}, g2, true}};
  CHECK_GRAD("norm ops with shared inputs", g_shared, NULL, in, 6);
}

/* An op given a bad shape records an error naming the op and the shapes, returns the error
 * tensor, and later ops pass it through without crashing. */
static void expect_error(vt_ctx *ctx, const char *what, const char *s1, const char *s2) {
  const char *e = vt_ctx_error(ctx);
  CHECK_MSG(vt_ctx_failed(ctx) && strstr(e, what) && strstr(e, s1) && (!s2 || strstr(e, s2)),
            "error for %s: \"%s\"", what, e);
  vt_ctx_clear_error(ctx);
}

static void test_errors(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *x = vt_zeros(ctx, VT_F32, 3, (int64_t[]){2, 3, 8});
  vt_tensor *w7 = vt_zeros(ctx, VT_F32, 1, (int64_t[]){7});
  vt_tensor *out = vt_layer_norm(ctx, x, w7, NULL, 1e-5f);
  /* a failed ctx passes the error tensor through the next ops */
  out = vt_rms_norm(ctx, out, NULL, 1e-6f);
  expect_error(ctx, "layer_norm", "[2, 3, 8]", "[7]");
  vt_rms_norm(ctx, x, w7, 1e-6f);
  expect_error(ctx, "rms_norm", "[2, 3, 8]", "[7]");
  vt_group_norm(ctx, x, 2, NULL, NULL, 1e-5f);
  expect_error(ctx, "group_norm", "[2, 3, 8]", "2 groups");
  vt_batch_norm1d(ctx, x, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f);
  expect_error(ctx, "batch_norm1d", "[2, 3, 8]", "running");
  vt_tensor *one = vt_zeros(ctx, VT_F32, 2, (int64_t[]){1, 3});
  vt_batch_norm1d(ctx, one, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f);
  expect_error(ctx, "batch_norm1d", "[1, 3]", "more than 1 value");
  vt_tensor *q = vt_zeros(ctx, VT_F32, 4, (int64_t[]){2, 5, 3, 8});
  vt_tensor *pos = vt_zeros(ctx, VT_I32, 1, (int64_t[]){4});
  vt_rope(ctx, q, pos, 1e4f, VT_ROPE_BTHD);
  expect_error(ctx, "rope", "[2, 5, 3, 8]", "[4] i32");
  vt_weight_norm(ctx, w7, x);
  expect_error(ctx, "weight_norm", "[7]", "[2, 3, 8]");
  vt_vq_ste(ctx, x, w7, NULL);
  expect_error(ctx, "vq_ste", "[2, 3, 8]", "[7]");
  vt_dropout_seeded(ctx, x, 1.5f, true, 0, 0);
  expect_error(ctx, "dropout", "1.5", "[2, 3, 8]");

  /* A backend without the norm family reports instead of crashing. */
  const vt_backend *real = ctx->be;
  vt_backend fake = *real;
  fake.name = "fake";
  fake.norm = NULL;
  ctx->be = &fake;
  vt_layer_norm(ctx, x, NULL, NULL, 1e-5f);
  expect_error(ctx, "layer_norm",
               "not supported on the fake backend (no kernels of the norm family)", NULL);
  vt_dropout_seeded(ctx, x, 0.5f, true, 1, 0);
  expect_error(ctx, "dropout", "not supported on the fake backend (no kernels of the norm family)",
               NULL);
  ctx->be = real;
  vt_ctx_free(ctx);
}

int main(void) {
  test_dropout();
  test_shared_inputs();
  test_errors();
  return vt_test_finish("test_ops_norm");
}
