/* Convolution blocks; see nn_conv.h. */
#include "model/nn_conv.h"

#include <math.h>
#include <stdio.h>

static int or1(int v) { return v > 0 ? v : 1; }

int nn_conv_same_pad(int kernel, int dilation) { return (kernel - 1) * or1(dilation) / 2; }

void nn_conv_init(nn_conv *c, nn_reg *r, const char *prefix, const nn_conv_cfg *cfg) {
  *c = (nn_conv){.cfg = *cfg};
  const nn_conv_cfg *k = &c->cfg;
  int groups = or1(k->groups);
  if ((k->dims != 1 && k->dims != 2) || k->in_ch <= 0 || k->out_ch <= 0 || k->kernel[0] <= 0 ||
      (k->dims == 2 && k->kernel[1] <= 0) || k->in_ch % groups || k->out_ch % groups ||
      (k->transpose && (k->dims != 1 || groups != 1))) {
    nn_reg_fail(r, "%s.%s: invalid conv: dims %d, channels %lld -> %lld, kernel %d, groups %d%s",
                prefix, k->conv, k->dims, (long long)k->in_ch, (long long)k->out_ch, k->kernel[0],
                groups, k->transpose ? ", transposed" : "");
    return;
  }
  int64_t shape[4], n = 0;
  if (k->transpose) { /* [Cin, Cout, K] */
    shape[n++] = k->in_ch;
    shape[n++] = k->out_ch;
  } else {
    shape[n++] = k->out_ch;
    shape[n++] = k->in_ch / groups;
  }
  shape[n++] = k->kernel[0];
  if (k->dims == 2) shape[n++] = k->kernel[1];
  if (k->weight_norm) {
    int64_t gshape[4] = {shape[0], 1, 1, 1};
    c->g = nn_param(r, prefix, k->conv, "weight_g", (int)n, gshape);
    c->v = nn_param(r, prefix, k->conv, "weight_v", (int)n, shape);
  } else {
    c->w = nn_param(r, prefix, k->conv, "weight", (int)n, shape);
  }
  if (k->bias) c->b = nn_param(r, prefix, k->conv, "bias", 1, (int64_t[]){k->out_ch});
  if (k->norm != NN_CONV_NORM_NONE) {
    if (k->norm == NN_CONV_NORM_GROUP && (k->norm_groups <= 0 || k->out_ch % k->norm_groups)) {
      nn_reg_fail(r, "%s.%s: %lld channels do not split into %lld groups", prefix, k->norm_name,
                  (long long)k->out_ch, (long long)k->norm_groups);
      return;
    }
    c->norm_w = nn_param(r, prefix, k->norm_name, "weight", 1, (int64_t[]){k->out_ch});
    c->norm_b = nn_param(r, prefix, k->norm_name, "bias", 1, (int64_t[]){k->out_ch});
  }
  c->cfg.conv = c->cfg.norm_name = NULL; /* names serve registration only (may be on a stack) */
}

/* LayerNorm over dim 1 of [N, C, ...]: channels last, normalise, back. */
static vt_tensor *channel_layer_norm(vt_ctx *ctx, vt_tensor *x, vt_tensor *w, vt_tensor *b,
                                     float eps) {
  if (x->ndim == 3) {
    vt_tensor *y = vt_layer_norm(ctx, vt_transpose(ctx, x, 1, 2), w, b, eps);
    return vt_transpose(ctx, y, 1, 2);
  }
  const int last[4] = {0, 2, 3, 1}, first[4] = {0, 3, 1, 2};
  return vt_permute(ctx, vt_layer_norm(ctx, vt_permute(ctx, x, last), w, b, eps), first);
}

static bool check_input(const nn_conv *c, vt_ctx *ctx, vt_tensor *x) {
  const nn_conv_cfg *k = &c->cfg;
  if (vt_ctx_failed(ctx)) return false;
  if (x->ndim != k->dims + 2 || x->shape[1] != k->in_ch) {
    char s[96];
    vt_ctx_fail(ctx, "nn_conv", "input %s must be [N, %lld, %s]", vt_shape_str(x, s, sizeof s),
                (long long)k->in_ch, k->dims == 1 ? "L" : "H, W");
    return false;
  }
  return true;
}

/* A 1-D conv without a norm whose activation is LeakyReLU or none: vt_conv1d_fused takes it
 * with that activation and what a caller folds in (a LeakyReLU after it, a residual). */
static bool fuses(const nn_conv_cfg *k) {
  return k->dims == 1 && k->norm == NN_CONV_NORM_NONE &&
         (k->act == NN_ACT_NONE || k->act == NN_ACT_LEAKY_RELU);
}

/* conv(x) of a conv that fuses, with its own activation when own_act, then f's out_act and
 * res (f's in_act unused): vt_conv1d_fused, which is the composition without a tape. */
static vt_tensor *conv_fused(const nn_conv *c, vt_ctx *ctx, vt_tensor *x, bool own_act,
                             vt_conv_fusion f) {
  const nn_conv_cfg *k = &c->cfg;
  if (!check_input(c, ctx, x)) return x;
  bool leaky = own_act && k->act == NN_ACT_LEAKY_RELU;
  f.in_act = leaky && k->act_first;
  f.in_slope = k->act_slope;
  if (leaky && !k->act_first) {
    if (f.out_act || f.res) { /* two output stages: the conv's act, then the caller's */
      vt_tensor *y = conv_fused(c, ctx, x, true, (vt_conv_fusion){0});
      if (f.out_act) y = vt_leaky_relu(ctx, y, f.out_slope);
      return f.res ? vt_add(ctx, y, f.res) : y;
    }
    f.out_act = true;
    f.out_slope = k->act_slope;
  }
  vt_tensor *w = k->weight_norm ? vt_weight_norm(ctx, c->g, c->v) : c->w;
  if (k->transpose)
    return vt_conv_transpose1d_fused(ctx, x, w, c->b, or1(k->stride[0]), k->pad[0], k->pad[1], &f);
  return vt_conv1d_fused(ctx, x, w, c->b, or1(k->stride[0]), k->pad[0], k->pad[1], or1(k->dilation),
                         or1(k->groups), &f);
}

vt_tensor *nn_conv_forward(const nn_conv *c, vt_ctx *ctx, vt_tensor *x) {
  const nn_conv_cfg *k = &c->cfg;
  if (fuses(k)) return conv_fused(c, ctx, x, true, (vt_conv_fusion){0});
  if (!check_input(c, ctx, x)) return x;
  if (k->act_first) x = nn_act_forward(ctx, k->act, k->act_slope, x);
  vt_tensor *w = k->weight_norm ? vt_weight_norm(ctx, c->g, c->v) : c->w;
  vt_tensor *y;
  if (k->transpose)
    y = vt_conv_transpose1d(ctx, x, w, c->b, or1(k->stride[0]), k->pad[0], k->pad[1]);
  else if (k->dims == 1)
    y = vt_conv1d_pad(ctx, x, w, c->b, or1(k->stride[0]), k->pad[0], k->pad[1], or1(k->dilation),
                      or1(k->groups));
  else
    y = vt_conv2d(ctx, x, w, c->b, or1(k->stride[0]), or1(k->stride[1]), k->pad[0], k->pad[1]);
  if (k->norm == NN_CONV_NORM_GROUP)
    y = vt_group_norm(ctx, y, k->norm_groups, c->norm_w, c->norm_b, (float)k->norm_eps);
  else if (k->norm == NN_CONV_NORM_LAYER)
    y = channel_layer_norm(ctx, y, c->norm_w, c->norm_b, (float)k->norm_eps);
  return k->act_first ? y : nn_act_forward(ctx, k->act, k->act_slope, y);
}

void nn_conv_init_weight_norm(const nn_conv *c, const vt_params *ps) {
  if (!c->g) return;
  int64_t o = c->v->shape[0], per = vt_numel(c->v) / o;
  float v[4096], g;
  for (int64_t i = 0; i < o; i++) {
    double s = 0;
    for (int64_t j0 = 0; j0 < per; j0 += 4096) {
      int64_t m = per - j0 < 4096 ? per - j0 : 4096;
      vt_buf_to_host(ps->be, v, (float *)c->v->data + i * per + j0, sizeof(float) * (size_t)m);
      for (int64_t j = 0; j < m; j++) s += (double)v[j] * v[j];
    }
    g = (float)sqrt(s);
    nn_write(ps, c->g, i, &g, 1);
  }
}

void nn_resblock_init(nn_resblock *rb, nn_reg *r, const char *prefix, const nn_resblock_cfg *cfg) {
  *rb = (nn_resblock){.cfg = *cfg};
  if (cfg->n < 1 || cfg->n > NN_RES_MAX) {
    nn_reg_fail(r, "%s: %d dilations, 1 to %d supported", prefix, cfg->n, NN_RES_MAX);
    return;
  }
  for (int i = 0; i < cfg->n; i++) {
    char n1[32], n2[32];
    snprintf(n1, sizeof n1, "convs1.%d", i);
    snprintf(n2, sizeof n2, "convs2.%d", i);
    int p1 = nn_conv_same_pad(cfg->kernel, cfg->dilations[i]),
        p2 = nn_conv_same_pad(cfg->kernel, 1);
    nn_conv_cfg c = {.dims = 1,
                     .in_ch = cfg->ch,
                     .out_ch = cfg->ch,
                     .kernel = {cfg->kernel},
                     .pad = {p1, p1},
                     .dilation = cfg->dilations[i],
                     .bias = true,
                     .weight_norm = cfg->weight_norm,
                     .act = NN_ACT_LEAKY_RELU,
                     .act_slope = cfg->slope,
                     .act_first = true,
                     .conv = n1};
    nn_conv_init(&rb->c1[i], r, prefix, &c);
    c.pad[0] = c.pad[1] = p2;
    c.dilation = 1;
    c.conv = n2;
    nn_conv_init(&rb->c2[i], r, prefix, &c);
  }
}

/* x + c2(c1(x)), each conv after its LeakyReLU. Without a tape c2's LeakyReLU runs as c1's
 * output pass and the residual add as c2's (vt_conv1d_fused), so one unit writes two tensors
 * instead of six. */
vt_tensor *nn_resblock_forward(const nn_resblock *rb, vt_ctx *ctx, vt_tensor *x) {
  for (int i = 0; i < rb->cfg.n; i++) {
    const nn_conv *c1 = &rb->c1[i], *c2 = &rb->c2[i];
    if (fuses(&c1->cfg) && c1->cfg.act_first && fuses(&c2->cfg) && c2->cfg.act_first) {
      vt_conv_fusion a = {.out_act = c2->cfg.act == NN_ACT_LEAKY_RELU,
                          .out_slope = c2->cfg.act_slope};
      x = conv_fused(c2, ctx, conv_fused(c1, ctx, x, true, a), false, (vt_conv_fusion){.res = x});
      continue;
    }
    vt_tensor *y = nn_conv_forward(c2, ctx, nn_conv_forward(c1, ctx, x));
    x = vt_add(ctx, y, x);
  }
  return x;
}
