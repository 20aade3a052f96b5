/* Codec training and inference speed on the CPU: a ticodec model.json (default the tiny
 * configs/tiny/codec.json), random-tone waveforms, TiCodec's two phases per step with
 * Adam(0.5, 0.9) (discriminator phase, then generator phase, each forward + backward +
 * update), and inference (encode, quantize, decode without a tape) of 10 s of audio. Warmup
 * steps are not timed. Prints one parseable line:
 *   RESULT impl=c steps_per_s=... step_ms=... rtf=... d_ms=... g_ms=... cpu_step_ms=... cpu_rtf=...
 * where rtf is inference compute time over audio duration (lower is faster), the best of
 * three runs after a warm-up one (bench_codec_torch.py times its inference the same way).
 * Usage: bench_codec [model.json] [batch] [segment] [steps] [warmup]  (OMP_NUM_THREADS) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/codec_model.h"
#include "stages/stage_model.h"
#include "train/optim.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process: on a loaded machine wall time is mostly waiting for a core,
 * CPU time (one thread) is the work. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void tones(float *w, int64_t n, int64_t len, int sr) {
  for (int64_t i = 0; i < n; i++)
    for (int64_t t = 0; t < len; t++) {
      double s = (double)t / sr, f = 150.0 * (1 + 0.25 * (double)i);
      w[i * len + t] =
          (float)(0.3 * sin(2 * 3.14159265 * f * s) + 0.1 * sin(2 * 3.14159265 * 3 * f * s));
    }
}

int main(int argc, char **argv) {
  const char *cfg = argc > 1 ? argv[1] : "configs/tiny/codec.json";
  int batch = argc > 2 ? atoi(argv[2]) : 4, steps = argc > 4 ? atoi(argv[4]) : 5,
      warmup = argc > 5 ? atoi(argv[5]) : 1;
  char err[2048];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m = stage_model_open("ticodec", cfg, NULL, &ps, err, sizeof err);
  if (!m || vt_params_alloc(&ps, err, sizeof err)) {
    fprintf(stderr, "bench_codec: %s\n", err);
    return 1;
  }
  codec_freeze_buffers(&ps);
  disc_freeze_buffers(&ps);
  vt_params_alloc_grads(&ps, err, sizeof err);
  vt_rng rng;
  vt_rng_seed(&rng, 1);
  m->ops->init_weights(m, &ps, &rng, err, sizeof err);
  const codec_model_cfg *mc = codec_model_config(m);
  int seg = argc > 3 ? atoi(argv[3]) : mc->segment, sr = mc->codec.sample_rate;
  if (seg != mc->segment) {
    fprintf(stderr, "bench_codec: the segment is the config's segment_size (%d)\n", mc->segment);
    return 1;
  }
  bool *only[2];
  vt_optim opt[2];
  for (int p = 0; p < 2; p++) {
    only[p] = calloc((size_t)ps.n + 1, sizeof(bool));
    for (int i = 0; i < ps.n; i++)
      only[p][i] = ps.items[i]->trainable && vt_model_phase_has(m, p, ps.items[i]->name);
    vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAM);
    oc.lr = 2e-4;
    oc.beta1 = 0.5;
    oc.beta2 = 0.9;
    oc.only = only[p];
    if (vt_optim_init(&opt[p], &ps, &oc, err, sizeof err)) {
      fprintf(stderr, "bench_codec: %s\n", err);
      return 1;
    }
  }
  const char *cerr = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
  float *w = malloc(sizeof(float) * (size_t)batch * (size_t)seg);
  tones(w, batch, seg, sr);
  double t_phase[2] = {0, 0}, t0 = 0, c0 = 0;
  for (int s = 0; s < warmup + steps; s++) {
    if (s == warmup) t0 = now_s(), c0 = cpu_s();
    for (int p = 0; p < 2; p++) {
      double tp = now_s();
      for (int i = 0; i < ps.n; i++)
        if (ps.items[i]->trainable) ps.items[i]->t.requires_grad = only[p][i];
      vt_batch b = {.n_media = 1};
      b.media[0] = (vt_media){.kind = VT_MEDIA_WAVE,
                              .n = batch,
                              .data = vt_from_host(ctx, VT_F32, 2, (int64_t[]){batch, seg}, w)};
      vt_model_step st = {.phase = p, .train = true, .rng = &rng};
      vt_model_loss l;
      if (m->ops->loss(m, ctx, &b, &st, &l)) {
        fprintf(stderr, "bench_codec: %s\n", vt_ctx_error(ctx));
        return 1;
      }
      vt_tensor *tot = l.terms[0].sum;
      for (int t = 1; t < l.n_terms; t++) tot = vt_add(ctx, tot, l.terms[t].sum);
      vt_params_zero_grad(&ps);
      if (!vt_backward(ctx, vt_scale(ctx, tot, 1.0f / (float)l.count))) {
        fprintf(stderr, "bench_codec: %s\n", vt_ctx_error(ctx));
        return 1;
      }
      vt_optim_stats os;
      vt_optim_step(&opt[p], 1.0, s, &os, err, sizeof err);
      vt_ctx_reset(ctx);
      if (s >= warmup) t_phase[p] += now_s() - tp;
    }
  }
  double train_s = now_s() - t0, train_cpu = cpu_s() - c0;
  /* inference: 10 s of audio, in eval mode without a tape */
  const codec *c = codec_model_codec(m);
  int hop = codec_hop(&c->cfg);
  int64_t n = (int64_t)sr * 10 / hop * hop;
  float *a = malloc(sizeof(float) * (size_t)n);
  tones(a, 1, n, sr);
  vt_set_grad_enabled(ctx, false);
  double ti = 1e30, ci = 1e30;
  for (int r = 0; r < 4; r++) { /* the first run warms up; the best of the other three */
    double t1 = now_s(), c1 = cpu_s();
    vt_tensor *y = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, 1, n}, a), *g;
    vt_tensor *lat = codec_encode(c, ctx, y, CODEC_EVAL, &g);
    codec_vq q = codec_quantize(c, ctx, lat, g);
    vt_tensor *yh = codec_decode(c, ctx, q.q, q.gq);
    (void)vt_item(ctx, yh);
    if (vt_ctx_failed(ctx)) {
      fprintf(stderr, "bench_codec: %s\n", vt_ctx_error(ctx));
      return 1;
    }
    vt_ctx_reset(ctx);
    if (r > 0 && now_s() - t1 < ti) ti = now_s() - t1;
    if (r > 0 && cpu_s() - c1 < ci) ci = cpu_s() - c1;
  }
  printf("codec %s: batch %d x %d samples, %zu parameters\n", cfg, batch, seg,
         vt_params_count(&ps, false));
  printf("RESULT impl=c steps_per_s=%.3f step_ms=%.1f rtf=%.4f d_ms=%.1f g_ms=%.1f "
         "cpu_step_ms=%.1f cpu_rtf=%.4f\n",
         steps / train_s, 1e3 * train_s / steps, ti / 10.0, 1e3 * t_phase[0] / steps,
         1e3 * t_phase[1] / steps, 1e3 * train_cpu / steps, ci / 10.0);
  for (int p = 0; p < 2; p++) vt_optim_free(&opt[p]), free(only[p]);
  free(w);
  free(a);
  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return 0;
}
