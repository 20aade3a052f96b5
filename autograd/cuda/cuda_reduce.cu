/* Reduction CUDA kernels: sum / mean / max (with argmax) over the middle axis of
 * [outer, len, inner], their gradients, and softmax / log-softmax over rows. Results follow the
 * CPU backend: max returns the first maximum, a NaN wins (the first NaN), and a fully -inf
 * softmax row gives NaN. */
#include "autograd/cuda/cuda_common.cuh"

/* Whether candidate (v2, i2) beats (v1, i1) for max: the earliest NaN wins, else the larger
 * value, ties to the earlier index. Applied in any order this gives the sequential answer. */
static __device__ __forceinline__ bool max_better(float v1, int32_t i1, float v2, int32_t i2) {
  bool n1 = isnan(v1), n2 = isnan(v2);
  if (n1 || n2) return n2 && (!n1 || i2 < i1);
  return v2 > v1 || (v2 == v1 && i2 < i1);
}

static __device__ __forceinline__ void warp_argmax(float *v, int32_t *i) {
  for (int o = 16; o > 0; o >>= 1) {
    float v2 = __shfl_xor_sync(0xffffffffu, *v, o);
    int32_t i2 = __shfl_xor_sync(0xffffffffu, *i, o);
    if (max_better(*v, *i, v2, i2)) {
      *v = v2;
      *i = i2;
    }
  }
}

/* One block per output (o, j): threads stride over len. Coalesced when inner == 1; also used
 * when there are too few outputs to give each its own thread. */
__global__ void reduce_block_kernel(vt_reduce_op op, int64_t n_out, int64_t len, int64_t inner,
                                    const float *x, float *y, int32_t *arg) {
  __shared__ float sv[32];
  __shared__ int32_t si[32];
  for (int64_t q = blockIdx.x; q < n_out; q += gridDim.x) {
    const float *px = x + (q / inner) * len * inner + q % inner;
    if (op == VT_RED_MAX) {
      float v = -INFINITY;
      int32_t best = INT32_MAX; /* no element seen yet: loses to any real candidate */
      for (int64_t l = threadIdx.x; l < len; l += blockDim.x) {
        float xv = px[l * inner];
        if (best == INT32_MAX || (!(xv <= v) && !isnan(v))) {
          v = xv;
          best = (int32_t)l;
        }
      }
      if (best == INT32_MAX) v = -INFINITY;
      warp_argmax(&v, &best);
      int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
      __syncthreads();
      if (lane == 0) {
        sv[warp] = v;
        si[warp] = best;
      }
      __syncthreads();
      v = lane < nwarps ? sv[lane] : -INFINITY;
      best = lane < nwarps ? si[lane] : INT32_MAX;
      warp_argmax(&v, &best);
      if (threadIdx.x == 0) {
        y[q] = v;
        arg[q] = best;
      }
    } else {
      float acc = 0.0f;
      for (int64_t l = threadIdx.x; l < len; l += blockDim.x) acc += px[l * inner];
      acc = vt_block_sum(acc, sv);
      if (threadIdx.x == 0) y[q] = op == VT_RED_MEAN ? (float)((double)acc / (double)len) : acc;
    }
  }
}

/* One thread per output (o, j), reading along len in order (coalesced across j). */
__global__ void reduce_thread_kernel(vt_reduce_op op, int64_t outer, int64_t len, int64_t inner,
                                     const float *x, float *y, int32_t *arg) {
  VT_GRID_STRIDE(q, outer * inner) {
    const float *px = x + (q / inner) * len * inner + q % inner;
    if (op == VT_RED_MAX) {
      float v = px[0];
      int32_t best = 0;
      for (int64_t l = 1; l < len; l++) {
        float xv = px[l * inner];
        if (!(xv <= v) && !isnan(v)) {
          v = xv;
          best = (int32_t)l;
        }
      }
      y[q] = v;
      arg[q] = best;
    } else {
      float acc = 0.0f;
      for (int64_t l = 0; l < len; l++) acc += px[l * inner];
      y[q] = op == VT_RED_MEAN ? (float)((double)acc / (double)len) : acc;
    }
  }
}

void vt_cuda_reduce(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                    int64_t inner, const float *x, float *y, int32_t *arg) {
  int64_t n_out = outer * inner;
  if (n_out <= 0) return;
  if (len == 0) { /* only sum reaches here with an empty axis */
    VT_CUDA_CHECK(cudaMemsetAsync(y, 0, (size_t)n_out * sizeof(float), VT_STREAM(be)));
    return;
  }
  if (op != VT_RED_MAX && inner > 1 && !vt_cuda_simple_kernels()) {
    vt_cuda_colsum_reduce(be, outer, len, inner, x, y, op == VT_RED_MEAN); /* cuda_colsum.cu */
    return;
  }
  if (inner == 1 || n_out < (int64_t)vt_cuda_of(be)->num_sms * 64) {
    int threads = len >= 8192 ? 1024 : len >= 1024 ? 256 : 32;
    int64_t blocks = n_out < 65535 * 16 ? n_out : 65535 * 16;
    reduce_block_kernel<<<(unsigned)blocks, threads, 0, VT_STREAM(be)>>>(op, n_out, len, inner, x,
                                                                         y, arg);
  } else {
    reduce_thread_kernel<<<vt_cuda_blocks(be, n_out, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                           VT_STREAM(be)>>>(op, outer, len, inner, x, y, arg);
  }
  VT_CUDA_LAUNCHED();
}

__global__ void reduce_backward_kernel(int64_t n, int64_t len, int64_t inner, float scale,
                                       const float *dy, float *dx) {
  VT_GRID_STRIDE(i, n) {
    int64_t j = i % inner, o = i / (len * inner);
    dx[i] += dy[o * inner + j] * scale;
  }
}

__global__ void max_backward_kernel(int64_t n_out, int64_t len, int64_t inner, const float *dy,
                                    const int32_t *arg, float *dx) {
  VT_GRID_STRIDE(q, n_out) {
    int64_t o = q / inner, j = q % inner;
    dx[(o * len + arg[q]) * inner + j] += dy[q];
  }
}

void vt_cuda_reduce_backward(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                             int64_t inner, const float *dy, const int32_t *arg, float *dx) {
  if (op == VT_RED_MAX) {
    int64_t n_out = outer * inner;
    if (n_out <= 0) return;
    max_backward_kernel<<<vt_cuda_blocks(be, n_out, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                          VT_STREAM(be)>>>(n_out, len, inner, dy, arg, dx);
  } else {
    int64_t n = outer * len * inner;
    if (n <= 0) return;
    float scale = op == VT_RED_MEAN ? 1.0f / (float)len : 1.0f;
    reduce_backward_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                             VT_STREAM(be)>>>(n, len, inner, scale, dy, dx);
  }
  VT_CUDA_LAUNCHED();
}

template <bool WARP>
__global__ void softmax_kernel(bool log, int64_t rows, int64_t cols, bool vec, const float *x,
                               float *y) {
  __shared__ float shared[32];
  row_group<WARP> g;
  g.shared = shared;
  int64_t step;
  for (int64_t r = first_row<WARP>(&step, &g); r < rows; r += step) {
    const float *px = x + r * cols;
    float *py = y + r * cols;
    float m = -INFINITY;
    for (int64_t j = g.lane; j < cols; j += g.width) m = fmaxf(m, px[j]);
    m = g.max(m);
    if (m == -INFINITY) m = 0.0f; /* a fully masked row: avoid inf - inf */
    float s = 0.0f;
    for (int64_t j = g.lane; j < cols; j += g.width) s += expf(px[j] - m);
    s = g.sum(s);
    float lse = m + logf(s), inv = 1.0f / s;
    vt_for_vec(cols, vec, g.lane, g.width, [&](int64_t j, int n) {
      if (n == 1) {
        py[j] = log ? px[j] - lse : expf(px[j] - m) * inv;
        return;
      }
      vt_f4 a = vt_ld4(px + j), o;
      for (int e = 0; e < 4; e++) o.f[e] = log ? a.f[e] - lse : expf(a.f[e] - m) * inv;
      vt_st4(py + j, o);
    });
  }
}

template <bool WARP>
__global__ void softmax_backward_kernel(bool log, int64_t rows, int64_t cols, bool vec,
                                        const float *y, const float *dy, float *dx) {
  __shared__ float shared[32];
  row_group<WARP> g;
  g.shared = shared;
  int64_t step;
  for (int64_t r = first_row<WARP>(&step, &g); r < rows; r += step) {
    const float *py = y + r * cols, *pdy = dy + r * cols;
    float *pdx = dx + r * cols;
    float s = 0.0f;
    for (int64_t j = g.lane; j < cols; j += g.width) s += log ? pdy[j] : pdy[j] * py[j];
    s = g.sum(s);
    vt_for_vec(cols, vec, g.lane, g.width, [&](int64_t j, int n) {
      if (n == 1) {
        pdx[j] += log ? pdy[j] - expf(py[j]) * s : py[j] * (pdy[j] - s);
        return;
      }
      vt_f4 a = vt_ld4(py + j), d = vt_ld4(pdy + j), o = vt_ld4(pdx + j);
      for (int e = 0; e < 4; e++) o.f[e] += log ? d.f[e] - expf(a.f[e]) * s : a.f[e] * (d.f[e] - s);
      vt_st4(pdx + j, o);
    });
  }
}

/* Rows up to this many columns go to one warp each. */
#define SOFTMAX_WARP_COLS 1024
#define SOFTMAX_BLOCK 512

static unsigned softmax_blocks(const vt_backend *be, int64_t rows, bool warp) {
  int64_t per_block = warp ? VT_CUDA_THREADS / 32 : 1;
  int64_t b = (rows + per_block - 1) / per_block;
  int64_t cap = (int64_t)vt_cuda_of(be)->num_sms * 64;
  return (unsigned)(b < cap ? b : cap);
}

void vt_cuda_softmax(const vt_backend *be, bool log, int64_t rows, int64_t cols, const float *x,
                     float *y) {
  if (rows <= 0 || cols <= 0) return;
  bool vec = vt_cuda_rows_vec(cols, x, y, NULL);
  if (cols <= SOFTMAX_WARP_COLS)
    softmax_kernel<true><<<softmax_blocks(be, rows, true), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
        log, rows, cols, vec, x, y);
  else
    softmax_kernel<false><<<softmax_blocks(be, rows, false), SOFTMAX_BLOCK, 0, VT_STREAM(be)>>>(
        log, rows, cols, vec, x, y);
  VT_CUDA_LAUNCHED();
}

void vt_cuda_softmax_backward(const vt_backend *be, bool log, int64_t rows, int64_t cols,
                              const float *y, const float *dy, float *dx) {
  if (rows <= 0 || cols <= 0) return;
  bool vec = vt_cuda_rows_vec(cols, y, dy, dx);
  if (cols <= SOFTMAX_WARP_COLS)
    softmax_backward_kernel<true>
        <<<softmax_blocks(be, rows, true), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(log, rows, cols,
                                                                                vec, y, dy, dx);
  else
    softmax_backward_kernel<false>
        <<<softmax_blocks(be, rows, false), SOFTMAX_BLOCK, 0, VT_STREAM(be)>>>(log, rows, cols, vec,
                                                                               y, dy, dx);
  VT_CUDA_LAUNCHED();
}
