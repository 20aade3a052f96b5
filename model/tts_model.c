/* The speech decoder (model/tts.h) behind the model interface (model.h), registered as
 * "tts_decoder". Its config is a JSON object of tts_cfg's fields; a batch holds the text ids
 * as token rows (lengths: text tokens per row) and the codec ids as one VT_MEDIA_CODEC item
 * per row. One phase trains the decoder; the frozen LLM table (model.embed_tokens.weight) is
 * in no phase and is not part of an export. One loss term, "speech_ce": the summed codec
 * cross-entropy over the codec rows (y then EOS), counted per row. Eval metrics: loss,
 * token_acc (argmax against the target) and unigram_acc, the accuracy of the best constant
 * prediction of each eval batch (an upper bound on any unigram predictor's accuracy), so a
 * model that learnt something must beat it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/model_cfg.h"
#include "model/model_cost.h"
#include "model/tts.h"
#include "model/tts_generate.h"

/* A host array grown to the largest batch seen, then reused (no allocation per step). */
typedef struct {
  int32_t *p;
  size_t cap;
} hbuf;

typedef struct {
  vt_model base;
  tts t;
  /* host copies of a batch: text rows and lengths, codec items as they come (ids, lengths,
   * spans) and the codec ids and lengths reordered by row */
  hbuf text, text_lens, raw, item_lens, spans, codec, codec_lens;
} tts_model;

static const char *const int_keys[] = {"hidden_size",    "num_attention_heads", "intermediate_size",
                                       "nar_layers",     "ar_layers",           "codec_vocab",
                                       "llm_vocab_size", "llm_hidden_size"};
static const char *const num_keys[] = {"rope_theta", "rms_norm_eps", "initializer_range"};
/* The release's model.json arguments and the dtype, which an export writes beside ours
 * (hf_config): read back without complaint, ours decide. */
static const char *const export_keys[] = {"idim",
                                          "odim",
                                          "transformer_attention_dim",
                                          "transformer_linear_units",
                                          "transformer_num_blocks",
                                          "transformer_attention_heads",
                                          "encoder_output_dim",
                                          "encoder_criterion",
                                          "torch_dtype"};

static int64_t *int_field(tts_cfg *c, int i) {
  int64_t *f[] = {&c->hidden_size,    &c->num_attention_heads, &c->intermediate_size,
                  &c->nar_layers,     &c->ar_layers,           &c->codec_vocab,
                  &c->llm_vocab_size, &c->llm_hidden_size};
  return f[i];
}
static double *num_field(tts_cfg *c, int i) {
  double *f[] = {&c->rope_theta, &c->rms_norm_eps, &c->initializer_range};
  return f[i];
}

/* Every integer field is required (the decoder's sizes are unpublished: no silent defaults);
 * the float fields default to the LLaMA values. Unknown fields are errors. */
static int read_cfg(const json_t *root, const char *where, tts_cfg *c, char *err, size_t err_len) {
  *c = tts_cfg_full();
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)root, key, v) {
    bool known = !strcmp(key, "model_type");
    for (size_t i = 0; i < sizeof export_keys / sizeof export_keys[0]; i++)
      known |= !strcmp(key, export_keys[i]);
    for (size_t i = 0; i < sizeof int_keys / sizeof int_keys[0]; i++)
      known |= !strcmp(key, int_keys[i]);
    for (size_t i = 0; i < sizeof num_keys / sizeof num_keys[0]; i++)
      known |= !strcmp(key, num_keys[i]);
    if (!known) {
      snprintf(err, err_len, "%s: field \"%s\": not a tts_decoder field", where, key);
      return -1;
    }
  }
  for (int i = 0; i < (int)(sizeof int_keys / sizeof int_keys[0]); i++)
    if (model_cfg_int(root, where, int_keys[i], true, INT64_MIN, INT64_MAX, int_field(c, i), err,
                      err_len))
      return -1;
  for (int i = 0; i < (int)(sizeof num_keys / sizeof num_keys[0]); i++)
    if (model_cfg_num(root, where, num_keys[i], false, num_field(c, i), err, err_len)) return -1;
  char why[400];
  if (tts_cfg_check(c, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", where, why);
    return -1;
  }
  return 0;
}

static vt_model *create(const json_t *config, const char *where, const vt_model_opts *opts,
                        vt_params *ps, char *err, size_t err_len) {
  tts_model *m = vt_model_alloc(sizeof *m, "tts_decoder", err, err_len);
  if (!m) return NULL;
  tts_cfg cfg;
  if (read_cfg(config, where, &cfg, err, err_len)) {
    free(m);
    return NULL;
  }
  cfg.recompute = opts->recompute;
  if (tts_init(&m->t, ps, &cfg, err, err_len)) {
    free(m);
    return NULL;
  }
  m->base.vocab_size = cfg.llm_vocab_size;
  m->base.media = VT_MEDIA_BIT(VT_MEDIA_CODEC);
  /* the decoder trains; the LLM's table is in no phase, so it never updates */
  vt_model_one_phase(&m->base, "embedding.*,layers_pre_nn.*,layers.*,norm.*,out_fnn.*",
                     "speech_ce");
  return &m->base;
}

static void destroy(vt_model *base) {
  tts_model *m = (tts_model *)base;
  tts_free(&m->t);
  hbuf *h[] = {&m->text,  &m->text_lens, &m->raw,       &m->item_lens,
               &m->spans, &m->codec,     &m->codec_lens};
  for (size_t i = 0; i < sizeof h / sizeof h[0]; i++) free(h[i]->p);
  free(m);
}

static int init_weights(vt_model *base, vt_params *ps, vt_rng *rng, char *err, size_t err_len) {
  (void)err, (void)err_len;
  /* the LLM table too: a stage normally overwrites it from the LLM's checkpoint, and a run
   * without one (tests, generated data) still has a fixed random conditioning */
  tts_init_weights(&((tts_model *)base)->t, ps, rng, true);
  return 0;
}

static json_t *config_json(const vt_model *base) {
  tts_cfg c = ((const tts_model *)base)->t.cfg;
  json_t *o = json_object();
  json_object_set_new(o, "model_type", json_string("tts_decoder"));
  for (int i = 0; i < (int)(sizeof int_keys / sizeof int_keys[0]); i++)
    json_object_set_new(o, int_keys[i], json_integer(*int_field(&c, i)));
  for (int i = 0; i < (int)(sizeof num_keys / sizeof num_keys[0]); i++)
    json_object_set_new(o, num_keys[i], json_real(*num_field(&c, i)));
  return o;
}

static int32_t *grow(hbuf *h, int64_t n) {
  if (n < 1) n = 1;
  if ((size_t)n > h->cap) {
    int32_t *q = realloc(h->p, (size_t)n * sizeof *q);
    if (!q) return NULL;
    h->p = q;
    h->cap = (size_t)n;
  }
  return h->p;
}

/* The batch on the host as tts_batch wants it: text rows and lengths from the token rows,
 * codec ids of each row from its VT_MEDIA_CODEC item (items may come in any row order:
 * spans[i, 0] names each one's row). */
static int host_batch(tts_model *m, vt_ctx *ctx, const vt_batch *b, tts_batch *out) {
  static const char *op = "tts_decoder";
  const vt_media *cm = vt_batch_media(b, VT_MEDIA_CODEC);
  int64_t B = b->rows, T = b->len;
  if (!cm || cm->n != B || !cm->data || cm->data->ndim != 2) {
    vt_ctx_fail(ctx, op, "a batch needs one codec item [rows, len] per row (%lld rows, %lld items)",
                (long long)B, cm ? (long long)cm->n : 0LL);
    return -1;
  }
  int64_t C = cm->data->shape[1];
  int32_t *text = grow(&m->text, B * T), *tlen = grow(&m->text_lens, B);
  int32_t *raw = grow(&m->raw, B * C), *ilen = grow(&m->item_lens, B);
  int32_t *spans = grow(&m->spans, 3 * B), *codec = grow(&m->codec, B * C);
  int32_t *clen = grow(&m->codec_lens, B);
  if (!text || !tlen || !raw || !ilen || !spans || !codec || !clen) {
    vt_ctx_fail(ctx, op, "out of host memory for a batch of %lld rows", (long long)B);
    return -1;
  }
  vt_to_host(ctx, b->tokens, text);
  if (b->lengths)
    vt_to_host(ctx, b->lengths, tlen);
  else
    for (int64_t i = 0; i < B; i++) tlen[i] = (int32_t)T;
  if (C) vt_to_host(ctx, cm->data, raw);
  if (cm->lengths)
    vt_to_host(ctx, cm->lengths, ilen);
  else
    for (int64_t i = 0; i < B; i++) ilen[i] = (int32_t)C;
  if (cm->spans)
    vt_to_host(ctx, cm->spans, spans);
  else
    for (int64_t i = 0; i < B; i++) spans[3 * i] = (int32_t)i;
  for (int64_t i = 0; i < B; i++) clen[i] = -1;
  for (int64_t i = 0; i < B; i++) {
    int32_t r = spans[3 * i];
    if (r < 0 || r >= B || clen[r] >= 0) {
      vt_ctx_fail(ctx, op, "codec item %lld names row %d: each of the %lld rows needs exactly one",
                  (long long)i, r, (long long)B);
      return -1;
    }
    clen[r] = ilen[i];
    if (C) memcpy(codec + r * C, raw + i * C, sizeof(int32_t) * (size_t)C);
  }
  *out = (tts_batch){.batch = B,
                     .text = text,
                     .text_lens = tlen,
                     .text_stride = T,
                     .codec = codec,
                     .codec_lens = clen,
                     .codec_stride = C};
  return 0;
}

static int loss(vt_model *base, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
                vt_model_loss *out) {
  tts_model *m = (tts_model *)base;
  (void)st;
  tts_batch hb;
  if (vt_ctx_failed(ctx) || host_batch(m, ctx, b, &hb)) return -1;
  tts_out o = tts_forward(&m->t, ctx, &hb);
  out->n_terms = 1;
  out->terms[0].name = "speech_ce";
  out->terms[0].sum =
      vt_speech_token_ce(ctx, tts_logits(&m->t, ctx, o.hidden), o.targets, TTS_PAD(&m->t.cfg));
  out->count = (double)o.rows;
  return vt_ctx_failed(ctx) ? -1 : 0;
}

static int eval(vt_model *base, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n) {
  tts_model *m = (tts_model *)base;
  const tts_cfg *c = &m->t.cfg;
  tts_batch hb;
  if (vt_ctx_failed(ctx) || host_batch(m, ctx, b, &hb)) return -1;
  tts_out o = tts_forward(&m->t, ctx, &hb);
  vt_tensor *logits = tts_logits(&m->t, ctx, o.hidden);
  double sum = vt_item(ctx, vt_speech_token_ce(ctx, logits, o.targets, TTS_PAD(c)));
  if (vt_ctx_failed(ctx)) return -1;
  int64_t K = c->codec_vocab + 4, R = o.rows;
  int32_t *best = malloc(sizeof(int32_t) * (size_t)(R > 0 ? R : 1));
  int32_t *tgt = malloc(sizeof(int32_t) * (size_t)(R > 0 ? R : 1));
  int64_t *hist = calloc((size_t)K, sizeof *hist);
  int rc = -1;
  if (!best || !tgt || !hist) {
    vt_ctx_fail(ctx, "tts_decoder eval", "out of host memory for the accuracy");
    goto done;
  }
  vt_to_host(ctx, o.targets, tgt);
  if (vt_model_argmax_rows(ctx, logits, NULL, best, "tts_decoder eval")) goto done;
  int64_t correct = 0, mode = 0;
  for (int64_t r = 0; r < R; r++) {
    correct += best[r] == tgt[r];
    hist[tgt[r]]++;
  }
  for (int64_t v = 0; v < K; v++)
    if (hist[v] > mode) mode = hist[v];
  out[0] = (vt_metric){"loss", sum, (double)R};
  out[1] = (vt_metric){"token_acc", (double)correct, (double)R};
  out[2] = (vt_metric){"unigram_acc", (double)mode, (double)R};
  *n = 3;
  rc = 0;
done:
  free(best);
  free(tgt);
  free(hist);
  return rc;
}

static void describe(const vt_model *base, char *buf, size_t len) {
  const tts_cfg *c = &((const tts_model *)base)->t.cfg;
  snprintf(buf, len,
           "speech decoder: %lld NAR + %lld AR layers, hidden %lld, heads %lld, ffn %lld, "
           "codebook %lld + 4, conditioning %lld x %lld LLM embeddings (frozen, %lld vectors per "
           "token)",
           (long long)c->nar_layers, (long long)c->ar_layers, (long long)c->hidden_size,
           (long long)c->num_attention_heads, (long long)c->intermediate_size,
           (long long)c->codec_vocab, (long long)c->llm_vocab_size, (long long)c->llm_hidden_size,
           (long long)(c->llm_hidden_size / c->hidden_size));
}

/* The frozen LLM table is the LLM's (it exports it): a decoder export is the release's
 * decoder weights alone. */
static bool hf_external(const vt_model *base, const char *name) {
  (void)base;
  return !strcmp(name, "model.embed_tokens.weight");
}

/* Freeze-Omni's rotary tables are buffers, never parameters. */
static bool hf_ignored(const vt_model *base, const char *name) {
  (void)base;
  return strstr(name, "rotary_emb") != NULL;
}

/* The export's config: our fields plus the release's model.json arguments by their names
 * (transformer_attention_dim and friends), so a reader of either finds its keys. */
static json_t *hf_config(const vt_model *base, const json_t *src, vt_dtype dtype) {
  (void)src;
  const tts_cfg *c = &((const tts_model *)base)->t.cfg;
  json_t *o = config_json(base);
  json_object_set_new(o, "idim", json_integer(c->hidden_size));
  json_object_set_new(o, "odim", json_integer(c->codec_vocab));
  json_object_set_new(o, "transformer_attention_dim", json_integer(c->hidden_size));
  json_object_set_new(o, "transformer_linear_units", json_integer(c->intermediate_size));
  json_object_set_new(o, "transformer_num_blocks", json_integer(c->ar_layers));
  json_object_set_new(o, "transformer_attention_heads", json_integer(c->num_attention_heads));
  json_object_set_new(o, "encoder_output_dim", json_integer(c->hidden_size));
  json_object_set_new(o, "encoder_criterion", json_string("ce"));
  json_object_set_new(o, "torch_dtype", json_string(vt_model_torch_dtype(dtype)));
  return o;
}

static const char *const model_types[] = {"tts_decoder", "LLM2TTSCodecAR", NULL};

/* One part, "speech_decoder" (the frozen LLM table is a gather: no FLOPs). Defaults: batch 1,
 * 64 text tokens, 12 codec tokens per text token (about 40 Hz speech of English text). */
static int cost(const vt_model *base, vt_model_shape *s, vt_model_cost *parts) {
  const tts_model *m = (const tts_model *)base;
  if (s->batch <= 0) s->batch = 1;
  if (s->tokens <= 0) s->tokens = 64;
  if (s->speech <= 0) s->speech = 12 * s->tokens;
  model_cost_tts(&m->t.cfg, s, "*", &parts[0]);
  return 1;
}

const vt_model_ops tts_model_ops = {
    .name = "tts_decoder",
    .model_types = model_types,
    .create = create,
    .destroy = destroy,
    .init_weights = init_weights,
    .config_json = config_json,
    .loss = loss,
    .eval = eval,
    .describe = describe,
    .hf_ignored = hf_ignored,
    .hf_external = hf_external,
    .hf_config = hf_config,
    .cost = cost,
};

tts *tts_model_decoder(vt_model *m) {
  return m && m->ops == &tts_model_ops ? &((tts_model *)m)->t : NULL;
}
