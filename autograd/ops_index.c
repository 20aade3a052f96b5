/* Gather and scatter by index along an axis, and embedding lookup. These splice image and
 * audio embeddings into text sequences. */
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

/* Checks that idx is a 1-D (or, when any_shape, any) i32 tensor with entries in [0, limit). */
static bool check_index(vt_ctx *ctx, const char *op, const vt_tensor *idx, int64_t limit,
                        bool any_shape) {
  char s[96];
  if (idx->dtype != VT_I32 || (!any_shape && idx->ndim != 1)) {
    vt_ctx_fail(ctx, op, "indices must be a %si32 tensor, got %s", any_shape ? "" : "1-D ",
                vt_shape_str(idx, s, sizeof s));
    return false;
  }
  int64_t bad = ctx->be->index_check(ctx->be, idx->data, vt_numel(idx), limit);
  if (bad >= 0) {
    int32_t v = 0;
    ctx->be->copy(ctx->be, &v, (const int32_t *)idx->data + bad, sizeof v, VT_COPY_D2H);
    vt_ctx_fail(ctx, op, "index %d at position %lld is outside [0, %lld)", v, (long long)bad,
                (long long)limit);
    return false;
  }
  return true;
}

static void index_select_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *idx = n->in[1];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  int64_t outer, len, inner;
  vt_split_axis(x, (int)n->i[0], &outer, &len, &inner);
  ctx->be->index_add(ctx->be, outer, len, inner, n->out->grad, idx->data, vt_numel(idx), dx);
}

vt_tensor *vt_index_select(vt_ctx *ctx, vt_tensor *x, int axis, vt_tensor *idx) {
  VT_OP_INPUTS(ctx, "index_select", x, idx);
  if (!vt_check_dtype(ctx, "index_select", x, VT_F32) ||
      !vt_check_axis(ctx, "index_select", x, &axis) ||
      !check_index(ctx, "index_select", idx, x->shape[axis], false))
    return &ctx->err_tensor;
  int64_t shape[VT_MAX_DIMS], outer, len, inner;
  memcpy(shape, x->shape, sizeof shape);
  shape[axis] = idx->shape[0];
  vt_tensor *out = vt_alloc_tensor(ctx, "index_select", VT_F32, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  vt_split_axis(x, axis, &outer, &len, &inner);
  ctx->be->index_select(ctx->be, outer, len, inner, x->data, idx->data, idx->shape[0], out->data);
  vt_tensor *in[2] = {x, idx};
  vt_node *n = vt_record(ctx, "index_select", index_select_backward, out, 2, in);
  if (n) n->i[0] = axis;
  return out;
}

/* Shared checks of index_copy / index_add: src must be base with axis resized to n_idx. */
static bool check_scatter(vt_ctx *ctx, const char *op, vt_tensor *base, int *axis, vt_tensor *idx,
                          vt_tensor *src) {
  if (!vt_check_dtype(ctx, op, base, VT_F32) || !vt_check_dtype(ctx, op, src, VT_F32) ||
      !vt_check_axis(ctx, op, base, axis) || !check_index(ctx, op, idx, base->shape[*axis], false))
    return false;
  bool ok = src->ndim == base->ndim;
  for (int d = 0; ok && d < base->ndim; d++)
    ok = src->shape[d] == (d == *axis ? idx->shape[0] : base->shape[d]);
  if (!ok) {
    char s1[96], s2[96];
    vt_ctx_fail(ctx, op, "source %s must match base %s except along axis %d (= %lld indices)",
                vt_shape_str(src, s1, sizeof s1), vt_shape_str(base, s2, sizeof s2), *axis,
                (long long)idx->shape[0]);
  }
  return ok;
}

static void scatter_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *base = n->in[0], *idx = n->in[1], *src = n->in[2];
  bool is_copy = n->i[1];
  int64_t outer, len, inner, ni = vt_numel(idx);
  vt_split_axis(base, (int)n->i[0], &outer, &len, &inner);
  const float *dout = n->out->grad;
  if (src->requires_grad) {
    vt_tensor *tmp = vt_alloc_tensor(ctx, "backward", VT_F32, src->ndim, src->shape);
    float *dsrc = vt_grad(ctx, src);
    if (!tmp || !dsrc) return;
    ctx->be->index_select(ctx->be, outer, len, inner, dout, idx->data, ni, tmp->data);
    ctx->be->axpy(ctx->be, vt_numel(src), 1.0f, tmp->data, dsrc);
  }
  if (base->requires_grad) {
    float *dbase = vt_grad(ctx, base);
    if (!dbase) return;
    if (is_copy) { /* overwritten rows pass no gradient to base */
      vt_tensor *tmp = vt_alloc_tensor(ctx, "backward", VT_F32, base->ndim, base->shape);
      if (!tmp) return;
      ctx->be->copy(ctx->be, tmp->data, dout, vt_nbytes(base), VT_COPY_D2D);
      ctx->be->index_zero(ctx->be, outer, len, inner, idx->data, ni, tmp->data);
      dout = tmp->data;
    }
    ctx->be->axpy(ctx->be, vt_numel(base), 1.0f, dout, dbase);
  }
}

static vt_tensor *scatter(vt_ctx *ctx, const char *op, bool is_copy, vt_tensor *base, int axis,
                          vt_tensor *idx, vt_tensor *src) {
  VT_OP_INPUTS(ctx, op, base, idx, src);
  if (!check_scatter(ctx, op, base, &axis, idx, src)) return &ctx->err_tensor;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, base->ndim, base->shape);
  if (!out) return &ctx->err_tensor;
  int64_t outer, len, inner;
  vt_split_axis(base, axis, &outer, &len, &inner);
  ctx->be->copy(ctx->be, out->data, base->data, vt_nbytes(base), VT_COPY_D2D);
  if (is_copy)
    ctx->be->index_copy(ctx->be, outer, len, inner, src->data, idx->data, vt_numel(idx), out->data);
  else
    ctx->be->index_add(ctx->be, outer, len, inner, src->data, idx->data, vt_numel(idx), out->data);
  vt_tensor *in[3] = {base, idx, src};
  vt_node *n = vt_record(ctx, op, scatter_backward, out, 3, in);
  if (n) {
    n->i[0] = axis;
    n->i[1] = is_copy;
  }
  return out;
}

vt_tensor *vt_index_copy(vt_ctx *ctx, vt_tensor *base, int axis, vt_tensor *idx, vt_tensor *src) {
  return scatter(ctx, "index_copy", true, base, axis, idx, src);
}

vt_tensor *vt_index_add(vt_ctx *ctx, vt_tensor *base, int axis, vt_tensor *idx, vt_tensor *src) {
  return scatter(ctx, "index_add", false, base, axis, idx, src);
}

static void embedding_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *w = n->in[0], *ids = n->in[1];
  float *dw = vt_grad(ctx, w);
  if (dw)
    ctx->be->index_add(ctx->be, 1, w->shape[0], w->shape[1], n->out->grad, ids->data, vt_numel(ids),
                       dw);
}

vt_tensor *vt_embedding(vt_ctx *ctx, vt_tensor *weight, vt_tensor *ids) {
  VT_OP_INPUTS(ctx, "embedding", weight, ids);
  char s[96];
  if (!vt_check_dtype(ctx, "embedding", weight, VT_F32)) return &ctx->err_tensor;
  if (weight->ndim != 2)
    return vt_ctx_fail(ctx, "embedding", "weight must be [vocab, dim], got %s",
                       vt_shape_str(weight, s, sizeof s));
  if (ids->ndim >= VT_MAX_DIMS)
    return vt_ctx_fail(ctx, "embedding", "ids %s have too many dims",
                       vt_shape_str(ids, s, sizeof s));
  if (!check_index(ctx, "embedding", ids, weight->shape[0], true)) return &ctx->err_tensor;
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, ids->shape, sizeof(int64_t) * (size_t)ids->ndim);
  shape[ids->ndim] = weight->shape[1];
  vt_tensor *out = vt_alloc_tensor(ctx, "embedding", VT_F32, ids->ndim + 1, shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->index_select(ctx->be, 1, weight->shape[0], weight->shape[1], weight->data, ids->data,
                        vt_numel(ids), out->data);
  vt_tensor *in[2] = {weight, ids};
  vt_record(ctx, "embedding", embedding_backward, out, 2, in);
  return out;
}
