/* GELU (erf form) and its derivative in plain arithmetic for the CPU kernels' `omp simd` loops
 * (libm's erff and expf are a call per element and do not vectorise); cpu_math.h's scalar
 * vt_unary_f / vt_unary_df remain the reference semantics (tests/test_vgelu.c compares them).
 *
 * GELU(x) = x Phi(x) with Phi(x) = (1 + erf(z)) / 2 = 1 - erfc(z) / 2 for x >= 0 (z = |x| /
 * sqrt 2) and erfc(z) / 2 for x < 0, so the left tail keeps relative accuracy (1 + erff(x)
 * cancels there). erf(z) = z P(z^2) for z < 1 and erfc(z) = e^(-z^2) Q(1 / z) for z >= 1 (z
 * clamped at 10, where e^(-z^2) is 0 in f32); P and Q are least-squares fits to double erf /
 * erfc made for this file (numpy, Chebyshev nodes on [0, 1] and 1 / z in [0.1, 1]): relative
 * errors 2.6e-7 and 4.5e-7. The derivative Phi(x) + x e^(-z^2) / sqrt(2 pi) reuses the same
 * e^(-z^2), one vt_vexpf per element. */
#ifndef VT_CPU_VGELU_H
#define VT_CPU_VGELU_H

#include "autograd/cpu/cpu_vexp.h"

/* Phi(x) into *phi and e^(-x^2 / 2) into *ez. */
VT_SIMD_INLINE void vt_vgelu_parts(float x, float *phi, float *ez) {
  float z = (x >= 0 ? x : -x) * 0.70710678118654752f, z2 = z * z;
  float e = vt_vexpf(-z2);
  float p = 8.006996359e-05f; /* erf(z) / z in z^2 */
  p = p * z2 - 8.053783095e-04f;
  p = p * z2 + 5.192961078e-03f;
  p = p * z2 - 2.685607038e-02f;
  p = p * z2 + 1.128363460e-01f;
  p = p * z2 - 3.761262894e-01f;
  p = p * z2 + 1.128379226e+00f;
  float erf_z = z * p;
  float s = 1.0f / (z < 10.0f ? (z > 1.0f ? z : 1.0f) : 10.0f);
  float q = -5.271017179e-02f; /* erfc(z) e^(z^2) in 1 / z */
  q = q * s + 3.521120846e-01f;
  q = q * s - 1.042928219e+00f;
  q = q * s + 1.781371474e+00f;
  q = q * s - 1.876052737e+00f;
  q = q * s + 1.131160259e+00f;
  q = q * s - 1.723277271e-01f;
  q = q * s - 2.546222210e-01f;
  q = q * s - 2.763076453e-03f;
  q = q * s + 5.643478036e-01f;
  q = q * s - 3.909570296e-06f;
  float half_erfc = 0.5f * e * q;
  float tail = z < 1.0f ? 0.5f - 0.5f * erf_z : half_erfc; /* Phi(-|x|) */
  *phi = x >= 0 ? 1.0f - tail : tail;
  *ez = e;
}

VT_SIMD_INLINE float vt_vgelu_erf(float x) {
  float phi, ez;
  vt_vgelu_parts(x, &phi, &ez);
  return x * phi;
}

VT_SIMD_INLINE float vt_vgelu_erf_grad(float x) {
  float phi, ez;
  vt_vgelu_parts(x, &phi, &ez);
  return phi + x * ez * 0.3989422804014327f;
}

#endif
