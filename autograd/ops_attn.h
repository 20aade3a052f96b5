/* Fused scaled-dot-product attention (flash-style: no T x T matrix is stored, forward keeps
 * only the per-row log-sum-exp for backward) with multi-head / grouped-query heads, the masks
 * the VITA modules need and an optional additive score bias that receives a gradient. */
#ifndef VT_OPS_ATTN_H
#define VT_OPS_ATTN_H

#include "autograd/ctx.h"
#include "autograd/kernels_attn.h"

/* Zero-initialised options mean: bidirectional, scale 1/sqrt(Dk), no padding, no bias. */
typedef struct {
  vt_attn_mask_kind mask;
  float scale;               /* 0: 1/sqrt(Dk) */
  vt_tensor *lengths;        /* i32 [B]: keys at positions >= lengths[b] are masked */
  int64_t chunk_size;        /* VT_ATTN_CHUNK: c (> 0) */
  int64_t left_chunks;       /* VT_ATTN_CHUNK: L; < 0 means all earlier chunks */
  int64_t prefix;            /* VT_ATTN_PREFIX: P, the bidirectional prefix length */
  vt_tensor *prefix_lengths; /* i32 [B]: per-sample P (overrides prefix) */
  /* i32 [B, T] (self-attention, Tq == Tk): packed samples. Each run of equal ids is one
   * segment; a query sees only keys of its own run (on top of the mask kind). */
  vt_tensor *segment_ids;
  /* f32 additive bias on the scaled scores, [Hb, Tq, Tk] or [Bb, Hb, Tq, Tk] with Hb in
   * {1, H} and Bb in {1, B}; it gets a gradient when it requires one. */
  vt_tensor *bias;
} vt_attn_opts;

/* out[b,h] = softmax(scale * q[b,h] k[b,g]^T + bias + mask) v[b,g], g = h / (H / Hkv).
 * q [B, H, Tq, Dk], k [B, Hkv, Tk, Dk], v [B, Hkv, Tk, Dv] -> [B, H, Tq, Dv]; H % Hkv == 0.
 * A query row that sees no key (e.g. lengths[b] == 0) gives zeros.
 *
 * The audio encoder's relative-position term, score = [(q+u) k^T + (q+v) p^T] / sqrt(d)
 * with p = linear_pos(pe) [T, H, d], needs no T x T tensor: concatenate along the head dim,
 * q' = [q+u | q+v] and k' = [k | p] (p broadcast over the batch), and pass scale =
 * 1/sqrt(d) explicitly (Dk = 2d differs from Dv = d, which the op allows). The bias input is
 * the general form for terms that do not factor. */
vt_tensor *vt_attention(vt_ctx *ctx, vt_tensor *q, vt_tensor *k, vt_tensor *v,
                        const vt_attn_opts *opts);

/* Attention straight from a packed q/k/v projection, in the layout the projections use:
 * qkv [B, T, (heads + 2 kv_heads) D] (per position the query heads, then the key heads, then
 * the value heads, as one GEMM over the concatenated q/k/v weights writes them) ->
 * [B, T, heads Dv] with Dv = D, which the output projection reads as it is. RoPE (theta > 0,
 * positions pos i32 [T] or [B, T], as vt_rope) is applied to q and k on the way in. The same
 * as slicing, vt_rope (VT_ROPE_BTHD), permuting to [B, H, T, D], vt_attention and permuting
 * back, bit for bit, without those intermediate tensors and their gradients: one pass moves
 * q/k/v into the head layout (rotating q and k) and one pass moves their gradients back
 * (rotating back). Backends without the norm family's rope_qkv kernels run the composition.
 * Under bf16 mixed precision qkv may be the bf16 tensor vt_lowp_store made of the projection
 * (its values are read forward only; the gradient of qkv is f32). */
vt_tensor *vt_attention_qkv(vt_ctx *ctx, vt_tensor *qkv, int64_t heads, int64_t kv_heads,
                            vt_tensor *pos, float theta, const vt_attn_opts *opts);
/* vt_lowp_store of qkv for vt_attention_qkv, its sole reader, where this backend's rope_qkv
 * reads bf16 (rope_qkv_bf16); elsewhere qkv as it is. */
vt_tensor *vt_attention_qkv_input(vt_ctx *ctx, vt_tensor *qkv);

#endif
