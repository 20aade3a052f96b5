/* Matmul benchmark: GFLOP/s of the framework's vt_matmul op (forward, with the tape on) next
 * to a direct OpenBLAS cblas_sgemm call on the same buffers in the same run, for square and
 * LLM-shaped sizes; then the per-op overhead of the tape on a loop of tiny ops.
 * --qwen2 instead times the Qwen2 bench step's linear-layer GEMMs as sgemm and as oneDNN bf16
 * (f32 and bf16 outputs): the ceiling of bf16 GEMMs over f32 ones on this CPU.
 * Run: build/bench/bench_matmul [--quick | --qwen2] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/backend.h"
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

/* One linear-layer GEMM of the Qwen2 bench step (bench_qwen2_train's model: hidden 512, 8
 * heads, 2 KV heads, FFN 1408, vocab 8192, 4 x 256 tokens), `count` calls a step. */
typedef struct {
  const char *what;
  bool ta, tb;
  int m, n, k;
  int count;
} step_gemm;

/* --qwen2: each GEMM of the bench step as sgemm (OpenBLAS, the kernels it runs with here),
 * oneDNN bf16 with an f32 c (the backend's gemm) and with a bf16 c (gemm_bf16_out), the best
 * of 5 alternating rounds each, and the step's sums: the GEMM ceiling of bf16 against f32. */
static int bench_qwen2_gemms(double min_s) {
  const int rows = 1024, L = 4;
  const struct {
    const char *what;
    int out, in, count;
  } lin[] = {{"qkv (packed)", 768, 512, L},
             {"gate+up (packed)", 2816, 512, L},
             {"o_proj", 512, 512, L},
             {"down_proj", 512, 1408, L},
             {"lm_head", 8192, 512, 1}};
  step_gemm g[15];
  int ng = 0;
  for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) { /* y = x W^T; dx = dy W; dW = dy^T x */
    g[ng++] = (step_gemm){lin[i].what, false, true, rows, lin[i].out, lin[i].in, lin[i].count};
    g[ng++] = (step_gemm){lin[i].what, false, false, rows, lin[i].in, lin[i].out, lin[i].count};
    g[ng++] = (step_gemm){lin[i].what, true, false, lin[i].out, lin[i].in, rows, lin[i].count};
  }
  const vt_backend *be = vt_backend_cpu();
  char info[256];
  if (!vt_backend_bf16_gemm(be, info, sizeof info)) {
    fprintf(stderr, "bench_matmul --qwen2: no bf16 GEMM: %s\n", info);
    return 77;
  }
  printf("bf16 GEMM: %s; sgemm: OpenBLAS %s\n", info, openblas_get_corename());
  printf("%-18s %2s %5s %5s %5s %4s %9s %9s %9s %7s %7s\n", "gemm", "op", "m", "n", "k", "x",
         "sgemm GF", "bf16 GF", "bf16>bf16", "ratio", "ratio2");
  double tot[3] = {0, 0, 0};
  vt_rng r;
  vt_rng_seed(&r, 2);
  for (int s = 0; s < ng; s++) {
    const step_gemm *q = &g[s];
    size_t na = (size_t)q->m * q->k, nb = (size_t)q->k * q->n, nc = (size_t)q->m * q->n;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    float *c = malloc(sizeof(float) * nc);
    uint16_t *ah = malloc(2 * na), *bh = malloc(2 * nb), *ch = malloc(2 * nc);
    for (size_t i = 0; i < na; i++) a[i] = vt_rng_uniform(&r) - 0.5f;
    for (size_t i = 0; i < nb; i++) b[i] = vt_rng_uniform(&r) - 0.5f;
    be->convert(be, VT_F32, VT_BF16, (int64_t)na, a, ah);
    be->convert(be, VT_F32, VT_BF16, (int64_t)nb, b, bh);
    int lda = q->ta ? q->m : q->k, ldb = q->tb ? q->k : q->n;
    double t[3] = {1e30, 1e30, 1e30}, x;
    for (int round = 0; round < 5; round++) {
      TIME_BEST(x, min_s / 3,
                cblas_sgemm(CblasRowMajor, q->ta ? CblasTrans : CblasNoTrans,
                            q->tb ? CblasTrans : CblasNoTrans, q->m, q->n, q->k, 1.0f, a, lda, b,
                            ldb, 0.0f, c, q->n));
      if (x < t[0]) t[0] = x;
      TIME_BEST(x, min_s / 3,
                be->gemm(be, VT_BF16, q->ta, q->tb, q->m, q->n, q->k, 1.0f, ah, lda, 0, bh, ldb, 0,
                         0.0f, c, q->n, 0, 1));
      if (x < t[1]) t[1] = x;
      TIME_BEST(x, min_s / 3,
                be->gemm_bf16_out(be, q->ta, q->tb, q->m, q->n, q->k, 1.0f, ah, lda, 0, bh, ldb, 0,
                                  NULL, ch, q->n, 0, 1));
      if (x < t[2]) t[2] = x;
    }
    double f = 2.0 * q->m * q->n * q->k;
    for (int i = 0; i < 3; i++) tot[i] += t[i] * q->count;
    printf("%-18s %c%c %5d %5d %5d %4d %9.1f %9.1f %9.1f %7.2f %7.2f\n", q->what, q->ta ? 'T' : 'N',
           q->tb ? 'T' : 'N', q->m, q->n, q->k, q->count, f / t[0] * 1e-9, f / t[1] * 1e-9,
           f / t[2] * 1e-9, t[0] / t[1], t[0] / t[2]);
    free(a), free(b), free(c), free(ah), free(bh), free(ch);
  }
  printf("step's linear GEMMs: sgemm %.1f ms, bf16 %.1f ms (%.2fx), bf16 with bf16 c %.1f ms "
         "(%.2fx)\n",
         tot[0] * 1e3, tot[1] * 1e3, tot[0] / tot[1], tot[2] * 1e3, tot[0] / tot[2]);
  return 0;
}

int main(int argc, char **argv) {
  bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  if (argc > 1 && strcmp(argv[1], "--qwen2") == 0) return bench_qwen2_gemms(0.3);
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
