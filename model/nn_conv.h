/* Convolution blocks: conv1d / conv2d / conv-transpose1d, optionally weight-normed
 * (weight_g, weight_v as torch's weight_norm(dim=0) stores them), followed by a norm (GroupNorm,
 * or LayerNorm over the channels) and an activation, or preceded by the activation
 * (HiFi-GAN's pre-activation); and HiFi-GAN's residual ResBlock1. Layouts are NCL / NCHW. */
#ifndef VT_NN_CONV_H
#define VT_NN_CONV_H

#include "model/nn_act.h"
#include "model/nn_reg.h"

typedef enum {
  NN_CONV_NORM_NONE = 0,
  NN_CONV_NORM_GROUP, /* torch.nn.GroupNorm(norm_groups, C) */
  NN_CONV_NORM_LAYER, /* LayerNorm over the channel dim (the audio adapter's "bn2") */
} nn_conv_norm;

typedef struct {
  int dims;              /* 1 or 2 */
  bool transpose;        /* ConvTranspose1d (dims 1, groups 1, dilation 1) */
  int64_t in_ch, out_ch; /* */
  int kernel[2];         /* 1d: kernel[0]; 2d: kh, kw */
  int stride[2];         /* 1d: stride[0]; 2d: sh, sw (0 means 1) */
  int pad[2];            /* 1d: left, right zero padding (transpose: padding, output_padding);
                            2d: ph, pw on both sides */
  int dilation, groups;  /* 1d convolution only (0 means 1) */
  bool bias, weight_norm;
  nn_conv_norm norm;
  int64_t norm_groups;
  double norm_eps;
  nn_act act;
  float act_slope;              /* NN_ACT_LEAKY_RELU */
  bool act_first;               /* act, then conv (no norm) */
  const char *conv, *norm_name; /* names under the block's prefix (read by init only) */
} nn_conv_cfg;

typedef struct {
  nn_conv_cfg cfg;
  vt_tensor *w, *g, *v, *b; /* w without weight norm; g, v with it */
  vt_tensor *norm_w, *norm_b;
} nn_conv;

void nn_conv_init(nn_conv *c, nn_reg *r, const char *prefix, const nn_conv_cfg *cfg);
vt_tensor *nn_conv_forward(const nn_conv *c, vt_ctx *ctx, vt_tensor *x);
/* "Same" padding of a stride-1 conv1d: (kernel - 1) * dilation / 2 on both sides. */
int nn_conv_same_pad(int kernel, int dilation);
/* weight_g = |weight_v| per output channel (torch's weight_norm initialisation: w unchanged).
 * Call after writing weight_v. */
void nn_conv_init_weight_norm(const nn_conv *c, const vt_params *ps);

#define NN_RES_MAX 4

/* HiFi-GAN ResBlock1: for each dilation d_i, x = x + c2_i(act(c1_i(act(x)))) with stride-1
 * "same" convs c1_i (dilation d_i) and c2_i (dilation 1), weight-normed, with bias, named
 * "convs1.i" / "convs2.i". */
typedef struct {
  int64_t ch;
  int kernel;
  int n, dilations[NN_RES_MAX]; /* HiFi-GAN: 3 x {1, 3, 5} */
  float slope;                  /* LeakyReLU slope (0.1) */
  bool weight_norm;
} nn_resblock_cfg;

typedef struct {
  nn_resblock_cfg cfg;
  nn_conv c1[NN_RES_MAX], c2[NN_RES_MAX];
} nn_resblock;

void nn_resblock_init(nn_resblock *rb, nn_reg *r, const char *prefix, const nn_resblock_cfg *cfg);
vt_tensor *nn_resblock_forward(const nn_resblock *rb, vt_ctx *ctx, vt_tensor *x);

#endif
