/* float4 row kernels of ops whose rows are contiguous runs, each element computed as before:
 *   binary_rows   a broadcasting binary op whose last dim is contiguous or broadcast in each
 *                 operand (a bias or a per-channel scale over rows, a [N, 1] column): the
 *                 row's offsets decoded once per 4 outputs, a broadcast value read once;
 *   gather_rows   index_select (embedding rows, a row gather): 4 floats of a row per thread;
 *   rope_rows     the plain RoPE (and its inverse, the backward): 4 pairs per thread, the
 *                 angles formed as the CPU forms them, the rotation vt_rope_pair.
 * Each takes float4 loads when the row length is a multiple of 4 and every row starts 16-byte
 * aligned; otherwise (and under VT_CUDA_SIMPLE) the callers' scalar kernels serve.
 * tests/test_cuda_sim.cpp compiles the kernels for the host (VT_CUDA_SIM) and checks them bit
 * for bit against the CPU backend; the launchers at the end are CUDA only. */
#ifdef VT_CUDA_SIM
#include "tests/flash_sim.h"
// flash_sim.h first: it defines float4
#include "autograd/cuda/cuda_vec.cuh"
extern "C" {
#include "autograd/cpu/cpu_math.h"
#include "autograd/kernels_norm.h"
}
#else
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_norm.h"
}
#endif

#define ROWS_LOOP(i, n)                                                                            \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
       i += (int64_t)blockDim.x * gridDim.x)

/* Four consecutive values of a row: loaded (step 1) or one value repeated (step 0). */
static __device__ __forceinline__ vt_f4 rows_ld(const float *p, int64_t step) {
  if (step) return vt_ld4(p);
  vt_f4 u;
  u.f[0] = u.f[1] = u.f[2] = u.f[3] = p[0];
  return u;
}

/* out[r, j..j+3] = a op b, r over the leading dims of bc (offsets from sa / sb), the last dim
 * read with stride la / lb (1 or 0). */
__global__ void binary_rows_kernel(vt_binary_op op, vt_bcast bc, int64_t rows, int64_t cols,
                                   const float *a, const float *b, float *out) {
  int64_t groups = cols / 4, la = bc.sa[bc.ndim - 1], lb = bc.sb[bc.ndim - 1];
  ROWS_LOOP(i, rows * groups) {
    int64_t r = i / groups, j = i % groups * 4, oa = 0, ob = 0, t = r;
    for (int d = bc.ndim - 2; d >= 0; d--) {
      int64_t c = t % bc.shape[d];
      t /= bc.shape[d];
      oa += c * bc.sa[d];
      ob += c * bc.sb[d];
    }
    vt_f4 x = rows_ld(a + oa + j * la, la), y = rows_ld(b + ob + j * lb, lb), o;
    for (int e = 0; e < 4; e++) o.f[e] = vt_binary_f(op, x.f[e], y.f[e]);
    vt_st4(out + r * cols + j, o);
  }
}

/* dst[o, k, j..j+3] = src[o, idx[k], j..j+3]. */
__global__ void gather_rows_kernel(int64_t outer, int64_t n_src, int64_t inner, const float *src,
                                   const int32_t *idx, int64_t n_idx, float *dst) {
  int64_t groups = inner / 4;
  ROWS_LOOP(i, outer * n_idx * groups) {
    int64_t j = i % groups * 4, t = i / groups, k = t % n_idx, o = t / n_idx;
    vt_st4(dst + t * inner + j, vt_ld4(src + (o * n_src + idx[k]) * inner + j));
  }
}

/* Pairs k..k+3 of row r of [b, ho, t, hi, d] (d / 2 a multiple of 4). */
__global__ void rope_rows_kernel(int64_t b, int64_t ho, int64_t t, int64_t hi, int64_t d,
                                 float theta, const int32_t *pos, int64_t pos_bstride,
                                 const float *x, float *y, bool inverse) {
  int64_t half = d / 2, groups = half / 4;
  ROWS_LOOP(q, b * ho * t * hi * groups) {
    int64_t k = q % groups * 4, r = q / groups; /* r indexes (b, h0, t, h1) */
    int64_t ti = r / hi % t, bi = r / (hi * t * ho);
    float p = (float)pos[bi * pos_bstride + ti];
    const float *px = x + r * d;
    float *py = y + r * d;
    vt_f4 x1 = vt_ld4(px + k), x2 = vt_ld4(px + k + half), o1, o2;
    for (int e = 0; e < 4; e++) {
      float ang = p * vt_rope_inv_freq(theta, k + e, d);
      float cs = cosf(ang), sn = inverse ? -sinf(ang) : sinf(ang);
      vt_rope_pair(x1.f[e], x2.f[e], cs, sn, &o1.f[e], &o2.f[e]);
    }
    if (inverse) {
      vt_f4 y1 = vt_ld4(py + k), y2 = vt_ld4(py + k + half);
      for (int e = 0; e < 4; e++) {
        o1.f[e] += y1.f[e];
        o2.f[e] += y2.f[e];
      }
    }
    vt_st4(py + k, o1);
    vt_st4(py + k + half, o2);
  }
}

/* Whether binary_rows serves this layout: a last dim of whole groups of 4, read with stride 1
 * or 0 by each operand, every row offset a multiple of 4 floats, the pointers aligned. */
static bool binary_rows_fit(const vt_bcast *bc, const float *a, const float *b, const float *out) {
  if (bc->ndim < 1 || bc->shape[bc->ndim - 1] % 4 != 0) return false;
  int64_t la = bc->sa[bc->ndim - 1], lb = bc->sb[bc->ndim - 1];
  if ((la != 0 && la != 1) || (lb != 0 && lb != 1)) return false;
  for (int d = 0; d + 1 < bc->ndim; d++)
    if ((la && bc->sa[d] % 4) || (lb && bc->sb[d] % 4)) return false;
  return vt_cuda_al16(la ? a : NULL) && vt_cuda_al16(lb ? b : NULL) && vt_cuda_al16(out);
}

static bool gather_rows_fit(int64_t inner, const float *src, const float *dst) {
  return inner % 4 == 0 && vt_cuda_al16(src) && vt_cuda_al16(dst);
}

static bool rope_rows_fit(int64_t d, const float *x, const float *y) {
  return d % 8 == 0 && vt_cuda_al16(x) && vt_cuda_al16(y);
}

#ifndef VT_CUDA_SIM

bool vt_cuda_binary_rows(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                         const float *b, float *out) {
  if (vt_cuda_simple_kernels() || !binary_rows_fit(bc, a, b, out)) return false;
  int64_t cols = bc->shape[bc->ndim - 1], rows = 1;
  for (int d = 0; d + 1 < bc->ndim; d++) rows *= bc->shape[d];
  if (rows * cols <= 0) return true;
  binary_rows_kernel<<<vt_cuda_blocks(be, rows * cols / 4, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                       VT_STREAM(be)>>>(op, *bc, rows, cols, a, b, out);
  VT_CUDA_LAUNCHED();
  return true;
}

bool vt_cuda_gather_rows(const vt_backend *be, int64_t outer, int64_t n_src, int64_t inner,
                         const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  if (vt_cuda_simple_kernels() || !gather_rows_fit(inner, src, dst)) return false;
  int64_t n = outer * n_idx * inner / 4;
  if (n <= 0) return true;
  gather_rows_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      outer, n_src, inner, src, idx, n_idx, dst);
  VT_CUDA_LAUNCHED();
  return true;
}

bool vt_cuda_rope_rows(const vt_backend *be, int64_t b, int64_t ho, int64_t t, int64_t hi,
                       int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                       const float *x, float *y, bool inverse) {
  if (vt_cuda_simple_kernels() || !rope_rows_fit(d, x, y)) return false;
  int64_t n = b * ho * t * hi * (d / 8);
  if (n <= 0) return true;
  rope_rows_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      b, ho, t, hi, d, theta, pos, pos_bstride, x, y, inverse);
  VT_CUDA_LAUNCHED();
  return true;
}

#endif /* VT_CUDA_SIM */
