/* SwiGLU over a packed gate/up projection (vt_swiglu, ops.h): one pass forward, one backward,
 * on the backend's swiglu kernels; devices without them get the composition. Under bf16
 * mixed precision x may be the bf16 tensor vt_lowp_store made of the projection: the kernels
 * read it widened and write f32 (y, and the f32 gradient of x). */
#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

static const char *OP = "swiglu";

/* bf16 x widened into f32 scratch, for a backend without the bf16 kernels (the caller rewinds
 * the arena after the call). */
static const float *widened(vt_ctx *ctx, const vt_tensor *x) {
  float *w = vt_arena_data(ctx, OP, sizeof(float) * (size_t)vt_numel(x));
  if (w) ctx->be->convert(ctx->be, VT_BF16, VT_F32, vt_numel(x), x->data, w);
  return w;
}

static void swiglu_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  bool fresh = false;
  float *dx = vt_grad_first(ctx, x, &fresh);
  if (!dx) return;
  int64_t f = x->shape[x->ndim - 1] / 2, rows = vt_numel(x) / (2 * f);
  const vt_backend *be = ctx->be;
  if (x->dtype == VT_BF16 && be->swiglu_backward_bf16) {
    be->swiglu_backward_bf16(be, rows, f, x->data, n->out->grad, dx, !fresh);
    return;
  }
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const float *xf = x->dtype == VT_BF16 ? widened(ctx, x) : x->data;
  if (xf) be->swiglu_backward(be, rows, f, xf, n->out->grad, dx, !fresh);
  vt_arena_rewind(&ctx->data, mark);
}

vt_tensor *vt_swiglu_input(vt_ctx *ctx, vt_tensor *x) {
  const vt_backend *be = ctx->be;
  return be->swiglu_bf16 && be->swiglu_backward_bf16 ? vt_lowp_store(ctx, x) : x;
}

vt_tensor *vt_swiglu(vt_ctx *ctx, vt_tensor *x) {
  VT_OP_INPUTS(ctx, OP, x);
  bool lowp = x->dtype == VT_BF16 && ctx->gemm_dtype == VT_BF16; /* vt_lowp_store's */
  if (!lowp && !vt_check_dtype(ctx, OP, x, VT_F32)) return &ctx->err_tensor;
  int64_t last = x->ndim ? x->shape[x->ndim - 1] : 0;
  if (x->ndim < 1 || last % 2 || last == 0) {
    char s[96];
    return vt_ctx_fail(ctx, OP, "x %s must be [..., 2 f] (gate then up), an even last dim",
                       vt_shape_str(x, s, sizeof s));
  }
  int64_t f = last / 2;
  const vt_backend *be = ctx->be;
  if (!be->swiglu || !be->swiglu_backward) {
    if (lowp) x = vt_cast(ctx, x, VT_F32); /* widened for the composition */
    return vt_mul(ctx, vt_silu(ctx, vt_slice(ctx, x, -1, 0, f)), vt_slice(ctx, x, -1, f, last));
  }
  int64_t shape[VT_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
  shape[x->ndim - 1] = f;
  vt_tensor *out = vt_alloc_tensor(ctx, OP, VT_F32, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  if (lowp && be->swiglu_bf16) {
    be->swiglu_bf16(be, vt_numel(x) / last, f, x->data, out->data);
  } else {
    vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
    const float *xf = lowp ? widened(ctx, x) : x->data;
    if (!xf) return &ctx->err_tensor;
    be->swiglu(be, vt_numel(x) / last, f, xf, out->data);
    vt_arena_rewind(&ctx->data, mark);
  }
  vt_tensor *in[1] = {x};
  vt_node *n = vt_record(ctx, OP, swiglu_backward, out, 1, in);
  if (n) n->out_unread = true; /* the backward reads x and dy */
  return out;
}
