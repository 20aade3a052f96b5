/* Shape ops: reshape (a view), permute, concat, slice, cast and detach. */
#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

static void reshape_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  if (!x->grad && !x->is_param) {
    /* the view's gradient has the same layout and no reader left (the tape runs in reverse):
     * it becomes x's, with no copy and no zeroing */
    x->grad = n->out->grad;
    return;
  }
  float *dx = vt_grad(ctx, x);
  if (dx) ctx->be->axpy(ctx->be, vt_numel(n->out), 1.0f, n->out->grad, dx);
}

vt_tensor *vt_reshape(vt_ctx *ctx, vt_tensor *x, int ndim, const int64_t *shape) {
  VT_OP_INPUTS_AS(ctx, "reshape", VT_IN_VIEW, x);
  char s[96];
  if (ndim < 1 || ndim > VT_MAX_DIMS)
    return vt_ctx_fail(ctx, "reshape", "%d dims requested for %s (1 to %d supported)", ndim,
                       vt_shape_str(x, s, sizeof s), VT_MAX_DIMS);
  int64_t sh[VT_MAX_DIMS], known = 1;
  int infer = -1;
  for (int d = 0; d < ndim; d++) {
    sh[d] = shape[d];
    if (shape[d] == -1 && infer < 0)
      infer = d;
    else if (shape[d] < 0)
      return vt_ctx_fail(ctx, "reshape", "invalid size %lld in dim %d", (long long)shape[d], d);
    else
      known *= shape[d];
  }
  if (infer >= 0) sh[infer] = known ? vt_numel(x) / known : 0;
  if (vt_shape_numel(ndim, sh) != vt_numel(x))
    return vt_ctx_fail(ctx, "reshape", "cannot view %s (%lld elements) with %lld elements",
                       vt_shape_str(x, s, sizeof s), (long long)vt_numel(x),
                       (long long)vt_shape_numel(ndim, sh));
  vt_tensor *out = vt_arena_meta(ctx, "reshape", sizeof *out);
  if (!out) return &ctx->err_tensor;
  *out = *x;
  out->ndim = ndim;
  memcpy(out->shape, sh, sizeof(int64_t) * (size_t)ndim);
  out->grad = NULL;
  out->requires_grad = false;
  out->is_param = false;
  out->name = NULL;
  vt_record(ctx, "reshape", reshape_backward, out, 1, &x);
  return out;
}

/* Strides with which permute reads x: the source stride of output dim i is x's stride of
 * dim perm[i]. */
static void permuted_strides(const vt_tensor *x, const int64_t *perm, int64_t *src) {
  int64_t xs[VT_MAX_DIMS];
  vt_contiguous_strides(x->ndim, x->shape, xs);
  for (int i = 0; i < x->ndim; i++) src[i] = xs[perm[i]];
}

static void permute_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *out = n->out;
  bool fresh;
  float *dx = vt_grad_first(ctx, x, &fresh); /* the copy covers all of x: no zeroing first */
  if (!dx) return;
  int64_t src[VT_MAX_DIMS], dst[VT_MAX_DIMS];
  permuted_strides(x, n->i, dst);
  vt_contiguous_strides(out->ndim, out->shape, src);
  ctx->be->strided_copy(ctx->be, out->ndim, out->shape, out->grad, src, dx, dst, sizeof(float),
                        !fresh);
}

vt_tensor *vt_permute(vt_ctx *ctx, vt_tensor *x, const int *perm) {
  VT_OP_INPUTS(ctx, "permute", x);
  bool seen[VT_MAX_DIMS] = {false};
  int64_t shape[VT_MAX_DIMS], p64[VT_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) {
    if (perm[i] < 0 || perm[i] >= x->ndim || seen[perm[i]]) {
      char s[96];
      return vt_ctx_fail(ctx, "permute", "entry %d (%d) of the permutation is invalid for %s", i,
                         perm[i], vt_shape_str(x, s, sizeof s));
    }
    seen[perm[i]] = true;
    shape[i] = x->shape[perm[i]];
    p64[i] = perm[i];
  }
  vt_tensor *out = vt_alloc_tensor(ctx, "permute", x->dtype, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  int64_t src[VT_MAX_DIMS], dst[VT_MAX_DIMS];
  permuted_strides(x, p64, src);
  vt_contiguous_strides(out->ndim, out->shape, dst);
  ctx->be->strided_copy(ctx->be, x->ndim, shape, x->data, src, out->data, dst,
                        vt_dtype_size(x->dtype), false);
  vt_node *n = vt_record(ctx, "permute", permute_backward, out, 1, &x);
  if (n) {
    memcpy(n->i, p64, sizeof(int64_t) * (size_t)x->ndim);
    n->out_unread = true; /* the backward moves dout only */
  }
  return out;
}

vt_tensor *vt_transpose(vt_ctx *ctx, vt_tensor *x, int d0, int d1) {
  VT_OP_INPUTS(ctx, "transpose", x);
  if (!vt_check_axis(ctx, "transpose", x, &d0) || !vt_check_axis(ctx, "transpose", x, &d1))
    return &ctx->err_tensor;
  int perm[VT_MAX_DIMS];
  for (int i = 0; i < x->ndim; i++) perm[i] = i;
  perm[d0] = d1;
  perm[d1] = d0;
  return vt_permute(ctx, x, perm);
}

/* Copies a [outer, len, inner] block between x and a wider tensor whose axis has `total`
 * entries, starting at `offset`; to_wide selects the direction. */
static void block_copy(vt_ctx *ctx, int64_t outer, int64_t len, int64_t inner, int64_t total,
                       int64_t offset, const void *src, void *dst, size_t esize, bool to_wide,
                       bool accumulate) {
  /* each outer index moves one contiguous run of len * inner elements: 2 dims, so the kernel
   * copies runs, not single elements (a last-axis slice has inner 1) */
  int64_t shape[2] = {outer, len * inner};
  int64_t narrow[2] = {len * inner, 1}, wide[2] = {total * inner, 1};
  if (to_wide)
    ctx->be->strided_copy(ctx->be, 2, shape, src, narrow,
                          (char *)dst + offset * inner * (int64_t)esize, wide, esize, accumulate);
  else
    ctx->be->strided_copy(ctx->be, 2, shape, (const char *)src + offset * inner * (int64_t)esize,
                          wide, dst, narrow, esize, accumulate);
}

static void concat_backward(vt_ctx *ctx, vt_node *n) {
  int axis = (int)n->i[0];
  int64_t offset = 0, total = n->out->shape[axis];
  for (int k = 0; k < n->n_in; k++) {
    vt_tensor *x = n->in[k];
    int64_t outer, len, inner;
    vt_split_axis(x, axis, &outer, &len, &inner);
    if (x->requires_grad) {
      float *dx = vt_grad(ctx, x);
      if (!dx) return;
      block_copy(ctx, outer, len, inner, total, offset, n->out->grad, dx, sizeof(float), false,
                 true);
    }
    offset += len;
  }
}

vt_tensor *vt_concat(vt_ctx *ctx, vt_tensor *const *xs, int n, int axis) {
  if (ctx->failed) return &ctx->err_tensor;
  if (n < 1 || n > VT_NODE_MAX_IN)
    return vt_ctx_fail(ctx, "concat", "%d inputs given, 1 to %d supported", n, VT_NODE_MAX_IN);
  if (!vt_check_inputs(ctx, "concat", n, xs) || !vt_check_axis(ctx, "concat", xs[0], &axis))
    return &ctx->err_tensor;
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, xs[0]->shape, sizeof shape);
  shape[axis] = 0;
  for (int k = 0; k < n; k++) {
    bool ok = xs[k]->ndim == xs[0]->ndim && xs[k]->dtype == xs[0]->dtype;
    for (int d = 0; ok && d < xs[0]->ndim; d++)
      ok = d == axis || xs[k]->shape[d] == xs[0]->shape[d];
    if (!ok) {
      char s1[96], s2[96];
      return vt_ctx_fail(ctx, "concat", "input %d %s does not match input 0 %s outside axis %d", k,
                         vt_shape_str(xs[k], s1, sizeof s1), vt_shape_str(xs[0], s2, sizeof s2),
                         axis);
    }
    shape[axis] += xs[k]->shape[axis];
  }
  vt_tensor *out = vt_alloc_tensor(ctx, "concat", xs[0]->dtype, xs[0]->ndim, shape);
  if (!out) return &ctx->err_tensor;
  int64_t offset = 0;
  for (int k = 0; k < n; k++) {
    int64_t outer, len, inner;
    vt_split_axis(xs[k], axis, &outer, &len, &inner);
    block_copy(ctx, outer, len, inner, shape[axis], offset, xs[k]->data, out->data,
               vt_dtype_size(out->dtype), true, false);
    offset += len;
  }
  if (out->dtype == VT_F32) {
    vt_node *node = vt_record(ctx, "concat", concat_backward, out, n, xs);
    if (node) node->i[0] = axis;
  }
  return out;
}

static void slice_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  int axis = (int)n->i[0];
  int64_t outer, len, inner;
  vt_split_axis(n->out, axis, &outer, &len, &inner);
  block_copy(ctx, outer, len, inner, x->shape[axis], n->i[1], n->out->grad, dx, sizeof(float), true,
             true);
}

vt_tensor *vt_slice(vt_ctx *ctx, vt_tensor *x, int axis, int64_t start, int64_t end) {
  VT_OP_INPUTS(ctx, "slice", x);
  if (!vt_check_axis(ctx, "slice", x, &axis)) return &ctx->err_tensor;
  if (start < 0 || end < start || end > x->shape[axis]) {
    char s[96];
    return vt_ctx_fail(ctx, "slice", "range [%lld, %lld) is outside axis %d of %s",
                       (long long)start, (long long)end, axis, vt_shape_str(x, s, sizeof s));
  }
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof shape);
  shape[axis] = end - start;
  vt_tensor *out = vt_alloc_tensor(ctx, "slice", x->dtype, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  int64_t outer, len, inner;
  vt_split_axis(out, axis, &outer, &len, &inner);
  block_copy(ctx, outer, len, inner, x->shape[axis], start, x->data, out->data,
             vt_dtype_size(x->dtype), false, false);
  if (x->dtype == VT_F32) {
    vt_node *n = vt_record(ctx, "slice", slice_backward, out, 1, &x);
    if (n) {
      n->i[0] = axis;
      n->i[1] = start;
    }
  }
  return out;
}

static void cast_backward(vt_ctx *ctx, vt_node *n) { reshape_backward(ctx, n); }

vt_tensor *vt_cast(vt_ctx *ctx, vt_tensor *x, vt_dtype dtype) {
  VT_OP_INPUTS(ctx, "cast", x);
  if ((unsigned)dtype >= VT_DTYPE_COUNT)
    return vt_ctx_fail(ctx, "cast", "unknown target dtype %d", (int)dtype);
  vt_tensor *out = vt_alloc_tensor(ctx, "cast", dtype, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->convert(ctx->be, x->dtype, dtype, vt_numel(x), x->data, out->data);
  /* gradients are f32 for every float tensor (a bf16 one's is f32 too, as vt_gemm_input's) */
  if ((x->dtype == VT_F32 || x->dtype == VT_BF16) && dtype == VT_F32)
    vt_record(ctx, "cast", cast_backward, out, 1, &x);
  return out;
}

vt_tensor *vt_detach(vt_ctx *ctx, vt_tensor *x) {
  VT_OP_INPUTS(ctx, "detach", x);
  vt_tensor *out = vt_alloc_tensor(ctx, "detach", x->dtype, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->copy(ctx->be, out->data, x->data, vt_nbytes(x), VT_COPY_D2D);
  return out;
}
