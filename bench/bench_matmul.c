/* Matmul benchmark: GFLOP/s of the framework's vt_matmul op (forward, with the tape on) next
 * to a direct OpenBLAS cblas_sgemm call on the same buffers in the same run, for square and
 * LLM-shaped sizes; then the per-op overhead of the tape on a loop of tiny ops.
 * Run: build/bench/bench_matmul [--quick] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/vt.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
  const char *what;
  int m, n, k;
} shape;

/* Times fn until at least min_s seconds have passed; returns seconds per call (best of 3). */
#define TIME_BEST(out, min_s, body)                                                                \
  do {                                                                                             \
    double best_ = 1e30;                                                                           \
    for (int rep_ = 0; rep_ < 3; rep_++) {                                                         \
      int iters_ = 0;                                                                              \
      double t0_ = now(), t_;                                                                      \
      do {                                                                                         \
        body;                                                                                      \
        iters_++;                                                                                  \
        t_ = now() - t0_;                                                                          \
      } while (t_ < (min_s));                                                                      \
      if (t_ / iters_ < best_) best_ = t_ / iters_;                                                \
    }                                                                                              \
    (out) = best_;                                                                                 \
  } while (0)

int main(int argc, char **argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  double min_s = quick ? 0.05 : 0.3;
  const shape shapes[] = {
      {"square 256", 256, 256, 256},
      {"square 512", 512, 512, 512},
      {"square 1024", 1024, 1024, 1024},
      {"square 2048", 2048, 2048, 2048},
      {"qkv proj (T=512, 896->2688)", 512, 2688, 896},
      {"mlp up (T=512, 896->4864)", 512, 4864, 896},
      {"mlp down (T=512, 4864->896)", 512, 896, 4864},
      {"lm head (T=256, 896->8192)", 256, 8192, 896},
  };
  const char *err = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &err);
  if (!ctx) {
    fprintf(stderr, "bench_matmul: %s\n", err);
    return 1;
  }
  printf("%-32s %10s %10s %8s\n", "shape (M x K) @ (K x N)^T", "sgemm", "vt_matmul", "ratio");
  vt_rng r;
  vt_rng_seed(&r, 1);
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    const shape *sh = &shapes[s];
    if (quick && sh->m * (double)sh->n * sh->k > 1e9) continue;
    float *a = malloc(sizeof(float) * (size_t)sh->m * sh->k);
    float *b = malloc(sizeof(float) * (size_t)sh->n * sh->k);
    float *c = malloc(sizeof(float) * (size_t)sh->m * sh->n);
    for (long i = 0; i < (long)sh->m * sh->k; i++) a[i] = vt_rng_uniform(&r) - 0.5f;
    for (long i = 0; i < (long)sh->n * sh->k; i++) b[i] = vt_rng_uniform(&r) - 0.5f;
    /* the op sees the same buffers as the direct call: wrap them as tensors */
    vt_tensor ta = {.dtype = VT_F32, .ndim = 2, .shape = {sh->m, sh->k}, .data = a};
    vt_tensor tb = {
        .dtype = VT_F32, .ndim = 2, .shape = {sh->n, sh->k}, .data = b, .requires_grad = true};
    double flops = 2.0 * sh->m * sh->n * sh->k, t_blas = 1e30, t_op = 1e30, t;
    /* alternate the two so that load from elsewhere on the machine hits both alike */
    for (int round = 0; round < 5; round++) {
      TIME_BEST(t, min_s / 3,
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, sh->m, sh->n, sh->k, 1.0f, a,
                            sh->k, b, sh->k, 0.0f, c, sh->n));
      if (t < t_blas) t_blas = t;
      TIME_BEST(t, min_s / 3, {
        vt_matmul(ctx, &ta, &tb, false, true);
        vt_ctx_reset(ctx);
      });
      if (t < t_op) t_op = t;
    }
    if (vt_ctx_failed(ctx)) {
      fprintf(stderr, "bench_matmul: %s\n", vt_ctx_error(ctx));
      return 1;
    }
    printf("%-32s %7.1f GF %7.1f GF %7.1f%%\n", sh->what, flops / t_blas * 1e-9,
           flops / t_op * 1e-9, 100.0 * t_blas / t_op);
    free(a);
    free(b);
    free(c);
  }

  /* tape overhead: a chain of adds on 16-element tensors, with the tape on and off */
  float x[16] = {0};
  vt_tensor tx = {.dtype = VT_F32, .ndim = 1, .shape = {16}, .data = x, .requires_grad = true};
  int n_ops = 1000;
  double t_tape, t_nograd;
  TIME_BEST(t_tape, min_s, {
    vt_tensor *y = &tx;
    for (int i = 0; i < n_ops; i++) y = vt_add(ctx, y, &tx);
    vt_ctx_reset(ctx);
  });
  vt_set_grad_enabled(ctx, false);
  TIME_BEST(t_nograd, min_s, {
    vt_tensor *y = &tx;
    for (int i = 0; i < n_ops; i++) y = vt_add(ctx, y, &tx);
    vt_ctx_reset(ctx);
  });
  vt_set_grad_enabled(ctx, true);
  printf("\ntiny op (add of 16 floats): %.0f ns/op with the tape, %.0f ns/op in no-grad mode, "
         "tape recording %.0f ns/op\n",
         t_tape / n_ops * 1e9, t_nograd / n_ops * 1e9, (t_tape - t_nograd) / n_ops * 1e9);
  vt_ctx_free(ctx);
  return 0;
}
