// ctest-labels: unit grad
/* The fused ops of the Qwen2 step against the compositions they replace, which the ops
 * themselves run on a backend without the fused kernels: vt_attention_qkv (rope_qkv kernels;
 * slice, vt_rope, permute, vt_attention, permute) and vt_swiglu (slice, SiLU, mul). Outputs
 * and input gradients must be bit-identical; for the attention on shapes that span
 * several attention tiles, with GQA, per-sample positions, segments, padding, an extra reader
 * of qkv (the gradient then accumulates) and 1 and 2 threads. Also the error paths. The
 * PyTorch comparison is in tests/op_table.h (fixtures ops/fused.txt). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/kernels_norm.h"
#include "autograd/ops.h"
#include "autograd/ops_attn.h"
#include "autograd/rng.h"
#include "tests/check.h"
#include "tests/testutil.h"

typedef struct {
  const char *name;
  int64_t b, t, h, hkv, d;
  float theta;
  vt_attn_mask_kind mask;
  bool per_batch_pos, lengths, segments, extra_reader;
} qkv_case;

/* out and dqkv (L = sum(w * out) [+ sum(qkv^2) / 2 through another reader]) on one ctx. */
static bool run(vt_ctx *ctx, const qkv_case *c, const float *x, const float *w, float *out,
                float *dx) {
  int64_t n = c->b * c->t * (c->h + 2 * c->hkv) * c->d, no = c->b * c->t * c->h * c->d;
  vt_tensor *qkv =
      vt_from_host(ctx, VT_F32, 3, (int64_t[]){c->b, c->t, (c->h + 2 * c->hkv) * c->d}, x);
  qkv->requires_grad = true;
  int32_t pos[2 * 512], len[2], seg[2 * 512];
  for (int64_t bi = 0; bi < c->b; bi++)
    for (int64_t i = 0; i < c->t; i++) {
      pos[bi * c->t + i] = (int32_t)(c->per_batch_pos ? (i * (bi + 1)) % 97 + 3 * bi : i);
      seg[bi * c->t + i] = (int32_t)(i / (40 + 13 * bi));
    }
  len[0] = (int32_t)c->t;
  len[1] = (int32_t)(c->t - 9);
  vt_tensor *p = c->per_batch_pos ? vt_from_host(ctx, VT_I32, 2, (int64_t[]){c->b, c->t}, pos)
                                  : vt_from_host(ctx, VT_I32, 1, (int64_t[]){c->t}, pos);
  vt_attn_opts o = {.mask = c->mask};
  if (c->lengths) o.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){c->b}, len);
  if (c->segments) o.segment_ids = vt_from_host(ctx, VT_I32, 2, (int64_t[]){c->b, c->t}, seg);
  vt_tensor *y = vt_attention_qkv(ctx, qkv, c->h, c->hkv, p, c->theta, &o);
  vt_tensor *wt = vt_from_host(ctx, VT_F32, 3, y->shape, w);
  vt_tensor *loss = vt_sum(ctx, vt_mul(ctx, y, wt), VT_ALL_AXES, false);
  if (c->extra_reader)
    loss = vt_add(ctx, loss,
                  vt_scale(ctx, vt_sum(ctx, vt_mul(ctx, qkv, qkv), VT_ALL_AXES, false), 0.5f));
  if (!vt_backward(ctx, loss) || vt_ctx_failed(ctx)) {
    fprintf(stderr, "%s: %s\n", c->name, vt_ctx_error(ctx));
    return false;
  }
  vt_read_host(ctx, y, 0, no, out);
  vt_buf_to_host(vt_ctx_backend(ctx), dx, qkv->grad, sizeof(float) * (size_t)n);
  vt_ctx_reset(ctx);
  return true;
}

/* Equal element by element (so 0 == -0: the fused backward writes a rotated zero where the
 * composition adds it to a zeroed buffer). */
static bool same(const float *a, const float *b, int64_t n) {
  for (int64_t i = 0; i < n; i++)
    if (a[i] != b[i] && !(isnan(a[i]) && isnan(b[i]))) return false;
  return true;
}

static void check_case(vt_ctx *fused, vt_ctx *composed, const qkv_case *c) {
  int64_t n = c->b * c->t * (c->h + 2 * c->hkv) * c->d, no = c->b * c->t * c->h * c->d;
  float *x = malloc(sizeof(float) * (size_t)n), *w = malloc(sizeof(float) * (size_t)no);
  float *o1 = malloc(sizeof(float) * (size_t)no), *o2 = malloc(sizeof(float) * (size_t)no);
  float *d1 = malloc(sizeof(float) * (size_t)n), *d2 = malloc(sizeof(float) * (size_t)n);
  vt_rng r;
  vt_rng_seed(&r, 17);
  vt_test_fill_uniform(&r, x, n, -2.0f, 2.0f);
  vt_test_fill_uniform(&r, w, no, -1.0f, 1.0f);
  for (int threads = 1; threads <= 2; threads++) {
    omp_set_num_threads(threads);
    bool ok = run(fused, c, x, w, o1, d1) && run(composed, c, x, w, o2, d2);
    CHECK_MSG(ok, "%s: ran", c->name);
    if (!ok) break;
    CHECK_MSG(same(o1, o2, no), "%s (%d threads): out bit-identical", c->name, threads);
    CHECK_MSG(same(d1, d2, n), "%s (%d threads): dqkv bit-identical", c->name, threads);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += d1[i] * d1[i];
    CHECK_MSG(s > 0, "%s: a gradient", c->name);
  }
  free(x);
  free(w);
  free(o1);
  free(o2);
  free(d1);
  free(d2);
}

/* One call on fresh tensors (a reset frees them): qkv [2, 3, last], positions [np]. */
static void call(vt_ctx *ctx, int64_t last, int64_t h, int64_t hkv, int64_t np, float theta) {
  static const float x[2 * 3 * 40];
  static const int32_t pos[3] = {0, 1, 2};
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
  vt_tensor *qkv = vt_from_host(ctx, VT_F32, 3, (int64_t[]){2, 3, last}, x);
  vt_tensor *p = np ? vt_from_host(ctx, VT_I32, 1, (int64_t[]){np}, pos) : NULL;
  vt_attention_qkv(ctx, qkv, h, hkv, p, theta, NULL);
}

static void check_errors(vt_ctx *ctx) {
  call(ctx, 40, 3, 2, 3, 1e4f); /* heads not a multiple of kv_heads */
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "kv_heads 2"));
  call(ctx, 40, 2, 2, 3, 1e4f); /* 40 / 6: no head dim */
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "[2, 3, 40]"));
  call(ctx, 40, 6, 2, 3, 1e4f); /* D = 4 */
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  call(ctx, 30, 2, 2, 3, 1e4f); /* D = 5: odd */
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "even head dim"));
  call(ctx, 30, 2, 2, 0, 0.0f); /* no RoPE: an odd D and no positions are fine */
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  call(ctx, 40, 6, 2, 2, 1e4f);
  CHECK_MSG(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "positions must be i32 [3] or [2, 3]"),
            "%s", vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
}

/* vt_swiglu fused and composed, with a second reader of x (its gradient then accumulates). */
static void check_swiglu(vt_ctx *fused, vt_ctx *composed) {
  enum { R = 37, F = 45, N = R * 2 * F };
  static float x[N], w[R * F], out[2][R * F], dx[2][N];
  vt_rng r;
  vt_rng_seed(&r, 23);
  vt_test_fill_uniform(&r, x, N, -8.0f, 8.0f);
  vt_test_fill_uniform(&r, w, R * F, -1.0f, 1.0f);
  for (int twice = 0; twice < 2; twice++)
    for (int i = 0; i < 2; i++) {
      vt_ctx *ctx = i ? composed : fused;
      vt_tensor *t = vt_from_host(ctx, VT_F32, 2, (int64_t[]){R, 2 * F}, x);
      t->requires_grad = true;
      vt_tensor *y = vt_swiglu(ctx, t);
      vt_tensor *loss = vt_sum(ctx, vt_mul(ctx, y, vt_from_host(ctx, VT_F32, 2, y->shape, w)),
                               VT_ALL_AXES, false);
      if (twice) loss = vt_add(ctx, loss, vt_sum(ctx, t, VT_ALL_AXES, false));
      CHECK_MSG(vt_backward(ctx, loss) && !vt_ctx_failed(ctx), "swiglu: %s", vt_ctx_error(ctx));
      vt_read_host(ctx, y, 0, R * F, out[i]);
      vt_buf_to_host(vt_ctx_backend(ctx), dx[i], t->grad, sizeof dx[i]);
      vt_ctx_reset(ctx);
    }
  CHECK_MSG(same(out[0], out[1], R * F), "swiglu: out bit-identical");
  CHECK_MSG(same(dx[0], dx[1], N), "swiglu: dx bit-identical");
  vt_tensor *odd = vt_from_host(fused, VT_F32, 2, (int64_t[]){2, 5}, x);
  vt_swiglu(fused, odd);
  CHECK(vt_ctx_failed(fused) && strstr(vt_ctx_error(fused), "[2, 5]"));
  vt_ctx_clear_error(fused);
  vt_ctx_reset(fused);
}

int main(void) {
  const char *err = NULL;
  vt_ctx *fused = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &err);
  /* the same CPU backend without the fused kernels: the op composes the older ops */
  static vt_backend plain;
  static struct vt_norm_kernels plain_norm;
  plain = *vt_backend_cpu();
  plain_norm = *plain.norm;
  plain_norm.rope_qkv = NULL;
  plain_norm.rope_qkv_backward = NULL;
  plain.norm = &plain_norm;
  plain.swiglu = NULL;
  plain.swiglu_backward = NULL;
  vt_ctx *composed = vt_ctx_init(&(vt_ctx_opts){.backend = &plain}, &err);
  CHECK(fused && composed);
  if (!fused || !composed) return vt_test_finish("test_fused_ops");
  const qkv_case cases[] = {
      {"bench-like causal gqa", 2, 150, 8, 2, 16, 1e6f, VT_ATTN_CAUSAL, false, false, false, false},
      {"per-sample positions, segments, padding", 2, 131, 4, 1, 8, 1e4f, VT_ATTN_CAUSAL, true, true,
       true, false},
      {"qkv read twice", 1, 70, 2, 2, 8, 1e4f, VT_ATTN_CAUSAL, false, false, false, true},
      {"no rope, bidirectional", 2, 67, 3, 3, 6, 0.0f, VT_ATTN_BIDIRECTIONAL, false, true, false,
       false},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    check_case(fused, composed, &cases[i]);
  check_errors(fused);
  check_swiglu(fused, composed);
  vt_ctx_free(fused);
  vt_ctx_free(composed);
  return vt_test_finish("test_fused_ops");
}
