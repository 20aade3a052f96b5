/* Activation recompute; see recompute.h. */
#include "autograd/recompute.h"

#include <string.h>

#include "autograd/ctx_impl.h"

typedef struct {
  vt_segment_fn fn;
  void *user;
} segment;

static void recompute_backward(vt_ctx *ctx, vt_node *node) {
  /* copy what we need: the tape may move while the segment records onto it */
  segment seg = *(segment *)node->extra;
  int n_in = node->n_in;
  vt_tensor *in[VT_NODE_MAX_IN];
  for (int i = 0; i < n_in; i++) in[i] = node->in[i];
  float *dout = node->out->grad;
  /* input gradients must outlive the rewind below */
  for (int i = 0; i < n_in; i++)
    if (in[i]->requires_grad && !vt_grad(ctx, in[i])) return;
  vt_arena_mark data_mark = vt_arena_get_mark(&ctx->data);
  vt_arena_mark meta_mark = vt_arena_get_mark(&ctx->meta);
  int64_t first = ctx->n_nodes;
  bool prev = vt_set_grad_enabled(ctx, true);
  vt_tensor *out = seg.fn(ctx, in, n_in, seg.user);
  vt_set_grad_enabled(ctx, prev);
  if (ctx->failed) return;
  /* A tensor from outside the segment that needs a gradient must be an input or a parameter:
   * otherwise its gradient would be allocated in the region rewound below. */
  for (int64_t i = first; i < ctx->n_nodes; i++) {
    vt_node *n = &ctx->tape[i];
    for (int k = 0; k < n->n_in; k++) {
      vt_tensor *t = n->in[k];
      bool is_input = false;
      for (int j = 0; j < n_in; j++) is_input |= t == in[j];
      if (t->requires_grad && !t->is_param && !is_input &&
          !vt_arena_after_mark(&ctx->meta, meta_mark, t)) {
        char s[96];
        vt_ctx_fail(ctx, "recompute",
                    "op %s inside the segment uses a tensor %s from outside it that needs a "
                    "gradient; pass it as an input of vt_recompute",
                    n->op, vt_shape_str(t, s, sizeof s));
        return;
      }
    }
  }
  out->grad = dout;
  for (int64_t i = ctx->n_nodes - 1; i >= first && !ctx->failed; i--) {
    vt_node *n = &ctx->tape[i];
    if (n->out->grad) n->backward(ctx, n);
  }
  vt_hook_nested(ctx, first, ctx->n_nodes);
  ctx->n_nodes = first;
  vt_arena_rewind(&ctx->data, data_mark);
  vt_arena_rewind(&ctx->meta, meta_mark);
}

vt_tensor *vt_recompute(vt_ctx *ctx, vt_segment_fn fn, void *user, int n_in, vt_tensor *const *in) {
  if (ctx->failed) return &ctx->err_tensor;
  if (n_in < 0 || n_in > VT_NODE_MAX_IN)
    return vt_ctx_fail(ctx, "recompute", "%d inputs, 0 to %d supported", n_in, VT_NODE_MAX_IN);
  if (!vt_check_inputs(ctx, "recompute", n_in, in)) return &ctx->err_tensor;
  if (!ctx->grad_enabled) return fn(ctx, in, n_in, user);
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  vt_set_grad_enabled(ctx, false);
  vt_tensor *tmp = fn(ctx, in, n_in, user);
  vt_set_grad_enabled(ctx, true);
  if (ctx->failed) return &ctx->err_tensor;
  /* keep only the output: move it down over the segment's activations */
  vt_arena_rewind(&ctx->data, mark);
  vt_tensor *out = vt_alloc_tensor(ctx, "recompute", tmp->dtype, tmp->ndim, tmp->shape);
  if (!out) return &ctx->err_tensor;
  if (out->data != tmp->data)
    ctx->be->copy(ctx->be, out->data, tmp->data, vt_nbytes(tmp), VT_COPY_D2D);
  segment *seg = vt_arena_meta(ctx, "recompute", sizeof *seg);
  if (!seg) return &ctx->err_tensor;
  *seg = (segment){fn, user};
  vt_node *n = vt_record_always(ctx, "recompute", recompute_backward, out, n_in, in);
  if (n) n->extra = seg;
  return out;
}

vt_tensor *vt_recompute_args(vt_ctx *ctx, vt_segment_fn fn, const void *args, size_t args_bytes,
                             int n_in, vt_tensor *const *in) {
  if (ctx->failed) return &ctx->err_tensor;
  void *copy = vt_arena_meta(ctx, "recompute", args_bytes ? args_bytes : 1);
  if (!copy) return &ctx->err_tensor;
  if (args_bytes) memcpy(copy, args, args_bytes);
  return vt_recompute(ctx, fn, copy, n_in, in);
}

/* Whether [a, a + n) and [b, b + n) share a byte. */
static bool overlap(const void *a, const void *b, size_t n) {
  const char *x = a, *y = b;
  return x < y + n && y < x + n;
}

vt_tensor *vt_transient(vt_ctx *ctx, vt_segment_fn fn, void *user, int n_in, vt_tensor *const *in) {
  if (ctx->failed) return &ctx->err_tensor;
  vt_arena_mark data_mark = vt_arena_get_mark(&ctx->data);
  vt_arena_mark meta_mark = vt_arena_get_mark(&ctx->meta);
  int64_t nodes = ctx->n_nodes;
  vt_tensor *tmp = fn(ctx, in, n_in, user);
  /* keep everything when the tape (or the output itself) may still refer to fn's values */
  if (ctx->failed || ctx->n_nodes != nodes || tmp->requires_grad || tmp->is_param ||
      !vt_arena_after_mark(&ctx->meta, meta_mark, tmp) ||
      !vt_arena_after_mark(&ctx->data, data_mark, tmp->data))
    return tmp;
  vt_tensor t = *tmp;
  size_t nb = vt_nbytes(&t);
  /* A staging copy above everything: the output's new place may overlap its old one (the
   * arena allocates from its last block), but never both the old place and the stage. */
  void *stage = vt_arena_data(ctx, "transient", nb);
  if (!stage) return &ctx->err_tensor;
  ctx->be->copy(ctx->be, stage, t.data, nb, VT_COPY_D2D);
  vt_arena_rewind(&ctx->data, data_mark);
  vt_arena_rewind(&ctx->meta, meta_mark);
  vt_tensor *out = vt_alloc_tensor(ctx, "transient", t.dtype, t.ndim, t.shape);
  if (!out) return &ctx->err_tensor;
  if (out->data != t.data)
    ctx->be->copy(ctx->be, out->data, overlap(out->data, t.data, nb) ? stage : t.data, nb,
                  VT_COPY_D2D);
  return out;
}
