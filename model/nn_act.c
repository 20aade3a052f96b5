/* Activations, dropout and drop path; see nn_act.h. */
#include "model/nn_act.h"

#include <string.h>

vt_tensor *nn_act_forward(vt_ctx *ctx, nn_act act, float slope, vt_tensor *x) {
  switch (act) {
  case NN_ACT_NONE: return x;
  case NN_ACT_RELU: return vt_relu(ctx, x);
  case NN_ACT_GELU_ERF: return vt_gelu_erf(ctx, x);
  case NN_ACT_GELU_TANH: return vt_gelu_tanh(ctx, x);
  case NN_ACT_SILU: return vt_silu(ctx, x);
  case NN_ACT_LEAKY_RELU: return vt_leaky_relu(ctx, x, slope);
  case NN_ACT_TANH: return vt_tanh(ctx, x);
  case NN_ACT_SIGMOID: return vt_sigmoid(ctx, x);
  }
  return vt_ctx_fail(ctx, "nn_act", "unknown activation %d", (int)act);
}

int nn_act_parse(const char *name) {
  static const struct {
    const char *name;
    nn_act act;
  } names[] = {{"none", NN_ACT_NONE},     {"relu", NN_ACT_RELU},
               {"gelu", NN_ACT_GELU_ERF}, {"gelu_tanh", NN_ACT_GELU_TANH},
               {"silu", NN_ACT_SILU},     {"leaky_relu", NN_ACT_LEAKY_RELU},
               {"tanh", NN_ACT_TANH},     {"sigmoid", NN_ACT_SIGMOID}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(name, names[i].name)) return (int)names[i].act;
  return -1;
}

/* Element offsets of the sites are 2^40 apart: no tensor of a call is that large. */
static uint64_t site_offset(int site) { return (uint64_t)site << 40; }

vt_tensor *nn_dropout(vt_ctx *ctx, vt_tensor *x, float p, const nn_drop *d, int site) {
  if (!d || !d->training || p <= 0) return x;
  return vt_dropout_seeded(ctx, x, p, true, d->seed, site_offset(site));
}

vt_tensor *nn_drop_path(vt_ctx *ctx, vt_tensor *x, float p, const nn_drop *d, int site) {
  if (!d || !d->training || p <= 0 || vt_ctx_failed(ctx)) return x;
  int64_t shape[VT_MAX_DIMS] = {x->shape[0], 1, 1, 1, 1};
  vt_tensor *keep = vt_full(ctx, x->ndim, shape, 1.0f); /* one draw per sample */
  return vt_mul(ctx, x, vt_dropout_seeded(ctx, keep, p, true, d->seed, site_offset(site)));
}

nn_drop nn_drop_begin(vt_ctx *ctx, const nn_fwd *f, bool any_dropout) {
  nn_drop d = {.training = f && f->training, .seed = 0};
  if (!d.training || !any_dropout) return d;
  if (!f->rng) {
    vt_ctx_fail(ctx, "nn_dropout", "a training forward with dropout or drop path needs an rng");
    d.training = false;
    return d;
  }
  d.seed = vt_rng_next(f->rng);
  return d;
}
