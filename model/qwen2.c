/* The Qwen2 decoder from the model/ building blocks; see qwen2.h. */
#include "model/qwen2.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

qwen2_cfg qwen2_cfg_7b(void) {
  return (qwen2_cfg){.vocab_size = 152064,
                     .hidden_size = 3584,
                     .intermediate_size = 18944,
                     .num_hidden_layers = 28,
                     .num_attention_heads = 28,
                     .num_key_value_heads = 4,
                     .max_position_embeddings = 32768,
                     .rope_theta = 1e6,
                     .rms_norm_eps = 1e-6,
                     .initializer_range = 0.02,
                     .tie_word_embeddings = false};
}

int qwen2_cfg_check(const qwen2_cfg *c, char *err, size_t err_len) {
  const struct {
    const char *name;
    int64_t v;
  } pos[] = {{"vocab_size", c->vocab_size},
             {"hidden_size", c->hidden_size},
             {"intermediate_size", c->intermediate_size},
             {"num_hidden_layers", c->num_hidden_layers},
             {"num_attention_heads", c->num_attention_heads},
             {"num_key_value_heads", c->num_key_value_heads}};
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (pos[i].v <= 0) {
      snprintf(err, err_len, "qwen2 config: %s must be positive, got %lld", pos[i].name,
               (long long)pos[i].v);
      return -1;
    }
  if (c->hidden_size % c->num_attention_heads) {
    snprintf(err, err_len,
             "qwen2 config: hidden_size %lld is not a multiple of "
             "num_attention_heads %lld",
             (long long)c->hidden_size, (long long)c->num_attention_heads);
    return -1;
  }
  if (c->num_attention_heads % c->num_key_value_heads) {
    snprintf(err, err_len,
             "qwen2 config: num_attention_heads %lld is not a multiple of "
             "num_key_value_heads %lld",
             (long long)c->num_attention_heads, (long long)c->num_key_value_heads);
    return -1;
  }
  if ((c->hidden_size / c->num_attention_heads) % 2) {
    snprintf(err, err_len, "qwen2 config: the head dim %lld must be even for RoPE",
             (long long)(c->hidden_size / c->num_attention_heads));
    return -1;
  }
  if (!(c->rope_theta > 0) || !(c->rms_norm_eps > 0) || !isfinite(c->rope_theta) ||
      !isfinite(c->rms_norm_eps)) {
    snprintf(err, err_len, "qwen2 config: rope_theta and rms_norm_eps must be positive and finite");
    return -1;
  }
  /* upper bounds far beyond any real model, so that no product of sizes (parameter counts,
   * the embedding table's bytes) can overflow: a config is a file a user hands over */
  const struct {
    const char *name;
    int64_t v, max;
  } cap[] = {{"vocab_size", c->vocab_size, INT32_MAX}, /* token ids are int32 */
             {"hidden_size", c->hidden_size, INT64_C(1) << 20},
             {"intermediate_size", c->intermediate_size, INT64_C(1) << 22},
             {"num_hidden_layers", c->num_hidden_layers, INT64_C(1) << 12},
             {"num_attention_heads", c->num_attention_heads, c->hidden_size}};
  for (size_t i = 0; i < sizeof cap / sizeof cap[0]; i++)
    if (cap[i].v > cap[i].max) {
      snprintf(err, err_len, "qwen2 config: %s must be in [1, %lld], got %lld", cap[i].name,
               (long long)cap[i].max, (long long)cap[i].v);
      return -1;
    }
  return 0;
}

int64_t qwen2_param_count(const qwen2_cfg *c) {
  int64_t h = c->hidden_size, hd = h / c->num_attention_heads;
  int64_t q = c->num_attention_heads * hd, kv = c->num_key_value_heads * hd;
  int64_t layer = 2 * h                           /* two RMSNorms */
                  + h * q + q + 2 * (h * kv + kv) /* q, k, v with bias */
                  + q * h                         /* o_proj */
                  + 3 * h * c->intermediate_size;
  int64_t embed = c->vocab_size * h;
  return embed + c->num_hidden_layers * layer + h + (c->tie_word_embeddings ? 0 : embed);
}

/* The decoder layer of a config: LLaMA's with q/k/v biases. */
static nn_layer_cfg layer_cfg(const qwen2_cfg *c) {
  nn_layer_cfg l =
      nn_layer_cfg_llama(c->hidden_size, c->num_attention_heads, c->num_key_value_heads,
                         c->intermediate_size, c->rope_theta, c->rms_norm_eps, true);
  l.attn.pack = l.mlp.pack = !c->unpacked;
  l.recompute = c->recompute;
  return l;
}

int qwen2_init(qwen2 *m, vt_params *ps, const qwen2_cfg *cfg, char *err, size_t err_len) {
  *m = (qwen2){.cfg = *cfg, .ps = ps};
  if (qwen2_cfg_check(cfg, err, err_len)) return -1;
  int64_t h = cfg->hidden_size;
  m->layers = calloc((size_t)cfg->num_hidden_layers, sizeof *m->layers);
  if (!m->layers) {
    snprintf(err, err_len, "qwen2: out of memory");
    return -1;
  }
  nn_reg r = nn_reg_make(ps, err, err_len);
  nn_embedding_init(&m->embed, &r, "model", "embed_tokens", cfg->vocab_size, h);
  nn_layer_cfg lc = layer_cfg(cfg);
  for (int64_t l = 0; l < cfg->num_hidden_layers && !nn_reg_failed(&r); l++) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "model.layers.%lld", (long long)l);
    nn_layer_init(&m->layers[l], &r, prefix, &lc);
  }
  nn_norm_init(&m->norm, &r, "model", "norm", NN_NORM_RMS, h, cfg->rms_norm_eps, false);
  if (cfg->tie_word_embeddings) {
    m->lm_head = m->embed.w;
    vt_params_set_copy(ps, m->lm_head, true); /* the LM head's GEMMs read it */
  } else
    m->lm_head = nn_param(&r, NULL, "lm_head", "weight", 2, (int64_t[]){cfg->vocab_size, h});
  return nn_reg_failed(&r) ? -1 : 0;
}

void qwen2_free(qwen2 *m) {
  free(m->layers);
  m->layers = NULL;
}

void qwen2_init_weights(qwen2 *m, vt_rng *rng) {
  const vt_params *ps = m->ps;
  float s = (float)m->cfg.initializer_range;
  /* draws in the order of the first implementation, so seeds give the same models */
  nn_init_normal(ps, m->embed.w, rng, 0, s);
  for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
    nn_layer *y = &m->layers[l];
    vt_tensor *mats[] = {y->attn.q.w,  y->attn.k.w, y->attn.v.w, y->attn.o.w,
                         y->mlp.fc1.w, y->mlp.up.w, y->mlp.fc2.w};
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++)
      nn_init_normal(ps, mats[i], rng, 0, s);
    nn_init_const(ps, y->attn.q.b, 0);
    nn_init_const(ps, y->attn.k.b, 0);
    nn_init_const(ps, y->attn.v.b, 0);
    nn_norm_init_weights(&y->norm1, ps);
    nn_norm_init_weights(&y->norm2, ps);
  }
  nn_norm_init_weights(&m->norm, ps);
  if (m->lm_head != m->embed.w) nn_init_normal(ps, m->lm_head, rng, 0, s);
}

vt_tensor *qwen2_embed(qwen2 *m, vt_ctx *ctx, vt_tensor *ids) {
  return nn_embedding_forward(&m->embed, ctx, ids);
}

/* Positions 0..T-1, shared by the batch (written through a stack buffer: no heap). */
static vt_tensor *positions(vt_ctx *ctx, int64_t t) {
  vt_tensor *pos = vt_new(ctx, VT_I32, 1, (int64_t[]){t});
  if (vt_ctx_failed(ctx)) return pos;
  int32_t chunk[1024];
  for (int64_t i0 = 0; i0 < t; i0 += 1024) {
    int64_t n = t - i0 < 1024 ? t - i0 : 1024;
    for (int64_t i = 0; i < n; i++) chunk[i] = (int32_t)(i0 + i);
    vt_write_host(ctx, pos, i0, n, chunk);
  }
  return pos;
}

vt_tensor *qwen2_forward(qwen2 *m, vt_ctx *ctx, vt_tensor *embeds, const qwen2_layout *layout) {
  if (vt_ctx_failed(ctx)) return embeds;
  if (embeds->ndim != 3 || embeds->shape[2] != m->cfg.hidden_size) {
    char s[96];
    return vt_ctx_fail(ctx, "qwen2_forward", "embeddings %s must be [B, T, %lld]",
                       vt_shape_str(embeds, s, sizeof s), (long long)m->cfg.hidden_size);
  }
  qwen2_layout lay = layout ? *layout : (qwen2_layout){0};
  nn_fwd f = {.mask = VT_ATTN_CAUSAL,
              .lengths = lay.lengths,
              .segments = lay.segments,
              .pos = lay.pos ? lay.pos : positions(ctx, embeds->shape[1])};
  vt_tensor *x = embeds;
  for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++)
    x = nn_layer_forward(&m->layers[l], ctx, x, &f);
  return nn_norm_forward(&m->norm, ctx, x);
}

vt_tensor *qwen2_logits(qwen2 *m, vt_ctx *ctx, vt_tensor *hidden) {
  return vt_matmul(ctx, hidden, m->lm_head, false, true);
}

vt_tensor *qwen2_loss(qwen2 *m, vt_ctx *ctx, vt_tensor *ids, vt_tensor *labels,
                      const qwen2_layout *layout) {
  if (vt_ctx_failed(ctx)) return ids;
  if (ids->ndim != 2 || labels->ndim != 2 || ids->shape[0] != labels->shape[0] ||
      ids->shape[1] != labels->shape[1]) {
    char s1[96], s2[96];
    return vt_ctx_fail(ctx, "qwen2_loss", "ids %s and labels %s must both be [B, T]",
                       vt_shape_str(ids, s1, sizeof s1), vt_shape_str(labels, s2, sizeof s2));
  }
  vt_tensor *hidden = qwen2_forward(m, ctx, qwen2_embed(m, ctx, ids), layout);
  vt_lm_ce_opts o = {.chunk_rows = m->cfg.ce_chunk_rows};
  return vt_lm_cross_entropy(ctx, hidden, m->lm_head, labels, &o);
}
