/* LayerNorm, RMSNorm, GroupNorm, BatchNorm1d, RoPE and dropout. The statistics each forward
 * computes (mean, 1/std) are saved as small tensors so the backward never recomputes them. */
#include "autograd/ops_norm.h"

#include "autograd/kernels_norm.h"
#include "autograd/ops_nn_check.h"

/* Two f32 vectors of len elements for the saved statistics; false on failure. */
static bool alloc_stats(vt_ctx *ctx, const char *op, int64_t len, vt_tensor **mean,
                        vt_tensor **rstd) {
  *mean = vt_alloc_tensor(ctx, op, VT_F32, 1, &len);
  *rstd = *mean ? vt_alloc_tensor(ctx, op, VT_F32, 1, &len) : NULL;
  return *rstd != NULL;
}

static bool check_x(vt_ctx *ctx, const char *op, vt_tensor *x, int min_ndim) {
  if (!vt_check_dtype(ctx, op, x, VT_F32)) return false;
  if (x->ndim < min_ndim || vt_numel(x) == 0) {
    char s[96];
    vt_ctx_fail(ctx, op, "needs a non-empty input of at least %d dims, got %s", min_ndim,
                vt_shape_str(x, s, sizeof s));
    return false;
  }
  return true;
}

/* ---- LayerNorm ---- */

static void layer_norm_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *w = vt_node_opt(n, 1, n->i[0], 0), *b = vt_node_opt(n, 1, n->i[0], 1);
  float *dx = vt_grad_if(ctx, x), *dw = vt_grad_if(ctx, w), *db = vt_grad_if(ctx, b);
  if (ctx->failed) return;
  ctx->be->norm->layer_norm_backward(ctx->be, n->i[1], n->i[2], x->data, w ? w->data : NULL,
                                     n->saved[0]->data, n->saved[1]->data, n->out->grad, dx, dw,
                                     db);
}

vt_tensor *vt_layer_norm(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias, float eps) {
  const char *op = "layer_norm";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM,
                      NORM_HAS(ctx, layer_norm) && NORM_HAS(ctx, layer_norm_backward)) ||
      !check_x(ctx, op, x, 1))
    return &ctx->err_tensor;
  int64_t cols = x->shape[x->ndim - 1], rows = vt_numel(x) / cols;
  if (!vt_check_vec(ctx, op, weight, cols, "weight", x) ||
      !vt_check_vec(ctx, op, bias, cols, "bias", x))
    return &ctx->err_tensor;
  vt_tensor *mean, *rstd, *out = NULL; /* the output last, as in vt_rms_norm */
  if (alloc_stats(ctx, op, rows, &mean, &rstd))
    out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  ctx->be->norm->layer_norm(ctx->be, rows, cols, eps, x->data, weight ? weight->data : NULL,
                            bias ? bias->data : NULL, out->data, mean->data, rstd->data);
  vt_tensor *in[3] = {x}, *opt[2] = {weight, bias};
  int64_t mask;
  int nin = vt_gather_inputs(in, 1, opt, 2, &mask);
  vt_node *n = vt_record(ctx, op, layer_norm_backward, out, nin, in);
  if (n) {
    n->out_unread = true; /* the backward reads x and the saved statistics */
    n->i[0] = mask;
    n->i[1] = rows;
    n->i[2] = cols;
    n->saved[0] = mean;
    n->saved[1] = rstd;
  }
  return out;
}

/* ---- RMSNorm ---- */

static void rms_norm_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *w = n->n_in > 1 ? n->in[1] : NULL;
  float *dx = vt_grad_if(ctx, x), *dw = vt_grad_if(ctx, w);
  if (ctx->failed) return;
  ctx->be->norm->rms_norm_backward(ctx->be, n->i[1], n->i[2], x->data, w ? w->data : NULL,
                                   n->saved[0]->data, n->out->grad, dx, dw);
}

vt_tensor *vt_rms_norm(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, float eps) {
  const char *op = "rms_norm";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM,
                      NORM_HAS(ctx, rms_norm) && NORM_HAS(ctx, rms_norm_backward)) ||
      !check_x(ctx, op, x, 1))
    return &ctx->err_tensor;
  int64_t cols = x->shape[x->ndim - 1], rows = vt_numel(x) / cols;
  if (!vt_check_vec(ctx, op, weight, cols, "weight", x)) return &ctx->err_tensor;
  /* the output last: vt_gemm_input can then take half its space back */
  vt_tensor *rstd = vt_alloc_tensor(ctx, op, VT_F32, 1, &rows);
  vt_tensor *out = rstd ? vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape) : NULL;
  if (!out) return &ctx->err_tensor;
  ctx->be->norm->rms_norm(ctx->be, rows, cols, eps, x->data, weight ? weight->data : NULL,
                          out->data, rstd->data);
  vt_tensor *in[2] = {x, weight};
  vt_node *n = vt_record(ctx, op, rms_norm_backward, out, weight ? 2 : 1, in);
  if (n) {
    n->out_unread = true; /* the backward reads x, the weight and rstd */
    n->i[1] = rows;
    n->i[2] = cols;
    n->saved[0] = rstd;
  }
  return out;
}

/* ---- GroupNorm ---- */

static void group_norm_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *w = vt_node_opt(n, 1, n->i[0], 0), *b = vt_node_opt(n, 1, n->i[0], 1);
  float *dx = vt_grad_if(ctx, x), *dw = vt_grad_if(ctx, w), *db = vt_grad_if(ctx, b);
  if (ctx->failed) return;
  ctx->be->norm->group_norm_backward(ctx->be, n->i[1], n->i[2], n->i[3], n->i[4], x->data,
                                     w ? w->data : NULL, n->saved[0]->data, n->saved[1]->data,
                                     n->out->grad, dx, dw, db);
}

vt_tensor *vt_group_norm(vt_ctx *ctx, vt_tensor *x, int64_t groups, vt_tensor *weight,
                         vt_tensor *bias, float eps) {
  const char *op = "group_norm";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM,
                      NORM_HAS(ctx, group_norm) && NORM_HAS(ctx, group_norm_backward)) ||
      !check_x(ctx, op, x, 2))
    return &ctx->err_tensor;
  int64_t nb = x->shape[0], c = x->shape[1], s = vt_numel(x) / (nb * c);
  if (groups <= 0 || c % groups) {
    char sx[96];
    return vt_ctx_fail(ctx, op, "%lld groups do not divide the %lld channels of %s",
                       (long long)groups, (long long)c, vt_shape_str(x, sx, sizeof sx));
  }
  if (!vt_check_vec(ctx, op, weight, c, "weight", x) || !vt_check_vec(ctx, op, bias, c, "bias", x))
    return &ctx->err_tensor;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape), *mean, *rstd;
  if (!out || !alloc_stats(ctx, op, nb * groups, &mean, &rstd)) return &ctx->err_tensor;
  ctx->be->norm->group_norm(ctx->be, nb, c, s, groups, eps, x->data, weight ? weight->data : NULL,
                            bias ? bias->data : NULL, out->data, mean->data, rstd->data);
  vt_tensor *in[3] = {x}, *opt[2] = {weight, bias};
  int64_t mask;
  int nin = vt_gather_inputs(in, 1, opt, 2, &mask);
  vt_node *n = vt_record(ctx, op, group_norm_backward, out, nin, in);
  if (n) {
    n->i[0] = mask;
    n->i[1] = nb;
    n->i[2] = c;
    n->i[3] = s;
    n->i[4] = groups;
    n->saved[0] = mean;
    n->saved[1] = rstd;
  }
  return out;
}

/* ---- BatchNorm1d ---- */

static void batch_norm_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *w = vt_node_opt(n, 1, n->i[0], 0), *b = vt_node_opt(n, 1, n->i[0], 1);
  float *dx = vt_grad_if(ctx, x), *dw = vt_grad_if(ctx, w), *db = vt_grad_if(ctx, b);
  if (ctx->failed) return;
  ctx->be->norm->batch_norm_backward(ctx->be, n->i[1], n->i[2], n->i[3], n->i[4], x->data,
                                     w ? w->data : NULL, n->saved[0]->data, n->saved[1]->data,
                                     n->out->grad, dx, dw, db);
}

vt_tensor *vt_batch_norm1d(vt_ctx *ctx, vt_tensor *x, vt_tensor *weight, vt_tensor *bias,
                           vt_tensor *running_mean, vt_tensor *running_var, bool training,
                           float momentum, float eps) {
  const char *op = "batch_norm1d";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM,
                      NORM_HAS(ctx, batch_norm) && NORM_HAS(ctx, batch_norm_backward)) ||
      !check_x(ctx, op, x, 2))
    return &ctx->err_tensor;
  char sx[96];
  if (x->ndim > 3)
    return vt_ctx_fail(ctx, op, "expects [N, C] or [N, C, L], got %s",
                       vt_shape_str(x, sx, sizeof sx));
  int64_t nb = x->shape[0], c = x->shape[1], s = x->ndim == 3 ? x->shape[2] : 1;
  if (!vt_check_vec(ctx, op, weight, c, "weight", x) ||
      !vt_check_vec(ctx, op, bias, c, "bias", x) ||
      !vt_check_vec(ctx, op, running_mean, c, "running_mean", x) ||
      !vt_check_vec(ctx, op, running_var, c, "running_var", x))
    return &ctx->err_tensor;
  if (!training && (!running_mean || !running_var))
    return vt_ctx_fail(ctx, op, "eval mode needs running_mean and running_var (input %s)",
                       vt_shape_str(x, sx, sizeof sx));
  if (training && nb * s < 2) /* as PyTorch: one value per channel has no variance */
    return vt_ctx_fail(ctx, op, "training needs more than 1 value per channel, got %s",
                       vt_shape_str(x, sx, sizeof sx));
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape), *mean, *rstd;
  if (!out || !alloc_stats(ctx, op, c, &mean, &rstd)) return &ctx->err_tensor;
  ctx->be->norm->batch_norm(
      ctx->be, nb, c, s, training, momentum, eps, x->data, weight ? weight->data : NULL,
      bias ? bias->data : NULL, running_mean ? running_mean->data : NULL,
      running_var ? running_var->data : NULL, out->data, mean->data, rstd->data);
  vt_tensor *in[3] = {x}, *opt[2] = {weight, bias};
  int64_t mask;
  int nin = vt_gather_inputs(in, 1, opt, 2, &mask);
  vt_node *n = vt_record(ctx, op, batch_norm_backward, out, nin, in);
  if (n) {
    n->i[0] = mask;
    n->i[1] = nb;
    n->i[2] = c;
    n->i[3] = s;
    n->i[4] = training;
    n->saved[0] = mean;
    n->saved[1] = rstd;
  }
  return out;
}

/* ---- RoPE ---- */

#define ROPE_MAX_HEAD_DIM 1024 /* the CPU kernel keeps cos/sin of one position on its stack */

static void rope_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0], *pos = n->in[1];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  ctx->be->norm->rope(ctx->be, n->i[0], n->i[1], n->i[2], n->i[3], n->i[4], n->f[0], pos->data,
                      n->i[5], n->out->grad, dx, true);
}

vt_tensor *vt_rope(vt_ctx *ctx, vt_tensor *x, vt_tensor *pos, float theta, vt_rope_layout layout) {
  const char *op = "rope";
  VT_OP_INPUTS(ctx, op, x, pos);
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM, NORM_HAS(ctx, rope)) ||
      !vt_check_dtype(ctx, op, x, VT_F32) || !vt_check_dtype(ctx, op, pos, VT_I32))
    return &ctx->err_tensor;
  char sx[96], sp[96];
  if (x->ndim != 4 || x->shape[3] % 2 || x->shape[3] > ROPE_MAX_HEAD_DIM)
    return vt_ctx_fail(ctx, op, "x must be 4-D with an even head dim <= %d, got %s",
                       ROPE_MAX_HEAD_DIM, vt_shape_str(x, sx, sizeof sx));
  bool bthd = layout == VT_ROPE_BTHD;
  int64_t b = x->shape[0], t = x->shape[bthd ? 1 : 2], h = x->shape[bthd ? 2 : 1];
  int64_t d = x->shape[3];
  bool shared = pos->ndim == 1 && pos->shape[0] == t;
  bool per_batch = pos->ndim == 2 && pos->shape[0] == b && pos->shape[1] == t;
  if (!shared && !per_batch)
    return vt_ctx_fail(ctx, op, "positions must be i32 [%lld] or [%lld, %lld] for x %s, got %s",
                       (long long)t, (long long)b, (long long)t, vt_shape_str(x, sx, sizeof sx),
                       vt_shape_str(pos, sp, sizeof sp));
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  int64_t ho = bthd ? 1 : h, hi = bthd ? h : 1, pstride = shared ? 0 : t;
  ctx->be->norm->rope(ctx->be, b, ho, t, hi, d, theta, pos->data, pstride, x->data, out->data,
                      false);
  vt_tensor *in[2] = {x, pos};
  vt_node *n = vt_record(ctx, op, rope_backward, out, 2, in);
  if (n) {
    n->i[0] = b;
    n->i[1] = ho;
    n->i[2] = t;
    n->i[3] = hi;
    n->i[4] = d;
    n->i[5] = pstride;
    n->f[0] = theta;
  }
  return out;
}

/* ---- dropout ---- */

static void dropout_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *x = n->in[0];
  float *dx = vt_grad(ctx, x);
  if (!dx) return;
  ctx->be->norm->dropout_backward(ctx->be, vt_numel(x), n->f[0], (uint64_t)n->i[0],
                                  (uint64_t)n->i[1], n->out->grad, dx);
}

vt_tensor *vt_dropout_seeded(vt_ctx *ctx, vt_tensor *x, float p, bool training, uint64_t seed,
                             uint64_t offset) {
  const char *op = "dropout";
  VT_OP_INPUTS(ctx, op, x);
  if (!vt_check_dtype(ctx, op, x, VT_F32)) return &ctx->err_tensor;
  if (!(p >= 0.0f && p <= 1.0f)) {
    char sx[96];
    return vt_ctx_fail(ctx, op, "probability %g is outside [0, 1] (input %s)", (double)p,
                       vt_shape_str(x, sx, sizeof sx));
  }
  if (!training || p == 0.0f) return x;
  if (!vt_have_kernel(ctx, op, VT_FAMILY_NORM,
                      NORM_HAS(ctx, dropout) && NORM_HAS(ctx, dropout_backward)))
    return &ctx->err_tensor;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_F32, x->ndim, x->shape);
  if (!out) return &ctx->err_tensor;
  if (p == 1.0f) { /* every element dropped, as torch: zeros (and 1/(1-p) is infinite) */
    ctx->be->fill(ctx->be, out->data, vt_numel(out), 0.0f);
    return out; /* constant: nothing to record */
  }
  ctx->be->norm->dropout(ctx->be, vt_numel(x), p, seed, offset, x->data, out->data);
  vt_node *n = vt_record(ctx, op, dropout_backward, out, 1, &x);
  if (n) {
    n->i[0] = (int64_t)seed;
    n->i[1] = (int64_t)offset;
    n->f[0] = p;
  }
  return out;
}

vt_tensor *vt_dropout(vt_ctx *ctx, vt_tensor *x, float p, bool training, vt_rng *rng) {
  if (training && p > 0.0f && !ctx->failed && !rng)
    return vt_ctx_fail(ctx, "dropout", "training with p = %g needs an rng", (double)p);
  uint64_t seed = training && p > 0.0f && !ctx->failed ? vt_rng_next(rng) : 0;
  return vt_dropout_seeded(ctx, x, p, training, seed, 0);
}
