// ctest-labels: cuda
/* The CUDA backend against the CPU backend: every op of autograd/ops.h runs the same graph
 * forward and backward on both devices (loss = sum(out * w) with fixed random w), and the
 * outputs and input gradients must agree within tolerances derived from f32 (the longest sum
 * behind an element times FLT_EPSILON). Shapes are chosen to reach every kernel path (warp,
 * block and thread variants, chunked broadcast gradients, repeated indices). Also: an
 * out-of-range index on the GPU is a ctx error, and GEMM edge cases of the backend itself.
 * Without a GPU the test reports itself skipped (exit code 77).
 * VT_CUDA_TEST_ON_CPU=1 runs the harness CPU against CPU, to check the test itself. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

#define MAX_IN 4

typedef struct {
  vt_dtype dtype; /* VT_F32, VT_I32 or VT_I64 */
  int ndim;
  int64_t shape[VT_MAX_DIMS];
  float lo, hi; /* f32: uniform in [lo, hi); integers: uniform in [lo, hi) */
  bool grad;    /* f32 input differentiated */
  float quant;  /* f32: round to multiples of this (ties for max); 0 = off */
} input_spec;

typedef vt_tensor *(*build_fn)(vt_ctx *ctx, vt_tensor **in);
typedef void (*prepare_fn)(void **host);

typedef struct {
  const char *name;
  build_fn build;
  int64_t terms; /* longest sum behind an output or gradient element */
  int n_in;
  input_spec in[MAX_IN];
  prepare_fn prepare; /* optional: plants NaNs, -inf, exact values */
} op_case;

/* What one device produced. */
typedef struct {
  bool ok;
  vt_dtype dtype;
  int64_t numel;
  void *out;
  float *grad[MAX_IN];
} result;

static int64_t spec_numel(const input_spec *s) { return vt_shape_numel(s->ndim, s->shape); }

/* Closeness where NaN matches NaN and infinities must be equal. */
static bool close_nan(const char *what, const float *got, const float *want, int64_t n,
                      double tol) {
  int shown = 0;
  bool ok = true;
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], w = want[i];
    bool same = (isnan(g) && isnan(w)) || g == w || fabs(g - w) <= tol + tol * fabs(w);
    if (!same) {
      ok = false;
      if (shown++ < 5)
        fprintf(stderr, "  %s[%lld]: cuda %.9g cpu %.9g (err %.3g, tol %.3g)\n", what, (long long)i,
                g, w, fabs(g - w), tol + tol * fabs(w));
    }
  }
  return ok;
}

static result run_on(vt_ctx *ctx, const op_case *c, void **host, float **w) {
  result r = {0};
  vt_tensor *in[MAX_IN];
  bool any_grad = false;
  for (int k = 0; k < c->n_in; k++) {
    const input_spec *s = &c->in[k];
    in[k] = vt_from_host(ctx, s->dtype, s->ndim, s->shape, host[k]);
    if (s->grad) vt_requires_grad(ctx, in[k]);
    any_grad |= s->grad;
  }
  vt_tensor *out = c->build(ctx, in);
  if (vt_ctx_failed(ctx)) {
    fprintf(stderr, "  %s on %s: %s\n", c->name, vt_ctx_backend(ctx)->name, vt_ctx_error(ctx));
    vt_ctx_clear_error(ctx);
    vt_ctx_reset(ctx);
    return r;
  }
  r.dtype = out->dtype;
  r.numel = vt_numel(out);
  r.out = malloc(vt_nbytes(out) + 1);
  vt_to_host(ctx, out, r.out);
  if (any_grad && out->dtype == VT_F32) {
    if (!*w) { /* the same weights on both devices */
      vt_rng rng;
      vt_rng_seed(&rng, 99);
      *w = malloc((size_t)r.numel * sizeof(float) + 1);
      vt_test_fill_uniform(&rng, *w, (long)r.numel, -1.0f, 1.0f);
    }
    vt_tensor *wt = vt_from_host(ctx, VT_F32, out->ndim, out->shape, *w);
    vt_tensor *loss = vt_sum(ctx, vt_mul(ctx, out, wt), VT_ALL_AXES, false);
    vt_backward(ctx, loss);
    for (int k = 0; k < c->n_in; k++)
      if (c->in[k].grad) {
        r.grad[k] = malloc((size_t)spec_numel(&c->in[k]) * sizeof(float) + 1);
        vt_grad_to_host(ctx, in[k], r.grad[k]);
      }
  }
  vt_ctx_backend(ctx)->synchronize(vt_ctx_backend(ctx));
  if (vt_ctx_failed(ctx)) {
    fprintf(stderr, "  %s backward on %s: %s\n", c->name, vt_ctx_backend(ctx)->name,
            vt_ctx_error(ctx));
    vt_ctx_clear_error(ctx);
  } else {
    r.ok = true;
  }
  vt_ctx_reset(ctx);
  return r;
}

static void result_free(result *r) {
  free(r->out);
  for (int k = 0; k < MAX_IN; k++) free(r->grad[k]);
}

static void run_case(vt_ctx *cpu, vt_ctx *gpu, const op_case *c, uint64_t seed) {
  vt_rng rng;
  vt_rng_seed(&rng, seed);
  void *host[MAX_IN];
  for (int k = 0; k < c->n_in; k++) {
    const input_spec *s = &c->in[k];
    int64_t n = spec_numel(s);
    host[k] = malloc((size_t)n * vt_dtype_size(s->dtype) + 1);
    for (int64_t i = 0; i < n; i++) {
      float u = s->lo + (s->hi - s->lo) * vt_rng_uniform(&rng);
      if (s->dtype == VT_F32) {
        ((float *)host[k])[i] = s->quant > 0 ? s->quant * roundf(u / s->quant) : u;
      } else {
        int64_t v = (int64_t)floorf(u);
        if (v >= (int64_t)s->hi) v = (int64_t)s->hi - 1;
        if (s->dtype == VT_I32)
          ((int32_t *)host[k])[i] = (int32_t)v;
        else
          ((int64_t *)host[k])[i] = v;
      }
    }
  }
  if (c->prepare) c->prepare(host);
  float *w = NULL;
  result want = run_on(cpu, c, host, &w);
  result got = run_on(gpu, c, host, &w);
  CHECK_MSG(want.ok && got.ok, "%s did not run", c->name);
  if (want.ok && got.ok) {
    double tol = 16.0 * FLT_EPSILON * (double)(c->terms > 1 ? c->terms : 1);
    char what[128];
    CHECK_MSG(want.dtype == got.dtype && want.numel == got.numel, "%s: output differs in shape",
              c->name);
    snprintf(what, sizeof what, "%s out", c->name);
    if (want.dtype == VT_F32)
      CHECK_MSG(close_nan(what, got.out, want.out, want.numel, tol), "%s", what);
    else /* conversions share one definition: bit-exact */
      CHECK_MSG(!memcmp(got.out, want.out, (size_t)want.numel * vt_dtype_size(want.dtype)), "%s",
                what);
    for (int k = 0; k < c->n_in; k++) {
      if (!c->in[k].grad || want.dtype != VT_F32) continue;
      snprintf(what, sizeof what, "%s grad of input %d", c->name, k);
      CHECK_MSG(close_nan(what, got.grad[k], want.grad[k], spec_numel(&c->in[k]), tol), "%s", what);
    }
  }
  result_free(&want);
  result_free(&got);
  free(w);
  for (int k = 0; k < c->n_in; k++) free(host[k]);
}

/* ---- graphs ---------------------------------------------------------------------------- */

static vt_tensor *mm_nn(vt_ctx *c, vt_tensor **x) { return vt_matmul(c, x[0], x[1], false, false); }
static vt_tensor *mm_nt(vt_ctx *c, vt_tensor **x) { return vt_matmul(c, x[0], x[1], false, true); }
static vt_tensor *mm_tn(vt_ctx *c, vt_tensor **x) { return vt_matmul(c, x[0], x[1], true, false); }
static vt_tensor *mm_tt(vt_ctx *c, vt_tensor **x) { return vt_matmul(c, x[0], x[1], true, true); }
static vt_tensor *add(vt_ctx *c, vt_tensor **x) { return vt_add(c, x[0], x[1]); }
static vt_tensor *sub(vt_ctx *c, vt_tensor **x) { return vt_sub(c, x[0], x[1]); }
static vt_tensor *mul(vt_ctx *c, vt_tensor **x) { return vt_mul(c, x[0], x[1]); }
static vt_tensor *dvd(vt_ctx *c, vt_tensor **x) { return vt_div(c, x[0], x[1]); }
static vt_tensor *scale(vt_ctx *c, vt_tensor **x) { return vt_scale(c, x[0], -1.75f); }
static vt_tensor *gelu_tanh(vt_ctx *c, vt_tensor **x) { return vt_gelu_tanh(c, x[0]); }
static vt_tensor *gelu_erf(vt_ctx *c, vt_tensor **x) { return vt_gelu_erf(c, x[0]); }
static vt_tensor *silu(vt_ctx *c, vt_tensor **x) { return vt_silu(c, x[0]); }
static vt_tensor *relu(vt_ctx *c, vt_tensor **x) { return vt_relu(c, x[0]); }
static vt_tensor *leaky(vt_ctx *c, vt_tensor **x) { return vt_leaky_relu(c, x[0], 0.1f); }
static vt_tensor *tanh_(vt_ctx *c, vt_tensor **x) { return vt_tanh(c, x[0]); }
static vt_tensor *sigmoid(vt_ctx *c, vt_tensor **x) { return vt_sigmoid(c, x[0]); }
static vt_tensor *sum_all(vt_ctx *c, vt_tensor **x) { return vt_sum(c, x[0], VT_ALL_AXES, false); }
static vt_tensor *sum_0(vt_ctx *c, vt_tensor **x) { return vt_sum(c, x[0], 0, false); }
static vt_tensor *sum_1k(vt_ctx *c, vt_tensor **x) { return vt_sum(c, x[0], 1, true); }
static vt_tensor *sum_last(vt_ctx *c, vt_tensor **x) { return vt_sum(c, x[0], -1, false); }
static vt_tensor *mean_all(vt_ctx *c, vt_tensor **x) {
  return vt_mean(c, x[0], VT_ALL_AXES, false);
}
static vt_tensor *mean_0(vt_ctx *c, vt_tensor **x) { return vt_mean(c, x[0], 0, true); }
static vt_tensor *mean_1(vt_ctx *c, vt_tensor **x) { return vt_mean(c, x[0], 1, false); }
static vt_tensor *max_all(vt_ctx *c, vt_tensor **x) { return vt_max(c, x[0], VT_ALL_AXES, false); }
static vt_tensor *max_0(vt_ctx *c, vt_tensor **x) { return vt_max(c, x[0], 0, false); }
static vt_tensor *max_1(vt_ctx *c, vt_tensor **x) { return vt_max(c, x[0], 1, true); }
static vt_tensor *max_last(vt_ctx *c, vt_tensor **x) { return vt_max(c, x[0], -1, false); }
static vt_tensor *softmax(vt_ctx *c, vt_tensor **x) { return vt_softmax(c, x[0]); }
static vt_tensor *log_softmax(vt_ctx *c, vt_tensor **x) { return vt_log_softmax(c, x[0]); }

static vt_tensor *reshape(vt_ctx *c, vt_tensor **x) {
  /* a view, then an op on the view, so the gradient flows through the reshape */
  return vt_scale(c, vt_reshape(c, x[0], 3, (int64_t[]){2, -1, 3}), 2.0f);
}
static vt_tensor *permute(vt_ctx *c, vt_tensor **x) {
  return vt_permute(c, x[0], (int[]){3, 1, 0, 2});
}
static vt_tensor *transpose(vt_ctx *c, vt_tensor **x) { return vt_transpose(c, x[0], 0, 2); }
static vt_tensor *concat(vt_ctx *c, vt_tensor **x) { return vt_concat(c, x, 3, 1); }
static vt_tensor *slice(vt_ctx *c, vt_tensor **x) { return vt_slice(c, x[0], 1, 2, 7); }
static vt_tensor *index_select(vt_ctx *c, vt_tensor **x) {
  return vt_index_select(c, x[0], 1, x[1]);
}
static vt_tensor *index_copy(vt_ctx *c, vt_tensor **x) {
  return vt_index_copy(c, x[0], 1, x[1], x[2]);
}
static vt_tensor *index_add(vt_ctx *c, vt_tensor **x) {
  return vt_index_add(c, x[0], 0, x[1], x[2]);
}
static vt_tensor *embedding(vt_ctx *c, vt_tensor **x) { return vt_embedding(c, x[0], x[1]); }
static vt_tensor *cast_f32(vt_ctx *c, vt_tensor **x) { return vt_cast(c, x[0], VT_F32); }
static vt_tensor *cast_bf16(vt_ctx *c, vt_tensor **x) { return vt_cast(c, x[0], VT_BF16); }
static vt_tensor *cast_f16(vt_ctx *c, vt_tensor **x) { return vt_cast(c, x[0], VT_F16); }
static vt_tensor *cast_i32(vt_ctx *c, vt_tensor **x) { return vt_cast(c, x[0], VT_I32); }
static vt_tensor *cast_i64(vt_ctx *c, vt_tensor **x) { return vt_cast(c, x[0], VT_I64); }
static vt_tensor *cast_bf16_f32(vt_ctx *c, vt_tensor **x) {
  return vt_cast(c, vt_cast(c, x[0], VT_BF16), VT_F32);
}
static vt_tensor *cast_f16_f32(vt_ctx *c, vt_tensor **x) {
  return vt_cast(c, vt_cast(c, x[0], VT_F16), VT_F32);
}
static vt_tensor *permute_bf16(vt_ctx *c, vt_tensor **x) {
  return vt_permute(c, vt_cast(c, x[0], VT_BF16), (int[]){2, 0, 1});
}
static vt_tensor *slice_i64(vt_ctx *c, vt_tensor **x) {
  return vt_transpose(c, vt_slice(c, vt_cast(c, x[0], VT_I64), 0, 1, 3), 0, 1);
}
static vt_tensor *concat_i32(vt_ctx *c, vt_tensor **x) { return vt_concat(c, x, 2, 0); }
static vt_tensor *mlp(vt_ctx *c, vt_tensor **x) {
  vt_tensor *h = vt_gelu_tanh(c, vt_add(c, vt_matmul(c, x[0], x[1], false, false), x[2]));
  return vt_log_softmax(c, vt_matmul(c, h, x[3], false, true));
}

/* ---- planted values --------------------------------------------------------------------- */

/* [4, 40] over the last axis: a row of ties, a row with two NaNs, a row of -inf, a free row. */
static void plant_max(void **host) {
  float *x = host[0];
  for (int j = 0; j < 40; j++) {
    x[j] = 0.5f;
    x[80 + j] = -INFINITY;
  }
  x[40 + 17] = NAN;
  x[40 + 30] = NAN;
}

/* [4, 10]: row 1 partly -inf, row 2 fully -inf (NaN on both devices), row 3 has a +large. */
static void plant_softmax(void **host) {
  float *x = host[0];
  for (int j = 0; j < 10; j++) x[20 + j] = -INFINITY;
  x[10 + 3] = x[10 + 7] = -INFINITY;
  x[30 + 5] = 80.0f;
}

static void plant_unique(void **host) {
  int32_t *idx = host[1];
  idx[0] = 4, idx[1] = 0, idx[2] = 6;
}

static void plant_convert(void **host) {
  float *x = host[0];
  const float edge[] = {NAN,
                        INFINITY,
                        -INFINITY,
                        0.0f,
                        -0.0f,
                        65504.0f,
                        65520.0f,
                        1e-8f,
                        -3e-6f,
                        1.00390625f /* bf16 tie */,
                        1.01171875f,
                        3.4e38f,
                        1.0f + FLT_EPSILON};
  memcpy(x, edge, sizeof edge);
}

/* ---- the cases -------------------------------------------------------------------------- */

#define F(nd, ...)                                                                                 \
  { VT_F32, nd, {__VA_ARGS__}, -1.0f, 1.0f, true, 0 }
#define FR(lo, hi, nd, ...)                                                                        \
  { VT_F32, nd, {__VA_ARGS__}, lo, hi, true, 0 }
#define FQ(nd, ...)                                                                                \
  { VT_F32, nd, {__VA_ARGS__}, -1.0f, 1.0f, true, 0.25f }
#define FN(lo, hi, nd, ...)                                                                        \
  { VT_F32, nd, {__VA_ARGS__}, lo, hi, false, 0 }
#define I32(lo, hi, nd, ...)                                                                       \
  { VT_I32, nd, {__VA_ARGS__}, lo, hi, false, 0 }
#define I64(lo, hi, nd, ...)                                                                       \
  { VT_I64, nd, {__VA_ARGS__}, lo, hi, false, 0 }

static const op_case cases[] = {
    /* matmul: the four transpose combinations, batched, and B shared by the batch (folded into
     * one GEMM when A is not transposed; else B's gradient accumulates with C stride 0) */
    {"matmul nn", mm_nn, 24, 2, {F(3, 3, 17, 24), F(3, 3, 24, 19)}, NULL},
    {"matmul nt", mm_nt, 24, 2, {F(3, 3, 17, 24), F(3, 3, 19, 24)}, NULL},
    {"matmul tn", mm_tn, 24, 2, {F(3, 3, 24, 17), F(3, 3, 24, 19)}, NULL},
    {"matmul tt", mm_tt, 24, 2, {F(3, 3, 24, 17), F(3, 3, 19, 24)}, NULL},
    {"matmul 2d", mm_nn, 65, 2, {F(2, 65, 64), F(2, 64, 33)}, NULL},
    {"matmul shared b", mm_nn, 102, 2, {F(4, 2, 3, 17, 24), F(2, 24, 19)}, NULL},
    {"matmul shared b nt", mm_nt, 34, 2, {F(3, 2, 17, 24), F(2, 19, 24)}, NULL},
    {"matmul shared b tn", mm_tn, 68, 2, {F(3, 4, 24, 17), F(2, 24, 19)}, NULL},
    {"matmul shared b tt", mm_tt, 68, 2, {F(3, 4, 24, 17), F(2, 19, 24)}, NULL},
    /* binary ops with broadcasting; the gradient of the broadcast operand takes each path */
    {"add same", add, 1, 2, {F(2, 70, 130), F(2, 70, 130)}, NULL},
    {"add bias", add, 8, 2, {F(2, 8, 9000), F(1, 9000)}, NULL},
    {"add small bias", add, 20, 2, {F(3, 4, 5, 6), F(1, 6)}, NULL},
    {"sub both", sub, 5, 2, {F(3, 2, 3, 1), F(2, 3, 5)}, NULL},
    {"mul cross", mul, 231, 2, {F(3, 7, 1, 33), F(3, 1, 9, 1)}, NULL},
    {"mul scalar", mul, 6000, 2, {F(2, 60, 100), F(1, 1)}, NULL},
    {"mul column", mul, 4, 2, {F(2, 3000, 4), F(2, 3000, 1)}, NULL},
    {"mul long column", mul, 5000, 2, {F(2, 3, 5000), F(2, 3, 1)}, NULL},
    {"div", dvd, 6, 2, {F(3, 4, 5, 6), FR(0.5f, 2.0f, 3, 4, 5, 1)}, NULL},
    {"div rows", dvd, 4, 2, {FR(0.5f, 2.0f, 2, 4, 7), F(1, 7)}, NULL},
    {"scale", scale, 1, 1, {F(2, 33, 31)}, NULL},
    /* activations */
    {"gelu_tanh", gelu_tanh, 1, 1, {FR(-5, 5, 1, 2000)}, NULL},
    {"gelu_erf", gelu_erf, 1, 1, {FR(-5, 5, 1, 2000)}, NULL},
    {"silu", silu, 1, 1, {FR(-20, 20, 1, 2000)}, NULL},
    {"relu", relu, 1, 1, {F(1, 2000)}, NULL},
    {"leaky_relu", leaky, 1, 1, {F(1, 2000)}, NULL},
    {"tanh", tanh_, 1, 1, {FR(-6, 6, 1, 2000)}, NULL},
    {"sigmoid", sigmoid, 1, 1, {FR(-20, 20, 1, 2000)}, NULL},
    /* reductions: block (rows, few outputs) and thread (many outputs) kernels */
    {"sum all", sum_all, 100000, 1, {F(2, 200, 500)}, NULL},
    {"sum axis 0", sum_0, 50, 1, {F(2, 50, 10000)}, NULL},
    {"sum axis 1 keepdim", sum_1k, 7, 1, {F(3, 6, 7, 8)}, NULL},
    {"sum last", sum_last, 5000, 1, {F(2, 3, 5000)}, NULL},
    {"mean all", mean_all, 336, 1, {F(3, 6, 7, 8)}, NULL},
    {"mean axis 0", mean_0, 3000, 1, {F(2, 3000, 3)}, NULL},
    {"mean axis 1", mean_1, 300, 1, {F(3, 64, 300, 40)}, NULL},
    {"max all", max_all, 1, 1, {FQ(2, 100, 300)}, NULL},
    {"max axis 0", max_0, 1, 1, {FQ(2, 50, 10000)}, NULL},
    {"max axis 1 ties", max_1, 1, 1, {FQ(3, 2, 9000, 3)}, NULL},
    {"max axis 1 threads", max_1, 1, 1, {FQ(3, 2, 30, 9000)}, NULL},
    {"max nan ties", max_last, 1, 1, {F(2, 4, 40)}, plant_max},
    /* softmax: a warp per row, a block per row, masked rows */
    {"softmax", softmax, 37, 1, {FR(-4, 4, 2, 5, 37)}, NULL},
    {"softmax long", softmax, 3000, 1, {FR(-4, 4, 2, 3, 3000)}, NULL},
    {"softmax masked", softmax, 10, 1, {FR(-4, 4, 2, 4, 10)}, plant_softmax},
    {"log_softmax", log_softmax, 37, 1, {FR(-4, 4, 3, 2, 5, 37)}, NULL},
    {"log_softmax long", log_softmax, 3000, 1, {FR(-4, 4, 2, 3, 3000)}, NULL},
    {"log_softmax masked", log_softmax, 10, 1, {FR(-4, 4, 2, 4, 10)}, plant_softmax},
    /* shape ops */
    {"reshape", reshape, 1, 1, {F(2, 4, 6)}, NULL},
    {"permute", permute, 1, 1, {F(4, 2, 3, 4, 5)}, NULL},
    {"transpose", transpose, 1, 1, {F(3, 6, 7, 8)}, NULL},
    {"concat", concat, 1, 3, {F(3, 2, 3, 4), F(3, 2, 5, 4), F(3, 2, 1, 4)}, NULL},
    {"slice", slice, 1, 1, {F(3, 4, 10, 3)}, NULL},
    /* gather / scatter: repeated indices add atomically */
    {"index_select", index_select, 9, 2, {F(3, 5, 7, 3), I32(0, 7, 1, 9)}, NULL},
    {"index_copy", index_copy, 1, 3, {F(3, 5, 7, 3), I32(0, 7, 1, 3), F(3, 5, 3, 3)}, plant_unique},
    {"index_add", index_add, 10, 3, {F(2, 6, 4), I32(0, 6, 1, 10), F(2, 10, 4)}, NULL},
    {"embedding", embedding, 21, 2, {F(2, 50, 16), I32(0, 50, 2, 3, 7)}, NULL},
    /* casts: shared conversion code, so bit-exact; edge values planted */
    {"cast f32", cast_f32, 1, 1, {F(1, 100)}, NULL},
    {"cast bf16", cast_bf16, 1, 1, {FN(-1000, 1000, 1, 300)}, plant_convert},
    {"cast f16", cast_f16, 1, 1, {FN(-1000, 1000, 1, 300)}, plant_convert},
    {"cast i32", cast_i32, 1, 1, {FN(-1000, 1000, 1, 300)}, NULL},
    {"cast i64", cast_i64, 1, 1, {FN(-1000, 1000, 1, 300)}, NULL},
    {"cast bf16 f32", cast_bf16_f32, 1, 1, {FN(-1000, 1000, 1, 300)}, plant_convert},
    {"cast f16 f32", cast_f16_f32, 1, 1, {FN(-1000, 1000, 1, 300)}, plant_convert},
    {"cast i32 f32", cast_f32, 1, 1, {I32(-70000, 70000, 1, 300)}, NULL},
    {"cast i32 i64", cast_i64, 1, 1, {I32(-70000, 70000, 1, 300)}, NULL},
    {"cast i64 i32", cast_i32, 1, 1, {I64(-70000, 70000, 1, 300)}, NULL},
    /* 2- and 8-byte strided copies */
    {"permute bf16", permute_bf16, 1, 1, {FN(-4, 4, 3, 3, 4, 5)}, NULL},
    {"slice transpose i64", slice_i64, 1, 1, {FN(-100, 100, 2, 4, 7)}, NULL},
    {"concat i32", concat_i32, 1, 2, {I32(-9, 9, 2, 2, 3), I32(-9, 9, 2, 4, 3)}, NULL},
    /* a small network end to end */
    {"mlp", mlp, 64, 4, {F(3, 2, 9, 32), F(2, 32, 64), F(1, 64), F(2, 10, 64)}, NULL},
};

/* ---- beyond the ops --------------------------------------------------------------------- */

static void check_bad_index(vt_ctx *gpu) {
  int64_t xs[2] = {5, 4}, is[1] = {3};
  float x[20] = {0};
  int32_t idx[3] = {0, 7, 2};
  vt_tensor *xt = vt_from_host(gpu, VT_F32, 2, xs, x);
  vt_tensor *it = vt_from_host(gpu, VT_I32, 1, is, idx);
  vt_tensor *out = vt_index_select(gpu, xt, 0, it);
  CHECK(vt_ctx_failed(gpu));
  CHECK_MSG(strstr(vt_ctx_error(gpu), "index 7 at position 1") != NULL, "error: %s",
            vt_ctx_error(gpu));
  CHECK(isnan(vt_item(gpu, out)));
  vt_ctx_clear_error(gpu);
  vt_ctx_reset(gpu);

  int32_t ids[4] = {1, 2, 3, -1};
  int64_t ws[2] = {4, 3}, ids_shape[2] = {2, 2};
  float wv[12] = {0};
  vt_tensor *w = vt_from_host(gpu, VT_F32, 2, ws, wv);
  vt_tensor *id = vt_from_host(gpu, VT_I32, 2, ids_shape, ids);
  vt_embedding(gpu, w, id);
  CHECK_MSG(strstr(vt_ctx_error(gpu), "index -1 at position 3") != NULL, "error: %s",
            vt_ctx_error(gpu));
  vt_ctx_clear_error(gpu);
  vt_ctx_reset(gpu);
}

/* The backend's GEMM where the ops do not reach: a shared C (stride 0) with beta applied per
 * batch element as the CPU loop does, and k == 0. */
static void check_gemm_edges(const vt_backend *g) {
  const vt_backend *c = vt_backend_cpu();
  enum { M = 5, N = 6, K = 7, B = 3 };
  float a[B * M * K], b[K * N], c0[M * N], want[M * N], got[M * N];
  vt_rng rng;
  vt_rng_seed(&rng, 5);
  vt_test_fill_uniform(&rng, a, B * M * K, -1, 1);
  vt_test_fill_uniform(&rng, b, K * N, -1, 1);
  vt_test_fill_uniform(&rng, c0, M * N, -1, 1);
  float *da = g->alloc(g, sizeof a), *db = g->alloc(g, sizeof b), *dc = g->alloc(g, sizeof c0);
  const float betas[3] = {0.0f, 0.5f, 1.0f};
  for (int kk = 0; kk < 2; kk++)
    for (int bi = 0; bi < 3; bi++) {
      int64_t k = kk ? K : 0;
      memcpy(want, c0, sizeof c0);
      c->gemm(c, VT_F32, false, false, M, N, k, 0.75f, a, K, M * K, b, N, 0, betas[bi], want, N, 0,
              B);
      g->copy(g, da, a, sizeof a, VT_COPY_H2D);
      g->copy(g, db, b, sizeof b, VT_COPY_H2D);
      g->copy(g, dc, c0, sizeof c0, VT_COPY_H2D);
      g->gemm(g, VT_F32, false, false, M, N, k, 0.75f, da, K, M * K, db, N, 0, betas[bi], dc, N, 0,
              B);
      g->copy(g, got, dc, sizeof got, VT_COPY_D2H);
      char what[64];
      snprintf(what, sizeof what, "gemm shared C k=%lld beta=%g", (long long)k, betas[bi]);
      CHECK_MSG(close_nan(what, got, want, M * N, 16.0 * FLT_EPSILON * K * B), "%s", what);
    }
  /* index_check on its own: none bad, several bad (the first is reported) */
  int32_t idx[6] = {0, 3, 9, 2, -4, 11};
  int32_t *di = g->alloc(g, sizeof idx);
  g->copy(g, di, idx, sizeof idx, VT_COPY_H2D);
  CHECK(g->index_check(g, di, 2, 4) == -1);
  CHECK(g->index_check(g, di, 6, 4) == 2);
  CHECK(g->index_check(g, di, 6, 10) == 4);
  CHECK(g->index_check(g, di, 0, 1) == -1);
  g->free(g, di);
  g->free(g, da);
  g->free(g, db);
  g->free(g, dc);
}

int main(void) {
  bool self_check = getenv("VT_CUDA_TEST_ON_CPU") != NULL;
  if (!self_check && vt_cuda_device_count() == 0) {
    const char *why = NULL;
    vt_backend_cuda(0, &why);
    printf("no GPU: skipped (%s)\n", why ? why : "no device");
    return 77;
  }
  vt_ctx *cpu = vt_test_cpu_ctx();
  const char *err = NULL;
  vt_ctx *gpu = self_check ? vt_test_cpu_ctx()
                           : vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CUDA, 0}}, &err);
  if (!gpu) {
    fprintf(stderr, "a GPU is present but no CUDA context could be made: %s\n", err);
    return 1;
  }
  const vt_backend *be = vt_ctx_backend(gpu);
  int n_cases = (int)(sizeof cases / sizeof cases[0]);
  for (int i = 0; i < n_cases; i++) run_case(cpu, gpu, &cases[i], 1000 + (uint64_t)i);
  check_bad_index(gpu);
  check_gemm_edges(be);
  vt_ctx_free(gpu);
  vt_ctx_free(cpu);
  return vt_test_finish("test_cuda_backend");
}
