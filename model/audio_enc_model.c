/* The audio encoder with its CTC head (stage 2.1a) and, optionally, the audio adapter behind the
 * model interface (model.h), registered as "audio_ctc" (model_type "vita_audio_encoder"). A
 * batch holds one VT_MEDIA_FBANK item per row (fbank before CMVN, lengths in frames; spans[i,
 * 0] names its row) and the transcript as the row's trained labels (labels != -100 whose id is
 * in the CTC vocabulary; 0 is the blank). One loss term, "ctc": per-sample CTC loss divided by
 * its target length, summed (PyTorch's 'mean' once the trainer divides by the samples).
 * Eval metrics: loss, cer and wer (greedy decoding; words split at word_sep_id). CMVN stats come
 * inline as "global_cmvn" (the JSON `vita cmvn` writes) and fill the buffers at initialisation. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/audio_adapter.h"
#include "model/audio_cfg.h"
#include "model/audio_enc.h"
#include "model/audio_enc_ctc.h"
#include "model/model.h"
#include "model/model_cfg.h"
#include "model/model_cost.h"

typedef struct {
  vt_model base;
  audio_enc enc;
  audio_adapter ad;
  bool has_adapter;
  int64_t word_sep; /* < 0: no WER */
  json_t *cmvn;     /* the config's "global_cmvn" stats (NULL: mean 0, istd 1) */
} audio_model;

static const char *const int_keys[] = {"n_mels",
                                       "hidden_size",
                                       "num_attention_heads",
                                       "intermediate_size",
                                       "num_hidden_layers",
                                       "ctc_vocab",
                                       "max_positions",
                                       "chunk_size",
                                       "left_chunks",
                                       "llm_hidden_size",
                                       "audio_prompt_num",
                                       "word_sep_id"};

static int64_t *int_field(audio_enc_cfg *c, audio_adapter_cfg *a, int64_t *sep, int i) {
  int64_t *f[] = {&c->n_mels,      &c->hidden,    &c->heads,    &c->ffn,
                  &c->layers,      &c->ctc_vocab, &c->max_pos,  &c->chunk_size,
                  &c->left_chunks, &a->llm_dim,   &a->n_prompt, sep};
  return f[i];
}

static const char *const chunk_names[3] = {"full", "static", "dynamic"};

int audio_enc_cfg_from_json(const json_t *root, const char *where, audio_enc_cfg *c,
                            audio_adapter_cfg *a, int64_t *sep, char *err, size_t err_len) {
  *c = audio_enc_cfg_vita();
  *a = audio_adapter_cfg_vita();
  a->llm_dim = 0; /* no adapter unless llm_hidden_size is given */
  *sep = -1;
  if (!json_is_object(root)) {
    snprintf(err, err_len, "%s: audio config: expected an object, found %s", where,
             model_cfg_type_name(root));
    return -1;
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)root, key, v) {
    bool known = !strcmp(key, "model_type") || !strcmp(key, "dropout") ||
                 !strcmp(key, "norm_eps") || !strcmp(key, "chunk_mode");
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
      known |= !strcmp(key, int_keys[i]);
    if (!known) {
      snprintf(err, err_len, "%s: field \"%s\": not an audio_ctc field", where, key);
      return -1;
    }
    if ((!strcmp(key, "model_type") || !strcmp(key, "chunk_mode")) && !json_is_string(v)) {
      snprintf(err, err_len, "%s: field \"%s\": expected a string, found %s", where, key,
               model_cfg_type_name(v));
      return -1;
    }
  }
  for (int i = 0; i < (int)(sizeof int_keys / sizeof int_keys[0]); i++)
    if (model_cfg_int(root, where, int_keys[i], false, INT64_MIN, INT64_MAX,
                      int_field(c, a, sep, i), err, err_len))
      return -1;
  double dropout = c->dropout;
  if (model_cfg_num(root, where, "dropout", false, &dropout, err, err_len) ||
      model_cfg_num(root, where, "norm_eps", false, &c->norm_eps, err, err_len))
    return -1;
  c->dropout = (float)dropout;
  if ((v = json_object_get(root, "chunk_mode"))) {
    int k = -1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(json_string_value(v), chunk_names[i])) k = i;
    if (k < 0) {
      snprintf(err, err_len,
               "%s: field \"chunk_mode\": expected full, static or dynamic, found \"%s\"", where,
               json_string_value(v));
      return -1;
    }
    c->chunk_mode = (audio_enc_chunk_mode)k;
  }
  a->enc_dim = c->hidden;
  char why[400];
  if (audio_enc_cfg_check(c, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", where, why);
    return -1;
  }
  return 0;
}

/* CMVN stats in the public global_cmvn JSON (what `vita cmvn` writes) -> mean and istd as
 * data/cmvn.c computes them: mean = sum / n, var = sumsq / n - mean^2 floored at 1e-20, istd =
 * 1 / sqrt(var). The model reads no files, so the stats come inline in its config. */
static int cmvn_of(const json_t *st, const char *where, int64_t dim, float *mean, float *istd,
                   char *err, size_t err_len) {
  json_t *ms = json_object_get(st, "mean_stat"), *vs = json_object_get(st, "var_stat");
  json_t *fn = json_object_get(st, "frame_num");
  if (!json_is_array(ms) || !json_is_array(vs) || json_array_size(ms) != (size_t)dim ||
      json_array_size(vs) != (size_t)dim || !json_is_number(fn) || !(json_number_value(fn) > 0)) {
    snprintf(err, err_len,
             "%s: field \"global_cmvn\": expected {mean_stat: [%lld numbers], var_stat: [%lld "
             "numbers], frame_num: > 0} (vita cmvn's output)",
             where, (long long)dim, (long long)dim);
    return -1;
  }
  double n = json_number_value(fn);
  for (int64_t d = 0; d < dim; d++) {
    json_t *a = json_array_get(ms, (size_t)d), *b = json_array_get(vs, (size_t)d);
    if (!json_is_number(a) || !json_is_number(b)) {
      snprintf(err, err_len, "%s: field \"global_cmvn\": value %lld is not a number", where,
               (long long)d);
      return -1;
    }
    double mu = json_number_value(a) / n, var = json_number_value(b) / n - mu * mu;
    if (var < 1e-20) var = 1e-20;
    mean[d] = (float)mu;
    istd[d] = (float)(1.0 / sqrt(var));
  }
  return 0;
}

static vt_model *create(const json_t *config0, const char *where, const vt_model_opts *opts,
                        vt_params *ps, char *err, size_t err_len) {
  audio_model *m = vt_model_alloc(sizeof *m, "audio_ctc", err, err_len);
  if (!m) return NULL;
  audio_enc_cfg c;
  audio_adapter_cfg a;
  json_t *config = json_copy((json_t *)config0);
  m->cmvn = json_incref(json_object_get(config, "global_cmvn"));
  json_object_del(config, "global_cmvn");
  int crc = audio_enc_cfg_from_json(config, where, &c, &a, &m->word_sep, err, err_len);
  json_decref(config);
  if (!crc && m->cmvn) {
    float *mu = malloc(sizeof(float) * (size_t)c.n_mels),
          *is = malloc(sizeof(float) * (size_t)c.n_mels);
    crc = !mu || !is || cmvn_of(m->cmvn, where, c.n_mels, mu, is, err, err_len);
    free(mu), free(is);
  }
  if (crc) {
    json_decref(m->cmvn);
    free(m);
    return NULL;
  }
  c.recompute = opts->recompute;
  if (audio_enc_init(&m->enc, ps, &c, err, err_len)) {
    audio_enc_free(&m->enc);
    free(m);
    return NULL;
  }
  m->has_adapter = a.llm_dim > 0;
  if (m->has_adapter && audio_adapter_init(&m->ad, ps, &a, err, err_len)) {
    audio_enc_free(&m->enc);
    free(m);
    return NULL;
  }
  /* token ids are no input (the transcript is read from the labels): vocab_size 0 lets chat
   * rows with their placeholders through */
  m->base.vocab_size = 0;
  m->base.media = VT_MEDIA_BIT(VT_MEDIA_FBANK);
  /* the encoder and the CTC head train; CMVN stats are buffers in no phase */
  vt_model_one_phase(&m->base, "model.audio_encoder.encoder.enc.*,model.audio_encoder.ctc.*",
                     "ctc");
  return &m->base;
}

static void destroy(vt_model *base) {
  audio_model *m = (audio_model *)base;
  audio_enc_free(&m->enc);
  json_decref(m->cmvn);
  free(m);
}

static int init_weights(vt_model *base, vt_params *ps, vt_rng *rng, char *err, size_t err_len) {
  (void)ps;
  audio_model *m = (audio_model *)base;
  audio_enc_init_weights(&m->enc, rng);
  if (m->has_adapter) audio_adapter_init_weights(&m->ad, rng);
  if (m->cmvn) {
    int64_t d = m->enc.cfg.n_mels;
    float *mu = malloc(sizeof(float) * (size_t)d), *is = malloc(sizeof(float) * (size_t)d);
    int rc = !mu || !is || cmvn_of(m->cmvn, "audio_ctc", d, mu, is, err, err_len);
    if (!rc) audio_enc_set_cmvn(&m->enc, mu, is);
    free(mu), free(is);
    if (rc) return -1;
  }
  return 0;
}

json_t *audio_enc_cfg_to_json(const audio_enc_cfg *c0, const audio_adapter_cfg *a0,
                              int64_t word_sep) {
  audio_enc_cfg c = *c0;
  audio_adapter_cfg a = a0 ? *a0 : audio_adapter_cfg_vita();
  int64_t sep = word_sep;
  json_t *o = json_object();
  for (int i = 0; i < (int)(sizeof int_keys / sizeof int_keys[0]); i++) {
    if ((!a0 && (i == 9 || i == 10)) || (i == 11 && word_sep < 0)) continue;
    json_object_set_new(o, int_keys[i], json_integer(*int_field(&c, &a, &sep, i)));
  }
  json_object_set_new(o, "dropout", json_real(c.dropout));
  json_object_set_new(o, "norm_eps", json_real(c.norm_eps));
  json_object_set_new(o, "chunk_mode", json_string(chunk_names[c.chunk_mode]));
  return o;
}

static json_t *config_json(const vt_model *base) {
  const audio_model *m = (const audio_model *)base;
  json_t *o = audio_enc_cfg_to_json(&m->enc.cfg, m->has_adapter ? &m->ad.cfg : NULL, -1);
  json_object_set_new(o, "model_type", json_string("vita_audio_encoder"));
  json_object_set_new(o, "word_sep_id", json_integer(m->word_sep));
  if (m->cmvn) json_object_set(o, "global_cmvn", m->cmvn);
  return o;
}

/* The host side of a batch: each row's fbank item (in row order) and its transcript. */
typedef struct {
  int64_t B, T, F;
  int32_t *frames, *targets, *tlen, *item_of_row;
  int64_t S; /* target stride */
} host_batch;

static void host_free(host_batch *h) {
  free(h->frames);
  free(h->targets);
  free(h->tlen);
  free(h->item_of_row);
}

static int get_batch(audio_model *m, vt_ctx *ctx, const vt_batch *b, host_batch *h,
                     vt_tensor **feats) {
  static const char *op = "audio_ctc";
  memset(h, 0, sizeof *h);
  const vt_media *fm = vt_batch_media(b, VT_MEDIA_FBANK);
  int64_t B = b->rows, T = b->len;
  if (!fm || fm->n != B || !fm->data || fm->data->ndim != 3) {
    vt_ctx_fail(ctx, op, "a batch needs one fbank item [rows, frames, mels] per row (%lld rows)",
                (long long)B);
    return -1;
  }
  h->B = B;
  h->T = fm->data->shape[1];
  h->F = fm->data->shape[2];
  h->S = T > 0 ? T : 1;
  int32_t *ilen = malloc(sizeof(int32_t) * (size_t)B),
          *spans = malloc(sizeof(int32_t) * (size_t)(3 * B));
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)(B * (T > 0 ? T : 1)));
  h->frames = malloc(sizeof(int32_t) * (size_t)B);
  h->targets = calloc((size_t)(B * h->S), sizeof(int32_t));
  h->tlen = calloc((size_t)B, sizeof(int32_t));
  h->item_of_row = malloc(sizeof(int32_t) * (size_t)B);
  int rc = -1;
  if (!ilen || !spans || !lab || !h->frames || !h->targets || !h->tlen || !h->item_of_row) {
    vt_ctx_fail(ctx, op, "out of host memory for a batch of %lld rows", (long long)B);
    goto done;
  }
  if (fm->lengths)
    vt_to_host(ctx, fm->lengths, ilen);
  else
    for (int64_t i = 0; i < B; i++) ilen[i] = (int32_t)h->T;
  if (fm->spans)
    vt_to_host(ctx, fm->spans, spans);
  else
    for (int64_t i = 0; i < B; i++) spans[3 * i] = (int32_t)i;
  vt_to_host(ctx, b->labels, lab);
  for (int64_t r = 0; r < B; r++) h->item_of_row[r] = -1;
  for (int64_t i = 0; i < B; i++) {
    int32_t r = spans[3 * i];
    if (r < 0 || r >= B || h->item_of_row[r] >= 0) {
      vt_ctx_fail(ctx, op, "fbank item %lld names row %d: each of the %lld rows needs exactly one",
                  (long long)i, r, (long long)B);
      goto done;
    }
    h->item_of_row[r] = (int32_t)i;
  }
  /* items in row order, so row r's output is the row's */
  int32_t *order = h->item_of_row;
  vt_tensor *idx = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, order);
  *feats = vt_index_select(ctx, fm->data, 0, idx);
  for (int64_t r = 0; r < B; r++) {
    h->frames[r] = ilen[order[r]];
    for (int64_t t = 0; t < T; t++) {
      int32_t y = lab[r * T + t];
      if (y != VT_IGNORE_INDEX && y > 0 && y < m->enc.cfg.ctc_vocab)
        h->targets[r * h->S + h->tlen[r]++] = y;
    }
  }
  rc = 0;
done:
  free(ilen);
  free(spans);
  free(lab);
  return rc;
}

/* Per-row CTC loss / target length, summed, and the log-probabilities (for decoding). */
static vt_tensor *ctc_sum(audio_model *m, vt_ctx *ctx, const vt_batch *b, bool train, vt_rng *rng,
                          host_batch *h, vt_tensor **log_probs, int32_t *out_len) {
  vt_tensor *feats = NULL;
  if (get_batch(m, ctx, b, h, &feats)) return NULL;
  audio_enc_fwd f = {.training = train, .rng = rng};
  vt_tensor *y = audio_enc_forward(&m->enc, ctx, feats, h->frames, out_len, &f);
  vt_tensor *lp = audio_enc_ctc_log_probs(&m->enc, ctx, y);
  *log_probs = lp;
  vt_ctc_opts co = {.blank = 0, .reduction = VT_LOSS_MEAN, .zero_infinity = true};
  vt_tensor *mean =
      vt_ctc_loss(ctx, lp, vt_from_host(ctx, VT_I32, 2, (int64_t[]){h->B, h->S}, h->targets),
                  vt_from_host(ctx, VT_I32, 1, (int64_t[]){h->B}, out_len),
                  vt_from_host(ctx, VT_I32, 1, (int64_t[]){h->B}, h->tlen), &co);
  return vt_scale(ctx, mean, (float)h->B); /* the batch mean back to a sum over samples */
}

static int loss(vt_model *base, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
                vt_model_loss *out) {
  audio_model *m = (audio_model *)base;
  if (vt_ctx_failed(ctx)) return -1;
  host_batch h;
  vt_tensor *lp;
  int32_t *ol = malloc(sizeof(int32_t) * (size_t)(b->rows > 0 ? b->rows : 1));
  if (!ol) return -1;
  vt_tensor *sum = ctc_sum(m, ctx, b, st->train, st->rng, &h, &lp, ol);
  out->n_terms = 1;
  out->terms[0].name = "ctc";
  out->terms[0].sum = sum;
  out->count = (double)b->rows;
  host_free(&h);
  free(ol);
  return vt_ctx_failed(ctx) || !sum ? -1 : 0;
}

static int eval(vt_model *base, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n) {
  audio_model *m = (audio_model *)base;
  if (vt_ctx_failed(ctx)) return -1;
  host_batch h;
  vt_tensor *lp = NULL;
  int64_t B = b->rows, V = m->enc.cfg.ctc_vocab;
  int32_t *ol = malloc(sizeof(int32_t) * (size_t)(B > 0 ? B : 1));
  if (!ol) return -1;
  vt_tensor *sum = ctc_sum(m, ctx, b, false, NULL, &h, &lp, ol);
  int rc = -1;
  float *host = NULL;
  int32_t *hyp = NULL;
  if (!sum || vt_ctx_failed(ctx)) goto done;
  double loss_sum = vt_item(ctx, sum);
  int64_t T2 = lp->shape[1];
  host = malloc(sizeof(float) * (size_t)(B * T2 * V));
  hyp = malloc(sizeof(int32_t) * (size_t)(T2 > 0 ? T2 : 1));
  if (!host || !hyp) {
    vt_ctx_fail(ctx, "audio_ctc eval", "out of host memory for the decoding");
    goto done;
  }
  vt_to_host(ctx, lp, host);
  double ce = 0, cn = 0, we = 0, wn = 0;
  for (int64_t r = 0; r < B; r++) {
    int64_t nh = audio_ctc_greedy(host + r * T2 * V, ol[r], V, 0, hyp);
    const int32_t *ref = h.targets + r * h.S;
    ce += (double)audio_edit_distance(hyp, nh, ref, h.tlen[r]);
    cn += h.tlen[r];
    if (m->word_sep >= 0) {
      int64_t words = 0;
      we += (double)audio_word_errors(hyp, nh, ref, h.tlen[r], (int32_t)m->word_sep, &words);
      wn += (double)words;
    }
  }
  out[0] = (vt_metric){"loss", loss_sum, (double)B};
  out[1] = (vt_metric){"cer", ce, cn};
  *n = 2;
  if (m->word_sep >= 0) out[(*n)++] = (vt_metric){"wer", we, wn};
  rc = 0;
done:
  free(host);
  free(hyp);
  free(ol);
  host_free(&h);
  return rc;
}

static void describe(const vt_model *base, char *buf, size_t len) {
  const audio_model *m = (const audio_model *)base;
  const audio_enc_cfg *c = &m->enc.cfg;
  audio_enc_cfg enc_only = *c;
  enc_only.ctc_vocab = 0;
  int n = snprintf(buf, len,
                   "audio encoder: %lld mels, conv x4, %lld layers, hidden %lld, heads %lld, ffn "
                   "%lld, %s chunks: %lld parameters; CTC head %lld classes",
                   (long long)c->n_mels, (long long)c->layers, (long long)c->hidden,
                   (long long)c->heads, (long long)c->ffn, chunk_names[c->chunk_mode],
                   (long long)audio_enc_param_count(&enc_only), (long long)c->ctc_vocab);
  if (m->has_adapter && n > 0 && (size_t)n < len)
    snprintf(buf + n, len - (size_t)n, "; adapter %lld -> %lld (%lld prompts): %lld parameters",
             (long long)m->ad.cfg.enc_dim, (long long)m->ad.cfg.llm_dim,
             (long long)m->ad.cfg.n_prompt, (long long)audio_adapter_param_count(&m->ad.cfg));
}

static const char *const model_types[] = {"vita_audio_encoder", "audio_ctc", NULL};

/* One part, "audio_encoder" (with its CTC head and the adapter when present, which are
 * small). tokens are fbank frames; default 3000 (30 s at 100 Hz), batch 1. */
static int cost(const vt_model *base, vt_model_shape *s, vt_model_cost *parts) {
  const audio_model *m = (const audio_model *)base;
  if (s->batch <= 0) s->batch = 1;
  if (s->tokens <= 0) s->tokens = 3000;
  model_cost_audio_enc(&m->enc.cfg, s->batch, s->tokens, "*", &parts[0]);
  return 1;
}

const vt_model_ops audio_ctc_model_ops = {.name = "audio_ctc",
                                          .model_types = model_types,
                                          .create = create,
                                          .destroy = destroy,
                                          .init_weights = init_weights,
                                          .config_json = config_json,
                                          .loss = loss,
                                          .eval = eval,
                                          .describe = describe,
                                          .cost = cost};
