/* The demo model; see tiny_lm.h. */
#include "model/tiny_lm.h"

#include <stdio.h>

int tiny_lm_init(tiny_lm *m, vt_params *ps, const tiny_lm_cfg *cfg, char *err, size_t err_len) {
  if (cfg->vocab < 2 || cfg->context < 1 || cfg->dim < 1 || cfg->hidden < 1) {
    snprintf(err, err_len, "tiny_lm: vocab >= 2 and positive context, dim, hidden expected");
    return -1;
  }
  m->cfg = *cfg;
  int64_t in = (int64_t)cfg->context * cfg->dim;
  m->embed = vt_params_add(ps, "model.embed_tokens.weight", VT_F32, 2,
                           (int64_t[]){cfg->vocab, cfg->dim}, err, err_len);
  m->fc1_w = vt_params_add(ps, "model.mlp.fc1.weight", VT_F32, 2, (int64_t[]){cfg->hidden, in},
                           err, err_len);
  m->fc1_b = vt_params_add(ps, "model.mlp.fc1.bias", VT_F32, 1, (int64_t[]){cfg->hidden}, err,
                           err_len);
  m->fc2_w = vt_params_add(ps, "lm_head.weight", VT_F32, 2, (int64_t[]){cfg->vocab, cfg->hidden},
                           err, err_len);
  m->fc2_b = vt_params_add(ps, "lm_head.bias", VT_F32, 1, (int64_t[]){cfg->vocab}, err, err_len);
  return m->embed && m->fc1_w && m->fc1_b && m->fc2_w && m->fc2_b ? 0 : -1;
}

static void fill_normal(vt_tensor *t, vt_rng *rng, float std) {
  float *x = t->data;
  for (int64_t i = 0; i < vt_numel(t); i++) x[i] = std * vt_rng_normal(rng);
}

void tiny_lm_init_weights(tiny_lm *m, vt_rng *rng) {
  fill_normal(m->embed, rng, 0.02f);
  fill_normal(m->fc1_w, rng, 0.02f);
  fill_normal(m->fc2_w, rng, 0.02f);
  fill_normal(m->fc1_b, rng, 0.0f);
  fill_normal(m->fc2_b, rng, 0.0f);
}

vt_tensor *tiny_lm_loss(tiny_lm *m, vt_ctx *ctx, vt_tensor *ids, vt_tensor *targets) {
  if (vt_ctx_failed(ctx)) return ids;
  if (ids->ndim != 2 || ids->shape[1] != m->cfg.context || targets->ndim != 1 ||
      targets->shape[0] != ids->shape[0] || targets->dtype != VT_I32 ||
      vt_ctx_device(ctx).type != VT_DEV_CPU) {
    char s1[96], s2[96];
    return vt_ctx_fail(ctx, "tiny_lm_loss", "ids %s must be [n, %d] and targets %s [n] i32 on the cpu",
                       vt_shape_str(ids, s1, sizeof s1), m->cfg.context,
                       vt_shape_str(targets, s2, sizeof s2));
  }
  int64_t n = ids->shape[0], v = m->cfg.vocab;
  vt_tensor *x = vt_embedding(ctx, m->embed, ids); /* [n, context, dim] */
  x = vt_reshape(ctx, x, 2, (int64_t[]){n, (int64_t)m->cfg.context * m->cfg.dim});
  vt_tensor *h = vt_gelu_tanh(ctx, vt_add(ctx, vt_matmul(ctx, x, m->fc1_w, false, true), m->fc1_b));
  vt_tensor *logits = vt_add(ctx, vt_matmul(ctx, h, m->fc2_w, false, true), m->fc2_b);
  vt_tensor *logp = vt_reshape(ctx, vt_log_softmax(ctx, logits), 2, (int64_t[]){n * v, 1});
  /* row i of the flattened log-probabilities holds target i at i * vocab + targets[i] */
  vt_tensor *flat = vt_new(ctx, VT_I32, 1, (int64_t[]){n});
  if (vt_ctx_failed(ctx)) return flat;
  int32_t *fi = flat->data;
  const int32_t *ti = targets->data;
  for (int64_t i = 0; i < n; i++) {
    if (ti[i] < 0 || ti[i] >= v)
      return vt_ctx_fail(ctx, "tiny_lm_loss", "target %d at position %lld is outside [0, %lld)",
                         ti[i], (long long)i, (long long)v);
    fi[i] = (int32_t)(i * v) + ti[i];
  }
  vt_tensor *picked = vt_index_select(ctx, logp, 0, flat);
  return vt_scale(ctx, vt_mean(ctx, picked, VT_ALL_AXES, false), -1.0f);
}
