// ctest-labels: unit
/* The codec's codebook use (model/codec_restart.c): the k-means against EnCodec's kmeans() in
 * torch (tests/reference/gen_codec_kmeans_fixtures.py), the row sampling, the first batch's
 * k-means into the codebook and the dead-code re-seeding by hand, the options in model.json,
 * and a short two-phase training run of the shipped tiny codec on speech-like noise, tones
 * and silences: without the options
 * its held-out frames fall onto a few codes, with them they spread over many (distinct codes
 * and the perplexity of the held-out codes). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/codec_model.h"
#include "tests/codec_train_fx.h"
#include "tests/fixture.h"
#include "tests/testutil.h"

static void test_kmeans(void) {
  vt_fixture *fx = vt_fixture_load("codec/kmeans.txt");
  for (int c = 0; c < 3; c++) {
    char name[32];
#define GET(leaf) (snprintf(name, sizeof name, "case%d." leaf, c), vt_fixture_get(fx, name))
    const vt_fixture_tensor *X = GET("X"), *I = GET("I"), *M = GET("M"), *B = GET("B");
    int iters = GET("iters")->i[0];
#undef GET
    int64_t n = X->shape[0], d = X->shape[1], k = I->shape[0];
    float *means = malloc(sizeof(float) * (size_t)(k * d));
    int64_t *init = malloc(sizeof(int64_t) * (size_t)k),
            *bins = malloc(sizeof(int64_t) * (size_t)k);
    for (int64_t i = 0; i < k; i++) init[i] = I->i[i];
    CHECK(codec_kmeans(X->f, n, d, k, iters, init, means, bins));
    double worst = 0;
    for (int64_t i = 0; i < k * d; i++) worst = fmax(worst, fabs(means[i] - M->f[i]));
    CHECK_MSG(worst < 1e-5, "case %d: means differ from torch by %g", c, worst);
    for (int64_t i = 0; i < k; i++)
      CHECK_MSG(bins[i] == B->i[i], "case %d bin %lld", c, (long long)i);
    free(means), free(init), free(bins);
  }
  vt_fixture_free(fx);
}

static void test_sample_rows(void) {
  vt_rng rng;
  vt_rng_seed(&rng, 5);
  int64_t rows[64];
  codec_sample_rows(&rng, 50, 50, rows); /* n >= k: a permutation */
  bool seen[50] = {0};
  for (int i = 0; i < 50; i++) {
    CHECK(rows[i] >= 0 && rows[i] < 50 && !seen[rows[i]]);
    seen[rows[i]] = true;
  }
  codec_sample_rows(&rng, 3, 64, rows); /* n < k: with repetition, every row drawn */
  int hits[3] = {0};
  for (int i = 0; i < 64; i++) {
    CHECK(rows[i] >= 0 && rows[i] < 3);
    hits[rows[i]]++;
  }
  CHECK(hits[0] && hits[1] && hits[2]);
}

/* A store holding a 4 x 2 codebook and the restart state, dead after 2 batches. */
typedef struct {
  vt_params ps;
  codec_restart s;
  vt_tensor *cb;
} small_store;

static void small_open(small_store *st, bool kmeans, int dead) {
  char err[256];
  vt_params_init(&st->ps, (vt_device){VT_DEV_CPU, 0});
  nn_reg r = nn_reg_make(&st->ps, err, sizeof err);
  st->cb = nn_param(&r, "quantizer", "codebook", NULL, 2, (int64_t[]){4, 2});
  codec_restart_init(&st->s, &r, &(codec_restart_cfg){kmeans, 3, dead}, 4);
  CHECK_MSG(!nn_reg_failed(&r) && vt_params_alloc(&st->ps, err, sizeof err) == 0, "%s", err);
  codec_restart_freeze_buffers(&st->ps);
  CHECK(vt_params_find(&st->ps, "quantizer_state.code_age")->buffer &&
        vt_params_find(&st->ps, "quantizer_state.initialised")->buffer);
  codec_restart_reset(&st->s, &st->ps, false);
  float cb[8] = {10, 10, 20, 20, 30, 30, 40, 40};
  CHECK(vt_param_write_f32(&st->ps, st->cb, cb, err, sizeof err) == 0);
}

static void test_update(void) {
  small_store st;
  small_open(&st, false, 2);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_rng rng;
  vt_rng_seed(&rng, 9);
  /* latent [1, 2, 3]: the frames (1, 4), (2, 5), (3, 6) */
  vt_tensor *lat = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, 2, 3}, (float[]){1, 2, 3, 4, 5, 6});
  vt_tensor *i1 = vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, 3}, (int32_t[]){0, 0, 1});
  vt_tensor *i2 = vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, 3}, (int32_t[]){0, 0, 0});
  CHECK(codec_restart_update(&st.s, ctx, st.cb, lat, i1, &rng) == 0); /* ages 0 0 1 1 */
  CHECK(codec_restart_update(&st.s, ctx, st.cb, lat, i2, &rng) == 2); /* 0 1 2 2: 2, 3 dead */
  float age[4], cb[8];
  vt_to_host(ctx, st.s.age, age);
  vt_to_host(ctx, st.cb, cb);
  CHECK(age[0] == 0 && age[1] == 1 && age[2] == 0 && age[3] == 0);
  CHECK(cb[0] == 10 && cb[1] == 10 && cb[2] == 20 && cb[3] == 20); /* live codes kept */
  for (int c = 2; c < 4; c++) /* each re-seeded with one of the batch's frames */
    CHECK_MSG(cb[c * 2 + 1] == cb[c * 2] + 3 && cb[c * 2] >= 1 && cb[c * 2] <= 3,
              "code %d: (%g, %g)", c, cb[c * 2], cb[c * 2 + 1]);
  CHECK(cb[4] != cb[6]); /* 3 frames for 2 codes: drawn without repetition */
  /* no rng, then wrong codes: refused, saying why */
  CHECK(codec_restart_update(&st.s, ctx, st.cb, lat, i1, NULL) == -1);
  CHECK_MSG(strstr(vt_ctx_error(ctx), "without an rng") != NULL, "%s", vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_tensor *bad = vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, 2}, (int32_t[]){0, 0});
  CHECK(codec_restart_update(&st.s, ctx, st.cb, lat, bad, &rng) == -1);
  CHECK(strstr(vt_ctx_error(ctx), "expected i32 with 3 entries") != NULL);
  vt_ctx_reset(ctx);
  vt_ctx_free(ctx);
  vt_params_free(&st.ps);
}

static void test_first(void) {
  small_store st;
  small_open(&st, true, 0);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_rng rng;
  vt_rng_seed(&rng, 9);
  /* 6 frames in two tight clusters around (0, 0) and (5, 5) */
  float h[12] = {0, 0.2f, 5, 5.2f, 4.8f, 0.1f, 0, 0.1f, 5, 4.9f, -0.1f, 5.1f};
  vt_tensor *lat = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, 2, 6}, h);
  CHECK(codec_restart_pending(&st.s, ctx));
  codec_restart_first(&st.s, ctx, st.cb, lat, &rng);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  CHECK(!codec_restart_pending(&st.s, ctx));
  float cb[8], fr[12];
  vt_to_host(ctx, st.cb, cb);
  for (int t = 0; t < 6; t++) fr[t * 2] = h[t], fr[t * 2 + 1] = h[6 + t];
  int64_t init[4];
  vt_rng_seed(&rng, 9); /* the same draw: the codebook is codec_kmeans of those rows */
  codec_sample_rows(&rng, 6, 4, init);
  float want[8];
  CHECK(codec_kmeans(fr, 6, 2, 4, 3, init, want, NULL));
  for (int i = 0; i < 8; i++)
    CHECK_MSG(cb[i] == want[i], "codebook %d: %g, want %g", i, cb[i], want[i]);
  codec_restart_first(&st.s, ctx, st.cb, lat, &rng); /* once only */
  float cb2[8];
  vt_to_host(ctx, st.cb, cb2);
  CHECK(!memcmp(cb, cb2, sizeof cb));
  vt_ctx_free(ctx);
  vt_params_free(&st.ps);
}

/* configs/tiny/codec.json (the options on); off: without them (TiCodec's). New reference. */
static json_t *tiny_config(bool on) {
  char path[1024];
  snprintf(path, sizeof path, "%s/configs/tiny/codec.json", getenv("VT_SOURCE_DIR"));
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  CHECK_MSG(j && json_is_true(json_object_get(j, "kmeans_init")) &&
                json_integer_value(json_object_get(j, "dead_code_batches")) > 0,
            "%s: the options are on", path);
  if (j && !on) {
    json_object_del(j, "kmeans_init");
    json_object_del(j, "kmeans_iters");
    json_object_del(j, "dead_code_batches");
  }
  return j;
}

static void test_config(void) {
  char err[512];
  static const struct {
    const char *key, *value;
  } bad[] = {{"kmeans_init", "1"}, {"kmeans_iters", "-1"}, {"dead_code_batches", "1.5"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *j = tiny_config(true);
    json_object_set_new(j, bad[i].key, json_loads(bad[i].value, JSON_DECODE_ANY, NULL));
    vt_params ps;
    vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
    err[0] = 0;
    vt_model *m = vt_model_create(NULL, j, "tiny.json", NULL, &ps, err, sizeof err);
    CHECK_MSG(!m && strstr(err, bad[i].key) && strstr(err, "tiny.json"), "%zu: %s", i, err);
    if (m) vt_model_destroy(m);
    vt_params_free(&ps);
    json_decref(j);
  }
  /* on: written back and read again; off (TiCodec's): no keys, no state */
  for (int on = 0; on < 2; on++) {
    json_t *src = tiny_config(on);
    vt_params ps;
    vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
    vt_model *m = vt_model_create(NULL, src, "tiny.json", NULL, &ps, err, sizeof err);
    json_decref(src);
    CHECK_MSG(m, "%s", err);
    if (!m) continue;
    CHECK((vt_params_find(&ps, "quantizer_state.code_age") != NULL) == on);
    json_t *j = m->ops->config_json(m);
    CHECK((json_object_get(j, "kmeans_init") != NULL) == on);
    codec_model_cfg back;
    CHECK(codec_model_cfg_from_json(j, "back", &back, err, sizeof err) == 0);
    CHECK(back.restart.kmeans_init == on && (back.restart.dead_batches > 0) == on &&
          back.restart.kmeans_iters == 10);
    CHECK(!codec_model_release_param("quantizer_state.code_age"));
    json_decref(j);
    vt_model_destroy(m);
    vt_params_free(&ps);
  }
}

/* Speech-like utterances [n, len] at 24 kHz: runs of 1 to 4 frames (25 ms) of a "phone",
 * drawn from rng: silence, a noise burst, or a vowel (a harmonic tone of 90 to 300 Hz with a
 * formant-like emphasis on one harmonic), each with its own loudness. */
static void waves(float *w, int n, int len, vt_rng *rng) {
  int t = 0, kind = 0, left = 0;
  double f = 0, ph = 0, amp = 0, form = 1;
  for (int i = 0; i < n * len; i++, t++) {
    if (left-- <= 0) {
      kind = (int)vt_rng_below(rng, 3);
      left = 600 * (1 + (int)vt_rng_below(rng, 4));
      f = 90 + 210 * vt_rng_uniform(rng);
      amp = 0.05 + 0.3 * vt_rng_uniform(rng);
      form = 1 + (double)vt_rng_below(rng, 6);
    }
    ph += 2 * 3.14159265 * f / 24000;
    double v = 0;
    if (kind == 1) v = 0.5 * vt_rng_normal(rng);
    if (kind == 2)
      for (int h = 1; h <= 8; h++) v += sin(ph * h) * (h == (int)form ? 1.0 : 0.3 / h);
    w[i] = (float)(amp * v);
  }
  (void)t;
}

/* Distinct codes and the perplexity exp(H) of the codes of the held-out utterances [n, len]. */
static void usage(vt_model *m, vt_ctx *ctx, const float *w, int n, int len, int *distinct,
                  double *ppl) {
  const codec *c = codec_model_codec(m);
  bool was = vt_set_grad_enabled(ctx, false);
  vt_tensor *y = vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, 1, len}, w), *g;
  vt_tensor *lat = codec_encode(c, ctx, y, CODEC_EVAL, &g);
  codec_vq q = codec_quantize(c, ctx, lat, g);
  int64_t frames = vt_numel(q.idx);
  int32_t *codes = malloc(sizeof(int32_t) * (size_t)frames);
  vt_to_host(ctx, q.idx, codes);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  vt_set_grad_enabled(ctx, was);
  vt_ctx_reset(ctx);
  int64_t *count = calloc(1024, sizeof(int64_t));
  for (int64_t i = 0; i < frames; i++) count[codes[i]]++;
  double h = 0;
  *distinct = 0;
  for (int k = 0; k < 1024; k++)
    if (count[k]) {
      double p = (double)count[k] / (double)frames;
      h -= p * log(p);
      (*distinct)++;
    }
  *ppl = exp(h);
  free(codes), free(count);
}

#define STEPS 20

/* STEPS two-phase steps on one batch (Adam 0.5, 0.9 per phase, every term at weight 1), then the
 * usage of the held-out codes. */
static void train_usage(const json_t *cfg, int *distinct, double *ppl) {
  char err[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m = vt_model_create(NULL, cfg, "tiny/codec.json", NULL, &ps, err, sizeof err);
  CHECK_MSG(m, "%s", err);
  if (!m) return;
  vt_rng rng;
  vt_rng_seed(&rng, 3);
  codec_phases ph; /* configs/stages/ticodec-3.1-tiny.yaml's learning rates */
  codec_phases_start(&ph, m, &ps, &rng, 2e-4, 1e-3);
  vt_ctx *ctx = vt_test_cpu_ctx();
  int len = 9600, n = 4, n_held = 8, held_len = 4800;
  float *w = malloc(sizeof(float) * (size_t)(n * len)),
        *held = malloc(sizeof(float) * (size_t)(n_held * held_len));
  vt_rng wr;
  vt_rng_seed(&wr, 11);
  waves(w, n, len, &wr);
  waves(held, n_held, held_len, &wr);
  for (int step = 0; step < STEPS; step++)
    for (int p = 0; p < 2; p++) {
      vt_model_loss l;
      codec_phases_loss(&ph, m, &ps, ctx, p, w, n, len, &rng, &l);
      vt_tensor *tot = l.terms[0].sum;
      for (int t = 1; t < l.n_terms; t++) tot = vt_add(ctx, tot, l.terms[t].sum);
      vt_params_zero_grad(&ps);
      CHECK_MSG(vt_backward(ctx, vt_scale(ctx, tot, 1.0f / (float)l.count)), "%s",
                vt_ctx_error(ctx));
      vt_optim_stats os;
      CHECK_MSG(vt_optim_step(&ph.opt[p], 1.0, step, &os, err, sizeof err) == 0, "%s", err);
      vt_ctx_reset(ctx);
    }
  usage(m, ctx, held, n, len, distinct, ppl);
  codec_phases_free(&ph);
  free(w), free(held);
  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
}

/* The shipped tiny codec (configs/tiny/codec.json: 64-d latent, 1024 codes, 0.2 s segments,
 * 32 frames a batch) with its options and without them (TiCodec's). */
static void test_usage(void) {
  json_t *on = tiny_config(true), *off = tiny_config(false);
  int d_off, d_on;
  double p_off, p_on;
  train_usage(off, &d_off, &p_off);
  train_usage(on, &d_on, &p_on);
  printf("held-out codes after %d steps (8 x 8 frames): TiCodec's init %d distinct, perplexity "
         "%.2f; k-means init + dead-code re-seeding %d distinct, perplexity %.2f\n",
         STEPS, d_off, p_off, d_on, p_on);
  CHECK_MSG(d_on >= 12 && p_on >= 8.0, "with the options: %d codes, perplexity %.2f", d_on, p_on);
  CHECK_MSG(d_on >= 4 * d_off && p_on >= 4.0 * p_off, "off %d / %.2f, on %d / %.2f", d_off, p_off,
            d_on, p_on);
  json_decref(on);
  json_decref(off);
}

int main(void) {
  test_kmeans();
  test_sample_rows();
  test_update();
  test_first();
  test_config();
  test_usage();
  return vt_test_finish("test_codec_restart");
}
