/* Attention block; see nn_attn.h. */
#include "model/nn_attn.h"

#include <math.h>
#include <stdio.h>

int nn_attn_cfg_check(nn_attn_cfg *c, const char *what, char *err, size_t err_len) {
  if (!c->kv_heads) c->kv_heads = c->heads;
  if (!c->head_dim && c->heads > 0) c->head_dim = c->hidden / c->heads;
  if (c->hidden <= 0 || c->heads <= 0 || c->kv_heads <= 0 || c->head_dim <= 0) {
    snprintf(err, err_len,
             "%s: attention sizes hidden %lld, heads %lld, kv_heads %lld must be "
             "positive",
             what, (long long)c->hidden, (long long)c->heads, (long long)c->kv_heads);
    return -1;
  }
  if (c->heads % c->kv_heads) {
    snprintf(err, err_len, "%s: heads %lld is not a multiple of kv_heads %lld", what,
             (long long)c->heads, (long long)c->kv_heads);
    return -1;
  }
  if (c->rope_theta > 0 && c->head_dim % 2) {
    snprintf(err, err_len, "%s: the head dim %lld must be even for RoPE", what,
             (long long)c->head_dim);
    return -1;
  }
  if (c->rel_pos && (c->kv_heads != c->heads || c->rope_theta > 0)) {
    snprintf(err, err_len, "%s: the relative position term needs kv_heads == heads and no RoPE",
             what);
    return -1;
  }
  return 0;
}

void nn_attn_init(nn_attn *a, nn_reg *r, const char *prefix, const nn_attn_cfg *cfg) {
  *a = (nn_attn){.cfg = *cfg};
  nn_attn_cfg *c = &a->cfg;
  char err[256];
  if (nn_attn_cfg_check(c, prefix, err, sizeof err)) {
    nn_reg_fail(r, "%s", err);
    return;
  }
  int64_t q = c->heads * c->head_dim, kv = c->kv_heads * c->head_dim;
  if (c->fused_qkv) {
    nn_linear_init(&a->qkv, r, prefix, c->qkv, c->hidden, q + 2 * kv, c->qkv_bias);
  } else {
    nn_linear *ls[3] = {&a->q, &a->k, &a->v};
    const char *names[3] = {c->q, c->k, c->v};
    nn_linear_init_packed(ls, 3, r, prefix, names, c->hidden, (int64_t[]){q, kv, kv}, c->qkv_bias);
  }
  nn_linear_init(&a->o, r, prefix, c->o, q, c->hidden, c->o_bias);
  if (c->rel_pos) {
    nn_linear_init(&a->pos, r, prefix, c->pos, c->hidden, q, false);
    a->pos_u = nn_param(r, prefix, c->pos_bias_u, NULL, 2, (int64_t[]){c->heads, c->head_dim});
    a->pos_v = nn_param(r, prefix, c->pos_bias_v, NULL, 2, (int64_t[]){c->heads, c->head_dim});
  }
}

vt_tensor *nn_attn_forward(const nn_attn *a, vt_ctx *ctx, vt_tensor *x, const nn_fwd *f) {
  const nn_attn_cfg *c = &a->cfg;
  if (vt_ctx_failed(ctx)) return x;
  if (x->ndim != 3 || x->shape[2] != c->hidden) {
    char s[96];
    return vt_ctx_fail(ctx, "nn_attn", "input %s must be [B, T, %lld]",
                       vt_shape_str(x, s, sizeof s), (long long)c->hidden);
  }
  if (c->rope_theta > 0 && !f->pos)
    return vt_ctx_fail(ctx, "nn_attn", "a RoPE attention block needs positions (nn_fwd.pos)");
  if (c->rel_pos && !f->pos_emb)
    return vt_ctx_fail(ctx, "nn_attn", "a relative-position attention block needs nn_fwd.pos_emb");
  int64_t b = x->shape[0], t = x->shape[1], nh = c->heads, nkv = c->kv_heads, hd = c->head_dim;
  float scale = c->scale > 0 ? c->scale : 1.0f / sqrtf((float)hd);
  vt_attn_opts ao = {.mask = f->mask,
                     .scale = scale,
                     .lengths = f->lengths,
                     .chunk_size = f->chunk_size,
                     .left_chunks = f->left_chunks,
                     .prefix = f->prefix,
                     .prefix_lengths = f->prefix_lengths,
                     .segment_ids = f->segments,
                     .bias = f->bias};
  if (!c->rel_pos) {
    /* the projection's output as it is: the attention op moves q/k/v into its head layout
     * (with RoPE) and writes its output in the layout o_proj reads */
    const nn_linear *ls[3] = {&a->q, &a->k, &a->v};
    vt_tensor *y = c->fused_qkv ? nn_linear_forward_lowp(&a->qkv, ctx, x)
                   : c->pack    ? nn_linear_packed_lowp(ctx, ls, 3, x)
                                : NULL;
    if (y) {
      /* y's only reader: under bf16 it is written or kept in bf16 (the op reads it forward
       * only) */
      y = vt_attention_qkv_input(ctx, y);
      vt_tensor *o = vt_attention_qkv(ctx, y, nh, nkv, f->pos, (float)c->rope_theta, &ao);
      return nn_linear_forward(&a->o, ctx, vt_gemm_input(ctx, o)); /* o_proj's only */
    }
  }
  vt_tensor *qkv[3];
  if (c->fused_qkv) {
    vt_tensor *y = nn_linear_forward(&a->qkv, ctx, x);
    qkv[0] = vt_slice(ctx, y, -1, 0, nh * hd);
    qkv[1] = vt_slice(ctx, y, -1, nh * hd, (nh + nkv) * hd);
    qkv[2] = vt_slice(ctx, y, -1, (nh + nkv) * hd, (nh + 2 * nkv) * hd);
  } else {
    const nn_linear *ls[3] = {&a->q, &a->k, &a->v};
    nn_linear_multi(ctx, ls, 3, x, c->pack, qkv);
  }
  vt_tensor *q = vt_reshape(ctx, qkv[0], 4, (int64_t[]){b, t, nh, hd});
  vt_tensor *k = vt_reshape(ctx, qkv[1], 4, (int64_t[]){b, t, nkv, hd});
  vt_tensor *v = vt_reshape(ctx, qkv[2], 4, (int64_t[]){b, t, nkv, hd});
  if (c->rope_theta > 0) {
    q = vt_rope(ctx, q, f->pos, (float)c->rope_theta, VT_ROPE_BTHD);
    k = vt_rope(ctx, k, f->pos, (float)c->rope_theta, VT_ROPE_BTHD);
  }
  if (c->rel_pos) {
    /* q' = [q + u | q + v], k' = [k | p]: one attention computes both score terms */
    vt_tensor *p = nn_linear_forward(&a->pos, ctx, f->pos_emb); /* [T, H hd] */
    p = vt_reshape(ctx, p, 3, (int64_t[]){t, nh, hd});
    p = vt_add(ctx, vt_zeros(ctx, VT_F32, 4, (int64_t[]){b, t, nh, hd}), p);
    vt_tensor *qq[2] = {vt_add(ctx, q, a->pos_u), vt_add(ctx, q, a->pos_v)};
    vt_tensor *kk[2] = {k, p};
    q = vt_concat(ctx, qq, 2, -1);
    k = vt_concat(ctx, kk, 2, -1);
  }
  const int to_heads[4] = {0, 2, 1, 3};
  q = vt_permute(ctx, q, to_heads);
  k = vt_permute(ctx, k, to_heads);
  v = vt_permute(ctx, v, to_heads);
  vt_tensor *o = vt_permute(ctx, vt_attention(ctx, q, k, v, &ao), to_heads); /* [B, T, H, hd] */
  o = vt_gemm_input(ctx, vt_reshape(ctx, o, 3, (int64_t[]){b, t, nh * hd})); /* o_proj's only */
  return nn_linear_forward(&a->o, ctx, o);
}

vt_tensor *nn_sinusoid_table(vt_ctx *ctx, int64_t t, int64_t dim) {
  vt_tensor *pe = vt_new(ctx, VT_F32, 2, (int64_t[]){t, dim});
  if (vt_ctx_failed(ctx)) return pe;
  float row[4096];
  if (dim > 4096) return vt_ctx_fail(ctx, "nn_sinusoid_table", "dim %lld > 4096", (long long)dim);
  const float factor = (float)(-log(10000.0) / (double)dim);
  for (int64_t i = 0; i < t; i++) {
    /* in f32 like WeNet's torch code, so the table matches the one the release trained on */
    for (int64_t j = 0; j < dim; j += 2) {
      float w = expf((float)j * factor), a = (float)i * w;
      row[j] = sinf(a);
      if (j + 1 < dim) row[j + 1] = cosf(a);
    }
    vt_buf_from_host(vt_ctx_backend(ctx), (float *)pe->data + i * dim, row,
                     sizeof(float) * (size_t)dim);
  }
  return pe;
}
