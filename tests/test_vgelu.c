// ctest-labels: unit
/* The vectorisable GELU (erf form) of autograd/cpu/cpu_vgelu.h and its derivative against
 * double-precision references (erf, exp) over [-12, 12] densely and at special values, next to
 * cpu_math.h's scalar erff form for scale. The arrays go through a VT_SIMD_HOT loop, i.e. the
 * clone this CPU runs. Bound: the error relative to max(|ref|, 1e-30) plus an absolute 2^-24
 * times |x| (the rounding of x Phi(x) near Phi = 1). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "autograd/cpu/cpu_math.h"
#include "autograd/cpu/cpu_vgelu.h"
#include "tests/check.h"

VT_SIMD_HOT void gelu_array(int64_t n, const float *x, float *y, float *d) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    y[i] = vt_vgelu_erf(x[i]);
    d[i] = vt_vgelu_erf_grad(x[i]);
  }
}

static double ref_f(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }
static double ref_df(double x) {
  return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) * 0.3989422804014327;
}

/* The error of got against want in units of (relative 1e-6 + 2^-24 |x| absolute). */
static double err_units(float got, double want, double x) {
  return fabs((double)got - want) / (1e-6 * fabs(want) + 0x1p-24 * fabs(x) + 1e-38);
}

int main(void) {
  enum { N = 2400001 };
  float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N),
        *d = malloc(sizeof(float) * N);
  for (int64_t i = 0; i < N; i++) x[i] = (float)(-12.0 + 24.0 * (double)i / (N - 1));
  gelu_array(N, x, y, d);
  double wf = 0, wd = 0, sf = 0, sd = 0;
  float at_f = 0, at_d = 0;
  for (int64_t i = 0; i < N; i++) {
    double e = err_units(y[i], ref_f(x[i]), x[i]), g = err_units(d[i], ref_df(x[i]), x[i]);
    if (e > wf) wf = e, at_f = x[i];
    if (g > wd) wd = g, at_d = x[i];
    /* the scalar erff form, for comparison only */
    sf = fmax(sf, err_units(vt_unary_f(VT_UN_GELU_ERF, 0, x[i]), ref_f(x[i]), x[i]));
    sd = fmax(sd, err_units(vt_unary_df(VT_UN_GELU_ERF, 0, x[i], 0), ref_df(x[i]), x[i]));
  }
  printf("vgelu: worst %.3g units at %g (derivative %.3g at %g); scalar erff form: %.3g, %.3g "
         "(unit: 1e-6 relative + 2^-24 |x|)\n",
         wf, (double)at_f, wd, (double)at_d, sf, sd);
  CHECK_MSG(wf <= 2.0, "GELU: %.3g units at %g", wf, (double)at_f);
  CHECK_MSG(wd <= 2.0, "GELU': %.3g units at %g", wd, (double)at_d);
  /* special values: 0, the infinities, NaN */
  float sp[4] = {0.0f, INFINITY, -INFINITY, NAN}, sy[4], sdv[4];
  gelu_array(4, sp, sy, sdv);
  CHECK(sy[0] == 0.0f && sdv[0] == 0.5f);
  CHECK(sy[1] == INFINITY && isnan(sy[3]) && isnan(sdv[3]));
  CHECK_MSG(sy[2] == 0.0f || isnan(sy[2]), "GELU(-inf) = %g", (double)sy[2]);
  free(x), free(y), free(d);
  return vt_test_finish("test_vgelu");
}
