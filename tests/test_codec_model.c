// ctest-labels: unit
/* The codec behind the model interface (model/codec_model.c): its model.json (defaults, a
 * round trip, errors that name the field), phases and terms; and a short two-phase training
 * run on a tiny config with TiCodec's optimizers (Adam betas 0.5, 0.9, one per phase, each
 * phase updating only its own parameters, every loss term at the public weights): the
 * reconstruction of held-out tones (another pitch) improves, as the generator phase's mel term
 * and as the eval mel L1. (SNR is printed: 50 steps do not move it.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/codec_model.h"
#include "stages/stage_config.h"
#include "stages/stage_model.h"
#include "tests/codec_train_fx.h"
#include "tests/testutil.h"

/* A tiny codec: hop 8, 16-d latent, small discriminators; mels at 256/64, 128/32, 64/16. */
static const char *TINY =
    "{\"model_type\": \"ticodec\", \"sampling_rate\": 24000, \"upsample_rates\": [4, 2],"
    " \"upsample_kernel_sizes\": [8, 4], \"upsample_initial_channel\": 16,"
    " \"resblock_kernel_sizes\": [3, 5], \"resblock_dilation_sizes\": [[1, 2], [1, 2]],"
    " \"encoder_channels\": 4, \"group_channels\": 4, \"n_codes\": 32, \"global_code_num\": 4,"
    " \"global_feature_conv\": [8, 4, 8, 3, 1], \"segment_size\": 512,"
    " \"mel_n_ffts\": [256, 128, 64], \"mel_hops\": [64, 32, 16], \"num_mels\": 32,"
    " \"mpd_periods\": [2, 3], \"mpd_channels\": [4, 8, 8, 16, 16], \"msd_scales\": 2,"
    " \"msd_channels\": [4, 4, 8, 8, 16, 16, 16], \"msd_groups\": [1, 2, 2, 2, 2, 2, 1],"
    " \"stft_n_ffts\": [64], \"stft_hops\": [16], \"stft_filters\": 4}";

static vt_model *make(const char *text, vt_params *ps, char *err, size_t len) {
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  vt_model *m = vt_model_create(NULL, j, "tiny.json", NULL, ps, err, len);
  json_decref(j);
  return m;
}

static void test_config(void) {
  char err[512], d1[512], d2[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m = make(TINY, &ps, err, sizeof err);
  CHECK_MSG(m, "%s", err);
  if (!m) return;
  CHECK(m->n_phases == 2 && !strcmp(m->phases[0].name, "disc") &&
        !strcmp(m->phases[1].name, "gen"));
  CHECK(vt_model_term_index(m, "disc") == 0 && m->terms[vt_model_term_index(m, "mel")].phase == 1);
  CHECK(vt_model_phase_has(m, 0, "msd.discriminators.0.convs.0.weight_orig"));
  CHECK(vt_model_phase_has(m, 1, "generator.conv_post.weight_v"));
  CHECK(!vt_model_phase_has(m, 1, "mpd.discriminators.0.convs.0.bias"));
  CHECK(vt_params_find(&ps, "encoder.GlobalTokenEncoder.fn.2.running_var") &&
        vt_params_find(&ps, "quantizer.quantizer_modules_globaltokens.3.embedding.weight"));
  m->ops->describe(m, d1, sizeof d1);
  CHECK(strstr(d1, "hop 8") && strstr(d1, "32 codes") && strstr(d1, "4 global codebooks of 2"));
  /* round trip through config_json */
  json_t *j = m->ops->config_json(m);
  char *text = json_dumps(j, 0);
  vt_params ps2;
  vt_params_init(&ps2, (vt_device){VT_DEV_CPU, 0});
  vt_model *m2 = make(text, &ps2, err, sizeof err);
  CHECK_MSG(m2, "%s", err);
  if (m2) {
    m2->ops->describe(m2, d2, sizeof d2);
    CHECK(!strcmp(d1, d2) && ps2.n == ps.n);
    vt_model_destroy(m2);
  }
  free(text);
  json_decref(j);
  vt_params_free(&ps2);
  vt_model_destroy(m);
  vt_params_free(&ps);
  /* the defaults are VITA-1.5's codec */
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  m = make("{\"model_type\": \"ticodec\"}", &ps, err, sizeof err);
  CHECK_MSG(m, "%s", err);
  if (m) {
    m->ops->describe(m, d1, sizeof d1);
    CHECK(strstr(d1, "24000 Hz, hop 600") && strstr(d1, "latent 512, 1024 codes") &&
          strstr(d1, "MPD 5 periods, MSD 3 scales, MS-STFT 5 scales"));
    vt_model_destroy(m);
  }
  vt_params_free(&ps);
  /* errors name the field */
  const char *bad[4][2] = {
      {"{\"model_type\": \"ticodec\", \"upsample_rates\": [8, \"5\"]}", "\"upsample_rates\""},
      {"{\"model_type\": \"ticodec\", \"upsample_rates\": [8, 5, 5]}", "upsample_kernel_sizes"},
      {"{\"model_type\": \"ticodec\", \"segment_size\": 1000}", "multiple of the hop 600"},
      {"{\"model_type\": \"ticodec\", \"global_feature_conv\": [128, 64, 100, 3, 1]}",
       "global_dim 100"}};
  for (int i = 0; i < 4; i++) {
    vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
    m = make(bad[i][0], &ps, err, sizeof err);
    CHECK_MSG(!m && strstr(err, bad[i][1]) && strstr(err, "tiny.json"), "case %d: %s", i, err);
    if (m) vt_model_destroy(m);
    vt_params_free(&ps);
  }
}

/* Two utterances of harmonic tones with a vibrato and an envelope, 0.4 s at 24 kHz. */
static void waves(float *w, int n, int len, double f0) {
  for (int i = 0; i < n; i++)
    for (int t = 0; t < len; t++) {
      double s = (double)t / 24000, f = f0 * (1 + 0.3 * i) * (1 + 0.02 * sin(2 * 3.14159 * 5 * s));
      double env = 0.5 * (1 - cos(2 * 3.14159 * t / len));
      double v = 0;
      for (int h = 1; h <= 4; h++) v += sin(2 * 3.14159265 * f * h * s) / h;
      w[i * len + t] = (float)(0.3 * env * v);
    }
}

static double eval_metric(vt_model *m, vt_ctx *ctx, const float *w, int len, const char *name) {
  vt_batch b = {.n_media = 1};
  b.media[0] = (vt_media){
      .kind = VT_MEDIA_WAVE, .n = 1, .data = vt_from_host(ctx, VT_F32, 2, (int64_t[]){1, len}, w)};
  vt_metric mt[8];
  int n = 0;
  bool was = vt_set_grad_enabled(ctx, false);
  int rc = m->ops->eval(m, ctx, &b, mt, &n);
  vt_set_grad_enabled(ctx, was);
  CHECK_MSG(rc == 0, "eval: %s", vt_ctx_error(ctx));
  vt_ctx_reset(ctx);
  for (int i = 0; i < n; i++)
    if (!strcmp(mt[i].name, name)) return mt[i].sum / mt[i].count;
  return NAN;
}

/* The generator phase's weighted mel term on held-out utterances (batch statistics, nothing
 * updated): the quantity training descends, away from the training data. */
static double held_mel(vt_model *m, vt_ctx *ctx, const float *w, int n, int len) {
  vt_batch b = {.n_media = 1};
  b.media[0] = (vt_media){
      .kind = VT_MEDIA_WAVE, .n = n, .data = vt_from_host(ctx, VT_F32, 2, (int64_t[]){n, len}, w)};
  vt_model_step st = {.phase = 1, .train = false};
  vt_model_loss l;
  bool was = vt_set_grad_enabled(ctx, false);
  CHECK_MSG(m->ops->loss(m, ctx, &b, &st, &l) == 0, "%s", vt_ctx_error(ctx));
  double v = vt_item(ctx, l.terms[2].sum) / l.count;
  vt_set_grad_enabled(ctx, was);
  vt_ctx_reset(ctx);
  return v;
}

#define STEPS 50

static void test_training(void) {
  char err[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m = make(TINY, &ps, err, sizeof err);
  if (!m) return;
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  codec_freeze_buffers(&ps);
  disc_freeze_buffers(&ps);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 3);
  CHECK(m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0);
  codec_phases ph; /* TiCodec: 2e-4 over hundreds of thousands of steps; this run has 50 */
  codec_phases_init(&ph, m, &ps, 2e-3, 2e-3);
  vt_ctx *ctx = vt_test_cpu_ctx();
  int len = 2048, n = 2;
  float *w = malloc(sizeof(float) * (size_t)(n * len)),
        *held = malloc(sizeof(float) * (size_t)(n * len));
  waves(w, n, len, 220);
  /* the probe: the middle 512 samples (one segment) of utterances of other pitches */
  waves(held, n, len, 180);
  for (int i = 0; i < n; i++) memmove(held + i * 512, held + i * len + 768, sizeof(float) * 512);
  double mel0 = held_mel(m, ctx, held, n, 512), e_mel0 = eval_metric(m, ctx, held, 512, "mel_l1"),
         e_snr0 = eval_metric(m, ctx, held, 512, "snr_db");
  for (int step = 0; step < STEPS; step++)
    for (int p = 0; p < 2; p++) {
      vt_model_loss l;
      codec_phases_loss(&ph, m, &ps, ctx, p, w, n, len, &rng, &l);
      CHECK(l.n_terms == (p == 0 ? 1 : 5) && l.count == n);
      vt_tensor *tot = l.terms[0].sum; /* the public recipe: every term at weight 1 */
      for (int t = 1; t < l.n_terms; t++) tot = vt_add(ctx, tot, l.terms[t].sum);
      vt_params_zero_grad(&ps);
      CHECK_MSG(vt_backward(ctx, vt_scale(ctx, tot, 1.0f / (float)l.count)), "%s",
                vt_ctx_error(ctx));
      if (step == 0) { /* the phase reaches its own parameters only */
        vt_param *dw = vt_params_find(&ps, "mpd.discriminators.0.convs.0.weight_v"),
                 *gw = vt_params_find(&ps, "generator.conv_post.weight_v");
        float *gd = malloc(sizeof(float) * (size_t)vt_numel(&dw->t)),
              *gg = malloc(sizeof(float) * (size_t)vt_numel(&gw->t));
        vt_grad_to_host(ctx, &dw->t, gd);
        vt_grad_to_host(ctx, &gw->t, gg);
        CHECK(p == 0 ? gd[0] != 0 && gg[0] == 0 : gd[0] == 0 && gg[0] != 0);
        free(gd);
        free(gg);
      }
      vt_optim_stats os;
      CHECK_MSG(vt_optim_step(&ph.opt[p], 1.0, step, &os, err, sizeof err) == 0, "%s", err);
      vt_ctx_reset(ctx);
    }
  double mel1 = held_mel(m, ctx, held, n, 512), e_mel1 = eval_metric(m, ctx, held, 512, "mel_l1"),
         e_snr1 = eval_metric(m, ctx, held, 512, "snr_db");
  printf("held-out weighted mel L1 %.2f -> %.2f after %d steps (eval mode: mel L1 %.3f -> %.3f, "
         "SNR %.2f -> %.2f dB)\n",
         mel0, mel1, STEPS, e_mel0, e_mel1, e_snr0, e_snr1);
  CHECK_MSG(mel1 < 0.9 * mel0, "held-out mel %.2f -> %.2f", mel0, mel1);
  CHECK_MSG(e_mel1 < e_mel0, "eval mel L1 %.3f -> %.3f", e_mel0, e_mel1);
  CHECK(isfinite(e_snr1));
  CHECK(ph.opt[0].t == STEPS && ph.opt[1].t == STEPS);
  codec_phases_free(&ph);
  free(w);
  free(held);
  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
}

/* configs/stages/ticodec-3.1.yaml: TiCodec's optimizers and schedule for both phases, and the
 * model config it names opens as the full-size codec. */
static void test_stage_config(void) {
  static stage_cfg c;
  char path[1024], err[1024];
  snprintf(path, sizeof path, "%s/configs/stages/ticodec-3.1.yaml", getenv("VT_SOURCE_DIR"));
  CHECK_MSG(stage_config_load(&c, path, err, sizeof err) == 0, "%s", err);
  CHECK(!strcmp(c.model_name, "ticodec") && c.batch_size == 20 && c.n_phases == 2);
  for (int p = 0; p < 2; p++) {
    const stage_phase *ph = stage_find_phase(&c, p ? "gen" : "disc");
    CHECK(ph && !strcmp(ph->optim.kind, "adam") && ph->optim.lr == 2e-4 && ph->optim.beta1 == 0.5 &&
          ph->optim.beta2 == 0.9);
  }
  CHECK(!strcmp(c.sched.kind, "exp_epoch") && c.sched.gamma == 0.98);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m = stage_model_open(c.model_name, c.model_config, NULL, &ps, err, sizeof err);
  CHECK_MSG(m, "%s", err);
  if (m) {
    /* the full-size codec: 24 kHz, 40 tokens a second; every term has a weight of 1 */
    CHECK(codec_hop(&codec_model_config(m)->codec) == 600);
    for (int i = 0; i < m->n_terms; i++) CHECK(stage_loss_weight(&c, m->terms[i].name) == 1.0);
    vt_model_destroy(m);
  }
  vt_params_free(&ps);
}

int main(void) {
  test_stage_config();
  test_config();
  test_training();
  return vt_test_finish("test_codec_model");
}
