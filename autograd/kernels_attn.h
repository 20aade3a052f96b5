/* Kernels of the attn family (fused flash-style attention): one table per device, reached
 * through vt_backend.attn. Ops in autograd/ops_attn*.c call them with a vt_attn_geom that
 * describes shapes, the mask and the optional additive bias; all pointers are device pointers. */
#ifndef VT_KERNELS_ATTN_H
#define VT_KERNELS_ATTN_H

#include "autograd/backend.h"

/* Every mask keeps, for query row i, one contiguous range of keys [lo, hi) (then clipped to
 * the per-sample key length), which is what lets kernels skip whole key tiles. */
typedef enum {
  VT_ATTN_BIDIRECTIONAL = 0, /* [0, Tk) */
  VT_ATTN_CAUSAL,            /* [0, i + Tk - Tq + 1): aligned at the end when Tq < Tk */
  VT_ATTN_CHUNK,             /* [max(0, (i/c - L) c), (i/c + 1) c); L < 0: no left limit */
  VT_ATTN_PREFIX,            /* i < P: [0, P); else [0, i + 1) */
} vt_attn_mask_kind;

typedef struct {
  int64_t B, H, Hkv; /* batch, query heads, key/value heads (H % Hkv == 0) */
  int64_t Tq, Tk;    /* query and key lengths */
  int64_t Dk, Dv;    /* head dims of q/k and of v/out */
  float scale;       /* applied to q k^T */
  vt_attn_mask_kind mask;
  int64_t chunk, left_chunks;    /* VT_ATTN_CHUNK */
  int64_t prefix;                /* VT_ATTN_PREFIX, when prefix_lengths is NULL */
  const int32_t *prefix_lengths; /* [B] per-sample prefix, or NULL */
  const int32_t *lengths;        /* [B] key lengths (keys >= len masked), or NULL */
  /* [B, Tq, 2]: the [start, end) of each position's packed segment (Tq == Tk); the visible
   * range is intersected with it. NULL: one segment. */
  const int32_t *segments;
  /* Additive bias [Bb, Hb, Tq, Tk] (Bb in {1, B}, Hb in {1, H}), added after scaling. */
  const float *bias;
  int64_t bias_b, bias_h;
} vt_attn_geom;

struct vt_attn_kernels {
  /* Scratch bytes the kernels need (the op takes them from the step arena). */
  size_t (*workspace)(const vt_backend *be, const vt_attn_geom *g);
  /* q [B,H,Tq,Dk], k [B,Hkv,Tk,Dk], v [B,Hkv,Tk,Dv] -> out [B,H,Tq,Dv] and the log-sum-exp
   * of each row's scores lse [B,H,Tq] (-inf for a row with no visible key; its out is 0). */
  void (*forward)(const vt_backend *be, const vt_attn_geom *g, const float *q, const float *k,
                  const float *v, float *out, float *lse, void *work);
  /* Accumulates dq, dk, dv and dbias (each may be NULL) from dout, recomputing the scores
   * tile by tile from lse. dbias has the bias's shape. */
  void (*backward)(const vt_backend *be, const vt_attn_geom *g, const float *q, const float *k,
                   const float *v, const float *out, const float *dout, const float *lse, float *dq,
                   float *dk, float *dv, float *dbias, void *work);
};

#endif
