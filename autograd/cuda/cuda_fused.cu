/* Fused CUDA kernels of the step's hot ops and the deterministic index_add:
 *   swiglu    y = silu(gate) up over a packed [rows, 2 f] projection, and its gradient;
 *   rope_qkv  the packed [b, t, hq + 2 hkv, d] projection split into q, k, v heads with RoPE
 *             on q and k, and its gradient (the transposed rotation, packed back);
 *   index_add the embedding gradient with repeated ids: the ids sorted once per call (CUB's
 *             stable radix sort of (row, position) pairs), the runs of each row found
 *             (DeviceSelect::Flagged), then each destination row summed by one thread per
 *             column over its positions in order: the CPU's order, so the CPU's bits, and no
 *             atomics.
 * The element math is the CPU's (cpu_math.h's vt_swiglu_*, kernels_norm.h's vt_rope_pair and
 * vt_rope_inv_freq). tests/test_cuda_sim.cpp compiles the kernels for the host (VT_CUDA_SIM,
 * through tests/flash_sim.h) and checks them against the CPU backend in every build; the
 * launchers below the kernels are CUDA only. */
#ifdef VT_CUDA_SIM
#include "tests/flash_sim.h"
// flash_sim.h first: it defines float4
#include "autograd/cuda/cuda_vec.cuh"
extern "C" {
#include "autograd/cpu/cpu_math.h"
#include "autograd/kernels_norm.h"
}
#else
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <limits.h>

#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_norm.h"
}
#endif

/* ---- SwiGLU ---- */

static __device__ __forceinline__ float fu_swiglu(float g, float u) {
  return vt_swiglu_f(g, u, vt_sigmoidf(g));
}

/* One thread per vec (1 or 4) consecutive outputs of a row; f % vec == 0. */
__global__ void swiglu_kernel(int64_t rows, int64_t f, int vec, const float *x, float *y) {
  int64_t fv = f / vec, n = rows * fv;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t r = i / fv, j = i % fv * vec;
    const float *g = x + r * 2 * f + j, *u = g + f;
    float *o = y + r * f + j;
    if (vec == 4) {
      vt_f4 a = vt_ld4(g), b = vt_ld4(u), c;
      for (int e = 0; e < 4; e++) c.f[e] = fu_swiglu(a.f[e], b.f[e]);
      vt_st4(o, c);
    } else {
      o[0] = fu_swiglu(g[0], u[0]);
    }
  }
}

/* Both halves of one element's gradient, written or added. */
static __device__ __forceinline__ void fu_swiglu_grad(float g, float u, float dy, float *dg,
                                                      float *du, bool accumulate) {
  float s = vt_sigmoidf(g), a = vt_swiglu_dgate(g, u, s, dy), b = vt_swiglu_dup(g, s, dy);
  *dg = accumulate ? *dg + a : a;
  *du = accumulate ? *du + b : b;
}

__global__ void swiglu_backward_kernel(int64_t rows, int64_t f, int vec, const float *x,
                                       const float *dy, float *dx, bool accumulate) {
  int64_t fv = f / vec, n = rows * fv;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t r = i / fv, j = i % fv * vec;
    const float *g = x + r * 2 * f + j, *u = g + f, *d = dy + r * f + j;
    float *dg = dx + r * 2 * f + j, *du = dg + f;
    if (vec == 4) {
      vt_f4 a = vt_ld4(g), b = vt_ld4(u), c = vt_ld4(d), p = {}, q = {};
      if (accumulate) {
        p = vt_ld4(dg);
        q = vt_ld4(du);
      }
      for (int e = 0; e < 4; e++)
        fu_swiglu_grad(a.f[e], b.f[e], c.f[e], &p.f[e], &q.f[e], accumulate);
      vt_st4(dg, p);
      vt_st4(du, q);
    } else {
      fu_swiglu_grad(g[0], u[0], d[0], dg, du, accumulate);
    }
  }
}

/* ---- RoPE fused with the q/k/v head split ---- */

/* One thread per (sample, position, head, slot kk < dh = ceil(d / 2)), or per 4 slots (vec 4,
 * float4 loads: d % 8 == 0 and aligned): elements kk and kk + dh of the head (the RoPE pair when
 * the head rotates; d is even then, checked by the op; a plain split may have an odd d, whose last
 * slot has one element). Forward reads the packed row and writes the head layout; backward reads dq
 * / dk / dv and writes (or adds into) the packed dx, so every output element has one writer. Angles
 * as the CPU forms them: (float)pos * vt_rope_inv_freq, then cosf / sinf; the backward rotates by
 * -sin. */
__global__ void rope_qkv_kernel(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d, int vec,
                                float theta, const int32_t *pos, int64_t pos_bstride, float *packed,
                                float *q, float *k, float *v, bool backward, bool accumulate) {
  int64_t nh = hq + 2 * hkv, dh = (d + 1) / 2, nv = dh / vec, n = b * t * nh * nv;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x) {
    int64_t kk = i % nv * vec, r = i / nv; /* r indexes (sample, position, head), packed side */
    int64_t h = r % nh, bt = r / nh, ti = bt % t, bi = bt / t;
    float *hp = vt_qkv_head_row(bi, ti, h, hq, hkv, t, d, q, k, v), *row = packed + r * d;
    const float *src = backward ? hp : row;
    float *dst = backward ? row : hp;
    bool rot = theta > 0 && h < hq + hkv;
    float p = rot ? (float)pos[bi * pos_bstride + ti] : 0.0f;
    /* pair kq: rotated (or copied), then written or added */
    auto pair = [&](int64_t kq, float x1, float x2, float d1, float d2, float *o1, float *o2) {
      *o1 = x1;
      *o2 = x2;
      if (rot) {
        float ang = p * vt_rope_inv_freq(theta, kq, d), sn = sinf(ang);
        vt_rope_pair(x1, x2, cosf(ang), backward ? -sn : sn, o1, o2);
      }
      if (accumulate) {
        *o1 = d1 + *o1;
        *o2 = d2 + *o2;
      }
    };
    if (vec == 4) { /* d % 8 == 0: both halves of the pairs are 16-byte aligned */
      vt_f4 a = vt_ld4(src + kk), c = vt_ld4(src + kk + dh), u = {}, w = {}, o1, o2;
      if (accumulate) {
        u = vt_ld4(dst + kk);
        w = vt_ld4(dst + kk + dh);
      }
      for (int e = 0; e < 4; e++) pair(kk + e, a.f[e], c.f[e], u.f[e], w.f[e], &o1.f[e], &o2.f[e]);
      vt_st4(dst + kk, o1);
      vt_st4(dst + kk + dh, o2);
      continue;
    }
    bool two = kk + dh < d; /* an odd d (no rotation) has a last slot of one element */
    float o1, o2;
    pair(kk, src[kk], two ? src[kk + dh] : 0.0f, accumulate ? dst[kk] : 0.0f,
         accumulate && two ? dst[kk + dh] : 0.0f, &o1, &o2);
    dst[kk] = o1;
    if (two) dst[kk + dh] = o2;
  }
}

/* ---- index_add without atomics ---- */

__global__ void iota_kernel(int64_t n, uint32_t *p) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    p[i] = (uint32_t)i;
}

/* flags[i] = 1 where sorted entry i starts a run of its row (DeviceSelect::Flagged then
 * compacts those i into the runs' starts). */
__global__ void run_flags_kernel(int64_t n, const uint32_t *keys, uint8_t *flags) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
       i += (int64_t)blockDim.x * gridDim.x)
    flags[i] = i == 0 || keys[i] != keys[i - 1];
}

/* dst[o, row, :] += src[o, pos, :] for (row, pos) = (keys[i], pos[i]), the pairs sorted by row
 * and, within a row, by position (a stable sort of positions in order). Run r of one row
 * covers sorted entries starts[r] .. starts[r + 1] - 1 (the last ends at n_idx); block row y
 * takes runs y, y + gridDim.y, ... below *n_runs, one thread per (o, column) of the block's x
 * slice: acc = dst, then + src of each position in order, the CPU's summation. The loads go
 * four at a time ahead of their adds (latency hidden, order kept). */
__global__ void index_add_runs_kernel(int64_t outer, int64_t n_dst, int64_t inner, const float *src,
                                      const uint32_t *keys, const uint32_t *pos, int64_t n_idx,
                                      const uint32_t *starts, const int64_t *n_runs, float *dst) {
  int64_t cols = outer * inner, runs = *n_runs;
  for (int64_t r = blockIdx.y; r < runs; r += gridDim.y) {
    int64_t s = starts[r], e = r + 1 < runs ? (int64_t)starts[r + 1] : n_idx, row = keys[s];
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < cols;
         c += (int64_t)blockDim.x * gridDim.x) {
      int64_t o = c / inner, j = c % inner;
      const float *so = src + o * n_idx * inner + j;
      float *dp = dst + (o * n_dst + row) * inner + j;
      float acc = *dp;
      int64_t m = s;
      for (; m + 4 <= e; m += 4) {
        float v[4];
        for (int u = 0; u < 4; u++) v[u] = so[(int64_t)pos[m + u] * inner];
        for (int u = 0; u < 4; u++) acc += v[u];
      }
      for (; m < e; m++) acc += so[(int64_t)pos[m] * inner];
      *dp = acc;
    }
  }
}

/* Without scratch memory (and under VT_CUDA_SIMPLE): one thread per (o, column) walking every
 * index in order, the CPU's loop; deterministic, but latency bound for long index lists. */
__global__ void index_add_ordered_kernel(int64_t outer, int64_t n_dst, int64_t inner,
                                         const float *src, const int32_t *idx, int64_t n_idx,
                                         float *dst) {
  int64_t cols = outer * inner;
  for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < cols;
       c += (int64_t)blockDim.x * gridDim.x) {
    int64_t o = c / inner, j = c % inner;
    for (int64_t m = 0; m < n_idx; m++)
      dst[(o * n_dst + idx[m]) * inner + j] += src[(o * n_idx + m) * inner + j];
  }
}

#ifndef VT_CUDA_SIM

void vt_cuda_swiglu(const vt_backend *be, int64_t rows, int64_t f, const float *x, float *y) {
  if (rows <= 0 || f <= 0) return;
  int vec = vt_cuda_rows_vec(f, x, y, NULL) ? 4 : 1;
  swiglu_kernel<<<vt_cuda_blocks(be, rows * f / vec, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                  VT_STREAM(be)>>>(rows, f, vec, x, y);
  VT_CUDA_LAUNCHED();
}

void vt_cuda_swiglu_backward(const vt_backend *be, int64_t rows, int64_t f, const float *x,
                             const float *dy, float *dx, bool accumulate) {
  if (rows <= 0 || f <= 0) return;
  int vec = vt_cuda_rows_vec(f, x, dy, dx) ? 4 : 1;
  swiglu_backward_kernel<<<vt_cuda_blocks(be, rows * f / vec, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                           VT_STREAM(be)>>>(rows, f, vec, x, dy, dx, accumulate);
  VT_CUDA_LAUNCHED();
}

static void rope_qkv_launch(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                            int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                            float *packed, float *q, float *k, float *v, bool backward,
                            bool accumulate) {
  int64_t n = b * t * (hq + 2 * hkv) * ((d + 1) / 2);
  if (n <= 0) return;
  int vec = d % 8 == 0 && vt_cuda_flat_vec(packed, q, k, v) ? 4 : 1;
  rope_qkv_kernel<<<vt_cuda_blocks(be, n / vec, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                    VT_STREAM(be)>>>(b, t, hq, hkv, d, vec, theta, pos, pos_bstride, packed, q, k,
                                     v, backward, accumulate);
  VT_CUDA_LAUNCHED();
}

void vt_cuda_rope_qkv(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                      int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                      const float *x, float *q, float *k, float *v) {
  rope_qkv_launch(be, b, t, hq, hkv, d, theta, pos, pos_bstride, (float *)x, q, k, v, false, false);
}

void vt_cuda_rope_qkv_backward(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                               int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                               const float *dq, const float *dk, const float *dv, float *dx,
                               bool accumulate) {
  rope_qkv_launch(be, b, t, hq, hkv, d, theta, pos, pos_bstride, dx, (float *)dq, (float *)dk,
                  (float *)dv, true, accumulate);
}

/* The sorted path; false when its scratch cannot be had (the caller walks in order instead).
 * Scratch, one stream-ordered allocation freed after the kernels: sorted keys, positions in
 * and out, the runs' starts (n_idx u32 each), the run flags (n_idx bytes), the run count, and
 * CUB's temporary storage (the larger of the sort's and the selection's). */
static bool index_add_sorted(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                             const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  if (n_idx > INT_MAX / 2) return false;
  vt_cuda_inst *st = vt_cuda_of(be);
  cudaStream_t s = st->stream;
  int bits = 1; /* only the key bits a row index can set are sorted */
  while (bits < 31 && ((int64_t)1 << bits) < n_dst) bits++;
  const uint32_t *keys_in = reinterpret_cast<const uint32_t *>(idx); /* ids are >= 0 */
  int n = (int)n_idx;
  size_t sort_temp = 0, select_temp = 0, list = ((size_t)n * sizeof(uint32_t) + 255) / 256 * 256;
  size_t flags_bytes = ((size_t)n + 255) / 256 * 256;
  VT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(NULL, sort_temp, keys_in, (uint32_t *)NULL,
                                                (const uint32_t *)NULL, (uint32_t *)NULL, n, 0,
                                                bits, s));
  VT_CUDA_CHECK(cub::DeviceSelect::Flagged(NULL, select_temp, (const uint32_t *)NULL,
                                           (const uint8_t *)NULL, (uint32_t *)NULL, (int64_t *)NULL,
                                           n_idx, s));
  size_t temp = sort_temp > select_temp ? sort_temp : select_temp;
  size_t bytes = 4 * list + flags_bytes + 256 + temp;
  char *mem = NULL;
  cudaError_t e =
      st->pool ? cudaMallocAsync((void **)&mem, bytes, s) : cudaMalloc((void **)&mem, bytes);
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    return false;
  }
  VT_CUDA_CHECK(e);
  uint32_t *keys = (uint32_t *)mem, *pos_in = (uint32_t *)(mem + list),
           *pos = (uint32_t *)(mem + 2 * list), *starts = (uint32_t *)(mem + 3 * list);
  uint8_t *flags = (uint8_t *)(mem + 4 * list);
  int64_t *n_runs = (int64_t *)(mem + 4 * list + flags_bytes);
  char *cub_temp = mem + 4 * list + flags_bytes + 256;
  unsigned blocks = vt_cuda_blocks(be, n_idx, VT_CUDA_THREADS);
  iota_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(n_idx, pos_in);
  VT_CUDA_LAUNCHED();
  VT_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(cub_temp, sort_temp, keys_in, keys, pos_in, pos, n,
                                                0, bits, s));
  run_flags_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(n_idx, keys, flags);
  VT_CUDA_LAUNCHED();
  /* the starts: the positions 0..n-1 (pos_in, still the identity) where a run begins */
  VT_CUDA_CHECK(cub::DeviceSelect::Flagged(cub_temp, select_temp, (const uint32_t *)pos_in,
                                           (const uint8_t *)flags, starts, n_runs, n_idx, s));
  int64_t cols = outer * inner, gx = (cols + VT_CUDA_THREADS - 1) / VT_CUDA_THREADS;
  /* runs are at most n_idx; blocks beyond the run count return at once */
  dim3 grid((unsigned)(gx > 64 ? 64 : gx), (unsigned)(n_idx < 8192 ? n_idx : 8192));
  index_add_runs_kernel<<<grid, VT_CUDA_THREADS, 0, s>>>(outer, n_dst, inner, src, keys, pos, n_idx,
                                                         starts, n_runs, dst);
  VT_CUDA_LAUNCHED();
  if (st->pool)
    VT_CUDA_CHECK(cudaFreeAsync(mem, s));
  else
    VT_CUDA_CHECK(cudaFree(mem)); /* synchronises: the kernels are done with it */
  return true;
}

void vt_cuda_index_add(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                       const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  int64_t cols = outer * inner;
  if (cols <= 0 || n_idx <= 0) return;
  if (!vt_cuda_simple_kernels() && index_add_sorted(be, outer, n_dst, inner, src, idx, n_idx, dst))
    return;
  index_add_ordered_kernel<<<vt_cuda_blocks(be, cols, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                             VT_STREAM(be)>>>(outer, n_dst, inner, src, idx, n_idx, dst);
  VT_CUDA_LAUNCHED();
}

#endif /* VT_CUDA_SIM */
