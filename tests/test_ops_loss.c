// ctest-labels: unit grad
/* Loss checks beyond the per-op cases of tests/op_table.h: the LM loss against PyTorch in
 * every chunking and with pre-shifted labels, kept vs recomputed logits, finite differences
 * for each loss and reduction on inputs made for them, the VQ loss's stop-gradients, the
 * chunked LM loss's peak memory with a 152k vocabulary, and error paths. */
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/ops_loss.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

/* f32 results of short sums compared with PyTorch's f32 results. */
#define ATOL 1e-5
#define RTOL 1e-4

static vt_fixture *fx;

static vt_tensor *load(vt_ctx *ctx, const char *name) {
  const vt_fixture_tensor *t = vt_fixture_get(fx, name);
  if (t->is_int) return vt_from_host(ctx, VT_I32, t->ndim, t->shape, t->i);
  return vt_from_host(ctx, VT_F32, t->ndim, t->shape, t->f);
}

static vt_tensor *load_leaf(vt_ctx *ctx, const char *name) {
  vt_tensor *t = load(ctx, name);
  vt_requires_grad(ctx, t);
  return t;
}

static void check_loss(vt_ctx *ctx, const char *name, vt_tensor *loss) {
  CHECK_MSG(!vt_ctx_failed(ctx), "%s: %s", name, vt_ctx_error(ctx));
  if (vt_ctx_failed(ctx)) return;
  char key[128];
  snprintf(key, sizeof key, "%s.loss", name);
  float got = vt_item(ctx, loss);
  CHECK_CLOSE(key, &got, vt_fixture_get(fx, key)->f, 1, ATOL, RTOL);
  CHECK(vt_backward(ctx, loss));
}

static void check_grad(vt_ctx *ctx, const char *name, const char *field, vt_tensor *t) {
  char key[128];
  snprintf(key, sizeof key, "%s.%s", name, field);
  const vt_fixture_tensor *want = vt_fixture_get(fx, key);
  float *g = malloc(sizeof(float) * (size_t)want->n);
  vt_grad_to_host(ctx, t, g);
  CHECK_CLOSE(key, g, want->f, want->n, ATOL, RTOL);
  free(g);
}

static void test_lm_ce(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  const int64_t chunks[4] = {1, 3, 0, 100};
  for (int shifted = 0; shifted < 2; shifted++)
    for (int red = 0; red < 2; red++)
      for (int c = 0; c < 4; c++) {
        const char *name = red ? "lm_sum" : "lm_mean";
        vt_tensor *h = load_leaf(ctx, "lm.hidden"), *w = load_leaf(ctx, "lm.weight");
        vt_tensor *labels = load(ctx, "lm.labels");
        if (shifted) { /* the same targets, given already aligned with the rows */
          const vt_fixture_tensor *l = vt_fixture_get(fx, "lm.labels");
          int32_t s[12];
          for (int i = 0; i < 12; i++) s[i] = i % 6 == 5 ? VT_IGNORE_INDEX : l->i[i + 1];
          labels = vt_from_host(ctx, VT_I32, 2, l->shape, s);
        }
        vt_lm_ce_opts o = {chunks[c], shifted, red ? VT_LOSS_SUM : VT_LOSS_MEAN};
        check_loss(ctx, name, vt_lm_cross_entropy(ctx, h, w, labels, &o));
        check_grad(ctx, name, "dhidden", h);
        check_grad(ctx, name, "dweight", w);
        vt_ctx_reset(ctx);
      }
  /* no counted label: loss 0 and zero gradients (PyTorch's mean would be NaN) */
  vt_tensor *h = load_leaf(ctx, "lm.hidden"), *w = load_leaf(ctx, "lm.weight");
  int32_t none[12];
  for (int i = 0; i < 12; i++) none[i] = VT_IGNORE_INDEX;
  vt_tensor *loss =
      vt_lm_cross_entropy(ctx, h, w, vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 6}, none), NULL);
  CHECK(vt_item(ctx, loss) == 0.0f);
  CHECK(vt_backward(ctx, loss));
  float g[96];
  vt_grad_to_host(ctx, h, g);
  for (int i = 0; i < 96; i++) CHECK(g[i] == 0.0f);
  vt_ctx_free(ctx);
}

/* One chunk for every counted row keeps the forward's logits for backward; more chunks form
 * them again. Both paths give the same loss and gradients up to the order of the f32 sums
 * (dweight adds chunks' GEMMs one after the other): at most Nv = 64 terms, so 64 eps relative. */
static void test_lm_ce_kept_vs_recomputed(void) {
  enum { B = 2, T = 33, D = 16, V = 50 };
  vt_rng r;
  vt_rng_seed(&r, 5);
  float h[B * T * D], w[V * D];
  int32_t labels[B * T];
  vt_test_fill_uniform(&r, h, B * T * D, -1, 1);
  vt_test_fill_uniform(&r, w, V * D, -1, 1);
  for (int i = 0; i < B * T; i++) labels[i] = i % 9 == 4 ? VT_IGNORE_INDEX : (i * 37) % V;
  int64_t nv = 0; /* counted rows: the shifted labels that are not ignored */
  for (int b = 0; b < B; b++)
    for (int t = 1; t < T; t++) nv += labels[b * T + t] != VT_IGNORE_INDEX;
  const int64_t chunks[3] = {0, nv - 1, 1}; /* auto (one chunk: kept), two chunks, nv chunks */
  vt_ctx *ctx = vt_test_cpu_ctx();
  for (int red = 0; red < 2; red++) {
    float loss[3], dh[3][B * T * D], dw[3][V * D];
    for (int c = 0; c < 3; c++) {
      vt_tensor *ht = vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, D}, h);
      vt_tensor *wt = vt_from_host(ctx, VT_F32, 2, (int64_t[]){V, D}, w);
      vt_requires_grad(ctx, ht);
      vt_requires_grad(ctx, wt);
      vt_lm_ce_opts o = {.chunk_rows = chunks[c], .reduction = red ? VT_LOSS_SUM : VT_LOSS_MEAN};
      vt_tensor *l = vt_lm_cross_entropy(
          ctx, ht, wt, vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, labels), &o);
      loss[c] = vt_item(ctx, l);
      CHECK(vt_backward(ctx, l));
      vt_grad_to_host(ctx, ht, dh[c]);
      vt_grad_to_host(ctx, wt, dw[c]);
      vt_ctx_reset(ctx);
    }
    const double rtol = 64 * 1.1920929e-7, atol = 1e-7;
    for (int c = 1; c < 3; c++) {
      CHECK_CLOSE("lm ce kept vs recomputed loss", &loss[0], &loss[c], 1, atol, rtol);
      CHECK_CLOSE("lm ce kept vs recomputed dhidden", dh[0], dh[c], B * T * D, atol, rtol);
      CHECK_CLOSE("lm ce kept vs recomputed dweight", dw[0], dw[c], V * D, atol, rtol);
    }
  }
  vt_ctx_free(ctx);
}

/* Without zero_infinity an impossible sample makes the CTC loss infinite (the fixture case
 * of tests/op_table.h sets it). */
static void test_ctc_infinite(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *loss = vt_ctc_loss(ctx, vt_log_softmax(ctx, load(ctx, "ctc_zero_inf.logits")),
                                load(ctx, "ctc_zero_inf.targets"), load(ctx, "ctc_zero_inf.il"),
                                load(ctx, "ctc_zero_inf.tl"), NULL);
  CHECK(isinf(vt_item(ctx, loss)) && vt_item(ctx, loss) > 0);
  vt_ctx_free(ctx);
}

/* ---- finite differences ---- */

typedef struct {
  int which;
  vt_loss_reduction red;
  vt_ctc_opts ctc;
  int64_t chunk;
} gc_loss;

static vt_tensor *loss_graph(vt_ctx *ctx, vt_tensor **in, void *user) {
  gc_loss *u = user;
  switch (u->which) {
  case 0: {
    vt_lm_ce_opts o = {.chunk_rows = u->chunk, .reduction = u->red};
    return vt_lm_cross_entropy(ctx, in[0], in[1], in[2], &o);
  }
  case 1: return vt_cross_entropy(ctx, in[0], in[1], in[2], VT_IGNORE_INDEX, u->red);
  case 2: return vt_ctc_loss(ctx, in[0], in[1], in[2], in[3], &u->ctc);
  case 3: return vt_l1_loss(ctx, in[0], in[1], u->red);
  case 4: return vt_mse_loss(ctx, in[0], in[1], u->red);
  case 5: return vt_cosine_loss(ctx, in[0], in[1]);
  default: return vt_vq_loss(ctx, in[0], in[1], 0.25f);
  }
}

static void test_gradcheck(void) {
  vt_rng r;
  vt_rng_seed(&r, 11);
  float h[2 * 4 * 3], w[7 * 3], x[5 * 4], cw[4] = {1, 5, 1, 2}, a[12], b[12];
  vt_test_fill_uniform(&r, h, 24, -1, 1);
  vt_test_fill_uniform(&r, w, 21, -1, 1);
  vt_test_fill_uniform(&r, x, 20, -2, 2);
  vt_test_fill_uniform(&r, a, 12, -1, 1);
  vt_test_fill_uniform(&r, b, 12, -1, 1);
  int32_t labels[8] = {-100, 3, 6, 0, 2, -100, 5, 5}, tgt[5] = {0, 3, -100, 1, 3};
  for (int red = 0; red < 2; red++) {
    gc_loss u = {.which = 0, .red = red ? VT_LOSS_SUM : VT_LOSS_MEAN, .chunk = 2};
    vt_gc_input lm[3] = {{VT_F32, 3, {2, 4, 3}, h, true},
                         {VT_F32, 2, {7, 3}, w, true},
                         {VT_I32, 2, {2, 4}, labels, false}};
    CHECK_GRAD(red ? "lm ce sum" : "lm ce mean", loss_graph, &u, lm, 3);
    u.which = 1;
    vt_gc_input ce[3] = {
        {VT_F32, 2, {5, 4}, x, true}, {VT_I32, 1, {5}, tgt, false}, {VT_F32, 1, {4}, cw, false}};
    CHECK_GRAD(red ? "weighted ce sum" : "weighted ce mean", loss_graph, &u, ce, 3);
    for (int k = 3; k <= 4; k++) {
      u.which = k;
      vt_gc_input d[2] = {{VT_F32, 2, {3, 4}, a, true}, {VT_F32, 2, {3, 4}, b, true}};
      CHECK_GRAD(k == 3 ? "l1" : "mse", loss_graph, &u, d, 2);
    }
  }
  gc_loss cu = {.which = 5};
  vt_gc_input d[2] = {{VT_F32, 2, {3, 4}, a, true}, {VT_F32, 2, {3, 4}, b, true}};
  CHECK_GRAD("cosine", loss_graph, &cu, d, 2);
  /* The VQ loss stops gradients on purpose, so finite differences of its value do not apply:
   * its gradients are those of mse (checked above), 1 x to zq and beta x to x. */
  vt_ctx *ctx = vt_test_cpu_ctx();
  float g[4][12];
  for (int vq = 0; vq < 2; vq++) {
    vt_tensor *ta = vt_from_host(ctx, VT_F32, 2, (int64_t[]){3, 4}, a);
    vt_tensor *tb = vt_from_host(ctx, VT_F32, 2, (int64_t[]){3, 4}, b);
    vt_requires_grad(ctx, ta);
    vt_requires_grad(ctx, tb);
    vt_tensor *loss = vq ? vt_vq_loss(ctx, ta, tb, 0.25f) : vt_mse_loss(ctx, ta, tb, VT_LOSS_MEAN);
    if (vq) {
      float m = 0;
      for (int i = 0; i < 12; i++) m += (a[i] - b[i]) * (a[i] - b[i]) / 12;
      float got = vt_item(ctx, loss), want = 1.25f * m;
      CHECK_CLOSE("vq value", &got, &want, 1, 1e-6, 1e-5);
    }
    CHECK(vt_backward(ctx, loss));
    vt_grad_to_host(ctx, ta, g[2 * vq]);
    vt_grad_to_host(ctx, tb, g[2 * vq + 1]);
    vt_ctx_reset(ctx);
  }
  for (int i = 0; i < 12; i++) g[1][i] *= 0.25f;
  CHECK_CLOSE("vq dzq", g[2], g[0], 12, 1e-7, 1e-6);
  CHECK_CLOSE("vq dx", g[3], g[1], 12, 1e-7, 1e-6);
  vt_ctx_free(ctx);
  /* CTC on arbitrary log-probabilities: the exact gradient w.r.t. log_probs */
  float lp[3 * 6 * 4];
  vt_test_fill_uniform(&r, lp, 72, -3, 0);
  int32_t ct[3 * 3] = {1, 2, 2, 3, 0, 0, 1, 1, 2}, il[3] = {6, 4, 3}, tl[3] = {3, 1, 3};
  gc_loss cases[3] = {{.which = 2, .ctc = {0, VT_LOSS_MEAN, true}},
                      {.which = 2, .ctc = {0, VT_LOSS_SUM, true}},
                      {.which = 2, .ctc = {2, VT_LOSS_MEAN, true}}};
  const char *names[3] = {"ctc mean", "ctc sum", "ctc blank 2"};
  for (int c = 0; c < 3; c++) {
    int32_t t[9];
    memcpy(t, ct, sizeof t);
    if (c == 2) t[1] = 3, t[2] = 3, t[8] = 3; /* no target may be the blank */
    vt_gc_input in[4] = {{VT_F32, 3, {3, 6, 4}, lp, true},
                         {VT_I32, 2, {3, 3}, t, false},
                         {VT_I32, 1, {3}, il, false},
                         {VT_I32, 1, {3}, tl, false}};
    CHECK_GRAD(names[c], loss_graph, &cases[c], in, 4);
  }
}

/* A 152k vocabulary: the arena never holds more than a chunk of logits. */
static void test_lm_ce_memory(void) {
  const int64_t B = 2, T = 64, D = 8, V = 152064, N = B * T, chunk = 16;
  vt_rng r;
  vt_rng_seed(&r, 3);
  float *h = malloc(sizeof(float) * (size_t)(N * D)), *w = malloc(sizeof(float) * (size_t)(V * D));
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)N);
  vt_test_fill_uniform(&r, h, (long)(N * D), -1, 1);
  vt_test_fill_uniform(&r, w, (long)(V * D), -1, 1);
  for (int64_t i = 0; i < N; i++)
    labels[i] = i % 7 == 3 ? VT_IGNORE_INDEX : (int32_t)((i * 7919) % V);
  vt_ctx *ctx =
      vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}, .arena_bytes = 1 << 20}, NULL);
  vt_tensor *ht = vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, D}, h);
  vt_tensor *wt = vt_from_host(ctx, VT_F32, 2, (int64_t[]){V, D}, w);
  vt_tensor *lt = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, labels);
  vt_requires_grad(ctx, ht);
  vt_requires_grad(ctx, wt);
  vt_lm_ce_opts o = {.chunk_rows = chunk};
  vt_tensor *loss = vt_lm_cross_entropy(ctx, ht, wt, lt, &o);
  CHECK(vt_backward(ctx, loss));
  /* reference value in double on the host */
  double sum = 0;
  long count = 0;
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t + 1 < T; t++) {
      int32_t y = labels[b * T + t + 1];
      if (y == VT_IGNORE_INDEX) continue;
      const float *hr = h + (b * T + t) * D;
      double m = -INFINITY, s = 0, ly = 0;
      double *z = malloc(sizeof(double) * (size_t)V);
      for (int64_t v = 0; v < V; v++) {
        double acc = 0;
        for (int64_t d = 0; d < D; d++) acc += (double)hr[d] * w[v * D + d];
        z[v] = acc;
        m = acc > m ? acc : m;
      }
      for (int64_t v = 0; v < V; v++) s += exp(z[v] - m);
      ly = z[y];
      free(z);
      sum += m + log(s) - ly;
      count++;
    }
  float want = (float)(sum / (double)count), got = vt_item(ctx, loss);
  CHECK_CLOSE("lm ce 152k loss", &got, &want, 1, 1e-5, 1e-5);
  size_t full = (size_t)(N * V) * sizeof(float);
  size_t io = (size_t)(2 * N * D + 2 * V * D) * sizeof(float) + (size_t)N * 4; /* +grads */
  size_t bound = io + (size_t)(chunk * V) * sizeof(float) + (1 << 20);
  size_t hw = vt_ctx_arena_high_water(ctx);
  CHECK_MSG(hw < bound && hw < full / 2,
            "arena high-water %zu bytes, bound %zu (inputs, grads, one chunk), full logits %zu", hw,
            bound, full);
  vt_ctx_free(ctx);
  free(h);
  free(w);
  free(labels);
}

static void expect_error(vt_ctx *ctx, vt_tensor *got, const char *op, const char *needle) {
  CHECK_MSG(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), op) &&
                strstr(vt_ctx_error(ctx), needle),
            "error '%s' lacks '%s' / '%s'", vt_ctx_error(ctx), op, needle);
  CHECK(got != NULL && isnan(vt_item(ctx, got)));
  vt_ctx_clear_error(ctx);
}

static void test_errors(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *h = vt_zeros(ctx, VT_F32, 3, (int64_t[]){2, 4, 8});
  vt_tensor *w = vt_zeros(ctx, VT_F32, 2, (int64_t[]){10, 8});
  vt_tensor *w6 = vt_zeros(ctx, VT_F32, 2, (int64_t[]){10, 6});
  vt_tensor *l = vt_zeros(ctx, VT_I32, 2, (int64_t[]){2, 4});
  vt_tensor *l5 = vt_zeros(ctx, VT_I32, 2, (int64_t[]){2, 5});
  expect_error(ctx, vt_lm_cross_entropy(ctx, h, w6, l, NULL), "lm_cross_entropy", "[10, 6]");
  expect_error(ctx, vt_lm_cross_entropy(ctx, h, w, l5, NULL), "lm_cross_entropy", "[2, 5]");
  int32_t big[8] = {0, 1, 2, 3, 4, 10, 6, 7};
  expect_error(
      ctx,
      vt_lm_cross_entropy(ctx, h, w, vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 4}, big), NULL),
      "lm_cross_entropy", "label 10");
  vt_tensor *x = vt_zeros(ctx, VT_F32, 2, (int64_t[]){3, 4});
  int32_t t3[3] = {0, 4, 1};
  vt_tensor *tt = vt_from_host(ctx, VT_I32, 1, (int64_t[]){3}, t3);
  expect_error(ctx, vt_cross_entropy(ctx, x, tt, NULL, -100, VT_LOSS_MEAN), "cross_entropy",
               "target 4");
  expect_error(ctx, vt_cross_entropy(ctx, x, l, NULL, -100, VT_LOSS_MEAN), "cross_entropy",
               "[3, 4]");
  expect_error(
      ctx,
      vt_cross_entropy(ctx, x, vt_zeros(ctx, VT_I32, 1, (int64_t[]){3}), w, -100, VT_LOSS_MEAN),
      "cross_entropy", "[10, 8]");
  vt_tensor *lp = vt_zeros(ctx, VT_F32, 3, (int64_t[]){2, 5, 4});
  int32_t il[2] = {5, 6}, tl[2] = {2, 1}, tg[4] = {1, 2, 3, 0};
  vt_tensor *ilt = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, il);
  vt_tensor *tlt = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, tl);
  vt_tensor *tgt = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 2}, tg);
  expect_error(ctx, vt_ctc_loss(ctx, lp, tgt, ilt, tlt, NULL), "ctc_loss", "input length 6");
  il[1] = 5;
  ilt = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, il);
  tg[1] = 0; /* the blank as a target */
  tgt = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 2}, tg);
  expect_error(ctx, vt_ctc_loss(ctx, lp, tgt, ilt, tlt, NULL), "ctc_loss", "target 0");
  expect_error(ctx,
               vt_ctc_loss(ctx, lp, vt_zeros(ctx, VT_I32, 2, (int64_t[]){3, 2}), ilt, tlt, NULL),
               "ctc_loss", "[3, 2]");
  expect_error(ctx, vt_mse_loss(ctx, x, h, VT_LOSS_MEAN), "mse_loss", "[2, 4, 8]");
  expect_error(ctx, vt_cosine_loss(ctx, h, x), "cosine_loss", "[3, 4]");
  expect_error(ctx, vt_vq_loss(ctx, x, l, 0.25f), "vq_loss", "i32");
  /* a backend without loss kernels reports it */
  vt_backend none = *ctx->be;
  none.name = "fake";
  none.loss = NULL;
  const vt_backend *real = ctx->be;
  ctx->be = &none;
  const char *na = "not supported on the fake backend (no kernels of the loss family)";
  expect_error(ctx, vt_lm_cross_entropy(ctx, h, w, l, NULL), "lm_cross_entropy", na);
  expect_error(ctx, vt_cross_entropy(ctx, x, tt, NULL, -100, VT_LOSS_MEAN), "cross_entropy", na);
  expect_error(ctx, vt_ctc_loss(ctx, lp, tgt, ilt, tlt, NULL), "ctc_loss", na);
  expect_error(ctx, vt_l1_loss(ctx, x, x, VT_LOSS_MEAN), "l1_loss", na);
  expect_error(ctx, vt_cosine_loss(ctx, x, x), "cosine_loss", na);
  ctx->be = real;
  vt_ctx_free(ctx);
}

int main(void) {
  fx = vt_fixture_load("ops/loss.txt");
  test_lm_ce();
  test_lm_ce_kept_vs_recomputed();
  test_ctc_infinite();
  test_gradcheck();
  test_lm_ce_memory();
  test_errors();
  vt_fixture_free(fx);
  return vt_test_finish("test_ops_loss");
}
