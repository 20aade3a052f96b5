/* The audio adapter from the model/ blocks; see audio_adapter.h. */
#include "model/audio_adapter.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

audio_adapter_cfg audio_adapter_cfg_vita(void) {
  return (audio_adapter_cfg){
      .enc_dim = 1024, .llm_dim = 3584, .kernel = 5, .norm_eps = 1e-3, .n_prompt = 0};
}

int64_t audio_adapter_param_count(const audio_adapter_cfg *c) {
  int64_t e = c->enc_dim, o = 2 * e;
  return (e * o * c->kernel + o) + 2 * o + (o * c->llm_dim + c->llm_dim) + c->n_prompt * c->llm_dim;
}

int64_t audio_adapter_out_len(const audio_adapter_cfg *c, int64_t t) {
  return t > 0 ? (t + 1) / 2 + c->n_prompt : 0;
}

int audio_adapter_init(audio_adapter *a, vt_params *ps, const audio_adapter_cfg *cfg, char *err,
                       size_t err_len) {
  memset(a, 0, sizeof *a);
  if (cfg->enc_dim < 1 || cfg->llm_dim < 1 || cfg->kernel < 1 || cfg->n_prompt < 0 ||
      !(cfg->norm_eps > 0)) {
    snprintf(err, err_len,
             "audio adapter config: expected positive enc_dim, llm_dim, kernel, norm_eps and "
             "n_prompt >= 0, found %lld, %lld, %d, %g, %lld",
             (long long)cfg->enc_dim, (long long)cfg->llm_dim, cfg->kernel, cfg->norm_eps,
             (long long)cfg->n_prompt);
    return -1;
  }
  a->cfg = *cfg;
  a->ps = ps;
  nn_reg r = nn_reg_make(ps, err, err_len);
  nn_conv_cfg cc = {.dims = 1,
                    .in_ch = cfg->enc_dim,
                    .out_ch = 2 * cfg->enc_dim,
                    .kernel = {cfg->kernel, 0},
                    .stride = {2, 0},
                    .pad = {0, cfg->kernel - 1}, /* ConstantPad1d((0, k - 1)) */
                    .bias = true,
                    .norm = NN_CONV_NORM_LAYER,
                    .norm_eps = cfg->norm_eps,
                    .act = NN_ACT_GELU_ERF,
                    .conv = "conv1d2",
                    .norm_name = "bn2"};
  nn_conv_init(&a->conv, &r, "model.audio_encoder.adpter", &cc);
  nn_linear_init(&a->project, &r, "model.audio_encoder.adpter", "project", 2 * cfg->enc_dim,
                 cfg->llm_dim, true);
  if (cfg->n_prompt > 0)
    nn_embedding_init(&a->prompt, &r, "model.audio_encoder", "prompt_embeddings", cfg->n_prompt,
                      cfg->llm_dim);
  return nn_reg_failed(&r) ? -1 : 0;
}

void audio_adapter_init_weights(audio_adapter *a, vt_rng *rng) {
  const vt_params *ps = a->ps;
  float c = 1.0f / sqrtf((float)(a->cfg.enc_dim * a->cfg.kernel));
  nn_init_uniform(ps, a->conv.w, rng, -c, c);
  nn_init_uniform(ps, a->conv.b, rng, -c, c);
  nn_init_const(ps, a->conv.norm_w, 1.0f);
  nn_init_const(ps, a->conv.norm_b, 0.0f);
  float l = 1.0f / sqrtf((float)(2 * a->cfg.enc_dim));
  nn_init_uniform(ps, a->project.w, rng, -l, l);
  nn_init_uniform(ps, a->project.b, rng, -l, l);
  if (a->cfg.n_prompt > 0) nn_init_normal(ps, a->prompt.w, rng, 0.0f, 1.0f);
}

vt_tensor *audio_adapter_forward(audio_adapter *a, vt_ctx *ctx, vt_tensor *h,
                                 const int32_t *lengths, int32_t *out_lengths) {
  const audio_adapter_cfg *c = &a->cfg;
  if (vt_ctx_failed(ctx)) return h;
  if (h->ndim != 3 || h->shape[2] != c->enc_dim) {
    char s[96];
    return vt_ctx_fail(ctx, "audio_adapter", "input %s must be [B, T, %lld]",
                       vt_shape_str(h, s, sizeof s), (long long)c->enc_dim);
  }
  const int64_t B = h->shape[0], T = h->shape[1];
  float *mask = malloc(sizeof(float) * (size_t)(B * T));
  if (!mask) return vt_ctx_fail(ctx, "audio_adapter", "out of memory for the mask");
  for (int64_t b = 0; b < B; b++) {
    int64_t L = lengths[b] < 0 ? 0 : lengths[b] > T ? T : lengths[b];
    for (int64_t t = 0; t < T; t++) mask[b * T + t] = t < L ? 1.0f : 0.0f;
    if (out_lengths) out_lengths[b] = (int32_t)audio_adapter_out_len(c, L);
  }
  vt_tensor *mk = vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, 1}, mask);
  free(mask);
  /* the public code zeroes batch padding before the conv, whose window reaches past a clip */
  vt_tensor *x = vt_transpose(ctx, vt_mul(ctx, h, mk), 1, 2); /* [B, enc, T] */
  x = nn_conv_forward(&a->conv, ctx, x);                      /* [B, 2 enc, ceil(T/2)] */
  x = nn_linear_forward(&a->project, ctx, vt_transpose(ctx, x, 1, 2));
  if (c->n_prompt > 0) {
    /* the same n prompt rows before every clip */
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * c->n_prompt));
    if (!ids) return vt_ctx_fail(ctx, "audio_adapter", "out of memory for prompt ids");
    for (int64_t i = 0; i < B * c->n_prompt; i++) ids[i] = (int32_t)(i % c->n_prompt);
    vt_tensor *pid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, c->n_prompt}, ids);
    free(ids);
    vt_tensor *parts[2] = {nn_embedding_forward(&a->prompt, ctx, pid), x};
    x = vt_concat(ctx, parts, 2, 1);
  }
  return x;
}
