// ctest-labels: unit grad
/* The audio encoder, CTC head and adapter against a PyTorch reference written from the public
 * semantics (tests/reference/gen_audio_enc_fixtures.py, float64): outputs, lengths and every
 * gradient within f32 tolerance, with full and static chunk attention and two clips of
 * different lengths; the CTC loss of the head. Then: padding does not leak into valid frames,
 * dynamic chunks draw as WeNet does, dropout is seeded, the full-size counts match DESIGN.md,
 * and bad input fails on the ctx. */
#include "model/audio_adapter.h"
#include "model/audio_enc.h"
#include "tests/fixture.h"
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

static vt_fixture *FX;

static const vt_fixture_tensor *get(const char *c, const char *f) {
  char key[256];
  snprintf(key, sizeof key, "%s.%s", c, f);
  return vt_fixture_get(FX, key);
}

static double max_abs(const float *x, long n) {
  double m = 0;
  for (long i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

/* f32 against float64 through a conv stack, two attention layers and LayerNorms: each value is a
 * few dot products of at most a few hundred terms; 1e-5 of the largest value plus 1e-4 relative
 * is ~100 ulps, far below what a wrong formula gives. */
static void close_to(const char *what, const float *got, const vt_fixture_tensor *want) {
  CHECK_CLOSE(what, got, want->f, want->n, 1e-5 * fmax(1.0, max_abs(want->f, want->n)), 1e-4);
}

static audio_enc_cfg tiny_cfg(void) {
  audio_enc_cfg c = audio_enc_cfg_vita();
  c.n_mels = 20;
  c.hidden = 16;
  c.heads = 2;
  c.ffn = 24;
  c.layers = 2;
  c.ctc_vocab = 7;
  c.chunk_mode = AUDIO_ENC_CHUNK_FULL;
  return c;
}

/* Writes every parameter of ps from the fixture's "<prefix>.<name>". */
static void load_params(vt_params *ps, const char *prefix) {
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    const vt_fixture_tensor *t = get(prefix, p->name);
    CHECK_MSG(t->n == vt_numel(&p->t), "%s: %ld values, want %lld", p->name, t->n,
              (long long)vt_numel(&p->t));
    if (t->n == vt_numel(&p->t)) nn_write(ps, &p->t, 0, t->f, t->n);
  }
}

static void check_grads(vt_ctx *ctx, vt_params *ps, const char *c, vt_tensor *x) {
  char what[256], key[256];
  const vt_fixture_tensor *g = get(c, "grad.x");
  float *h = malloc(sizeof(float) * (size_t)g->n);
  vt_grad_to_host(ctx, x, h);
  snprintf(what, sizeof what, "%s.grad.x", c);
  close_to(what, h, g);
  free(h);
  int n = 0;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (strstr(p->name, "global_cmvn")) continue; /* buffers: no gradient */
    snprintf(key, sizeof key, "grad.%s", p->name);
    g = get(c, key);
    h = malloc(sizeof(float) * (size_t)g->n);
    vt_grad_to_host(ctx, &p->t, h);
    snprintf(what, sizeof what, "%s.%s", c, key);
    close_to(what, h, g);
    free(h);
    n++;
  }
  printf("%s: output and %d parameter gradients checked\n", c, n);
}

static void test_encoder(void) {
  char err[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  audio_enc m;
  audio_enc_cfg cfg = tiny_cfg();
  CHECK_MSG(audio_enc_init(&m, &ps, &cfg, err, sizeof err) == 0, "%s", err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_params_set_trainable(&ps, AUDIO_ENC_CMVN_GLOB, false);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  load_params(&ps, "enc");
  const vt_fixture_tensor *fx = get("enc", "x"), *fl = get("enc", "lengths");
  const char *cases[3] = {"enc_full", "enc_chunk", "enc_ctc"};
  for (int k = 0; k < 3; k++) {
    m.cfg.chunk_mode = k == 1 ? AUDIO_ENC_CHUNK_STATIC : AUDIO_ENC_CHUNK_FULL;
    m.cfg.chunk_size = 2;
    m.cfg.left_chunks = 1;
    vt_params_zero_grad(&ps);
    vt_ctx *ctx = vt_test_cpu_ctx();
    vt_tensor *x = vt_from_host(ctx, VT_F32, 3, fx->shape, fx->f);
    vt_requires_grad(ctx, x);
    int32_t ol[2];
    audio_enc_fwd f = {0};
    vt_tensor *y = audio_enc_forward(&m, ctx, x, fl->i, ol, &f);
    CHECK_MSG(!vt_ctx_failed(ctx), "%s: %s", cases[k], vt_ctx_error(ctx));
    const vt_fixture_tensor *wl = get(k == 2 ? "enc_full" : cases[k], "out_lengths");
    CHECK(ol[0] == wl->i[0] && ol[1] == wl->i[1] && f.chunk_used == (k == 1 ? 2 : 0));
    vt_tensor *loss;
    if (k < 2) {
      const vt_fixture_tensor *want = get(cases[k], "out");
      float *got = malloc(sizeof(float) * (size_t)want->n);
      CHECK(vt_numel(y) == want->n);
      vt_to_host(ctx, y, got);
      char what[64];
      snprintf(what, sizeof what, "%s.out", cases[k]);
      close_to(what, got, want);
      free(got);
      const vt_fixture_tensor *w = get(cases[k], "w");
      loss = vt_sum(ctx, vt_mul(ctx, y, vt_from_host(ctx, VT_F32, w->ndim, w->shape, w->f)),
                    VT_ALL_AXES, false);
    } else {
      vt_tensor *lp = audio_enc_ctc_log_probs(&m, ctx, y);
      const vt_fixture_tensor *wlp = get("enc_ctc", "log_probs");
      float *got = malloc(sizeof(float) * (size_t)wlp->n);
      vt_to_host(ctx, lp, got);
      close_to("enc_ctc.log_probs", got, wlp);
      free(got);
      const vt_fixture_tensor *tg = get("enc_ctc", "targets"),
                              *tl = get("enc_ctc", "target_lengths");
      vt_ctc_opts co = {.blank = 0, .reduction = VT_LOSS_MEAN};
      loss = vt_ctc_loss(ctx, lp, vt_from_host(ctx, VT_I32, 2, tg->shape, tg->i),
                         vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, ol),
                         vt_from_host(ctx, VT_I32, 1, tl->shape, tl->i), &co);
      float lv;
      vt_to_host(ctx, loss, &lv);
      float want = get("enc_ctc", "loss")->f[0];
      CHECK_MSG(fabsf(lv - want) < 1e-5f * fmaxf(1.0f, fabsf(want)), "ctc loss %.7f, want %.7f", lv,
                want);
    }
    CHECK_MSG(vt_backward(ctx, loss), "%s: %s", cases[k], vt_ctx_error(ctx));
    check_grads(ctx, &ps, cases[k], x);
    vt_ctx_free(ctx);
  }

  /* padding does not reach valid frames: clip 1 alone (15 frames) gives the rows of the batch */
  {
    m.cfg.chunk_mode = AUDIO_ENC_CHUNK_FULL;
    vt_ctx *ctx = vt_test_cpu_ctx();
    vt_tensor *xb = vt_from_host(ctx, VT_F32, 3, fx->shape, fx->f);
    float *one = malloc(sizeof(float) * 15 * 20);
    memcpy(one, fx->f + 23 * 20, sizeof(float) * 15 * 20);
    vt_tensor *x1 = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, 15, 20}, one);
    int32_t ol[2], l1 = 15, o1;
    vt_tensor *yb = audio_enc_forward(&m, ctx, xb, fl->i, ol, NULL);
    vt_tensor *y1 = audio_enc_forward(&m, ctx, x1, &l1, &o1, NULL);
    float hb[2 * 5 * 16], h1[3 * 16];
    vt_to_host(ctx, yb, hb);
    vt_to_host(ctx, y1, h1);
    CHECK(o1 == 3);
    CHECK_CLOSE("batch row == clip alone", hb + 5 * 16, h1, 3 * 16, 1e-5, 1e-5);
    free(one);
    vt_ctx_free(ctx);
  }

  /* dynamic chunks: WeNet's draw (full when randint(1, T) > T/2, else 1..25 with left chunks
   * below (T-1)/chunk), seeded; eval mode without an rng is full attention; dropout with a
   * seed is reproducible and differs from eval */
  {
    m.cfg.chunk_mode = AUDIO_ENC_CHUNK_DYNAMIC;
    vt_rng rng;
    vt_rng_seed(&rng, 5);
    int full = 0, chunked = 0, bad = 0;
    for (int i = 0; i < 200; i++) {
      vt_ctx *ctx = vt_test_cpu_ctx();
      vt_tensor *x = vt_from_host(ctx, VT_F32, 3, fx->shape, fx->f);
      audio_enc_fwd f = {.training = true, .rng = &rng};
      audio_enc_forward(&m, ctx, x, fl->i, NULL, &f);
      bad += vt_ctx_failed(ctx);
      if (f.chunk_used == 0) {
        full++;
      } else {
        chunked++;
        bad += f.chunk_used < 1 || f.chunk_used > 25 || f.left_used < 0 ||
               f.left_used >= (5 - 1) / f.chunk_used + (f.chunk_used >= 5);
      }
      vt_ctx_free(ctx);
    }
    /* T' = 5: randint(1, 5) in 1..4, full when > 2: half of the draws */
    CHECK_MSG(bad == 0 && full > 70 && chunked > 70, "full %d, chunked %d, bad %d", full, chunked,
              bad);
    float a[160], b[160], c[160];
    vt_tensor *ys[3];
    vt_ctx *ctx = vt_test_cpu_ctx();
    for (int i = 0; i < 3; i++) {
      vt_rng_seed(&rng, i < 2 ? 9 : 10);
      audio_enc_fwd f = {.training = true, .rng = &rng};
      vt_tensor *x = vt_from_host(ctx, VT_F32, 3, fx->shape, fx->f);
      ys[i] = audio_enc_forward(&m, ctx, x, fl->i, NULL, &f);
    }
    vt_to_host(ctx, ys[0], a);
    vt_to_host(ctx, ys[1], b);
    vt_to_host(ctx, ys[2], c);
    CHECK(memcmp(a, b, sizeof a) == 0 && memcmp(a, c, sizeof a) != 0);
    vt_ctx_free(ctx);
  }

  /* bad input: wrong feature size, too few frames */
  {
    vt_ctx *ctx = vt_test_cpu_ctx();
    int32_t l[1] = {6};
    audio_enc_forward(&m, ctx, vt_zeros(ctx, VT_F32, 3, (int64_t[]){1, 30, 21}), l, NULL, NULL);
    CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "[B, T, 20]"));
    vt_ctx_free(ctx);
    ctx = vt_test_cpu_ctx();
    audio_enc_forward(&m, ctx, vt_zeros(ctx, VT_F32, 3, (int64_t[]){1, 6, 20}), l, NULL, NULL);
    CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "need >= 7"));
    vt_ctx_free(ctx);
  }
  audio_enc_free(&m);
  vt_params_free(&ps);
}

static void test_adapter(void) {
  char err[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  audio_adapter a;
  audio_adapter_cfg cfg = {
      .enc_dim = 16, .llm_dim = 12, .kernel = 5, .norm_eps = 1e-3, .n_prompt = 3};
  CHECK_MSG(audio_adapter_init(&a, &ps, &cfg, err, sizeof err) == 0, "%s", err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  load_params(&ps, "adapter");
  const vt_fixture_tensor *fx = get("adapter", "x"), *fl = get("adapter", "lengths");
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *x = vt_from_host(ctx, VT_F32, 3, fx->shape, fx->f);
  vt_requires_grad(ctx, x);
  int32_t ol[2];
  vt_tensor *y = audio_adapter_forward(&a, ctx, x, fl->i, ol);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  const vt_fixture_tensor *want = get("adapter", "out"), *wl = get("adapter", "out_lengths");
  CHECK(vt_numel(y) == want->n && y->shape[1] == 3 + 3);
  CHECK(ol[0] == wl->i[0] && ol[1] == wl->i[1] && ol[0] == 6 && ol[1] == 5);
  float *got = malloc(sizeof(float) * (size_t)want->n);
  vt_to_host(ctx, y, got);
  close_to("adapter.out", got, want);
  free(got);
  const vt_fixture_tensor *w = get("adapter", "w");
  CHECK(vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, y, vt_from_host(ctx, VT_F32, 3, w->shape, w->f)),
                                VT_ALL_AXES, false)));
  check_grads(ctx, &ps, "adapter", x);
  vt_ctx_free(ctx);
  vt_params_free(&ps);
}

/* DESIGN.md: encoder 357,950,464 parameters (about 358M), adapter about 17.8M */
static void test_counts(void) {
  audio_enc_cfg e = audio_enc_cfg_vita();
  CHECK(audio_enc_param_count(&e) == 357950464);
  audio_adapter_cfg a = audio_adapter_cfg_vita();
  CHECK(audio_adapter_param_count(&a) == 17835520);
  a.n_prompt = 25;
  CHECK(audio_adapter_param_count(&a) == 17835520 + 25 * 3584);
  CHECK(audio_enc_out_len(98) == 23 && audio_enc_out_len(6) == 0 && audio_enc_out_len(7) == 1);
  CHECK(audio_adapter_out_len(&a, 23) == 12 + 25 && audio_adapter_out_len(&a, 0) == 0);
  /* the registered tiny model has exactly the counted parameters (plus 2 x 20 CMVN buffers) */
  char err[256];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  audio_enc m;
  audio_enc_cfg c = tiny_cfg();
  CHECK(audio_enc_init(&m, &ps, &c, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK((int64_t)vt_params_count(&ps, false) == audio_enc_param_count(&c) + 40);
  audio_enc_free(&m);
  vt_params_free(&ps);
  audio_enc_cfg bad = c;
  bad.heads = 3;
  CHECK(audio_enc_init(&m, &ps, &bad, err, sizeof err) == -1 && strstr(err, "hidden"));
  bad = c;
  bad.chunk_mode = AUDIO_ENC_CHUNK_STATIC;
  bad.chunk_size = 0;
  CHECK(audio_enc_cfg_check(&bad, err, sizeof err) == -1 && strstr(err, "chunk_size"));
}

int main(void) {
  FX = vt_fixture_load("audio/audio_enc.txt");
  test_encoder();
  test_adapter();
  test_counts();
  vt_fixture_free(FX);
  return vt_test_finish("test_audio_enc");
}
