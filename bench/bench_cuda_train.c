/* Training speed and MFU of a Qwen2 of about 0.5B parameters (Qwen2-0.5B's shape: hidden 896,
 * 24 layers, 14 heads, 2 KV heads, FFN 4864, vocab 151936, tied embeddings) at sequence 2048
 * on cuda:0: AdamW steps (global-norm clip 1.0) on random tokens, parameters, gradients,
 * moments and the step all on the GPU. Warm-up steps are not timed. FLOPs per step count as
 * bench_qwen2_train does: 6 P_mm tokens + 6 L B H hd T^2 (causal attention), where P_mm is every
 * parameter in a matmul (the tied embedding serves the LM head). MFU is that rate over a peak:
 * VT_PEAK_TFLOPS (default 989, dense bf16 of an H100 / H200 SXM); the fp32 figure (67) is
 * printed too. --bf16 trains with bf16 mixed precision (bf16 GEMMs on the parameter store's
 * bf16 copies, f32 master weights, moments, norms, attention and losses); without it the
 * whole step is f32 (full-FP32 GEMMs).
 *   RESULT bench=cuda_train params=... tokens_per_s=... tflops=... mfu_bf16=... mfu_fp32=...
 * Usage: bench_cuda_train [--bf16] [steps] [warmup] [seq] [batch] (default 4 2 2048 1). Exits 77
 * without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_qwen2.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
  bool bf16 = argc > 1 && !strcmp(argv[1], "--bf16");
  if (bf16) argc--, argv++;
  int steps = argc > 1 ? atoi(argv[1]) : 4, warmup = argc > 2 ? atoi(argv[2]) : 2;
  int64_t T = argc > 3 ? atoll(argv[3]) : 2048, B = argc > 4 ? atoll(argv[4]) : 1;
  if (steps < 1 || warmup < 0 || T < 2 || B < 1) {
    fprintf(stderr, "usage: bench_cuda_train [--bf16] [steps] [warmup] [seq] [batch]\n");
    return 2;
  }
  if (vt_cuda_device_count() == 0) {
    printf("bench_cuda_train: no GPU, skipped\n");
    return 77;
  }
  qwen2_cfg cfg = {.vocab_size = 151936,
                   .hidden_size = 896,
                   .intermediate_size = 4864,
                   .num_hidden_layers = 24,
                   .num_attention_heads = 14,
                   .num_key_value_heads = 2,
                   .max_position_embeddings = 32768,
                   .rope_theta = 1e6,
                   .rms_norm_eps = 1e-6,
                   .initializer_range = 0.02,
                   .tie_word_embeddings = true};
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 1e-4;
  oc.max_grad_norm = 1.0;
  bench_qwen2 bq;
  if (bench_qwen2_init(&bq, "bench_cuda_train", &cfg, (vt_device){VT_DEV_CUDA, 0}, &oc, bf16,
                       "cuBLAS sgemm (full FP32)"))
    return 1;
  vt_params *ps = &bq.ps;
  vt_ctx *ctx = bq.ctx;
  char err[512];
  int64_t P = (int64_t)vt_params_count(ps, false);
  printf("qwen2 on cuda:0: %lld params, batch %lld x seq %lld, %s (GEMMs: %s), %d steps after %d "
         "warm-up\n",
         (long long)P, (long long)B, (long long)T, bf16 ? "bf16 mixed precision" : "f32", bq.kernel,
         steps, warmup);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * T));
  double t0 = 0, loss0 = 0, loss = 0;
  for (int s = 0; s < warmup + steps; s++) {
    if (s == warmup) {
      vt_backend_sync(ps->be);
      t0 = now_s();
    }
    for (int64_t i = 0; i < B * T; i++)
      ids[i] = (int32_t)vt_rng_below(&bq.rng, (uint64_t)cfg.vocab_size);
    vt_params_zero_grad(ps);
    vt_tensor *tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, ids);
    vt_tensor *l = qwen2_loss(&bq.m, ctx, tid, tid, NULL);
    if (!vt_backward(ctx, l) || vt_ctx_failed(ctx)) {
      fprintf(stderr, "bench_cuda_train: step %d: %s\n", s, vt_ctx_error(ctx));
      return 1;
    }
    loss = vt_item(ctx, l);
    if (s == 0) loss0 = loss;
    vt_optim_stats st;
    if (vt_optim_step(&bq.opt, 1.0, s, &st, err, sizeof err)) {
      fprintf(stderr, "bench_cuda_train: %s\n", err);
      return 1;
    }
    vt_ctx_reset(ctx);
    if (s < warmup) printf("  warm-up step %d: loss %.4f\n", s, loss);
  }
  vt_backend_sync(ps->be);
  double dt = (now_s() - t0) / steps;
  double flops = bench_qwen2_flops(&cfg, P, B, T);
  const char *pk = getenv("VT_PEAK_TFLOPS");
  double peak = pk ? atof(pk) : 989.0, tflops = flops / dt * 1e-12;
  printf("step %.1f ms, %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%% of %.0f (bf16 peak), %.1f%% of 67 "
         "(fp32 peak); loss %.4f -> %.4f\n",
         dt * 1e3, (double)(B * T) / dt, tflops, 100 * tflops / peak, peak, 100 * tflops / 67.0,
         loss0, loss);
  printf("RESULT bench=cuda_train precision=%s params=%lld seq=%lld batch=%lld step_ms=%.1f "
         "tokens_per_s=%.0f tflops=%.2f mfu_bf16=%.4f mfu_fp32=%.4f arena_mib=%.0f loss0=%.4f "
         "loss=%.4f\n",
         bf16 ? "bf16" : "f32", (long long)P, (long long)T, (long long)B, dt * 1e3,
         (double)(B * T) / dt, tflops, tflops / peak, tflops / 67.0,
         vt_ctx_arena_high_water(ctx) / 1048576.0, loss0, loss);
  free(ids);
  bench_qwen2_free(&bq);
  return isfinite(loss) ? 0 : 1;
}
