/* Convolution ops as torch.nn.functional defines them (conv1d, conv2d, conv_transpose1d) and
 * InternViT's pixel-shuffle downsample, each with its backward. Same conventions as
 * autograd/ops.h: f32 data, NCL / NCHW layouts, bias optional (NULL), errors sticky on the ctx. */
#ifndef VT_OPS_CONV_H
#define VT_OPS_CONV_H

#include "autograd/ctx.h"

/* x [N, Cin, L], weight [Cout, Cin / groups, K], bias [Cout] -> [N, Cout, Lout] with
 * Lout = (L + 2 padding - dilation (K - 1) - 1) / stride + 1. */
vt_tensor *vt_conv1d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, int stride,
                     int padding, int dilation, int groups);
/* As vt_conv1d with different zero padding on the left and the right (F.pad then conv1d, as
 * the audio adapter's right-pad). */
vt_tensor *vt_conv1d_pad(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, int stride,
                         int pad_left, int pad_right, int dilation, int groups);
/* x [N, Cin, H, W], weight [Cout, Cin, KH, KW], bias [Cout] -> [N, Cout, OH, OW]. */
vt_tensor *vt_conv2d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, int stride_h,
                     int stride_w, int pad_h, int pad_w);
/* torch.nn.ConvTranspose1d (groups 1, dilation 1): x [N, Cin, L], weight [Cin, Cout, K],
 * bias [Cout] -> [N, Cout, (L - 1) stride - 2 padding + K + output_padding], with
 * output_padding < stride. */
vt_tensor *vt_conv_transpose1d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                               int stride, int padding, int output_padding);

/* The ops around a 1-D conv that the _fused forms fold in: y = res + LeakyReLU_out(conv(
 * LeakyReLU_in(x)) + bias), each part optional (false / NULL; res shaped like y). */
typedef struct {
  bool in_act, out_act;
  float in_slope, out_slope;
  vt_tensor *res;
} vt_conv_fusion;
/* vt_conv1d_pad and vt_conv_transpose1d with the ops of f around them. Values and gradients
 * are the composition's (vt_leaky_relu, the conv, vt_leaky_relu, vt_add), bit for bit: when
 * a tape records (grad enabled and an input requires grad) they run that composition; without
 * one the backend's fused kernel (CPU: the direct thin-channel path) does it in one pass,
 * without the intermediate tensors. */
vt_tensor *vt_conv1d_fused(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                           int stride, int pad_left, int pad_right, int dilation, int groups,
                           const vt_conv_fusion *f);
vt_tensor *vt_conv_transpose1d_fused(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                                     int stride, int padding, int output_padding,
                                     const vt_conv_fusion *f);

/* VITA's / InternVL's pixel_shuffle(x, scale_factor = 1 / factor) on x [N, A, B, C] (A, B
 * divisible by factor) -> [N, A / factor, B / factor, factor^2 C], with
 * out[n, a, b, (i factor + j) C + c] = x[n, factor a + i, factor b + j, c]; factor 2 is the
 * InternViT 0.5 downsample (32x32x1024 -> 16x16x4096). */
vt_tensor *vt_pixel_shuffle(vt_ctx *ctx, vt_tensor *x, int factor);

#endif
