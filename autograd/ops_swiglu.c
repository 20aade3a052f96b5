/* SwiGLU over a packed gate/up projection (vt_swiglu, ops.h): one pass forward, one backward,
 * on the backend's swiglu kernels; devices without them get the composition. */
#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

static const char *OP = "swiglu";

static void swiglu_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  bool fresh = false;
  float *dx = vt_grad_first(ctx, x, &fresh);
  if (!dx) return;
  int64_t f = x->shape[x->ndim - 1] / 2, rows = vt_numel(x) / (2 * f);
  ctx->be->swiglu_backward(ctx->be, rows, f, x->data, n->out->grad, dx, !fresh);
}

vt_tensor *vt_swiglu(vt_ctx *ctx, vt_tensor *x) {
  VT_OP_INPUTS(ctx, OP, x);
  if (!vt_check_dtype(ctx, OP, x, VT_F32)) return &ctx->err_tensor;
  int64_t last = x->ndim ? x->shape[x->ndim - 1] : 0;
  if (x->ndim < 1 || last % 2 || last == 0) {
    char s[96];
    return vt_ctx_fail(ctx, OP, "x %s must be [..., 2 f] (gate then up), an even last dim",
                       vt_shape_str(x, s, sizeof s));
  }
  int64_t f = last / 2;
  if (!ctx->be->swiglu || !ctx->be->swiglu_backward)
    return vt_mul(ctx, vt_silu(ctx, vt_slice(ctx, x, -1, 0, f)), vt_slice(ctx, x, -1, f, last));
  int64_t shape[VT_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
  shape[x->ndim - 1] = f;
  vt_tensor *out = vt_alloc_tensor(ctx, OP, VT_F32, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->swiglu(ctx->be, vt_numel(x) / last, f, x->data, out->data);
  vt_tensor *in[1] = {x};
  vt_record(ctx, OP, swiglu_backward, out, 1, in);
  return out;
}
