/* The codec behind the model interface; see codec_model.h. */
#include "model/codec_model.h"
#include "autograd/fmt.h"
#include "model/codec_cost.h"
#include "model/model_cfg.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vt_model base;
  codec_model_cfg cfg;
  codec m;
  codec_restart rs;
  disc d;
  codec_gan gan;
  int first, last; /* the store's items [first, last) are this model's */
} codec_model;

codec_model_cfg codec_model_cfg_vita(void) {
  return (codec_model_cfg){.codec = codec_cfg_vita(),
                           .disc = disc_cfg_vita(),
                           .gan = codec_gan_cfg_vita(),
                           .segment = 24000,
                           .restart = {.kmeans_init = false, .kmeans_iters = 10}};
}

/* ---- config I/O ---- */

/* Optional fields through the shared getters (model_cfg.h), narrowed to the config's types:
 * an array of n_max ints (NULL n: exactly n_max), an int, a float. */
static int get_ints(const json_t *root, const char *where, const char *key, int *out, int *n,
                    int n_max, char *err, size_t err_len) {
  int got = 0;
  if (model_cfg_ints(root, where, key, false, INT_MIN, INT_MAX, out, n_max, &got, err, err_len))
    return -1;
  if (!json_object_get(root, key)) return 0;
  if (got < 1 || (!n && got != n_max)) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected an array of %s%d integers, found %d", where,
              key, n ? "1 to " : "", n_max, got);
    return -1;
  }
  if (n) *n = got;
  return 0;
}

static int get_int(const json_t *root, const char *where, const char *key, int *out, char *err,
                   size_t err_len) {
  int64_t v = *out;
  if (model_cfg_int(root, where, key, false, INT_MIN, INT_MAX, &v, err, err_len)) return -1;
  *out = (int)v;
  return 0;
}

static int get_float(const json_t *root, const char *where, const char *key, float *out, char *err,
                     size_t err_len) {
  double v = *out;
  if (model_cfg_num(root, where, key, false, &v, err, err_len)) return -1;
  *out = (float)v;
  return 0;
}

/* The model_type values this model reads (also its ops table's list). */
static const char *const model_types[] = {"ticodec", NULL};

int codec_model_cfg_from_json(const json_t *root, const char *where, codec_model_cfg *cfg,
                              char *err, size_t err_len) {
  *cfg = codec_model_cfg_vita();
  if (model_cfg_type(root, where, model_types, err, err_len)) return -1;
  codec_cfg *c = &cfg->codec;
  disc_cfg *d = &cfg->disc;
  codec_gan_cfg *g = &cfg->gan;
  int n_rates = c->n_stages, n_kernels = c->n_stages, n_res = c->n_res, n_dil = c->n_dil;
  int dil[CODEC_MAX_RES * NN_RES_MAX];
  json_t *dj = json_object_get(root, "resblock_dilation_sizes");
  int gfc[5] = {0};
  if (get_ints(root, where, "upsample_rates", c->rates, &n_rates, CODEC_MAX_STAGES, err, err_len) ||
      get_ints(root, where, "upsample_kernel_sizes", c->kernels, &n_kernels, CODEC_MAX_STAGES, err,
               err_len) ||
      get_ints(root, where, "resblock_kernel_sizes", c->res_kernels, &n_res, CODEC_MAX_RES, err,
               err_len) ||
      get_int(root, where, "sampling_rate", &c->sample_rate, err, err_len) ||
      get_int(root, where, "encoder_channels", &c->enc_ch, err, err_len) ||
      get_int(root, where, "upsample_initial_channel", &c->gen_ch, err, err_len) ||
      get_int(root, where, "group_channels", &c->group_ch, err, err_len) ||
      get_int(root, where, "n_codes", &c->n_codes, err, err_len) ||
      get_int(root, where, "global_code_num", &c->n_global, err, err_len) ||
      get_float(root, where, "commitment_loss_lambda", &c->commitment, err, err_len) ||
      get_int(root, where, "segment_size", &cfg->segment, err, err_len))
    return -1;
  codec_restart_cfg *rs = &cfg->restart;
  int64_t iters = rs->kmeans_iters, dead = rs->dead_batches;
  if (model_cfg_bool(root, where, "kmeans_init", false, &rs->kmeans_init, err, err_len) ||
      model_cfg_int(root, where, "kmeans_iters", false, 0, 1000, &iters, err, err_len) ||
      model_cfg_int(root, where, "dead_code_batches", false, 0, INT_MAX, &dead, err, err_len))
    return -1;
  rs->kmeans_iters = (int)iters;
  rs->dead_batches = (int)dead;
  if (json_object_get(root, "global_feature_conv")) {
    /* TiCodec: [in_channels, hidden, out (the global width), kernel 3, stride 1] */
    if (get_ints(root, where, "global_feature_conv", gfc, NULL, 5, err, err_len)) return -1;
    c->global_hidden = gfc[1];
    c->global_dim = gfc[2];
    if (gfc[3] != 3 || gfc[4] != 1) {
      snprintf(err, err_len,
               "%s: field \"global_feature_conv\": kernel %d, stride %d: only 3, 1 are supported",
               where, gfc[3], gfc[4]);
      return -1;
    }
  }
  if (n_rates != n_kernels) {
    snprintf(err, err_len,
             "%s: fields \"upsample_rates\" and \"upsample_kernel_sizes\": %d and %d entries",
             where, n_rates, n_kernels);
    return -1;
  }
  c->n_stages = n_rates;
  if (dj) {
    size_t nr = json_is_array(dj) ? json_array_size(dj) : 0;
    bool ok = (int)nr == n_res;
    for (size_t i = 0; ok && i < nr; i++) {
      json_t *row = json_array_get(dj, i);
      ok = json_is_array(row) && json_array_size(row) >= 1 && json_array_size(row) <= NN_RES_MAX &&
           (i == 0 || (int)json_array_size(row) == n_dil);
      n_dil = ok ? (int)json_array_size(row) : n_dil;
      for (size_t j = 0; ok && j < json_array_size(row); j++) {
        ok = json_is_integer(json_array_get(row, j));
        dil[i * NN_RES_MAX + j] = (int)json_integer_value(json_array_get(row, j));
      }
    }
    if (!ok) {
      snprintf(err, err_len,
               "%s: field \"resblock_dilation_sizes\": expected %d arrays (one per resblock "
               "kernel) of 1 to %d integers, all of one length",
               where, n_res, NN_RES_MAX);
      return -1;
    }
    for (int i = 0; i < n_res; i++)
      for (int j = 0; j < n_dil; j++) c->res_dilations[i][j] = dil[i * NN_RES_MAX + j];
  } else if (n_res != c->n_res) {
    snprintf(err, err_len, "%s: field \"resblock_dilation_sizes\": needed for %d resblock kernels",
             where, n_res);
    return -1;
  }
  c->n_res = n_res;
  c->n_dil = n_dil;
  int np = d->n_periods, nf = d->n_stft, nh = d->n_stft, mel_n = CODEC_N_MEL;
  int mel_fft[CODEC_N_MEL], mel_hop[CODEC_N_MEL];
  memcpy(mel_fft, g->mel_n_fft, sizeof mel_fft);
  memcpy(mel_hop, g->mel_hop, sizeof mel_hop);
  if (get_ints(root, where, "mpd_periods", d->periods, &np, DISC_MAX_SUB, err, err_len) ||
      get_ints(root, where, "mpd_channels", d->mpd_ch, NULL, 5, err, err_len) ||
      get_int(root, where, "msd_scales", &d->n_scales, err, err_len) ||
      get_ints(root, where, "msd_channels", d->msd_ch, NULL, 7, err, err_len) ||
      get_ints(root, where, "msd_groups", d->msd_groups, NULL, 7, err, err_len) ||
      get_ints(root, where, "stft_n_ffts", d->stft_n_fft, &nf, DISC_MAX_SUB, err, err_len) ||
      get_ints(root, where, "stft_hops", d->stft_hop, &nh, DISC_MAX_SUB, err, err_len) ||
      get_int(root, where, "stft_filters", &d->stft_filters, err, err_len) ||
      get_ints(root, where, "mel_n_ffts", mel_fft, NULL, mel_n, err, err_len) ||
      get_ints(root, where, "mel_hops", mel_hop, NULL, mel_n, err, err_len) ||
      get_int(root, where, "num_mels", &g->n_mels, err, err_len) ||
      get_float(root, where, "lambda_vq", &g->w_q, err, err_len) ||
      get_float(root, where, "lambda_consistency", &g->w_cons, err, err_len) ||
      get_float(root, where, "feature_matching", &g->fm_scale, err, err_len))
    return -1;
  if (json_object_get(root, "mel_weights")) {
    json_t *w = json_object_get(root, "mel_weights");
    bool ok = json_is_array(w) && json_array_size(w) == CODEC_N_MEL;
    for (int i = 0; ok && i < CODEC_N_MEL; i++) {
      ok = json_is_number(json_array_get(w, (size_t)i));
      g->mel_w[i] = (float)json_number_value(json_array_get(w, (size_t)i));
    }
    if (!ok) {
      snprintf(err, err_len, "%s: field \"mel_weights\": expected %d numbers", where, CODEC_N_MEL);
      return -1;
    }
  }
  if (nf != nh) {
    snprintf(err, err_len, "%s: fields \"stft_n_ffts\" and \"stft_hops\": %d and %d entries", where,
             nf, nh);
    return -1;
  }
  d->n_periods = np;
  d->n_stft = nf;
  memcpy(g->mel_n_fft, mel_fft, sizeof mel_fft);
  memcpy(g->mel_hop, mel_hop, sizeof mel_hop);
  char why[256];
  if (!codec_cfg_check(c, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", where, why);
    return -1;
  }
  int hop = codec_hop(c);
  if (cfg->segment < hop || cfg->segment % hop || d->n_scales < 0 || d->n_scales > DISC_MAX_SUB) {
    snprintf(err, err_len,
             "%s: field \"segment_size\": %d must be a positive multiple of the hop %d (msd_scales "
             "%d: 0 to %d)",
             where, cfg->segment, hop, d->n_scales, DISC_MAX_SUB);
    return -1;
  }
  for (int i = 0; i < CODEC_N_MEL; i++)
    if (g->mel_n_fft[i] % 2 || g->mel_hop[i] < 1 || g->mel_hop[i] > g->mel_n_fft[i] ||
        (g->mel_n_fft[i] - g->mel_hop[i]) / 2 >= cfg->segment) {
      snprintf(err, err_len,
               "%s: mel resolution %d: n_fft %d (even), hop %d: the reflect padding must be "
               "shorter than segment_size %d",
               where, i, g->mel_n_fft[i], g->mel_hop[i], cfg->segment);
      return -1;
    }
  return 0;
}

static json_t *ints(const int *v, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(v[i]));
  return a;
}

json_t *codec_model_cfg_to_json(const codec_model_cfg *cfg) {
  const codec_cfg *c = &cfg->codec;
  const disc_cfg *d = &cfg->disc;
  const codec_gan_cfg *g = &cfg->gan;
  json_t *dil = json_array();
  for (int i = 0; i < c->n_res; i++)
    json_array_append_new(dil, ints(c->res_dilations[i], c->n_dil));
  int gfc[5] = {c->enc_ch << (c->n_stages / 2), c->global_hidden, c->global_dim, 3, 1};
  json_t *mw = json_array();
  for (int i = 0; i < CODEC_N_MEL; i++) json_array_append_new(mw, json_real(g->mel_w[i]));
  json_t *o = json_object();
  json_object_set_new(o, "model_type", json_string("ticodec"));
  json_object_set_new(o, "resblock", json_string("1"));
  json_object_set_new(o, "sampling_rate", json_integer(c->sample_rate));
  json_object_set_new(o, "upsample_rates", ints(c->rates, c->n_stages));
  json_object_set_new(o, "upsample_kernel_sizes", ints(c->kernels, c->n_stages));
  json_object_set_new(o, "upsample_initial_channel", json_integer(c->gen_ch));
  json_object_set_new(o, "resblock_kernel_sizes", ints(c->res_kernels, c->n_res));
  json_object_set_new(o, "resblock_dilation_sizes", dil);
  json_object_set_new(o, "encoder_channels", json_integer(c->enc_ch));
  json_object_set_new(o, "group_channels", json_integer(c->group_ch));
  json_object_set_new(o, "n_code_groups", json_integer(1));
  json_object_set_new(o, "residul_layer", json_integer(1)); /* sic: TiCodec's key */
  json_object_set_new(o, "n_codes", json_integer(c->n_codes));
  json_object_set_new(o, "codebook_loss_lambda", json_real(1.0));
  json_object_set_new(o, "commitment_loss_lambda", json_real(c->commitment));
  json_object_set_new(o, "global_code_num", json_integer(c->n_global));
  json_object_set_new(o, "global_feature_conv", ints(gfc, 5));
  json_object_set_new(o, "segment_size", json_integer(cfg->segment));
  if (codec_restart_on(&cfg->restart)) { /* ours, not TiCodec's: written only when on */
    json_object_set_new(o, "kmeans_init", json_boolean(cfg->restart.kmeans_init));
    json_object_set_new(o, "kmeans_iters", json_integer(cfg->restart.kmeans_iters));
    json_object_set_new(o, "dead_code_batches", json_integer(cfg->restart.dead_batches));
  }
  json_object_set_new(o, "num_mels", json_integer(g->n_mels));
  json_object_set_new(o, "mel_n_ffts", ints(g->mel_n_fft, CODEC_N_MEL));
  json_object_set_new(o, "mel_hops", ints(g->mel_hop, CODEC_N_MEL));
  json_object_set_new(o, "mel_weights", mw);
  json_object_set_new(o, "lambda_vq", json_real(g->w_q));
  json_object_set_new(o, "lambda_consistency", json_real(g->w_cons));
  json_object_set_new(o, "feature_matching", json_real(g->fm_scale));
  json_object_set_new(o, "mpd_periods", ints(d->periods, d->n_periods));
  json_object_set_new(o, "mpd_channels", ints(d->mpd_ch, 5));
  json_object_set_new(o, "msd_scales", json_integer(d->n_scales));
  json_object_set_new(o, "msd_channels", ints(d->msd_ch, 7));
  json_object_set_new(o, "msd_groups", ints(d->msd_groups, 7));
  json_object_set_new(o, "stft_n_ffts", ints(d->stft_n_fft, d->n_stft));
  json_object_set_new(o, "stft_hops", ints(d->stft_hop, d->n_stft));
  json_object_set_new(o, "stft_filters", json_integer(d->stft_filters));
  return o;
}

/* ---- the model ---- */

static void destroy(vt_model *base) {
  codec_model *m = (codec_model *)base;
  codec_gan_free(&m->gan);
  disc_free(&m->d);
  free(m);
}

static vt_model *create(const json_t *config, const char *where, const vt_model_opts *opts,
                        vt_params *ps, char *err, size_t err_len) {
  (void)opts;
  codec_model *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, err_len, "ticodec: out of memory");
    return NULL;
  }
  if (codec_model_cfg_from_json(config, where, &m->cfg, err, err_len)) {
    free(m);
    return NULL;
  }
  m->first = ps->n;
  nn_reg r = nn_reg_make(ps, err, err_len);
  codec_init(&m->m, &r, &m->cfg.codec);
  codec_restart_init(&m->rs, &r, &m->cfg.restart, m->cfg.codec.n_codes);
  bool mem = disc_init(&m->d, &r, &m->cfg.disc);
  bool gan = mem && codec_gan_init(&m->gan, &m->m, &m->d, &m->cfg.gan, m->cfg.codec.sample_rate);
  if (nn_reg_failed(&r) || !gan) {
    if (!nn_reg_failed(&r)) snprintf(err, err_len, "%s: ticodec: out of memory", where);
    destroy(&m->base);
    return NULL;
  }
  m->last = ps->n;
  /* running statistics and spectral-norm vectors: saved, never trained */
  codec_freeze_buffers(ps);
  codec_restart_freeze_buffers(ps);
  disc_freeze_buffers(ps);
  m->base.media = VT_MEDIA_BIT(VT_MEDIA_WAVE);
  m->base.wave_rate = m->cfg.codec.sample_rate;
  m->base.phases[0] = (vt_model_phase){"disc", "mpd.*,msd.*,mstftd.*"};
  m->base.phases[1] = (vt_model_phase){"gen", "encoder.*,quantizer.*,generator.*"};
  m->base.n_phases = 2;
  const char *terms[6] = {"disc", "adv", "fm", "mel", "vq", "consistency"};
  for (int i = 0; i < 6; i++) m->base.terms[i] = (vt_model_term){terms[i], i ? 1 : 0};
  m->base.n_terms = 6;
  return &m->base;
}

static int init_weights(vt_model *base, vt_params *ps, vt_rng *rng, char *err, size_t err_len) {
  codec_model *m = (codec_model *)base;
  (void)err, (void)err_len;
  codec_init_weights(&m->m, ps, rng);
  codec_restart_reset(&m->rs, ps, false);
  disc_init_weights(&m->d, ps, rng);
  return 0;
}

static json_t *config_json(const vt_model *base) {
  return codec_model_cfg_to_json(&((const codec_model *)base)->cfg);
}

void codec_model_codebook_loaded(const vt_model *m, const vt_params *ps) {
  codec_restart_reset(&((const codec_model *)m)->rs, ps, true);
}

const codec *codec_model_codec(const vt_model *m) { return &((const codec_model *)m)->m; }
const codec_model_cfg *codec_model_config(const vt_model *m) {
  return &((const codec_model *)m)->cfg;
}

/* Segments of `seg` samples of every item of the batch's waveforms, [n, 1, seg]: y from a
 * random offset (0 without an rng), yy (the consistency target) from another one (the end
 * without an rng). Items shorter than seg are zero-padded, as TiCodec's loader does. */
static int segments(const codec_model *m, vt_ctx *ctx, const vt_media *w, vt_rng *rng, int seg,
                    vt_tensor **y, vt_tensor **yy) {
  int64_t n = w->n, total = w->data->shape[1];
  int32_t *len = malloc(sizeof(int32_t) * (size_t)n);
  float *h = malloc(sizeof(float) * (size_t)(n * total)),
        *a = malloc(sizeof(float) * (size_t)(n * seg)),
        *b = malloc(sizeof(float) * (size_t)(n * seg));
  int rc = -1;
  if (!len || !h || !a || !b) {
    vt_ctx_fail(ctx, "ticodec", "out of host memory for %lld segments", (long long)n);
    goto done;
  }
  vt_to_host(ctx, w->data, h);
  if (w->lengths)
    vt_to_host(ctx, w->lengths, len);
  else
    for (int64_t i = 0; i < n; i++) len[i] = (int32_t)total;
  for (int64_t i = 0; i < n; i++) {
    int64_t l = len[i] < total ? len[i] : total, span = l > seg ? l - seg : 0;
    int64_t s0 = rng ? (int64_t)(vt_rng_uniform(rng) * (float)(span + 1)) : 0;
    int64_t s1 = rng ? (int64_t)(vt_rng_uniform(rng) * (float)(span + 1)) : span;
    if (s0 > span) s0 = span;
    if (s1 > span) s1 = span;
    for (int64_t j = 0; j < seg; j++) {
      a[i * seg + j] = s0 + j < l ? h[i * total + s0 + j] : 0.0f;
      b[i * seg + j] = s1 + j < l ? h[i * total + s1 + j] : 0.0f;
    }
  }
  *y = vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, 1, seg}, a);
  *yy = vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, 1, seg}, b);
  rc = vt_ctx_failed(ctx) ? -1 : 0;
done:
  free(len), free(h), free(a), free(b);
  (void)m;
  return rc;
}

static const vt_media *waves(vt_ctx *ctx, const vt_batch *b) {
  const vt_media *w = vt_batch_media(b, VT_MEDIA_WAVE);
  if (!w || w->n < 1 || !w->data || w->data->ndim != 2) {
    vt_ctx_fail(ctx, "ticodec", "the batch has no waveforms (VT_MEDIA_WAVE [n, samples])");
    return NULL;
  }
  return w;
}

static int loss(vt_model *base, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
                vt_model_loss *out) {
  codec_model *m = (codec_model *)base;
  const vt_media *w = waves(ctx, b);
  vt_tensor *y, *yy;
  if (!w || segments(m, ctx, w, st->train ? st->rng : NULL, m->cfg.segment, &y, &yy)) return -1;
  float n = (float)w->n;
  out->count = (double)w->n;
  if (st->phase == 0) {
    /* the generator's pass without a tape (its parameters are not this phase's), BatchNorm's
     * running statistics left for the generator phase */
    bool was = vt_set_grad_enabled(ctx, false);
    if (st->train && codec_restart_pending(&m->rs, ctx)) /* the first batch: the k-means */
      codec_restart_first(&m->rs, ctx, m->m.codebook,
                          codec_encode(&m->m, ctx, y, CODEC_TRAIN_KEEP_STATS, NULL), st->rng);
    codec_gan_fwd f = codec_gan_forward(&m->gan, ctx, y, yy, CODEC_TRAIN_KEEP_STATS);
    vt_set_grad_enabled(ctx, was);
    codec_d_losses d = codec_gan_d_loss(&m->gan, ctx, y, f.y_hat);
    out->terms[0].name = "disc";
    out->terms[0].sum = vt_scale(ctx, d.total, n);
    out->n_terms = 1;
  } else {
    /* a loss outside training (held-out losses) leaves the running statistics alone */
    codec_gan_fwd f =
        codec_gan_forward(&m->gan, ctx, y, yy, st->train ? CODEC_TRAIN : CODEC_TRAIN_KEEP_STATS);
    codec_g_losses g = codec_gan_g_loss(&m->gan, ctx, y, &f);
    /* codes no frame chose for dead_code_batches batches get frames of this one; the step's
     * gradient does not reach them (no frame chose them), so the backward is unchanged */
    if (st->train && codec_restart_update(&m->rs, ctx, m->m.codebook, vt_detach(ctx, f.latent),
                                          f.vq.idx, st->rng) < 0)
      return -1;
    vt_tensor *adv = vt_add(ctx, vt_add(ctx, g.g_mpd, g.g_msd), g.g_stft);
    vt_tensor *fm = vt_add(ctx, vt_add(ctx, g.fm_mpd, g.fm_msd), g.fm_stft);
    const char *names[5] = {"adv", "fm", "mel", "vq", "consistency"};
    vt_tensor *sums[5] = {adv, fm, g.mel, vt_scale(ctx, g.q, m->cfg.gan.w_q),
                          vt_scale(ctx, g.cons, m->cfg.gan.w_cons)};
    for (int i = 0; i < 5; i++) {
      out->terms[i].name = names[i];
      out->terms[i].sum = vt_scale(ctx, sums[i], n);
    }
    out->n_terms = 5;
  }
  return vt_ctx_failed(ctx) ? -1 : 0;
}

/* Distinct codes among n. */
static int64_t distinct_codes(const int32_t *codes, int64_t n, int64_t n_codes, bool *seen) {
  int64_t k = 0;
  memset(seen, 0, (size_t)n_codes);
  for (int64_t i = 0; i < n; i++)
    if (codes[i] >= 0 && codes[i] < n_codes && !seen[codes[i]]) seen[codes[i]] = true, k++;
  return k;
}

/* Reconstruction of each whole item (cut to a multiple of the hop) in eval mode: the mel L1 at
 * the first resolution, the SNR in dB and the distinct codes of its frames, per item. */
static int eval(vt_model *base, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n) {
  codec_model *m = (codec_model *)base;
  const vt_media *w = waves(ctx, b);
  if (!w) return -1;
  int hop = codec_hop(&m->cfg.codec);
  int64_t total = w->data->shape[1];
  int32_t *len = malloc(sizeof(int32_t) * (size_t)w->n);
  float *h = malloc(sizeof(float) * (size_t)total), *r = malloc(sizeof(float) * (size_t)total);
  int32_t *codes = malloc(sizeof(int32_t) * (size_t)(total / hop + 1));
  bool *seen = malloc((size_t)m->cfg.codec.n_codes);
  double mel = 0, snr = 0, used = 0;
  int64_t counted = 0;
  int rc = -1;
  if (!len || !h || !r || !codes || !seen) {
    vt_ctx_fail(ctx, "ticodec eval", "out of host memory");
    goto done;
  }
  if (w->lengths)
    vt_to_host(ctx, w->lengths, len);
  else
    for (int64_t i = 0; i < w->n; i++) len[i] = (int32_t)total;
  for (int64_t i = 0; i < w->n; i++) {
    int64_t l = (len[i] < total ? len[i] : total) / hop * hop;
    if (l <= (m->cfg.gan.mel_n_fft[0] - m->cfg.gan.mel_hop[0]) / 2) continue; /* too short */
    vt_tensor *row = vt_slice(ctx, vt_slice(ctx, w->data, 0, i, i + 1), 1, 0, l);
    vt_tensor *y = vt_reshape(ctx, row, 3, (int64_t[]){1, 1, l}), *g;
    vt_tensor *c = codec_encode(&m->m, ctx, y, CODEC_EVAL, &g);
    codec_vq q = codec_quantize(&m->m, ctx, c, g);
    vt_tensor *yh = vt_reshape(ctx, codec_decode(&m->m, ctx, q.q, q.gq), 2, (int64_t[]){1, l});
    vt_tensor *mr = mel_log_spectrogram(ctx, &m->gan.mel[0], row);
    vt_tensor *mg = mel_log_spectrogram(ctx, &m->gan.mel[0], yh);
    mel += vt_item(ctx, vt_l1_loss(ctx, mr, mg, VT_LOSS_MEAN));
    if (vt_ctx_failed(ctx)) goto done;
    vt_to_host(ctx, row, h);
    vt_to_host(ctx, yh, r);
    vt_to_host(ctx, q.idx, codes);
    used += (double)distinct_codes(codes, l / hop, m->cfg.codec.n_codes, seen);
    double s = 0, e = 0;
    for (int64_t j = 0; j < l; j++)
      s += (double)h[j] * h[j], e += (double)(h[j] - r[j]) * (h[j] - r[j]);
    snr += 10.0 * log10((s + 1e-12) / (e + 1e-12));
    counted++;
  }
  out[0] = (vt_metric){"mel_l1", mel, (double)counted};
  out[1] = (vt_metric){"snr_db", snr, (double)counted};
  out[2] = (vt_metric){"codes", used, (double)counted};
  *n = 3;
  rc = 0;
done:
  free(len), free(h), free(r), free(codes), free(seen);
  return rc;
}

bool codec_model_release_param(const char *name) {
  static const char *const parts[] = {"encoder.", "quantizer.", "generator."};
  for (int i = 0; i < 3; i++)
    if (!strncmp(name, parts[i], strlen(parts[i]))) return true;
  return false;
}

/* vita plan: both phases at the model's segment length (codec_cost.h). */
static int cost(const vt_model *base, vt_model_shape *s, vt_model_cost *parts) {
  const codec_model *m = (const codec_model *)base;
  return codec_cost_parts(&m->m, &m->d, &m->cfg.gan, m->cfg.segment, s, parts);
}

static void describe(const vt_model *base, char *buf, size_t len) {
  const codec_model_cfg *c = &((const codec_model *)base)->cfg;
  snprintf(buf, len,
           "TiCodec codec: %d Hz, hop %d (%d stages), latent %d, %d codes, %d global codebooks of "
           "%d; MPD %d periods, MSD %d scales, MS-STFT %d scales",
           c->codec.sample_rate, codec_hop(&c->codec), c->codec.n_stages, codec_latent(&c->codec),
           c->codec.n_codes, c->codec.n_global, c->codec.global_dim / c->codec.n_global,
           c->disc.n_periods, c->disc.n_scales, c->disc.n_stft);
}

const vt_model_ops codec_model_ops = {.name = "ticodec",
                                      .model_types = model_types,
                                      .create = create,
                                      .destroy = destroy,
                                      .init_weights = init_weights,
                                      .config_json = config_json,
                                      .loss = loss,
                                      .eval = eval,
                                      .cost = cost,
                                      .describe = describe};
