/* e^x and the sigmoid in plain arithmetic for the CPU kernels' `omp simd` loops (libm's expf is
 * a call per element and does not vectorise), and the attributes that compile the hot loops for
 * AVX-512, AVX2 and the baseline. Used by cpu_attn.c, cpu_backend.c (activations),
 * cpu_loss.c (cross-entropy) and cpu_optim.c; cpu_math.h's scalar functions remain the
 * reference semantics. */
#ifndef VT_CPU_VEXP_H
#define VT_CPU_VEXP_H

#include <stdint.h>
#include <string.h>

/* With GCC on x86-64 a VT_SIMD_CLONES function is built for AVX-512, AVX2 and the baseline and
 * the best one for the CPU is chosen at load time. VT_SIMD_HOT adds no trapping math, which
 * lets the clamps and selects of the functions below become blends so their loops vectorise;
 * it also keeps functions without that option (e.g. kernels_optim.h's) from being inlined, so
 * loops over those use VT_SIMD_CLONES. Elsewhere these are plain static functions. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define VT_SIMD_INLINE __attribute__((always_inline, optimize("no-trapping-math"))) static inline
#define VT_SIMD_CLONES                                                                             \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static
#define VT_SIMD_HOT                                                                                \
  __attribute__((optimize("no-trapping-math"),                                                     \
                 target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) static
#else
#define VT_SIMD_INLINE static inline
#define VT_SIMD_CLONES static
#define VT_SIMD_HOT static
#endif

/* e^x over the whole float range, within 2 ulps of expf (tests/test_vexp.c): Cody-Waite
 * reduction x = n ln2 + r with |r| <= ln2 / 2 and Cephes' degree-6 polynomial for e^r, then
 * 2^n applied as two factors 2^(n/2) 2^(n - n/2) so that subnormal results (x down to -103.9)
 * round once and x > 88.72 overflows to +inf as expf does. x < -104 gives 0, -inf 0, +inf
 * +inf, NaN NaN. */
VT_SIMD_INLINE float vt_vexpf(float x) {
  /* n stays in [-150, 128]; NaN becomes -104 here (its int conversion would be undefined) and
   * is restored at the end */
  float xc = x > -104.0f ? x : -104.0f;
  xc = xc < 88.8f ? xc : 88.8f;
  float n = (xc * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to nearest: 1.5 * 2^23 */
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;     /* ln2 in two parts */
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t ni = (int32_t)n, n1 = ni / 2, b1 = (n1 + 127) << 23, b2 = (ni - n1 + 127) << 23;
  float s1, s2;
  memcpy(&s1, &b1, sizeof s1);
  memcpy(&s2, &b2, sizeof s2);
  float y = p * s1 * s2;
  return x != x ? x : y;
}

/* cpu_math.h's vt_sigmoidf with vt_vexpf: e = e^-|x| never overflows, and the x < 0 branch
 * e / (1 + e) keeps relative accuracy where the sigmoid is tiny. */
VT_SIMD_INLINE float vt_vsigmoidf(float x) {
  float e = vt_vexpf(x >= 0 ? -x : x);
  return (x >= 0 ? 1.0f : e) / (1.0f + e);
}

#endif
