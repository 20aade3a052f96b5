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
  /* bf16 mixed precision (vt_ctx_gemm_dtype): a backend may round q, k, v and the
   * probabilities to bf16 on the way into its products (f32 accumulate; softmax and masks in
   * f32): the CPU's oneDNN tiles, the GPU's tensor-core flash kernels. False: f32 throughout. */
  bool lowp;
} vt_attn_geom;

/* The visible key range [lo, hi) of query row i of sample b (lo == hi: none). Shared by the
 * CPU and CUDA kernels; the geometry's arrays are read where the kernel runs. */
static inline VT_HD void vt_attn_row_range(const vt_attn_geom *g, int64_t b, int64_t i, int64_t *lo,
                                           int64_t *hi) {
  int64_t l = 0, h = g->Tk;
  switch (g->mask) {
  case VT_ATTN_CAUSAL: h = i + (g->Tk - g->Tq) + 1; break;
  case VT_ATTN_CHUNK: {
    int64_t ci = i / g->chunk;
    l = g->left_chunks < 0 ? 0 : (ci - g->left_chunks) * g->chunk;
    h = (ci + 1) * g->chunk;
    break;
  }
  case VT_ATTN_PREFIX: {
    int64_t p = g->prefix_lengths ? g->prefix_lengths[b] : g->prefix;
    h = i < p ? p : i + 1;
    break;
  }
  default: break;
  }
  if (g->segments) {
    const int32_t *seg = g->segments + (b * g->Tq + i) * 2;
    if (seg[0] > l) l = seg[0];
    if (seg[1] < h) h = seg[1];
  }
  if (g->lengths && g->lengths[b] < h) h = g->lengths[b];
  if (h > g->Tk) h = g->Tk;
  if (l < 0) l = 0;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

/* Offset (in elements) of the [Tq, Tk] bias slice that (sample b, head h) reads. */
static inline VT_HD int64_t vt_attn_bias_offset(const vt_attn_geom *g, int64_t b, int64_t h) {
  int64_t bb = g->bias_b == 1 ? 0 : b, hb = g->bias_h == 1 ? 0 : h;
  return (bb * g->bias_h + hb) * g->Tq * g->Tk;
}

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
