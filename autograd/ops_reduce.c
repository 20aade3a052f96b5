/* Reductions (sum, mean, max over one axis or all) and softmax / log-softmax. */
#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

static void reduce_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  ctx->be->reduce_backward(ctx->be, (vt_reduce_op)n->i[0], n->i[1], n->i[2], n->i[3], n->out->grad,
                           n->saved[0] ? n->saved[0]->data : NULL, dx);
}

static vt_tensor *reduce(vt_ctx *ctx, const char *op, vt_reduce_op kind, vt_tensor *x, int axis,
                         bool keepdim) {
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_check_dtype(ctx, op, x, VT_F32)) return &ctx->err_tensor;
  int64_t outer, len, inner, shape[VT_MAX_DIMS];
  int nd;
  if (axis == VT_ALL_AXES) {
    outer = inner = 1;
    len = vt_numel(x);
    nd = 1;
    shape[0] = 1;
  } else {
    if (!vt_check_axis(ctx, op, x, &axis)) return &ctx->err_tensor;
    vt_split_axis(x, axis, &outer, &len, &inner);
    nd = 0;
    for (int d = 0; d < x->ndim; d++) {
      if (d != axis)
        shape[nd++] = x->shape[d];
      else if (keepdim)
        shape[nd++] = 1;
    }
    if (nd == 0) shape[nd++] = 1;
  }
  if (len == 0 && kind != VT_RED_SUM) {
    char s[96];
    return vt_ctx_fail(ctx, op, "cannot reduce an empty axis of %s", vt_shape_str(x, s, sizeof s));
  }
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, nd, shape);
  if (!out) return &ctx->err_tensor;
  vt_tensor *arg = NULL;
  if (kind == VT_RED_MAX) {
    arg = vt_alloc_tensor(ctx, op, VT_I32, nd, shape);
    if (!arg) return &ctx->err_tensor;
  }
  ctx->be->reduce(ctx->be, kind, outer, len, inner, x->data, out->data, arg ? arg->data : NULL);
  vt_node *n = vt_record(ctx, op, reduce_backward, out, 1, &x);
  if (n) {
    n->i[0] = kind;
    n->i[1] = outer;
    n->i[2] = len;
    n->i[3] = inner;
    n->saved[0] = arg;
  }
  return out;
}

vt_tensor *vt_sum(vt_ctx *ctx, vt_tensor *x, int axis, bool keepdim) {
  return reduce(ctx, "sum", VT_RED_SUM, x, axis, keepdim);
}
vt_tensor *vt_mean(vt_ctx *ctx, vt_tensor *x, int axis, bool keepdim) {
  return reduce(ctx, "mean", VT_RED_MEAN, x, axis, keepdim);
}
vt_tensor *vt_max(vt_ctx *ctx, vt_tensor *x, int axis, bool keepdim) {
  return reduce(ctx, "max", VT_RED_MAX, x, axis, keepdim);
}

static void softmax_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  int64_t cols = x->shape[x->ndim - 1];
  ctx->be->softmax_backward(ctx->be, n->i[0], vt_numel(x) / cols, cols, n->out->data, n->out->grad,
                            dx);
}

static vt_tensor *softmax(vt_ctx *ctx, const char *op, bool log, vt_tensor *x) {
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_check_dtype(ctx, op, x, VT_F32)) return &ctx->err_tensor;
  if (x->ndim < 1 || x->shape[x->ndim - 1] == 0) {
    char s[96];
    return vt_ctx_fail(ctx, op, "needs a non-empty last dim, got %s", vt_shape_str(x, s, sizeof s));
  }
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  int64_t cols = x->shape[x->ndim - 1];
  ctx->be->softmax(ctx->be, log, vt_numel(x) / cols, cols, x->data, out->data);
  vt_node *n = vt_record(ctx, op, softmax_backward, out, 1, &x);
  if (n) n->i[0] = log;
  return out;
}

vt_tensor *vt_softmax(vt_ctx *ctx, vt_tensor *x) { return softmax(ctx, "softmax", false, x); }
vt_tensor *vt_log_softmax(vt_ctx *ctx, vt_tensor *x) {
  return softmax(ctx, "log_softmax", true, x);
}
