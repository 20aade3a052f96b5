/* Cross-entropy losses (plain, class-weighted, speech-token and the chunked LM loss from
 * hidden states), L1 / MSE / VQ and cosine: checks, kernels of the loss family and the
 * backward wiring. CTC is in ops_ctc.c. */
#include "autograd/ops_loss.h"

#include <string.h>

#include "autograd/ctx_impl.h"
#include "autograd/kernels_loss.h"
#include "autograd/ops_loss_impl.h"

const struct vt_loss_kernels *vt_loss_family(vt_ctx *ctx, const char *op) {
  const struct vt_loss_kernels *k = ctx->be->loss;
  return vt_need_kernels(ctx, op, VT_FAMILY_LOSS, k != NULL) ? k : NULL;
}

int32_t *vt_loss_host_i32(vt_ctx *ctx, const char *op, const vt_tensor *t) {
  size_t bytes = (size_t)vt_numel(t) * sizeof(int32_t);
  int32_t *h = vt_arena_meta(ctx, op, bytes ? bytes : sizeof(int32_t));
  if (h && bytes) ctx->be->copy(ctx->be, h, t->data, bytes, VT_COPY_D2H);
  return h;
}

vt_tensor *vt_loss_scalar(vt_ctx *ctx, const char *op) {
  return vt_alloc_tensor(ctx, op, VT_F32, 1, (int64_t[]){1});
}

/* A target outside [0, classes) that is not the ignore index: its position, else -1. */
static int64_t bad_target(const int32_t *t, int64_t n, int64_t classes, int32_t ignore) {
  for (int64_t i = 0; i < n; i++)
    if (t[i] != ignore && (t[i] < 0 || t[i] >= classes)) return i;
  return -1;
}

/* ---- cross-entropy on logits ---- */

typedef struct {
  int64_t rows, cols;
  const int32_t *target;
  const float *class_w;
  float *lse, *denom; /* denom NULL for a sum */
  int32_t ignore;
} ce_saved;

static void ce_backward(vt_ctx *ctx, vt_node *n) {
  ce_saved *s = n->extra;
  float *dx = vt_grad(ctx, n->in[0]);
  if (!dx) return;
  ctx->be->loss->ce_backward(ctx->be, s->rows, s->cols, n->in[0]->data, s->target, s->ignore,
                             s->class_w, s->lse, n->out->grad, s->denom, dx, true);
}

vt_tensor *vt_cross_entropy(vt_ctx *ctx, vt_tensor *logits, vt_tensor *targets,
                            vt_tensor *class_weights, int32_t ignore_index,
                            vt_loss_reduction reduction) {
  static const char *op = "cross_entropy";
  VT_OP_INPUTS(ctx, op, logits, targets);
  if (class_weights) VT_OP_INPUTS(ctx, op, class_weights);
  const struct vt_loss_kernels *k = vt_loss_family(ctx, op);
  if (!k || !vt_check_dtype(ctx, op, logits, VT_F32) || !vt_check_dtype(ctx, op, targets, VT_I32))
    return &ctx->err_tensor;
  char s1[96], s2[96];
  int64_t cols = logits->ndim ? logits->shape[logits->ndim - 1] : 0;
  int64_t rows = cols ? vt_numel(logits) / cols : 0;
  if (logits->ndim < 1 || cols == 0 || vt_numel(targets) != rows)
    return vt_ctx_fail(ctx, op,
                       "logits %s and targets %s do not fit (one target per row of"
                       " the last dim)",
                       vt_shape_str(logits, s1, sizeof s1), vt_shape_str(targets, s2, sizeof s2));
  if (class_weights && (class_weights->dtype != VT_F32 || vt_numel(class_weights) != cols))
    return vt_ctx_fail(ctx, op, "class weights must be f32 [%lld] for logits %s, got %s",
                       (long long)cols, vt_shape_str(logits, s1, sizeof s1),
                       vt_shape_str(class_weights, s2, sizeof s2));
  int32_t *th = vt_loss_host_i32(ctx, op, targets);
  if (!th) return &ctx->err_tensor;
  int64_t bad = bad_target(th, rows, cols, ignore_index);
  if (bad >= 0)
    return vt_ctx_fail(ctx, op,
                       "target %d at row %lld is outside [0, %lld) and not the ignore"
                       " index %d (logits %s)",
                       th[bad], (long long)bad, (long long)cols, ignore_index,
                       vt_shape_str(logits, s1, sizeof s1));
  float *lse = vt_arena_data(ctx, op, sizeof(float) * (size_t)rows * 3 + sizeof(float));
  vt_tensor *out = lse ? vt_loss_scalar(ctx, op) : NULL;
  if (!out) return &ctx->err_tensor;
  float *nll = lse + rows, *wrow = nll + rows, *denom = wrow + rows;
  const float *w = class_weights ? class_weights->data : NULL;
  k->ce_forward(ctx->be, rows, cols, logits->data, targets->data, ignore_index, w, lse, nll, wrow);
  bool mean = reduction == VT_LOSS_MEAN;
  k->ratio_sum(ctx->be, rows, nll, mean ? wrow : NULL, out->data, denom);
  vt_node *n = vt_record(ctx, op, ce_backward, out, 1, &logits);
  if (n) {
    ce_saved *s = vt_arena_meta(ctx, op, sizeof *s);
    if (!s) return &ctx->err_tensor;
    *s = (ce_saved){rows, cols, targets->data, w, lse, mean ? denom : NULL, ignore_index};
    n->extra = s;
  }
  return out;
}

vt_tensor *vt_speech_token_ce(vt_ctx *ctx, vt_tensor *logits, vt_tensor *targets, int32_t pad) {
  return vt_cross_entropy(ctx, logits, targets, NULL, pad, VT_LOSS_SUM);
}

/* ---- chunked LM cross-entropy from hidden states ---- */

typedef struct {
  int64_t N, D, V, Nv, chunk;
  int32_t *idx, *tgt; /* device: counted rows and their targets */
  float *lse, *denom, *scratch, *hbuf;
  const void *hin; /* hbuf as the GEMMs read it: hbuf itself, or its bf16 copy (hbuf16) */
  void *hbuf16;
  /* One chunk holds every counted row: the forward's logits (scratch) and gathered rows (hbuf)
   * are still there at backward, which skips forming them again (a [Nv x V x D] GEMM). */
  bool kept;
} lmce_saved;

/* Logits of counted rows [c0, c0 + nr) into s->scratch (rows gathered into s->hbuf). */
/* Under bf16 mixed precision the GEMMs take the gathered rows' bf16 copy, the weight's store
 * copy (w is vt_gemm_operand's) and the logits' gradient converted per chunk. */
static void lmce_logits(vt_ctx *ctx, const lmce_saved *s, const float *hidden, const void *w,
                        int64_t c0, int64_t nr) {
  ctx->be->index_select(ctx->be, 1, s->N, s->D, hidden, s->idx + c0, nr, s->hbuf);
  if (s->hbuf16) ctx->be->convert(ctx->be, VT_F32, VT_BF16, nr * s->D, s->hbuf, s->hbuf16);
  ctx->be->gemm(ctx->be, ctx->gemm_dtype, false, true, nr, s->V, s->D, 1.0f, s->hin, s->D, 0, w,
                s->D, 0, 0.0f, s->scratch, s->V, 0, 1);
}

static void lmce_backward(vt_ctx *ctx, vt_node *n) {
  static const char *op = "lm_cross_entropy";
  lmce_saved *s = n->extra;
  vt_tensor *hidden = n->in[0], *weight = n->in[1];
  float *dh = NULL, *dw = NULL, *dhbuf = NULL;
  if (hidden->requires_grad &&
      (!(dh = vt_grad(ctx, hidden)) ||
       !(dhbuf = vt_arena_data(ctx, op, sizeof(float) * (size_t)(s->chunk * s->D)))))
    return;
  if (weight->requires_grad && !(dw = vt_grad(ctx, weight))) return;
  const vt_backend *be = ctx->be;
  vt_dtype in = ctx->gemm_dtype;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const void *w = vt_gemm_operand(ctx, op, weight, weight->data, vt_numel(weight));
  void *g16 = in == VT_F32 ? NULL : vt_arena_data(ctx, op, sizeof(uint16_t) * s->chunk * s->V);
  if (!w || (in != VT_F32 && !g16)) return;
  const void *g = in == VT_F32 ? (const void *)s->scratch : g16;
  for (int64_t c0 = 0; c0 < s->Nv; c0 += s->chunk) {
    int64_t nr = s->Nv - c0 < s->chunk ? s->Nv - c0 : s->chunk;
    if (!s->kept) lmce_logits(ctx, s, hidden->data, w, c0, nr);
    /* scratch: logits -> d loss / d logits, in place */
    be->loss->ce_backward(be, nr, s->V, s->scratch, s->tgt + c0, VT_IGNORE_INDEX, NULL, s->lse + c0,
                          n->out->grad, s->denom, s->scratch, false);
    if (g16) be->convert(be, VT_F32, VT_BF16, nr * s->V, s->scratch, g16);
    if (dh) {
      be->gemm(be, in, false, false, nr, s->D, s->V, 1.0f, g, s->V, 0, w, s->D, 0, 0.0f, dhbuf,
               s->D, 0, 1);
      be->index_add(be, 1, s->N, s->D, dhbuf, s->idx + c0, nr, dh);
    }
    if (dw)
      be->gemm(be, in, true, false, s->V, s->D, nr, 1.0f, g, s->V, 0, s->hin, s->D, 0, 1.0f, dw,
               s->D, 0, 1);
  }
  vt_arena_rewind(&ctx->data, mark);
}

vt_tensor *vt_lm_cross_entropy(vt_ctx *ctx, vt_tensor *hidden, vt_tensor *weight, vt_tensor *labels,
                               const vt_lm_ce_opts *opts) {
  static const char *op = "lm_cross_entropy";
  VT_OP_INPUTS_AS(ctx, op, VT_IN_GEMM, hidden, weight, labels);
  vt_lm_ce_opts o = opts ? *opts : (vt_lm_ce_opts){0};
  const struct vt_loss_kernels *k = vt_loss_family(ctx, op);
  if (!k || !vt_check_dtype(ctx, op, hidden, VT_F32) || !vt_check_dtype(ctx, op, weight, VT_F32) ||
      !vt_check_dtype(ctx, op, labels, VT_I32))
    return &ctx->err_tensor;
  char s1[96], s2[96], s3[96];
  vt_shape_str(hidden, s1, sizeof s1);
  vt_shape_str(weight, s2, sizeof s2);
  vt_shape_str(labels, s3, sizeof s3);
  bool ok = (hidden->ndim == 2 || hidden->ndim == 3) && weight->ndim == 2 &&
            weight->shape[1] == hidden->shape[hidden->ndim - 1] && labels->ndim == hidden->ndim - 1;
  for (int d = 0; ok && d < labels->ndim; d++) ok = labels->shape[d] == hidden->shape[d];
  if (!ok)
    return vt_ctx_fail(ctx, op,
                       "hidden %s, weight %s and labels %s do not fit (need hidden"
                       " [B, T, D] or [T, D], weight [V, D], labels [B, T] or [T])",
                       s1, s2, s3);
  lmce_saved s = {.D = weight->shape[1], .V = weight->shape[0]};
  int64_t T = hidden->shape[hidden->ndim - 2], B = hidden->ndim == 3 ? hidden->shape[0] : 1;
  s.N = B * T;
  const int32_t *tgt_dev = labels->data;
  if (!o.labels_shifted) {
    int32_t *t = vt_arena_data(ctx, op, sizeof(int32_t) * (size_t)(s.N ? s.N : 1));
    if (!t) return &ctx->err_tensor;
    k->shift_labels(ctx->be, B, T, labels->data, VT_IGNORE_INDEX, t);
    tgt_dev = t;
  }
  /* Only rows with a counted label get logits: find them on the host. */
  int32_t *th = vt_arena_meta(ctx, op, sizeof(int32_t) * (size_t)(2 * s.N + 1));
  if (!th) return &ctx->err_tensor;
  if (s.N) ctx->be->copy(ctx->be, th, tgt_dev, sizeof(int32_t) * (size_t)s.N, VT_COPY_D2H);
  int64_t bad = bad_target(th, s.N, s.V, VT_IGNORE_INDEX);
  if (bad >= 0)
    return vt_ctx_fail(ctx, op,
                       "label %d (target of row %lld) is outside [0, %lld) and not %d"
                       " (hidden %s, weight %s)",
                       th[bad], (long long)bad, (long long)s.V, VT_IGNORE_INDEX, s1, s2);
  int32_t *idx_h = th + s.N;
  for (int64_t i = 0; i < s.N; i++)
    if (th[i] != VT_IGNORE_INDEX) {
      idx_h[s.Nv] = (int32_t)i;
      th[s.Nv++] = th[i]; /* compacts in place: s.Nv <= i */
    }
  s.chunk = o.chunk_rows > 0 ? o.chunk_rows : ((int64_t)16 << 20) / (s.V ? s.V : 1);
  if (s.chunk < 1) s.chunk = 1;
  if (s.chunk > s.Nv) s.chunk = s.Nv ? s.Nv : 1;
  size_t nv = (size_t)(s.Nv ? s.Nv : 1);
  s.idx = vt_arena_data(ctx, op, sizeof(int32_t) * nv * 2);
  s.lse = vt_arena_data(ctx, op, sizeof(float) * (3 * nv + 1));
  s.scratch = vt_arena_data(ctx, op, sizeof(float) * (size_t)(s.chunk * s.V));
  s.hbuf = vt_arena_data(ctx, op, sizeof(float) * (size_t)(s.chunk * s.D));
  s.hin = s.hbuf;
  if (ctx->gemm_dtype != VT_F32 && s.hbuf)
    s.hin = s.hbuf16 = vt_arena_data(ctx, op, sizeof(uint16_t) * (size_t)(s.chunk * s.D));
  vt_tensor *out = s.hbuf && s.hin ? vt_loss_scalar(ctx, op) : NULL;
  if (!out || !s.idx || !s.lse || !s.scratch) return &ctx->err_tensor;
  s.tgt = s.idx + nv;
  float *nll = s.lse + nv, *wrow = nll + nv;
  s.denom = wrow + nv;
  if (s.Nv) {
    ctx->be->copy(ctx->be, s.idx, idx_h, sizeof(int32_t) * (size_t)s.Nv, VT_COPY_H2D);
    ctx->be->copy(ctx->be, s.tgt, th, sizeof(int32_t) * (size_t)s.Nv, VT_COPY_H2D);
  }
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const void *w = vt_gemm_operand(ctx, op, weight, weight->data, vt_numel(weight));
  if (!w) return &ctx->err_tensor;
  for (int64_t c0 = 0; c0 < s.Nv; c0 += s.chunk) {
    int64_t nr = s.Nv - c0 < s.chunk ? s.Nv - c0 : s.chunk;
    lmce_logits(ctx, &s, hidden->data, w, c0, nr);
    k->ce_forward(ctx->be, nr, s.V, s.scratch, s.tgt + c0, VT_IGNORE_INDEX, NULL, s.lse + c0,
                  nll + c0, wrow + c0);
  }
  vt_arena_rewind(&ctx->data, mark); /* only a converted weight lies past it */
  bool mean = o.reduction == VT_LOSS_MEAN;
  k->ratio_sum(ctx->be, s.Nv, nll, mean ? wrow : NULL, out->data, s.denom);
  if (!mean) s.denom = NULL;
  /* The tape runs once (vt_backward drops it), so backward may turn the kept logits into
   * their gradient in place. */
  s.kept = s.chunk >= s.Nv;
  vt_tensor *in[2] = {hidden, weight};
  vt_node *n = vt_record(ctx, op, lmce_backward, out, 2, in);
  if (n) {
    lmce_saved *sv = vt_arena_meta(ctx, op, sizeof *sv);
    if (!sv) return &ctx->err_tensor;
    *sv = s;
    n->extra = sv;
  }
  return out;
}

/* ---- L1, MSE, VQ ---- */

typedef struct {
  vt_dist_kind kind;
  float scale_a, scale_b;
} dist_saved;

static void dist_backward(vt_ctx *ctx, vt_node *n) {
  dist_saved *s = n->extra;
  vt_tensor *a = n->in[0], *b = n->in[1];
  float *da = NULL, *db = NULL;
  if (a->requires_grad && !(da = vt_grad(ctx, a))) return;
  if (b->requires_grad && !(db = vt_grad(ctx, b))) return;
  ctx->be->loss->dist_backward(ctx->be, s->kind, vt_numel(a), a->data, b->data, n->out->grad,
                               s->scale_a, s->scale_b, da, db);
}

/* value scale * sum f(a - b); gradients scale_a to a and scale_b to b (a stop-gradient on one
 * side is a zero scale). */
static vt_tensor *dist(vt_ctx *ctx, const char *op, vt_dist_kind kind, vt_tensor *a, vt_tensor *b,
                       float scale, float scale_a, float scale_b) {
  const struct vt_loss_kernels *k = vt_loss_family(ctx, op);
  vt_tensor *out = k ? vt_loss_scalar(ctx, op) : NULL;
  if (!out) return &ctx->err_tensor;
  k->dist_forward(ctx->be, kind, vt_numel(a), a->data, b->data, scale, out->data);
  vt_tensor *in[2] = {a, b};
  vt_node *n = vt_record(ctx, op, dist_backward, out, 2, in);
  if (n) {
    dist_saved *s = vt_arena_meta(ctx, op, sizeof *s);
    if (!s) return &ctx->err_tensor;
    *s = (dist_saved){kind, scale_a, scale_b};
    n->extra = s;
  }
  return out;
}

static bool same_f32(vt_ctx *ctx, const char *op, vt_tensor *a, vt_tensor *b) {
  if (!vt_check_dtype(ctx, op, a, VT_F32) || !vt_check_dtype(ctx, op, b, VT_F32)) return false;
  if (!vt_same_shape(a, b)) {
    char s1[96], s2[96];
    vt_ctx_fail(ctx, op, "shapes differ: %s and %s", vt_shape_str(a, s1, sizeof s1),
                vt_shape_str(b, s2, sizeof s2));
    return false;
  }
  if (vt_numel(a) == 0) {
    vt_ctx_fail(ctx, op, "empty inputs");
    return false;
  }
  return true;
}

static vt_tensor *dist_op(vt_ctx *ctx, const char *op, vt_dist_kind kind, vt_tensor *a,
                          vt_tensor *b, vt_loss_reduction reduction) {
  VT_OP_INPUTS(ctx, op, a, b);
  if (!same_f32(ctx, op, a, b)) return &ctx->err_tensor;
  float s = reduction == VT_LOSS_MEAN ? 1.0f / (float)vt_numel(a) : 1.0f;
  return dist(ctx, op, kind, a, b, s, s, s);
}

vt_tensor *vt_l1_loss(vt_ctx *ctx, vt_tensor *a, vt_tensor *b, vt_loss_reduction reduction) {
  return dist_op(ctx, "l1_loss", VT_DIST_L1, a, b, reduction);
}

vt_tensor *vt_mse_loss(vt_ctx *ctx, vt_tensor *a, vt_tensor *b, vt_loss_reduction reduction) {
  return dist_op(ctx, "mse_loss", VT_DIST_MSE, a, b, reduction);
}

vt_tensor *vt_vq_loss(vt_ctx *ctx, vt_tensor *zq, vt_tensor *x, float beta) {
  static const char *op = "vq_loss";
  VT_OP_INPUTS(ctx, op, zq, x);
  if (!same_f32(ctx, op, zq, x)) return &ctx->err_tensor;
  float inv = 1.0f / (float)vt_numel(zq);
  return dist(ctx, op, VT_DIST_MSE, zq, x, (1.0f + beta) * inv, inv, beta * inv);
}

/* ---- cosine ---- */

typedef struct {
  int64_t rows, dim;
  float *cos;
} cos_saved;

#define COS_EPS 1e-8f

static void cosine_backward(vt_ctx *ctx, vt_node *n) {
  cos_saved *s = n->extra;
  vt_tensor *a = n->in[0], *b = n->in[1];
  float *da = NULL, *db = NULL;
  if (a->requires_grad && !(da = vt_grad(ctx, a))) return;
  if (b->requires_grad && !(db = vt_grad(ctx, b))) return;
  ctx->be->loss->cosine_backward(ctx->be, s->rows, s->dim, a->data, b->data, COS_EPS,
                                 1.0f / (float)s->rows, s->cos, n->out->grad, da, db);
}

vt_tensor *vt_cosine_loss(vt_ctx *ctx, vt_tensor *a, vt_tensor *b) {
  static const char *op = "cosine_loss";
  VT_OP_INPUTS(ctx, op, a, b);
  if (!same_f32(ctx, op, a, b)) return &ctx->err_tensor;
  const struct vt_loss_kernels *k = vt_loss_family(ctx, op);
  if (!k) return &ctx->err_tensor;
  if (a->ndim < 1) return vt_ctx_fail(ctx, op, "needs at least one dim");
  int64_t dim = a->shape[a->ndim - 1], rows = vt_numel(a) / dim;
  float *cos = vt_arena_data(ctx, op, sizeof(float) * (size_t)rows);
  vt_tensor *out = cos ? vt_loss_scalar(ctx, op) : NULL;
  if (!out) return &ctx->err_tensor;
  k->cosine_forward(ctx->be, rows, dim, a->data, b->data, COS_EPS, 1.0f / (float)rows, cos,
                    out->data);
  vt_tensor *in[2] = {a, b};
  vt_node *n = vt_record(ctx, op, cosine_backward, out, 2, in);
  if (n) {
    cos_saved *s = vt_arena_meta(ctx, op, sizeof *s);
    if (!s) return &ctx->err_tensor;
    *s = (cos_saved){rows, dim, cos};
    n->extra = s;
  }
  return out;
}
