/* Kernels of the norm family (LayerNorm, RMSNorm, GroupNorm, BatchNorm1d, RoPE, dropout, weight
 * norm, VQ): one table per device, reached through vt_backend.norm. Ops in autograd/ops_norm*.c
 * and ops_quant.c call them; pointers are device pointers, "backward" kernels accumulate. */
#ifndef VT_KERNELS_NORM_H
#define VT_KERNELS_NORM_H

#include <math.h>

#include "autograd/backend.h"

struct vt_norm_kernels {
  /* Over the last dim of x [rows, cols]: y = (x - mean) * rstd * w + b (w, b [cols], either may
   * be NULL); mean and rstd [rows] are kept for the backward. */
  void (*layer_norm)(const vt_backend *be, int64_t rows, int64_t cols, float eps, const float *x,
                     const float *w, const float *b, float *y, float *mean, float *rstd);
  /* dx, dw, db (+)= gradients; any of them may be NULL. */
  void (*layer_norm_backward)(const vt_backend *be, int64_t rows, int64_t cols, const float *x,
                              const float *w, const float *mean, const float *rstd, const float *dy,
                              float *dx, float *dw, float *db);
  /* y = x * rstd * w with rstd = 1 / sqrt(mean(x^2) + eps) over the last dim; w may be NULL. */
  void (*rms_norm)(const vt_backend *be, int64_t rows, int64_t cols, float eps, const float *x,
                   const float *w, float *y, float *rstd);
  void (*rms_norm_backward)(const vt_backend *be, int64_t rows, int64_t cols, const float *x,
                            const float *w, const float *rstd, const float *dy, float *dx,
                            float *dw);
  /* x [n, c, s]: statistics per (sample, group of c / groups channels), affine per channel;
   * mean and rstd are [n, groups]. */
  void (*group_norm)(const vt_backend *be, int64_t n, int64_t c, int64_t s, int64_t groups,
                     float eps, const float *x, const float *w, const float *b, float *y,
                     float *mean, float *rstd);
  void (*group_norm_backward)(const vt_backend *be, int64_t n, int64_t c, int64_t s, int64_t groups,
                              const float *x, const float *w, const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dw, float *db);
  /* x [n, c, s], statistics per channel over n and s. Training: batch statistics (biased
   * variance), and when running_mean/var are given they move by momentum towards the batch
   * mean and the unbiased variance. Eval: the running statistics. mean and rstd [c] receive
   * what normalised x. */
  void (*batch_norm)(const vt_backend *be, int64_t n, int64_t c, int64_t s, bool training,
                     float momentum, float eps, const float *x, const float *w, const float *b,
                     float *running_mean, float *running_var, float *y, float *mean, float *rstd);
  void (*batch_norm_backward)(const vt_backend *be, int64_t n, int64_t c, int64_t s, bool training,
                              const float *x, const float *w, const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dw, float *db);
  /* Rotary embedding, HF rotate_half convention, on x viewed as [b, ho, t, hi, d] where the
   * position of (b, t) is pos[b * pos_bstride + t] (pos_bstride 0 shares one row). Forward
   * writes y; inverse applies the transposed rotation and adds into y (the backward). */
  void (*rope)(const vt_backend *be, int64_t b, int64_t ho, int64_t t, int64_t hi, int64_t d,
               float theta, const int32_t *pos, int64_t pos_bstride, const float *x, float *y,
               bool inverse);
  /* RoPE fused with the split of a packed q/k/v projection into the attention's head layout:
   * x [b, t, hq + 2 hkv, d] (per position: hq query heads, then hkv key heads, then hkv value
   * heads) -> q [b, hq, t, d], k and v [b, hkv, t, d], with the rotation of `rope` applied to
   * q and k (theta <= 0: none, a plain split). Positions as for `rope`. NULL: ops compose
   * slice, rope and permute instead. */
  void (*rope_qkv)(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d,
                   float theta, const int32_t *pos, int64_t pos_bstride, const float *x, float *q,
                   float *k, float *v);
  /* rope_qkv with x in bf16 (the projection stored once in bf16 under mixed precision,
   * vt_lowp_store), the same arithmetic on the widened values. NULL: the op widens x into
   * scratch for rope_qkv. */
  void (*rope_qkv_bf16)(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                        int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                        const uint16_t *x, float *q, float *k, float *v);
  /* Its gradient: dx (+)= the packed layout of dq, dk, dv with the transposed rotation on dq
   * and dk; accumulate false overwrites every element of dx. */
  void (*rope_qkv_backward)(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                            int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                            const float *dq, const float *dk, const float *dv, float *dx,
                            bool accumulate);
  /* y = x * keep / (1 - p), keep[i] = vt_dropout_uniform(seed, offset + i) >= p. */
  void (*dropout)(const vt_backend *be, int64_t n, float p, uint64_t seed, uint64_t offset,
                  const float *x, float *y);
  /* dx += dy * keep / (1 - p), the mask regenerated from seed and offset. */
  void (*dropout_backward)(const vt_backend *be, int64_t n, float p, uint64_t seed, uint64_t offset,
                           const float *dy, float *dx);
  /* w[r, :] = g[r] * v[r, :] / |v[r, :]| for v [rows, cols]; norm [rows] keeps |v[r, :]|. */
  void (*weight_norm)(const vt_backend *be, int64_t rows, int64_t cols, const float *g,
                      const float *v, float *w, float *norm);
  /* dg, dv (+)= gradients; either may be NULL. */
  void (*weight_norm_backward)(const vt_backend *be, int64_t rows, int64_t cols, const float *g,
                               const float *v, const float *norm, const float *dw, float *dg,
                               float *dv);
  /* For each row of x [n, d]: idx = argmin_k |x - codebook[k]|^2 over codebook [k, d] (the
   * first on ties), zq = codebook[idx]. */
  void (*vq_nearest)(const vt_backend *be, int64_t n, int64_t k, int64_t d, const float *x,
                     const float *codebook, int32_t *idx, float *zq);
};

/* RoPE's inverse frequency of pair k of a head of size d, as HF computes it in f32:
 * 1 / theta^(2k / d); the angle of position p is then p * inv in f32. */
static inline VT_HD float vt_rope_inv_freq(float theta, int64_t k, int64_t d) {
  return 1.0f / powf(theta, (float)(2 * k) / (float)d);
}

/* rope_qkv's head row: packed head h (hq query heads, then hkv key, then hkv value heads) of
 * sample bi at position ti, in the q [b, hq, t, d], k or v [b, hkv, t, d] layout. */
VT_HD_INLINE float *vt_qkv_head_row(int64_t bi, int64_t ti, int64_t h, int64_t hq, int64_t hkv,
                                    int64_t t, int64_t d, float *q, float *k, float *v) {
  if (h < hq) return q + ((bi * hq + h) * t + ti) * d;
  if (h < hq + hkv) return k + ((bi * hkv + h - hq) * t + ti) * d;
  return v + ((bi * hkv + h - hq - hkv) * t + ti) * d;
}

/* The rotation of one RoPE pair (x1 at k, x2 at k + d / 2) by (cs, sn); the inverse (the
 * backward) passes -sn. */
VT_HD_INLINE void vt_rope_pair(float x1, float x2, float cs, float sn, float *o1, float *o2) {
  *o1 = x1 * cs - x2 * sn;
  *o2 = x2 * cs + x1 * sn;
}

/* The dropout mask as a pure function of (seed, counter): a splitmix64 finaliser of the pair,
 * so every device draws the same mask for the same seed, and the backward regenerates it
 * instead of storing it. Returns a float in [0, 1) with 24 random bits. */
static inline VT_HD float vt_dropout_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed ^ (i * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (float)(z >> 40) * 0x1.0p-24f;
}

#endif
