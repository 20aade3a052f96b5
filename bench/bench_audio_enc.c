/* Audio encoder forward + backward throughput (fbank frames per second) in f32 on the CPU, for
 * bench/run_audio_enc_vs_torch.sh, which runs bench_audio_enc_torch.py on the same shape.
 * Usage: bench_audio_enc [HIDDEN=256] [LAYERS=4] [BATCH=2] [FRAMES=1000] [STEPS=3]
 * (heads hidden/64, FFN 4 hidden, 80 mels, full attention, dropout off: eval-mode math). */
#include "model/audio_enc.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the process (all threads): at 1 thread the work itself, whatever the load */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

int main(int argc, char **argv) {
  int64_t H = argc > 1 ? atoll(argv[1]) : 256, L = argc > 2 ? atoll(argv[2]) : 4;
  int64_t B = argc > 3 ? atoll(argv[3]) : 2, T = argc > 4 ? atoll(argv[4]) : 1000;
  int steps = argc > 5 ? atoi(argv[5]) : 3;
  audio_enc_cfg c = audio_enc_cfg_vita();
  c.hidden = H;
  c.heads = H / 64 > 0 ? H / 64 : 1;
  c.ffn = 4 * H;
  c.layers = L;
  c.chunk_mode = AUDIO_ENC_CHUNK_FULL;
  char err[512];
  vt_params ps;
  audio_enc m;
  if (vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) ||
      audio_enc_init(&m, &ps, &c, err, sizeof err) || vt_params_alloc(&ps, err, sizeof err)) {
    fprintf(stderr, "bench_audio_enc: %s\n", err);
    return 1;
  }
  vt_params_set_trainable(&ps, AUDIO_ENC_CMVN_GLOB, false);
  if (vt_params_alloc_grads(&ps, err, sizeof err)) {
    fprintf(stderr, "bench_audio_enc: %s\n", err);
    return 1;
  }
  vt_rng rng;
  vt_rng_seed(&rng, 1);
  audio_enc_init_weights(&m, &rng);
  const char *cerr = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
  if (!ctx) {
    fprintf(stderr, "bench_audio_enc: %s\n", cerr ? cerr : "no CPU context");
    return 1;
  }
  float *x = malloc(sizeof(float) * (size_t)(B * T * 80));
  for (int64_t i = 0; i < B * T * 80; i++) x[i] = 10.0f * vt_rng_uniform(&rng);
  int32_t *lens = malloc(sizeof(int32_t) * (size_t)B);
  for (int64_t b = 0; b < B; b++) lens[b] = (int32_t)T;
  double best = 1e30, best_cpu = 1e30;
  for (int s = 0; s < steps + 1; s++) {
    double t0 = now_s(), c0 = cpu_s();
    vt_params_zero_grad(&ps);
    vt_tensor *in = vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, 80}, x);
    vt_tensor *y = audio_enc_forward(&m, ctx, in, lens, NULL, NULL);
    vt_tensor *loss = vt_mean(ctx, vt_mul(ctx, y, y), VT_ALL_AXES, false);
    if (!vt_backward(ctx, loss) || vt_ctx_failed(ctx)) {
      fprintf(stderr, "bench_audio_enc: %s\n", vt_ctx_error(ctx));
      return 1;
    }
    vt_ctx_reset(ctx);
    double dt = now_s() - t0, dc = cpu_s() - c0;
    if (s > 0 && dt < best) best = dt; /* step 0 warms the arena up */
    if (s > 0 && dc < best_cpu) best_cpu = dc;
  }
  printf("RESULT impl=c hidden=%lld layers=%lld batch=%lld frames=%lld params=%lld "
         "step_ms=%.1f frames_per_s=%.1f cpu_ms=%.1f\n",
         (long long)H, (long long)L, (long long)B, (long long)T,
         (long long)vt_params_count(&ps, true), best * 1e3, (double)(B * T) / best, best_cpu * 1e3);
  free(x);
  free(lens);
  vt_ctx_free(ctx);
  audio_enc_free(&m);
  vt_params_free(&ps);
  return 0;
}
