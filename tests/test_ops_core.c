// ctest-labels: unit grad
/* The core ops of issue 2 against PyTorch (tests/reference/gen_core_fixtures.py): forward
 * values and the gradients of sum(out * linspace(-1, 1)) for every input, then a
 * finite-difference check of each op's backward on the same inputs. */
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"
#include "tests/gradcheck.h"

typedef vt_tensor *(*graph_fn)(vt_ctx *ctx, vt_tensor **in, void *user);

static vt_tensor *g_mm_nn(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_matmul(c, in[0], in[1], false, false);
}
static vt_tensor *g_mm_nt(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_matmul(c, in[0], in[1], false, true);
}
static vt_tensor *g_mm_tn(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_matmul(c, in[0], in[1], true, false);
}
static vt_tensor *g_mm_tt(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_matmul(c, in[0], in[1], true, true);
}
static vt_tensor *g_add(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_add(c, in[0], in[1]);
}
static vt_tensor *g_sub(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_sub(c, in[0], in[1]);
}
static vt_tensor *g_mul(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_mul(c, in[0], in[1]);
}
static vt_tensor *g_div(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_div(c, in[0], in[1]);
}
static vt_tensor *g_scale(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_scale(c, in[0], 0.75f);
}
static vt_tensor *g_sum_axis(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_sum(c, in[0], 1, false);
}
static vt_tensor *g_mean_axis(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_mean(c, in[0], -1, true);
}
static vt_tensor *g_max_axis(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_max(c, in[0], 0, false);
}
static vt_tensor *g_sum_all(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_sum(c, in[0], VT_ALL_AXES, false);
}
static vt_tensor *g_mean_all(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_mean(c, in[0], VT_ALL_AXES, false);
}
static vt_tensor *g_gelu_tanh(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_gelu_tanh(c, in[0]);
}
static vt_tensor *g_gelu_erf(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_gelu_erf(c, in[0]);
}
static vt_tensor *g_silu(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_silu(c, in[0]);
}
static vt_tensor *g_relu(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_relu(c, in[0]);
}
static vt_tensor *g_softmax(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_softmax(c, in[0]);
}
static vt_tensor *g_log_softmax(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_log_softmax(c, in[0]);
}
static vt_tensor *g_permute(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_permute(c, in[0], (int[]){2, 0, 1});
}
static vt_tensor *g_concat(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_concat(c, in, 2, 1);
}
static vt_tensor *g_slice(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_slice(c, in[0], 1, 1, 3);
}
static vt_tensor *g_index_select(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_index_select(c, in[0], 1, in[1]);
}
static vt_tensor *g_index_copy(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_index_copy(c, in[0], 0, in[1], in[2]);
}
static vt_tensor *g_index_add(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_index_add(c, in[0], 0, in[1], in[2]);
}
static vt_tensor *g_embedding(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  return vt_embedding(c, in[0], in[1]);
}
/* reshape and transpose have no torch case of their own: checked through a chain */
static vt_tensor *g_reshape_chain(vt_ctx *c, vt_tensor **in, void *u) {
  (void)u;
  vt_tensor *x = vt_reshape(c, in[0], 2, (int64_t[]){4, -1});
  return vt_transpose(c, vt_mul(c, x, x), 0, 1);
}

typedef struct {
  const char *name;
  graph_fn fn;
  int n_in;
} op_case;

static const op_case cases[] = {
    {"matmul_nn", g_mm_nn, 2},
    {"matmul_nt", g_mm_nt, 2},
    {"matmul_tn", g_mm_tn, 2},
    {"matmul_tt", g_mm_tt, 2},
    {"matmul_shared", g_mm_nt, 2},
    {"matmul_shared_t", g_mm_tn, 2},
    {"add_bcast", g_add, 2},
    {"sub_bcast", g_sub, 2},
    {"mul_bcast", g_mul, 2},
    {"div_bcast", g_div, 2},
    {"scale", g_scale, 1},
    {"sum_axis", g_sum_axis, 1},
    {"mean_axis", g_mean_axis, 1},
    {"max_axis", g_max_axis, 1},
    {"sum_all", g_sum_all, 1},
    {"mean_all", g_mean_all, 1},
    {"gelu_tanh", g_gelu_tanh, 1},
    {"gelu_erf", g_gelu_erf, 1},
    {"silu", g_silu, 1},
    {"relu", g_relu, 1},
    {"softmax", g_softmax, 1},
    {"log_softmax", g_log_softmax, 1},
    {"permute", g_permute, 1},
    {"concat", g_concat, 2},
    {"slice", g_slice, 1},
    {"index_select", g_index_select, 2},
    {"index_copy", g_index_copy, 3},
    {"index_add", g_index_add, 3},
    {"embedding", g_embedding, 2},
};

static void input_from_fixture(const vt_fixture_tensor *t, vt_gc_input *in) {
  memset(in, 0, sizeof *in);
  in->dtype = t->is_int ? VT_I32 : VT_F32;
  in->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) in->shape[d] = t->shape[d];
  size_t bytes = (size_t)t->n * 4;
  in->host = malloc(bytes);
  memcpy(in->host, t->is_int ? (void *)t->i : (void *)t->f, bytes);
  in->diff = !t->is_int;
}

/* f32 tolerance for values that went through a few roundings: a relative error of some
 * hundred ulps plus an absolute floor for results that cancel to near zero. */
#define ATOL (64 * 1.1920929e-7)
#define RTOL (64 * 1.1920929e-7)

static void check_against_torch(const vt_fixture *fx, const op_case *c) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *in[VT_GC_MAX_IN];
  char key[160];
  for (int i = 0; i < c->n_in; i++) {
    snprintf(key, sizeof key, "%s.in%d", c->name, i);
    const vt_fixture_tensor *t = vt_fixture_get(fx, key);
    int64_t shape[VT_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    in[i] = vt_from_host(ctx, t->is_int ? VT_I32 : VT_F32, t->ndim, shape,
                         t->is_int ? (void *)t->i : (void *)t->f);
    if (!t->is_int) vt_requires_grad(ctx, in[i]);
  }
  vt_tensor *out = c->fn(ctx, in, NULL);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s: %s", c->name, vt_ctx_error(ctx));
  if (vt_ctx_failed(ctx)) {
    vt_ctx_free(ctx);
    return;
  }
  snprintf(key, sizeof key, "%s.out", c->name);
  const vt_fixture_tensor *want = vt_fixture_get(fx, key);
  CHECK_MSG(vt_numel(out) == want->n, "%s: %lld elements, torch has %ld", c->name,
            (long long)vt_numel(out), want->n);
  float *got = malloc(sizeof(float) * (size_t)want->n);
  vt_to_host(ctx, out, got);
  CHECK_CLOSE(key, got, want->f, want->n, ATOL, RTOL);
  float *w = malloc(sizeof(float) * (size_t)want->n);
  for (long i = 0; i < want->n; i++)
    w[i] = want->n > 1 ? -1.0f + 2.0f * (float)i / (float)(want->n - 1) : -1.0f;
  vt_tensor *wt = vt_from_host(ctx, VT_F32, out->ndim, out->shape, w);
  CHECK(vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, out, wt), VT_ALL_AXES, false)));
  for (int i = 0; i < c->n_in; i++) {
    if (in[i]->dtype != VT_F32) continue;
    snprintf(key, sizeof key, "%s.grad%d", c->name, i);
    const vt_fixture_tensor *g = vt_fixture_get(fx, key);
    float *dx = malloc(sizeof(float) * (size_t)g->n);
    vt_grad_to_host(ctx, in[i], dx);
    CHECK_CLOSE(key, dx, g->f, g->n, ATOL, RTOL);
    free(dx);
  }
  free(got);
  free(w);
  vt_ctx_free(ctx);
}

static void gradcheck_case(const vt_fixture *fx, const op_case *c) {
  vt_gc_input in[VT_GC_MAX_IN];
  char key[160];
  for (int i = 0; i < c->n_in; i++) {
    snprintf(key, sizeof key, "%s.in%d", c->name, i);
    input_from_fixture(vt_fixture_get(fx, key), &in[i]);
  }
  CHECK_GRAD(c->name, c->fn, NULL, in, c->n_in);
  for (int i = 0; i < c->n_in; i++) free(in[i].host);
}

int main(void) {
  vt_fixture *fx = vt_fixture_load("ops/core.txt");
  int n = (int)(sizeof cases / sizeof cases[0]);
  for (int i = 0; i < n; i++) {
    check_against_torch(fx, &cases[i]);
    gradcheck_case(fx, &cases[i]);
  }
  /* a view and a transpose in a chain */
  float x[12];
  vt_rng r;
  vt_rng_seed(&r, 7);
  vt_test_fill_uniform(&r, x, 12, -2, 2);
  vt_gc_input in = {VT_F32, 2, {3, 4}, x, true};
  CHECK_GRAD("reshape_chain", g_reshape_chain, NULL, &in, 1);
  vt_fixture_free(fx);
  return vt_test_finish("test_ops_core");
}
