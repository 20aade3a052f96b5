/* Fused attention: input checks, the backward wiring and the mask/bias description handed to
 * the backend's attn kernels (flash-style on every device). */
#include "autograd/ops_attn.h"

#include <math.h>

#include "autograd/ctx_impl.h"

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
                      .mask = o->mask,
                      .bf16 = ctx->gemm_dtype == VT_BF16};
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
  void *work = vt_arena_data(ctx, OP, kr->workspace(ctx->be, &sv->g));
  if (!work) return;
  kr->backward(ctx->be, &sv->g, q->data, k->data, v->data, n->out->data, n->out->grad,
               sv->lse->data, dq, dk, dv, db, work);
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
  void *work = lse ? vt_arena_data(ctx, OP, kr->workspace(ctx->be, &g)) : NULL;
  if (!work) return &ctx->err_tensor;
  kr->forward(ctx->be, &g, q->data, k->data, v->data, out->data, lse->data, work);
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
