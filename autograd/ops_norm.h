/* Normalisation and regularisation ops: LayerNorm, RMSNorm, GroupNorm, BatchNorm1d, RoPE,
 * dropout, weight norm and straight-through vector quantisation, each with its backward.
 * Same conventions as autograd/ops.h: f32 data, i32 indices, errors sticky on the ctx. */
#ifndef VT_OPS_NORM_H
#define VT_OPS_NORM_H

#include "autograd/ctx.h"
#include "autograd/rng.h"

/* torch.nn.LayerNorm over the last dim of x; weight and bias [last dim], either may be NULL. */
vt_tensor *vt_layer_norm(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, float eps);
/* Qwen2/LLaMA RMSNorm over the last dim: x / sqrt(mean(x^2) + eps) * weight (may be NULL). */
vt_tensor *vt_rms_norm(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, float eps);
/* torch.nn.GroupNorm: x [N, C, *], C divisible by groups; weight and bias [C] or NULL. */
vt_tensor *vt_group_norm(vt_ctx *ctx, vt_tensor *x, int64_t groups, vt_tensor *weight,
                         vt_tensor *bias, float eps);
/* torch.nn.BatchNorm1d on x [N, C] or [N, C, L]; weight, bias [C] or NULL. Training uses batch
 * statistics and, when running_mean/running_var [C] are given, updates them in place
 * (r = (1 - momentum) r + momentum batch_stat, variance unbiased); they take no gradient.
 * Eval (training false) normalises with the running statistics, which are then required. */
vt_tensor *vt_batch_norm1d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                           vt_tensor *running_mean, vt_tensor *running_var, bool training,
                           float momentum, float eps);

/* Where the sequence axis of x sits for RoPE. */
typedef enum {
  VT_ROPE_BTHD, /* x [B, T, H, D]: straight out of a projection reshaped per head */
  VT_ROPE_BHTD, /* x [B, H, T, D]: the HF layout after transpose(1, 2) */
} vt_rope_layout;

/* Rotary position embedding as HF Qwen2/LLaMA apply it (rotate_half: the head dim is split in
 * halves): out = x * cos + rotate_half(x) * sin, angle = pos * theta^(-2k/D). pos is i32 [T]
 * (shared by the batch) or [B, T]; D even. */
vt_tensor *vt_rope(vt_ctx *ctx, vt_tensor *x, vt_tensor *pos, float theta, vt_rope_layout layout);

/* Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p).
 * The mask is a pure function of (seed, offset + element index), so a run is reproducible and
 * the backward regenerates it. Identity (x itself is returned) when !training or p == 0. */
vt_tensor *vt_dropout_seeded(vt_ctx *ctx, vt_tensor *x, float p, bool training, uint64_t seed,
                             uint64_t offset);
/* As above with the seed drawn from rng (one draw per call that drops anything). */
vt_tensor *vt_dropout(vt_ctx *ctx, vt_tensor *x, float p, bool training, vt_rng *rng);

/* PyTorch weight_norm(dim=0): w = g * v / |v| with the norm over all dims of v but dim 0.
 * v [O, ...]; g has O elements (shape [O] or [O, 1, ...]); the result has v's shape. */
vt_tensor *vt_weight_norm(vt_ctx *ctx, vt_tensor *g, vt_tensor *v);

/* Straight-through vector quantisation: x [..., D], codebook [K, D]. Returns zq (the nearest
 * codebook row by L2 distance, shape of x) whose gradient passes unchanged to x; the codebook
 * gets none through zq (train it with a loss on vt_embedding(codebook, *indices)). *indices
 * (if given) receives the chosen rows as i32 [...]. */
vt_tensor *vt_vq_ste(vt_ctx *ctx, vt_tensor *x, vt_tensor *codebook, vt_tensor **indices);

#endif
