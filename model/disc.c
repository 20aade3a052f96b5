/* The codec's discriminators; see disc.h. */
#include "model/disc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/mel.h"

#define LRELU_SLOPE 0.1f /* HiFi-GAN's discriminators */
#define STFT_SLOPE 0.2f  /* EnCodec's STFT discriminator */

static const int MSD_K[8] = {15, 41, 41, 41, 41, 41, 5, 3};
static const int MSD_S[8] = {1, 2, 2, 4, 4, 1, 1, 1};

disc_cfg disc_cfg_vita(void) {
  return (disc_cfg){.n_periods = 5,
                    .periods = {2, 3, 5, 7, 11},
                    .mpd_ch = {32, 128, 512, 1024, 1024},
                    .n_scales = 3,
                    .msd_ch = {128, 128, 256, 512, 1024, 1024, 1024},
                    .msd_groups = {1, 4, 16, 16, 16, 16, 1},
                    .n_stft = 5,
                    .stft_n_fft = {1024, 2048, 512, 256, 128},
                    .stft_hop = {256, 512, 128, 64, 32},
                    .stft_filters = 32,
                    .stft_dilations = {1, 2, 4}};
}

static nn_conv_cfg conv_cfg(int dims, int64_t in, int64_t out, int k0, int k1, int s0, int s1,
                            int p0, int p1, const char *name) {
  return (nn_conv_cfg){.dims = dims,
                       .in_ch = in,
                       .out_ch = out,
                       .kernel = {k0, k1},
                       .stride = {s0, s1},
                       .pad = {p0, p1},
                       .bias = true,
                       .weight_norm = true,
                       .conv = name};
}

static void sn_init(disc_sn *sn, nn_reg *r, const char *prefix, const char *name, int64_t out,
                    int64_t in, int k) {
  int64_t shape[3] = {out, in, k}, rest = in * k;
  sn->w = nn_param(r, prefix, name, "weight_orig", 3, shape);
  sn->b = nn_param(r, prefix, name, "bias", 1, &out);
  sn->u = nn_param(r, prefix, name, "weight_u", 1, &out);
  sn->v = nn_param(r, prefix, name, "weight_v", 1, &rest);
}

bool disc_init(disc *d, nn_reg *r, const disc_cfg *cfg) {
  memset(d, 0, sizeof *d);
  d->cfg = *cfg;
  const disc_cfg *c = &d->cfg;
  if (c->n_periods < 0 || c->n_periods > DISC_MAX_SUB || c->n_scales < 0 ||
      c->n_scales > DISC_MAX_SUB || c->n_stft < 0 || c->n_stft > DISC_MAX_SUB) {
    nn_reg_fail(r, "disc: %d periods, %d scales, %d STFT scales: at most %d each", c->n_periods,
                c->n_scales, c->n_stft, DISC_MAX_SUB);
    return true;
  }
  char prefix[64], name[32];
  for (int k = 0; k < c->n_periods; k++) {
    disc_p *p = &d->mpd[k];
    p->period = c->periods[k];
    snprintf(prefix, sizeof prefix, "mpd.discriminators.%d", k);
    int64_t in = 1;
    for (int i = 0; i < 5; i++) {
      snprintf(name, sizeof name, "convs.%d", i);
      nn_conv_cfg cc = conv_cfg(2, in, c->mpd_ch[i], 5, 1, i < 4 ? 3 : 1, 1, 2, 0, name);
      cc.act = NN_ACT_LEAKY_RELU;
      cc.act_slope = LRELU_SLOPE;
      nn_conv_init(&p->convs[i], r, prefix, &cc);
      in = c->mpd_ch[i];
    }
    nn_conv_cfg cc = conv_cfg(2, in, 1, 3, 1, 1, 1, 1, 0, "conv_post");
    nn_conv_init(&p->post, r, prefix, &cc);
  }
  for (int k = 0; k < c->n_scales; k++) {
    disc_s *s = &d->msd[k];
    s->spectral = k == 0;
    snprintf(prefix, sizeof prefix, "msd.discriminators.%d", k);
    int64_t in = 1;
    for (int i = 0; i < 8; i++) {
      int64_t out = i < 7 ? c->msd_ch[i] : 1;
      int groups = i < 7 ? c->msd_groups[i] : 1;
      s->kernel[i] = MSD_K[i];
      s->stride[i] = MSD_S[i];
      s->groups[i] = groups;
      if (i < 7)
        snprintf(name, sizeof name, "convs.%d", i);
      else
        snprintf(name, sizeof name, "conv_post");
      if (groups < 1 || in % groups || out % groups) {
        nn_reg_fail(r, "%s.%s: %lld -> %lld channels do not split into %d groups", prefix, name,
                    (long long)in, (long long)out, groups);
        return true;
      }
      if (s->spectral) {
        sn_init(&s->sn[i], r, prefix, name, out, in / groups, MSD_K[i]);
      } else {
        int pad = (MSD_K[i] - 1) / 2;
        nn_conv_cfg cc = conv_cfg(1, in, out, MSD_K[i], 0, MSD_S[i], 0, pad, pad, name);
        cc.groups = groups;
        if (i < 7) {
          cc.act = NN_ACT_LEAKY_RELU;
          cc.act_slope = LRELU_SLOPE;
        }
        nn_conv_init(i < 7 ? &s->convs[i] : &s->post, r, prefix, &cc);
      }
      in = out;
    }
  }
  for (int k = 0; k < c->n_stft; k++) {
    disc_stft *s = &d->stft[k];
    s->n_fft = c->stft_n_fft[k];
    s->hop = c->stft_hop[k];
    memcpy(s->dilations, c->stft_dilations, sizeof s->dilations);
    if (s->n_fft < 2 || s->n_fft % 2 || s->hop < 1) {
      nn_reg_fail(r, "disc: STFT scale %d: n_fft %d (even) and hop %d", k, s->n_fft, s->hop);
      return true;
    }
    snprintf(prefix, sizeof prefix, "mstftd.discriminators.%d", k);
    int64_t f = c->stft_filters;
    nn_conv_cfg cc = conv_cfg(2, 2, f, 3, 9, 1, 1, 1, 4, "convs.0.conv");
    cc.weight_norm = false; /* EnCodec's first STFT conv has no norm */
    cc.act = NN_ACT_LEAKY_RELU;
    cc.act_slope = STFT_SLOPE;
    nn_conv_init(&s->convs[0], r, prefix, &cc);
    for (int i = 1; i <= 3; i++) {
      snprintf(name, sizeof name, "convs.%d.conv", i);
      cc = conv_cfg(2, f, f, 3, 9, 1, 2, 0, 4, name); /* dilated: run by taps (stft_dilated) */
      nn_conv_init(&s->convs[i], r, prefix, &cc);
    }
    cc = conv_cfg(2, f, f, 3, 3, 1, 1, 1, 1, "convs.4.conv");
    cc.act = NN_ACT_LEAKY_RELU;
    cc.act_slope = STFT_SLOPE;
    nn_conv_init(&s->convs[4], r, prefix, &cc);
    cc = conv_cfg(2, f, 1, 3, 3, 1, 1, 1, 1, "conv_post.conv");
    nn_conv_init(&s->post, r, prefix, &cc);
    s->win = malloc(sizeof(float) * (size_t)s->n_fft);
    if (!s->win) return false;
    mel_hann_window(s->win, s->n_fft);
  }
  return true;
}

void disc_free(disc *d) {
  for (int k = 0; k < DISC_MAX_SUB; k++) {
    free(d->stft[k].win);
    d->stft[k].win = NULL;
  }
}

void disc_freeze_buffers(vt_params *ps) {
  vt_params_set_buffer(ps, "*.weight_u");
  /* the spectral-normed scale 0: its weight_v is the power iteration's v, not weight norm's */
  vt_params_set_buffer(ps, "msd.discriminators.0.*.weight_v");
}

static void init_conv(const nn_conv *c, const vt_params *ps, vt_rng *rng) {
  vt_tensor *w = c->v ? c->v : c->w;
  if (!w) return;
  float bound = 1.0f / sqrtf((float)(vt_numel(w) / w->shape[0]));
  nn_init_uniform(ps, w, rng, -bound, bound);
  nn_init_uniform(ps, c->b, rng, -bound, bound);
  nn_conv_init_weight_norm(c, ps);
}

/* A random unit vector, as torch's spectral_norm starts u and v. */
static void init_unit(const vt_params *ps, vt_tensor *t, vt_rng *rng) {
  int64_t n = vt_numel(t);
  float *h = malloc(sizeof(float) * (size_t)n);
  if (!h) return;
  double s = 0;
  for (int64_t i = 0; i < n; i++) {
    h[i] = vt_rng_normal(rng);
    s += (double)h[i] * h[i];
  }
  for (int64_t i = 0; i < n; i++) h[i] = (float)(h[i] / (sqrt(s) + 1e-12));
  nn_write(ps, t, 0, h, n);
  free(h);
}

void disc_init_weights(const disc *d, const vt_params *ps, vt_rng *rng) {
  const disc_cfg *c = &d->cfg;
  for (int k = 0; k < c->n_periods; k++) {
    for (int i = 0; i < 5; i++) init_conv(&d->mpd[k].convs[i], ps, rng);
    init_conv(&d->mpd[k].post, ps, rng);
  }
  for (int k = 0; k < c->n_scales; k++) {
    const disc_s *s = &d->msd[k];
    if (s->spectral) {
      for (int i = 0; i < 8; i++) {
        const disc_sn *sn = &s->sn[i];
        float bound = 1.0f / sqrtf((float)(vt_numel(sn->w) / sn->w->shape[0]));
        nn_init_uniform(ps, sn->w, rng, -bound, bound);
        nn_init_uniform(ps, sn->b, rng, -bound, bound);
        init_unit(ps, sn->u, rng);
        init_unit(ps, sn->v, rng);
      }
    } else {
      for (int i = 0; i < 7; i++) init_conv(&s->convs[i], ps, rng);
      init_conv(&s->post, ps, rng);
    }
  }
  for (int k = 0; k < c->n_stft; k++) {
    for (int i = 0; i < 5; i++) init_conv(&d->stft[k].convs[i], ps, rng);
    init_conv(&d->stft[k].post, ps, rng);
  }
}

static bool check_wave(vt_ctx *ctx, vt_tensor *x, const char *op) {
  if (vt_ctx_failed(ctx)) return false;
  if (x->ndim != 3 || x->shape[1] != 1) {
    char s[96];
    vt_ctx_fail(ctx, op, "waveform %s must be [B, 1, L]", vt_shape_str(x, s, sizeof s));
    return false;
  }
  return true;
}

/* HiFi-GAN's discriminators end their fmaps with the post conv's output, flattened as logits. */
static disc_out finish(vt_ctx *ctx, disc_out o, vt_tensor *x) {
  o.fmap[o.n_fmap++] = x;
  o.logit = vt_reshape(ctx, x, 2, (int64_t[]){x->shape[0], -1});
  return o;
}

disc_out disc_p_forward(const disc_p *p, vt_ctx *ctx, vt_tensor *x) {
  disc_out o = {.logit = x};
  if (!check_wave(ctx, x, "disc_p")) return o;
  int64_t b = x->shape[0], t = x->shape[2];
  if (t % p->period) {
    x = mel_reflect_pad(ctx, x, 0, p->period - (int)(t % p->period));
    t = x->shape[2];
  }
  x = vt_reshape(ctx, x, 4, (int64_t[]){b, 1, t / p->period, p->period});
  for (int i = 0; i < 5; i++) o.fmap[o.n_fmap++] = x = nn_conv_forward(&p->convs[i], ctx, x);
  return finish(ctx, o, nn_conv_forward(&p->post, ctx, x));
}

/* torch.nn.utils.spectral_norm in train mode: v = normalize(W^T u), u = normalize(W v) without
 * gradient (written back to weight_u / weight_v), then W / (u . W v) with the gradient through
 * W. Eval mode uses the stored u, v. */
static vt_tensor *sn_weight(const disc_sn *sn, vt_ctx *ctx, bool training) {
  if (vt_ctx_failed(ctx)) return sn->w;
  int64_t o = sn->w->shape[0], rest = vt_numel(sn->w) / o;
  if (training) {
    float *w = malloc(sizeof(float) * (size_t)(o * rest)), *u = malloc(sizeof(float) * (size_t)o),
          *v = malloc(sizeof(float) * (size_t)rest);
    double *tmp = malloc(sizeof(double) * (size_t)(o > rest ? o : rest));
    if (!w || !u || !v || !tmp) {
      free(w), free(u), free(v), free(tmp);
      return vt_ctx_fail(ctx, "spectral_norm", "out of memory for a %lld x %lld weight",
                         (long long)o, (long long)rest);
    }
    vt_to_host(ctx, sn->w, w);
    vt_to_host(ctx, sn->u, u);
    double s = 0;
    for (int64_t j = 0; j < rest; j++) tmp[j] = 0;
    for (int64_t i = 0; i < o; i++)
      for (int64_t j = 0; j < rest; j++) tmp[j] += (double)w[i * rest + j] * u[i];
    for (int64_t j = 0; j < rest; j++) s += tmp[j] * tmp[j];
    s = fmax(sqrt(s), 1e-12); /* F.normalize's eps */
    for (int64_t j = 0; j < rest; j++) v[j] = (float)(tmp[j] / s);
    s = 0;
    for (int64_t i = 0; i < o; i++) {
      double a = 0;
      for (int64_t j = 0; j < rest; j++) a += (double)w[i * rest + j] * v[j];
      tmp[i] = a;
      s += a * a;
    }
    s = fmax(sqrt(s), 1e-12);
    for (int64_t i = 0; i < o; i++) u[i] = (float)(tmp[i] / s);
    const vt_backend *be = vt_ctx_backend(ctx);
    be->copy(be, sn->u->data, u, sizeof(float) * (size_t)o, VT_COPY_H2D);
    be->copy(be, sn->v->data, v, sizeof(float) * (size_t)rest, VT_COPY_H2D);
    free(w), free(u), free(v), free(tmp);
  }
  vt_tensor *wm = vt_reshape(ctx, sn->w, 2, (int64_t[]){o, rest});
  vt_tensor *u = vt_detach(ctx, vt_reshape(ctx, sn->u, 2, (int64_t[]){o, 1}));
  vt_tensor *v = vt_detach(ctx, vt_reshape(ctx, sn->v, 2, (int64_t[]){rest, 1}));
  vt_tensor *sigma =
      vt_sum(ctx, vt_mul(ctx, vt_matmul(ctx, wm, v, false, false), u), VT_ALL_AXES, false);
  return vt_div(ctx, sn->w, sigma);
}

disc_out disc_s_forward(const disc_s *s, vt_ctx *ctx, vt_tensor *x, bool training) {
  disc_out o = {.logit = x};
  if (!check_wave(ctx, x, "disc_s")) return o;
  for (int i = 0; i < 8; i++) {
    if (s->spectral) {
      const disc_sn *sn = &s->sn[i];
      x = vt_conv1d(ctx, x, sn_weight(sn, ctx, training), sn->b, s->stride[i],
                    (s->kernel[i] - 1) / 2, 1, s->groups[i]);
      if (i < 7) x = vt_leaky_relu(ctx, x, LRELU_SLOPE);
    } else {
      x = nn_conv_forward(i < 7 ? &s->convs[i] : &s->post, ctx, x);
    }
    if (i < 7) o.fmap[o.n_fmap++] = x;
  }
  return finish(ctx, o, x);
}

vt_tensor *disc_pool(vt_ctx *ctx, vt_tensor *x) {
  vt_tensor *w = vt_full(ctx, 3, (int64_t[]){1, 1, 4}, 0.25f);
  return vt_conv1d(ctx, x, w, NULL, 2, 2, 1, 1);
}

/* Conv2d with kernel (3, kw), stride (1, 2), dilation (d, 1) and padding (d, kw / 2), which
 * vt_conv2d lacks: the sum over the 3 time taps of (1, kw) convs of shifted inputs. */
static vt_tensor *stft_dilated(const nn_conv *c, vt_ctx *ctx, vt_tensor *x, int d) {
  if (vt_ctx_failed(ctx)) return x;
  vt_tensor *w = vt_weight_norm(ctx, c->g, c->v); /* [O, I, 3, kw] */
  int64_t b = x->shape[0], ch = x->shape[1], t = x->shape[2], f = x->shape[3];
  vt_tensor *z = vt_zeros(ctx, VT_F32, 4, (int64_t[]){b, ch, d, f});
  vt_tensor *parts[3] = {z, x, z};
  vt_tensor *xp = vt_concat(ctx, parts, 3, 2), *y = NULL;
  int kw = c->cfg.kernel[1];
  for (int k = 0; k < 3; k++) {
    vt_tensor *xs = vt_slice(ctx, xp, 2, (int64_t)k * d, (int64_t)k * d + t);
    vt_tensor *yk =
        vt_conv2d(ctx, xs, vt_slice(ctx, w, 2, k, k + 1), k == 0 ? c->b : NULL, 1, 2, 0, kw / 2);
    y = y ? vt_add(ctx, y, yk) : yk;
  }
  return vt_leaky_relu(ctx, y, STFT_SLOPE);
}

disc_out disc_stft_forward(const disc_stft *s, vt_ctx *ctx, vt_tensor *x) {
  disc_out o = {.logit = x};
  if (!check_wave(ctx, x, "disc_stft")) return o;
  double e = 0;
  for (int i = 0; i < s->n_fft; i++) e += (double)s->win[i] * s->win[i];
  vt_tensor *win = vt_from_host(ctx, VT_F32, 1, (int64_t[]){s->n_fft}, s->win);
  vt_tensor *y = vt_reshape(ctx, x, 2, (int64_t[]){x->shape[0], x->shape[2]});
  /* torchaudio Spectrogram(normalized=True): divided by the window's L2 norm */
  vt_tensor *z = vt_scale(ctx, vt_stft(ctx, y, win, s->n_fft, s->hop), (float)(1.0 / sqrt(e)));
  z = vt_permute(ctx, z, (const int[]){0, 3, 1, 2}); /* [B, 2 (re, im), T, F] */
  o.fmap[o.n_fmap++] = z = nn_conv_forward(&s->convs[0], ctx, z);
  for (int i = 1; i <= 3; i++)
    o.fmap[o.n_fmap++] = z = stft_dilated(&s->convs[i], ctx, z, s->dilations[i - 1]);
  o.fmap[o.n_fmap++] = z = nn_conv_forward(&s->convs[4], ctx, z);
  o.logit = nn_conv_forward(&s->post, ctx, z); /* EnCodec keeps the logits out of the fmaps */
  return o;
}
