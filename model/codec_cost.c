/* The codec's cost counts; see codec_cost.h. Each helper adds one block's forward (FLOPs
 * against weights, f32 values of its op outputs, and of those the ones no gradient mirrors)
 * and returns its output length. */
#include "model/codec_cost.h"

#include <math.h>
#include <stdio.h>

#include "model/model_cost.h"

static int or1(int v) { return v > 0 ? v : 1; }

/* nn_conv_forward of a 1-D conv over [B, in_ch, L] (plain, strided, dilated, transposed). */
static int64_t conv1(const nn_conv_cfg *k, int64_t B, int64_t L, nn_cost *c) {
  int K = k->kernel[0], s = or1(k->stride[0]), dil = or1(k->dilation), grp = or1(k->groups);
  int64_t lo = k->transpose ? (L - 1) * s - 2 * k->pad[0] + K + k->pad[1]
                            : (L + k->pad[0] + k->pad[1] - (int64_t)dil * (K - 1) - 1) / s + 1;
  double w = (double)k->out_ch * (double)(k->in_ch / grp) * K, in = (double)(B * k->in_ch * L),
         out = (double)(B * k->out_ch * lo);
  c->flops_weight += 2.0 * w * (double)B * (double)(k->transpose ? L : lo);
  if (k->act != NN_ACT_NONE) c->act_floats += k->act_first ? in : out;
  if (k->weight_norm) c->act_floats += w + (double)k->out_ch, c->nograd_floats += (double)k->out_ch;
  c->act_floats += out;
  if (k->norm != NN_CONV_NORM_NONE) c->act_floats += 2 * out;
  return lo;
}

/* A 2-D conv over [B, in_ch, H, W]: *h, *w become the output's. */
static void conv2(const nn_conv_cfg *k, int64_t B, int64_t *h, int64_t *w, nn_cost *c) {
  int64_t ho = (*h + 2 * k->pad[0] - k->kernel[0]) / or1(k->stride[0]) + 1;
  int64_t wo = (*w + 2 * k->pad[1] - k->kernel[1]) / or1(k->stride[1]) + 1;
  double wn = (double)k->out_ch * (double)k->in_ch * k->kernel[0] * k->kernel[1],
         out = (double)(B * k->out_ch * ho * wo);
  c->flops_weight += 2.0 * wn * (double)(B * ho * wo);
  if (k->act != NN_ACT_NONE) c->act_floats += k->act_first ? (double)(B * k->in_ch * *h * *w) : out;
  if (k->weight_norm)
    c->act_floats += wn + (double)k->out_ch, c->nograd_floats += (double)k->out_ch;
  c->act_floats += out;
  *h = ho, *w = wo;
}

/* ResBlock1: per dilation two convs and the residual add. */
static void resblock(const nn_resblock *rb, int64_t B, int64_t L, nn_cost *c) {
  for (int i = 0; i < rb->cfg.n; i++) {
    conv1(&rb->c1[i].cfg, B, L, c);
    conv1(&rb->c2[i].cfg, B, L, c);
    c->act_floats += (double)(B * rb->cfg.ch * L);
  }
}

/* A stage of R resblocks after its upsampling (or downsampling) conv: the running sum, its
 * GroupNorm after each resblock (encoder), the mean. Returns the stage's output length. */
static int64_t stage(const nn_conv *up, const nn_resblock *res, int R, bool norm, int64_t B,
                     int64_t L, nn_cost *c) {
  L = conv1(&up->cfg, B, L, c);
  double v = (double)(B * up->cfg.out_ch * L);
  for (int j = 0; j < R; j++) {
    resblock(&res[j], B, L, c);
    c->act_floats += (j ? v : 0) + (norm ? 2 * v : 0);
  }
  c->act_floats += v;
  return L;
}

/* The encoder up to stage n (all: n_stages) from [B, 1, L]; the global stage's output length
 * in *mid. Returns the latent's length. */
static int64_t encoder(const codec *m, int n, int64_t B, int64_t L, int64_t *mid, nn_cost *c) {
  const codec_cfg *k = &m->cfg;
  L = conv1(&m->e_pre.cfg, B, L, c);
  for (int i = 0; i < n; i++) {
    L = stage(&m->e_ups[i], &m->e_res[i * k->n_res], k->n_res, true, B, L, c);
    if (i == k->n_stages / 2 - 1) *mid = L;
  }
  return L;
}

static void global_branch(const codec *m, int64_t B, int64_t L, nn_cost *c) {
  for (int i = 0; i < 3; i++) L = conv1(&m->g_conv[i].cfg, B, L, c);
  double gd = (double)(B * m->cfg.global_dim);
  nn_cost_add(c, nn_cost_linear(m->cfg.global_dim, m->cfg.global_dim, true, B));
  c->act_floats += 5 * gd; /* mean, LeakyReLU, BatchNorm (output, normalised input, stats) */
}

/* The generator's forward of one micro-batch from the encoder's input: the codec's part. */
static void codec_fwd(const codec *m, int64_t B, int64_t L, bool target, nn_cost *c) {
  const codec_cfg *k = &m->cfg;
  int64_t mid = 0, lat = codec_latent(k);
  int64_t T = encoder(m, k->n_stages, B, L, &mid, c);
  T = conv1(&m->e_post.cfg, B, T, c);
  global_branch(m, B, mid, c);
  if (target) { /* the consistency target: the second segment through the global stage */
    int64_t mid2 = 0;
    encoder(m, k->n_stages / 2, B, L, &mid2, c);
    global_branch(m, B, mid2, c);
    c->act_floats += 4.0 * (double)(B * k->global_dim); /* the cosine loss */
  }
  /* quantizer: transposed latent, the straight-through output, the rows, the loss's
   * differences, transposed back; the codes and the global branch's parts (small) */
  double q = (double)(B * T * lat);
  c->flops_weight += 3.0 * q * (double)k->n_codes; /* nearest of n_codes by distance */
  c->act_floats += 5 * q + (double)(B * T) + 6.0 * (double)(B * k->global_dim);
  c->nograd_floats += (double)(B * T);
  T = conv1(&m->d_pre.cfg, B, T, c);
  for (int i = 0; i < k->n_stages; i++) {
    T = stage(&m->d_ups[i], &m->d_res[i * k->n_res], k->n_res, false, B, T, c);
    if ((k->gen_ch >> (i + 1)) == k->global_dim) c->act_floats += (double)(B * k->global_dim * T);
  }
  T = conv1(&m->d_post.cfg, B, T, c);
  c->act_floats += (double)(B * T); /* tanh */
}

/* MPD, MSD and MS-STFT on one batch of [B, 1, L]. */
static void discs(const disc *d, int64_t B, int64_t L, nn_cost *c) {
  const disc_cfg *k = &d->cfg;
  for (int i = 0; i < k->n_periods; i++) {
    const disc_p *p = &d->mpd[i];
    int64_t t = (L + p->period - 1) / p->period * p->period, h = t / p->period, w = p->period;
    if (t != L) c->act_floats += (double)(B * t);
    for (int j = 0; j < 5; j++) conv2(&p->convs[j].cfg, B, &h, &w, c);
    conv2(&p->post.cfg, B, &h, &w, c);
  }
  int64_t ls = L;
  for (int i = 0; i < k->n_scales; i++) {
    const disc_s *s = &d->msd[i];
    if (i) { /* the average pool (k 4, stride 2, pad 2) before scales 1, 2, ... */
      ls = (ls + 4 - 4) / 2 + 1;
      c->act_floats += (double)(B * ls);
    }
    int64_t l = ls, ch = 1;
    for (int j = 0; j < 8; j++) {
      if (s->spectral) {
        int64_t out = j < 7 ? k->msd_ch[j] : 1, K = s->kernel[j], g = or1(s->groups[j]);
        l = (l + 2 * ((K - 1) / 2) - K) / or1(s->stride[j]) + 1;
        double wn = (double)(out * (ch / g) * K), o = (double)(B * out * l);
        c->flops_weight += 2.0 * wn * (double)(B * l);
        c->act_floats += 2 * wn + 4 + o + (j < 7 ? o : 0); /* W / sigma, the conv, LeakyReLU */
        ch = out;
      } else {
        l = conv1(&(j < 7 ? &s->convs[j] : &s->post)->cfg, B, l, c);
      }
    }
  }
  for (int i = 0; i < k->n_stft; i++) {
    const disc_stft *s = &d->stft[i];
    int64_t f = s->n_fft / 2 + 1, t = L / s->hop + 1;
    double spec = (double)(B * f * t * 2);
    c->flops_weight += (double)(B * t) * 5.0 * s->n_fft * log2((double)s->n_fft);
    c->act_floats += 3 * spec; /* the STFT, scaled, permuted */
    conv2(&s->convs[0].cfg, B, &t, &f, c);
    for (int j = 1; j <= 3; j++) {
      const nn_conv_cfg *q = &s->convs[j].cfg;
      int64_t dl = s->dilations[j - 1], ch = q->in_ch,
              fo = (f + 2 * (q->kernel[1] / 2) - q->kernel[1]) / 2 + 1;
      double in = (double)(B * ch * (t + 2 * dl) * f), out = (double)(B * q->out_ch * t * fo),
             wn = (double)(q->out_ch * ch * q->kernel[0] * q->kernel[1]);
      c->flops_weight += 2.0 * wn * (double)(B * t * fo);
      /* weight norm, zeros, the padded concat, 3 slices and 3 tap convs, 2 adds, LeakyReLU */
      c->act_floats += wn + (double)q->out_ch + 2.0 * (double)(B * ch * dl * f) + in +
                       3.0 * (double)(B * ch * t * f) + 6 * out;
      c->nograd_floats += (double)q->out_ch;
      f = fo;
    }
    conv2(&s->convs[4].cfg, B, &t, &f, c);
    conv2(&s->post.cfg, B, &t, &f, c);
  }
}

/* The log-mel spectrograms of the three resolutions of one batch [B, L]. */
static void mels(const codec_gan_cfg *g, int64_t B, int64_t L, nn_cost *c) {
  for (int i = 0; i < CODEC_N_MEL; i++) {
    int64_t n = g->mel_n_fft[i], f = n / 2 + 1, t = L / g->mel_hop[i];
    c->flops_weight +=
        (double)(B * t) * (5.0 * (double)n * log2((double)n) + 2.0 * (double)(f * g->n_mels));
    /* the reflect pad, the STFT, its magnitude, the mel product, the log */
    c->act_floats += (double)(B * (L + n - g->mel_hop[i])) + 3.0 * (double)(B * f * t) +
                     2.0 * (double)(B * g->n_mels * t);
  }
}

static void set(vt_model_cost *p, const char *name, const char *params, unsigned inputs, int phase,
                nn_cost c, bool tape) {
  model_cost_part(p, name, params, (nn_cost){0}, 0, 0, 0, c, 0);
  p->inputs = inputs;
  p->phase = phase;
  p->act_bytes -= 4.0 * c.nograd_floats; /* no gradient of their own */
  if (!tape) p->act_bytes = p->act_bytes_recompute = p->act_bytes_frozen = 4.0 * c.act_floats;
  p->act_bytes_recompute = p->act_bytes;
}

int codec_cost_parts(const codec *m, const disc *d, const codec_gan_cfg *g, int segment,
                     vt_model_shape *s, vt_model_cost *parts) {
  if (s->batch <= 0) s->batch = 1;
  s->tokens = segment;
  int64_t B = s->batch, L = segment;
  static const char *const gen = "encoder.*,quantizer.*,generator.*", *dsc = "mpd.*,msd.*,mstftd.*";
  nn_cost cod = {0}, cod_t = {0}, dd = {0}, d1 = {0}, mel = {0};
  codec_fwd(m, B, L, false, &cod);
  codec_fwd(m, B, L, true, &cod_t);
  discs(d, 2 * B, L, &dd); /* real and generated in the disc phase */
  discs(d, B, L, &d1);
  mels(g, 2 * B, L, &mel);
  set(&parts[0], "disc.codec", "", VT_MODEL_COST_ROOT, 0, cod, false);
  set(&parts[1], "disc.discriminators", dsc, VT_MODEL_COST_ROOT, 0, dd, true);
  set(&parts[2], "gen.codec", gen, VT_MODEL_COST_ROOT, 1, cod_t, true);
  set(&parts[3], "gen.disc_fake", "", 1u << 2, 1, d1, true);
  set(&parts[4], "gen.disc_real", "", VT_MODEL_COST_ROOT, 1, d1, false);
  set(&parts[5], "gen.mel", "", 1u << 2, 1, mel, true);
  return 6;
}
