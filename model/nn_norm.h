/* Normalisation blocks: LayerNorm (weight and optional bias) and RMSNorm (Qwen2 / LLaMA,
 * weight only) over the last dim, registered as "<name>.weight" / "<name>.bias". */
#ifndef VT_NN_NORM_H
#define VT_NN_NORM_H

#include "model/nn_reg.h"

typedef enum { NN_NORM_RMS = 0, NN_NORM_LAYER } nn_norm_kind;

typedef struct {
  nn_norm_kind kind;
  vt_tensor *w, *b; /* b: LayerNorm with bias only */
  float eps;
} nn_norm;

/* bias: LayerNorm's beta (ignored for RMSNorm). */
void nn_norm_init(nn_norm *n, nn_reg *r, const char *prefix, const char *name, nn_norm_kind kind,
                  int64_t dim, double eps, bool bias);
vt_tensor *nn_norm_forward(const nn_norm *n, vt_ctx *ctx, vt_tensor *x);
/* Unit weights and zero biases (torch's initialisation). */
void nn_norm_init_weights(const nn_norm *n, const vt_params *ps);

#endif
