/* Qwen2 behind the model interface (model.h): its config is a HF config.json object, its one
 * phase trains every parameter on one loss term, "lm" (the mean-able sum of the shifted
 * cross-entropy), and its eval metrics are the loss and the next-token accuracy. Only
 * qwen2.h's public functions are used, so the decoder underneath can change freely. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_cfg.h"
#include "model/model_cost.h"
#include "model/qwen2_model.h"

typedef struct {
  vt_model base;
  qwen2 q;
  qwen2_cfg cfg;
  vt_tensor *head; /* the LM head (the embedding table when tied) */
} qwen2_model;

static int get_int(const json_t *root, const char *where, const char *key, int64_t *out, char *err,
                   size_t err_len) {
  return model_cfg_int(root, where, key, true, INT64_MIN, INT64_MAX, out, err, err_len);
}

static int get_num(const json_t *root, const char *where, const char *key, double *out,
                   bool required, char *err, size_t err_len) {
  return model_cfg_num(root, where, key, required, out, err, err_len);
}

/* HF transformers' Qwen2Config fields; rope_theta at the top level or inside rope_parameters
 * (transformers 5). */
/* The model_type values this model reads (also its ops table's list). */
static const char *const model_types[] = {"qwen2", "vita-Qwen2", NULL};

int qwen2_cfg_from_json(const json_t *root, const char *where, qwen2_cfg *cfg, char *err,
                        size_t err_len) {
  *cfg = qwen2_cfg_7b(); /* defaults for optional fields */
  if (model_cfg_type(root, where, model_types, err, err_len)) return -1;
  if (get_int(root, where, "vocab_size", &cfg->vocab_size, err, err_len) ||
      get_int(root, where, "hidden_size", &cfg->hidden_size, err, err_len) ||
      get_int(root, where, "intermediate_size", &cfg->intermediate_size, err, err_len) ||
      get_int(root, where, "num_hidden_layers", &cfg->num_hidden_layers, err, err_len) ||
      get_int(root, where, "num_attention_heads", &cfg->num_attention_heads, err, err_len))
    return -1;
  cfg->num_key_value_heads = cfg->num_attention_heads;
  if (json_object_get(root, "num_key_value_heads") &&
      get_int(root, where, "num_key_value_heads", &cfg->num_key_value_heads, err, err_len))
    return -1;
  if (json_object_get(root, "max_position_embeddings") &&
      get_int(root, where, "max_position_embeddings", &cfg->max_position_embeddings, err, err_len))
    return -1;
  if (cfg->max_position_embeddings < 1 || cfg->max_position_embeddings > (INT64_C(1) << 24)) {
    snprintf(err, err_len, "%s: field \"max_position_embeddings\": expected [1, 2^24], found %lld",
             where, (long long)cfg->max_position_embeddings);
    return -1;
  }
  if (get_num(root, where, "rms_norm_eps", &cfg->rms_norm_eps, true, err, err_len) ||
      get_num(root, where, "initializer_range", &cfg->initializer_range, false, err, err_len))
    return -1;
  json_t *rope = json_object_get(root, "rope_parameters");
  if (json_object_get(root, "rope_theta")) {
    if (get_num(root, where, "rope_theta", &cfg->rope_theta, true, err, err_len)) return -1;
  } else if (json_is_object(rope)) {
    if (get_num(rope, where, "rope_theta", &cfg->rope_theta, true, err, err_len)) return -1;
    const char *rt = json_string_value(json_object_get(rope, "rope_type"));
    if (rt && strcmp(rt, "default") != 0) {
      snprintf(err, err_len,
               "%s: field \"rope_parameters.rope_type\": only \"default\" is supported, found "
               "\"%s\"",
               where, rt);
      return -1;
    }
  }
  /* booleans are JSON booleans and the activation a string: 1, "true" or 5 would otherwise
   * be read as something the file did not say */
  bool sliding = false;
  cfg->tie_word_embeddings = false;
  if (model_cfg_bool(root, where, "tie_word_embeddings", false, &cfg->tie_word_embeddings, err,
                     err_len) ||
      model_cfg_bool(root, where, "use_sliding_window", false, &sliding, err, err_len))
    return -1;
  json_t *actv = json_object_get(root, "hidden_act");
  if (actv && !json_is_string(actv)) {
    snprintf(err, err_len, "%s: field \"hidden_act\": expected a string", where);
    return -1;
  }
  const char *act = json_string_value(actv);
  if (act && strcmp(act, "silu") != 0) {
    snprintf(err, err_len, "%s: field \"hidden_act\": expected \"silu\", found \"%s\"", where, act);
    return -1;
  }
  if (sliding) {
    snprintf(err, err_len,
             "%s: field \"use_sliding_window\": sliding-window attention is not supported", where);
    return -1;
  }
  char why[256];
  if (qwen2_cfg_check(cfg, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", where, why);
    return -1;
  }
  return 0;
}

static vt_model *create(const json_t *config, const char *where, const vt_model_opts *opts,
                        vt_params *ps, char *err, size_t err_len) {
  qwen2_model *m = vt_model_alloc(sizeof *m, "qwen2", err, err_len);
  if (!m) return NULL;
  if (qwen2_cfg_from_json(config, where, &m->cfg, err, err_len)) {
    free(m);
    return NULL;
  }
  m->cfg.recompute = opts->recompute;
  m->cfg.ce_chunk_rows = opts->ce_chunk_rows;
  if (qwen2_init(&m->q, ps, &m->cfg, err, err_len)) {
    qwen2_free(&m->q);
    free(m);
    return NULL;
  }
  vt_param *head = vt_params_find(ps, m->cfg.tie_word_embeddings ? "model.embed_tokens.weight"
                                                                 : "lm_head.weight");
  m->head = head ? &head->t : NULL;
  m->base.vocab_size = m->cfg.vocab_size;
  m->base.media = 0; /* text only: media reach the LLM through the omni model's adapters */
  vt_model_one_phase(&m->base, "*", "lm");
  return &m->base;
}

static void destroy(vt_model *base) {
  qwen2_model *m = (qwen2_model *)base;
  qwen2_free(&m->q);
  free(m);
}

/* HF's initialisation (qwen2_init_weights): normal(0, initializer_range) matrices, zero
 * biases, unit norms. */
static int init_weights(vt_model *base, vt_params *ps, vt_rng *rng, char *err, size_t err_len) {
  (void)ps, (void)err, (void)err_len;
  qwen2_init_weights(&((qwen2_model *)base)->q, rng);
  return 0;
}

static json_t *config_json(const vt_model *base) {
  return qwen2_cfg_to_json(&((const qwen2_model *)base)->cfg);
}

json_t *qwen2_cfg_to_json(const qwen2_cfg *c) {
  return json_pack(
      "{s:[s], s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:b, s:f, s:b, s:s, "
      "s:b, s:n}",
      "architectures", "Qwen2ForCausalLM", "model_type", "qwen2", "hidden_act", "silu",
      "vocab_size", (json_int_t)c->vocab_size, "hidden_size", (json_int_t)c->hidden_size,
      "intermediate_size", (json_int_t)c->intermediate_size, "num_hidden_layers",
      (json_int_t)c->num_hidden_layers, "num_attention_heads", (json_int_t)c->num_attention_heads,
      "num_key_value_heads", (json_int_t)c->num_key_value_heads, "max_position_embeddings",
      (json_int_t)c->max_position_embeddings, "rope_theta", c->rope_theta, "rms_norm_eps",
      c->rms_norm_eps, "initializer_range", c->initializer_range, "tie_word_embeddings",
      (int)c->tie_word_embeddings, "attention_dropout", 0.0, "use_sliding_window", 0, "torch_dtype",
      "bfloat16", "use_cache", 1, "sliding_window");
}

static qwen2_layout layout_of(const vt_batch *b) {
  return (qwen2_layout){.lengths = b->lengths, .pos = b->positions, .segments = b->segments};
}

static int loss(vt_model *base, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
                vt_model_loss *out) {
  qwen2_model *m = (qwen2_model *)base;
  (void)st;
  out->n_terms = 1;
  out->terms[0].name = "lm";
  out->count = (double)b->label_tokens;
  if (!b->label_tokens) { /* nothing to learn from: no forward */
    out->terms[0].sum = vt_zeros(ctx, VT_F32, 0, NULL);
    return vt_ctx_failed(ctx) ? -1 : 0;
  }
  qwen2_layout lay = layout_of(b);
  vt_tensor *mean = qwen2_loss(&m->q, ctx, b->tokens, b->labels, &lay);
  out->terms[0].sum = vt_scale(ctx, mean, (float)b->label_tokens);
  return vt_ctx_failed(ctx) ? -1 : 0;
}

static int eval(vt_model *base, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n) {
  qwen2_model *m = (qwen2_model *)base;
  if (!b->label_tokens) { /* nothing counted: no forward (a mean over nothing is NaN) */
    out[0] = (vt_metric){"loss", 0, 0};
    out[1] = (vt_metric){"token_acc", 0, 0};
    *n = 2;
    return 0;
  }
  qwen2_layout lay = layout_of(b);
  vt_tensor *hidden = qwen2_forward(&m->q, ctx, qwen2_embed(&m->q, ctx, b->tokens), &lay);
  vt_lm_ce_opts o = {.chunk_rows = m->cfg.ce_chunk_rows};
  double mean = vt_item(ctx, vt_lm_cross_entropy(ctx, hidden, m->head, b->labels, &o));
  if (vt_ctx_failed(ctx)) return -1;
  /* next-token accuracy: the argmax at t against labels[t + 1] */
  int64_t R = b->rows * b->len, T = b->len, H = m->cfg.hidden_size;
  int32_t *labels = malloc(sizeof(int32_t) * (size_t)R),
          *best = malloc(sizeof(int32_t) * (size_t)R);
  int64_t correct = 0, counted = 0;
  int rc = -1;
  if (!labels || !best) {
    vt_ctx_fail(ctx, "qwen2 eval", "out of host memory for the accuracy");
    goto done;
  }
  vt_to_host(ctx, b->labels, labels);
  vt_tensor *flat = vt_reshape(ctx, hidden, 2, (int64_t[]){R, H});
  if (vt_model_argmax_rows(ctx, flat, m->head, best, "qwen2 eval")) goto done;
  for (int64_t r = 0; r < R; r++) {
    if (r % T == T - 1 || labels[r + 1] == VT_IGNORE_INDEX) continue;
    correct += best[r] == labels[r + 1];
    counted++;
  }
  out[0] = (vt_metric){"loss", mean * (double)b->label_tokens, (double)b->label_tokens};
  out[1] = (vt_metric){"token_acc", (double)correct, (double)counted};
  *n = 2;
  rc = 0;
done:
  free(labels);
  free(best);
  return rc;
}

static void describe(const vt_model *base, char *buf, size_t len) {
  const qwen2_cfg *c = &((const qwen2_model *)base)->cfg;
  snprintf(buf, len,
           "layers %lld, hidden %lld, heads %lld (kv %lld, head dim %lld), ffn %lld, vocab %lld, "
           "rope theta %g, %s LM head",
           (long long)c->num_hidden_layers, (long long)c->hidden_size,
           (long long)c->num_attention_heads, (long long)c->num_key_value_heads,
           (long long)(c->hidden_size / c->num_attention_heads), (long long)c->intermediate_size,
           (long long)c->vocab_size, c->rope_theta, c->tie_word_embeddings ? "tied" : "untied");
}

bool qwen2_hf_ignored(const qwen2_cfg *c, const char *name) {
  size_t l = strlen(name);
  return (l >= 19 && !strcmp(name + l - 19, "rotary_emb.inv_freq")) ||
         (c->tie_word_embeddings && !strcmp(name, "lm_head.weight"));
}

/* Source tensors HF's Qwen2ForCausalLM ignores on load. */
static bool hf_ignored(const vt_model *base, const char *name) {
  return qwen2_hf_ignored(&((const qwen2_model *)base)->cfg, name);
}

/* config_json's fields, the source's token ids, and the dtype under both the old and the
 * transformers 5 key. */
static json_t *hf_config(const vt_model *base, const json_t *src, vt_dtype dtype) {
  json_t *out = config_json(base);
  if (!out) return NULL;
  vt_model_keep_token_ids(out, src);
  const char *dn = vt_model_torch_dtype(dtype);
  json_object_set_new(out, "torch_dtype", json_string(dn));
  json_object_set_new(out, "dtype", json_string(dn));
  return out;
}

/* One part, "llm": every parameter. Defaults: batch 1, tokens the context length. */
static int cost(const vt_model *base, vt_model_shape *s, vt_model_cost *parts) {
  const qwen2_model *m = (const qwen2_model *)base;
  if (s->batch <= 0) s->batch = 1;
  if (s->tokens <= 0) s->tokens = m->cfg.max_position_embeddings;
  model_cost_qwen2(&m->q.cfg, s, "*", &parts[0]);
  return 1;
}

const vt_model_ops qwen2_model_ops = {
    .name = "qwen2",
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
};
