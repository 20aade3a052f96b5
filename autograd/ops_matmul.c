/* Batched matmul with transposes, on the backend's GEMM (OpenBLAS sgemm on the CPU; oneDNN's
 * bf16 matmul under bf16 mixed precision). */
#include "autograd/ctx_impl.h"
#include "autograd/ops.h"

#include <string.h>

/* The geometry of one matmul call: batch of C[m,n] = op(A) op(B). */
typedef struct {
  bool ta, tb;
  int64_t batch, m, n, k;
  int64_t stride_a, stride_b, stride_c; /* 0: shared across the batch */
} mm_geom;

static bool mm_plan(vt_ctx *ctx, const vt_tensor *a, const vt_tensor *b, bool ta, bool tb,
                    mm_geom *g) {
  char s1[96], s2[96];
  if (a->ndim < 2 || b->ndim < 2) {
    vt_ctx_fail(ctx, "matmul", "both operands need at least 2 dims, got %s and %s",
                vt_shape_str(a, s1, sizeof s1), vt_shape_str(b, s2, sizeof s2));
    return false;
  }
  int64_t ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
  int64_t br = b->shape[b->ndim - 2], bcols = b->shape[b->ndim - 1];
  g->ta = ta;
  g->tb = tb;
  g->m = ta ? ac : ar;
  g->k = ta ? ar : ac;
  int64_t kb = tb ? bcols : br;
  g->n = tb ? br : bcols;
  bool batch_ok = b->ndim == 2 || b->ndim == a->ndim;
  for (int d = 0; batch_ok && b->ndim > 2 && d < a->ndim - 2; d++)
    batch_ok = a->shape[d] == b->shape[d];
  if (g->k != kb || !batch_ok) {
    vt_ctx_fail(ctx, "matmul", "cannot multiply %s%s by %s%s (inner sizes %lld and %lld)",
                vt_shape_str(a, s1, sizeof s1), ta ? "^T" : "", vt_shape_str(b, s2, sizeof s2),
                tb ? "^T" : "", (long long)g->k, (long long)kb);
    return false;
  }
  g->batch = vt_shape_numel(a->ndim - 2, a->shape);
  g->stride_a = g->m * g->k;
  g->stride_b = b->ndim == 2 ? 0 : g->k * g->n;
  g->stride_c = g->m * g->n;
  if (b->ndim == 2 && !ta && g->batch > 1) {
    /* B shared and A not transposed: fold the batch into M, one large GEMM */
    g->m *= g->batch;
    g->batch = 1;
    g->stride_a = g->stride_c = 0;
  }
  return true;
}

/* Under bf16 (vt_ctx_set_gemm_dtype) every GEMM here takes bf16 operands: the weights' store
 * copies, and activations and dC converted into the arena just for the call (rewound after,
 * so mixed precision adds no activation memory that lives past the op). */
static void matmul_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *a = n->in[0], *b = n->in[1];
  mm_geom g;
  if (!mm_plan(ctx, a, b, n->i[0], n->i[1], &g)) return;
  /* a gradient made here is written whole by its GEMM (beta 0) rather than zeroed first; not
   * when the GEMM sums a batch into it (stride 0) */
  float *dA = NULL, *dB = NULL;
  bool fa = false, fb = false;
  if (a->requires_grad && !(dA = vt_grad_first(ctx, a, &fa))) return;
  if (b->requires_grad && !(dB = vt_grad_first(ctx, b, &fb))) return;
  float beta_a = fa && (g.batch == 1 || g.stride_a) ? 0.0f : 1.0f;
  float beta_b = fb && (g.batch == 1 || g.stride_b) ? 0.0f : 1.0f;
  if (beta_a != 0.0f && fa) ctx->be->fill(ctx->be, dA, vt_numel(a), 0.0f);
  if (beta_b != 0.0f && fb) ctx->be->fill(ctx->be, dB, vt_numel(b), 0.0f);
  vt_dtype in = ctx->gemm_dtype;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const void *dC = vt_gemm_operand(ctx, "matmul", NULL, n->out->grad, vt_numel(n->out));
  const void *A = dB ? vt_gemm_operand(ctx, "matmul", a, a->data, vt_numel(a)) : NULL;
  const void *B = dA ? vt_gemm_operand(ctx, "matmul", b, b->data, vt_numel(b)) : NULL;
  if (!dC || (dB && !A) || (dA && !B)) return;
  int64_t lda = g.ta ? g.m : g.k, ldb = g.tb ? g.k : g.n;
  if (dA) {
    if (!g.ta) /* dA[m,k] = dC @ op(B)^T */
      ctx->be->gemm(ctx->be, in, false, !g.tb, g.m, g.k, g.n, 1.0f, dC, g.n, g.stride_c, B, ldb,
                    g.stride_b, beta_a, dA, lda, g.stride_a, g.batch);
    else /* dA[k,m] = op(B) @ dC^T */
      ctx->be->gemm(ctx->be, in, g.tb, true, g.k, g.m, g.n, 1.0f, B, ldb, g.stride_b, dC, g.n,
                    g.stride_c, beta_a, dA, lda, g.stride_a, g.batch);
  }
  if (dB) {
    /* A shared B receives the sum over the batch: stride 0 on dB accumulates (beta = 1). */
    if (!g.tb) /* dB[k,n] = op(A)^T @ dC */
      ctx->be->gemm(ctx->be, in, !g.ta, false, g.k, g.n, g.m, 1.0f, A, lda, g.stride_a, dC, g.n,
                    g.stride_c, beta_b, dB, ldb, g.stride_b, g.batch);
    else /* dB[n,k] = dC^T @ op(A) */
      ctx->be->gemm(ctx->be, in, true, g.ta, g.n, g.k, g.m, 1.0f, dC, g.n, g.stride_c, A, lda,
                    g.stride_a, beta_b, dB, ldb, g.stride_b, g.batch);
  }
  vt_arena_rewind(&ctx->data, mark);
}

/* f32 always; bf16 (a tensor of vt_gemm_input) only when the GEMMs take bf16. */
static bool operand_dtype_ok(vt_ctx *ctx, const vt_tensor *t) {
  if (t->dtype == VT_BF16 && ctx->gemm_dtype == VT_BF16) return true;
  return vt_check_dtype(ctx, "matmul", t, VT_F32);
}

vt_tensor *vt_matmul(vt_ctx *ctx, vt_tensor *a, vt_tensor *b, bool ta, bool tb) {
  VT_OP_INPUTS_AS(ctx, "matmul", VT_IN_GEMM, a, b);
  if (!operand_dtype_ok(ctx, a) || !operand_dtype_ok(ctx, b)) return &ctx->err_tensor;
  mm_geom g;
  if (!mm_plan(ctx, a, b, ta, tb, &g)) return &ctx->err_tensor;
  int64_t shape[VT_MAX_DIMS];
  for (int d = 0; d < a->ndim - 2; d++) shape[d] = a->shape[d];
  shape[a->ndim - 2] = ta ? a->shape[a->ndim - 1] : a->shape[a->ndim - 2];
  shape[a->ndim - 1] = g.n;
  vt_tensor *out = vt_alloc_tensor(ctx, "matmul", VT_F32, a->ndim, shape);
  if (!out) return &ctx->err_tensor;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const void *A = vt_gemm_operand(ctx, "matmul", a, a->data, vt_numel(a));
  const void *B = vt_gemm_operand(ctx, "matmul", b, b->data, vt_numel(b));
  if (!A || !B) return &ctx->err_tensor;
  ctx->be->gemm(ctx->be, ctx->gemm_dtype, ta, tb, g.m, g.n, g.k, 1.0f, A, ta ? g.m : g.k,
                g.stride_a, B, tb ? g.k : g.n, g.stride_b, 0.0f, out->data, g.n, g.stride_c,
                g.batch);
  vt_arena_rewind(&ctx->data, mark);
  vt_tensor *in[2] = {a, b};
  vt_node *n = vt_record(ctx, "matmul", matmul_backward, out, 2, in);
  if (n) {
    n->i[0] = ta;
    n->i[1] = tb;
    n->out_unread = true; /* the backward reads a, b and dC */
  }
  return out;
}

/* Whether every tape node from the top down to `stop` (exclusive) that wrote base leaves its
 * values unread in backward, and at least one did; the nodes are the tape's last ones. */
static bool producers_unread(vt_ctx *ctx, int64_t top, const vt_tensor *base) {
  int64_t i = top;
  for (; i >= 0 && ctx->tape[i].out == base; i--)
    if (!ctx->tape[i].out_unread) return false;
  return i < top;
}

/* The tensor whose data y is (y itself, or the input of the reshape view y) when the ops that
 * wrote that data are the tape's last ones (before the view) and do not read it back
 * (vt_node.out_unread); NULL otherwise. */
static vt_tensor *compactable_base(vt_ctx *ctx, vt_tensor *y) {
  int64_t top = ctx->n_nodes - 1;
  if (top < 0 || ctx->tape[top].out != y || y->is_param) return NULL;
  vt_tensor *base = y;
  if (!strcmp(ctx->tape[top].op, "reshape")) {
    base = ctx->tape[top].in[0];
    if (--top < 0 || ctx->tape[top].out != base || base->data != y->data) return NULL;
  }
  return producers_unread(ctx, top, base) ? base : NULL;
}

/* Under bf16 GEMMs: y stored in bf16 in the first half of its own buffer when it can be (see
 * compactable_base; y's data is the arena's last allocation), the rest given back to the
 * arena; y (and its view base) become bf16 tensors. Else, with `copy`, y keeps its f32 values
 * and gains the bf16 copy (y->lowp); without, y is left as it is. */
static vt_tensor *lowp_store(vt_ctx *ctx, vt_tensor *y, bool copy) {
  if (vt_ctx_failed(ctx) || ctx->gemm_dtype != VT_BF16 || y->dtype != VT_F32 || y->lowp) return y;
  int64_t n = vt_numel(y);
  size_t f32_bytes = (size_t)n * sizeof(float);
  vt_tensor *base = ctx->grad_enabled ? compactable_base(ctx, y) : NULL;
  /* y's data must be the arena's last allocation for its space to be taken back */
  vt_arena *ar = &ctx->data;
  vt_arena_mark top = vt_arena_get_mark(ar);
  const char *blk = top.block >= 0 ? ar->blocks[top.block].base : NULL;
  size_t off = blk ? (size_t)((const char *)y->data - blk) : 0;
  size_t aligned = (f32_bytes + VT_ARENA_ALIGN - 1) & ~(size_t)(VT_ARENA_ALIGN - 1);
  if (base && !(blk && (const char *)y->data >= blk && off + aligned == top.used)) base = NULL;
  if (!base && !copy) return y;
  uint16_t *h = vt_arena_data(ctx, "gemm_input", (size_t)n * sizeof(uint16_t));
  if (!h) return &ctx->err_tensor;
  ctx->be->convert(ctx->be, VT_F32, VT_BF16, n, y->data, h);
  if (!base) { /* the f32 values stay readable; GEMMs forward and backward read the copy */
    y->lowp = h;
    return y;
  }
  /* the copy moves into the first half of y's buffer, the rest goes back to the arena, and y
   * (with its view base) becomes a bf16 tensor: only the ops that take bf16 accept it */
  ctx->be->copy(ctx->be, y->data, h, (size_t)n * sizeof(uint16_t), VT_COPY_D2D);
  size_t half = ((size_t)n * sizeof(uint16_t) + VT_ARENA_ALIGN - 1) & ~(size_t)(VT_ARENA_ALIGN - 1);
  vt_arena_rewind(ar, (vt_arena_mark){top.block, off + half});
  y->dtype = VT_BF16;
  base->dtype = VT_BF16;
  return y;
}

vt_tensor *vt_gemm_input(vt_ctx *ctx, vt_tensor *y) { return lowp_store(ctx, y, true); }

vt_tensor *vt_lowp_store(vt_ctx *ctx, vt_tensor *y) { return lowp_store(ctx, y, false); }

/* The bias half of a fused linear layer: db += the column sums of dY, through the broadcast
 * backward vt_add would run on y0 + b (so the bits equal the unfused pair's). */
static void linear_bias_backward(vt_ctx *ctx, vt_node *n) {
  vt_tensor *y = n->out, *b = n->in[0];
  float *db = vt_grad(ctx, b);
  if (!db) return;
  vt_bcast bc = {.ndim = y->ndim};
  vt_contiguous_strides(y->ndim, y->shape, bc.sa);
  for (int d = 0; d < y->ndim; d++) {
    bc.shape[d] = y->shape[d];
    bc.sb[d] = d == y->ndim - 1 ? 1 : 0;
  }
  /* an add's gradient reads neither value; a bf16 y (vt_linear_lowp) passes its f32 grad */
  const float *yv = y->dtype == VT_F32 ? y->data : y->grad;
  ctx->be->binary_backward(ctx->be, VT_BIN_ADD, &bc, yv, b->data, y->grad, NULL, db);
}

/* x [.., k] by w [n, k] as one product (the batch folds into m), the bias a vector of n; x
 * and w f32, or bf16 (vt_gemm_input's) under bf16 GEMMs. */
static bool linear_fusable(vt_ctx *ctx, const vt_tensor *x, const vt_tensor *w,
                           const vt_tensor *b) {
  bool lowp = ctx->gemm_dtype == VT_BF16;
  return (x->dtype == VT_F32 || (lowp && x->dtype == VT_BF16)) &&
         (w->dtype == VT_F32 || (lowp && w->dtype == VT_BF16)) && (!b || b->dtype == VT_F32) &&
         x->ndim >= 2 && w->ndim == 2 && (!b || (b->ndim == 1 && b->shape[0] == w->shape[0]));
}

/* The tape entries of a linear layer's output: the matmul's own backward (dx, dw) and, with a
 * bias that needs it, the bias's. */
static void record_linear(vt_ctx *ctx, vt_tensor *out, vt_tensor *x, vt_tensor *w, vt_tensor *b) {
  vt_tensor *in[2] = {x, w};
  vt_node *n = vt_record(ctx, b ? "linear" : "matmul", matmul_backward, out, 2, in);
  if (n) {
    n->i[0] = false;
    n->i[1] = true;
    n->out_unread = true; /* the backward reads x, w and dy */
  }
  if (b && b->requires_grad) {
    vt_node *nb = vt_record(ctx, "linear bias", linear_bias_backward, out, 1, &b);
    if (nb) nb->out_unread = true; /* the column sums of dy; y's values are not read */
  }
}

vt_tensor *vt_linear(vt_ctx *ctx, vt_tensor *x, vt_tensor *w, vt_tensor *b) {
  if (!b) return vt_matmul(ctx, x, w, false, true);
  VT_OP_INPUTS_AS(ctx, "linear", VT_IN_GEMM, x, w, b);
  /* fused where the backend has the epilogue: x [.., k] by w [n, k] is one product (the
   * batch folds into m), the bias a vector of n */
  bool fuse = ctx->be->gemm_epilogue && linear_fusable(ctx, x, w, b);
  if (!fuse) return vt_add(ctx, vt_matmul(ctx, x, w, false, true), b);
  mm_geom g;
  if (!mm_plan(ctx, x, w, false, true, &g)) return &ctx->err_tensor;
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  shape[x->ndim - 1] = g.n;
  vt_tensor *out = vt_alloc_tensor(ctx, "linear", VT_F32, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const void *A = vt_gemm_operand(ctx, "linear", x, x->data, vt_numel(x));
  const void *B = vt_gemm_operand(ctx, "linear", w, w->data, vt_numel(w));
  if (!A || !B) return &ctx->err_tensor;
  ctx->be->gemm_epilogue(ctx->be, ctx->gemm_dtype, false, true, g.m, g.n, g.k, A, g.k, B, g.k,
                         b->data, VT_EPI_BIAS, out->data, g.n, NULL);
  vt_arena_rewind(&ctx->data, mark);
  record_linear(ctx, out, x, w, b);
  return out;
}

vt_tensor *vt_linear_lowp(vt_ctx *ctx, vt_tensor *x, vt_tensor *w, vt_tensor *b) {
  const char *op = "linear";
  if (ctx->gemm_dtype != VT_BF16 || !ctx->be->gemm_bf16_out) return vt_linear(ctx, x, w, b);
  if (b)
    VT_OP_INPUTS_AS(ctx, op, VT_IN_GEMM, x, w, b);
  else
    VT_OP_INPUTS_AS(ctx, op, VT_IN_GEMM, x, w);
  if (!linear_fusable(ctx, x, w, b)) return vt_linear(ctx, x, w, b); /* it names the error */
  mm_geom g;
  if (!mm_plan(ctx, x, w, false, true, &g)) return &ctx->err_tensor;
  int64_t shape[VT_MAX_DIMS];
  memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  shape[x->ndim - 1] = g.n;
  vt_tensor *out = vt_alloc_tensor(ctx, op, VT_BF16, x->ndim, shape);
  if (!out) return &ctx->err_tensor;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  const void *A = vt_gemm_operand(ctx, op, x, x->data, vt_numel(x));
  const void *B = vt_gemm_operand(ctx, op, w, w->data, vt_numel(w));
  if (!A || !B) return &ctx->err_tensor;
  bool ok = ctx->be->gemm_bf16_out(ctx->be, false, true, g.m, g.n, g.k, 1.0f, A, g.k, 0, B, g.k, 0,
                                   b ? b->data : NULL, out->data, g.n, 0, 1);
  vt_arena_rewind(&ctx->data, mark);
  if (!ok) return vt_ctx_fail(ctx, op, "out of memory for the bf16 GEMM output's scratch");
  record_linear(ctx, out, x, w, b);
  return out;
}
