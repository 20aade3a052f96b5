/* Pre-norm transformer layer; see nn_layer.h. */
#include "model/nn_layer.h"

#include <string.h>

/* Dropout sites of one layer call (nn_mlp uses site 0 inside). */
enum { SITE_ATTN_OUT = 1, SITE_MLP_OUT, SITE_PATH_ATTN, SITE_PATH_MLP };

nn_layer_cfg nn_layer_cfg_llama(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t ffn,
                                double rope_theta, double eps, bool qkv_bias) {
  return (nn_layer_cfg){.attn = {.hidden = hidden,
                                 .heads = heads,
                                 .kv_heads = kv_heads,
                                 .qkv_bias = qkv_bias,
                                 .pack = true,
                                 .rope_theta = rope_theta,
                                 .q = "self_attn.q_proj",
                                 .k = "self_attn.k_proj",
                                 .v = "self_attn.v_proj",
                                 .o = "self_attn.o_proj"},
                        .mlp = {.dim = hidden,
                                .hidden = ffn,
                                .act = NN_ACT_SILU,
                                .gated = true,
                                .pack = true,
                                .fc1 = "mlp.gate_proj",
                                .up = "mlp.up_proj",
                                .fc2 = "mlp.down_proj"},
                        .norm = NN_NORM_RMS,
                        .norm_eps = eps,
                        .norm1 = "input_layernorm",
                        .norm2 = "post_attention_layernorm"};
}

nn_layer_cfg nn_layer_cfg_internvit(int64_t hidden, int64_t heads, int64_t ffn, double eps) {
  return (nn_layer_cfg){.attn = {.hidden = hidden,
                                 .heads = heads,
                                 .qkv_bias = true,
                                 .o_bias = true,
                                 .fused_qkv = true,
                                 .qkv = "attn.qkv",
                                 .o = "attn.proj"},
                        .mlp = {.dim = hidden,
                                .hidden = ffn,
                                .act = NN_ACT_GELU_ERF,
                                .bias = true,
                                .fc1 = "mlp.fc1",
                                .fc2 = "mlp.fc2"},
                        .norm = NN_NORM_LAYER,
                        .norm_eps = eps,
                        .norm_bias = true,
                        .norm1 = "norm1",
                        .norm2 = "norm2",
                        .layer_scale = true,
                        .ls1 = "ls1",
                        .ls2 = "ls2"};
}

nn_layer_cfg nn_layer_cfg_wenet(int64_t hidden, int64_t heads, int64_t ffn, double eps,
                                float dropout) {
  return (nn_layer_cfg){.attn = {.hidden = hidden,
                                 .heads = heads,
                                 .qkv_bias = true,
                                 .o_bias = true,
                                 .pack = true,
                                 .rel_pos = true,
                                 .q = "self_attn.linear_q",
                                 .k = "self_attn.linear_k",
                                 .v = "self_attn.linear_v",
                                 .o = "self_attn.linear_out",
                                 .pos = "self_attn.linear_pos",
                                 .pos_bias_u = "self_attn.pos_bias_u",
                                 .pos_bias_v = "self_attn.pos_bias_v"},
                        .mlp = {.dim = hidden,
                                .hidden = ffn,
                                .act = NN_ACT_RELU,
                                .bias = true,
                                .dropout = dropout,
                                .fc1 = "feed_forward.w_1",
                                .fc2 = "feed_forward.w_2"},
                        .norm = NN_NORM_LAYER,
                        .norm_eps = eps,
                        .norm_bias = true,
                        .norm1 = "norm1",
                        .norm2 = "norm2",
                        .dropout = dropout};
}

void nn_layer_init(nn_layer *l, nn_reg *r, const char *prefix, const nn_layer_cfg *cfg) {
  *l = (nn_layer){.cfg = *cfg};
  const nn_layer_cfg *c = &l->cfg;
  int64_t h = c->attn.hidden;
  if (c->mlp.dim != h) {
    nn_reg_fail(r, "%s: the mlp's dim %lld differs from the attention's hidden %lld", prefix,
                (long long)c->mlp.dim, (long long)h);
    return;
  }
  /* registration order is the HF order: norm1, attention, norm2, mlp (then layer scales) */
  nn_norm_init(&l->norm1, r, prefix, c->norm1, c->norm, h, c->norm_eps, c->norm_bias);
  nn_attn_init(&l->attn, r, prefix, &c->attn);
  nn_norm_init(&l->norm2, r, prefix, c->norm2, c->norm, h, c->norm_eps, c->norm_bias);
  nn_mlp_init(&l->mlp, r, prefix, &c->mlp);
  if (c->layer_scale) {
    l->ls1 = nn_param(r, prefix, c->ls1, NULL, 1, (int64_t[]){h});
    l->ls2 = nn_param(r, prefix, c->ls2, NULL, 1, (int64_t[]){h});
  }
}

void nn_layer_init_weights(const nn_layer *l, const vt_params *ps, vt_rng *rng, float std,
                           float ls_init) {
  const nn_attn *a = &l->attn;
  const nn_linear *lins[] = {&a->q,   &a->k,       &a->v,      &a->qkv,    &a->o,
                             &a->pos, &l->mlp.fc1, &l->mlp.up, &l->mlp.fc2};
  for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++)
    if (lins[i]->w) nn_linear_init_normal(lins[i], ps, rng, std);
  nn_init_normal(ps, a->pos_u, rng, 0, std);
  nn_init_normal(ps, a->pos_v, rng, 0, std);
  nn_norm_init_weights(&l->norm1, ps);
  nn_norm_init_weights(&l->norm2, ps);
  nn_init_const(ps, l->ls1, ls_init);
  nn_init_const(ps, l->ls2, ls_init);
}

/* The residual branch tail: dropout, layer scale, drop path. */
static vt_tensor *branch(vt_ctx *ctx, const nn_layer *l, vt_tensor *y, vt_tensor *ls,
                         const nn_drop *d, int site_drop, int site_path) {
  y = nn_dropout(ctx, y, l->cfg.dropout, d, site_drop);
  if (ls) y = vt_mul(ctx, y, ls);
  return nn_drop_path(ctx, y, l->cfg.drop_path, d, site_path);
}

static vt_tensor *layer_body(vt_ctx *ctx, const nn_layer *l, vt_tensor *x, const nn_fwd *f,
                             const nn_drop *d) {
  /* the norms' outputs are read by the projections only: stored once in the GEMM dtype */
  vt_tensor *h = vt_gemm_input(ctx, nn_norm_forward(&l->norm1, ctx, x));
  vt_tensor *a = nn_attn_forward(&l->attn, ctx, h, f);
  x = vt_add(ctx, x, branch(ctx, l, a, l->ls1, d, SITE_ATTN_OUT, SITE_PATH_ATTN));
  h = vt_gemm_input(ctx, nn_norm_forward(&l->norm2, ctx, x));
  vt_tensor *m = nn_mlp_forward(&l->mlp, ctx, h, d);
  return vt_add(ctx, x, branch(ctx, l, m, l->ls2, d, SITE_MLP_OUT, SITE_PATH_MLP));
}

/* What a recomputed layer needs again in backward, copied into the step. */
typedef struct {
  const nn_layer *layer;
  nn_fwd f;
  nn_drop d;
} recompute_args;

static vt_tensor *recompute_fn(vt_ctx *ctx, vt_tensor *const *in, int n_in, void *user) {
  const recompute_args *a = user;
  (void)n_in;
  return layer_body(ctx, a->layer, in[0], &a->f, &a->d);
}

/* Whether a gradient reaches any parameter of the layer. */
static bool layer_trains(const nn_layer *l) {
  const nn_attn *a = &l->attn;
  const nn_linear *lins[] = {&a->q,   &a->k,       &a->v,      &a->qkv,    &a->o,
                             &a->pos, &l->mlp.fc1, &l->mlp.up, &l->mlp.fc2};
  const vt_tensor *ts[] = {a->pos_u,   a->pos_v,   l->norm1.w, l->norm1.b,
                           l->norm2.w, l->norm2.b, l->ls1,     l->ls2};
  for (size_t i = 0; i < sizeof lins / sizeof lins[0]; i++)
    if ((lins[i]->w && lins[i]->w->requires_grad) || (lins[i]->b && lins[i]->b->requires_grad))
      return true;
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
    if (ts[i] && ts[i]->requires_grad) return true;
  return false;
}

vt_tensor *nn_layer_forward(const nn_layer *l, vt_ctx *ctx, vt_tensor *x, const nn_fwd *f) {
  static const nn_fwd eval = {0};
  if (!f) f = &eval;
  const nn_layer_cfg *c = &l->cfg;
  if (vt_ctx_failed(ctx)) return x;
  if (x->ndim != 3 || x->shape[2] != c->attn.hidden) {
    char s[96];
    return vt_ctx_fail(ctx, "nn_layer", "input %s must be [B, T, %lld]",
                       vt_shape_str(x, s, sizeof s), (long long)c->attn.hidden);
  }
  nn_drop d = nn_drop_begin(ctx, f, c->dropout > 0 || c->drop_path > 0 || c->mlp.dropout > 0);
  recompute_args a = {.layer = l, .f = *f, .d = d};
  /* the layout tensors go in as inputs too, so recompute sees every tensor it uses */
  vt_tensor *in[8] = {x};
  vt_tensor *extra[] = {f->pos, f->lengths, f->segments, f->prefix_lengths, f->bias, f->pos_emb};
  int n = 1;
  bool needs_grad = x->requires_grad;
  for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
    if (extra[i]) {
      needs_grad |= extra[i]->requires_grad;
      in[n++] = extra[i];
    }
  /* Off the tape (a frozen layer on an input without gradient, e.g. a frozen vision tower, or
   * grad mode off): only the output is kept, and recompute would only replay it for nothing. */
  if (!vt_grad_enabled(ctx) || (!needs_grad && !layer_trains(l)))
    return vt_transient(ctx, recompute_fn, &a, n, in);
  if (!c->recompute) return layer_body(ctx, l, x, f, &d);
  a.f.rng = NULL; /* seeds are drawn: the replay must not draw again */
  return vt_recompute_args(ctx, recompute_fn, &a, sizeof a, n, in);
}
