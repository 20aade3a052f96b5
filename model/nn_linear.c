/* Linear and embedding blocks; see nn_linear.h. */
#include "model/nn_linear.h"

#include <math.h>

void nn_linear_init(nn_linear *l, nn_reg *r, const char *prefix, const char *name, int64_t in,
                    int64_t out, bool bias) {
  l->in = in;
  l->out = out;
  l->w = nn_param(r, prefix, name, "weight", 2, (int64_t[]){out, in});
  l->b = bias ? nn_param(r, prefix, name, "bias", 1, (int64_t[]){out}) : NULL;
}

void nn_linear_init_packed(nn_linear *const *ls, int n, nn_reg *r, const char *prefix,
                           const char *const *names, int64_t in, const int64_t *outs, bool bias) {
  for (int i = 0; i < n; i++) {
    ls[i]->in = in;
    ls[i]->out = outs[i];
    ls[i]->w = nn_param(r, prefix, names[i], "weight", 2, (int64_t[]){outs[i], in});
  }
  for (int i = 0; i < n; i++)
    ls[i]->b = bias ? nn_param(r, prefix, names[i], "bias", 1, (int64_t[]){outs[i]}) : NULL;
}

vt_tensor *nn_linear_forward(const nn_linear *l, vt_ctx *ctx, vt_tensor *x) {
  return vt_linear(ctx, x, l->w, l->b); /* the bias fused into the GEMM where the backend can */
}

#define NN_MULTI_MAX 8

vt_tensor *nn_linear_forward_lowp(const nn_linear *l, vt_ctx *ctx, vt_tensor *x) {
  return vt_linear_lowp(ctx, x, l->w, l->b);
}

static vt_tensor *linear_packed(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x,
                                bool lowp) {
  vt_tensor *w = NULL, *b = NULL;
  if (n > 1 && n <= NN_MULTI_MAX && !vt_ctx_failed(ctx)) {
    vt_tensor *ws[NN_MULTI_MAX], *bs[NN_MULTI_MAX];
    int nb = 0;
    for (int i = 0; i < n; i++) {
      ws[i] = ls[i]->w;
      if (ls[i]->b) bs[nb++] = ls[i]->b;
    }
    w = vt_params_concat_view(ctx, ws, n);
    if (nb == n) b = vt_params_concat_view(ctx, bs, n);
    if (nb != 0 && !b) w = NULL; /* biases not packable: fall back */
  }
  if (!w) return NULL;
  /* the bias fused into the GEMM where the backend can */
  return lowp ? vt_linear_lowp(ctx, x, w, b) : vt_linear(ctx, x, w, b);
}

vt_tensor *nn_linear_packed(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x) {
  return linear_packed(ctx, ls, n, x, false);
}

vt_tensor *nn_linear_packed_lowp(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x) {
  return linear_packed(ctx, ls, n, x, true);
}

void nn_linear_multi(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x, bool pack,
                     vt_tensor **outs) {
  vt_tensor *y = pack ? nn_linear_packed(ctx, ls, n, x) : NULL;
  if (!y) {
    for (int i = 0; i < n; i++) outs[i] = nn_linear_forward(ls[i], ctx, x);
    return;
  }
  int64_t off = 0;
  for (int i = 0; i < n; i++) {
    outs[i] = vt_slice(ctx, y, -1, off, off + ls[i]->out);
    off += ls[i]->out;
  }
}

void nn_embedding_init(nn_embedding *e, nn_reg *r, const char *prefix, const char *name, int64_t n,
                       int64_t dim) {
  e->n = n;
  e->dim = dim;
  e->w = nn_param(r, prefix, name, "weight", 2, (int64_t[]){n, dim});
  vt_params_set_copy(r->ps, e->w, false); /* gathered, not a GEMM operand: no bf16 copy */
}

vt_tensor *nn_embedding_forward(const nn_embedding *e, vt_ctx *ctx, vt_tensor *ids) {
  return vt_embedding(ctx, e->w, ids);
}

void nn_linear_init_default(const nn_linear *l, const vt_params *ps, vt_rng *rng) {
  float bound = 1.0f / sqrtf((float)l->in);
  nn_init_uniform(ps, l->w, rng, -bound, bound);
  nn_init_uniform(ps, l->b, rng, -bound, bound);
}

void nn_linear_init_normal(const nn_linear *l, const vt_params *ps, vt_rng *rng, float std) {
  nn_init_normal(ps, l->w, rng, 0, std);
  nn_init_const(ps, l->b, 0);
}
