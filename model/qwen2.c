/* The Qwen2 decoder; see qwen2.h. */
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
  if (!(c->rope_theta > 0) || !(c->rms_norm_eps > 0)) {
    snprintf(err, err_len, "qwen2 config: rope_theta and rms_norm_eps must be positive");
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

/* Registers one parameter named printf-style; NULL on failure (err filled). */
static vt_tensor *add(vt_params *ps, char *err, size_t err_len, int ndim, const int64_t *shape,
                      const char *fmt, int64_t layer, const char *leaf) {
  char name[160];
  snprintf(name, sizeof name, fmt, (long long)layer, leaf);
  return vt_params_add(ps, name, VT_F32, ndim, shape, err, err_len);
}

int qwen2_init(qwen2 *m, vt_params *ps, const qwen2_cfg *cfg, char *err, size_t err_len) {
  if (qwen2_cfg_check(cfg, err, err_len)) return -1;
  m->cfg = *cfg;
  int64_t h = cfg->hidden_size, hd = h / cfg->num_attention_heads;
  int64_t q = cfg->num_attention_heads * hd, kv = cfg->num_key_value_heads * hd;
  int64_t in = cfg->intermediate_size;
  m->layers = calloc((size_t)cfg->num_hidden_layers, sizeof *m->layers);
  if (!m->layers) {
    snprintf(err, err_len, "qwen2: out of memory");
    return -1;
  }
  m->embed = vt_params_add(ps, "model.embed_tokens.weight", VT_F32, 2,
                           (int64_t[]){cfg->vocab_size, h}, err, err_len);
  if (!m->embed) return -1;
  const char *f = "model.layers.%lld.%s";
  for (int64_t l = 0; l < cfg->num_hidden_layers; l++) {
    qwen2_layer *y = &m->layers[l];
    y->model = m;
    if (!(y->input_norm =
              add(ps, err, err_len, 1, (int64_t[]){h}, f, l, "input_layernorm.weight")) ||
        !(y->q_w = add(ps, err, err_len, 2, (int64_t[]){q, h}, f, l, "self_attn.q_proj.weight")) ||
        !(y->q_b = add(ps, err, err_len, 1, (int64_t[]){q}, f, l, "self_attn.q_proj.bias")) ||
        !(y->k_w = add(ps, err, err_len, 2, (int64_t[]){kv, h}, f, l, "self_attn.k_proj.weight")) ||
        !(y->k_b = add(ps, err, err_len, 1, (int64_t[]){kv}, f, l, "self_attn.k_proj.bias")) ||
        !(y->v_w = add(ps, err, err_len, 2, (int64_t[]){kv, h}, f, l, "self_attn.v_proj.weight")) ||
        !(y->v_b = add(ps, err, err_len, 1, (int64_t[]){kv}, f, l, "self_attn.v_proj.bias")) ||
        !(y->o_w = add(ps, err, err_len, 2, (int64_t[]){h, q}, f, l, "self_attn.o_proj.weight")) ||
        !(y->post_norm =
              add(ps, err, err_len, 1, (int64_t[]){h}, f, l, "post_attention_layernorm.weight")) ||
        !(y->gate_w = add(ps, err, err_len, 2, (int64_t[]){in, h}, f, l, "mlp.gate_proj.weight")) ||
        !(y->up_w = add(ps, err, err_len, 2, (int64_t[]){in, h}, f, l, "mlp.up_proj.weight")) ||
        !(y->down_w = add(ps, err, err_len, 2, (int64_t[]){h, in}, f, l, "mlp.down_proj.weight")))
      return -1;
  }
  m->norm = vt_params_add(ps, "model.norm.weight", VT_F32, 1, (int64_t[]){h}, err, err_len);
  if (!m->norm) return -1;
  m->lm_head = cfg->tie_word_embeddings
                   ? m->embed
                   : vt_params_add(ps, "lm_head.weight", VT_F32, 2, (int64_t[]){cfg->vocab_size, h},
                                   err, err_len);
  return m->lm_head ? 0 : -1;
}

void qwen2_free(qwen2 *m) {
  free(m->layers);
  m->layers = NULL;
}

static void fill(vt_tensor *t, vt_rng *rng, float std, float constant) {
  float *x = t->data;
  for (int64_t i = 0; i < vt_numel(t); i++) x[i] = std > 0 ? std * vt_rng_normal(rng) : constant;
}

void qwen2_init_weights(qwen2 *m, vt_rng *rng) {
  float s = (float)m->cfg.initializer_range;
  fill(m->embed, rng, s, 0);
  for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
    qwen2_layer *y = &m->layers[l];
    vt_tensor *mats[] = {y->q_w, y->k_w, y->v_w, y->o_w, y->gate_w, y->up_w, y->down_w};
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) fill(mats[i], rng, s, 0);
    fill(y->q_b, rng, 0, 0);
    fill(y->k_b, rng, 0, 0);
    fill(y->v_b, rng, 0, 0);
    fill(y->input_norm, rng, 0, 1);
    fill(y->post_norm, rng, 0, 1);
  }
  fill(m->norm, rng, 0, 1);
  if (m->lm_head != m->embed) fill(m->lm_head, rng, s, 0);
}

vt_tensor *qwen2_embed(qwen2 *m, vt_ctx *ctx, vt_tensor *ids) {
  return vt_embedding(ctx, m->embed, ids);
}

static vt_tensor *linear(vt_ctx *ctx, vt_tensor *x, vt_tensor *w, vt_tensor *b) {
  vt_tensor *y = vt_matmul(ctx, x, w, false, true);
  return b ? vt_add(ctx, y, b) : y;
}

/* One decoder layer: in = {x [B, T, H], pos, then lengths and segments when the forward in
 * flight has them}. */
static vt_tensor *layer_forward(vt_ctx *ctx, vt_tensor *const *in, int n_in, void *user) {
  const qwen2_layer *y = user;
  const qwen2 *model = y->model;
  const qwen2_cfg *c = &model->cfg;
  vt_tensor *x = in[0], *pos = in[1];
  vt_tensor *lengths = model->fwd_lengths ? in[2] : NULL;
  vt_tensor *segments = model->fwd_segments ? in[2 + model->fwd_lengths] : NULL;
  (void)n_in;
  int64_t b = x->shape[0], t = x->shape[1], nh = c->num_attention_heads;
  int64_t nkv = c->num_key_value_heads, hd = c->hidden_size / nh;
  float eps = (float)c->rms_norm_eps, theta = (float)c->rope_theta;

  vt_tensor *h = vt_rms_norm(ctx, x, y->input_norm, eps);
  vt_tensor *q = vt_reshape(ctx, linear(ctx, h, y->q_w, y->q_b), 4, (int64_t[]){b, t, nh, hd});
  vt_tensor *k = vt_reshape(ctx, linear(ctx, h, y->k_w, y->k_b), 4, (int64_t[]){b, t, nkv, hd});
  vt_tensor *v = vt_reshape(ctx, linear(ctx, h, y->v_w, y->v_b), 4, (int64_t[]){b, t, nkv, hd});
  const int to_heads[4] = {0, 2, 1, 3};
  q = vt_permute(ctx, vt_rope(ctx, q, pos, theta, VT_ROPE_BTHD), to_heads);
  k = vt_permute(ctx, vt_rope(ctx, k, pos, theta, VT_ROPE_BTHD), to_heads);
  v = vt_permute(ctx, v, to_heads);
  vt_attn_opts ao = {.mask = VT_ATTN_CAUSAL, .lengths = lengths, .segment_ids = segments};
  vt_tensor *a = vt_permute(ctx, vt_attention(ctx, q, k, v, &ao), to_heads); /* [B, T, nh, hd] */
  a = linear(ctx, vt_reshape(ctx, a, 3, (int64_t[]){b, t, nh * hd}), y->o_w, NULL);
  x = vt_add(ctx, x, a);

  h = vt_rms_norm(ctx, x, y->post_norm, eps);
  vt_tensor *g = vt_silu(ctx, linear(ctx, h, y->gate_w, NULL));
  vt_tensor *mlp = linear(ctx, vt_mul(ctx, g, linear(ctx, h, y->up_w, NULL)), y->down_w, NULL);
  return vt_add(ctx, x, mlp);
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
  if (!lay.pos) lay.pos = positions(ctx, embeds->shape[1]);
  vt_tensor *x = embeds;
  vt_tensor *in[4] = {x, lay.pos};
  int n_in = 2;
  m->fwd_lengths = lay.lengths != NULL;
  m->fwd_segments = lay.segments != NULL;
  if (lay.lengths) in[n_in++] = lay.lengths;
  if (lay.segments) in[n_in++] = lay.segments;
  for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
    in[0] = x;
    x = m->cfg.recompute ? vt_recompute(ctx, layer_forward, &m->layers[l], n_in, in)
                         : layer_forward(ctx, in, n_in, &m->layers[l]);
  }
  return vt_rms_norm(ctx, x, m->norm, (float)m->cfg.rms_norm_eps);
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
