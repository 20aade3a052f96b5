/* Fused attention on cuda:0 through the backend's attn kernels (forward, and backward with
 * every gradient), causal and bidirectional, on random data; median of the repeats after
 * warm-up, closed by a stream synchronisation. FLOPs count the GEMM work of the unfused
 * formula: forward 2 products (Q K^T, P V) of 2 B H Tq Tk D each, backward 5 (the scores
 * recomputed, dO V^T, P^T dO, dS K, dS^T Q), halved for the causal mask. Shapes: Qwen2-0.5B's
 * (14 heads, 2 KV heads, head dim 64) and a 7B-like one (28 / 4, 128), at 2048 positions.
 * Each shape runs twice: the f32 kernels (kernel=simple: one warp per row, no tensor cores) and
 * with the geometry's bf16 flag, as under bf16 mixed precision (kernel=flash: the tensor-core
 * kernels of cuda_attn_flash.cu; VT_CUDA_SIMPLE=1 makes this the simple kernels too). The
 * flash line also prints its largest difference from the simple path's output (a sanity
 * check, not the test: test_cuda_attn is). Prints one line per shape and path and RESULT lines:
 *   RESULT bench=cuda_attn kernel=... shape=... fwd_tflops=... bwd_tflops=... fwd_ms=... bwd_ms=...
 * Usage: bench_cuda_attn [repeats] (default 5). Exits 77 without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/kernels_attn.h"
#include "autograd/rng.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct {
  const char *what;
  int64_t B, H, Hkv, T, D;
  vt_attn_mask_kind mask;
} shape;

static float *upload_random(const vt_backend *be, vt_rng *r, int64_t n) {
  float *h = malloc(sizeof(float) * (size_t)n);
  for (int64_t i = 0; i < n; i++) h[i] = 2.0f * vt_rng_uniform(r) - 1.0f;
  float *d = vt_buf_alloc(be, sizeof(float) * (size_t)n);
  if (d) vt_buf_from_host(be, d, h, sizeof(float) * (size_t)n);
  free(h);
  return d;
}

int main(int argc, char **argv) {
  int reps = argc > 1 ? atoi(argv[1]) : 5;
  if (reps < 1) reps = 1;
  const char *why = NULL;
  vt_backend *be = vt_backend_cuda(0, &why);
  if (!be) {
    printf("bench_cuda_attn: no GPU (%s), skipped\n", why ? why : "?");
    return 77;
  }
  const shape shapes[] = {
      {"qwen2-0.5b causal B4 T2048 H14/2 D64", 4, 14, 2, 2048, 64, VT_ATTN_CAUSAL},
      {"bidirectional B4 T1024 H16/16 D64", 4, 16, 16, 1024, 64, VT_ATTN_BIDIRECTIONAL},
      {"7b-like causal B1 T2048 H28/4 D128", 1, 28, 4, 2048, 128, VT_ATTN_CAUSAL},
  };
  vt_rng rng;
  float *ref = NULL; /* the simple path's output of the current shape */
  printf("fused attention on cuda:0 (backend kernels), median of %d\n", reps);
  for (size_t run = 0; run < 2 * sizeof shapes / sizeof *shapes; run++) {
    const shape *s = &shapes[run / 2];
    bool flash = run % 2 == 1;
    vt_attn_geom g = {.B = s->B,
                      .H = s->H,
                      .Hkv = s->Hkv,
                      .Tq = s->T,
                      .Tk = s->T,
                      .Dk = s->D,
                      .Dv = s->D,
                      .scale = 0.125f,
                      .mask = s->mask,
                      .lowp = flash};
    int64_t nq = s->B * s->H * s->T * s->D, nk = s->B * s->Hkv * s->T * s->D;
    vt_rng_seed(&rng, 42 + run / 2); /* both paths of a shape see the same inputs */
    float *q = upload_random(be, &rng, nq), *k = upload_random(be, &rng, nk);
    float *v = upload_random(be, &rng, nk), *dout = upload_random(be, &rng, nq);
    float *out = vt_buf_alloc(be, sizeof(float) * (size_t)nq);
    float *lse = vt_buf_alloc(be, sizeof(float) * (size_t)(s->B * s->H * s->T));
    float *dq = vt_buf_alloc_zeroed(be, sizeof(float) * (size_t)nq);
    float *dk = vt_buf_alloc_zeroed(be, sizeof(float) * (size_t)nk);
    float *dv = vt_buf_alloc_zeroed(be, sizeof(float) * (size_t)nk);
    void *work = vt_buf_alloc(be, be->attn->workspace(be, &g));
    if (!q || !k || !v || !dout || !out || !lse || !dq || !dk || !dv || !work) {
      fprintf(stderr, "bench_cuda_attn: out of device memory\n");
      return 1;
    }
    double fwd[64], bwd[64];
    int n = reps < 64 ? reps : 64;
    for (int r = -1; r < n; r++) { /* r = -1: warm-up */
      double t0 = now_ms();
      be->attn->forward(be, &g, q, k, v, out, lse, work);
      vt_backend_sync(be);
      double t1 = now_ms();
      be->attn->backward(be, &g, q, k, v, out, dout, lse, dq, dk, dv, NULL, work);
      vt_backend_sync(be);
      double t2 = now_ms();
      if (r >= 0) {
        fwd[r] = t1 - t0;
        bwd[r] = t2 - t1;
      }
    }
    qsort(fwd, (size_t)n, sizeof(double), cmp_double);
    qsort(bwd, (size_t)n, sizeof(double), cmp_double);
    double sq = 2.0 * (double)(s->B * s->H) * (double)s->T * (double)s->T * (double)s->D;
    double frac = s->mask == VT_ATTN_CAUSAL ? 0.5 : 1.0;
    double ff = 2 * sq * frac, bf = 5 * sq * frac;
    double fms = fwd[n / 2], bms = bwd[n / 2];
    float *host = malloc(sizeof(float) * (size_t)nq);
    vt_buf_to_host(be, host, out, sizeof(float) * (size_t)nq);
    double maxdiff = 0;
    if (flash && ref)
      for (int64_t i = 0; i < nq; i++) maxdiff = fmax(maxdiff, fabs((double)host[i] - ref[i]));
    free(ref);
    ref = flash ? NULL : host;
    if (flash) free(host);
    printf("%-6s %-38s fwd %8.2f ms %7.2f TFLOP/s   bwd %8.2f ms %7.2f TFLOP/s",
           flash ? "flash" : "simple", s->what, fms, ff / (fms * 1e-3) * 1e-12, bms,
           bf / (bms * 1e-3) * 1e-12);
    if (flash) printf("   max |out - simple| %.2e", maxdiff);
    printf("\n");
    printf("RESULT bench=cuda_attn kernel=%s shape=\"%s\" fwd_tflops=%.2f bwd_tflops=%.2f "
           "fwd_ms=%.3f bwd_ms=%.3f\n",
           flash ? "flash" : "simple", s->what, ff / (fms * 1e-3) * 1e-12,
           bf / (bms * 1e-3) * 1e-12, fms, bms);
    vt_buf_free(be, q);
    vt_buf_free(be, k);
    vt_buf_free(be, v);
    vt_buf_free(be, dout);
    vt_buf_free(be, out);
    vt_buf_free(be, lse);
    vt_buf_free(be, dq);
    vt_buf_free(be, dk);
    vt_buf_free(be, dv);
    vt_buf_free(be, work);
  }
  vt_backend_free(be);
  return 0;
}
