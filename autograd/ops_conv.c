/* conv1d, conv2d, conv-transpose1d and pixel shuffle. The three convolutions share one
 * geometry (kernels_conv.h): a transposed convolution is the data-gradient of the convolution
 * whose input is its output, so its forward and backward swap the conv kernels' roles. */
#include "autograd/ops_conv.h"

#include <string.h>

#include "autograd/kernels_conv.h"
#include "autograd/ops.h" /* vt_leaky_relu, vt_add: the fused ops' composition */
#include "autograd/ops_nn_check.h"

/* Scratch for the unfolded input, taken from the step arena and given back right after the
 * kernel (rewinding to a mark taken before it), so a model with many convs does not keep one
 * per call. */
static float *scratch_push(vt_ctx *ctx, const char *op, const vt_conv_geom *g,
                           vt_arena_mark *mark) {
  *mark = vt_arena_get_mark(&ctx->data);
  return vt_arena_data(ctx, op, (size_t)vt_conv_work_floats(g) * sizeof(float));
}
static void scratch_pop(vt_ctx *ctx, vt_arena_mark mark) { vt_arena_rewind(&ctx->data, mark); }

/* vt_ctx_fail for the geometry checks, which return bool. */
#define fail(ctx, op, ...) (vt_ctx_fail(ctx, op, __VA_ARGS__), false)

static void conv_backward(vt_ctx *ctx, vt_node *n) {
  const vt_conv_geom *g = n->extra;
  bool transposed = n->i[0];
  vt_tensor *x = n->in[0], *w = n->in[1], *b = n->i[1] ? n->in[2] : NULL;
  float *dx = vt_grad_if(ctx, x), *dw = vt_grad_if(ctx, w), *db = vt_grad_if(ctx, b);
  if (ctx->failed) return;
  const struct vt_conv_kernels *k = ctx->be->conv;
  const float *dy = n->out->grad;
  if (db) {
    /* the bias is per channel of the output: conv output, or transposed conv input */
    int64_t c = transposed ? g->cin : g->cout, s = transposed ? g->h * g->w : g->oh * g->ow;
    k->bias_backward(ctx->be, g->n, c, s, dy, db);
  }
  if (!dx && !dw) return;
  vt_arena_mark mark;
  float *work = scratch_push(ctx, n->op, g, &mark);
  if (!work) return;
  if (!transposed) {
    if (dx) k->conv_backward_data(ctx->be, g, w->data, dy, dx, work);
    if (dw) k->conv_backward_weight(ctx->be, g, x->data, dy, dw, work);
  } else {
    /* out = conv^T(x): dx = conv(dy), dw from the conv with input dy and output-grad x */
    if (dx) k->conv_forward(ctx->be, g, dy, w->data, dx, true, work);
    if (dw) k->conv_backward_weight(ctx->be, g, dy, x->data, dw, work);
  }
  scratch_pop(ctx, mark);
}

/* Runs a convolution (or its transpose) described by g; out has out_ndim dims of out_shape. */
static vt_tensor *conv_run(vt_ctx *ctx, const char *op, vt_tensor *x, vt_tensor *w, vt_tensor *b,
                           const vt_conv_geom *g, bool transposed, int out_ndim,
                           const int64_t *out_shape) {
  const struct vt_conv_kernels *k = ctx->be->conv;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, out_ndim, out_shape);
  vt_conv_geom *gs = out ? vt_arena_meta(ctx, op, sizeof *gs) : NULL;
  if (!gs) return &ctx->err_tensor;
  *gs = *g;
  gs->lowp = ctx->gemm_dtype == VT_BF16; /* the GEMMs in bf16 under mixed precision */
  g = gs;
  vt_arena_mark mark;
  float *work = scratch_push(ctx, op, g, &mark);
  if (!work) return &ctx->err_tensor;
  if (!transposed) {
    k->conv_forward(ctx->be, g, x->data, w->data, out->data, false, work);
  } else {
    ctx->be->fill(ctx->be, out->data, vt_numel(out), 0.0f);
    k->conv_backward_data(ctx->be, g, w->data, x->data, out->data, work);
  }
  scratch_pop(ctx, mark);
  if (b) {
    int64_t c = out_shape[1], s = vt_numel(out) / (g->n * c);
    k->bias_add(ctx->be, g->n, c, s, b->data, out->data);
  }
  vt_tensor *in[3] = {x, w, b};
  vt_node *n = vt_record(ctx, op, conv_backward, out, b ? 3 : 2, in);
  if (n) {
    n->i[0] = transposed;
    n->i[1] = b != NULL;
    n->extra = gs;
  }
  return out;
}

/* Common input checks: dtypes, ranks, kernel availability, the bias length. */
static bool conv_check(vt_ctx *ctx, const char *op, vt_tensor *x, vt_tensor *w, vt_tensor *b,
                       int ndim, int64_t bias_len) {
  const struct vt_conv_kernels *k = ctx->be->conv;
  if (!vt_have_kernel(ctx, op, VT_FAMILY_CONV,
                      k && k->conv_forward && k->conv_backward_data && k->conv_backward_weight &&
                          k->bias_add && k->bias_backward) ||
      !vt_check_dtype(ctx, op, x, VT_F32) || !vt_check_dtype(ctx, op, w, VT_F32))
    return false;
  if (x->ndim != ndim || w->ndim != ndim || vt_numel(x) == 0 || vt_numel(w) == 0) {
    char sx[96], sw[96];
    vt_ctx_fail(ctx, op, "input %s and weight %s must be non-empty and %d-D",
                vt_shape_str(x, sx, sizeof sx), vt_shape_str(w, sw, sizeof sw), ndim);
    return false;
  }
  return vt_check_vec(ctx, op, b, bias_len, "bias", x);
}

/* A 1-D conv: x [n, cin, w] -> [n, cout, ow], k taps, left padding pad. */
static vt_conv_geom geom_1d(int64_t n, int64_t groups, int64_t cin, int64_t w, int64_t cout,
                            int64_t ow, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  return (vt_conv_geom){.n = n,
                        .groups = groups,
                        .cin = cin,
                        .h = 1,
                        .w = w,
                        .cout = cout,
                        .oh = 1,
                        .ow = ow,
                        .kh = 1,
                        .kw = k,
                        .sh = 1,
                        .sw = stride,
                        .ph = 0,
                        .pw = pad,
                        .dh = 1,
                        .dw = dil};
}

/* Checks a conv1d's arguments and describes it in *g (false, with the error on ctx, if bad). */
static bool conv1d_geom(vt_ctx *ctx, const char *op, vt_tensor *x, vt_tensor *weight,
                        vt_tensor *bias, int stride, int pad_left, int pad_right, int dilation,
                        int groups, vt_conv_geom *g) {
  if (!vt_check_inputs(ctx, op, 2, (vt_tensor *[]){x, weight}) ||
      !conv_check(ctx, op, x, weight, bias, 3, weight->shape[0]))
    return false;
  char sx[96], sw[96];
  vt_shape_str(x, sx, sizeof sx);
  vt_shape_str(weight, sw, sizeof sw);
  if (stride < 1 || dilation < 1 || groups < 1 || pad_left < 0 || pad_right < 0)
    return fail(ctx, op,
                "stride %d, dilation %d, groups %d must be >= 1 and padding "
                "%d/%d >= 0 (input %s)",
                stride, dilation, groups, pad_left, pad_right, sx);
  int64_t cout = weight->shape[0], k = weight->shape[2];
  if (x->shape[1] % groups || cout % groups || weight->shape[1] != x->shape[1] / groups)
    return fail(ctx, op,
                "input %s and weight %s do not match with %d groups "
                "(weight must be [Cout, Cin / groups, K], both divisible)",
                sx, sw, groups);
  int64_t span = (int64_t)dilation * (k - 1) + 1, lp = x->shape[2] + pad_left + pad_right;
  if (lp < span)
    return fail(ctx, op,
                "input %s padded to %lld is shorter than the kernel span %lld "
                "of weight %s",
                sx, (long long)lp, (long long)span, sw);
  *g = geom_1d(x->shape[0], groups, x->shape[1], x->shape[2], cout, (lp - span) / stride + 1, k,
               stride, pad_left, dilation);
  return true;
}

vt_tensor *vt_conv1d_pad(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, int stride,
                         int pad_left, int pad_right, int dilation, int groups) {
  vt_conv_geom g;
  if (!conv1d_geom(ctx, "conv1d", x, weight, bias, stride, pad_left, pad_right, dilation, groups,
                   &g))
    return &ctx->err_tensor;
  int64_t shape[3] = {g.n, g.cout, g.ow};
  return conv_run(ctx, "conv1d", x, weight, bias, &g, false, 3, shape);
}

vt_tensor *vt_conv1d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, int stride,
                     int padding, int dilation, int groups) {
  return vt_conv1d_pad(ctx, x, weight, bias, stride, padding, padding, dilation, groups);
}

vt_tensor *vt_conv2d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, int stride_h,
                     int stride_w, int pad_h, int pad_w) {
  const char *op = "conv2d";
  VT_OP_INPUTS(ctx, op, x, weight);
  if (!conv_check(ctx, op, x, weight, bias, 4, weight->shape[0])) return &ctx->err_tensor;
  char sx[96], sw[96];
  vt_shape_str(x, sx, sizeof sx);
  vt_shape_str(weight, sw, sizeof sw);
  if (stride_h < 1 || stride_w < 1 || pad_h < 0 || pad_w < 0)
    return vt_ctx_fail(ctx, op, "strides %d, %d must be >= 1 and padding %d, %d >= 0 (input %s)",
                       stride_h, stride_w, pad_h, pad_w, sx);
  if (weight->shape[1] != x->shape[1])
    return vt_ctx_fail(ctx, op, "input %s has %lld channels, weight %s expects %lld", sx,
                       (long long)x->shape[1], sw, (long long)weight->shape[1]);
  int64_t hp = x->shape[2] + 2 * pad_h, wp = x->shape[3] + 2 * pad_w;
  if (hp < weight->shape[2] || wp < weight->shape[3])
    return vt_ctx_fail(ctx, op, "input %s padded to %lldx%lld is smaller than weight %s", sx,
                       (long long)hp, (long long)wp, sw);
  vt_conv_geom g = {.n = x->shape[0],
                    .groups = 1,
                    .cin = x->shape[1],
                    .h = x->shape[2],
                    .w = x->shape[3],
                    .cout = weight->shape[0],
                    .oh = (hp - weight->shape[2]) / stride_h + 1,
                    .ow = (wp - weight->shape[3]) / stride_w + 1,
                    .kh = weight->shape[2],
                    .kw = weight->shape[3],
                    .sh = stride_h,
                    .sw = stride_w,
                    .ph = pad_h,
                    .pw = pad_w,
                    .dh = 1,
                    .dw = 1};
  int64_t shape[4] = {g.n, g.cout, g.oh, g.ow};
  return conv_run(ctx, op, x, weight, bias, &g, false, 4, shape);
}

/* Checks a conv_transpose1d's arguments and describes in *g the conv it transposes. */
static bool convt_geom(vt_ctx *ctx, const char *op, vt_tensor *x, vt_tensor *weight,
                       vt_tensor *bias, int stride, int padding, int output_padding,
                       vt_conv_geom *g) {
  if (!vt_check_inputs(ctx, op, 2, (vt_tensor *[]){x, weight}) ||
      !conv_check(ctx, op, x, weight, bias, 3, weight->shape[1]))
    return false;
  char sx[96], sw[96];
  vt_shape_str(x, sx, sizeof sx);
  vt_shape_str(weight, sw, sizeof sw);
  if (stride < 1 || padding < 0 || output_padding < 0 || output_padding >= stride)
    return fail(ctx, op,
                "stride %d must be >= 1, padding %d >= 0 and output_padding %d "
                "in [0, stride) (input %s)",
                stride, padding, output_padding, sx);
  if (weight->shape[0] != x->shape[1])
    return fail(ctx, op,
                "input %s has %lld channels, weight %s [Cin, Cout, K] expects "
                "%lld",
                sx, (long long)x->shape[1], sw, (long long)weight->shape[0]);
  int64_t k = weight->shape[2];
  int64_t lout = (x->shape[2] - 1) * stride - 2 * (int64_t)padding + k + output_padding;
  if (lout <= 0)
    return fail(ctx, op, "input %s and weight %s give an empty output (length %lld)", sx, sw,
                (long long)lout);
  /* The convolution this transposes: input [N, Cout, lout], output [N, Cin, L]. */
  *g = geom_1d(x->shape[0], 1, weight->shape[1], lout, x->shape[1], x->shape[2], k, stride, padding,
               1);
  return true;
}

vt_tensor *vt_conv_transpose1d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                               int stride, int padding, int output_padding) {
  vt_conv_geom g;
  if (!convt_geom(ctx, "conv_transpose1d", x, weight, bias, stride, padding, output_padding, &g))
    return &ctx->err_tensor;
  int64_t shape[3] = {g.n, g.cin, g.w};
  return conv_run(ctx, "conv_transpose1d", x, weight, bias, &g, true, 3, shape);
}

/* ---- no-tape fusion ---- */

/* The fused kernel for y = res + act_out(conv(act_in(x)) + bias) when nothing records a tape,
 * the backend has one and takes g; NULL otherwise (nothing allocated). */
static vt_tensor *fused_try(vt_ctx *ctx, const char *op, vt_tensor *x, vt_tensor *w, vt_tensor *b,
                            const vt_conv_geom *g, bool transposed, const vt_conv_fusion *f) {
  const struct vt_conv_kernels *k = ctx->be->conv;
  vt_tensor *res = f->res;
  int64_t shape[3] = {g->n, transposed ? g->cin : g->cout, transposed ? g->w : g->ow};
  bool tape = ctx->grad_enabled && (x->requires_grad || w->requires_grad ||
                                    (b && b->requires_grad) || (res && res->requires_grad));
  if (tape || !k->conv1d_fused || ctx->gemm_dtype == VT_BF16) return NULL;
  if (res && (res->dtype != VT_F32 || res->ndim != 3 || res->device.type != ctx->device.type ||
              memcmp(res->shape, shape, sizeof shape)))
    return NULL; /* the composition's vt_add broadcasts or reports it */
  vt_arena_mark dm = vt_arena_get_mark(&ctx->data), mm = vt_arena_get_mark(&ctx->meta);
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, 3, shape);
  if (!out) return &ctx->err_tensor;
  vt_conv_fuse kf = {.bias = b ? b->data : NULL,
                     .res = res ? res->data : NULL,
                     .in_act = f->in_act,
                     .out_act = f->out_act,
                     .in_slope = f->in_slope,
                     .out_slope = f->out_slope};
  if (k->conv1d_fused(ctx->be, g, transposed, x->data, w->data, &kf, out->data)) return out;
  vt_arena_rewind(&ctx->data, dm);
  vt_arena_rewind(&ctx->meta, mm);
  return NULL;
}

static vt_tensor *fused_epilogue(vt_ctx *ctx, vt_tensor *y, const vt_conv_fusion *f) {
  if (f->out_act) y = vt_leaky_relu(ctx, y, f->out_slope);
  return f->res ? vt_add(ctx, y, f->res) : y;
}

vt_tensor *vt_conv1d_fused(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                           int stride, int pad_left, int pad_right, int dilation, int groups,
                           const vt_conv_fusion *f) {
  vt_conv_geom g;
  if (!conv1d_geom(ctx, "conv1d", x, weight, bias, stride, pad_left, pad_right, dilation, groups,
                   &g))
    return &ctx->err_tensor;
  vt_tensor *y = fused_try(ctx, "conv1d", x, weight, bias, &g, false, f);
  if (y) return y;
  if (f->in_act) x = vt_leaky_relu(ctx, x, f->in_slope);
  y = vt_conv1d_pad(ctx, x, weight, bias, stride, pad_left, pad_right, dilation, groups);
  return fused_epilogue(ctx, y, f);
}

vt_tensor *vt_conv_transpose1d_fused(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                                     int stride, int padding, int output_padding,
                                     const vt_conv_fusion *f) {
  vt_conv_geom g;
  if (!convt_geom(ctx, "conv_transpose1d", x, weight, bias, stride, padding, output_padding, &g))
    return &ctx->err_tensor;
  vt_tensor *y = fused_try(ctx, "conv_transpose1d", x, weight, bias, &g, true, f);
  if (y) return y;
  if (f->in_act) x = vt_leaky_relu(ctx, x, f->in_slope);
  y = vt_conv_transpose1d(ctx, x, weight, bias, stride, padding, output_padding);
  return fused_epilogue(ctx, y, f);
}

/* ---- pixel shuffle ---- */

/* out viewed as [N * A/f, B/f, f, f, C] (contiguous) reads x [N, A, B, C] with these strides. */
static void shuffle_layout(const vt_tensor *x, int64_t f, int64_t *shape, int64_t *xs,
                           int64_t *os) {
  int64_t b = x->shape[2], c = x->shape[3];
  shape[0] = x->shape[0] * (x->shape[1] / f);
  shape[1] = b / f;
  shape[2] = f;
  shape[3] = f;
  shape[4] = c;
  xs[0] = f * b * c; /* n and a/f merge: x offset n A B C + f a B C = (n A/f + a) f B C */
  xs[1] = f * c;
  xs[2] = b * c;
  xs[3] = c;
  xs[4] = 1;
  vt_contiguous_strides(5, shape, os);
}

static void pixel_shuffle_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  int64_t shape[5], xs[5], os[5];
  shuffle_layout(x, n->i[0], shape, xs, os);
  ctx->be->strided_copy(ctx->be, 5, shape, n->out->grad, os, dx, xs, sizeof(float), true);
}

vt_tensor *vt_pixel_shuffle(vt_ctx *ctx, vt_tensor *x, int factor) {
  const char *op = "pixel_shuffle";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_check_dtype(ctx, op, x, VT_F32)) return &ctx->err_tensor;
  if (x->ndim != 4 || factor < 1 || x->shape[1] % factor || x->shape[2] % factor) {
    char sx[96];
    return vt_ctx_fail(ctx, op, "x must be [N, A, B, C] with A and B divisible by %d, got %s",
                       factor, vt_shape_str(x, sx, sizeof sx));
  }
  int64_t f = factor;
  int64_t oshape[4] = {x->shape[0], x->shape[1] / f, x->shape[2] / f, x->shape[3] * f * f};
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, 4, oshape);
  if (!out) return &ctx->err_tensor;
  int64_t shape[5], xs[5], os[5];
  shuffle_layout(x, f, shape, xs, os);
  ctx->be->strided_copy(ctx->be, 5, shape, x->data, xs, out->data, os, sizeof(float), false);
  vt_node *n = vt_record(ctx, op, pixel_shuffle_backward, out, 1, &x);
  if (n) n->i[0] = f;
  return out;
}
