/* Element types of tensors and the bf16/f16 <-> f32 conversions (round to nearest even).
 * The conversions are static inline so CPU and CUDA kernels share one definition. */
#ifndef VT_DTYPE_H
#define VT_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__CUDACC__)
#define VT_HD __host__ __device__
#else
#define VT_HD
#endif

/* Shared element math called from the CPU's vectorised loops (functions built with other
 * optimisation options, cpu_vexp.h's VT_SIMD_HOT): GCC inlines a plain static inline into
 * those only when forced, and the loop vectorises only when it is inlined. */
#if defined(__GNUC__) && !defined(__CUDACC__)
#define VT_HD_INLINE __attribute__((always_inline)) static inline
#else
#define VT_HD_INLINE static inline VT_HD
#endif

typedef enum { VT_F32 = 0, VT_BF16, VT_F16, VT_I32, VT_I64, VT_DTYPE_COUNT } vt_dtype;

size_t vt_dtype_size(vt_dtype t);
const char *vt_dtype_name(vt_dtype t); /* "f32", "bf16", ... */
/* Parses a name as vt_dtype_name prints it; returns -1 when unknown. */
int vt_dtype_from_name(const char *name);

static inline VT_HD uint32_t vt_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static inline VT_HD float vt_bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

static inline VT_HD uint16_t vt_f32_to_bf16(float f) {
  uint32_t u = vt_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  uint32_t lsb = (u >> 16) & 1u;
  u += 0x7fffu + lsb; /* round to nearest, ties to even; overflow correctly yields Inf */
  return (uint16_t)(u >> 16);
}

static inline VT_HD float vt_bf16_to_f32(uint16_t h) { return vt_bits_f32((uint32_t)h << 16); }

static inline VT_HD uint16_t vt_f32_to_f16(float f) {
  uint32_t u = vt_f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((abs >> 13) & 0x3ffu)); /* NaN */
  if (abs >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to >= 65520: Inf */
  if (abs < 0x38800000u) {
    /* result is subnormal (or zero): value = m * 2^-24, round the shifted mantissa */
    if (abs < 0x33000000u) return (uint16_t)sign; /* below half the smallest subnormal */
    uint32_t e = abs >> 23;
    uint32_t m = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((abs - 0x38000000u) >> 13); /* rebias exponent 127 -> 15 */
  uint32_t rem = abs & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u))) r++;
  return (uint16_t)(sign | r);
}

static inline VT_HD float vt_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu;
  uint32_t m = h & 0x3ffu;
  if (e == 0x1f) return vt_bits_f32(sign | 0x7f800000u | (m << 13));
  if (e == 0) {
    if (m == 0) return vt_bits_f32(sign);
    /* subnormal: m * 2^-24, exact in f32 */
    float v = (float)m * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return vt_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

#endif
