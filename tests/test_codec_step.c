// ctest-labels: unit grad
/* One GAN training step of the small codec (model/codec_loss.c) against the PyTorch reference
 * (tests/reference/gen_codec_fixtures.py): every loss term of the discriminator phase (LSGAN
 * on 2 MPD periods, 3 MSD scales, 2 MS-STFT scales) and of the generator phase (LSGAN,
 * feature matching, 45 x mel L1 + two more resolutions, 10 x quantizer, 5 x consistency), the
 * gradients of both phases' totals with respect to every parameter, and the spectral norm's
 * power-iteration state after each phase. */
#include "model/codec_loss.h"
#include "tests/codec_fx.h"

/* f32 against float64 through the generator, the discriminators and the STFTs: 5e-4 of the
 * largest value (see test_codec.c); the loss values are sums of means: 1e-4 relative. */
#define TOL 5e-4

static void check_u(vt_ctx *ctx, const disc *d, const char *key) {
  for (int i = 0; i < 8; i++) {
    char k[160], nm[32];
    if (i < 7)
      snprintf(nm, sizeof nm, "convs.%d", i);
    else
      snprintf(nm, sizeof nm, "conv_post");
    snprintf(k, sizeof k, "%smsd.discriminators.0.%s.weight_u", key, nm);
    fx_check_tensor(ctx, k, d->msd[0].sn[i].u, k, 1e-4);
  }
}

int main(void) {
  FX = vt_fixture_load("codec/codec.txt");
  vt_params ps;
  codec m;
  disc d;
  char err[512];
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  nn_reg r = nn_reg_make(&ps, err, sizeof err);
  codec_cfg cc = fx_codec_cfg();
  codec_init(&m, &r, &cc);
  const int periods[2] = {2, 3}, n_fft[2] = {64, 32}, hop[2] = {16, 8};
  disc_cfg dc = fx_disc_cfg(2, periods, 3, 2, n_fft, hop);
  CHECK(disc_init(&d, &r, &dc));
  CHECK_MSG(!nn_reg_failed(&r), "%s", err);
  if (nn_reg_failed(&r) || vt_params_alloc(&ps, err, sizeof err)) return vt_test_finish("x");
  codec_freeze_buffers(&ps);
  disc_freeze_buffers(&ps);
  vt_params_alloc_grads(&ps, err, sizeof err);
  const char *opt[1] = {".weight_v"};
  fx_fill_params(&ps, opt, 1);
  codec_gan g;
  codec_gan_cfg gc = codec_gan_cfg_vita();
  CHECK(codec_gan_init(&g, &m, &d, &gc, 24000));

  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *y = fx_load(ctx, "step.y"), *yy = fx_load(ctx, "step.yy");
  /* discriminator phase: the generator's pass without a tape, running statistics kept */
  bool was = vt_set_grad_enabled(ctx, false);
  codec_gan_fwd f = codec_gan_forward(&g, ctx, y, yy, CODEC_TRAIN_KEEP_STATS);
  vt_set_grad_enabled(ctx, was);
  fx_check_tensor(ctx, "codes", f.vq.idx, "step.idx", 0);
  fx_check_tensor(ctx, "global codes", f.vq.gidx, "step.gidx", 0);
  fx_check_tensor(ctx, "y_hat", f.y_hat, "step.yh", TOL);
  codec_d_losses dl = codec_gan_d_loss(&g, ctx, y, f.y_hat);
  const struct {
    vt_tensor *t;
    const char *key;
  } dterms[4] = {{dl.mpd, "step.d_mpd"},
                 {dl.msd, "step.d_msd"},
                 {dl.stft, "step.d_stft"},
                 {dl.total, "step.d_all"}};
  for (int i = 0; i < 4; i++) fx_check_tensor(ctx, dterms[i].key, dterms[i].t, dterms[i].key, 1e-4);
  CHECK_MSG(vt_backward(ctx, dl.total), "%s", vt_ctx_error(ctx));
  fx_check_param_grads(ctx, &ps, "mpd.", "step.D.", TOL);
  fx_check_param_grads(ctx, &ps, "msd.", "step.D.", TOL);
  fx_check_param_grads(ctx, &ps, "mstftd.", "step.D.", TOL);
  check_u(ctx, &d, "step.mid.");
  vt_params_zero_grad(&ps);
  vt_ctx_reset(ctx);
  /* generator phase from the same parameters (the reference updates nothing in between) */
  y = fx_load(ctx, "step.y");
  yy = fx_load(ctx, "step.yy");
  f = codec_gan_forward(&g, ctx, y, yy, CODEC_TRAIN);
  codec_g_losses gl = codec_gan_g_loss(&g, ctx, y, &f);
  const struct {
    vt_tensor *t;
    const char *key;
  } gterms[10] = {{gl.g_mpd, "step.g_mpd"},   {gl.g_msd, "step.g_msd"},
                  {gl.g_stft, "step.g_stft"}, {gl.fm_mpd, "step.fm_mpd"},
                  {gl.fm_msd, "step.fm_msd"}, {gl.fm_stft, "step.fm_stft"},
                  {gl.mel, "step.mel"},       {gl.q, "step.q"},
                  {gl.cons, "step.cons"},     {gl.total, "step.g_all"}};
  for (int i = 0; i < 10; i++)
    fx_check_tensor(ctx, gterms[i].key, gterms[i].t, gterms[i].key, 1e-4);
  CHECK_MSG(vt_backward(ctx, gl.total), "%s", vt_ctx_error(ctx));
  fx_check_param_grads(ctx, &ps, "encoder.", "step.G.", TOL);
  fx_check_param_grads(ctx, &ps, "quantizer.", "step.G.", TOL);
  fx_check_param_grads(ctx, &ps, "generator.", "step.G.", TOL);
  check_u(ctx, &d, "step.post.");
  fx_check_tensor(ctx, "running mean", m.bn_mean, "step.running_mean", 1e-4);
  fx_check_tensor(ctx, "running var", m.bn_var, "step.running_var", 1e-4);
  vt_ctx_free(ctx);
  codec_gan_free(&g);
  disc_free(&d);
  vt_params_free(&ps);
  vt_fixture_free(FX);
  return vt_test_finish("test_codec_step");
}
