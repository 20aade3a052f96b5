// ctest-labels: unit
/* The vectorisable e^x and sigmoid of autograd/cpu/cpu_vexp.h against libm's expf and
 * cpu_math.h's vt_sigmoidf, in ulps, over a sweep of the float range and densely at the
 * overflow (x > 88.72) and underflow (subnormal results, x < -87.3) edges; special values
 * exactly. The arrays go through a VT_SIMD_HOT loop, i.e. the clone this CPU runs. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/cpu/cpu_math.h"
#include "autograd/cpu/cpu_vexp.h"
#include "tests/check.h"

/* Distance in representable floats (0 for equal values, +-0 equal, infinities count). */
static int64_t ulps(float a, float b) {
  int32_t ia, ib;
  memcpy(&ia, &a, sizeof ia);
  memcpy(&ib, &b, sizeof ib);
  int64_t oa = ia < 0 ? (int64_t)INT32_MIN - ia : ia, ob = ib < 0 ? (int64_t)INT32_MIN - ib : ib;
  return oa > ob ? oa - ob : ob - oa;
}

VT_SIMD_HOT void vexp_array(int64_t n, const float *x, float *y) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = vt_vexpf(x[i]);
}

VT_SIMD_HOT void vsigmoid_array(int64_t n, const float *x, float *y) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = vt_vsigmoidf(x[i]);
}

/* Every `stride`-th float from lo up to hi (lo < hi, same sign handled by bit order). */
static int64_t fill_range(float lo, float hi, int64_t stride, float *x, int64_t cap) {
  int64_t n = 0;
  for (float v = lo; v <= hi && n < cap;) {
    x[n++] = v;
    for (int64_t k = 0; k < stride; k++) v = nextafterf(v, INFINITY);
  }
  return n;
}

/* Max ulp error of vt_vexpf over x[0..n) against expf; the worst input in *worst. */
static int64_t max_exp_ulps(const float *x, int64_t n, float *y, float *worst) {
  vexp_array(n, x, y);
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) {
    int64_t u = ulps(y[i], expf(x[i]));
    if (u > m) m = u, *worst = x[i];
  }
  return m;
}

static void test_exp(void) {
  enum { CAP = 1 << 22 };
  float *x = malloc(sizeof(float) * CAP), *y = malloc(sizeof(float) * CAP), worst = 0;
  /* points: evenly spaced (step > 0) or every `stride`-th float (step 0) */
  struct {
    const char *what;
    float lo, hi;
    double step;
    int64_t stride;
  } ranges[] = {
      {"[-110, 100]", -110.0f, 100.0f, 210.0 / (CAP - 1), 0},
      {"near 0 [-1e-3, 1e-3]", -1e-3f, 1e-3f, 2e-3 / (CAP - 1), 0},
      {"underflow edge [-104.5, -86]", -104.5f, -86.0f, 0, 7},
      {"overflow edge [88, 89]", 88.0f, 89.0f, 0, 1},
  };
  for (size_t r = 0; r < sizeof ranges / sizeof ranges[0]; r++) {
    int64_t n = 0;
    if (ranges[r].step > 0)
      for (double v = ranges[r].lo; v <= ranges[r].hi && n < CAP; v += ranges[r].step)
        x[n++] = (float)v;
    else
      n = fill_range(ranges[r].lo, ranges[r].hi, ranges[r].stride, x, CAP);
    int64_t m = max_exp_ulps(x, n, y, &worst);
    CHECK_MSG(m <= 2, "vexp %s: %lld ulps at x = %.9g (%lld points)", ranges[r].what, (long long)m,
              worst, (long long)n);
  }
  /* special values, exactly */
  float sx[] = {0.0f,  -0.0f,   -INFINITY, INFINITY, NAN, -1e30f,
                1e30f, -104.0f, 88.73f,    88.72f,   1.0f};
  float sy[sizeof sx / sizeof sx[0]];
  int64_t ns = (int64_t)(sizeof sx / sizeof sx[0]);
  vexp_array(ns, sx, sy);
  for (int64_t i = 0; i < ns; i++) {
    float want = expf(sx[i]);
    bool ok = isnan(want)                                ? isnan(sy[i])
              : (isinf(want) || want == 0 || sx[i] == 0) ? sy[i] == want
                                                         : ulps(sy[i], want) <= 2;
    CHECK_MSG(ok, "vexp(%g) = %.9g, expf %.9g", sx[i], sy[i], want);
  }
  free(x);
  free(y);
}

/* vt_vsigmoidf against vt_sigmoidf: the same formula with at most 2 ulps in e, through one
 * add and one divide, so a few ulps. */
static void test_sigmoid(void) {
  enum { N = 200001 };
  float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) x[i] = -110.0f + 220.0f * (float)i / (N - 1);
  vsigmoid_array(N, x, y);
  int64_t m = 0;
  float worst = 0;
  for (int i = 0; i < N; i++) {
    int64_t u = ulps(y[i], vt_sigmoidf(x[i]));
    if (u > m) m = u, worst = x[i];
  }
  CHECK_MSG(m <= 4, "vsigmoid: %lld ulps at x = %.9g", (long long)m, worst);
  float sx[3] = {-INFINITY, INFINITY, NAN}, sy[3];
  vsigmoid_array(3, sx, sy);
  CHECK(sy[0] == 0.0f && sy[1] == 1.0f && isnan(sy[2]));
  free(x);
  free(y);
}

int main(void) {
  test_exp();
  test_sigmoid();
  return vt_test_finish("test_vexp");
}
