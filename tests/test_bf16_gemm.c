// ctest-labels: unit
/* bf16 mixed precision's pieces on the CPU: the oneDNN bf16 GEMM behind the backend's gemm, the
 * parameter store's bf16 copies and the ctx switch.
 *  - GEMM: every transpose pair on the step's shape classes (square, tall, wide, long
 *    reductions up to k = 2048), padded leading dimensions, batches with A, B or C shared
 *    (stride 0; a shared C sums the batch), alpha 0.5 and beta 0, 1 and 0.25, and the same
 *    geometry called again with other data (cached primitives), then more geometries than the
 *    cache holds. Two double references per element, with S = sum_p |a_p b_p|:
 *      bf16-exact (the inputs rounded to bf16, products exact): |got - ref| <= (k + 2) eps32 S,
 *        f32 accumulation only;
 *      f32 (the unrounded inputs): |got - ref| <= (1.01 2^-7 + (k + 2) eps32) S: bf16 keeps 8
 *        significant bits, so a rounded input is within 2^-8 relative (unit roundoff), a
 *        product within 2^-7 + 2^-16. With a shared C, k counts the whole batch.
 *  - copies: vt_params_enable_lowp fills t.lowp with bf16(t.data) bit for bit; vt_param_write
 *    and an optimizer step keep them so; disable_lowp clears them. A parameter without a copy
 *    (vt_params_set_copy, between two with copies) has t.lowp NULL, and neither the refresh
 *    nor AdamW's fused refresh writes its stretch of the copies while its masters move.
 *  - bf16 outputs: gemm_bf16_out equals gemm + bias + rounding bit for bit (every transpose,
 *    with and without a bias, batches, alpha), the fused bias of an f32 c equals gemm + add;
 *    vt_linear_lowp gives vt_linear + vt_lowp_store's output and gradients bit for bit with no
 *    f32 projection left in the arena.
 *  - ctx: f32 is always accepted, f16 is refused with a message.
 * Skips (77) with the reason when the CPU has no bf16 GEMM units or oneDNN is not built in. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"
#include "tests/testutil.h"
#include "train/optim.h"

typedef struct {
  bool ta, tb;
  int64_t m, n, k, batch;
  bool share_a, share_b, share_c;
  float alpha, beta;
} gcase;

static double at(const float *x, bool t, int64_t ld, int64_t r, int64_t p) {
  return t ? x[p * ld + r] : x[r * ld + p];
}

static int64_t worst_bad = 0;

/* Runs one case with data drawn from rng; returns the number of elements off either bound. */
static int64_t run_case(const vt_backend *be, const gcase *g, vt_rng *rng) {
  int64_t m = g->m, n = g->n, k = g->k, B = g->batch, pad = 5;
  int64_t ar = g->ta ? k : m, ac = g->ta ? m : k, br = g->tb ? n : k, bc = g->tb ? k : n;
  int64_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
  int64_t sa = g->share_a ? 0 : ar * lda, sb = g->share_b ? 0 : br * ldb;
  int64_t sc = g->share_c ? 0 : m * ldc;
  size_t na = (size_t)(ar * lda * (g->share_a ? 1 : B)),
         nb = (size_t)(br * ldb * (g->share_b ? 1 : B));
  size_t nc = (size_t)(m * ldc * (g->share_c ? 1 : B));
  float *a = malloc(4 * na), *b = malloc(4 * nb), *a16f = malloc(4 * na), *b16f = malloc(4 * nb);
  uint16_t *a16 = malloc(2 * na), *b16 = malloc(2 * nb);
  float *c0 = malloc(4 * nc), *c = malloc(4 * nc);
  vt_test_fill_uniform(rng, a, (long)na, -2.0f, 2.0f);
  vt_test_fill_uniform(rng, b, (long)nb, -1.0f, 1.0f);
  vt_test_fill_uniform(rng, c0, (long)nc, -1.0f, 1.0f);
  for (size_t i = 0; i < na; i++) a16f[i] = vt_bf16_to_f32(a16[i] = vt_f32_to_bf16(a[i]));
  for (size_t i = 0; i < nb; i++) b16f[i] = vt_bf16_to_f32(b16[i] = vt_f32_to_bf16(b[i]));
  memcpy(c, c0, 4 * nc);
  be->gemm(be, VT_BF16, g->ta, g->tb, m, n, k, g->alpha, a16, lda, sa, b16, ldb, sb, g->beta, c,
           ldc, sc, B);
  /* the reference, batch by batch in order (a shared C accumulates with beta once) */
  double *w16 = calloc(nc, sizeof(double)), *w32 = calloc(nc, sizeof(double));
  double *mag = calloc(nc, sizeof(double));
  for (size_t i = 0; i < nc; i++) w16[i] = w32[i] = c0[i];
  for (int64_t i = 0; i < B; i++)
    for (int64_t r = 0; r < m; r++)
      for (int64_t j = 0; j < n; j++) {
        double s16 = 0, s32 = 0, s = 0;
        for (int64_t p = 0; p < k; p++) {
          double x16 = at(a16f + i * sa, g->ta, lda, r, p),
                 y16 = at(b16f + i * sb, !g->tb, ldb, j, p);
          s16 += x16 * y16;
          s32 += at(a + i * sa, g->ta, lda, r, p) * at(b + i * sb, !g->tb, ldb, j, p);
          s += fabs(x16 * y16);
        }
        size_t e = (size_t)(i * sc + r * ldc + j);
        double bt = g->share_c && i > 0 ? 1.0 : g->beta;
        mag[e] = bt * fabs(mag[e]) + fabs(g->alpha) * s + fabs(bt * w16[e]);
        w16[e] = g->alpha * s16 + bt * w16[e];
        w32[e] = g->alpha * s32 + bt * w32[e];
      }
  int64_t bad = 0;
  double acc = ((double)k * (g->share_c ? (double)B : 1.0) + 2) * FLT_EPSILON;
  for (size_t e = 0; e < nc; e++) {
    int64_t col = (int64_t)(e % (size_t)ldc);
    if (col >= n) { /* padding is never written */
      bad += c[e] != c0[e];
      continue;
    }
    bad += !(fabs(c[e] - w16[e]) <= acc * mag[e] + 1e-30);
    /* (1 + 2^-8)^2 - 1 = 2^-7 + 2^-16, and S is of the rounded products: 1% of room */
    bad += !(fabs(c[e] - w32[e]) <= (0x1p-7 * 1.01 + acc) * mag[e] + 1e-30);
  }
  free(a), free(b), free(a16f), free(b16f), free(a16), free(b16), free(c0), free(c);
  free(w16), free(w32), free(mag);
  if (bad > worst_bad) worst_bad = bad;
  return bad;
}

static void gemm_cases(const vt_backend *be) {
  vt_rng rng;
  vt_rng_seed(&rng, 5);
  const int64_t shapes[][3] = {
      {64, 64, 64}, {96, 40, 512}, {17, 130, 33}, {256, 8, 2048}, {3, 300, 96}};
  int cases = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int t = 0; t < 4; t++) {
      gcase g = {t & 1, t >> 1, shapes[s][0], shapes[s][1], shapes[s][2],         1,
                 false, false,  false,        1.0f,         (t & 1) ? 1.0f : 0.0f};
      int64_t bad = run_case(be, &g, &rng);
      CHECK_MSG(bad == 0, "m %lld n %lld k %lld ta %d tb %d: %lld elements off", (long long)g.m,
                (long long)g.n, (long long)g.k, g.ta, g.tb, (long long)bad);
      bad = run_case(be, &g, &rng); /* the cached primitive, other data */
      CHECK_MSG(bad == 0, "cached m %lld n %lld k %lld ta %d tb %d: %lld elements off",
                (long long)g.m, (long long)g.n, (long long)g.k, g.ta, g.tb, (long long)bad);
      cases += 2;
    }
  /* batches: own operands, A shared, B shared, C shared (a sum over the batch), both shared */
  const gcase batched[] = {
      {false, true, 20, 24, 40, 3, false, false, false, 0.5f, 0.0f},
      {true, false, 20, 24, 40, 3, true, false, false, 1.0f, 1.0f},
      {false, false, 20, 24, 40, 3, false, true, false, 1.0f, 0.25f},
      {true, true, 20, 24, 40, 4, false, false, true, 1.0f, 1.0f},
      {false, true, 20, 24, 40, 2, true, true, false, 0.5f, 1.0f},
      {true, false, 16, 12, 300, 3, false, false, true, 1.0f, 0.0f},
  };
  for (size_t i = 0; i < sizeof batched / sizeof batched[0]; i++) {
    int64_t bad = run_case(be, &batched[i], &rng);
    CHECK_MSG(bad == 0, "batched case %zu: %lld elements off", i, (long long)bad);
    cases++;
  }
  /* more geometries than the primitive cache keeps (it starts over), each still right */
  int64_t bad = 0;
  for (int i = 0; i < 420; i++) {
    gcase g = {i & 1, (i >> 1) & 1, 2 + i % 7, 3 + i / 7, 5 + i % 3, 1,
               false, false,        false,     1.0f,      0.0f};
    bad += run_case(be, &g, &rng);
  }
  CHECK_MSG(bad == 0, "%lld elements off over 420 small geometries", (long long)bad);
  printf("bf16 GEMM: %d cases + 420 small geometries checked\n", cases);
}

/* Every copy equals bf16 of its master; a parameter without one has t.lowp NULL and its
 * stretch of the copies equals `untouched` (NULL: not checked). */
static bool lowp_matches(const vt_params *ps, const uint16_t *untouched) {
  size_t n = ps->numel[VT_F32];
  float *f = malloc(4 * n);
  uint16_t *h = malloc(2 * n);
  vt_buf_to_host(ps->be, f, ps->data[VT_F32], 4 * n);
  vt_buf_to_host(ps->be, h, ps->lowp, 2 * n);
  bool ok = true;
  for (int i = 0; i < ps->n; i++) {
    const vt_param *p = ps->items[i];
    size_t o = p->offset, e = o + (size_t)vt_numel(&p->t);
    if (p->no_copy) {
      ok = ok && p->t.lowp == NULL;
      for (size_t j = o; untouched && j < e; j++) ok = ok && h[j] == untouched[j - o];
      continue;
    }
    ok = ok && p->t.lowp == (uint16_t *)ps->lowp + o;
    for (size_t j = o; j < e; j++) ok = ok && h[j] == vt_f32_to_bf16(f[j]);
  }
  free(f);
  free(h);
  return ok;
}

static void copies(void) {
  char err[256];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_tensor *w = vt_params_add(&ps, "w", VT_F32, 2, (int64_t[]){30, 20}, err, sizeof err);
  vt_tensor *e = vt_params_add(&ps, "e", VT_F32, 2, (int64_t[]){10, 8}, err, sizeof err);
  vt_tensor *v = vt_params_add(&ps, "v", VT_F32, 1, (int64_t[]){7}, err, sizeof err);
  CHECK(w && e && v && vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_params_set_copy(&ps, e, false);
  CHECK(vt_params_enable_lowp(&ps, VT_F16, err, sizeof err) == -1 && strstr(err, "f16"));
  vt_rng rng;
  vt_rng_seed(&rng, 9);
  float host[1024]; /* >= the padded gradient buffer (ps.grad_numel) */
  vt_test_fill_uniform(&rng, host, 600, -3.0f, 3.0f);
  CHECK(vt_param_write_f32(&ps, w, host, err, sizeof err) == 0);
  CHECK(vt_param_fill(&ps, e, 0.5f, err, sizeof err) == 0);
  CHECK(vt_params_enable_lowp(&ps, VT_BF16, err, sizeof err) == 0);
  CHECK_MSG(lowp_matches(&ps, NULL), "copies after enable");
  uint16_t e_before[80];
  vt_buf_to_host(ps.be, e_before, (uint16_t *)ps.lowp + vt_params_find(&ps, "e")->offset,
                 sizeof e_before);
  vt_test_fill_uniform(&rng, host, 600, -3.0f, 3.0f);
  CHECK(vt_param_write_f32(&ps, w, host, err, sizeof err) == 0);
  CHECK(vt_param_fill(&ps, v, 0.3f, err, sizeof err) == 0);
  CHECK(vt_param_fill(&ps, e, 0.25f, err, sizeof err) == 0);
  CHECK_MSG(lowp_matches(&ps, e_before), "copies after writes");
  /* an optimizer step moves the masters; the copies follow */
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 0.1;
  vt_optim opt;
  CHECK(vt_optim_init(&opt, &ps, &oc, err, sizeof err) == 0);
  CHECK(ps.grad_numel <= 1024);
  vt_test_fill_uniform(&rng, host, 1024, -1.0f, 1.0f);
  vt_params_grad_from_host(&ps, host);
  vt_optim_stats st;
  CHECK(vt_optim_step(&opt, 1.0, 0, &st, err, sizeof err) == 0);
  CHECK_MSG(lowp_matches(&ps, e_before), "copies after an optimizer step");
  float e_now[80];
  CHECK(vt_param_read_f32(&ps, e, e_now, err, sizeof err) == 0);
  CHECK_MSG(e_now[0] != 0.25f, "the parameter without a copy was not updated");
  vt_params_sync_lowp(&ps);
  CHECK_MSG(lowp_matches(&ps, e_before), "copies after a full refresh");
  vt_optim_free(&opt);
  vt_params_disable_lowp(&ps);
  CHECK(ps.lowp == NULL && w->lowp == NULL && v->lowp == NULL && e->lowp == NULL);
  vt_params_free(&ps);
}

/* gemm_bf16_out against its contract: the f32 gemm (beta 0), plus the bias, then rounded to
 * bf16, bit for bit, on every transpose pair of the shape classes, with and without a bias,
 * batches with A or B shared and alpha 0.5; padding of c is never written. And the f32 c with
 * a fused bias (gemm_epilogue with bf16 inputs, oneDNN's bias) against gemm + add. */
static void out_cases(const vt_backend *be, vt_rng *rng) {
  const int64_t shapes[][4] = {/* m, n, k, batch */
                               {64, 64, 64, 1},   {96, 40, 512, 1}, {17, 130, 33, 1},
                               {256, 8, 2048, 1}, {3, 300, 96, 1},  {20, 24, 40, 3}};
  int cases = 0;
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
    for (int v = 0; v < 16; v++) {
      bool ta = v & 1, tb = (v >> 1) & 1, with_bias = (v >> 2) & 1, alt = (v >> 3) & 1;
      int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2], B = shapes[s][3], pad = 3;
      if (alt && B == 1) continue; /* alt: A shared (bias) or B shared, alpha 0.5 (no bias) */
      int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
      int64_t lda = ac + pad, ldb = bc + pad, ldc = n + pad;
      int64_t sa = alt && with_bias ? 0 : ar * lda, sb = alt && !with_bias ? 0 : br * ldb;
      int64_t sc = m * ldc;
      float alpha = alt && !with_bias ? 0.5f : 1.0f;
      size_t na = (size_t)(ar * lda * B), nb = (size_t)(br * ldb * B), nc = (size_t)(m * ldc * B);
      uint16_t *a = malloc(2 * na), *b = malloc(2 * nb), *c = malloc(2 * nc);
      float *af = malloc(4 * na), *bf = malloc(4 * nb), *ref = malloc(4 * nc),
            *bias = malloc(4 * n);
      float *cf = malloc(4 * nc);
      vt_test_fill_uniform(rng, af, (long)na, -2.0f, 2.0f);
      vt_test_fill_uniform(rng, bf, (long)nb, -1.0f, 1.0f);
      vt_test_fill_uniform(rng, bias, (long)n, -3.0f, 3.0f);
      for (size_t i = 0; i < na; i++) a[i] = vt_f32_to_bf16(af[i]);
      for (size_t i = 0; i < nb; i++) b[i] = vt_f32_to_bf16(bf[i]);
      for (size_t i = 0; i < nc; i++) c[i] = 0x7fc1; /* a NaN the padding must keep */
      CHECK(be->gemm_bf16_out(be, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb,
                              with_bias ? bias : NULL, c, ldc, sc, B));
      be->gemm(be, VT_BF16, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, 0.0f, ref, ldc, sc, B);
      int64_t bad = 0, pads = 0;
      for (size_t e = 0; e < nc; e++) {
        int64_t col = (int64_t)(e % (size_t)ldc);
        if (col >= n) {
          pads += c[e] != 0x7fc1;
          continue;
        }
        bad += c[e] != vt_f32_to_bf16(with_bias ? ref[e] + bias[col] : ref[e]);
      }
      CHECK_MSG(bad == 0 && pads == 0,
                "bf16 c: m %lld n %lld k %lld batch %lld ta %d tb %d bias %d alt %d: %lld off the "
                "f32 gemm's rounding, %lld padding written",
                (long long)m, (long long)n, (long long)k, (long long)B, ta, tb, with_bias, alt,
                (long long)bad, (long long)pads);
      if (with_bias && B == 1) { /* the fused bias into an f32 c */
        be->gemm_epilogue(be, VT_BF16, ta, tb, m, n, k, a, lda, b, ldb, bias, VT_EPI_BIAS, cf, ldc,
                          NULL);
        int64_t off = 0;
        for (int64_t r = 0; r < m; r++)
          for (int64_t j = 0; j < n; j++) off += cf[r * ldc + j] != ref[r * ldc + j] + bias[j];
        CHECK_MSG(off == 0, "bias epilogue: m %lld n %lld k %lld ta %d tb %d: %lld off gemm + add",
                  (long long)m, (long long)n, (long long)k, ta, tb, (long long)off);
      }
      free(a), free(b), free(c), free(af), free(bf), free(ref), free(bias), free(cf);
      cases++;
    }
  printf("bf16 GEMM outputs: %d cases bit for bit against gemm + bias + rounding\n", cases);
}

static vt_tensor *input(vt_ctx *ctx, int ndim, const int64_t *shape, const float *v) {
  vt_tensor *t = vt_new(ctx, VT_F32, ndim, shape);
  vt_write_host(ctx, t, 0, vt_numel(t), v);
  vt_requires_grad(ctx, t);
  return t;
}

static void grad_to(vt_ctx *ctx, const vt_tensor *t, float *h) {
  vt_tensor g = *t;
  g.data = t->grad;
  vt_read_host(ctx, &g, 0, vt_numel(t), h);
}

/* vt_linear_lowp (the GEMM writes the bf16 projection) against vt_linear then vt_lowp_store
 * (f32 projection, converted): with vt_swiglu reading it, the same output and dx, dw, db bit
 * for bit, a bf16 output, and no f32 projection in the arena; under f32 GEMMs it is
 * vt_linear. With and without a bias, x [2, R, K]. */
static void linear_lowp_cases(vt_ctx *ctx, vt_rng *rng) {
  enum { R = 40, K = 48, F = 72 };
  static float x[2 * R * K], w[2 * F * K], bias[2 * F], c[2 * R * F];
  static float out[2][2 * R * F], gx[2][2 * R * K], gw[2][2 * F * K], gb[2][2 * F];
  vt_test_fill_uniform(rng, x, 2 * R * K, -1.0f, 1.0f);
  vt_test_fill_uniform(rng, w, 2 * F * K, -0.5f, 0.5f);
  vt_test_fill_uniform(rng, bias, 2 * F, -1.0f, 1.0f);
  vt_test_fill_uniform(rng, c, 2 * R * F, -1.0f, 1.0f);
  for (int with_bias = 0; with_bias < 2; with_bias++) {
    size_t used[2] = {0, 0};
    for (int mode = 0; mode < 2; mode++) {
      vt_tensor *tx = input(ctx, 3, (int64_t[]){2, R, K}, x);
      vt_tensor *tw = input(ctx, 2, (int64_t[]){2 * F, K}, w);
      vt_tensor *tb = with_bias ? input(ctx, 1, (int64_t[]){2 * F}, bias) : NULL;
      vt_tensor *tc = vt_new(ctx, VT_F32, 3, (int64_t[]){2, R, F});
      vt_write_host(ctx, tc, 0, 2 * R * F, c);
      size_t before = vt_arena_used(&ctx->data);
      vt_tensor *y =
          mode ? vt_linear_lowp(ctx, tx, tw, tb) : vt_lowp_store(ctx, vt_linear(ctx, tx, tw, tb));
      used[mode] = vt_arena_used(&ctx->data) - before;
      CHECK_MSG(y->dtype == VT_BF16 && !y->lowp, "bias %d mode %d: the projection is not bf16",
                with_bias, mode);
      vt_tensor *h = vt_swiglu(ctx, y);
      vt_read_host(ctx, h, 0, 2 * R * F, out[mode]);
      CHECK_MSG(
          vt_backward(
              ctx, vt_sum(ctx, vt_reshape(ctx, vt_mul(ctx, h, tc), 1, (int64_t[]){-1}), 0, false)),
          "linear_lowp: %s", vt_ctx_error(ctx));
      grad_to(ctx, tx, gx[mode]);
      grad_to(ctx, tw, gw[mode]);
      if (tb) grad_to(ctx, tb, gb[mode]);
      vt_ctx_reset(ctx);
    }
    CHECK_MSG(!memcmp(out[0], out[1], sizeof out[0]), "linear_lowp bias %d: out", with_bias);
    CHECK_MSG(!memcmp(gx[0], gx[1], sizeof gx[0]), "linear_lowp bias %d: dx", with_bias);
    CHECK_MSG(!memcmp(gw[0], gw[1], sizeof gw[0]), "linear_lowp bias %d: dw", with_bias);
    CHECK_MSG(!with_bias || !memcmp(gb[0], gb[1], sizeof gb[0]), "linear_lowp: db");
    /* the f32 product (and, unfused, the add's) stays allocated below the converted copy */
    printf("linear_lowp (bias %d): arena %zu bytes, vt_linear + vt_lowp_store %zu\n", with_bias,
           used[1], used[0]);
    CHECK_MSG(used[1] <= sizeof(uint16_t) * 2 * R * 2 * F + 2 * 64, "linear_lowp arena %zu",
              used[1]);
  }
  char err[256];
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_F32, NULL, 0, err, sizeof err) == 0);
  vt_tensor *tx = input(ctx, 3, (int64_t[]){2, R, K}, x);
  vt_tensor *tw = input(ctx, 2, (int64_t[]){2 * F, K}, w);
  vt_tensor *y = vt_linear_lowp(ctx, tx, tw, NULL);
  CHECK(!vt_ctx_failed(ctx) && y->dtype == VT_F32);
  vt_ctx_reset(ctx);
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == 0);
}

int main(void) {
  char why[256];
  vt_ctx *ctx = vt_test_cpu_ctx();
  char err[256];
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_F32, NULL, 0, err, sizeof err) == 0);
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_F16, NULL, 0, err, sizeof err) == -1 && strstr(err, "f16"));
  CHECK(vt_ctx_gemm_dtype(ctx) == VT_F32);
  if (!vt_backend_bf16_gemm(vt_backend_cpu(), why, sizeof why)) {
    /* the ctx refuses bf16 with the same reason */
    CHECK(vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == -1);
    printf("test_bf16_gemm: skipped: %s (refused: %s)\n", why, err);
    vt_ctx_free(ctx);
    return vt_test_failures ? 1 : 77;
  }
  char kernel[256];
  CHECK(vt_ctx_set_gemm_dtype(ctx, VT_BF16, kernel, sizeof kernel, err, sizeof err) == 0);
  CHECK(vt_ctx_gemm_dtype(ctx) == VT_BF16);
  printf("bf16 GEMM kernel: %s\n", kernel);
  vt_rng rng;
  vt_rng_seed(&rng, 11);
  linear_lowp_cases(ctx, &rng);
  vt_ctx_free(ctx);
  gemm_cases(vt_backend_cpu());
  out_cases(vt_backend_cpu(), &rng);
  copies();
  return vt_test_finish("test_bf16_gemm");
}
