/* VITA's vision path behind the model interface; see vita_model.h. The LLM part is qwen2.h's
 * decoder, configured by qwen2_cfg_from_json from the same config.json. */
#include "model/vita_model.h"
#include "model/model_cfg.h"
#include "model/model_cost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/audio_llm.h"
#include "model/qwen2_model.h"

#define VITA_TOWER "model.vision_tower.vision_tower"
#define VITA_PROJECTOR "model.mm_projector"

typedef struct {
  vt_model base;
  qwen2_cfg qcfg;
  vit_cfg vcfg;
  qwen2 q;
  vit tower;
  vit_adapter adapter;
  json_t *src; /* the config read, for fields we do not interpret (mm_vision_tower, ...) */
  vt_tensor *head;
  audio_llm audio; /* encoder + adapter (+ modality head) when the config has audio_config */
} vita_model;

/* Optional fields: an integer must be positive, a number finite. */
static int field_int(const json_t *o, const char *where, const char *key, int64_t *out, char *err,
                     size_t err_len) {
  return model_cfg_int(o, where, key, false, 1, INT64_MAX, out, err, err_len);
}

static int field_num(const json_t *o, const char *where, const char *key, double *out, char *err,
                     size_t err_len) {
  return model_cfg_num(o, where, key, false, out, err, err_len);
}

int vit_cfg_from_json(const json_t *c, const char *where, vit_cfg *cfg, char *err, size_t err_len) {
  *cfg = vit_cfg_300m();
  if (!json_is_object(c)) {
    snprintf(err, err_len, "%s: vision config: expected an object", where);
    return -1;
  }
  const char *norm = json_string_value(json_object_get(c, "norm_type"));
  if (norm && strcmp(norm, "layer_norm")) {
    snprintf(err, err_len,
             "%s: field \"norm_type\": expected \"layer_norm\" (InternViT-300M), found \"%s\"",
             where, norm);
    return -1;
  }
  if (json_is_true(json_object_get(c, "qk_normalization"))) {
    snprintf(err, err_len, "%s: field \"qk_normalization\": true is the 6B model's, not supported",
             where);
    return -1;
  }
  const char *act = json_string_value(json_object_get(c, "hidden_act"));
  if (act && strcmp(act, "gelu")) {
    snprintf(err, err_len, "%s: field \"hidden_act\": expected \"gelu\", found \"%s\"", where, act);
    return -1;
  }
  if (field_int(c, where, "image_size", &cfg->image_size, err, err_len) ||
      field_int(c, where, "patch_size", &cfg->patch_size, err, err_len) ||
      field_int(c, where, "hidden_size", &cfg->hidden_size, err, err_len) ||
      field_int(c, where, "intermediate_size", &cfg->intermediate_size, err, err_len) ||
      field_int(c, where, "num_hidden_layers", &cfg->num_hidden_layers, err, err_len) ||
      field_int(c, where, "num_attention_heads", &cfg->num_attention_heads, err, err_len) ||
      field_num(c, where, "layer_norm_eps", &cfg->layer_norm_eps, err, err_len) ||
      field_num(c, where, "drop_path_rate", &cfg->drop_path_rate, err, err_len) ||
      field_num(c, where, "initializer_range", &cfg->initializer_range, err, err_len) ||
      field_num(c, where, "initializer_factor", &cfg->initializer_factor, err, err_len))
    return -1;
  char why[256];
  if (vit_cfg_check(cfg, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", where, why);
    return -1;
  }
  return 0;
}

json_t *vit_cfg_to_json(const vit_cfg *c) {
  return json_pack(
      "{s:s, s:[s], s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:s, s:s, "
      "s:b, s:b, s:I}",
      "model_type", "intern_vit_6b", "architectures", "InternVisionModel", "image_size",
      (json_int_t)c->image_size, "patch_size", (json_int_t)c->patch_size, "hidden_size",
      (json_int_t)c->hidden_size, "intermediate_size", (json_int_t)c->intermediate_size,
      "num_hidden_layers", (json_int_t)c->num_hidden_layers, "num_attention_heads",
      (json_int_t)c->num_attention_heads, "layer_norm_eps", c->layer_norm_eps, "drop_path_rate",
      c->drop_path_rate, "initializer_range", c->initializer_range, "initializer_factor",
      c->initializer_factor, "norm_type", "layer_norm", "hidden_act", "gelu", "qkv_bias", 1,
      "qk_normalization", 0, "num_channels", (json_int_t)3);
}

static vt_model *create(const json_t *config, const char *where, const vt_model_opts *opts,
                        vt_params *ps, char *err, size_t err_len) {
  vita_model *m = vt_model_alloc(sizeof *m, "vita", err, err_len);
  if (!m) return NULL;
  const char *pt = json_string_value(json_object_get(config, "mm_projector_type"));
  json_t *mh = json_object_get(config, "mm_hidden_size");
  if (qwen2_cfg_from_json(config, where, &m->qcfg, err, err_len)) goto fail;
  json_t *vc = json_object_get(config, "vision_config"), *none = vc ? NULL : json_object();
  int vrc = vit_cfg_from_json(vc ? vc : none, where, &m->vcfg, err, err_len);
  json_decref(none);
  if (vrc) goto fail;
  if (pt && strcmp(pt, "mlp2x_gelu")) {
    snprintf(err, err_len, "%s: field \"mm_projector_type\": expected \"mlp2x_gelu\", found \"%s\"",
             where, pt);
    goto fail;
  }
  int64_t feat = 4 * m->vcfg.hidden_size; /* the 2x2 pixel shuffle */
  if (mh && (!json_is_integer(mh) || json_integer_value(mh) != feat)) {
    snprintf(err, err_len, "%s: field \"mm_hidden_size\": expected %lld (4 x the tower's hidden)",
             where, (long long)feat);
    goto fail;
  }
  m->qcfg.recompute = m->vcfg.recompute = opts->recompute;
  m->qcfg.ce_chunk_rows = opts->ce_chunk_rows;
  if (qwen2_init(&m->q, ps, &m->qcfg, err, err_len) ||
      vit_init(&m->tower, ps, &m->vcfg, VITA_TOWER, err, err_len) ||
      vit_adapter_init(&m->adapter, ps, VITA_PROJECTOR, feat, m->qcfg.hidden_size, err, err_len) ||
      audio_llm_init(&m->audio, ps, config, where, m->qcfg.hidden_size, opts->recompute, err,
                     err_len))
    goto fail;
  m->head = m->q.lm_head;
  m->src = json_deep_copy(config);
  m->base.vocab_size = m->qcfg.vocab_size;
  m->base.media = VT_MEDIA_BIT(VT_MEDIA_IMAGE) | (m->audio.on ? VT_MEDIA_BIT(VT_MEDIA_FBANK) : 0);
  int64_t g = m->vcfg.image_size / m->vcfg.patch_size;
  m->base.image_tokens = (g / 2) * (g / 2);
  int64_t sep = 198; /* "\n" in the Qwen2 vocabulary */
  if (model_cfg_int(config, where, "image_newline_token_id", false, 0, m->qcfg.vocab_size - 1, &sep,
                    err, err_len))
    goto fail;
  m->base.image_sep = (int32_t)sep;
  vt_model_one_phase(&m->base, "*", "lm");
  if (m->audio.head) m->base.terms[m->base.n_terms++] = (vt_model_term){"modality", 0};
  return &m->base;
fail:
  qwen2_free(&m->q);
  vit_free(&m->tower);
  audio_llm_free(&m->audio);
  free(m);
  return NULL;
}

static void destroy(vt_model *base) {
  vita_model *m = (vita_model *)base;
  qwen2_free(&m->q);
  vit_free(&m->tower);
  audio_llm_free(&m->audio);
  json_decref(m->src);
  free(m);
}

static int init_weights(vt_model *base, vt_params *ps, vt_rng *rng, char *err, size_t err_len) {
  vita_model *m = (vita_model *)base;
  (void)ps, (void)err, (void)err_len;
  qwen2_init_weights(&m->q, rng);
  vit_init_weights(&m->tower, rng);
  vit_adapter_init_weights(&m->adapter, rng, (float)m->qcfg.initializer_range);
  audio_llm_init_weights(&m->audio, rng, (float)m->qcfg.initializer_range);
  return 0;
}

/* The release's config.json fields (model_type vita-Qwen2, the projector) around Qwen2's, with
 * the tower's config under "vision_config". */
static json_t *config_json(const vt_model *base) {
  const vita_model *m = (const vita_model *)base;
  json_t *o = qwen2_cfg_to_json(&m->qcfg);
  if (!o) return NULL;
  json_object_set_new(o, "model_type", json_string("vita-Qwen2"));
  json_object_set_new(o, "architectures", json_pack("[s]", "VITAQwen2ForCausalLM"));
  json_object_set_new(o, "mm_projector_type", json_string("mlp2x_gelu"));
  json_object_set_new(o, "mm_hidden_size", json_integer(4 * m->vcfg.hidden_size));
  json_object_set_new(o, "vision_config", vit_cfg_to_json(&m->vcfg));
  audio_llm_to_json(&m->audio, o);
  static const char *const keep[] = {"mm_vision_tower", "mm_audio_encoder", "image_aspect_ratio",
                                     NULL};
  for (int i = 0; m->src && keep[i]; i++) {
    json_t *v = json_object_get(m->src, keep[i]);
    if (v) json_object_set(o, keep[i], v);
  }
  return o;
}

/* The input embeddings of b: token embeddings, with each image tile's adapter outputs in its
 * span. The vision tower runs only when the batch has tiles. */
static vt_tensor *image_embeddings(vita_model *m, vt_ctx *ctx, const vt_batch *b, const nn_fwd *f) {
  int64_t B = b->rows, T = b->len, H = m->qcfg.hidden_size;
  vt_tensor *emb = qwen2_embed(&m->q, ctx, b->tokens);
  const vt_media *img = vt_batch_media(b, VT_MEDIA_IMAGE);
  if (!img || img->n == 0 || vt_ctx_failed(ctx)) return emb;
  vt_tensor *px = img->data;
  int64_t n = img->n, p = m->vcfg.patch_size;
  if (px->ndim != 4 || px->shape[0] != n) {
    char s[96];
    return vt_ctx_fail(ctx, "vita", "image tiles %s must be [%lld, 3, H, W]",
                       vt_shape_str(px, s, sizeof s), (long long)n);
  }
  int64_t gh = px->shape[2] / p, gw = px->shape[3] / p, per = (gh / 2) * (gw / 2);
  vt_tensor *hid = vit_hidden(&m->tower, ctx, px, f);
  vt_tensor *tok = vit_adapter_forward(&m->adapter, ctx, vit_features(&m->tower, ctx, hid, gh, gw));
  if (vt_ctx_failed(ctx)) return tok;
  /* where the n * per outputs go in the flattened [B * T, H] embeddings */
  int32_t *spans = malloc(sizeof(int32_t) * (size_t)(3 * n));
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)(n * per));
  if (!spans || !idx) {
    free(spans), free(idx);
    return vt_ctx_fail(ctx, "vita", "out of host memory for %lld image spans", (long long)n);
  }
  vt_to_host(ctx, img->spans, spans);
  for (int64_t i = 0; i < n; i++) {
    int32_t row = spans[i * 3], start = spans[i * 3 + 1], count = spans[i * 3 + 2];
    if (row < 0 || row >= B || start < 0 || count != per || start + count > T) {
      free(spans), free(idx);
      return vt_ctx_fail(ctx, "vita",
                         "image tile %lld: span (row %d, start %d, count %d) outside the batch "
                         "[%lld, %lld] or not %lld tokens",
                         (long long)i, row, start, count, (long long)B, (long long)T,
                         (long long)per);
    }
    for (int64_t k = 0; k < per; k++) idx[i * per + k] = (int32_t)(row * T + start + k);
  }
  vt_tensor *ti = vt_from_host(ctx, VT_I32, 1, (int64_t[]){n * per}, idx);
  free(spans), free(idx);
  vt_tensor *flat = vt_reshape(ctx, emb, 2, (int64_t[]){B * T, H});
  flat = vt_index_copy(ctx, flat, 0, ti, vt_reshape(ctx, tok, 2, (int64_t[]){n * per, H}));
  return vt_reshape(ctx, flat, 3, (int64_t[]){B, T, H});
}

/* The input embeddings of b: tokens, image tiles, then audio clips at their spans. */
static vt_tensor *embeddings(vita_model *m, vt_ctx *ctx, const vt_batch *b, const nn_fwd *f,
                             bool frozen_train) {
  return audio_llm_splice(&m->audio, ctx, image_embeddings(m, ctx, b, f), b, f, frozen_train);
}

static vt_tensor *hidden_of(vita_model *m, vt_ctx *ctx, const vt_batch *b,
                            const vt_model_step *st) {
  nn_fwd f = {.training = st && st->train, .rng = st ? st->rng : NULL};
  vt_tensor *emb = embeddings(m, ctx, b, &f, st && st->frozen_train);
  qwen2_layout lay = {.lengths = b->lengths, .pos = b->positions, .segments = b->segments};
  return qwen2_forward(&m->q, ctx, emb, &lay);
}

static int loss(vt_model *base, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
                vt_model_loss *out) {
  vita_model *m = (vita_model *)base;
  out->n_terms = 1;
  out->terms[0].name = "lm";
  out->count = (double)b->label_tokens;
  bool need_hidden = b->label_tokens || m->audio.head;
  vt_tensor *hid = need_hidden ? hidden_of(m, ctx, b, st) : NULL;
  if (!b->label_tokens) {
    out->terms[0].sum = vt_zeros(ctx, VT_F32, 0, NULL);
  } else {
    vt_lm_ce_opts o = {.chunk_rows = m->qcfg.ce_chunk_rows};
    vt_tensor *mean = vt_lm_cross_entropy(ctx, hid, m->head, b->labels, &o);
    out->terms[0].sum = vt_scale(ctx, mean, (float)b->label_tokens);
  }
  if (m->audio.head) {
    /* the batch's class-weighted mean, as a sum over the batch's count (the trainer divides
     * every term by it): one micro-batch gives PyTorch's weighted cross_entropy exactly */
    int64_t n, hit;
    vt_tensor *ce = audio_llm_modality_loss(&m->audio, ctx, hid, b, &n, &hit);
    out->terms[1].name = "modality";
    out->terms[1].sum = vt_scale(ctx, ce, (float)(out->count > 0 ? out->count : 1));
    out->n_terms = 2;
  }
  return vt_ctx_failed(ctx) ? -1 : 0;
}

/* Answer accuracy (QA accuracy on one-word answers): an answer is a maximal run of labelled
 * positions (its state marker, its words, its <|im_end|>), and it counts as right when the
 * argmax at every position of the run is its label (teacher-forced, HF's shift). Also the
 * per-token accuracy. Fills out[0..1]. */
static int answer_metrics(vita_model *m, vt_ctx *ctx, const vt_batch *b, vt_tensor *hidden,
                          vt_metric *out) {
  int64_t R = b->rows * b->len, T = b->len, H = m->qcfg.hidden_size;
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)R),
          *best = malloc(sizeof(int32_t) * (size_t)R);
  int64_t tok_ok = 0, toks = 0, ans_ok = 0, answers = 0;
  bool run = false, run_ok = true;
  int rc = -1;
  if (!labels || !best) {
    vt_ctx_fail(ctx, "vita eval", "out of host memory for the accuracy");
    goto done;
  }
  vt_to_host(ctx, b->labels, labels);
  vt_tensor *flat = vt_reshape(ctx, hidden, 2, (int64_t[]){R, H});
  if (vt_model_argmax_rows(ctx, flat, m->head, best, "vita eval")) goto done;
  for (int64_t r = 0; r < R; r++) {
    int32_t want = r % T == T - 1 ? VT_IGNORE_INDEX : labels[r + 1];
    if (want == VT_IGNORE_INDEX) { /* a run (if any) ends here */
      if (run) ans_ok += run_ok, answers++;
      run = false, run_ok = true;
      continue;
    }
    run = true;
    run_ok &= best[r] == want;
    tok_ok += best[r] == want;
    toks++;
  }
  out[0] = (vt_metric){"token_acc", (double)tok_ok, (double)toks};
  out[1] = (vt_metric){"qa_acc", (double)ans_ok, (double)answers};
  rc = 0;
done:
  free(labels);
  free(best);
  return rc;
}

/* Token edit distance (Levenshtein) between a[0..na) and b[0..nb); nb <= VITA_GEN_MAX. */
#define VITA_GEN_MAX 12 /* answers this long at most are decoded greedily */
static int64_t edit_distance(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
  int64_t row[VITA_GEN_MAX + 8];
  for (int64_t j = 0; j <= nb; j++) row[j] = j;
  for (int64_t i = 1; i <= na; i++) {
    int64_t diag = row[0];
    row[0] = i;
    for (int64_t j = 1; j <= nb; j++) {
      int64_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up, row[j] = best;
    }
  }
  return row[nb];
}

/* Greedy decoding of short single answers (an ASR transcript, a one-word answer): for each row
 * whose labels form one run of at most VITA_GEN_MAX tokens (state marker, words, <|im_end|>),
 * the model writes the answer itself from the prompt, one argmax at a time (not teacher-forced),
 * until the run's last token (<|im_end|>) or the reference length + 4. gen_wer: the edit
 * distance between the generated and the reference words (the tokens between the marker and
 * <|im_end|>) over the reference's word count (a word error rate where every word is one
 * token, as in the generated dataset's tokenizer); gen_exact: transcripts right as a whole.
 * Rows of several answers are left out (fills out[0..1] with counts 0 when none is short). */
static int greedy_metrics(vita_model *m, vt_ctx *ctx, const vt_batch *b, vt_metric *out) {
  int64_t B = b->rows, T = b->len, H = m->qcfg.hidden_size;
  size_t cells = (size_t)(B * T);
  int32_t *labels = malloc(sizeof(int32_t) * cells), *tok = malloc(sizeof(int32_t) * cells);
  int64_t *a0 = malloc(sizeof(int64_t) * (size_t)B), *len = malloc(sizeof(int64_t) * (size_t)B);
  int32_t *gen = malloc(sizeof(int32_t) * (size_t)B * (VITA_GEN_MAX + 4));
  int64_t *ng = calloc((size_t)B, sizeof(int64_t));
  int64_t errs = 0, words = 0, exact = 0, rows = 0, steps = 0;
  int rc = -1;
  if (!labels || !tok || !a0 || !len || !gen || !ng) {
    vt_ctx_fail(ctx, "vita eval", "out of host memory for greedy decoding");
    goto done;
  }
  vt_to_host(ctx, b->labels, labels);
  vt_to_host(ctx, b->tokens, tok);
  for (int64_t r = 0; r < B; r++) { /* the row's one labelled run */
    const int32_t *l = labels + r * T;
    int64_t first = -1, last = -1, runs = 0;
    for (int64_t p = 1; p < T; p++)
      if (l[p] != VT_IGNORE_INDEX) {
        if (first < 0 || l[p - 1] == VT_IGNORE_INDEX) runs++;
        if (first < 0) first = p;
        last = p;
      }
    bool ok = runs == 1 && last - first + 1 <= VITA_GEN_MAX && last - first >= 1;
    a0[r] = ok ? first : -1, len[r] = ok ? last - first + 1 : 0;
    if (ok && len[r] + 4 > steps) steps = len[r] + 4;
  }
  if (steps > VITA_GEN_MAX + 4) steps = VITA_GEN_MAX + 4;
  for (int64_t k = 0; k < steps && !vt_ctx_failed(ctx); k++) {
    /* the prompt and what was generated so far; positions after it keep the reference, which
     * the causal mask hides from the position decoded */
    vt_batch g = *b;
    g.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, tok);
    vt_tensor *hid = vt_reshape(ctx, hidden_of(m, ctx, &g, NULL), 2, (int64_t[]){B * T, H});
    for (int64_t r = 0; r < B && !vt_ctx_failed(ctx); r++) {
      int64_t p = a0[r] + k; /* the position written now, predicted from p - 1 */
      if (a0[r] < 0 || p >= T || ng[r] < 0) continue;
      int32_t best;
      if (vt_model_argmax_rows(ctx, vt_slice(ctx, hid, 0, r * T + p - 1, r * T + p), m->head, &best,
                               "vita eval"))
        break;
      gen[r * (VITA_GEN_MAX + 4) + ng[r]++] = best;
      tok[r * T + p] = best;
      if (best == labels[r * T + a0[r] + len[r] - 1] || ng[r] >= len[r] + 4) ng[r] = -ng[r];
    }
  }
  if (vt_ctx_failed(ctx)) goto done;
  for (int64_t r = 0; r < B; r++) {
    if (a0[r] < 0) continue;
    int64_t n = ng[r] < 0 ? -ng[r] : ng[r];
    const int32_t *g = gen + r * (VITA_GEN_MAX + 4), *ref = labels + r * T + a0[r] + 1;
    int64_t nref = len[r] - 2, nh = n - 1; /* without the marker and <|im_end|> */
    if (nh > 0 && g[n - 1] == labels[r * T + a0[r] + len[r] - 1]) nh--;
    if (nh < 0) nh = 0;
    int64_t d = edit_distance(g + 1, nh, ref, nref);
    errs += d, words += nref, exact += d == 0 && nh == nref, rows++;
  }
  out[0] = (vt_metric){"gen_wer", (double)errs, (double)words};
  out[1] = (vt_metric){"gen_exact", (double)exact, (double)rows};
  rc = 0;
done:
  free(labels), free(tok), free(a0), free(len), free(gen), free(ng);
  return rc;
}

static int eval(vt_model *base, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n) {
  vita_model *m = (vita_model *)base;
  if (!b->label_tokens) { /* nothing counted: no forward (a mean over nothing is NaN) */
    out[0] = (vt_metric){"loss", 0, 0};
    out[1] = (vt_metric){"token_acc", 0, 0};
    out[2] = (vt_metric){"qa_acc", 0, 0};
    out[3] = (vt_metric){"gen_wer", 0, 0};
    out[4] = (vt_metric){"gen_exact", 0, 0};
    *n = 5;
    if (m->audio.head) out[(*n)++] = (vt_metric){"modality_acc", 0, 0};
    return 0;
  }
  vt_lm_ce_opts o = {.chunk_rows = m->qcfg.ce_chunk_rows};
  vt_tensor *hid = hidden_of(m, ctx, b, NULL);
  double mean = vt_item(ctx, vt_lm_cross_entropy(ctx, hid, m->head, b->labels, &o));
  if (vt_ctx_failed(ctx)) return -1;
  out[0] = (vt_metric){"loss", mean * (double)b->label_tokens, (double)b->label_tokens};
  *n = 3;
  if (answer_metrics(m, ctx, b, hid, out + 1)) return -1;
  if (greedy_metrics(m, ctx, b, out + 3)) return -1;
  *n = 5;
  if (m->audio.head) { /* the head's accuracy over the clips with a state marker after them */
    int64_t clips, hit;
    audio_llm_modality_loss(&m->audio, ctx, hid, b, &clips, &hit);
    if (vt_ctx_failed(ctx)) return -1;
    out[(*n)++] = (vt_metric){"modality_acc", (double)hit, (double)clips};
  }
  return 0;
}

static void describe(const vt_model *base, char *buf, size_t len) {
  const vita_model *m = (const vita_model *)base;
  const vit_cfg *v = &m->vcfg;
  const qwen2_cfg *q = &m->qcfg;
  int k =
      snprintf(buf, len,
               "InternViT %lld layers, hidden %lld, %lldpx / %lld (%lld params) -> mlp2x_gelu "
               "%lld -> %lld (%lld params) -> Qwen2 %lld layers, hidden %lld, vocab %lld (%lld "
               "params)",
               (long long)v->num_hidden_layers, (long long)v->hidden_size, (long long)v->image_size,
               (long long)v->patch_size, (long long)vit_param_count(v),
               (long long)(4 * v->hidden_size), (long long)q->hidden_size,
               (long long)vit_adapter_param_count(4 * v->hidden_size, q->hidden_size),
               (long long)q->num_hidden_layers, (long long)q->hidden_size, (long long)q->vocab_size,
               (long long)qwen2_param_count(q));
  const audio_llm *a = &m->audio;
  if (a->on && k > 0 && (size_t)k < len)
    k += snprintf(buf + k, len - (size_t)k,
                  "; audio encoder %lld layers, hidden %lld (%lld params) -> adapter %lld -> %lld, "
                  "%lld prompts (%lld params)",
                  (long long)a->enc.cfg.layers, (long long)a->enc.cfg.hidden,
                  (long long)audio_enc_param_count(&a->enc.cfg), (long long)a->ad.cfg.enc_dim,
                  (long long)a->ad.cfg.llm_dim, (long long)a->ad.cfg.n_prompt,
                  (long long)audio_adapter_param_count(&a->ad.cfg));
  if (a->head && k > 0 && (size_t)k < len)
    snprintf(buf + k, len - (size_t)k, "; modality head %lld -> %d", (long long)q->hidden_size,
             a->n_classes);
}

/* Without an audio_config the release's audio encoder and adapter are counted as ignored, not
 * silently loaded; a stage-2.1a CTC head is never part of this model. */
static bool hf_ignored(const vt_model *base, const char *name) {
  const vita_model *m = (const vita_model *)base;
  return (!m->audio.on && !strncmp(name, "model.audio_encoder.", 20)) ||
         !strncmp(name, "model.audio_encoder.ctc.", 24) || qwen2_hf_ignored(&m->qcfg, name);
}

static json_t *hf_config(const vt_model *base, const json_t *src, vt_dtype dtype) {
  json_t *out = config_json(base);
  vt_model_keep_token_ids(out, src);
  if (out) json_object_set_new(out, "torch_dtype", json_string(vt_model_torch_dtype(dtype)));
  return out;
}

vita_vision vita_model_vision(vt_model *base) {
  if (!base || base->ops != &vita_model_ops) return (vita_vision){0};
  vita_model *m = (vita_model *)base;
  return (vita_vision){&m->tower, &m->adapter};
}

vt_tensor *vita_model_logits(vt_model *base, vt_ctx *ctx, const vt_batch *b) {
  if (!base || base->ops != &vita_model_ops)
    return vt_ctx_fail(ctx, "vita", "vita_model_logits: not a vita model");
  vita_model *m = (vita_model *)base;
  return qwen2_logits(&m->q, ctx, hidden_of(m, ctx, b, NULL));
}

audio_llm *vita_model_audio(vt_model *base) {
  if (!base || base->ops != &vita_model_ops) return NULL;
  vita_model *m = (vita_model *)base;
  return m->audio.on ? &m->audio : NULL;
}

static int64_t audio_positions(const vt_model *base, int64_t frames) {
  return audio_llm_positions(&((const vita_model *)base)->audio, frames);
}

static const char *const model_types[] = {"vita-Qwen2", NULL};

/* Parts "vision", "adapter", then with audio "audio_encoder", "audio_adapter", and "llm",
 * which reads both adapters. Defaults: batch 1, tokens the context length, as many tiles as
 * fill a quarter of the tokens (an image-heavy sample), no audio (s->audio: fbank frames of a
 * sample's clips, counted as one clip). */
static int cost(const vt_model *base, vt_model_shape *s, vt_model_cost *parts) {
  const vita_model *m = (const vita_model *)base;
  if (s->batch <= 0) s->batch = 1;
  if (s->tokens <= 0) s->tokens = m->qcfg.max_position_embeddings;
  if (s->tiles <= 0) s->tiles = s->tokens / 4 / (m->base.image_tokens + 1);
  if (s->tiles <= 0) s->tiles = 1;
  model_cost_vit(&m->tower.cfg, m->qcfg.hidden_size, s, VITA_TOWER ".*", VITA_PROJECTOR ".*",
                 &parts[0], &parts[1]);
  int n = 2;
  unsigned llm_in = 1u << 1;
  if (m->audio.on) {
    int64_t frames = s->audio > 0 ? s->audio : 0;
    model_cost_audio_enc(&m->audio.enc.cfg, s->batch, frames,
                         "model.audio_encoder.encoder.*,model.audio_encoder.prompt_embeddings.*",
                         &parts[2]);
    parts[2].inputs = VT_MODEL_COST_ROOT;
    model_cost_audio_adapter(&m->audio.ad.cfg, s->batch, audio_enc_out_len(frames),
                             "model.audio_encoder.adpter.*", &parts[3]);
    if (frames <= 0) /* no clips: no audio work at all */
      for (int k = 2; k < 4; k++)
        parts[k].flops_weight = parts[k].flops_attn = parts[k].act_bytes =
            parts[k].act_bytes_recompute = parts[k].act_bytes_frozen = 0;
    llm_in |= 1u << 3;
    n = 4;
  }
  model_cost_qwen2(
      &m->q.cfg, s,
      "model.embed_tokens.*,model.layers.*,model.norm.*,lm_head.*," AUDIO_LLM_HEAD ".*", &parts[n]);
  parts[n].inputs = llm_in;
  return n + 1;
}

const vt_model_ops vita_model_ops = {
    .name = "vita",
    .model_types = model_types,
    .create = create,
    .destroy = destroy,
    .init_weights = init_weights,
    .config_json = config_json,
    .loss = loss,
    .eval = eval,
    .describe = describe,
    .hf_ignored = hf_ignored,
    .hf_config = hf_config,
    .cost = cost,
    .audio_positions = audio_positions,
};
