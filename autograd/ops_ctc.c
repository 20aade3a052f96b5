/* CTC loss: checks of lengths and targets, the log-space forward-backward kernel (which also
 * yields d nll / d log_probs per sample when a gradient is needed) and the reductions. */
#include "autograd/ops_loss.h"
#include "autograd/ops_loss_impl.h"

typedef struct {
  int64_t B, per_sample; /* T * C */
  float *grad, *factor;
} ctc_saved;

static void ctc_backward(vt_ctx *ctx, vt_node *n) {
  ctc_saved *s = n->extra;
  float *dlp = vt_grad(ctx, n->in[0]);
  if (!dlp) return;
  ctx->be->loss->scale_rows_acc(ctx->be, s->B, s->per_sample, s->factor, n->out->grad, s->grad,
                                dlp);
}

static bool lengths_ok(vt_ctx *ctx, const char *op, const vt_tensor *t, int64_t B,
                       const char *what) {
  if (t->dtype != VT_I32 || t->ndim != 1 || t->shape[0] != B) {
    char s[96];
    vt_ctx_fail(ctx, op, "%s must be i32 [%lld], got %s", what, (long long)B,
                vt_shape_str(t, s, sizeof s));
    return false;
  }
  return true;
}

vt_tensor *vt_ctc_loss(vt_ctx *ctx, vt_tensor *log_probs, vt_tensor *targets,
                       vt_tensor *input_lengths, vt_tensor *target_lengths,
                       const vt_ctc_opts *opts) {
  static const char *op = "ctc_loss";
  VT_OP_INPUTS(ctx, op, log_probs, targets, input_lengths, target_lengths);
  vt_ctc_opts o = opts ? *opts : (vt_ctc_opts){0};
  const struct vt_loss_kernels *k = vt_loss_family(ctx, op);
  if (!k || !vt_check_dtype(ctx, op, log_probs, VT_F32) ||
      !vt_check_dtype(ctx, op, targets, VT_I32))
    return &ctx->err_tensor;
  char s1[96], s2[96];
  vt_shape_str(log_probs, s1, sizeof s1);
  vt_shape_str(targets, s2, sizeof s2);
  if (log_probs->ndim != 3 || targets->ndim != 2 || targets->shape[0] != log_probs->shape[0])
    return vt_ctx_fail(ctx, op,
                       "log_probs %s and targets %s do not fit (need [B, T, C] and"
                       " [B, S])",
                       s1, s2);
  const int64_t B = log_probs->shape[0], T = log_probs->shape[1], C = log_probs->shape[2];
  const int64_t S = targets->shape[1];
  if (o.blank < 0 || o.blank >= C)
    return vt_ctx_fail(ctx, op, "blank %d is not a class of log_probs %s", o.blank, s1);
  if (!lengths_ok(ctx, op, input_lengths, B, "input_lengths") ||
      !lengths_ok(ctx, op, target_lengths, B, "target_lengths"))
    return &ctx->err_tensor;
  int32_t *il = vt_loss_host_i32(ctx, op, input_lengths);
  int32_t *tl = vt_loss_host_i32(ctx, op, target_lengths);
  int32_t *th = vt_loss_host_i32(ctx, op, targets);
  if (!il || !tl || !th) return &ctx->err_tensor;
  for (int64_t b = 0; b < B; b++) {
    if (il[b] < 0 || il[b] > T || tl[b] < 0 || tl[b] > S)
      return vt_ctx_fail(ctx, op,
                         "sample %lld: input length %d must be in [0, %lld] and target"
                         " length %d in [0, %lld] (log_probs %s, targets %s)",
                         (long long)b, il[b], (long long)T, tl[b], (long long)S, s1, s2);
    for (int64_t u = 0; u < tl[b]; u++) {
      int32_t y = th[b * S + u];
      if (y < 0 || y >= C || y == o.blank)
        return vt_ctx_fail(ctx, op,
                           "sample %lld: target %d at %lld is not a non-blank class"
                           " (blank %d, %lld classes)",
                           (long long)b, y, (long long)u, o.blank, (long long)C);
    }
  }
  bool want_grad = vt_grad_enabled(ctx) && log_probs->requires_grad;
  float *nll = vt_arena_data(ctx, op, sizeof(float) * (size_t)(2 * B + 1));
  float *grad =
      want_grad && nll ? vt_arena_data(ctx, op, sizeof(float) * (size_t)(B * T * C) + 1) : NULL;
  void *work = nll ? vt_arena_data(ctx, op, k->ctc_workspace(ctx->be, B, T, S)) : NULL;
  vt_tensor *out = work && (grad || !want_grad) ? vt_loss_scalar(ctx, op) : NULL;
  if (!out) return &ctx->err_tensor;
  float *factor = nll + B;
  k->ctc_forward(ctx->be, B, T, C, S, log_probs->data, targets->data, input_lengths->data,
                 target_lengths->data, o.blank, nll, grad, work);
  k->ctc_reduce(ctx->be, B, nll, target_lengths->data, o.reduction == VT_LOSS_MEAN, o.zero_infinity,
                factor, out->data);
  vt_node *n = vt_record(ctx, op, ctc_backward, out, 1, &log_probs);
  if (n) {
    ctc_saved *s = vt_arena_meta(ctx, op, sizeof *s);
    if (!s) return &ctx->err_tensor;
    *s = (ctc_saved){B, T * C, grad, factor};
    n->extra = s;
  }
  return out;
}
