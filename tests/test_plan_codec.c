// ctest-labels: unit
/* The codec's plan (model/codec_cost.c through stages/stage_plan.c) on the shipped tiny stage
 * (configs/stages/ticodec-3.1-tiny.yaml: 4 segments of 4800 samples): the parameters of each
 * phase, the memory of weights, gradients and both phases' Adam moments, and the FLOPs of the
 * encoder, quantizer and generator computed by hand from the dimensions; the activation
 * estimate (the larger phase) against the step arena's measured high-water mark of a real
 * step of each phase. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/codec_model.h"
#include "stages/stage_model.h"
#include "stages/stage_plan.h"
#include "tests/codec_train_fx.h"
#include "tests/testutil.h"
#include "train/zero.h"

/* The arena high-water mark of each phase of one training step of the model m (created in
 * ps, nothing allocated). */
static void measured(vt_model *m, vt_params *ps, double hw[2]) {
  vt_rng rng;
  vt_rng_seed(&rng, 3);
  codec_phases ph;
  codec_phases_start(&ph, m, ps, &rng, 2e-4, 1e-3);
  enum { B = 4, L = 4800 };
  static float w[B * L];
  for (int i = 0; i < B * L; i++) w[i] = 0.3f * vt_rng_normal(&rng);
  for (int p = 0; p < 2; p++) {
    vt_ctx *ctx =
        vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}, .arena_bytes = 1 << 16}, NULL);
    vt_model_loss l;
    codec_phases_loss(&ph, m, ps, ctx, p, w, B, L, &rng, &l);
    vt_tensor *tot = l.terms[0].sum;
    for (int t = 1; t < l.n_terms; t++) tot = vt_add(ctx, tot, l.terms[t].sum);
    CHECK_MSG(vt_backward(ctx, tot), "%s", vt_ctx_error(ctx));
    hw[p] = (double)vt_ctx_arena_high_water(ctx);
    vt_ctx_free(ctx);
  }
  codec_phases_free(&ph);
}

/* The forward FLOPs against weights of the tiny codec (configs/tiny/codec.json) on B segments
 * of 4800 samples (8 frames), by hand: every conv is 2 x out x in x kernel per output
 * position (a transposed one per input position); the quantizer's distances 3 x 64 x 1024 per
 * frame. The encoder: conv_pre 1 -> 4 (k 7), then per stage strides 3, 5, 5, 8 (kernels 5,
 * 11, 11, 16) to 8, 16, 32, 64 channels, each with resblocks of kernels 7 and 3 (two
 * dilations, two convs each); conv_post 64 -> 64 (k 3); the global branch three k-3 convs 16
 * -> 8 -> 8 -> 16 and a 16 x 16 linear. The generator mirrors it from 64 channels. */
static double codec_flops(double B, bool target) {
  const double kern[4] = {16, 11, 11, 5}, res[2] = {3, 7};
  double f = 0, len[5] = {8, 64, 320, 1600, 4800}; /* generator lengths; encoder reversed */
  /* generator */
  f += 2 * 64 * 64 * 7 * len[0];
  for (int i = 0; i < 4; i++) {
    double out = 64 >> (i + 1), in = 2 * out;
    f += 2 * in * out * kern[i] * len[i];                                     /* transposed */
    for (int j = 0; j < 2; j++) f += 4 * 2 * out * out * res[j] * len[i + 1]; /* 2 x 2 convs */
  }
  f += 2 * 4 * 1 * 7 * 4800;
  /* encoder (and, for the consistency target, its first two stages again) */
  for (int pass = 0; pass < (target ? 2 : 1); pass++) {
    int n = pass ? 2 : 4;
    f += 2 * 1 * 4 * 7 * 4800;
    for (int i = 0; i < n; i++) {
      double out = 4 << (i + 1), in = out / 2, lo = len[3 - i];
      f += 2 * in * out * kern[3 - i] * lo;
      for (int j = 0; j < 2; j++) f += 4 * 2 * out * out * res[1 - j] * lo;
    }
    f += 2 * (16 * 8 + 8 * 8 + 8 * 16) * 3 * 320 + 2 * 16 * 16; /* the global branch */
  }
  f += 2 * 64 * 64 * 3 * 8; /* conv_post */
  f += 3.0 * 8 * 64 * 1024; /* nearest codes */
  return B * f;
}

int main(void) {
  char err[2048], path[1024];
  snprintf(path, sizeof path, "%s/configs/stages/ticodec-3.1-tiny.yaml", getenv("VT_SOURCE_DIR"));
  static stage_cfg cfg;
  CHECK_MSG(!stage_config_load(&cfg, path, err, sizeof err), "%s", err);
  stage_plan p;
  stage_plan_opts o = {.world = 2};
  CHECK_MSG(!stage_plan_make(&cfg, &o, &p, err, sizeof err), "%s", err);
  CHECK(p.n_parts == 6 && p.shape.batch == 4 && p.shape.tokens == 4800);
  /* parameters: 588,602 in all; 586,227 trainable (the buffers: BatchNorm's 2 x 16 running
   * statistics, the spectral norm's u, v, the codebook's 1,025 state values); the generator
   * phase's 480,118 and the discriminators' 106,109 */
  CHECK(p.n_params == 588602 && p.n_trainable == 586227 && p.moments == 2);
  CHECK(p.parts[1].n_trainable == 106109 && p.parts[2].n_trainable == 480118);
  CHECK(p.parts[1].n_trainable + p.parts[2].n_trainable == p.n_trainable);
  CHECK(p.parts[2].n_params == 480150 && p.parts[1].n_params == 107427);
  /* memory per rank: f32 weights, one gradient buffer, each phase's Adam over its own */
  vt_zero_mem z = vt_zero_plan(p.weights, p.n_trainable, p.moments, 0, 2, false);
  CHECK(z.weights == 4.0 * 588602 && z.grads == 4.0 * 586227 && z.optimizer == 8.0 * 586227);
  /* which parts take gradients: the disc phase's codec pass and the real segment's
   * discriminators run off the tape */
  CHECK(!p.parts[0].grad && p.parts[1].grad && p.parts[2].grad && p.parts[3].grad &&
        !p.parts[4].grad && p.parts[5].grad);
  CHECK(p.parts[0].cost.phase == 0 && p.parts[1].cost.phase == 0 && p.parts[2].cost.phase == 1);
  /* FLOPs of the codec parts by hand: the disc phase's pass without the consistency target */
  double g0 = codec_flops(4, false), g1 = codec_flops(4, true);
  CHECK_MSG(fabs(p.parts[0].cost.flops_weight / g0 - 1) < 1e-12, "%.17g vs %.17g",
            p.parts[0].cost.flops_weight, g0);
  CHECK_MSG(fabs(p.parts[2].cost.flops_weight / g1 - 1) < 1e-12, "%.17g vs %.17g",
            p.parts[2].cost.flops_weight, g1);
  /* a step: the codec's forward in the disc phase; in the generator phase its forward and
   * backward (input gradients, and weight gradients for the trainable share: not the
   * BatchNorm statistics); the discriminators on the disc phase's 8 segments likewise; the
   * generated segment's discriminators and the mels forward and input gradients; the real
   * segment's discriminators forward */
  double dfl = p.parts[4].cost.flops_weight;
  CHECK(fabs(p.parts[1].cost.flops_weight / (2 * dfl) - 1) < 1e-12);
  double step = g0 + g1 * (2 + 480118.0 / 480150) + 2 * dfl * (2 + 106109.0 / 107427) + 2 * dfl +
                dfl + 2 * p.parts[5].cost.flops_weight;
  CHECK_MSG(fabs(p.flops_sample * 4 / step - 1) < 1e-12, "%.17g vs %.17g", p.flops_sample * 4,
            step);
  CHECK(fabs(p.flops_step / (step * 2) - 1) < 1e-12); /* grad_accum 1, two ranks */
  /* activations: the larger phase against a measured step of each (no recompute) */
  double hw[2] = {0, 0};
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m = stage_model_open(cfg.model_name, cfg.model_config, NULL, &ps, err, sizeof err);
  CHECK_MSG(m, "%s", err);
  if (m) measured(m, &ps, hw);
  vt_model_destroy(m);
  vt_params_free(&ps);
  double peak = fmax(hw[0], hw[1]);
  printf("activations: plan %.0f bytes, measured arena high-water %.0f (disc phase %.0f, "
         "generator phase %.0f): %.3f\n",
         p.act, peak, hw[0], hw[1], p.act / peak);
  CHECK_MSG(fabs(p.act / peak - 1) < 0.25, "plan %.0f vs measured %.0f", p.act, peak);
  CHECK(p.act_recompute == p.act);
  return vt_test_finish("test_plan_codec");
}
