/* Weight norm (the codec's convolutions) and straight-through vector quantisation (the codec's
 * quantiser). Declared in autograd/ops_norm.h; kernels in the norm family. */
#include "autograd/kernels_norm.h"
#include "autograd/ops_nn_check.h"
#include "autograd/ops_norm.h"

static void weight_norm_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *g = n->in[0], *v = n->in[1];
  float *dg = vt_grad_if(ctx, g), *dv = vt_grad_if(ctx, v);
  if (ctx->failed) return;
  ctx->be->norm->weight_norm_backward(ctx->be, n->i[0], n->i[1], g->data, v->data,
                                      n->saved[0]->data, n->out->grad, dg, dv);
}

vt_tensor *vt_weight_norm(vt_ctx *ctx, vt_tensor *g, vt_tensor *v) {
  const char *op = "weight_norm";
  VT_OP_INPUTS(ctx, op, g, v);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM,
                      NORM_HAS(ctx, weight_norm) && NORM_HAS(ctx, weight_norm_backward)) ||
      !vt_check_dtype(ctx, op, g, VT_F32) || !vt_check_dtype(ctx, op, v, VT_F32))
    return &ctx->err_tensor;
  char sg[96], sv[96];
  if (v->ndim < 1 || vt_numel(v) == 0 || g->ndim < 1 || vt_numel(g) != v->shape[0] ||
      g->shape[0] != v->shape[0])
    return vt_ctx_fail(ctx, op, "g %s must hold one value per row of v %s",
                       vt_shape_str(g, sg, sizeof sg), vt_shape_str(v, sv, sizeof sv));
  int64_t rows = v->shape[0], cols = vt_numel(v) / rows;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, v->ndim, v->shape);
  vt_tensor *norm = out ? vt_alloc_tensor(ctx, op, VT_F32, 1, &rows) : NULL;
  if (!norm) return &ctx->err_tensor;
  ctx->be->norm->weight_norm(ctx->be, rows, cols, g->data, v->data, out->data, norm->data);
  vt_tensor *in[2] = {g, v};
  vt_node *n = vt_record(ctx, op, weight_norm_backward, out, 2, in);
  if (n) {
    n->i[0] = rows;
    n->i[1] = cols;
    n->saved[0] = norm;
  }
  return out;
}

/* zq = x + sg(q - x): d zq / d x is the identity. */
static void vq_ste_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  ctx->be->axpy(ctx->be, vt_numel(x), 1.0f, n->out->grad, dx);
}

vt_tensor *vt_vq_ste(vt_ctx *ctx, vt_tensor *x, vt_tensor *codebook, vt_tensor **indices) {
  const char *op = "vq_ste";
  if (indices) *indices = &ctx->err_tensor;
  VT_OP_INPUTS(ctx, op, x, codebook);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM, NORM_HAS(ctx, vq_nearest)) ||
      !vt_check_dtype(ctx, op, x, VT_F32) || !vt_check_dtype(ctx, op, codebook, VT_F32))
    return &ctx->err_tensor;
  char sx[96], sc[96];
  if (x->ndim < 1 || codebook->ndim != 2 || x->shape[x->ndim - 1] != codebook->shape[1] ||
      codebook->shape[0] == 0)
    return vt_ctx_fail(ctx, op, "x %s must end in the codebook's dim D, codebook [K, D], got %s",
                       vt_shape_str(x, sx, sizeof sx), vt_shape_str(codebook, sc, sizeof sc));
  int64_t d = codebook->shape[1], rows = d ? vt_numel(x) / d : 0;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  vt_tensor *idx = out ? vt_alloc_tensor(ctx, op, VT_I32, x->ndim - 1, x->shape) : NULL;
  if (!idx) return &ctx->err_tensor;
  ctx->be->norm->vq_nearest(ctx->be, rows, codebook->shape[0], d, x->data, codebook->data,
                            idx->data, out->data);
  vt_record(ctx, op, vq_ste_backward, out, 1, &x);
  if (indices) *indices = idx;
  return out;
}
