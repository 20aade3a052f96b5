/* Pointwise math shared by the CPU and CUDA kernels: activations and their derivatives.
 * static inline, usable from C and from CUDA device code. */
#ifndef VT_CPU_MATH_H
#define VT_CPU_MATH_H

#include <math.h>

#include "autograd/backend.h"

#define VT_SQRT_2_OVER_PI 0.7978845608028654f
#define VT_INV_SQRT_2 0.7071067811865476f
#define VT_INV_SQRT_2PI 0.3989422804014327f

static inline VT_HD float vt_sigmoidf(float x) {
  return x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x));
}

static inline VT_HD float vt_unary_f(vt_unary_op op, float alpha, float x) {
  switch (op) {
  case VT_UN_SCALE: return alpha * x;
  case VT_UN_GELU_TANH: {
    float u = VT_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
    return 0.5f * x * (1.0f + tanhf(u));
  }
  case VT_UN_GELU_ERF: return 0.5f * x * (1.0f + erff(x * VT_INV_SQRT_2));
  case VT_UN_SILU: return x * vt_sigmoidf(x);
  case VT_UN_RELU: return x > 0 ? x : 0.0f;
  case VT_UN_LEAKY_RELU: return x > 0 ? x : alpha * x;
  case VT_UN_TANH: return tanhf(x);
  case VT_UN_SIGMOID: return vt_sigmoidf(x);
  default: return NAN;
  }
}

/* d f(x) / dx; y = f(x) is passed for ops whose derivative is cheaper from it. */
static inline VT_HD float vt_unary_df(vt_unary_op op, float alpha, float x, float y) {
  switch (op) {
  case VT_UN_SCALE: return alpha;
  case VT_UN_GELU_TANH: {
    float u = VT_SQRT_2_OVER_PI * (x + 0.044715f * x * x * x);
    float t = tanhf(u);
    float du = VT_SQRT_2_OVER_PI * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du;
  }
  case VT_UN_GELU_ERF:
    return 0.5f * (1.0f + erff(x * VT_INV_SQRT_2)) + x * VT_INV_SQRT_2PI * expf(-0.5f * x * x);
  case VT_UN_SILU: {
    float s = vt_sigmoidf(x);
    return s * (1.0f + x * (1.0f - s));
  }
  case VT_UN_RELU: return x > 0 ? 1.0f : 0.0f;
  case VT_UN_LEAKY_RELU: return x > 0 ? 1.0f : alpha;
  case VT_UN_TANH: return 1.0f - y * y;
  case VT_UN_SIGMOID: return y * (1.0f - y);
  default: return NAN;
  }
}

static inline VT_HD float vt_binary_f(vt_binary_op op, float a, float b) {
  switch (op) {
  case VT_BIN_ADD: return a + b;
  case VT_BIN_SUB: return a - b;
  case VT_BIN_MUL: return a * b;
  default: return a / b;
  }
}

/* d out / d a (which == 0) or d out / d b (which == 1), times dout. */
static inline VT_HD float vt_binary_grad(vt_binary_op op, int which, float a, float b, float dout) {
  switch (op) {
  case VT_BIN_ADD: return dout;
  case VT_BIN_SUB: return which ? -dout : dout;
  case VT_BIN_MUL: return which ? dout * a : dout * b;
  default: return which ? -dout * a / (b * b) : dout / b;
  }
}

/* SwiGLU's element, silu(g) u, with s = sigmoid(g) from the caller (the CPU's vectorised
 * sigmoid, the GPU's vt_sigmoidf): SiLU as vt_unary_f forms it, then the product, so the
 * fused op gives the composition's bits for the same sigmoid. */
VT_HD_INLINE float vt_swiglu_f(float g, float u, float s) { return (g * s) * u; }

/* Its gradient as the composition forms it: d gate = (dy u) silu'(g), d up = dy silu(g). */
VT_HD_INLINE float vt_swiglu_dgate(float g, float u, float s, float dy) {
  return (dy * u) * (s * (1.0f + g * (1.0f - s)));
}
VT_HD_INLINE float vt_swiglu_dup(float g, float s, float dy) { return dy * (g * s); }

#endif
