/* Normalisation blocks; see nn_norm.h. */
#include "model/nn_norm.h"

void nn_norm_init(nn_norm *n, nn_reg *r, const char *prefix, const char *name, nn_norm_kind kind,
                  int64_t dim, double eps, bool bias) {
  n->kind = kind;
  n->eps = (float)eps;
  n->w = nn_param(r, prefix, name, "weight", 1, (int64_t[]){dim});
  n->b =
      kind == NN_NORM_LAYER && bias ? nn_param(r, prefix, name, "bias", 1, (int64_t[]){dim}) : NULL;
}

vt_tensor *nn_norm_forward(const nn_norm *n, vt_ctx *ctx, vt_tensor *x) {
  return n->kind == NN_NORM_RMS ? vt_rms_norm(ctx, x, n->w, n->eps)
                                : vt_layer_norm(ctx, x, n->w, n->b, n->eps);
}

void nn_norm_init_weights(const nn_norm *n, const vt_params *ps) {
  nn_init_const(ps, n->w, 1.0f);
  nn_init_const(ps, n->b, 0.0f);
}
