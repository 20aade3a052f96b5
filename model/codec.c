/* The codec's encoder, quantizer and generator; see codec.h. */
#include "model/codec.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define LRELU_SLOPE 0.1f /* HiFi-GAN's, everywhere but the encoder's last activation */

const int32_t CODEC_VITA_GLOBAL_TOKENS[8] = {473, 975, 419, 219, 565, 121, 550, 616};

codec_cfg codec_cfg_vita(void) {
  return (codec_cfg){.sample_rate = 24000,
                     .n_stages = 4,
                     .rates = {8, 5, 5, 3},
                     .kernels = {16, 11, 11, 5},
                     .n_res = 3,
                     .res_kernels = {3, 7, 11},
                     .n_dil = 3,
                     .res_dilations = {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}},
                     .enc_ch = 32,
                     .gen_ch = 512,
                     .group_ch = 16,
                     .global_hidden = 64,
                     .global_dim = 128,
                     .n_codes = 1024,
                     .n_global = 8,
                     .commitment = 0.25f,
                     .bn_momentum = 0.1f,
                     .bn_eps = 1e-5f};
}

int codec_hop(const codec_cfg *c) {
  int h = 1;
  for (int i = 0; i < c->n_stages; i++) h *= c->rates[i];
  return h;
}

int codec_latent(const codec_cfg *c) { return c->enc_ch << c->n_stages; }

/* The encoder stage whose output feeds the global branch (TiCodec: n_stages / 2 - 1). */
static int global_stage(const codec_cfg *c) { return c->n_stages / 2 - 1; }

bool codec_cfg_check(const codec_cfg *c, char *err, size_t len) {
#define BAD(...) return snprintf(err, len, __VA_ARGS__), false
  if (c->n_stages < 2 || c->n_stages > CODEC_MAX_STAGES)
    BAD("codec: n_stages %d: expected 2 to %d", c->n_stages, CODEC_MAX_STAGES);
  for (int i = 0; i < c->n_stages; i++)
    if (c->rates[i] < 1 || c->kernels[i] < c->rates[i] || (c->kernels[i] - c->rates[i]) % 2)
      BAD("codec: stage %d: kernel %d and rate %d: expected kernel >= rate with an even difference",
          i, c->kernels[i], c->rates[i]);
  if (c->n_res < 1 || c->n_res > CODEC_MAX_RES || c->n_dil < 1 || c->n_dil > NN_RES_MAX)
    BAD("codec: %d resblocks of %d dilations: expected 1 to %d of 1 to %d", c->n_res, c->n_dil,
        CODEC_MAX_RES, NN_RES_MAX);
  for (int j = 0; j < c->n_res; j++)
    if (c->res_kernels[j] < 1 || c->res_kernels[j] % 2 == 0)
      BAD("codec: resblock kernel %d: expected odd", c->res_kernels[j]);
  if (c->enc_ch < 1 || c->group_ch < 1 || c->enc_ch % c->group_ch)
    BAD("codec: enc_ch %d must be a multiple of group_ch %d", c->enc_ch, c->group_ch);
  if (c->gen_ch < 1 || c->gen_ch % (1 << c->n_stages))
    BAD("codec: gen_ch %d must be divisible by 2^%d", c->gen_ch, c->n_stages);
  if (c->global_dim < 1 || c->n_global < 1 || c->n_global > 16 || c->global_dim % c->n_global ||
      c->global_hidden < 1 || c->n_codes < 1)
    BAD("codec: global_dim %d over %d codebooks (at most 16), hidden %d, %d codes", c->global_dim,
        c->n_global, c->global_hidden, c->n_codes);
  bool meets = false;
  for (int i = 0; i < c->n_stages; i++) meets |= c->gen_ch >> (i + 1) == c->global_dim;
  if (!meets) BAD("codec: global_dim %d equals no generator stage width", c->global_dim);
  return true;
#undef BAD
}

static nn_conv_cfg conv1(int64_t in, int64_t out, int k, int stride, int pad, const char *name) {
  return (nn_conv_cfg){.dims = 1,
                       .in_ch = in,
                       .out_ch = out,
                       .kernel = {k},
                       .stride = {stride},
                       .pad = {pad, pad},
                       .bias = true,
                       .weight_norm = true,
                       .conv = name};
}

static void reg_resblock(nn_resblock *rb, nn_reg *r, const char *prefix, int idx, int64_t ch,
                         int kernel, const int *dil, int n_dil) {
  char name[64];
  snprintf(name, sizeof name, "%s.resblocks.%d", prefix, idx);
  nn_resblock_cfg rc = {
      .ch = ch, .kernel = kernel, .n = n_dil, .slope = LRELU_SLOPE, .weight_norm = true};
  memcpy(rc.dilations, dil, sizeof(int) * (size_t)n_dil);
  nn_resblock_init(rb, r, name, &rc);
}

void codec_init(codec *m, nn_reg *r, const codec_cfg *cfg) {
  memset(m, 0, sizeof *m);
  m->cfg = *cfg;
  char err[256];
  if (!codec_cfg_check(cfg, err, sizeof err)) {
    nn_reg_fail(r, "%s", err);
    return;
  }
  const codec_cfg *c = &m->cfg;
  int S = c->n_stages, R = c->n_res, lat = codec_latent(c);
  /* encoder: strides and kernels are the generator's reversed, so are the resblock kernels */
  nn_conv_cfg k = conv1(1, c->enc_ch, 7, 1, 3, "conv_pre");
  nn_conv_init(&m->e_pre, r, "encoder", &k);
  for (int i = 0; i < S; i++) {
    int s = c->rates[S - 1 - i], kk = c->kernels[S - 1 - i];
    int64_t ch = (int64_t)c->enc_ch << (i + 1);
    char name[32];
    snprintf(name, sizeof name, "ups.%d", i);
    k = conv1(ch / 2, ch, kk, s, (kk - s) / 2, name);
    k.act = NN_ACT_LEAKY_RELU;
    k.act_slope = LRELU_SLOPE;
    k.act_first = true;
    nn_conv_init(&m->e_ups[i], r, "encoder", &k);
    for (int j = 0; j < R; j++) {
      reg_resblock(&m->e_res[i * R + j], r, "encoder", i * R + j, ch, c->res_kernels[R - 1 - j],
                   c->res_dilations[R - 1 - j], c->n_dil);
      snprintf(name, sizeof name, "normalize.%d", i * R + j);
      m->e_norm_w[i * R + j] = nn_param(r, "encoder", name, "weight", 1, &ch);
      m->e_norm_b[i * R + j] = nn_param(r, "encoder", name, "bias", 1, &ch);
    }
  }
  k = conv1(lat, lat, 3, 1, 1, "conv_post");
  k.weight_norm = false;
  k.act = NN_ACT_LEAKY_RELU;
  k.act_slope = 0.01f; /* F.leaky_relu's default: TiCodec's encoder ends with it */
  k.act_first = true;
  nn_conv_init(&m->e_post, r, "encoder", &k);
  /* global token encoder on the output of stage global_stage */
  const char *gp = "encoder.GlobalTokenEncoder";
  int64_t gin = (int64_t)c->enc_ch << (global_stage(c) + 1), gd = c->global_dim;
  int64_t widths[4] = {gin, c->global_hidden, c->global_hidden, gd};
  const char *gnames[3] = {"conv.0", "conv.2", "conv.4"};
  for (int i = 0; i < 3; i++) {
    k = conv1(widths[i], widths[i + 1], 3, 1, 1, gnames[i]);
    k.bias = k.weight_norm = false;
    k.act = NN_ACT_LEAKY_RELU;
    k.act_slope = LRELU_SLOPE;
    nn_conv_init(&m->g_conv[i], r, gp, &k);
  }
  nn_linear_init(&m->g_fc, r, gp, "fn.0", gd, gd, true);
  m->bn_w = nn_param(r, gp, "fn.2", "weight", 1, &gd);
  m->bn_b = nn_param(r, gp, "fn.2", "bias", 1, &gd);
  m->bn_mean = nn_param(r, gp, "fn.2", "running_mean", 1, &gd);
  m->bn_var = nn_param(r, gp, "fn.2", "running_var", 1, &gd);
  /* quantizer */
  m->codebook = nn_param(r, "quantizer.quantizer_modules.0", "embedding", "weight", 2,
                         (int64_t[]){c->n_codes, lat});
  for (int j = 0; j < c->n_global; j++) {
    char name[64];
    snprintf(name, sizeof name, "quantizer.quantizer_modules_globaltokens.%d", j);
    m->g_codebooks[j] = nn_param(r, name, "embedding", "weight", 2,
                                 (int64_t[]){c->n_codes, c->global_dim / c->n_global});
  }
  /* generator */
  k = conv1(lat, c->gen_ch, 7, 1, 3, "conv_pre");
  nn_conv_init(&m->d_pre, r, "generator", &k);
  for (int i = 0; i < S; i++) {
    int64_t ch = c->gen_ch >> (i + 1);
    char name[32];
    snprintf(name, sizeof name, "ups.%d", i);
    k = conv1(ch * 2, ch, c->kernels[i], c->rates[i], 0, name);
    k.transpose = true;
    k.pad[0] = (c->kernels[i] - c->rates[i]) / 2; /* padding; pad[1] is output_padding (0) */
    k.pad[1] = 0;
    k.act = NN_ACT_LEAKY_RELU;
    k.act_slope = LRELU_SLOPE;
    k.act_first = true;
    nn_conv_init(&m->d_ups[i], r, "generator", &k);
    for (int j = 0; j < R; j++)
      reg_resblock(&m->d_res[i * R + j], r, "generator", i * R + j, ch, c->res_kernels[j],
                   c->res_dilations[j], c->n_dil);
  }
  k = conv1(c->gen_ch >> S, 1, 7, 1, 3, "conv_post");
  k.act = NN_ACT_LEAKY_RELU;
  k.act_slope = LRELU_SLOPE;
  k.act_first = true;
  nn_conv_init(&m->d_post, r, "generator", &k);
}

void codec_freeze_buffers(vt_params *ps) {
  vt_params_set_buffer(ps, "*.running_mean");
  vt_params_set_buffer(ps, "*.running_var");
}

/* torch's default conv / linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
static void init_default(const vt_params *ps, vt_tensor *w, vt_tensor *b, vt_rng *rng) {
  if (!w) return;
  float bound = 1.0f / sqrtf((float)(vt_numel(w) / w->shape[0]));
  nn_init_uniform(ps, w, rng, -bound, bound);
  nn_init_uniform(ps, b, rng, -bound, bound);
}

/* HiFi-GAN's init_weights: N(0, 0.01) on the weight (weight_v), bias left at torch's default. */
static void init_hifi(const nn_conv *c, const vt_params *ps, vt_rng *rng) {
  vt_tensor *w = c->v ? c->v : c->w;
  float bound = 1.0f / sqrtf((float)(vt_numel(w) / w->shape[0]));
  nn_init_normal(ps, w, rng, 0.0f, 0.01f);
  nn_init_uniform(ps, c->b, rng, -bound, bound);
  nn_conv_init_weight_norm(c, ps);
}

static void init_plain(const nn_conv *c, const vt_params *ps, vt_rng *rng) {
  init_default(ps, c->v ? c->v : c->w, c->b, rng);
  nn_conv_init_weight_norm(c, ps);
}

static void init_res(const nn_resblock *rb, const vt_params *ps, vt_rng *rng) {
  for (int i = 0; i < rb->cfg.n; i++) {
    init_hifi(&rb->c1[i], ps, rng);
    init_hifi(&rb->c2[i], ps, rng);
  }
}

void codec_init_weights(const codec *m, const vt_params *ps, vt_rng *rng) {
  const codec_cfg *c = &m->cfg;
  int S = c->n_stages, R = c->n_res;
  init_plain(&m->e_pre, ps, rng);
  for (int i = 0; i < S; i++) {
    init_hifi(&m->e_ups[i], ps, rng);
    for (int j = 0; j < R; j++) {
      init_res(&m->e_res[i * R + j], ps, rng);
      nn_init_const(ps, m->e_norm_w[i * R + j], 1.0f);
      nn_init_const(ps, m->e_norm_b[i * R + j], 0.0f);
    }
  }
  init_hifi(&m->e_post, ps, rng);
  for (int i = 0; i < 3; i++) init_hifi(&m->g_conv[i], ps, rng);
  init_default(ps, m->g_fc.w, m->g_fc.b, rng);
  nn_init_const(ps, m->bn_w, 1.0f);
  nn_init_const(ps, m->bn_b, 0.0f);
  nn_init_const(ps, m->bn_mean, 0.0f);
  nn_init_const(ps, m->bn_var, 1.0f);
  float cb = 1.0f / (float)c->n_codes;
  nn_init_uniform(ps, m->codebook, rng, -cb, cb);
  for (int j = 0; j < c->n_global; j++) nn_init_uniform(ps, m->g_codebooks[j], rng, -cb, cb);
  init_plain(&m->d_pre, ps, rng);
  for (int i = 0; i < S; i++) {
    init_hifi(&m->d_ups[i], ps, rng);
    for (int j = 0; j < R; j++) init_res(&m->d_res[i * R + j], ps, rng);
  }
  init_hifi(&m->d_post, ps, rng);
}

/* conv_pre and the first n encoder stages; *mid gets the global stage's output. */
static vt_tensor *enc_stages(const codec *m, vt_ctx *ctx, vt_tensor *x, int n, vt_tensor **mid) {
  const codec_cfg *c = &m->cfg;
  int R = c->n_res;
  x = nn_conv_forward(&m->e_pre, ctx, x);
  for (int i = 0; i < n; i++) {
    int64_t ch = (int64_t)c->enc_ch << (i + 1);
    /* without a tape, each stage keeps only its output (see vt_scope_begin) */
    vt_scope stage = vt_scope_begin(ctx);
    x = nn_conv_forward(&m->e_ups[i], ctx, x);
    vt_tensor *xs = NULL;
    for (int j = 0; j < R; j++) {
      vt_scope sc = vt_scope_begin(ctx);
      vt_tensor *rb = vt_scope_end(ctx, sc, nn_resblock_forward(&m->e_res[i * R + j], ctx, x));
      xs = xs ? vt_add(ctx, xs, rb) : rb;
      /* TiCodec normalises the running sum after each resblock, not each output */
      xs = vt_group_norm(ctx, xs, ch / c->group_ch, m->e_norm_w[i * R + j], m->e_norm_b[i * R + j],
                         1e-6f);
    }
    x = vt_scope_end(ctx, stage, vt_scale(ctx, xs, 1.0f / (float)R));
    if (i == global_stage(c) && mid) *mid = x;
  }
  return x;
}

static vt_tensor *global_encode(const codec *m, vt_ctx *ctx, vt_tensor *x, codec_mode mode) {
  for (int i = 0; i < 3; i++) x = nn_conv_forward(&m->g_conv[i], ctx, x);
  x = vt_mean(ctx, x, 2, false); /* [B, global_dim] */
  x = vt_leaky_relu(ctx, nn_linear_forward(&m->g_fc, ctx, x), LRELU_SLOPE);
  bool keep = mode == CODEC_TRAIN_KEEP_STATS;
  return vt_batch_norm1d(ctx, x, m->bn_w, m->bn_b, keep ? NULL : m->bn_mean,
                         keep ? NULL : m->bn_var, mode != CODEC_EVAL, m->cfg.bn_momentum,
                         m->cfg.bn_eps);
}

static bool check_wave(const codec *m, vt_ctx *ctx, vt_tensor *y, const char *op) {
  if (vt_ctx_failed(ctx)) return false;
  int hop = codec_hop(&m->cfg);
  if (y->ndim != 3 || y->shape[1] != 1 || y->shape[2] < hop || y->shape[2] % hop) {
    char s[96];
    vt_ctx_fail(ctx, op, "waveform %s must be [B, 1, L] with L a multiple of the hop %d",
                vt_shape_str(y, s, sizeof s), hop);
    return false;
  }
  return true;
}

vt_tensor *codec_encode(const codec *m, vt_ctx *ctx, vt_tensor *y, codec_mode mode, vt_tensor **g) {
  if (g) *g = y;
  if (!check_wave(m, ctx, y, "codec_encode")) return y;
  vt_tensor *mid = NULL;
  vt_tensor *x = enc_stages(m, ctx, y, m->cfg.n_stages, &mid);
  if (g) *g = global_encode(m, ctx, mid, mode);
  return nn_conv_forward(&m->e_post, ctx, x);
}

vt_tensor *codec_global_target(const codec *m, vt_ctx *ctx, vt_tensor *yy, codec_mode mode) {
  if (!check_wave(m, ctx, yy, "codec_global_target")) return yy;
  vt_tensor *mid = NULL;
  enc_stages(m, ctx, yy, global_stage(&m->cfg) + 1, &mid);
  return vt_detach(ctx, global_encode(m, ctx, mid, mode));
}

/* Straight-through quantisation of x [N, d] by one codebook: zq (the gradient to x), the
 * codebook rows (the gradient to the codebook) and the codes. */
static vt_tensor *vq_rows(vt_ctx *ctx, vt_tensor *x, vt_tensor *cb, vt_tensor **rows,
                          vt_tensor **idx) {
  vt_tensor *zq = vt_vq_ste(ctx, x, cb, idx);
  *rows = vt_embedding(ctx, cb, *idx);
  return zq;
}

codec_vq codec_quantize(const codec *m, vt_ctx *ctx, vt_tensor *c, vt_tensor *g) {
  const codec_cfg *k = &m->cfg;
  codec_vq r = {c, c, g, g, c};
  if (vt_ctx_failed(ctx)) return r;
  int64_t lat = codec_latent(k), gd = k->global_dim, ng = k->n_global;
  if (c->ndim != 3 || c->shape[1] != lat || g->ndim != 2 || g->shape[0] != c->shape[0] ||
      g->shape[1] != gd) {
    char s1[96], s2[96];
    r.loss = vt_ctx_fail(ctx, "codec_quantize",
                         "latent %s and global %s must be [B, %lld, T], [B, %lld]",
                         vt_shape_str(c, s1, sizeof s1), vt_shape_str(g, s2, sizeof s2),
                         (long long)lat, (long long)gd);
    return r;
  }
  int64_t B = c->shape[0], T = c->shape[2];
  vt_tensor *x = vt_transpose(ctx, c, 1, 2), *rows, *idx; /* [B, T, latent] */
  vt_tensor *zq = vq_rows(ctx, x, m->codebook, &rows, &idx);
  r.q = vt_transpose(ctx, zq, 1, 2);
  r.idx = idx;
  /* codebook term (gradient to the codebook) + commitment term (gradient to x) */
  vt_tensor *loss = vt_vq_loss(ctx, rows, x, k->commitment);
  vt_tensor *gparts[16], *grows[16], *gidx[16];
  for (int j = 0; j < ng; j++) {
    vt_tensor *part = vt_slice(ctx, g, 1, j * (gd / ng), (j + 1) * (gd / ng));
    gparts[j] = vq_rows(ctx, part, m->g_codebooks[j], &grows[j], &gidx[j]);
    gidx[j] = vt_reshape(ctx, gidx[j], 2, (int64_t[]){B, 1});
  }
  r.gq = vt_concat(ctx, gparts, (int)ng, 1);
  loss = vt_add(ctx, loss, vt_vq_loss(ctx, vt_concat(ctx, grows, (int)ng, 1), g, k->commitment));
  r.loss = loss;
  /* the codes as i32 [B, n_global]: concat works on f32 only, so gather them on the host */
  int32_t host[16 * 64];
  if (!vt_ctx_failed(ctx) && B <= 64) {
    for (int j = 0; j < ng; j++) {
      int32_t col[64];
      vt_to_host(ctx, gidx[j], col);
      for (int64_t b = 0; b < B; b++) host[b * ng + j] = col[b];
    }
    r.gidx = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, ng}, host);
  } else if (!vt_ctx_failed(ctx)) {
    r.gidx = vt_ctx_fail(ctx, "codec_quantize", "batch %lld: at most 64 for the global codes",
                         (long long)B);
  }
  (void)T;
  return r;
}

void codec_embed(const codec *m, vt_ctx *ctx, vt_tensor *idx, vt_tensor *gidx, vt_tensor **q,
                 vt_tensor **gq) {
  const codec_cfg *k = &m->cfg;
  *q = *gq = idx;
  if (vt_ctx_failed(ctx)) return;
  if (idx->dtype != VT_I32 || idx->ndim != 2 || gidx->dtype != VT_I32 || gidx->ndim != 2 ||
      gidx->shape[1] != k->n_global || gidx->shape[0] != idx->shape[0]) {
    char s1[96], s2[96];
    *q = *gq = vt_ctx_fail(
        ctx, "codec_embed", "codes %s and global codes %s must be i32 [B, T], [B, %d]",
        vt_shape_str(idx, s1, sizeof s1), vt_shape_str(gidx, s2, sizeof s2), k->n_global);
    return;
  }
  *q = vt_transpose(ctx, vt_embedding(ctx, m->codebook, idx), 1, 2);
  int64_t B = idx->shape[0];
  int32_t host[16 * 64];
  if (B > 64) {
    *gq = vt_ctx_fail(ctx, "codec_embed", "batch %lld: at most 64", (long long)B);
    return;
  }
  vt_to_host(ctx, gidx, host);
  vt_tensor *parts[16];
  for (int j = 0; j < k->n_global; j++) {
    int32_t col[64];
    for (int64_t b = 0; b < B; b++) col[b] = host[b * k->n_global + j];
    parts[j] = vt_embedding(ctx, m->g_codebooks[j], vt_from_host(ctx, VT_I32, 1, &B, col));
  }
  *gq = vt_concat(ctx, parts, k->n_global, 1);
}

vt_tensor *codec_decode(const codec *m, vt_ctx *ctx, vt_tensor *q, vt_tensor *gq) {
  const codec_cfg *c = &m->cfg;
  if (vt_ctx_failed(ctx)) return q;
  if (gq->ndim != 2 || gq->shape[1] != c->global_dim || q->ndim != 3 ||
      gq->shape[0] != q->shape[0]) {
    char s1[96], s2[96];
    return vt_ctx_fail(ctx, "codec_decode", "latent %s and global %s must be [B, %d, T], [B, %d]",
                       vt_shape_str(q, s1, sizeof s1), vt_shape_str(gq, s2, sizeof s2),
                       codec_latent(c), c->global_dim);
  }
  int R = c->n_res;
  vt_tensor *gcol = vt_reshape(ctx, gq, 3, (int64_t[]){gq->shape[0], gq->shape[1], 1});
  vt_tensor *x = nn_conv_forward(&m->d_pre, ctx, q);
  for (int i = 0; i < c->n_stages; i++) {
    vt_scope stage = vt_scope_begin(ctx); /* a no-op with a tape */
    x = nn_conv_forward(&m->d_ups[i], ctx, x);
    vt_tensor *xs = NULL;
    for (int j = 0; j < R; j++) {
      vt_scope sc = vt_scope_begin(ctx);
      vt_tensor *rb = vt_scope_end(ctx, sc, nn_resblock_forward(&m->d_res[i * R + j], ctx, x));
      xs = xs ? vt_add(ctx, xs, rb) : rb;
    }
    x = vt_scale(ctx, xs, 1.0f / (float)R);
    if ((c->gen_ch >> (i + 1)) == c->global_dim) x = vt_add(ctx, x, gcol);
    x = vt_scope_end(ctx, stage, x);
  }
  return vt_tanh(ctx, nn_conv_forward(&m->d_post, ctx, x));
}
