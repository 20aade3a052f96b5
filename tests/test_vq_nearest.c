// ctest-labels: unit
/* The nearest-code search under vt_vq_ste (autograd/cpu/cpu_norm.c: 16 rows per AVX-512
 * vector where the CPU has it, one at a time otherwise) against a plain loop with the same
 * float sums: the same codes, first index on ties, and the codebook rows as the output, for
 * row counts around the vector width, odd dims, one code and the codec's 1024 x 64, on 1 and 2
 * threads. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ops_norm.h"
#include "tests/testutil.h"

static int32_t nearest(const float *x, const float *cb, int64_t k, int64_t d) {
  float best = INFINITY;
  int32_t bi = 0;
  for (int64_t c = 0; c < k; c++) {
    float dist = 0;
    for (int64_t j = 0; j < d; j++) {
      float df = x[j] - cb[c * d + j];
      dist += df * df;
    }
    if (dist < best) best = dist, bi = (int32_t)c;
  }
  return bi;
}

static void check(int64_t n, int64_t k, int64_t d, int threads) {
  float *x = malloc(sizeof(float) * (size_t)(n * d)), *cb = malloc(sizeof(float) * (size_t)(k * d)),
        *zq = malloc(sizeof(float) * (size_t)(n * d));
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)n);
  vt_rng r;
  vt_rng_seed(&r, (uint64_t)(n * 1000003 + k * 101 + d));
  vt_test_fill_uniform(&r, x, (long)(n * d), -1, 1);
  vt_test_fill_uniform(&r, cb, (long)(k * d), -1, 1);
  if (k > 3) memcpy(cb + 3 * d, cb + 1 * d, sizeof(float) * (size_t)d); /* a tie: 1 wins */
  for (int64_t i = 0; i < n; i += 5) /* rows on a code, some on the tied one */
    memcpy(x + i * d, cb + (i % k) * d, sizeof(float) * (size_t)d);
  omp_set_num_threads(threads);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *ti;
  vt_tensor *out = vt_vq_ste(ctx, vt_from_host(ctx, VT_F32, 2, (int64_t[]){n, d}, x),
                             vt_from_host(ctx, VT_F32, 2, (int64_t[]){k, d}, cb), &ti);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  if (!vt_ctx_failed(ctx)) {
    vt_to_host(ctx, ti, idx);
    vt_to_host(ctx, out, zq);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
      int32_t want = nearest(x + i * d, cb, k, d);
      if (idx[i] != want || memcmp(zq + i * d, cb + (int64_t)want * d, sizeof(float) * (size_t)d))
        bad++;
      if (k > 3 && i % 5 == 0 && i % k == 3) CHECK_MSG(idx[i] == 1, "tie: code %d", idx[i]);
    }
    CHECK_MSG(bad == 0, "n %lld k %lld d %lld, %d threads: %d rows differ from the loop",
              (long long)n, (long long)k, (long long)d, threads, bad);
  }
  vt_ctx_free(ctx);
  free(x);
  free(cb);
  free(zq);
  free(idx);
}

int main(void) {
  const int64_t sizes[][3] = {{1, 1, 1},    {15, 7, 3},      {16, 5, 8},    {17, 9, 5},
                              {33, 64, 13}, {100, 1024, 64}, {40, 300, 130}};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
    for (int th = 1; th <= 2; th++) check(sizes[s][0], sizes[s][1], sizes[s][2], th);
  return vt_test_finish("test_vq_nearest");
}
