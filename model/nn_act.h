/* Activations, dropout and drop path for the model/ building blocks (nn_*): an activation is
 * named by an enum so configs choose it, and dropout sites draw from a per-call nn_drop. */
#ifndef VT_NN_ACT_H
#define VT_NN_ACT_H

#include "model/nn_fwd.h"

typedef enum {
  NN_ACT_NONE = 0,
  NN_ACT_RELU,
  NN_ACT_GELU_ERF,  /* torch GELU, approximate="none" */
  NN_ACT_GELU_TANH, /* approximate="tanh" */
  NN_ACT_SILU,
  NN_ACT_LEAKY_RELU, /* slope from the caller */
  NN_ACT_TANH,
  NN_ACT_SIGMOID,
} nn_act;

vt_tensor *nn_act_forward(vt_ctx *ctx, nn_act act, float slope, vt_tensor *x);
/* "relu", "gelu" (erf), "gelu_tanh", "silu", "leaky_relu", "tanh", "sigmoid", "none"; -1 when
 * unknown (for config readers). */
int nn_act_parse(const char *name);

/* Inverted dropout with probability p at dropout site `site` of this call (identity in eval
 * mode or when p == 0). */
vt_tensor *nn_dropout(vt_ctx *ctx, vt_tensor *x, float p, const nn_drop *d, int site);
/* Stochastic depth on a residual branch x [B, ...]: each sample's branch is dropped with
 * probability p and kept ones are scaled by 1 / (1 - p) (timm's drop_path). */
vt_tensor *nn_drop_path(vt_ctx *ctx, vt_tensor *x, float p, const nn_drop *d, int site);
/* The per-call dropout state of f (draws a seed from f->rng when training with any p > 0;
 * training without an rng is a ctx error). */
nn_drop nn_drop_begin(vt_ctx *ctx, const nn_fwd *f, bool any_dropout);

#endif
