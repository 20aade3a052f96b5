// ctest-labels: unit
/* The tape and its error handling: bad shapes, dtypes and indices become a sticky ctx error
 * naming the op and the shapes (no abort), later ops pass the error through, and gradients
 * accumulate into parameters across backward passes until zeroed. */
#include <string.h>

#include "tests/testutil.h"

static vt_tensor *f32(vt_ctx *ctx, int ndim, const int64_t *shape) {
  vt_tensor *t = vt_full(ctx, ndim, shape, 0.5f);
  return t;
}

/* Runs the op, expects a ctx error containing every fragment, clears it. */
#define EXPECT_ERROR(ctx, expr, ...)                                                               \
  do {                                                                                             \
    vt_tensor *r_ = (expr);                                                                        \
    (void)r_;                                                                                      \
    CHECK_MSG(vt_ctx_failed(ctx), "%s did not fail", #expr);                                       \
    const char *frags_[] = {__VA_ARGS__};                                                          \
    for (size_t k_ = 0; k_ < sizeof frags_ / sizeof frags_[0]; k_++)                               \
      CHECK_MSG(strstr(vt_ctx_error(ctx), frags_[k_]) != NULL, "'%s' lacks '%s'",                  \
                vt_ctx_error(ctx), frags_[k_]);                                                    \
    vt_ctx_clear_error(ctx);                                                                       \
  } while (0)

int main(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *a = f32(ctx, 2, (int64_t[]){2, 3}), *b = f32(ctx, 1, (int64_t[]){4});
  EXPECT_ERROR(ctx, vt_add(ctx, a, b), "add:", "[2, 3] f32", "[4] f32", "broadcast");
  EXPECT_ERROR(ctx, vt_matmul(ctx, a, f32(ctx, 2, (int64_t[]){4, 5}), false, false),
               "matmul:", "[2, 3] f32", "[4, 5] f32");
  EXPECT_ERROR(ctx, vt_matmul(ctx, b, a, false, false), "matmul:", "at least 2 dims");
  int32_t ids[3] = {0, 7, 1};
  vt_tensor *it = vt_from_host(ctx, VT_I32, 1, (int64_t[]){3}, ids);
  EXPECT_ERROR(ctx, vt_gelu_erf(ctx, it), "gelu_erf:", "expected dtype f32", "i32");
  EXPECT_ERROR(ctx, vt_embedding(ctx, f32(ctx, 2, (int64_t[]){5, 4}), it),
               "embedding:", "index 7 at position 1", "[0, 5)");
  EXPECT_ERROR(ctx, vt_index_select(ctx, a, 1, it), "index_select:", "index 7");
  EXPECT_ERROR(ctx, vt_index_select(ctx, a, 2, it), "index_select:", "axis 2 out of range");
  EXPECT_ERROR(ctx, vt_reshape(ctx, a, 2, (int64_t[]){4, 2}), "reshape:", "[2, 3] f32");
  EXPECT_ERROR(ctx, vt_slice(ctx, a, 1, 2, 4), "slice:", "[2, 4)", "[2, 3] f32");
  EXPECT_ERROR(ctx, vt_permute(ctx, a, (int[]){0, 0}), "permute:", "invalid");
  vt_tensor *cat[2] = {a, b};
  EXPECT_ERROR(ctx, vt_concat(ctx, cat, 2, 0), "concat:", "input 1 [4] f32");
  EXPECT_ERROR(ctx, vt_sum(ctx, a, -3, false), "sum:", "axis -3");

  /* sticky: the first error wins and later ops pass the error tensor through */
  vt_tensor *bad = vt_add(ctx, a, b);
  vt_tensor *later = vt_relu(ctx, vt_mul(ctx, bad, bad));
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "add:") == vt_ctx_error(ctx));
  CHECK(isnan(vt_item(ctx, later)));
  CHECK(!vt_backward(ctx, later));
  CHECK(strstr(vt_ctx_error(ctx), "test_tape.c") == NULL); /* file:line of the op, not ours */
  CHECK(strstr(vt_ctx_error(ctx), "ops_elementwise.c:") != NULL);
  vt_ctx_clear_error(ctx);
  CHECK(!vt_ctx_failed(ctx) && vt_ctx_error(ctx)[0] == '\0');
  vt_ctx_reset(ctx);

  /* gradients accumulate into parameters across backward passes until zeroed */
  vt_params ps;
  char err[128];
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_tensor *w = vt_params_add(&ps, "w", VT_F32, 1, (int64_t[]){3}, err, sizeof err);
  vt_tensor *frozen = vt_params_add(&ps, "frozen.w", VT_F32, 1, (int64_t[]){3}, err, sizeof err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_params_set_trainable(&ps, "frozen.*", false) == 1);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  float wv[3] = {1, -2, 3}, g[3];
  memcpy(w->data, wv, sizeof wv);
  for (int pass = 1; pass <= 2; pass++) {
    vt_tensor *x = vt_from_host(ctx, VT_F32, 1, (int64_t[]){3}, (float[]){2, 3, 4});
    vt_tensor *loss =
        vt_sum(ctx, vt_mul(ctx, vt_mul(ctx, w, x), vt_add(ctx, w, frozen)), VT_ALL_AXES, false);
    CHECK(vt_backward(ctx, loss));
    vt_grad_to_host(ctx, w, g);
    /* d/dw sum(w * x * w) = 2 w x (frozen is zero), accumulated pass times */
    CHECK(g[0] == pass * 4.0f && g[1] == pass * -12.0f && g[2] == pass * 24.0f);
    vt_ctx_reset(ctx);
  }
  CHECK(frozen->grad == NULL);
  vt_params_zero_grad(&ps);
  vt_grad_to_host(ctx, w, g);
  CHECK(g[0] == 0 && g[1] == 0 && g[2] == 0);
  CHECK(vt_params_find(&ps, "frozen.w")->trainable == false);
  vt_params_free(&ps);

  /* the loss must be a single value */
  vt_tensor *v = vt_from_host(ctx, VT_F32, 1, (int64_t[]){2}, (float[]){1, 2});
  vt_requires_grad(ctx, v);
  CHECK(!vt_backward(ctx, vt_scale(ctx, v, 2)));
  CHECK(strstr(vt_ctx_error(ctx), "single f32 value") != NULL);
  vt_ctx_free(ctx);
  return vt_test_finish("test_tape");
}
