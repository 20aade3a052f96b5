/* The codec's GAN losses; see codec_loss.h. */
#include "model/codec_loss.h"

codec_gan_cfg codec_gan_cfg_vita(void) {
  return (codec_gan_cfg){.mel_n_fft = {1024, 512, 256},
                         .mel_hop = {240, 120, 60},
                         .n_mels = 80,
                         .mel_w = {45.0f, 1.0f, 1.0f},
                         .w_q = 10.0f,
                         .w_cons = 5.0f,
                         .fm_scale = 2.0f};
}

bool codec_gan_init(codec_gan *g, const codec *m, const disc *d, const codec_gan_cfg *cfg, int sr) {
  *g = (codec_gan){.cfg = *cfg, .m = m, .d = d};
  for (int i = 0; i < CODEC_N_MEL; i++)
    if (!mel_spec_init(&g->mel[i], sr, cfg->mel_n_fft[i], cfg->mel_hop[i], cfg->n_mels)) {
      codec_gan_free(g);
      return false;
    }
  return true;
}

void codec_gan_free(codec_gan *g) {
  for (int i = 0; i < CODEC_N_MEL; i++) mel_spec_free(&g->mel[i]);
}

codec_gan_fwd codec_gan_forward(const codec_gan *g, vt_ctx *ctx, vt_tensor *y, vt_tensor *yy,
                                codec_mode mode) {
  codec_gan_fwd f = {0};
  vt_tensor *c = codec_encode(g->m, ctx, y, mode, &f.g);
  vt_tensor *g2 = codec_global_target(g->m, ctx, yy, mode);
  f.cons = vt_cosine_loss(ctx, f.g, g2);
  f.latent = c;
  f.vq = codec_quantize(g->m, ctx, c, f.g);
  f.y_hat = codec_decode(g->m, ctx, f.vq.q, f.vq.gq);
  return f;
}

static vt_tensor *acc(vt_ctx *ctx, vt_tensor *sum, vt_tensor *t) {
  return sum ? vt_add(ctx, sum, t) : t;
}

static vt_tensor *mse_to(vt_ctx *ctx, vt_tensor *x, float target) {
  return vt_mse_loss(ctx, x, vt_full(ctx, x->ndim, x->shape, target), VT_LOSS_MEAN);
}

/* mean((1 - r)^2) + mean(g^2) */
static vt_tensor *d_term(vt_ctx *ctx, disc_out r, disc_out f) {
  return vt_add(ctx, mse_to(ctx, r.logit, 1.0f), mse_to(ctx, f.logit, 0.0f));
}

static vt_tensor *zero(vt_ctx *ctx) { return vt_zeros(ctx, VT_F32, 1, (int64_t[]){1}); }

codec_d_losses codec_gan_d_loss(const codec_gan *g, vt_ctx *ctx, vt_tensor *y, vt_tensor *y_hat) {
  const disc *d = g->d;
  codec_d_losses l = {0};
  vt_tensor *yh = vt_detach(ctx, y_hat);
  for (int k = 0; k < d->cfg.n_periods; k++)
    l.mpd =
        acc(ctx, l.mpd,
            d_term(ctx, disc_p_forward(&d->mpd[k], ctx, y), disc_p_forward(&d->mpd[k], ctx, yh)));
  vt_tensor *ys = y, *yhs = yh;
  for (int k = 0; k < d->cfg.n_scales; k++) {
    if (k) ys = disc_pool(ctx, ys), yhs = disc_pool(ctx, yhs);
    disc_out r = disc_s_forward(&d->msd[k], ctx, ys, true);
    l.msd = acc(ctx, l.msd, d_term(ctx, r, disc_s_forward(&d->msd[k], ctx, yhs, true)));
  }
  for (int k = 0; k < d->cfg.n_stft; k++)
    l.stft = acc(ctx, l.stft,
                 d_term(ctx, disc_stft_forward(&d->stft[k], ctx, y),
                        disc_stft_forward(&d->stft[k], ctx, yh)));
  if (!l.mpd) l.mpd = zero(ctx);
  if (!l.msd) l.msd = zero(ctx);
  if (!l.stft) l.stft = zero(ctx);
  l.total = vt_add(ctx, vt_add(ctx, l.msd, l.mpd), l.stft);
  return l;
}

/* The generator's side of one sub-discriminator: its LSGAN term into *adv, the L1 of its
 * feature maps against the real ones (constants) into *fm. */
static void g_term(vt_ctx *ctx, disc_out r, disc_out f, vt_tensor **adv, vt_tensor **fm) {
  *adv = acc(ctx, *adv, mse_to(ctx, f.logit, 1.0f));
  for (int i = 0; i < f.n_fmap && i < r.n_fmap; i++)
    *fm = acc(ctx, *fm, vt_l1_loss(ctx, r.fmap[i], f.fmap[i], VT_LOSS_MEAN));
}

codec_g_losses codec_gan_g_loss(const codec_gan *g, vt_ctx *ctx, vt_tensor *y,
                                const codec_gan_fwd *f) {
  const disc *d = g->d;
  const codec_gan_cfg *c = &g->cfg;
  codec_g_losses l = {0};
  vt_tensor *yh = f->y_hat;
  /* real features and mels carry no gradient: run them with the tape off */
  bool was = vt_set_grad_enabled(ctx, false);
  disc_out rp[DISC_MAX_SUB], rst[DISC_MAX_SUB];
  for (int k = 0; k < d->cfg.n_periods; k++) rp[k] = disc_p_forward(&d->mpd[k], ctx, y);
  for (int k = 0; k < d->cfg.n_stft; k++) rst[k] = disc_stft_forward(&d->stft[k], ctx, y);
  vt_tensor *y2 = vt_reshape(ctx, y, 2, (int64_t[]){y->shape[0], y->shape[2]});
  vt_tensor *mel_r[CODEC_N_MEL];
  for (int i = 0; i < CODEC_N_MEL; i++) mel_r[i] = mel_log_spectrogram(ctx, &g->mel[i], y2);
  vt_set_grad_enabled(ctx, was);
  for (int k = 0; k < d->cfg.n_periods; k++)
    g_term(ctx, rp[k], disc_p_forward(&d->mpd[k], ctx, yh), &l.g_mpd, &l.fm_mpd);
  /* MSD alternates real and generated per scale, as torch does: the spectral norm's power
   * iteration runs in that order */
  vt_tensor *ys = y, *yhs = yh;
  for (int k = 0; k < d->cfg.n_scales; k++) {
    if (k) {
      was = vt_set_grad_enabled(ctx, false);
      ys = disc_pool(ctx, ys);
      vt_set_grad_enabled(ctx, was);
      yhs = disc_pool(ctx, yhs);
    }
    was = vt_set_grad_enabled(ctx, false);
    disc_out r = disc_s_forward(&d->msd[k], ctx, ys, true);
    vt_set_grad_enabled(ctx, was);
    g_term(ctx, r, disc_s_forward(&d->msd[k], ctx, yhs, true), &l.g_msd, &l.fm_msd);
  }
  for (int k = 0; k < d->cfg.n_stft; k++)
    g_term(ctx, rst[k], disc_stft_forward(&d->stft[k], ctx, yh), &l.g_stft, &l.fm_stft);
  vt_tensor **terms[6] = {&l.g_mpd, &l.g_msd, &l.g_stft, &l.fm_mpd, &l.fm_msd, &l.fm_stft};
  for (int i = 0; i < 6; i++)
    if (!*terms[i]) *terms[i] = zero(ctx);
  l.fm_mpd = vt_scale(ctx, l.fm_mpd, c->fm_scale);
  l.fm_msd = vt_scale(ctx, l.fm_msd, c->fm_scale);
  l.fm_stft = vt_scale(ctx, l.fm_stft, c->fm_scale);
  vt_tensor *yh2 = vt_reshape(ctx, yh, 2, (int64_t[]){yh->shape[0], yh->shape[2]});
  for (int i = 0; i < CODEC_N_MEL; i++) {
    vt_tensor *m =
        vt_l1_loss(ctx, mel_r[i], mel_log_spectrogram(ctx, &g->mel[i], yh2), VT_LOSS_MEAN);
    if (i == 0) l.mel_main = m;
    l.mel = acc(ctx, l.mel, vt_scale(ctx, m, c->mel_w[i]));
  }
  l.q = f->vq.loss;
  l.cons = f->cons;
  vt_tensor *t = vt_add(ctx, vt_add(ctx, l.g_msd, l.g_mpd), l.g_stft);
  t = vt_add(ctx, vt_add(ctx, vt_add(ctx, t, l.fm_msd), l.fm_mpd), l.fm_stft);
  t = vt_add(ctx, t, l.mel);
  t = vt_add(ctx, t, vt_scale(ctx, l.q, c->w_q));
  l.total = vt_add(ctx, t, vt_scale(ctx, l.cons, c->w_cons));
  return l;
}
