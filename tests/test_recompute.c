// ctest-labels: unit grad
/* Activation recompute: a residual GELU stack gives bit-identical losses and gradients with
 * and without recompute, holds less activation memory with it, and its backward passes a
 * finite-difference check. */
#include <stdlib.h>
#include <string.h>

#include "autograd/recompute.h"
#include "tests/gradcheck.h"

enum { L = 6, B = 32, D = 64 };

typedef struct {
  vt_tensor *w, *b;
} layer;

/* in[0] is the activation; with three inputs, in[1] and in[2] replace the layer's w and b */
static vt_tensor *layer_fwd(vt_ctx *ctx, vt_tensor *const *in, int n_in, void *user) {
  layer *l = user;
  vt_tensor *w = n_in == 3 ? in[1] : l->w, *b = n_in == 3 ? in[2] : l->b;
  vt_tensor *h = vt_gelu_erf(ctx, vt_add(ctx, vt_matmul(ctx, in[0], w, false, true), b));
  return vt_add(ctx, h, in[0]);
}

static float run(vt_ctx *ctx, vt_params *ps, layer *ls, const float *x, bool recompute,
                 float *grad_x, size_t *high_water) {
  vt_tensor *h = vt_from_host(ctx, VT_F32, 2, (int64_t[]){B, D}, x);
  vt_tensor *x0 = h;
  vt_requires_grad(ctx, h);
  for (int i = 0; i < L; i++)
    h = recompute ? vt_recompute(ctx, layer_fwd, &ls[i], 1, &h) : layer_fwd(ctx, &h, 1, &ls[i]);
  vt_tensor *loss = vt_mean(ctx, vt_mul(ctx, h, h), VT_ALL_AXES, false);
  float l = vt_item(ctx, loss);
  vt_params_zero_grad(ps);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  vt_grad_to_host(ctx, x0, grad_x);
  *high_water = vt_ctx_arena_high_water(ctx);
  vt_ctx_reset(ctx);
  return l;
}

static vt_tensor *gc_graph(vt_ctx *ctx, vt_tensor **in, void *user) {
  vt_tensor *h = vt_recompute(ctx, layer_fwd, user, 3, in);
  vt_tensor *in2[3] = {h, in[1], in[2]};
  return vt_recompute(ctx, layer_fwd, user, 3, in2);
}

/* w captured from outside the segment without being an input: refused, not corrupted */
static vt_tensor *captured(vt_ctx *ctx, vt_tensor *const *in, int n_in, void *user) {
  (void)n_in;
  return vt_mul(ctx, in[0], (vt_tensor *)user);
}

int main(void) {
  vt_params ps;
  char err[128];
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  layer ls[L];
  for (int i = 0; i < L; i++) {
    char name[64];
    snprintf(name, sizeof name, "layers.%d.weight", i);
    ls[i].w = vt_params_add(&ps, name, VT_F32, 2, (int64_t[]){D, D}, err, sizeof err);
    snprintf(name, sizeof name, "layers.%d.bias", i);
    ls[i].b = vt_params_add(&ps, name, VT_F32, 1, (int64_t[]){D}, err, sizeof err);
  }
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng r;
  vt_rng_seed(&r, 3);
  vt_test_fill_uniform(&r, ps.data[VT_F32], (long)ps.numel[VT_F32], -0.1f, 0.1f);
  float x[B * D], gx_plain[B * D], gx_rc[B * D];
  vt_test_fill_uniform(&r, x, B * D, -1, 1);
  size_t n = ps.grad_numel;
  float *g_plain = malloc(sizeof(float) * n);

  /* separate contexts so each high-water mark is its own */
  vt_ctx *c1 = vt_test_cpu_ctx(), *c2 = vt_test_cpu_ctx();
  size_t hw_plain, hw_rc;
  float l_plain = run(c1, &ps, ls, x, false, gx_plain, &hw_plain);
  memcpy(g_plain, ps.grad, sizeof(float) * n);
  float l_rc = run(c2, &ps, ls, x, true, gx_rc, &hw_rc);
  CHECK(l_plain == l_rc);
  CHECK(memcmp(g_plain, ps.grad, sizeof(float) * n) == 0);
  CHECK(memcmp(gx_plain, gx_rc, sizeof gx_plain) == 0);
  printf("arena high-water: %zu bytes plain, %zu with recompute\n", hw_plain, hw_rc);
  CHECK_MSG(hw_rc * 2 < hw_plain, "recompute should hold far fewer activations");
  CHECK(vt_tape_len(c2) == 0);
  vt_ctx_free(c1);
  vt_ctx_free(c2);

  /* finite differences through two recomputed segments, w and b as plain inputs */
  layer gl = {0};
  float xs[4 * 8], ws[8 * 8], bs[8];
  vt_test_fill_uniform(&r, xs, 32, -1, 1);
  vt_test_fill_uniform(&r, ws, 64, -0.5f, 0.5f);
  vt_test_fill_uniform(&r, bs, 8, -0.5f, 0.5f);
  vt_gc_input in[3] = {
      {VT_F32, 2, {4, 8}, xs, true}, {VT_F32, 2, {8, 8}, ws, true}, {VT_F32, 1, {8}, bs, true}};
  CHECK_GRAD("recompute", gc_graph, &gl, in, 3);

  vt_ctx *c3 = vt_test_cpu_ctx();
  vt_tensor *a = vt_from_host(c3, VT_F32, 1, (int64_t[]){4}, xs);
  vt_tensor *w = vt_from_host(c3, VT_F32, 1, (int64_t[]){4}, ws);
  vt_requires_grad(c3, a);
  vt_requires_grad(c3, w);
  CHECK(!vt_backward(c3, vt_sum(c3, vt_recompute(c3, captured, w, 1, &a), VT_ALL_AXES, false)));
  CHECK(strstr(vt_ctx_error(c3), "pass it as an input") != NULL);
  vt_ctx_free(c3);
  free(g_plain);
  vt_params_free(&ps);
  return vt_test_finish("test_recompute");
}
