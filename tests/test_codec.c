// ctest-labels: unit grad
/* The codec (model/codec.c), its discriminators (model/disc.c) and mel spectrogram
 * (model/mel.c) against the PyTorch reference of tests/reference/gen_codec_fixtures.py on a
 * small config: the mel filterbank (librosa's), log-mel values and gradients, then for the
 * encoder (with the global branch and BatchNorm statistics), the quantizer, the generator and
 * one MPD period, both kinds of MSD scale and an MS-STFT scale the outputs and the gradients
 * of sum(out * w) with respect to the inputs and every parameter. */
#include "model/mel.h"
#include "tests/codec_fx.h"

/* Errors: f32 against float64 through up to ~40 layers of convolutions with sums of a few
 * hundred terms; 2e-4 of the largest value is ~3000 ulps, and a wrong formula (a missing
 * norm, a flipped kernel, a wrong slope) is off by far more. */
#define TOL 2e-4

static void test_filterbank(void) {
  int nb = 129;
  float *fb = malloc(sizeof(float) * 80 * (size_t)nb);
  CHECK(mel_filterbank(fb, 24000, 256, 80, 0, 0));
  const vt_fixture_tensor *want = fx_need("mel.fb256");
  CHECK_CLOSE("mel.fb256", fb, want->f, want->n, 1e-7 * fx_max_abs(want->f, want->n), 1e-6);
  free(fb);
  nb = 513;
  fb = malloc(sizeof(float) * 80 * (size_t)nb);
  CHECK(mel_filterbank(fb, 24000, 1024, 80, 0, 0));
  const vt_fixture_tensor *rs = fx_need("mel.fb1024.rowsum"), *first = fx_need("mel.fb1024.first"),
                          *last = fx_need("mel.fb1024.last");
  float sums[80];
  long bad = 0;
  for (int m = 0; m < 80; m++) {
    double s = 0;
    int f0 = -1, f1 = -1;
    for (int k = 0; k < nb; k++) {
      float v = fb[m * nb + k];
      s += v;
      if (v != 0 && f0 < 0) f0 = k;
      if (v != 0) f1 = k;
    }
    sums[m] = (float)s;
    bad += f0 != first->i[m] || f1 != last->i[m];
  }
  CHECK_CLOSE("mel.fb1024.rowsum", sums, rs->f, 80, 1e-6 * fx_max_abs(rs->f, 80), 1e-5);
  CHECK_MSG(bad == 0, "%ld mel bands start or end at another bin than librosa's", bad);
  CHECK(!mel_filterbank(fb, 24000, 1024, 80, 0, 13000)); /* fmax above Nyquist */
  free(fb);
}

static void test_log_mel(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *x = fx_load(ctx, "mel.x");
  vt_requires_grad(ctx, x);
  mel_spec a, b;
  CHECK(mel_spec_init(&a, 24000, 1024, 240, 80) && mel_spec_init(&b, 24000, 256, 60, 80));
  vt_tensor *ma = mel_log_spectrogram(ctx, &a, x), *mb = mel_log_spectrogram(ctx, &b, x);
  fx_check_tensor(ctx, "mel 1024/240", ma, "mel.1024.out", 1e-5);
  fx_check_tensor(ctx, "mel 256/60", mb, "mel.256.out", 1e-5);
  vt_tensor *l = vt_add(ctx, fx_dot(ctx, "mel.1024", ma), fx_dot(ctx, "mel.256", mb));
  CHECK_MSG(vt_backward(ctx, l), "%s", vt_ctx_error(ctx));
  fx_check_grad(ctx, "mel grad x", x, "mel.grad.x", 1e-4);
  mel_spec_free(&a);
  mel_spec_free(&b);
  vt_ctx_free(ctx);
}

typedef struct {
  vt_params ps;
  codec m;
} model;

static bool model_setup(model *mm) {
  char err[512];
  vt_params_init(&mm->ps, (vt_device){VT_DEV_CPU, 0});
  nn_reg r = nn_reg_make(&mm->ps, err, sizeof err);
  codec_cfg cfg = fx_codec_cfg();
  codec_init(&mm->m, &r, &cfg);
  CHECK_MSG(!nn_reg_failed(&r), "%s", err);
  if (nn_reg_failed(&r) || vt_params_alloc(&mm->ps, err, sizeof err)) return false;
  codec_freeze_buffers(&mm->ps);
  if (vt_params_alloc_grads(&mm->ps, err, sizeof err)) return false;
  fx_fill_params(&mm->ps, NULL, 0);
  return true;
}

static void test_encoder(model *mm) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *y = fx_load(ctx, "enc.y"), *yy = fx_load(ctx, "enc.yy"), *g;
  vt_requires_grad(ctx, y);
  vt_tensor *c = codec_encode(&mm->m, ctx, y, CODEC_TRAIN, &g);
  vt_tensor *g2 = codec_global_target(&mm->m, ctx, yy, CODEC_TRAIN);
  fx_check_tensor(ctx, "encoder latent", c, "enc.c", TOL);
  fx_check_tensor(ctx, "encoder global", g, "enc.g", TOL);
  fx_check_tensor(ctx, "encoder global target", g2, "enc.g2", TOL);
  fx_check_tensor(ctx, "running mean", mm->m.bn_mean, "enc.running_mean", TOL);
  fx_check_tensor(ctx, "running var", mm->m.bn_var, "enc.running_var", TOL);
  vt_tensor *l = vt_add(ctx, fx_dot(ctx, "enc.c", c), fx_dot(ctx, "enc.g", g));
  CHECK_MSG(vt_backward(ctx, l), "%s", vt_ctx_error(ctx));
  fx_check_grad(ctx, "encoder grad y", y, "enc.grad.y", TOL);
  fx_check_param_grads(ctx, &mm->ps, "encoder.", "", TOL);
  vt_params_zero_grad(&mm->ps);
  vt_ctx_free(ctx);
}

static void test_quantizer(model *mm) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *c = fx_load(ctx, "enc.c"), *g = fx_load(ctx, "enc.g");
  vt_requires_grad(ctx, c);
  vt_requires_grad(ctx, g);
  codec_vq q = codec_quantize(&mm->m, ctx, c, g);
  fx_check_tensor(ctx, "quantized", q.q, "quant.q", 1e-6);
  fx_check_tensor(ctx, "codes", q.idx, "quant.idx", 0);
  fx_check_tensor(ctx, "global quantized", q.gq, "quant.gq", 1e-6);
  fx_check_tensor(ctx, "global codes", q.gidx, "quant.gidx", 0);
  fx_check_tensor(ctx, "vq loss", q.loss, "quant.loss", 1e-5);
  vt_tensor *l = vt_add(ctx, fx_dot(ctx, "quant.q", q.q), fx_dot(ctx, "quant.gq", q.gq));
  l = vt_add(ctx, l, vt_scale(ctx, q.loss, 3.0f));
  CHECK_MSG(vt_backward(ctx, l), "%s", vt_ctx_error(ctx));
  fx_check_grad(ctx, "quantizer grad c", c, "quant.grad.c", 1e-5);
  fx_check_grad(ctx, "quantizer grad g", g, "quant.grad.g", 1e-5);
  fx_check_param_grads(ctx, &mm->ps, "quantizer.", "", 1e-5);
  vt_params_zero_grad(&mm->ps);
  /* the codes embed back to the same rows */
  vt_tensor *eq, *egq;
  codec_embed(&mm->m, ctx, q.idx, q.gidx, &eq, &egq);
  fx_check_tensor(ctx, "embedded codes", eq, "quant.q", 1e-6);
  fx_check_tensor(ctx, "embedded global codes", egq, "quant.gq", 1e-6);
  vt_ctx_free(ctx);
}

static void test_generator(model *mm) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *q = fx_load(ctx, "quant.q"), *gq = fx_load(ctx, "quant.gq");
  vt_requires_grad(ctx, q);
  vt_requires_grad(ctx, gq);
  vt_tensor *y = codec_decode(&mm->m, ctx, q, gq);
  fx_check_tensor(ctx, "generator out", y, "gen.out", TOL);
  CHECK_MSG(vt_backward(ctx, fx_dot(ctx, "gen", y)), "%s", vt_ctx_error(ctx));
  fx_check_grad(ctx, "generator grad q", q, "gen.grad.q", TOL);
  fx_check_grad(ctx, "generator grad g", gq, "gen.grad.g", TOL);
  fx_check_param_grads(ctx, &mm->ps, "generator.", "", TOL);
  vt_params_zero_grad(&mm->ps);
  vt_ctx_free(ctx);
}

static void check_disc_case(vt_ctx *ctx, vt_params *ps, const char *name, const char *prefix,
                            vt_tensor *x, disc_out o) {
  char key[128], lk[128];
  snprintf(key, sizeof key, "%s.logit", name);
  fx_check_tensor(ctx, key, o.logit, key, TOL);
  vt_tensor *l = fx_dot(ctx, key, o.logit);
  for (int i = 0; i < o.n_fmap; i++) {
    snprintf(key, sizeof key, "%s.fmap%d", name, i);
    fx_check_tensor(ctx, key, o.fmap[i], key, TOL);
    l = vt_add(ctx, l, fx_dot(ctx, key, o.fmap[i]));
  }
  CHECK_MSG(vt_backward(ctx, l), "%s: %s", name, vt_ctx_error(ctx));
  snprintf(key, sizeof key, "%s.grad.x", name);
  fx_check_grad(ctx, key, x, key, TOL);
  snprintf(lk, sizeof lk, "%s.", name);
  fx_check_param_grads(ctx, ps, prefix, lk, TOL);
  vt_params_zero_grad(ps);
}

static void test_discriminators(void) {
  vt_params ps;
  disc d;
  char err[512];
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  nn_reg r = nn_reg_make(&ps, err, sizeof err);
  const int periods[2] = {2, 3}, n_fft[1] = {64}, hop[1] = {16};
  disc_cfg cfg = fx_disc_cfg(2, periods, 2, 1, n_fft, hop);
  CHECK(disc_init(&d, &r, &cfg));
  CHECK_MSG(!nn_reg_failed(&r), "%s", err);
  if (nn_reg_failed(&r) || vt_params_alloc(&ps, err, sizeof err)) return;
  disc_freeze_buffers(&ps);
  vt_params_alloc_grads(&ps, err, sizeof err);
  const char *opt[2] = {"mpd.discriminators.0.", ".weight_v"};
  fx_fill_params(&ps, opt, 2);
  struct {
    const char *name, *prefix;
  } cases[4] = {{"mpd", "mpd.discriminators.1."},
                {"msd0", "msd.discriminators.0."},
                {"msd1", "msd.discriminators.1."},
                {"stftd", "mstftd."}};
  for (int c = 0; c < 4; c++) {
    vt_ctx *ctx = vt_test_cpu_ctx();
    vt_tensor *x = fx_load(ctx, "xd");
    vt_requires_grad(ctx, x);
    disc_out o = c == 0   ? disc_p_forward(&d.mpd[1], ctx, x)
                 : c == 1 ? disc_s_forward(&d.msd[0], ctx, x, true)
                 : c == 2 ? disc_s_forward(&d.msd[1], ctx, x, true)
                          : disc_stft_forward(&d.stft[0], ctx, x);
    check_disc_case(ctx, &ps, cases[c].name, cases[c].prefix, x, o);
    if (c == 1) { /* the power iteration's new u and v */
      for (int i = 0; i < 8; i++) {
        char k[160], nm[32];
        if (i < 7)
          snprintf(nm, sizeof nm, "convs.%d", i);
        else
          snprintf(nm, sizeof nm, "conv_post");
        snprintf(k, sizeof k, "post.msd.discriminators.0.%s.weight_u", nm);
        fx_check_tensor(ctx, k, d.msd[0].sn[i].u, k, 1e-5);
        snprintf(k, sizeof k, "post.msd.discriminators.0.%s.weight_v", nm);
        fx_check_tensor(ctx, k, d.msd[0].sn[i].v, k, 1e-5);
      }
    }
    vt_ctx_free(ctx);
  }
  disc_free(&d);
  vt_params_free(&ps);
}

static void test_bad_input(model *mm) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *y = vt_zeros(ctx, VT_F32, 3, (int64_t[]){1, 1, 13}), *g;
  codec_encode(&mm->m, ctx, y, CODEC_EVAL, &g);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "multiple of the hop 8"));
  vt_ctx_free(ctx);
  codec_cfg c = fx_codec_cfg();
  char err[256];
  c.global_dim = 6;
  CHECK(!codec_cfg_check(&c, err, sizeof err) && strstr(err, "global_dim"));
  c = fx_codec_cfg();
  c.kernels[0] = 7;
  CHECK(!codec_cfg_check(&c, err, sizeof err) && strstr(err, "stage 0"));
  codec_cfg v = codec_cfg_vita();
  CHECK(codec_cfg_check(&v, err, sizeof err) && codec_hop(&v) == 600 && codec_latent(&v) == 512);
}

int main(void) {
  FX = vt_fixture_load("codec/codec.txt");
  test_filterbank();
  test_log_mel();
  model mm;
  if (model_setup(&mm)) {
    test_encoder(&mm);
    test_quantizer(&mm);
    test_generator(&mm);
    test_bad_input(&mm);
  }
  vt_params_free(&mm.ps);
  test_discriminators();
  vt_fixture_free(FX);
  return vt_test_finish("test_codec");
}
