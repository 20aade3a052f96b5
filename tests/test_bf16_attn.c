// ctest-labels: unit grad
/* Attention under bf16 mixed precision (autograd/cpu/cpu_attn_bf16.c: the score and value
 * products as batched oneDNN bf16 matmuls, softmax in f32) against the same op in f32, forward
 * and backward, on: causal GQA with a query tail tile, cross attention (Tq != Tk) with key
 * lengths and a sample that sees no key, a shared additive bias with its gradient, the prefix
 * and chunk masks, packed segments, and enough (batch, kv head) pairs that the kernel runs them
 * in chunks. Also: vt_gemm_input's bf16 activations (after
 * rms_norm, layer_norm, mul and permute) give the same matmul results, forward and backward,
 * as converting per call and take half their f32 space back; a tensor whose producer reads
 * it back, or that a later op read, keeps its f32 values; f32 ops refuse a bf16 activation
 * naming the dtype; vt_lowp_store's bf16 gate/up and q/k/v projections give vt_swiglu's and
 * vt_attention_qkv's f32 results, with the CPU's bf16 kernels and on a backend without them.
 *
 * Tolerances from bf16's unit roundoff u = 2^-8 (an input rounded to bf16 is within u
 * relative, a product of two within 2^-7):
 *  - scores: |ds_ij| <= E_i = 2^-7 scale sum_d |q_id k_jd| (f32 accumulation is far below);
 *  - probabilities: softmax moves p_j by p_j (ds_j - sum p ds), so |dp_ij| <= 2 E_i p_ij;
 *  - out: o_id = sum_j p_ij v_jd with P and V rounded once more (2^-7):
 *    |do_id| <= (2 E_i + 2^-7) sum_j p_ij |v_jd|, times 1.5 for second-order terms;
 *  - gradients: each path has at most three GEMMs after the scores (dP, dS's product, and
 *    dq/dk/dv's), so per tensor |d grad| <= 2 (2 max E + 3 2^-7) max |grad|, the 2 for the
 *    cancellation in dS = P (dP - D).
 * Each case also checks that the bf16 path ran (out differs from f32's) and prints the worst
 * error next to its bound. Skips (77) without bf16 GEMM units. */
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/kernels_norm.h"
#include "autograd/ops_attn.h"
#include "tests/testutil.h"

typedef struct {
  const char *name;
  int64_t B, H, Hkv, Tq, Tk, D;
  vt_attn_opts o;
  const int32_t *lengths, *prefix, *segs;
  int64_t bias_b, bias_h; /* 0: no bias */
} acase;

typedef struct {
  float *out, *dq, *dk, *dv, *db;
} result;

static vt_tensor *input_i32(vt_ctx *ctx, int ndim, const int64_t *shape, const int32_t *v) {
  vt_tensor *t = vt_new(ctx, VT_I32, ndim, shape);
  vt_write_host(ctx, t, 0, vt_numel(t), v);
  return t;
}

static vt_tensor *input_f32(vt_ctx *ctx, int ndim, const int64_t *shape, const float *v) {
  vt_tensor *t = vt_new(ctx, VT_F32, ndim, shape);
  vt_write_host(ctx, t, 0, vt_numel(t), v);
  vt_requires_grad(ctx, t);
  return t;
}

static float *read_grad(vt_ctx *ctx, const vt_tensor *t) {
  int64_t n = vt_numel(t);
  float *h = calloc((size_t)n, sizeof(float));
  if (t->grad) {
    vt_tensor g = *t;
    g.data = t->grad;
    vt_read_host(ctx, &g, 0, n, h);
  }
  return h;
}

/* One forward and backward of loss = sum(out * w) in the ctx's current GEMM dtype. */
static result run(vt_ctx *ctx, const acase *c, const float *q, const float *k, const float *v,
                  const float *bias, const float *w) {
  int64_t sq[4] = {c->B, c->H, c->Tq, c->D}, sk[4] = {c->B, c->Hkv, c->Tk, c->D};
  vt_tensor *tq = input_f32(ctx, 4, sq, q), *tk = input_f32(ctx, 4, sk, k),
            *tv = input_f32(ctx, 4, sk, v);
  vt_attn_opts o = c->o;
  vt_tensor *tb = NULL;
  if (c->bias_h) {
    int64_t sb[4] = {c->bias_b, c->bias_h, c->Tq, c->Tk};
    o.bias = tb = input_f32(ctx, 4, sb, bias);
  }
  if (c->lengths) o.lengths = input_i32(ctx, 1, (int64_t[]){c->B}, c->lengths);
  if (c->prefix) o.prefix_lengths = input_i32(ctx, 1, (int64_t[]){c->B}, c->prefix);
  if (c->segs) o.segment_ids = input_i32(ctx, 2, (int64_t[]){c->B, c->Tq}, c->segs);
  vt_tensor *out = vt_attention(ctx, tq, tk, tv, &o);
  vt_tensor *tw = vt_new(ctx, VT_F32, 4, sq);
  vt_write_host(ctx, tw, 0, vt_numel(tw), w);
  vt_tensor *loss =
      vt_sum(ctx, vt_reshape(ctx, vt_mul(ctx, out, tw), 1, (int64_t[]){-1}), 0, false);
  CHECK_MSG(vt_backward(ctx, loss), "%s: %s", c->name, vt_ctx_error(ctx));
  result r = {calloc((size_t)vt_numel(out), sizeof(float)), read_grad(ctx, tq), read_grad(ctx, tk),
              read_grad(ctx, tv), tb ? read_grad(ctx, tb) : NULL};
  vt_read_host(ctx, out, 0, vt_numel(out), r.out);
  vt_ctx_reset(ctx);
  return r;
}

static double max_abs(const float *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
  return m;
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fabs(a[i] - b[i]) > m ? fabs(a[i] - b[i]) : m;
  return m;
}

static void grad_check(const char *c, const char *what, const float *got, const float *want,
                       int64_t n, double rel) {
  double ref = max_abs(want, n), err = max_diff(got, want, n);
  printf("  %s %s: max |bf16 - f32| = %.3g, bound %.3g (max |f32| %.3g)\n", c, what, err, rel * ref,
         ref);
  CHECK_MSG(err <= rel * ref + 1e-6, "%s %s: %g > %g", c, what, err, rel * ref);
}

static void run_case(vt_ctx *ctx, const acase *c, vt_rng *rng) {
  int64_t nq = c->B * c->H * c->Tq * c->D, nk = c->B * c->Hkv * c->Tk * c->D;
  int64_t nb = c->bias_b * c->bias_h * c->Tq * c->Tk;
  float *q = malloc(4 * (size_t)nq), *k = malloc(4 * (size_t)nk), *v = malloc(4 * (size_t)nk);
  float *w = malloc(4 * (size_t)nq), *bias = malloc(4 * (size_t)(nb ? nb : 1));
  vt_test_fill_uniform(rng, q, (long)nq, -1.5f, 1.5f);
  vt_test_fill_uniform(rng, k, (long)nk, -1.5f, 1.5f);
  vt_test_fill_uniform(rng, v, (long)nk, -1.0f, 1.0f);
  vt_test_fill_uniform(rng, w, (long)nq, -1.0f, 1.0f);
  vt_test_fill_uniform(rng, bias, (long)(nb ? nb : 1), -1.0f, 1.0f);
  char err[256];
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_F32, NULL, 0, err, sizeof err) == 0);
  result f = run(ctx, c, q, k, v, bias, w);
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == 0);
  result h = run(ctx, c, q, k, v, bias, w);
  /* the bound of each output element, from a double softmax with the same mask and bias */
  float scale = c->o.scale ? c->o.scale : 1.0f / sqrtf((float)c->D);
  int64_t G = c->H / c->Hkv;
  double worst = 0, worst_bound = 0, maxE = 0;
  int64_t bad = 0;
  double *p = malloc(sizeof(double) * (size_t)c->Tk);
  for (int64_t b = 0; b < c->B; b++)
    for (int64_t hh = 0; hh < c->H; hh++)
      for (int64_t i = 0; i < c->Tq; i++) {
        const float *qi = q + ((b * c->H + hh) * c->Tq + i) * c->D;
        const float *kb = k + (b * c->Hkv + hh / G) * c->Tk * c->D;
        const float *vb = v + (b * c->Hkv + hh / G) * c->Tk * c->D;
        /* the same visible range as the kernels (vt_attn_row_range on the op's geometry) */
        vt_attn_geom g = {.B = c->B,
                          .H = c->H,
                          .Hkv = c->Hkv,
                          .Tq = c->Tq,
                          .Tk = c->Tk,
                          .mask = c->o.mask,
                          .chunk = c->o.chunk_size,
                          .left_chunks = c->o.left_chunks,
                          .prefix = c->o.prefix,
                          .prefix_lengths = c->prefix,
                          .lengths = c->lengths};
        int32_t *segs = NULL;
        if (c->segs) { /* [start, end) of each position's run, as ops_attn.c derives them */
          segs = malloc(sizeof(int32_t) * 2 * (size_t)(c->B * c->Tq));
          for (int64_t bb = 0; bb < c->B; bb++)
            for (int64_t t = 0; t < c->Tq; t++) {
              const int32_t *s = c->segs + bb * c->Tq;
              int64_t a = t, e = t + 1;
              while (a > 0 && s[a - 1] == s[t]) a--;
              while (e < c->Tq && s[e] == s[t]) e++;
              segs[(bb * c->Tq + t) * 2] = (int32_t)a;
              segs[(bb * c->Tq + t) * 2 + 1] = (int32_t)e;
            }
          g.segments = segs;
        }
        int64_t lo, hi;
        vt_attn_row_range(&g, b, i, &lo, &hi);
        free(segs);
        double mx = -INFINITY, E = 0, sum = 0;
        for (int64_t j = lo; j < hi; j++) {
          double s = 0, sa = 0;
          for (int64_t d = 0; d < c->D; d++) {
            s += (double)qi[d] * kb[j * c->D + d];
            sa += fabs((double)qi[d] * kb[j * c->D + d]);
          }
          s *= scale;
          if (c->bias_h)
            s += bias[((c->bias_b == 1 ? 0 : b) * c->bias_h + (c->bias_h == 1 ? 0 : hh)) * c->Tq *
                          c->Tk +
                      i * c->Tk + j];
          p[j] = s;
          mx = s > mx ? s : mx;
          E = fmax(E, 0x1p-7 * scale * sa);
        }
        for (int64_t j = lo; j < hi; j++) sum += (p[j] = exp(p[j] - mx));
        maxE = fmax(maxE, E);
        for (int64_t d = 0; d < c->D; d++) {
          double pv = 0;
          for (int64_t j = lo; j < hi; j++) pv += p[j] / sum * fabs(vb[j * c->D + d]);
          double bound = 1.5 * (2 * E + 0x1p-7) * pv + 1e-6;
          int64_t e = ((b * c->H + hh) * c->Tq + i) * c->D + d;
          double err = fabs((double)h.out[e] - f.out[e]);
          if (err > bound) bad++;
          if (err > worst) worst = err, worst_bound = bound;
        }
      }
  free(p);
  printf("%s: out max |bf16 - f32| = %.3g (its bound %.3g), %lld over\n", c->name, worst,
         worst_bound, (long long)bad);
  CHECK_MSG(bad == 0, "%s: %lld outputs over their bound", c->name, (long long)bad);
  CHECK_MSG(max_diff(h.out, f.out, nq) > 0, "%s: bf16 equals f32: the bf16 path did not run",
            c->name);
  double rel = 2 * (2 * maxE + 3 * 0x1p-7);
  grad_check(c->name, "dq", h.dq, f.dq, nq, rel);
  grad_check(c->name, "dk", h.dk, f.dk, nk, rel);
  grad_check(c->name, "dv", h.dv, f.dv, nk, rel);
  if (c->bias_h) grad_check(c->name, "dbias", h.db, f.db, nb, rel);
  result *rs[2] = {&f, &h};
  for (int i = 0; i < 2; i++) {
    free(rs[i]->out), free(rs[i]->dq), free(rs[i]->dk), free(rs[i]->dv), free(rs[i]->db);
  }
  free(q), free(k), free(v), free(w), free(bias);
}

/* Producers whose tape entry says the output is unread (vt_node.out_unread), so that
 * vt_gemm_input may overwrite it: rms_norm, layer_norm, mul, permute (through a reshape view). */
static vt_tensor *producer(vt_ctx *ctx, int p, vt_tensor *x, int64_t R, int64_t C) {
  switch (p) {
  case 0: return vt_rms_norm(ctx, x, NULL, 1e-6f);
  case 1: return vt_layer_norm(ctx, x, NULL, NULL, 1e-5f);
  case 2: return vt_mul(ctx, x, x);
  default: {
    vt_tensor *v = vt_reshape(ctx, x, 3, (int64_t[]){2, R / 2, C});
    v = vt_permute(ctx, v, (const int[]){1, 0, 2});
    return vt_reshape(ctx, v, 2, (int64_t[]){R, C});
  }
  }
}

/* vt_gemm_input: producer -> bf16 activation -> matmul equals the per-call conversion's result
 * bit for bit (both GEMMs read the same bf16 values), forward and backward, and the
 * activation's f32 space goes back to the arena. */
static void gemm_input_case(vt_ctx *ctx, vt_rng *rng) {
  enum { R = 96, C = 80, N = 72 };
  static const char *const names[4] = {"rms_norm", "layer_norm", "mul", "permute + reshape"};
  static float x[R * C], w[N * C], gw[2][N * C], gx[2][R * C], y[2][R * N];
  for (int p = 0; p < 4; p++) {
    vt_test_fill_uniform(rng, x, R * C, -2.0f, 2.0f);
    vt_test_fill_uniform(rng, w, N * C, -1.0f, 1.0f);
    size_t saved = 0;
    for (int mode = 0; mode < 2; mode++) {
      vt_tensor *tx = input_f32(ctx, 2, (int64_t[]){R, C}, x);
      vt_tensor *tw = input_f32(ctx, 2, (int64_t[]){N, C}, w);
      vt_tensor *h = producer(ctx, p, tx, R, C);
      size_t before = vt_arena_used(&ctx->data);
      if (mode) {
        h = vt_gemm_input(ctx, h);
        CHECK_MSG(h->dtype == VT_BF16, "%s: not stored in bf16", names[p]);
        saved = before - vt_arena_used(&ctx->data);
      }
      vt_tensor *out = vt_matmul(ctx, h, tw, false, true);
      vt_read_host(ctx, out, 0, R * N, y[mode]);
      CHECK_MSG(vt_backward(ctx, vt_sum(ctx, vt_reshape(ctx, out, 1, (int64_t[]){-1}), 0, false)),
                "%s: %s", names[p], vt_ctx_error(ctx));
      float *g1 = read_grad(ctx, tx), *g2 = read_grad(ctx, tw);
      memcpy(gx[mode], g1, sizeof gx[mode]);
      memcpy(gw[mode], g2, sizeof gw[mode]);
      free(g1), free(g2);
      vt_ctx_reset(ctx);
    }
    CHECK_MSG(memcmp(y[0], y[1], sizeof y[0]) == 0, "%s: out", names[p]);
    CHECK_MSG(memcmp(gx[0], gx[1], sizeof gx[0]) == 0, "%s: dx", names[p]);
    CHECK_MSG(memcmp(gw[0], gw[1], sizeof gw[0]) == 0, "%s: dw", names[p]);
    printf("gemm_input after %s: %zu of %zu f32 bytes back to the arena\n", names[p], saved,
           sizeof(float) * R * C);
    CHECK_MSG(saved >= sizeof(float) * R * C / 2 - 64, "%s: %zu bytes back", names[p], saved);
  }
  /* a tensor whose producer's backward reads it (sigmoid), or that a later op read (the add
   * below the mul), keeps its f32 values and gains a copy; vt_lowp_store leaves it alone */
  vt_tensor *a = input_f32(ctx, 2, (int64_t[]){R, C}, x);
  vt_tensor *s = vt_sigmoid(ctx, a);
  CHECK(vt_lowp_store(ctx, s) == s && s->dtype == VT_F32 && !s->lowp);
  CHECK(vt_gemm_input(ctx, s) == s && s->dtype == VT_F32 && s->lowp);
  s = vt_add(ctx, a, a);
  vt_mul(ctx, s, a);
  CHECK(vt_lowp_store(ctx, s) == s && s->dtype == VT_F32 && !s->lowp);
  CHECK(vt_gemm_input(ctx, s) == s && s->dtype == VT_F32 && s->lowp);
  /* and a bf16 activation is refused by the f32 ops with the dtype in the message */
  vt_tensor *n = vt_gemm_input(ctx, vt_rms_norm(ctx, a, NULL, 1e-6f));
  CHECK(n->dtype == VT_BF16);
  vt_add(ctx, n, n);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "bf16"));
  printf("f32 op on a bf16 activation: %s\n", vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
}

/* The reader of a bf16-stored projection: vt_swiglu on [R, 2 F], or vt_attention_qkv (RoPE,
 * causal) on the projection viewed as [2, R / 2, (4 + 2 * 2) 8]. */
static vt_tensor *lowp_reader(vt_ctx *ctx, int which, vt_tensor *y, int64_t R) {
  if (which == 0) return vt_swiglu(ctx, y);
  static int32_t pos[32];
  for (int i = 0; i < 32; i++) pos[i] = i;
  vt_tensor *tp = vt_new(ctx, VT_I32, 1, (int64_t[]){R / 2});
  vt_write_host(ctx, tp, 0, R / 2, pos);
  vt_attn_opts o = {.mask = VT_ATTN_CAUSAL, .scale = 0.01f};
  return vt_attention_qkv(ctx, y, 4, 2, tp, 10000.0f, &o);
}

/* vt_lowp_store of a projection read by vt_swiglu (the packed gate/up) or vt_attention_qkv
 * (the packed q/k/v, through a reshape view): with integer inputs whose products are exact in
 * bf16, the bf16-stored projection gives the f32 one's output and gradients bit for bit (the
 * bf16 kernels widen it and run the f32 arithmetic), and half the projection's bytes go back
 * to the arena. */
static void lowp_store_case(vt_ctx *ctx, vt_rng *rng, int which) {
  enum { R = 64, K = 16, F = 600 }; /* F past one SWIGLU_SPAN of the CPU kernel */
  const char *name = which ? "attention_qkv" : "swiglu";
  int64_t N = which ? 8 * 8 : 2 * F, No = which ? 4 * 8 : F; /* projection, output columns */
  static float x[R * K], w[2 * F * K], c[R * F], h[2][R * F], gx[2][R * K], gw[2][2 * F * K];
  for (int i = 0; i < R * K; i++) x[i] = (float)vt_rng_below(rng, 5) - 2.0f;
  for (int i = 0; i < N * K; i++) w[i] = (float)vt_rng_below(rng, 5) - 2.0f;
  vt_test_fill_uniform(rng, c, R * No, -1.0f, 1.0f);
  size_t saved = 0;
  for (int mode = 0; mode < 2; mode++) {
    vt_tensor *tx = input_f32(ctx, 2, (int64_t[]){R, K}, x);
    vt_tensor *tw = input_f32(ctx, 2, (int64_t[]){N, K}, w);
    vt_tensor *tc = vt_new(ctx, VT_F32, 1, (int64_t[]){R * No});
    vt_write_host(ctx, tc, 0, R * No, c);
    vt_tensor *y = vt_matmul(ctx, tx, tw, false, true);
    if (which) y = vt_reshape(ctx, y, 3, (int64_t[]){2, R / 2, N});
    if (mode) {
      size_t before = vt_arena_used(&ctx->data);
      y = vt_lowp_store(ctx, y);
      CHECK_MSG(y->dtype == VT_BF16 && !y->lowp, "%s: the projection is not stored in bf16", name);
      saved = before - vt_arena_used(&ctx->data);
    }
    vt_tensor *out = vt_reshape(ctx, lowp_reader(ctx, which, y, R), 1, (int64_t[]){-1});
    vt_read_host(ctx, out, 0, R * No, h[mode]);
    CHECK_MSG(vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, out, tc), 0, false)), "%s: %s", name,
              vt_ctx_error(ctx));
    float *g1 = read_grad(ctx, tx), *g2 = read_grad(ctx, tw);
    memcpy(gx[mode], g1, sizeof gx[mode]);
    memcpy(gw[mode], g2, sizeof(float) * (size_t)(N * K));
    free(g1), free(g2);
    vt_ctx_reset(ctx);
  }
  CHECK_MSG(memcmp(h[0], h[1], sizeof(float) * (size_t)(R * No)) == 0, "%s on bf16: out", name);
  CHECK_MSG(memcmp(gx[0], gx[1], sizeof gx[0]) == 0, "%s on bf16: dx", name);
  CHECK_MSG(memcmp(gw[0], gw[1], sizeof(float) * (size_t)(N * K)) == 0, "%s on bf16: dw", name);
  printf("lowp_store before %s: %zu of %zu f32 bytes back to the arena\n", name, saved,
         sizeof(float) * (size_t)(R * N));
  CHECK_MSG(saved >= sizeof(float) * (size_t)(R * N) / 2 - 64, "%s: %zu bytes back", name, saved);
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
  static const int32_t len[2] = {90, 0}, pre[3] = {5, 40, 0};
  static int32_t segs[2 * 96];
  for (int i = 0; i < 2 * 96; i++) segs[i] = (i % 96) < 30 ? 0 : (i % 96) < 71 ? 1 : 2;
  const acase cases[] = {
      {"causal gqa tail", 2, 4, 2, 100, 100, 32, {.mask = VT_ATTN_CAUSAL}, NULL, NULL, NULL, 0, 0},
      {"cross lengths",
       2,
       2,
       1,
       70,
       130,
       16,
       {.mask = VT_ATTN_BIDIRECTIONAL},
       len,
       NULL,
       NULL,
       0,
       0},
      {"shared bias", 2, 3, 3, 65, 65, 16, {.mask = VT_ATTN_CAUSAL}, NULL, NULL, NULL, 1, 3},
      {"bias per sample",
       2,
       2,
       1,
       40,
       40,
       8,
       {.mask = VT_ATTN_BIDIRECTIONAL},
       NULL,
       NULL,
       NULL,
       2,
       1},
      {"prefix", 3, 2, 2, 64, 64, 16, {.mask = VT_ATTN_PREFIX}, NULL, pre, NULL, 0, 0},
      {"chunk",
       1,
       2,
       1,
       150,
       150,
       16,
       {.mask = VT_ATTN_CHUNK, .chunk_size = 16, .left_chunks = 2},
       NULL,
       NULL,
       NULL,
       0,
       0},
      {"segments", 2, 4, 1, 96, 96, 16, {.mask = VT_ATTN_CAUSAL}, NULL, NULL, segs, 0, 0},
      /* 10 (batch, kv head) pairs of ~0.4 MiB: the CPU kernel runs them in chunks of 4, 4, 2 */
      {"pair chunks", 5, 4, 2, 200, 200, 64, {.mask = VT_ATTN_CAUSAL}, NULL, NULL, NULL, 1, 4},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(ctx, &cases[i], &rng);
  gemm_input_case(ctx, &rng);
  lowp_store_case(ctx, &rng, 0);
  lowp_store_case(ctx, &rng, 1);
  /* the same on a copy of the CPU backend without the bf16 swiglu and rope_qkv kernels: the
   * ops widen the bf16 projection into scratch for the f32 kernels */
  vt_backend be = *vt_ctx_backend(ctx);
  struct vt_norm_kernels nk = *be.norm;
  be.swiglu_bf16 = NULL;
  be.swiglu_backward_bf16 = NULL;
  nk.rope_qkv_bf16 = NULL;
  be.norm = &nk;
  const char *cerr = NULL;
  vt_ctx *wide = vt_ctx_init(&(vt_ctx_opts){.backend = &be}, &cerr);
  CHECK_MSG(wide && vt_ctx_set_gemm_dtype(wide, VT_BF16, NULL, 0, err, sizeof err) == 0, "%s",
            cerr ? cerr : err);
  if (wide) {
    lowp_store_case(wide, &rng, 0);
    lowp_store_case(wide, &rng, 1);
    vt_ctx_free(wide);
  }
  vt_ctx_free(ctx);
  return vt_test_finish("test_bf16_attn");
}
