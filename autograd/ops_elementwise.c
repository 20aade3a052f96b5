/* Elementwise ops: broadcasting binary arithmetic, scaling and activations. */
#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

/* Fills bc with the broadcast of a and b; false (with ctx error) when they do not broadcast. */
static bool broadcast(vt_ctx *ctx, const char *op, const vt_tensor *a, const vt_tensor *b,
                      vt_bcast *bc) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  int64_t sa[VT_MAX_DIMS], sb[VT_MAX_DIMS];
  vt_contiguous_strides(a->ndim, a->shape, sa);
  vt_contiguous_strides(b->ndim, b->shape, sb);
  bc->ndim = nd;
  for (int d = 0; d < nd; d++) {
    int da = d - (nd - a->ndim), db = d - (nd - b->ndim);
    int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
    if (na != nb && na != 1 && nb != 1) {
      char s1[96], s2[96];
      vt_ctx_fail(ctx, op, "shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                  vt_shape_str(a, s1, sizeof s1), vt_shape_str(b, s2, sizeof s2), d, (long long)na,
                  (long long)nb);
      return false;
    }
    bc->shape[d] = na > nb ? na : nb;
    bc->sa[d] = (da >= 0 && na == bc->shape[d]) ? sa[da] : 0;
    bc->sb[d] = (db >= 0 && nb == bc->shape[d]) ? sb[db] : 0;
  }
  return true;
}

static void binary_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *a = n->in[0], *b = n->in[1];
  vt_bcast bc;
  broadcast(ctx, n->op, a, b, &bc);
  vt_binary_op kind = (vt_binary_op)n->i[0];
  int64_t nout = vt_numel(n->out);
  /* a sum's unbroadcast input whose gradient is made here gets dout as a copy, not zeroing
   * plus an add (the residual stream's adds) */
  if (kind == VT_BIN_ADD && a->requires_grad && vt_numel(a) == nout) {
    bool fresh = false;
    float *g = vt_grad_first(ctx, a, &fresh);
    if (!g) return;
    if (fresh) {
      ctx->be->copy(ctx->be, g, n->out->grad, sizeof(float) * (size_t)nout, VT_COPY_D2D);
      a = NULL; /* done */
    }
  }
  if (kind == VT_BIN_ADD && b->requires_grad && vt_numel(b) == nout) {
    bool fresh = false;
    float *g = vt_grad_first(ctx, b, &fresh);
    if (!g) return;
    if (fresh) {
      ctx->be->copy(ctx->be, g, n->out->grad, sizeof(float) * (size_t)nout, VT_COPY_D2D);
      b = NULL;
    }
  }
  float *da = a && a->requires_grad ? vt_grad(ctx, a) : NULL;
  float *db = b && b->requires_grad ? vt_grad(ctx, b) : NULL;
  if (ctx->failed) return;
  a = n->in[0];
  b = n->in[1];
  if (da || db)
    ctx->be->binary_backward(ctx->be, kind, &bc, a->data, b->data, n->out->grad, da, db);
}

static vt_tensor *binary(vt_ctx *ctx, const char *op, vt_binary_op kind, vt_tensor *a,
                         vt_tensor *b) {
  VT_OP_INPUTS(ctx, op, a, b);
  if (!vt_check_dtype(ctx, op, a, VT_F32) || !vt_check_dtype(ctx, op, b, VT_F32))
    return &ctx->err_tensor;
  vt_bcast bc;
  if (!broadcast(ctx, op, a, b, &bc)) return &ctx->err_tensor;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, bc.ndim, bc.shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->binary(ctx->be, kind, &bc, a->data, b->data, out->data);
  vt_tensor *in[2] = {a, b};
  vt_node *n = vt_record(ctx, op, binary_backward, out, 2, in);
  if (n) {
    n->i[0] = kind;
    n->out_unread = true; /* binary_backward reads a, b and dout */
  }
  return out;
}

vt_tensor *vt_add(vt_ctx *ctx, vt_tensor *a, vt_tensor *b) {
  return binary(ctx, "add", VT_BIN_ADD, a, b);
}
vt_tensor *vt_sub(vt_ctx *ctx, vt_tensor *a, vt_tensor *b) {
  return binary(ctx, "sub", VT_BIN_SUB, a, b);
}
vt_tensor *vt_mul(vt_ctx *ctx, vt_tensor *a, vt_tensor *b) {
  return binary(ctx, "mul", VT_BIN_MUL, a, b);
}
vt_tensor *vt_div(vt_ctx *ctx, vt_tensor *a, vt_tensor *b) {
  return binary(ctx, "div", VT_BIN_DIV, a, b);
}

static void unary_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  ctx->be->unary_backward(ctx->be, (vt_unary_op)n->i[0], vt_numel(x), n->f[0], x->data,
                          n->out->data, n->out->grad, dx);
}

static vt_tensor *unary(vt_ctx *ctx, const char *op, vt_unary_op kind, float alpha, vt_tensor *x) {
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_check_dtype(ctx, op, x, VT_F32)) return &ctx->err_tensor;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->unary(ctx->be, kind, vt_numel(x), alpha, x->data, out->data);
  vt_node *n = vt_record(ctx, op, unary_backward, out, 1, &x);
  if (n) {
    n->i[0] = kind;
    n->f[0] = alpha;
  }
  return out;
}

vt_tensor *vt_scale(vt_ctx *ctx, vt_tensor *x, float s) {
  return unary(ctx, "scale", VT_UN_SCALE, s, x);
}
vt_tensor *vt_gelu_tanh(vt_ctx *ctx, vt_tensor *x) {
  return unary(ctx, "gelu_tanh", VT_UN_GELU_TANH, 0, x);
}
vt_tensor *vt_gelu_erf(vt_ctx *ctx, vt_tensor *x) {
  return unary(ctx, "gelu_erf", VT_UN_GELU_ERF, 0, x);
}
vt_tensor *vt_silu(vt_ctx *ctx, vt_tensor *x) { return unary(ctx, "silu", VT_UN_SILU, 0, x); }
vt_tensor *vt_relu(vt_ctx *ctx, vt_tensor *x) { return unary(ctx, "relu", VT_UN_RELU, 0, x); }
vt_tensor *vt_leaky_relu(vt_ctx *ctx, vt_tensor *x, float negative_slope) {
  return unary(ctx, "leaky_relu", VT_UN_LEAKY_RELU, negative_slope, x);
}
vt_tensor *vt_tanh(vt_ctx *ctx, vt_tensor *x) { return unary(ctx, "tanh", VT_UN_TANH, 0, x); }
vt_tensor *vt_sigmoid(vt_ctx *ctx, vt_tensor *x) {
  return unary(ctx, "sigmoid", VT_UN_SIGMOID, 0, x);
}
