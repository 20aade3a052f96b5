/* GEMM throughput on cuda:0: the backend's GEMM (vt_backend.gemm, bf16 inputs with f32
 * accumulate and f32 out, and full-FP32 f32) next to a plain cuBLASLt bf16 matmul of the same
 * shape and output type, on random data: median of the repeats after warm-up, each repeat
 * enough back-to-back calls to last about a millisecond, closed by a stream synchronisation.
 * Shapes: a square 4096 and 8192, and the linear layers of a Qwen2-0.5B step at 2048 tokens. Prints
 * one line per shape and a RESULT line: RESULT bench=cuda_gemm shape=... vt_tflops=...
 * lt_tflops=... ratio=... Usage: bench_cuda_gemm [repeats] (default 20). Exits 77 without a GPU. */
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "autograd/backend.h"
#include "autograd/dtype.h"
}

#define CK(call)                                                                                   \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));       \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)
#define CKL(call)                                                                                  \
  do {                                                                                             \
    cublasStatus_t s_ = (call);                                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                             \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cublasGetStatusString(s_));    \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

typedef struct {
  const char *what;
  int64_t m, n, k;
} shape;

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Median milliseconds per call over `reps` timings of `inner` back-to-back calls of fn, each
 * timing ended by sync() (the backend's work runs on its own stream, so host time around a
 * synchronisation is the one clock both sides share; `inner` makes that overhead small). */
template <typename F, typename S> static float median_ms(int reps, int inner, F fn, S sync) {
  for (int i = 0; i < 3; i++) fn(); /* warm-up: handles, heuristics, clocks */
  sync();
  float *ms = (float *)malloc(sizeof(float) * (size_t)reps);
  for (int i = 0; i < reps; i++) {
    double t0 = now_ms();
    for (int j = 0; j < inner; j++) fn();
    sync();
    ms[i] = (float)((now_ms() - t0) / inner);
  }
  qsort(ms, (size_t)reps, sizeof(float), cmp_float);
  float med = ms[reps / 2];
  free(ms);
  return med;
}

__global__ void fill_bf16(uint16_t *x, int64_t n, uint64_t seed) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    uint64_t z = (seed + (uint64_t)i) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
    float u = (float)((z >> 40) & 0xffffff) * 0x1.0p-24f * 2.0f - 1.0f;
    x[i] = vt_f32_to_bf16(u);
  }
}

__global__ void widen(const uint16_t *x, float *y, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    y[i] = vt_bf16_to_f32(x[i]);
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 20;
  if (reps < 1) reps = 1;
  const char *why = NULL;
  vt_backend *be = vt_backend_cuda(0, &why);
  if (!be) {
    printf("bench_cuda_gemm: no GPU (%s), skipped\n", why ? why : "?");
    return 77;
  }
  /* a stream of our own for the cuBLASLt calls (the instance's stream is private to it) */
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasLtHandle_t lt;
  CKL(cublasLtCreate(&lt));
  size_t ws_bytes = (size_t)64 << 20;
  void *ws;
  CK(cudaMalloc(&ws, ws_bytes));
  /* Qwen2-0.5B: hidden 896, intermediate 4864, vocab 151936; 2048 tokens */
  const shape shapes[] = {
      {"square 4096", 4096, 4096, 4096},       {"square 8192", 8192, 8192, 8192},
      {"qkv 2048x1152x896", 2048, 1152, 896},  {"gate+up 2048x9728x896", 2048, 9728, 896},
      {"down 2048x896x4864", 2048, 896, 4864}, {"lm_head 2048x151936x896", 2048, 151936, 896}};
  const int ns = (int)(sizeof shapes / sizeof *shapes);
  printf("GEMM on cuda:0, C[m,n] = A[m,k] B[n,k]^T (the linear layer), f32 out, median of %d\n",
         reps);
  printf("%-26s %12s %12s %12s %8s\n", "shape", "vt bf16", "cuBLASLt", "vt f32", "vt/Lt");
  for (int i = 0; i < ns; i++) {
    const shape *sh = &shapes[i];
    int64_t m = sh->m, n = sh->n, k = sh->k;
    uint16_t *a, *b;
    float *c, *af = NULL, *bf = NULL;
    CK(cudaMalloc(&a, sizeof(uint16_t) * (size_t)(m * k)));
    CK(cudaMalloc(&b, sizeof(uint16_t) * (size_t)(n * k)));
    CK(cudaMalloc(&c, sizeof(float) * (size_t)(m * n)));
    fill_bf16<<<1024, 256, 0, s>>>(a, m * k, 1);
    fill_bf16<<<1024, 256, 0, s>>>(b, n * k, 2);
    CK(cudaGetLastError());
    CK(cudaStreamSynchronize(s));
    double flops = 2.0 * (double)m * (double)n * (double)k;
    /* the backend: row-major C = A B^T */
    int inner = (int)(2e11 / flops) + 1; /* about a millisecond or more per timing */
    if (inner > 200) inner = 200;
    auto sync_be = [&] { vt_backend_sync(be); };
    auto sync_s = [&] { CK(cudaStreamSynchronize(s)); };
    float t_vt = median_ms(
        reps, inner,
        [&] {
          be->gemm(be, VT_BF16, false, true, m, n, k, 1.0f, a, k, 0, b, k, 0, 0.0f, c, n, 0, 1);
        },
        sync_be);
    /* plain cuBLASLt: column-major C^T[n,m] = B[n,k] A^T, the same bytes */
    cublasLtMatmulDesc_t op;
    CKL(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
    CKL(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA));
    CKL(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB));
    cublasLtMatrixLayout_t la, lb, lc;
    CKL(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)k, (uint64_t)n, k)); /* B^T view */
    CKL(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)k, (uint64_t)m, k)); /* A^T view */
    CKL(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, (uint64_t)n, (uint64_t)m, n));
    cublasLtMatmulPreference_t pref;
    CKL(cublasLtMatmulPreferenceCreate(&pref));
    CKL(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &ws_bytes, sizeof ws_bytes));
    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    CKL(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &heur, &found));
    float one = 1.0f, zero = 0.0f;
    float t_lt = found ? median_ms(
                             reps, inner,
                             [&] {
                               CKL(cublasLtMatmul(lt, op, &one, b, la, a, lb, &zero, c, lc, c, lc,
                                                  &heur.algo, ws, ws_bytes, s));
                             },
                             sync_s)
                       : 0.0f;
    /* f32 inputs through the backend (full FP32, no TF32): the precision training runs in
     * until bf16 compute copies are wired */
    float t_f32 = 0;
    if (m * k + n * k < ((int64_t)1 << 28)) {
      CK(cudaMalloc(&af, sizeof(float) * (size_t)(m * k)));
      CK(cudaMalloc(&bf, sizeof(float) * (size_t)(n * k)));
      widen<<<1024, 256, 0, s>>>(a, af, m * k);
      widen<<<1024, 256, 0, s>>>(b, bf, n * k);
      CK(cudaGetLastError());
      CK(cudaStreamSynchronize(s));
      t_f32 = median_ms(
          reps < 5 ? reps : 5, (inner + 9) / 10,
          [&] {
            be->gemm(be, VT_F32, false, true, m, n, k, 1.0f, af, k, 0, bf, k, 0, 0.0f, c, n, 0, 1);
          },
          sync_be);
    }
    double tf_vt = flops / (t_vt * 1e-3) * 1e-12,
           tf_lt = t_lt > 0 ? flops / (t_lt * 1e-3) * 1e-12 : 0;
    double tf_32 = t_f32 > 0 ? flops / (t_f32 * 1e-3) * 1e-12 : 0;
    printf("%-26s %9.1f TF %9.1f TF %9.1f TF %8.3f\n", sh->what, tf_vt, tf_lt, tf_32,
           tf_lt > 0 ? tf_vt / tf_lt : 0);
    printf("RESULT bench=cuda_gemm shape=\"%s\" vt_tflops=%.1f lt_tflops=%.1f vt_f32_tflops=%.1f "
           "ratio=%.3f\n",
           sh->what, tf_vt, tf_lt, tf_32, tf_lt > 0 ? tf_vt / tf_lt : 0);
    CKL(cublasLtMatmulPreferenceDestroy(pref));
    CKL(cublasLtMatrixLayoutDestroy(la));
    CKL(cublasLtMatrixLayoutDestroy(lb));
    CKL(cublasLtMatrixLayoutDestroy(lc));
    CKL(cublasLtMatmulDescDestroy(op));
    CK(cudaFree(a));
    CK(cudaFree(b));
    CK(cudaFree(c));
    if (af) CK(cudaFree(af));
    if (bf) CK(cudaFree(bf));
  }
  CK(cudaFree(ws));
  CKL(cublasLtDestroy(lt));
  CK(cudaStreamDestroy(s));
  vt_backend_free(be);
  return 0;
}
