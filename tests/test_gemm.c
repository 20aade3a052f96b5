// ctest-labels: unit cuda
/* The backend GEMM with bf16 inputs and f32 accumulation, on every backend present (the CPU
 * always, each GPU when there is one): all four transpose combinations, padded leading
 * dimensions, a batch sharing B (stride 0), beta 0 and 1, and k = 0.
 * Two references, both in double:
 *  - the same bf16 values widened: bf16 -> f32 is exact, so the GEMM may differ only by f32
 *    accumulation, at most k * eps32 * sum |a||b| per element;
 *  - the original f32 values (what an f32 GEMM computes): each product then also carries the
 *    two inputs' bf16 rounding, relative 2^-8 each, so the bound is (2 * 2^-8 + k * eps32)
 *    * sum |a||b|. A plain f32 GEMM of the rounded values passing the first check but not
 *    the second would mean the inputs were not read as bf16. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

enum { M = 7, N = 9, K = 37, B = 3, PAD = 3 };

typedef struct {
  bool ta, tb;
  int64_t k;
  int64_t stride_b; /* 0: shared */
  float beta;
} gemm_case;

/* Element (r, p) of op(x) for a stored matrix with leading dimension ld. */
static double at(const float *x, bool t, int64_t ld, int64_t r, int64_t p) {
  return t ? x[p * ld + r] : x[r * ld + p];
}

static void run_backend(const vt_backend *be, const char *label) {
  const gemm_case cases[] = {
      {false, false, K, 1, 0.0f}, {false, true, K, 1, 1.0f}, {true, false, K, 1, 0.0f},
      {true, true, K, 1, 1.0f},   {false, true, K, 0, 1.0f}, {true, false, 0, 1, 1.0f},
  };
  vt_rng rng;
  vt_rng_seed(&rng, 17);
  for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
    const gemm_case *g = &cases[ci];
    int64_t k = g->k;
    /* stored shapes: A is m x k (k x m when ta), B is k x n (n x k when tb), both padded */
    int64_t ar = g->ta ? K : M, ac = (g->ta ? M : K), br = g->tb ? N : K, bc = (g->tb ? K : N);
    int64_t lda = ac + PAD, ldb = bc + PAD, ldc = N + PAD;
    int64_t sa = ar * lda, sb = g->stride_b ? br * ldb : 0, sc = M * ldc;
    size_t na = (size_t)(sa * B), nb = (size_t)(br * ldb * (g->stride_b ? B : 1)),
           nc = (size_t)(sc * B);
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    float *ar16 = malloc(sizeof(float) * na), *br16 = malloc(sizeof(float) * nb);
    uint16_t *a16 = malloc(2 * na), *b16 = malloc(2 * nb);
    float *c0 = malloc(sizeof(float) * nc), *c = malloc(sizeof(float) * nc);
    vt_test_fill_uniform(&rng, a, (long)na, -2.0f, 2.0f);
    vt_test_fill_uniform(&rng, b, (long)nb, -2.0f, 2.0f);
    vt_test_fill_uniform(&rng, c0, (long)nc, -1.0f, 1.0f);
    for (size_t i = 0; i < na; i++) ar16[i] = vt_bf16_to_f32(a16[i] = vt_f32_to_bf16(a[i]));
    for (size_t i = 0; i < nb; i++) br16[i] = vt_bf16_to_f32(b16[i] = vt_f32_to_bf16(b[i]));

    uint16_t *da = vt_buf_alloc(be, 2 * na), *db = vt_buf_alloc(be, 2 * nb);
    float *dc = vt_buf_alloc(be, sizeof(float) * nc);
    vt_buf_from_host(be, da, a16, 2 * na);
    vt_buf_from_host(be, db, b16, 2 * nb);
    vt_buf_from_host(be, dc, c0, sizeof(float) * nc);
    /* k = 0 still has an m x n x ... call shape: op(A) op(B) is zero, C = beta C */
    be->gemm(be, VT_BF16, g->ta, g->tb, M, N, k, 0.5f, da, lda, sa, db, ldb, sb, g->beta, dc, ldc,
             sc, B);
    vt_buf_to_host(be, c, dc, sizeof(float) * nc);
    int bad16 = 0, bad32 = 0, padding = 0;
    double worst16 = 0, worst32 = 0;
    for (int64_t i = 0; i < B; i++)
      for (int64_t r = 0; r < M; r++) {
        for (int64_t j = N; j < ldc; j++)
          padding += c[i * sc + r * ldc + j] != c0[i * sc + r * ldc + j];
        for (int64_t j = 0; j < N; j++) {
          double s16 = 0, s32 = 0, mag = 0;
          const float *pa16 = ar16 + i * sa, *pa = a + i * sa;
          const float *pb16 = br16 + i * sb, *pb = b + i * sb;
          for (int64_t p = 0; p < k; p++) {
            double x16 = at(pa16, g->ta, lda, r, p), y16 = at(pb16, !g->tb, ldb, j, p);
            s16 += x16 * y16;
            s32 += at(pa, g->ta, lda, r, p) * at(pb, !g->tb, ldb, j, p);
            mag += fabs(x16 * y16);
          }
          double cin = c0[i * sc + r * ldc + j];
          double w16 = 0.5 * s16 + g->beta * cin, w32 = 0.5 * s32 + g->beta * cin;
          double got = c[i * sc + r * ldc + j];
          double acc = ((double)k + 2) * FLT_EPSILON * (0.5 * mag + fabs(cin));
          double tol16 = acc, tol32 = acc + 2.0 * 0x1p-8 * 0.5 * mag * 1.01;
          worst16 = fmax(worst16, fabs(got - w16) / (tol16 > 0 ? tol16 : 1));
          worst32 = fmax(worst32, fabs(got - w32) / (tol32 > 0 ? tol32 : 1));
          bad16 += !(fabs(got - w16) <= tol16);
          bad32 += !(fabs(got - w32) <= tol32);
        }
      }
    CHECK_MSG(bad16 == 0, "%s case %zu: %d elements off the bf16-exact reference (worst %.2f tol)",
              label, ci, bad16, worst16);
    CHECK_MSG(bad32 == 0, "%s case %zu: %d elements off the f32 reference (worst %.2f tol)", label,
              ci, bad32, worst32);
    CHECK_MSG(padding == 0, "%s case %zu: %d padding elements of C written", label, ci, padding);
    vt_buf_free(be, da);
    vt_buf_free(be, db);
    vt_buf_free(be, dc);
    free(a);
    free(b);
    free(ar16);
    free(br16);
    free(a16);
    free(b16);
    free(c0);
    free(c);
  }
  /* bf16 inputs against the f32 GEMM of the same widened values on the same backend */
  enum { MM = 33, NN = 17, KK = 64 };
  float x[MM * KK], y[KK * NN], xw[MM * KK], yw[KK * NN], c32[MM * NN], c16[MM * NN];
  uint16_t x16[MM * KK], y16[KK * NN];
  vt_test_fill_uniform(&rng, x, MM * KK, -1, 1);
  vt_test_fill_uniform(&rng, y, KK * NN, -1, 1);
  for (int i = 0; i < MM * KK; i++) xw[i] = vt_bf16_to_f32(x16[i] = vt_f32_to_bf16(x[i]));
  for (int i = 0; i < KK * NN; i++) yw[i] = vt_bf16_to_f32(y16[i] = vt_f32_to_bf16(y[i]));
  float *dx = vt_buf_alloc(be, sizeof xw), *dy = vt_buf_alloc(be, sizeof yw);
  float *dc = vt_buf_alloc(be, sizeof c32);
  vt_buf_from_host(be, dx, xw, sizeof xw);
  vt_buf_from_host(be, dy, yw, sizeof yw);
  be->gemm(be, VT_F32, false, false, MM, NN, KK, 1.0f, dx, KK, 0, dy, NN, 0, 0.0f, dc, NN, 0, 1);
  vt_buf_to_host(be, c32, dc, sizeof c32);
  vt_buf_from_host(be, dx, x16, sizeof x16);
  vt_buf_from_host(be, dy, y16, sizeof y16);
  be->gemm(be, VT_BF16, false, false, MM, NN, KK, 1.0f, dx, KK, 0, dy, NN, 0, 0.0f, dc, NN, 0, 1);
  vt_buf_to_host(be, c16, dc, sizeof c16);
  CHECK_CLOSE(label, c16, c32, MM * NN, KK * FLT_EPSILON * 2, KK * FLT_EPSILON);
  vt_buf_free(be, dx);
  vt_buf_free(be, dy);
  vt_buf_free(be, dc);
}

int main(void) {
  run_backend(vt_backend_cpu(), "cpu");
  int n = vt_cuda_device_count();
  for (int d = 0; d < n; d++) {
    const char *why = NULL;
    vt_backend *be = vt_backend_cuda(d, &why);
    CHECK_MSG(be != NULL, "cuda:%d: %s", d, why);
    if (!be) continue;
    char label[32];
    snprintf(label, sizeof label, "cuda:%d", d);
    run_backend(be, label);
    vt_backend_free(be);
  }
  if (n == 0) printf("no GPU: the CUDA GEMM was not run\n");
  return vt_test_finish("test_gemm");
}
