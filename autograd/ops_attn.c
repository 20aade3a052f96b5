/* Fused attention: input checks, the backward wiring and the mask/bias description handed to
 * the backend's attn kernels (flash-style on every device); and vt_attention_qkv, the same
 * from a packed q/k/v projection with RoPE, through the norm family's rope_qkv kernels. */
#include "autograd/ops_attn.h"

#include <math.h>

#include "autograd/ctx_impl.h"
#include "autograd/kernels_norm.h"
#include "autograd/ops.h"
#include "autograd/ops_norm.h"

static const char *OP = "attention";

typedef struct {
  vt_attn_geom g;
  vt_tensor *lse;
} attn_saved;

static bool lengths_ok(vt_ctx *ctx, const vt_tensor *t, int64_t B, const char *what) {
  char s[96];
  if (t && (t->dtype != VT_I32 || t->ndim != 1 || t->shape[0] != B)) {
    vt_ctx_fail(ctx, OP, "%s must be i32 [%lld], got %s", what, (long long)B,
                vt_shape_str(t, s, sizeof s));
    return false;
  }
  return true;
}

/* Segment bounds [B, T, 2] from run-length ids, computed on the host and copied over. */
static bool segments_plan(vt_ctx *ctx, const vt_tensor *ids, vt_attn_geom *g) {
  char s[96];
  if (ids->dtype != VT_I32 || ids->ndim != 2 || ids->shape[0] != g->B || ids->shape[1] != g->Tq ||
      g->Tq != g->Tk) {
    vt_ctx_fail(ctx, OP,
                "segment_ids must be i32 [%lld, %lld] with as many keys as queries"
                " (%lld keys), got %s",
                (long long)g->B, (long long)g->Tq, (long long)g->Tk,
                vt_shape_str(ids, s, sizeof s));
    return false;
  }
  int64_t T = g->Tq, n = g->B * T;
  int32_t *h = vt_arena_meta(ctx, OP, sizeof(int32_t) * (size_t)(3 * n + 1));
  int32_t *dev = h ? vt_arena_data(ctx, OP, sizeof(int32_t) * (size_t)(2 * n + 1)) : NULL;
  if (!dev) return false;
  int32_t *id = h + 2 * n;
  ctx->be->copy(ctx->be, id, ids->data, sizeof(int32_t) * (size_t)n, VT_COPY_D2H);
  for (int64_t b = 0; b < g->B; b++)
    for (int64_t start = 0, end; start < T; start = end) {
      for (end = start + 1; end < T && id[b * T + end] == id[b * T + start];) end++;
      for (int64_t t = start; t < end; t++) {
        h[(b * T + t) * 2] = (int32_t)start;
        h[(b * T + t) * 2 + 1] = (int32_t)end;
      }
    }
  ctx->be->copy(ctx->be, dev, h, sizeof(int32_t) * (size_t)(2 * n), VT_COPY_H2D);
  g->segments = dev;
  return true;
}

static bool attn_plan(vt_ctx *ctx, const vt_tensor *q, const vt_tensor *k, const vt_tensor *v,
                      const vt_attn_opts *o, vt_attn_geom *g) {
  char s1[96], s2[96], s3[96];
  vt_shape_str(q, s1, sizeof s1);
  vt_shape_str(k, s2, sizeof s2);
  vt_shape_str(v, s3, sizeof s3);
  if (q->ndim != 4 || k->ndim != 4 || v->ndim != 4) {
    vt_ctx_fail(ctx, OP, "q, k, v must be [B, H, T, D], got q %s, k %s, v %s", s1, s2, s3);
    return false;
  }
  *g = (vt_attn_geom){.B = q->shape[0],
                      .H = q->shape[1],
                      .Hkv = k->shape[1],
                      .Tq = q->shape[2],
                      .Tk = k->shape[2],
                      .Dk = q->shape[3],
                      .Dv = v->shape[3],
                      .mask = o->mask};
  if (k->shape[0] != g->B || v->shape[0] != g->B || v->shape[1] != g->Hkv || v->shape[2] != g->Tk ||
      k->shape[3] != g->Dk || g->Hkv < 1 || g->H % g->Hkv != 0) {
    vt_ctx_fail(ctx, OP,
                "shapes do not fit: q %s, k %s, v %s (need equal batch, k and v with the same"
                " heads and length, q and k with the same head dim, heads of q a multiple of"
                " those of k)",
                s1, s2, s3);
    return false;
  }
  if (o->mask < VT_ATTN_BIDIRECTIONAL || o->mask > VT_ATTN_PREFIX) {
    vt_ctx_fail(ctx, OP, "unknown mask kind %d", (int)o->mask);
    return false;
  }
  if (o->mask == VT_ATTN_CHUNK && o->chunk_size <= 0) {
    vt_ctx_fail(ctx, OP, "the chunk mask needs chunk_size > 0, got %lld", (long long)o->chunk_size);
    return false;
  }
  if (o->mask == VT_ATTN_PREFIX && o->prefix < 0) {
    vt_ctx_fail(ctx, OP, "the prefix mask needs prefix >= 0, got %lld", (long long)o->prefix);
    return false;
  }
  if (!lengths_ok(ctx, o->lengths, g->B, "lengths") ||
      !lengths_ok(ctx, o->prefix_lengths, g->B, "prefix_lengths"))
    return false;
  if (o->segment_ids && !segments_plan(ctx, o->segment_ids, g)) return false;
  g->scale = o->scale != 0 ? o->scale : 1.0f / sqrtf((float)g->Dk);
  g->lowp = ctx->gemm_dtype == VT_BF16;
  g->chunk = o->chunk_size;
  g->left_chunks = o->left_chunks;
  g->prefix = o->prefix;
  g->lengths = o->lengths ? o->lengths->data : NULL;
  g->prefix_lengths = o->prefix_lengths ? o->prefix_lengths->data : NULL;
  if (o->bias) {
    const vt_tensor *b = o->bias;
    int nd = b->ndim;
    bool ok = b->dtype == VT_F32 && (nd == 3 || nd == 4) && b->shape[nd - 2] == g->Tq &&
              b->shape[nd - 1] == g->Tk && (b->shape[nd - 3] == 1 || b->shape[nd - 3] == g->H) &&
              (nd == 3 || b->shape[0] == 1 || b->shape[0] == g->B);
    if (!ok) {
      vt_ctx_fail(ctx, OP,
                  "bias must be f32 [Hb, %lld, %lld] or [Bb, Hb, %lld, %lld] with Hb"
                  " in {1, %lld} and Bb in {1, %lld}, got %s (q %s, k %s)",
                  (long long)g->Tq, (long long)g->Tk, (long long)g->Tq, (long long)g->Tk,
                  (long long)g->H, (long long)g->B, vt_shape_str(b, s3, sizeof s3), s1, s2);
      return false;
    }
    g->bias = b->data;
    g->bias_h = b->shape[nd - 3];
    g->bias_b = nd == 4 ? b->shape[0] : 1;
  }
  return true;
}

static void attention_backward(vt_ctx *ctx, vt_node *n) {
  attn_saved *sv = n->extra;
  vt_tensor *q = n->in[0], *k = n->in[1], *v = n->in[2], *bias = n->n_in > 3 ? n->in[3] : NULL;
  float *dq = NULL, *dk = NULL, *dv = NULL, *db = NULL;
  if (q->requires_grad && !(dq = vt_grad(ctx, q))) return;
  if (k->requires_grad && !(dk = vt_grad(ctx, k))) return;
  if (v->requires_grad && !(dv = vt_grad(ctx, v))) return;
  if (bias && bias->requires_grad && !(db = vt_grad(ctx, bias))) return;
  const struct vt_attn_kernels *kr = ctx->be->attn;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data); /* the workspace lives for the call */
  void *work = vt_arena_data(ctx, OP, kr->workspace(ctx->be, &sv->g));
  if (!work) return;
  kr->backward(ctx->be, &sv->g, q->data, k->data, v->data, n->out->data, n->out->grad,
               sv->lse->data, dq, dk, dv, db, work);
  vt_arena_rewind(&ctx->data, mark);
}

vt_tensor *vt_attention(vt_ctx *ctx, vt_tensor *q, vt_tensor *k, vt_tensor *v,
                        const vt_attn_opts *opts) {
  VT_OP_INPUTS(ctx, OP, q, k, v);
  vt_attn_opts o = opts ? *opts : (vt_attn_opts){0};
  if (o.lengths) VT_OP_INPUTS(ctx, OP, o.lengths);
  if (o.prefix_lengths) VT_OP_INPUTS(ctx, OP, o.prefix_lengths);
  if (o.segment_ids) VT_OP_INPUTS(ctx, OP, o.segment_ids);
  if (o.bias) VT_OP_INPUTS(ctx, OP, o.bias);
  if (!vt_check_dtype(ctx, OP, q, VT_F32) || !vt_check_dtype(ctx, OP, k, VT_F32) ||
      !vt_check_dtype(ctx, OP, v, VT_F32))
    return &ctx->err_tensor;
  const struct vt_attn_kernels *kr = ctx->be->attn;
  if (!vt_need_kernels(ctx, OP, VT_FAMILY_ATTN, kr && kr->forward && kr->backward && kr->workspace))
    return &ctx->err_tensor;
  vt_attn_geom g;
  if (!attn_plan(ctx, q, k, v, &o, &g)) return &ctx->err_tensor;
  int64_t shape[4] = {g.B, g.H, g.Tq, g.Dv};
  vt_tensor *out = vt_alloc_tensor(ctx, OP, VT_F32, 4, shape);
  vt_tensor *lse = out ? vt_alloc_tensor(ctx, OP, VT_F32, 3, shape) : NULL;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data); /* the workspace lives for the call */
  void *work = lse ? vt_arena_data(ctx, OP, kr->workspace(ctx->be, &g)) : NULL;
  if (!work) return &ctx->err_tensor;
  kr->forward(ctx->be, &g, q->data, k->data, v->data, out->data, lse->data, work);
  vt_arena_rewind(&ctx->data, mark);
  vt_tensor *in[4] = {q, k, v, o.bias};
  vt_node *n = vt_record(ctx, OP, attention_backward, out, o.bias ? 4 : 3, in);
  if (n) {
    attn_saved *sv = vt_arena_meta(ctx, OP, sizeof *sv);
    if (!sv) return &ctx->err_tensor;
    *sv = (attn_saved){g, lse};
    n->extra = sv;
  }
  return out;
}

/* ---- attention from a packed q/k/v projection ---- */

#define QKV_MAX_HEAD_DIM                                                                           \
  1024 /* the CPU rope_qkv kernel keeps cos/sin of a position on its stack                         \
        */

typedef struct {
  vt_attn_geom g;
  vt_tensor *q, *k, *v, *out, *lse; /* head layouts, kept for the backward */
  const int32_t *pos;
  int64_t pos_bstride, t;
  float theta;
} qkv_saved;

/* The composition the fused path replaces (backends without rope_qkv). */
static vt_tensor *attention_qkv_composed(vt_ctx *ctx, vt_tensor *qkv, int64_t nh, int64_t nkv,
                                         int64_t d, vt_tensor *pos, float theta,
                                         const vt_attn_opts *o) {
  int64_t b = qkv->shape[0], t = qkv->shape[1];
  vt_tensor *q = vt_slice(ctx, qkv, -1, 0, nh * d);
  vt_tensor *k = vt_slice(ctx, qkv, -1, nh * d, (nh + nkv) * d);
  vt_tensor *v = vt_slice(ctx, qkv, -1, (nh + nkv) * d, (nh + 2 * nkv) * d);
  q = vt_reshape(ctx, q, 4, (int64_t[]){b, t, nh, d});
  k = vt_reshape(ctx, k, 4, (int64_t[]){b, t, nkv, d});
  v = vt_reshape(ctx, v, 4, (int64_t[]){b, t, nkv, d});
  if (theta > 0) {
    q = vt_rope(ctx, q, pos, theta, VT_ROPE_BTHD);
    k = vt_rope(ctx, k, pos, theta, VT_ROPE_BTHD);
  }
  const int to_heads[4] = {0, 2, 1, 3};
  q = vt_permute(ctx, q, to_heads);
  k = vt_permute(ctx, k, to_heads);
  v = vt_permute(ctx, v, to_heads);
  vt_tensor *out = vt_permute(ctx, vt_attention(ctx, q, k, v, o), to_heads);
  return vt_reshape(ctx, out, 3, (int64_t[]){b, t, nh * d});
}

/* [B, H, T, D] <-> [B, T, H, D] through the core strided copy (no accumulation). */
static void heads_swap(vt_ctx *ctx, const float *src, float *dst, int64_t b, int64_t h, int64_t t,
                       int64_t d, bool to_heads) {
  int64_t shape[4] = {b, t, h, d};
  int64_t bthd[4] = {t * h * d, h * d, d, 1}, bhtd[4] = {h * t * d, d, t * d, 1};
  ctx->be->strided_copy(ctx->be, 4, shape, src, to_heads ? bthd : bhtd, dst, to_heads ? bhtd : bthd,
                        sizeof(float), false);
}

static void attention_qkv_backward(vt_ctx *ctx, vt_node *n) {
  qkv_saved *sv = n->extra;
  const vt_attn_geom *g = &sv->g;
  vt_tensor *qkv = n->in[0], *bias = n->n_in > 1 ? n->in[1] : NULL;
  bool fresh = false;
  float *dx = qkv->requires_grad ? vt_grad_first(ctx, qkv, &fresh) : NULL;
  float *db = bias && bias->requires_grad ? vt_grad(ctx, bias) : NULL;
  if ((qkv->requires_grad && !dx) || (bias && bias->requires_grad && !db)) return;
  const struct vt_attn_kernels *kr = ctx->be->attn;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data); /* the scratch below dies with the op */
  int64_t nq = vt_numel(sv->q), nk = vt_numel(sv->k);
  float *dout = vt_arena_data(ctx, OP, sizeof(float) * (size_t)nq);
  float *dq = dx ? vt_arena_data(ctx, OP, sizeof(float) * (size_t)(nq + 2 * nk)) : NULL;
  void *work = vt_arena_data(ctx, OP, kr->workspace(ctx->be, g));
  if (!dout || (dx && !dq) || !work) return;
  heads_swap(ctx, n->out->grad, dout, g->B, g->H, sv->t, g->Dv, true);
  float *dk = dq ? dq + nq : NULL, *dv = dq ? dq + nq + nk : NULL;
  if (dq) ctx->be->fill(ctx->be, dq, nq + 2 * nk, 0.0f); /* the attn kernels accumulate */
  kr->backward(ctx->be, g, sv->q->data, sv->k->data, sv->v->data, sv->out->data, dout,
               sv->lse->data, dq, dk, dv, db, work);
  if (dx)
    ctx->be->norm->rope_qkv_backward(ctx->be, g->B, sv->t, g->H, g->Hkv, g->Dk, sv->theta, sv->pos,
                                     sv->pos_bstride, dq, dk, dv, dx, !fresh);
  vt_arena_rewind(&ctx->data, mark);
}

vt_tensor *vt_attention_qkv_input(vt_ctx *ctx, vt_tensor *qkv) {
  const struct vt_norm_kernels *nk = ctx->be->norm;
  return nk && nk->rope_qkv_bf16 ? vt_lowp_store(ctx, qkv) : qkv;
}

vt_tensor *vt_attention_qkv(vt_ctx *ctx, vt_tensor *qkv, int64_t heads, int64_t kv_heads,
                            vt_tensor *pos, float theta, const vt_attn_opts *opts) {
  const char *op = "attention_qkv";
  VT_OP_INPUTS(ctx, op, qkv);
  if (theta > 0) VT_OP_INPUTS(ctx, op, pos);
  bool lowp = qkv->dtype == VT_BF16 && ctx->gemm_dtype == VT_BF16; /* vt_lowp_store's */
  if (!lowp && !vt_check_dtype(ctx, op, qkv, VT_F32)) return &ctx->err_tensor;
  char s1[96], s2[96];
  int64_t parts = heads + 2 * kv_heads;
  if (heads < 1 || kv_heads < 1 || heads % kv_heads || qkv->ndim != 3 || qkv->shape[2] % parts ||
      qkv->shape[2] == 0)
    return vt_ctx_fail(ctx, op,
                       "qkv %s must be [B, T, (heads + 2 kv_heads) D] with heads %lld a positive"
                       " multiple of kv_heads %lld",
                       vt_shape_str(qkv, s1, sizeof s1), (long long)heads, (long long)kv_heads);
  int64_t b = qkv->shape[0], t = qkv->shape[1], d = qkv->shape[2] / parts;
  if (theta > 0 && (d % 2 || d > QKV_MAX_HEAD_DIM))
    return vt_ctx_fail(ctx, op, "RoPE needs an even head dim <= %d, got %lld (qkv %s)",
                       QKV_MAX_HEAD_DIM, (long long)d, vt_shape_str(qkv, s1, sizeof s1));
  int64_t pstride = 0;
  if (theta > 0) {
    bool shared = pos->ndim == 1 && pos->shape[0] == t;
    bool per_batch = pos->ndim == 2 && pos->shape[0] == b && pos->shape[1] == t;
    if (!vt_check_dtype(ctx, op, pos, VT_I32)) return &ctx->err_tensor;
    if (!shared && !per_batch)
      return vt_ctx_fail(ctx, op, "positions must be i32 [%lld] or [%lld, %lld] for qkv %s, got %s",
                         (long long)t, (long long)b, (long long)t, vt_shape_str(qkv, s1, sizeof s1),
                         vt_shape_str(pos, s2, sizeof s2));
    pstride = shared ? 0 : t;
  }
  vt_attn_opts o = opts ? *opts : (vt_attn_opts){0};
  const struct vt_attn_kernels *kr = ctx->be->attn;
  if (!vt_need_kernels(ctx, op, VT_FAMILY_ATTN, kr && kr->forward && kr->backward && kr->workspace))
    return &ctx->err_tensor;
  const struct vt_norm_kernels *nk = ctx->be->norm;
  if (!nk || !nk->rope_qkv || !nk->rope_qkv_backward)
    return attention_qkv_composed(ctx, lowp ? vt_cast(ctx, qkv, VT_F32) : qkv, heads, kv_heads, d,
                                  pos, theta, &o);
  if (o.lengths) VT_OP_INPUTS(ctx, op, o.lengths);
  if (o.prefix_lengths) VT_OP_INPUTS(ctx, op, o.prefix_lengths);
  if (o.segment_ids) VT_OP_INPUTS(ctx, op, o.segment_ids);
  if (o.bias) VT_OP_INPUTS(ctx, op, o.bias);
  vt_tensor *q = vt_alloc_tensor(ctx, op, VT_F32, 4, (int64_t[]){b, heads, t, d});
  vt_tensor *k = q ? vt_alloc_tensor(ctx, op, VT_F32, 4, (int64_t[]){b, kv_heads, t, d}) : NULL;
  vt_tensor *v = k ? vt_alloc_tensor(ctx, op, VT_F32, 4, (int64_t[]){b, kv_heads, t, d}) : NULL;
  if (!v) return &ctx->err_tensor;
  vt_attn_geom g;
  if (!attn_plan(ctx, q, k, v, &o, &g)) return &ctx->err_tensor;
  const int32_t *pd = theta > 0 ? pos->data : NULL;
  if (lowp && nk->rope_qkv_bf16 && d <= QKV_MAX_HEAD_DIM) {
    nk->rope_qkv_bf16(ctx->be, b, t, heads, kv_heads, d, theta, pd, pstride, qkv->data, q->data,
                      k->data, v->data);
  } else { /* f32 x, or bf16 x widened into scratch first */
    vt_arena_mark wm = vt_arena_get_mark(&ctx->data);
    float *xf = lowp ? vt_arena_data(ctx, op, sizeof(float) * (size_t)vt_numel(qkv)) : qkv->data;
    if (!xf) return &ctx->err_tensor;
    if (lowp) ctx->be->convert(ctx->be, VT_BF16, VT_F32, vt_numel(qkv), qkv->data, xf);
    nk->rope_qkv(ctx->be, b, t, heads, kv_heads, d, theta, pd, pstride, xf, q->data, k->data,
                 v->data);
    vt_arena_rewind(&ctx->data, wm);
  }
  vt_tensor *oh = vt_alloc_tensor(ctx, op, VT_F32, 4, q->shape);
  vt_tensor *lse = oh ? vt_alloc_tensor(ctx, op, VT_F32, 3, q->shape) : NULL;
  vt_tensor *out = lse ? vt_alloc_tensor(ctx, op, VT_F32, 3, (int64_t[]){b, t, heads * d}) : NULL;
  if (!out) return &ctx->err_tensor;
  vt_arena_mark mark = vt_arena_get_mark(&ctx->data);
  void *work = vt_arena_data(ctx, op, kr->workspace(ctx->be, &g));
  if (!work) return &ctx->err_tensor;
  kr->forward(ctx->be, &g, q->data, k->data, v->data, oh->data, lse->data, work);
  vt_arena_rewind(&ctx->data, mark);
  heads_swap(ctx, oh->data, out->data, b, heads, t, d, false);
  vt_tensor *in[2] = {qkv, o.bias};
  vt_node *n = vt_record(ctx, op, attention_qkv_backward, out, o.bias ? 2 : 1, in);
  if (n) {
    n->out_unread = true; /* the backward reads its own head-layout copies (sv) */
    qkv_saved *sv = vt_arena_meta(ctx, op, sizeof *sv);
    if (!sv) return &ctx->err_tensor;
    *sv = (qkv_saved){.g = g,
                      .q = q,
                      .k = k,
                      .v = v,
                      .out = oh,
                      .lse = lse,
                      .pos = theta > 0 ? pos->data : NULL,
                      .pos_bstride = pstride,
                      .t = t,
                      .theta = theta};
    n->extra = sv;
  }
  return out;
}
