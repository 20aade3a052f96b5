/* 16-byte (float4) access for the CUDA elementwise loops: a segment goes 4 floats at a time
 * when every pointer it touches is 16-byte aligned (and its rows are whole groups of 4), the
 * tail one float at a time. Each element's math is the scalar loop's, so are the bits. Its own
 * header, so the host emulation of the kernels (tests/flash_sim.h defines float4) has it too. */
#ifndef VT_CUDA_VEC_CUH
#define VT_CUDA_VEC_CUH

#include <stdint.h>

/* NULL counts as aligned (an absent operand). */
static inline bool vt_cuda_al16(const void *p) { return ((uintptr_t)p & 15) == 0; }

union vt_f4 {
  float4 v;
  float f[4];
};

static __device__ __forceinline__ vt_f4 vt_ld4(const float *p) {
  vt_f4 u;
  u.v = *reinterpret_cast<const float4 *>(p);
  return u;
}

static __device__ __forceinline__ void vt_st4(float *p, vt_f4 u) {
  *reinterpret_cast<float4 *>(p) = u.v;
}

/* Calls f(j, w) over [0, n) for worker `lane` of `width`: groups of w = 4 at j = 4 lane,
 * 4 (lane + width), ... below n rounded down to 4 (when vec), then w = 1 for the rest. */
template <class F>
static __device__ __forceinline__ void vt_for_vec(int64_t n, bool vec, int64_t lane, int64_t width,
                                                  F f) {
  int64_t head = vec ? n / 4 * 4 : 0;
  for (int64_t j = 4 * lane; j < head; j += 4 * width) f(j, 4);
  for (int64_t j = head + lane; j < n; j += width) f(j, 1);
}

#endif
