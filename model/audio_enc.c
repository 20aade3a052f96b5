/* The audio encoder from the model/ blocks; see audio_enc.h. */
#include "model/audio_enc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

audio_enc_cfg audio_enc_cfg_vita(void) {
  return (audio_enc_cfg){.n_mels = 80,
                         .hidden = 1024,
                         .heads = 16,
                         .ffn = 4096,
                         .layers = 24,
                         .max_pos = 5000,
                         .norm_eps = 1e-5,
                         .dropout = 0.1f,
                         .chunk_mode = AUDIO_ENC_CHUNK_DYNAMIC,
                         .chunk_size = 0,
                         .left_chunks = -1,
                         .dynamic_left = true,
                         .ctc_vocab = 0};
}

int64_t audio_enc_freq_out(int64_t n_mels) { return n_mels < 7 ? 0 : ((n_mels - 1) / 2 - 1) / 2; }

int64_t audio_enc_out_len(int64_t t) {
  /* mask[:, :, 2::2] keeps ceil((t - 2) / 2) = (t - 1) / 2 frames, twice */
  int64_t a = t >= 1 ? (t - 1) / 2 : 0;
  return a >= 1 ? (a - 1) / 2 : 0;
}

int audio_enc_cfg_check(const audio_enc_cfg *c, char *err, size_t err_len) {
  const struct {
    const char *name;
    int64_t v, min;
  } f[] = {{"n_mels", c->n_mels, 7},      {"hidden", c->hidden, 1},
           {"heads", c->heads, 1},        {"ffn", c->ffn, 1},
           {"layers", c->layers, 0},      {"max_pos", c->max_pos, 1},
           {"ctc_vocab", c->ctc_vocab, 0}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    if (f[i].v < f[i].min) {
      snprintf(err, err_len, "audio encoder config: %s: expected at least %lld, found %lld",
               f[i].name, (long long)f[i].min, (long long)f[i].v);
      return -1;
    }
  if (c->hidden % c->heads || (c->hidden / c->heads) % 2) {
    snprintf(err, err_len,
             "audio encoder config: hidden: expected a multiple of heads %lld with an even "
             "head dim, found %lld",
             (long long)c->heads, (long long)c->hidden);
    return -1;
  }
  if (c->hidden % 2) {
    snprintf(err, err_len, "audio encoder config: hidden: expected even (sinusoids), found %lld",
             (long long)c->hidden);
    return -1;
  }
  if (!(c->norm_eps > 0) || !(c->dropout >= 0 && c->dropout < 1)) {
    snprintf(err, err_len,
             "audio encoder config: norm_eps > 0 and 0 <= dropout < 1 expected, found %g, %g",
             c->norm_eps, (double)c->dropout);
    return -1;
  }
  if (c->chunk_mode == AUDIO_ENC_CHUNK_STATIC && c->chunk_size < 1) {
    snprintf(err, err_len,
             "audio encoder config: chunk_size: expected > 0 for static chunks, found %lld",
             (long long)c->chunk_size);
    return -1;
  }
  if ((int)c->chunk_mode < AUDIO_ENC_CHUNK_FULL || (int)c->chunk_mode > AUDIO_ENC_CHUNK_DYNAMIC) {
    snprintf(err, err_len, "audio encoder config: chunk_mode: expected full, static or dynamic");
    return -1;
  }
  return 0;
}

int64_t audio_enc_param_count(const audio_enc_cfg *c) {
  int64_t h = c->hidden, fo = audio_enc_freq_out(c->n_mels);
  int64_t sub = (9 * h + h) + (9 * h * h + h) + (fo * h * h + h);
  int64_t embed = h * h + h + 2 * h;
  int64_t layer =
      4 * (h * h + h) + h * h + 2 * h + (h * c->ffn + c->ffn) + (c->ffn * h + h) + 4 * h;
  int64_t ctc = c->ctc_vocab > 0 ? h * c->ctc_vocab + c->ctc_vocab : 0;
  return sub + embed + c->layers * layer + 2 * h + ctc;
}

static nn_layer_cfg block_cfg(const audio_enc_cfg *c) {
  nn_layer_cfg l = nn_layer_cfg_wenet(c->hidden, c->heads, c->ffn, c->norm_eps, c->dropout);
  l.recompute = c->recompute;
  return l;
}

int audio_enc_init(audio_enc *m, vt_params *ps, const audio_enc_cfg *cfg, char *err,
                   size_t err_len) {
  memset(m, 0, sizeof *m);
  if (audio_enc_cfg_check(cfg, err, err_len)) return -1;
  m->cfg = *cfg;
  m->ps = ps;
  const int64_t h = cfg->hidden;
  nn_reg r = nn_reg_make(ps, err, err_len);
  const char *P = AUDIO_ENC_PREFIX;
  m->cmvn_mean = nn_param(&r, P, "global_cmvn", "mean", 1, (int64_t[]){cfg->n_mels});
  m->cmvn_istd = nn_param(&r, P, "global_cmvn", "istd", 1, (int64_t[]){cfg->n_mels});
  nn_conv_cfg cc = {.dims = 2,
                    .in_ch = 1,
                    .out_ch = h,
                    .kernel = {3, 3},
                    .stride = {2, 2},
                    .bias = true,
                    .act = NN_ACT_RELU,
                    .conv = "conv.0"};
  nn_conv_init(&m->conv0, &r, AUDIO_ENC_PREFIX ".enc.0.core", &cc);
  cc.in_ch = h;
  cc.conv = "conv.2";
  nn_conv_init(&m->conv2, &r, AUDIO_ENC_PREFIX ".enc.0.core", &cc);
  nn_linear_init(&m->sub_out, &r, AUDIO_ENC_PREFIX ".enc.0.core", "out.0",
                 h * audio_enc_freq_out(cfg->n_mels), h, true);
  nn_linear_init(&m->embed, &r, AUDIO_ENC_PREFIX ".enc.1", "embed.0", h, h, true);
  nn_norm_init(&m->embed_norm, &r, AUDIO_ENC_PREFIX ".enc.1", "embed.1", NN_NORM_LAYER, h,
               cfg->norm_eps, true);
  m->blocks = calloc((size_t)(cfg->layers ? cfg->layers : 1), sizeof *m->blocks);
  if (!m->blocks) {
    snprintf(err, err_len, "audio encoder: out of memory");
    return -1;
  }
  nn_layer_cfg lc = block_cfg(cfg);
  for (int64_t i = 0; i < cfg->layers; i++) {
    char pre[96];
    snprintf(pre, sizeof pre, AUDIO_ENC_PREFIX ".enc.1.encoders.%lld", (long long)i);
    nn_layer_init(&m->blocks[i], &r, pre, &lc);
  }
  nn_norm_init(&m->after_norm, &r, AUDIO_ENC_PREFIX ".enc.1", "after_norm", NN_NORM_LAYER, h,
               cfg->norm_eps, true);
  if (cfg->ctc_vocab > 0)
    nn_linear_init(&m->ctc, &r, "model.audio_encoder.ctc", "ctc_lo", h, cfg->ctc_vocab, true);
  return nn_reg_failed(&r) ? -1 : 0;
}

void audio_enc_free(audio_enc *m) {
  if (!m) return;
  free(m->blocks);
  m->blocks = NULL;
}

/* torch's default for Linear and Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
 * (kaiming_uniform with a = sqrt(5) gives the same bound for the weight). */
static void init_fan_in(const vt_params *ps, vt_tensor *w, vt_tensor *b, int64_t fan_in,
                        vt_rng *rng) {
  float a = 1.0f / sqrtf((float)fan_in);
  nn_init_uniform(ps, w, rng, -a, a);
  nn_init_uniform(ps, b, rng, -a, a);
}

static void init_linear(const vt_params *ps, const nn_linear *l, vt_rng *rng) {
  init_fan_in(ps, l->w, l->b, l->in, rng);
}

void audio_enc_init_weights(audio_enc *m, vt_rng *rng) {
  const vt_params *ps = m->ps;
  const int64_t h = m->cfg.hidden;
  nn_init_const(ps, m->cmvn_mean, 0.0f);
  nn_init_const(ps, m->cmvn_istd, 1.0f);
  init_fan_in(ps, m->conv0.w, m->conv0.b, 9, rng);
  init_fan_in(ps, m->conv2.w, m->conv2.b, 9 * h, rng);
  init_linear(ps, &m->sub_out, rng);
  init_linear(ps, &m->embed, rng);
  nn_norm_init_weights(&m->embed_norm, ps);
  for (int64_t i = 0; i < m->cfg.layers; i++) {
    nn_layer *l = &m->blocks[i];
    init_linear(ps, &l->attn.q, rng);
    init_linear(ps, &l->attn.k, rng);
    init_linear(ps, &l->attn.v, rng);
    init_linear(ps, &l->attn.o, rng);
    float a = 1.0f / sqrtf((float)h);
    nn_init_uniform(ps, l->attn.pos.w, rng, -a, a);
    /* WeNet: xavier_uniform on pos_bias_u / v [H, d] */
    float x = sqrtf(6.0f / (float)(m->cfg.heads + h / m->cfg.heads));
    nn_init_uniform(ps, l->attn.pos_u, rng, -x, x);
    nn_init_uniform(ps, l->attn.pos_v, rng, -x, x);
    init_linear(ps, &l->mlp.fc1, rng);
    init_linear(ps, &l->mlp.fc2, rng);
    nn_norm_init_weights(&l->norm1, ps);
    nn_norm_init_weights(&l->norm2, ps);
  }
  nn_norm_init_weights(&m->after_norm, ps);
  if (m->cfg.ctc_vocab > 0) init_linear(ps, &m->ctc, rng);
}

void audio_enc_set_cmvn(audio_enc *m, const float *mean, const float *istd) {
  nn_write(m->ps, m->cmvn_mean, 0, mean, m->cfg.n_mels);
  nn_write(m->ps, m->cmvn_istd, 0, istd, m->cfg.n_mels);
}

/* The chunk of this forward: WeNet's add_optional_chunk_mask with dynamic chunks, or the
 * configured static chunk. *chunk 0 means full attention. */
static void pick_chunk(const audio_enc_cfg *c, int64_t t, vt_rng *rng, int64_t *chunk,
                       int64_t *left) {
  *chunk = 0;
  *left = -1;
  if (c->chunk_mode == AUDIO_ENC_CHUNK_STATIC) {
    *chunk = c->chunk_size;
    *left = c->left_chunks;
    return;
  }
  if (c->chunk_mode != AUDIO_ENC_CHUNK_DYNAMIC || !rng || t < 2) return;
  int64_t k = 1 + (int64_t)vt_rng_below(rng, (uint64_t)(t - 1)); /* randint(1, T) */
  if (k > t / 2) return;                                         /* full attention */
  *chunk = k % 25 + 1;
  if (c->dynamic_left) {
    int64_t max_left = (t - 1) / *chunk;
    *left = max_left > 0 ? (int64_t)vt_rng_below(rng, (uint64_t)max_left) : 0;
  }
}

vt_tensor *audio_enc_forward(audio_enc *m, vt_ctx *ctx, vt_tensor *x, const int32_t *lengths,
                             int32_t *out_lengths, audio_enc_fwd *fw) {
  const audio_enc_cfg *c = &m->cfg;
  if (vt_ctx_failed(ctx)) return x;
  if (x->ndim != 3 || x->shape[2] != c->n_mels) {
    char s[96];
    return vt_ctx_fail(ctx, "audio_enc", "fbank %s must be [B, T, %lld]",
                       vt_shape_str(x, s, sizeof s), (long long)c->n_mels);
  }
  const int64_t B = x->shape[0], T = x->shape[1], h = c->hidden;
  const int64_t T2 = audio_enc_out_len(T);
  if (T2 < 1)
    return vt_ctx_fail(ctx, "audio_enc", "%lld fbank frames give no encoder frame (need >= 7)",
                       (long long)T);
  if (T2 > c->max_pos)
    return vt_ctx_fail(ctx, "audio_enc", "%lld encoder frames exceed the position table of %lld",
                       (long long)T2, (long long)c->max_pos);
  /* CMVN per clip, then padded frames back to zero (valid outputs never read them) */
  float *mask = malloc(sizeof(float) * (size_t)(B * T));
  int32_t *ol = malloc(sizeof(int32_t) * (size_t)B);
  if (!mask || !ol) {
    free(mask);
    free(ol);
    return vt_ctx_fail(ctx, "audio_enc", "out of memory for masks");
  }
  for (int64_t b = 0; b < B; b++) {
    int64_t L = lengths[b] < 0 ? 0 : lengths[b] > T ? T : lengths[b];
    for (int64_t t = 0; t < T; t++) mask[b * T + t] = t < L ? 1.0f : 0.0f;
    ol[b] = (int32_t)audio_enc_out_len(L);
    if (out_lengths) out_lengths[b] = ol[b];
  }
  vt_tensor *mk = vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, 1}, mask);
  vt_tensor *lens = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, ol);
  free(mask);
  free(ol);
  x = vt_mul(ctx, vt_sub(ctx, x, vt_detach(ctx, m->cmvn_mean)), vt_detach(ctx, m->cmvn_istd));
  x = vt_mul(ctx, x, mk);

  nn_fwd f = {.training = fw && fw->training, .rng = fw ? fw->rng : NULL, .lengths = lens};
  nn_drop d = nn_drop_begin(ctx, &f, c->dropout > 0);
  /* subsampling: [B, 1, T, F] -> conv, ReLU, conv, ReLU -> [B, T', C * F'] -> Linear */
  x = vt_reshape(ctx, x, 4, (int64_t[]){B, 1, T, c->n_mels});
  x = nn_conv_forward(&m->conv2, ctx, nn_conv_forward(&m->conv0, ctx, x));
  const int64_t fo = audio_enc_freq_out(c->n_mels);
  x = vt_permute(ctx, x, (const int[]){0, 2, 1, 3}); /* [B, T', C, F'] */
  x = vt_reshape(ctx, x, 3, (int64_t[]){B, T2, h * fo});
  x = nn_linear_forward(&m->sub_out, ctx, x);
  /* input layer: Linear, LayerNorm, Dropout, ReLU; x * sqrt(d), dropout; pe with dropout */
  x = nn_norm_forward(&m->embed_norm, ctx, nn_linear_forward(&m->embed, ctx, x));
  x = vt_relu(ctx, nn_dropout(ctx, x, c->dropout, &d, 0));
  x = nn_dropout(ctx, vt_scale(ctx, x, sqrtf((float)h)), c->dropout, &d, 1);
  f.pos_emb = nn_dropout(ctx, nn_sinusoid_table(ctx, T2, h), c->dropout, &d, 2);

  int64_t chunk, left;
  pick_chunk(c, T2, f.training || c->chunk_mode == AUDIO_ENC_CHUNK_STATIC ? f.rng : NULL, &chunk,
             &left);
  if (chunk > 0) {
    f.mask = VT_ATTN_CHUNK;
    f.chunk_size = chunk;
    f.left_chunks = left;
  }
  if (fw) {
    fw->chunk_used = chunk;
    fw->left_used = left;
  }
  for (int64_t i = 0; i < c->layers; i++) x = nn_layer_forward(&m->blocks[i], ctx, x, &f);
  return nn_norm_forward(&m->after_norm, ctx, x);
}

vt_tensor *audio_enc_ctc_log_probs(audio_enc *m, vt_ctx *ctx, vt_tensor *h) {
  if (m->cfg.ctc_vocab <= 0) return vt_ctx_fail(ctx, "audio_enc", "the config has no CTC head");
  return vt_log_softmax(ctx, nn_linear_forward(&m->ctc, ctx, h));
}
