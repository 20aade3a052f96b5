/* MLP blocks; see nn_mlp.h. */
#include "model/nn_mlp.h"

void nn_mlp_init(nn_mlp *m, nn_reg *r, const char *prefix, const nn_mlp_cfg *c) {
  m->cfg = *c;
  if (c->dim <= 0 || c->hidden <= 0) {
    nn_reg_fail(r, "%s: mlp sizes dim %lld and hidden %lld must be positive", prefix,
                (long long)c->dim, (long long)c->hidden);
    return;
  }
  if (c->gated) {
    nn_linear *ls[2] = {&m->fc1, &m->up};
    const char *names[2] = {c->fc1, c->up};
    nn_linear_init_packed(ls, 2, r, prefix, names, c->dim, (int64_t[]){c->hidden, c->hidden},
                          c->bias);
  } else {
    nn_linear_init(&m->fc1, r, prefix, c->fc1, c->dim, c->hidden, c->bias);
  }
  nn_linear_init(&m->fc2, r, prefix, c->fc2, c->hidden, c->dim, c->bias);
}

vt_tensor *nn_mlp_forward(const nn_mlp *m, vt_ctx *ctx, vt_tensor *x, const nn_drop *d) {
  const nn_mlp_cfg *c = &m->cfg;
  vt_tensor *h;
  const nn_linear *ls[2] = {&m->fc1, &m->up};
  vt_tensor *y =
      c->gated && c->pack && c->act == NN_ACT_SILU ? nn_linear_packed_lowp(ctx, ls, 2, x) : NULL;
  if (y) {
    /* straight from the packed [gate | up] output, its only reader: under bf16 the GEMM writes
     * it in bf16 (or it is stored so), which the backward reads too */
    h = vt_swiglu(ctx, vt_swiglu_input(ctx, y));
  } else if (c->gated) {
    vt_tensor *gu[2];
    nn_linear_multi(ctx, ls, 2, x, c->pack, gu);
    h = vt_mul(ctx, nn_act_forward(ctx, c->act, c->act_slope, gu[0]), gu[1]);
  } else {
    h = nn_act_forward(ctx, c->act, c->act_slope, nn_linear_forward(&m->fc1, ctx, x));
  }
  h = nn_dropout(ctx, h, c->dropout, d, 0);
  return nn_linear_forward(&m->fc2, ctx, vt_gemm_input(ctx, h)); /* fc2 is h's only reader */
}
