/* Attention block: q/k/v projections (separate, packed into one GEMM, or InternViT's fused
 * qkv), multi-head or grouped-query heads, optional RoPE with its theta, every mask kind of
 * vt_attention (the mask, padding, packed segments and an additive bias come per forward in
 * nn_fwd), the output projection, and optionally the audio encoder's relative-position term
 * score = [(q + u) k^T + (q + v) (W_pos pe_j)^T] / sqrt(d) with per-layer pos_bias_u/v and
 * linear_pos. Parameter names are config values (HF, InternViT, WeNet spellings). */
#ifndef VT_NN_ATTN_H
#define VT_NN_ATTN_H

#include "model/nn_fwd.h"
#include "model/nn_linear.h"

typedef struct {
  int64_t hidden, heads, kv_heads, head_dim; /* kv_heads 0: heads; head_dim 0: hidden/heads */
  bool qkv_bias, o_bias;
  bool fused_qkv;    /* one Linear(hidden -> (H + 2 Hkv) hd) named qkv (InternViT) */
  bool pack;         /* separate q/k/v as one GEMM when contiguous in the store */
  double rope_theta; /* 0: no RoPE; else RoPE on q and k at nn_fwd.pos */
  float scale;       /* 0: 1/sqrt(head_dim) */
  bool rel_pos;      /* WeNet relative position term (needs nn_fwd.pos_emb; no GQA, no RoPE) */
  /* names under the block's prefix */
  const char *q, *k, *v, *qkv, *o; /* "self_attn.q_proj", ..., "attn.qkv", "attn.proj" */
  const char *pos;                 /* linear_pos (no bias): "self_attn.linear_pos" */
  const char *pos_bias_u, *pos_bias_v;
} nn_attn_cfg;

typedef struct {
  nn_attn_cfg cfg;
  nn_linear q, k, v, qkv, o, pos;
  vt_tensor *pos_u, *pos_v; /* [H, hd] */
} nn_attn;

/* Fills the defaults (kv_heads, head_dim) and checks the sizes; 0 or -1 with err. */
int nn_attn_cfg_check(nn_attn_cfg *cfg, const char *what, char *err, size_t err_len);
void nn_attn_init(nn_attn *a, nn_reg *r, const char *prefix, const nn_attn_cfg *cfg);
/* x [B, T, hidden] -> [B, T, hidden], laid out and masked as f says. */
vt_tensor *nn_attn_forward(const nn_attn *a, vt_ctx *ctx, vt_tensor *x, const nn_fwd *f);

/* The sinusoidal position table of WeNet / ESPnet (pe[t, 2i] = sin(t w_i), pe[t, 2i + 1] =
 * cos(t w_i), w_i = 10000^(-2i / dim)) for positions 0..T-1: [T, dim] in ctx's step. */
vt_tensor *nn_sinusoid_table(vt_ctx *ctx, int64_t t, int64_t dim);

#endif
