/* Kernels of the conv family: one table per device, reached through vt_backend.conv. Every
 * convolution (conv1d, conv2d, conv-transpose1d) is a 2-D grouped, strided, dilated
 * convolution described by a vt_conv_geom; ops in autograd/ops_conv.c compose them. */
#ifndef VT_KERNELS_CONV_H
#define VT_KERNELS_CONV_H

#include "autograd/backend.h"

/* x [n, cin, h, w] * weight [cout, cin / groups, kh, kw] -> y [n, cout, oh, ow], where output
 * (oy, ox) reads input (oy * sh - ph + ky * dh, ox * sw - pw + kx * dw); positions outside the
 * input are zeros. oh and ow are given (they fix any right/bottom padding). 1-D convs use
 * h = oh = kh = 1. */
typedef struct {
  int64_t n, groups;
  int64_t cin, h, w;
  int64_t cout, oh, ow;
  int64_t kh, kw;
  int64_t sh, sw, ph, pw, dh, dw;
  /* bf16 mixed precision: a backend may run the GEMMs on bf16 copies of their operands (f32
   * accumulate and output); the unfolding and everything else stay f32. */
  bool lowp;
} vt_conv_geom;

/* The ops a forward pass without a tape folds into a 1-D conv (vt_conv1d_fused): y = res +
 * act_out(conv(act_in(x)) + bias), each act a LeakyReLU with its slope, each part optional
 * (NULL / false). res is shaped like y. */
typedef struct {
  const float *bias, *res;
  bool in_act, out_act;
  float in_slope, out_slope;
} vt_conv_fuse;

struct vt_conv_kernels {
  /* y (+)= conv(x, weight): overwrites y, or adds into it when accumulate. work holds
   * vt_conv_work_floats(g) floats of scratch. */
  void (*conv_forward)(const vt_backend *be, const vt_conv_geom *g, const float *x,
                       const float *weight, float *y, bool accumulate, float *work);
  /* dx += d conv / d x applied to dy (also the forward of a transposed convolution). */
  void (*conv_backward_data)(const vt_backend *be, const vt_conv_geom *g, const float *weight,
                             const float *dy, float *dx, float *work);
  /* dweight += d conv / d weight applied to dy. */
  void (*conv_backward_weight)(const vt_backend *be, const vt_conv_geom *g, const float *x,
                               const float *dy, float *dweight, float *work);
  /* y[i, c, :] += bias[c] over y [n, c, s], and its gradient db[c] += sum of dy[:, c, :]. */
  void (*bias_add)(const vt_backend *be, int64_t n, int64_t c, int64_t s, const float *bias,
                   float *y);
  void (*bias_backward)(const vt_backend *be, int64_t n, int64_t c, int64_t s, const float *dy,
                        float *db);
  /* Optional (NULL: the op composes). y = the fused conv of g (transposed: the transposed conv
   * whose data gradient g describes, y [n, cin, w]) with f's parts; returns false, writing
   * nothing, for a geometry it does not fuse. */
  bool (*conv1d_fused)(const vt_backend *be, const vt_conv_geom *g, bool transposed, const float *x,
                       const float *weight, const vt_conv_fuse *f, float *y);
};

/* The unfolded input (im2col) is processed in chunks of output positions so that scratch stays
 * near 16 MiB however long the input: columns per chunk, and the scratch size in floats. */
static inline int64_t vt_conv_chunk_cols(const vt_conv_geom *g) {
  int64_t rows = g->cin / g->groups * g->kh * g->kw, cols = g->oh * g->ow;
  int64_t cap = ((int64_t)1 << 22) / (rows > 0 ? rows : 1);
  if (cap < 64) cap = 64;
  return cols < cap ? cols : cap;
}
static inline int64_t vt_conv_work_floats(const vt_conv_geom *g) {
  int64_t c = vt_conv_chunk_cols(g), ck = g->cin / g->groups * g->kh * g->kw;
  int64_t f = ck * (c > 0 ? c : 1);
  /* lowp: room for bf16 copies of one GEMM's operands, the weight group [cout_g, ck] and two
   * chunk operands ([ck, c] and [cout_g, c]), 2 bytes each, plus alignment */
  if (g->lowp)
    f += (g->cout / g->groups * ck + (ck + g->cout / g->groups) * (c > 0 ? c : 1)) / 2 + 64;
  return f;
}
/* Sizes the backends' three kernels share: per-group channels, unfolded rows, planes, chunk. */
typedef struct {
  int64_t cin_g, cout_g, ck, ohw, hw, chunk;
} vt_conv_sizes;
static inline vt_conv_sizes vt_conv_sizes_of(const vt_conv_geom *g) {
  vt_conv_sizes s;
  s.cin_g = g->cin / g->groups;
  s.cout_g = g->cout / g->groups;
  s.ck = s.cin_g * g->kh * g->kw;
  s.ohw = g->oh * g->ow;
  s.hw = g->h * g->w;
  s.chunk = vt_conv_chunk_cols(g);
  return s;
}
/* The f32 part of the scratch (the unfolded chunk); a lowp scratch's bf16 part follows it. */
static inline int64_t vt_conv_col_floats(const vt_conv_geom *g) {
  int64_t c = vt_conv_chunk_cols(g);
  return (g->cin / g->groups * g->kh * g->kw) * (c > 0 ? c : 1);
}

#endif
