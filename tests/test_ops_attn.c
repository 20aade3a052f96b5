// ctest-labels: unit grad
/* Fused attention beyond the PyTorch fixture cases of tests/op_table.h: finite differences
 * on each mask kind, fully masked rows, the relative-position forms, thread-count invariance
 * and error paths. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/ops_attn.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

/* Finite differences: inputs q, k, v (+ bias) differentiated, lengths as i32 inputs. */
typedef struct {
  vt_attn_opts o;
  int lengths_at, prefix_at, bias_at, seg_at; /* input positions, or -1 */
} gc_attn;

static vt_tensor *attn_graph(vt_ctx *ctx, vt_tensor **in, void *user) {
  gc_attn *u = user;
  vt_attn_opts o = u->o;
  o.lengths = u->lengths_at >= 0 ? in[u->lengths_at] : NULL;
  o.prefix_lengths = u->prefix_at >= 0 ? in[u->prefix_at] : NULL;
  o.bias = u->bias_at >= 0 ? in[u->bias_at] : NULL;
  o.segment_ids = u->seg_at >= 0 ? in[u->seg_at] : NULL;
  return vt_attention(ctx, in[0], in[1], in[2], &o);
}

static void gradcheck_case(const char *name, vt_attn_opts o, int64_t B, int64_t H, int64_t Hkv,
                           int64_t T, int64_t D, const int32_t *lengths, const int32_t *prefix,
                           int bias_b, int bias_h, const int32_t *segs) {
  vt_rng r;
  vt_rng_seed(&r, 7);
  float q[256], k[256], v[256], bias[256];
  int32_t len[4], pre[4], seg[64];
  vt_test_fill_uniform(&r, q, 256, -1.5f, 1.5f);
  vt_test_fill_uniform(&r, k, 256, -1.5f, 1.5f);
  vt_test_fill_uniform(&r, v, 256, -1.0f, 1.0f);
  vt_test_fill_uniform(&r, bias, 256, -1.0f, 1.0f);
  vt_gc_input in[7] = {
      {VT_F32, 4, {B, H, T, D}, q, true},
      {VT_F32, 4, {B, Hkv, T, D}, k, true},
      {VT_F32, 4, {B, Hkv, T, D}, v, true},
  };
  int n = 3;
  gc_attn u = {o, -1, -1, -1, -1};
  if (lengths) {
    memcpy(len, lengths, sizeof(int32_t) * (size_t)B);
    in[n] = (vt_gc_input){VT_I32, 1, {B}, len, false};
    u.lengths_at = n++;
  }
  if (prefix) {
    memcpy(pre, prefix, sizeof(int32_t) * (size_t)B);
    in[n] = (vt_gc_input){VT_I32, 1, {B}, pre, false};
    u.prefix_at = n++;
  }
  if (bias_h) {
    in[n] = (vt_gc_input){VT_F32, 4, {bias_b, bias_h, T, T}, bias, true};
    u.bias_at = n++;
  }
  if (segs) {
    memcpy(seg, segs, sizeof(int32_t) * (size_t)(B * T));
    in[n] = (vt_gc_input){VT_I32, 2, {B, T}, seg, false};
    u.seg_at = n++;
  }
  CHECK_GRAD(name, attn_graph, &u, in, n);
}

static void test_gradcheck(void) {
  const int32_t len[2] = {5, 3}, pre[2] = {2, 4}, segs[10] = {0, 0, 1, 1, 1, 4, 4, 4, 7, 7};
  gradcheck_case("bidirectional", (vt_attn_opts){0}, 1, 2, 2, 4, 3, NULL, NULL, 0, 0, NULL);
  gradcheck_case("causal gqa", (vt_attn_opts){.mask = VT_ATTN_CAUSAL}, 1, 4, 2, 4, 3, NULL, NULL, 0,
                 0, NULL);
  gradcheck_case("padding", (vt_attn_opts){0}, 2, 2, 1, 5, 3, len, NULL, 0, 0, NULL);
  gradcheck_case("chunk", (vt_attn_opts){.mask = VT_ATTN_CHUNK, .chunk_size = 2, .left_chunks = 1},
                 1, 2, 1, 6, 3, NULL, NULL, 0, 0, NULL);
  gradcheck_case("prefix", (vt_attn_opts){.mask = VT_ATTN_PREFIX, .prefix = 2}, 1, 2, 2, 5, 3, NULL,
                 NULL, 0, 0, NULL);
  gradcheck_case("prefix per sample + padding", (vt_attn_opts){.mask = VT_ATTN_PREFIX}, 2, 1, 1, 5,
                 3, len, pre, 0, 0, NULL);
  gradcheck_case("bias per head", (vt_attn_opts){.mask = VT_ATTN_CAUSAL}, 1, 2, 1, 4, 3, NULL, NULL,
                 1, 2, NULL);
  gradcheck_case("bias shared over batch and heads", (vt_attn_opts){0}, 2, 2, 2, 4, 3, len, NULL, 1,
                 1, NULL);
  gradcheck_case("segments causal", (vt_attn_opts){.mask = VT_ATTN_CAUSAL}, 2, 2, 1, 5, 3, len,
                 NULL, 0, 0, segs);
  gradcheck_case("segments + bias", (vt_attn_opts){0}, 2, 1, 1, 5, 3, NULL, NULL, 1, 1, segs);
}

/* A sample with no visible key gives zeros and zero gradients, never NaN. */
static void test_empty_rows(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  float qh[2 * 1 * 3 * 2] = {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6};
  int32_t lh[2] = {0, 3};
  vt_tensor *q = vt_from_host(ctx, VT_F32, 4, (int64_t[]){2, 1, 3, 2}, qh);
  vt_tensor *k = vt_from_host(ctx, VT_F32, 4, (int64_t[]){2, 1, 3, 2}, qh);
  vt_tensor *v = vt_from_host(ctx, VT_F32, 4, (int64_t[]){2, 1, 3, 2}, qh);
  vt_requires_grad(ctx, q);
  vt_requires_grad(ctx, v);
  vt_attn_opts o = {.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, lh)};
  vt_tensor *out = vt_attention(ctx, q, k, v, &o);
  CHECK(vt_backward(ctx, vt_sum(ctx, out, VT_ALL_AXES, false)));
  float oh[12], dq[12], dv[12];
  vt_to_host(ctx, out, oh);
  vt_grad_to_host(ctx, q, dq);
  vt_grad_to_host(ctx, v, dv);
  for (int i = 0; i < 6; i++) CHECK(oh[i] == 0 && dq[i] == 0 && dv[i] == 0);
  for (int i = 6; i < 12; i++) CHECK(isfinite(oh[i]) && isfinite(dq[i]) && oh[i] != 0);
  vt_ctx_free(ctx);
}

/* The audio encoder's relative-position score [(q+u) k^T + (q+v) p^T] / sqrt(d) two ways: as
 * a bias tensor, and (no T x T tensor) by concatenating [q+u | q+v] and [k | p] along the head
 * dim with an explicit scale. Both must agree in value and in every gradient. */
static void test_relpos_forms(void) {
  const int64_t H = 2, T = 5, d = 4;
  vt_rng r;
  vt_rng_seed(&r, 21);
  float qh[40], kh[40], vh[40], ph[40], uh[8], wh[8];
  vt_test_fill_uniform(&r, qh, 40, -1, 1);
  vt_test_fill_uniform(&r, kh, 40, -1, 1);
  vt_test_fill_uniform(&r, vh, 40, -1, 1);
  vt_test_fill_uniform(&r, ph, 40, -1, 1);
  vt_test_fill_uniform(&r, uh, 8, -1, 1);
  vt_test_fill_uniform(&r, wh, 8, -1, 1);
  vt_ctx *ctx = vt_test_cpu_ctx();
  float out[2][40], g[2][3][40];
  for (int form = 0; form < 2; form++) {
    int64_t s4[4] = {1, H, T, d}, sb[4] = {1, H, 1, d};
    vt_tensor *q = vt_from_host(ctx, VT_F32, 4, s4, qh), *k = vt_from_host(ctx, VT_F32, 4, s4, kh);
    vt_tensor *v = vt_from_host(ctx, VT_F32, 4, s4, vh), *p = vt_from_host(ctx, VT_F32, 4, s4, ph);
    vt_tensor *u = vt_from_host(ctx, VT_F32, 4, sb, uh), *w = vt_from_host(ctx, VT_F32, 4, sb, wh);
    vt_requires_grad(ctx, q);
    vt_requires_grad(ctx, k);
    vt_requires_grad(ctx, p);
    vt_tensor *qu = vt_add(ctx, q, u), *qw = vt_add(ctx, q, w), *o;
    vt_attn_opts opts = {.mask = VT_ATTN_CAUSAL, .scale = 0.5f}; /* 1 / sqrt(d) */
    if (form == 0) {
      opts.bias = vt_scale(ctx, vt_matmul(ctx, qw, p, false, true), 0.5f);
      o = vt_attention(ctx, qu, k, v, &opts);
    } else {
      vt_tensor *qs[2] = {qu, qw}, *ks[2] = {k, p};
      o = vt_attention(ctx, vt_concat(ctx, qs, 2, 3), vt_concat(ctx, ks, 2, 3), v, &opts);
    }
    CHECK(vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, o, o), VT_ALL_AXES, false)));
    vt_to_host(ctx, o, out[form]);
    vt_grad_to_host(ctx, q, g[form][0]);
    vt_grad_to_host(ctx, k, g[form][1]);
    vt_grad_to_host(ctx, p, g[form][2]);
    vt_ctx_reset(ctx);
  }
  CHECK_CLOSE("relpos out", out[1], out[0], 40, 1e-6, 1e-5);
  CHECK_CLOSE("relpos dq", g[1][0], g[0][0], 40, 1e-6, 1e-5);
  CHECK_CLOSE("relpos dk", g[1][1], g[0][1], 40, 1e-6, 1e-5);
  CHECK_CLOSE("relpos dp", g[1][2], g[0][2], 40, 1e-6, 1e-5);
  vt_ctx_free(ctx);
}

/* No atomics and a fixed summation order: results are bitwise the same for any thread count. */
static void test_thread_invariance(void) {
  const int64_t B = 1, H = 4, Hkv = 2, T = 150, D = 16, n = B * H * T * D, nkv = B * Hkv * T * D;
  float *q = malloc(sizeof(float) * (size_t)n), *kv = malloc(sizeof(float) * (size_t)nkv);
  float *bias = malloc(sizeof(float) * (size_t)(T * T)), *res[2][4];
  vt_rng r;
  vt_rng_seed(&r, 5);
  vt_test_fill_uniform(&r, q, (long)n, -1, 1);
  vt_test_fill_uniform(&r, kv, (long)nkv, -1, 1);
  vt_test_fill_uniform(&r, bias, (long)(T * T), -1, 1);
  int saved = omp_get_max_threads();
  vt_ctx *ctx = vt_test_cpu_ctx();
  for (int run = 0; run < 2; run++) {
    omp_set_num_threads(run ? 3 : 1);
    vt_tensor *tq = vt_from_host(ctx, VT_F32, 4, (int64_t[]){B, H, T, D}, q);
    vt_tensor *tk = vt_from_host(ctx, VT_F32, 4, (int64_t[]){B, Hkv, T, D}, kv);
    vt_tensor *tb = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, T, T}, bias);
    vt_requires_grad(ctx, tq);
    vt_requires_grad(ctx, tk);
    vt_requires_grad(ctx, tb);
    vt_attn_opts o = {.mask = VT_ATTN_CAUSAL, .bias = tb};
    vt_tensor *out = vt_attention(ctx, tq, tk, tk, &o);
    CHECK(vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, out, out), VT_ALL_AXES, false)));
    for (int i = 0; i < 4; i++) res[run][i] = malloc(sizeof(float) * (size_t)(T * T + n));
    vt_to_host(ctx, out, res[run][0]);
    vt_grad_to_host(ctx, tq, res[run][1]);
    vt_grad_to_host(ctx, tk, res[run][2]);
    vt_grad_to_host(ctx, tb, res[run][3]);
    vt_ctx_reset(ctx);
  }
  omp_set_num_threads(saved);
  const long sizes[4] = {(long)n, (long)n, (long)nkv, (long)(T * T)};
  for (int i = 0; i < 4; i++) {
    CHECK_MSG(!memcmp(res[0][i], res[1][i], sizeof(float) * (size_t)sizes[i]),
              "result %d differs between 1 and 3 threads", i);
    free(res[0][i]);
    free(res[1][i]);
  }
  vt_ctx_free(ctx);
  free(q);
  free(kv);
  free(bias);
}

static void expect_error(vt_ctx *ctx, vt_tensor *got, const char *needle) {
  CHECK_MSG(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), needle) &&
                strstr(vt_ctx_error(ctx), "attention"),
            "error '%s' lacks '%s'", vt_ctx_error(ctx), needle);
  CHECK(got != NULL && isnan(vt_item(ctx, got)));
  vt_ctx_clear_error(ctx);
}

static void test_errors(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *q = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 4, 5, 8});
  vt_tensor *k = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 3, 5, 8});
  vt_tensor *k6 = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 2, 5, 6});
  vt_tensor *v = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 2, 5, 8});
  vt_tensor *k2 = vt_zeros(ctx, VT_F32, 4, (int64_t[]){1, 2, 5, 8});
  expect_error(ctx, vt_attention(ctx, q, k6, v, NULL), "[1, 2, 5, 6]");
  expect_error(ctx, vt_attention(ctx, q, k, v, NULL), "[1, 3, 5, 8]");
  expect_error(ctx, vt_attention(ctx, vt_zeros(ctx, VT_F32, 3, (int64_t[]){4, 5, 8}), k2, v, NULL),
               "[4, 5, 8]");
  vt_attn_opts o = {.bias = vt_zeros(ctx, VT_F32, 3, (int64_t[]){3, 5, 5})};
  expect_error(ctx, vt_attention(ctx, q, k2, v, &o), "[3, 5, 5]");
  o = (vt_attn_opts){.mask = VT_ATTN_CHUNK};
  expect_error(ctx, vt_attention(ctx, q, k2, v, &o), "chunk_size");
  o = (vt_attn_opts){.segment_ids = vt_zeros(ctx, VT_I32, 2, (int64_t[]){1, 4})};
  expect_error(ctx, vt_attention(ctx, q, k2, v, &o), "segment_ids");
  o = (vt_attn_opts){.lengths = vt_zeros(ctx, VT_F32, 1, (int64_t[]){1})};
  expect_error(ctx, vt_attention(ctx, q, k2, v, &o), "lengths");
  /* a backend without attn kernels reports it */
  vt_backend none = *ctx->be;
  none.name = "fake";
  none.attn = NULL;
  const vt_backend *real = ctx->be;
  ctx->be = &none;
  expect_error(ctx, vt_attention(ctx, q, k2, v, NULL),
               "not supported on the fake backend (no kernels of the attn family)");
  ctx->be = real;
  /* a failed ctx passes the error tensor through without touching the message */
  vt_attention(ctx, q, k6, v, NULL);
  char first[1024];
  snprintf(first, sizeof first, "%s", vt_ctx_error(ctx));
  vt_attention(ctx, q, k, v, NULL);
  CHECK(!strcmp(first, vt_ctx_error(ctx)));
  vt_ctx_free(ctx);
}

int main(void) {
  test_gradcheck();
  test_empty_rows();
  test_relpos_forms();
  test_thread_invariance();
  test_errors();
  return vt_test_finish("test_ops_attn");
}
