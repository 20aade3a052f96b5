/* Training speed of a small Qwen2-shaped model on the CPU (issue 5's reference shape: hidden
 * 512, 4 layers, 8 heads, 2 KV heads, FFN 1408, vocab 8192, sequence 256, batch 4), on random
 * tokens with AdamW. Warmup steps are not timed. Prints one parseable line:
 *   RESULT impl=c tokens_per_s=... gflops=... peak_rss_mib=... step_ms=... loss0=... loss=...
 * FLOPs per step = 6 * P * B * T + 6 * L * B * H * hd * T^2, where P counts the parameters
 * that take part in matmuls (all of them but the input embedding table, a gather: 15.5M of
 * 19.7M here) at 6 FLOPs per parameter and token (2 forward, 4 backward), and the second term
 * is causal attention: QK^T and PV are 2 * T^2 * hd each per head over the full square,
 * forward once and backward twice (12 * T^2 * hd), halved by the causal mask. PyTorch's bench
 * counts the same way.
 * Usage: bench_qwen2_train [steps] [warmup] [--recompute]   (OMP_NUM_THREADS sets threads) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "autograd/vt.h"
#include "model/qwen2.h"
#include "train/optim.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  int steps = 10, warmup = 2;
  bool recompute = false;
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--recompute")) {
      recompute = true;
    } else if (npos == 0) {
      steps = atoi(argv[i]), npos++;
    } else {
      warmup = atoi(argv[i]), npos++;
    }
  }
  if (steps < 1 || warmup < 0) {
    fprintf(stderr, "usage: bench_qwen2_train [steps] [warmup] [--recompute]\n");
    return 2;
  }
  const int64_t B = 4, T = 256;
  qwen2_cfg cfg = {.vocab_size = 8192,
                   .hidden_size = 512,
                   .intermediate_size = 1408,
                   .num_hidden_layers = 4,
                   .num_attention_heads = 8,
                   .num_key_value_heads = 2,
                   .max_position_embeddings = 2048,
                   .rope_theta = 1e6,
                   .rms_norm_eps = 1e-6,
                   .initializer_range = 0.02,
                   .tie_word_embeddings = false,
                   .recompute = recompute};
  char err[512];
  vt_params ps;
  qwen2 m;
  if (vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) ||
      qwen2_init(&m, &ps, &cfg, err, sizeof err) || vt_params_alloc(&ps, err, sizeof err) ||
      vt_params_alloc_grads(&ps, err, sizeof err)) {
    fprintf(stderr, "bench_qwen2_train: %s\n", err);
    return 1;
  }
  vt_rng rng;
  vt_rng_seed(&rng, 1234);
  qwen2_init_weights(&m, &rng);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 1e-4;
  vt_optim opt;
  if (vt_optim_init(&opt, &ps, &oc, err, sizeof err)) {
    fprintf(stderr, "bench_qwen2_train: %s\n", err);
    return 1;
  }
  const char *cerr = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
  if (!ctx) {
    fprintf(stderr, "bench_qwen2_train: %s\n", cerr ? cerr : "no CPU context");
    return 1;
  }
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * T));
  int64_t P = (int64_t)vt_params_count(&ps, false);
  const char *threads = getenv("OMP_NUM_THREADS");
  printf("qwen2 bench (C): params %lld, batch %lld x seq %lld, %d steps after %d warmup, "
         "threads %s, recompute %s\n",
         (long long)P, (long long)B, (long long)T, steps, warmup, threads ? threads : "default",
         recompute ? "on" : "off");

  double t_start = 0, loss0 = 0, loss = 0;
  for (int s = 0; s < warmup + steps; s++) {
    if (s == warmup) t_start = now_s();
    for (int64_t i = 0; i < B * T; i++)
      ids[i] = (int32_t)vt_rng_below(&rng, (uint64_t)cfg.vocab_size);
    vt_params_zero_grad(&ps);
    vt_tensor *tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, ids);
    vt_tensor *l = qwen2_loss(&m, ctx, tid, tid, NULL); /* labels = inputs (shifted inside) */
    loss = vt_item(ctx, l);
    if (!vt_backward(ctx, l) || vt_ctx_failed(ctx)) {
      fprintf(stderr, "bench_qwen2_train: step %d: %s\n", s, vt_ctx_error(ctx));
      return 1;
    }
    vt_optim_stats st;
    if (vt_optim_step(&opt, 1.0, s, &st, err, sizeof err)) {
      fprintf(stderr, "bench_qwen2_train: %s\n", err);
      return 1;
    }
    vt_ctx_reset(ctx);
    if (s == 0) loss0 = loss;
  }
  double dt = now_s() - t_start;

  double tokens = (double)(B * T) * steps;
  int64_t L = cfg.num_hidden_layers, H = cfg.num_attention_heads;
  int64_t hd = cfg.hidden_size / H;
  double p_mm = (double)(P - cfg.vocab_size * cfg.hidden_size); /* all but the embedding */
  double flops_step =
      6.0 * p_mm * (double)(B * T) + 6.0 * (double)(L * B * H * hd) * (double)(T * T);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("RESULT impl=c tokens_per_s=%.1f gflops=%.2f peak_rss_mib=%.1f step_ms=%.1f loss0=%.4f "
         "loss=%.4f arena_mib=%.1f blas=%s\n",
         tokens / dt, flops_step * steps / dt * 1e-9, ru.ru_maxrss / 1024.0, dt / steps * 1e3,
         loss0, loss, vt_ctx_arena_high_water(ctx) / 1048576.0, openblas_get_corename());
  free(ids);
  vt_ctx_free(ctx);
  vt_optim_free(&opt);
  qwen2_free(&m);
  vt_params_free(&ps);
  return 0;
}
