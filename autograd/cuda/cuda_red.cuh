/* Warp and block reductions of the CUDA kernels (sum, max, in float and double), in a fixed
 * order: the same bits on every run. Its own header, so the host emulation of the kernels
 * (tests/flash_sim.h: shuffles and barriers as collectives of the block) has them too. */
#ifndef VT_CUDA_RED_CUH
#define VT_CUDA_RED_CUH

/* Warp-level reductions (full warp). */
static __device__ __forceinline__ float vt_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ float vt_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

/* Sum over a block whose size is a multiple of 32 (at most 1024); every thread gets the result.
 * shared must hold 32 floats; the block may call this repeatedly. */
static __device__ __forceinline__ float vt_block_sum(float v, float *shared) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = vt_warp_sum(v);
  __syncthreads(); /* shared may still be read from a previous call */
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : 0.0f;
  return vt_warp_sum(v);
}

/* The same in double: the statistics of norms and losses accumulate in double, as on the CPU. */
static __device__ __forceinline__ double vt_warp_sum_d(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

static __device__ __forceinline__ double vt_block_sum_d(double v, double *shared) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = vt_warp_sum_d(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : 0.0;
  return vt_warp_sum_d(v);
}

static __device__ __forceinline__ float vt_block_max(float v, float *shared) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = vt_warp_max(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : -INFINITY;
  return vt_warp_max(v);
}

/* Row kernels (softmax, cross-entropy) give a row to a warp (short rows) or a block (long rows).
 * Within a group, `lane` runs over [0, width) and the reductions cover the group. */
template <bool WARP> struct row_group {
  float *shared;
  double *shared_d; /* for sum_d: 32 doubles (block rows only) */
  int lane, width;
  __device__ float sum(float v) { return WARP ? vt_warp_sum(v) : vt_block_sum(v, shared); }
  __device__ float max(float v) { return WARP ? vt_warp_max(v) : vt_block_max(v, shared); }
  __device__ double sum_d(double v) {
    return WARP ? vt_warp_sum_d(v) : vt_block_sum_d(v, shared_d);
  }
};

template <bool WARP>
__device__ __forceinline__ int64_t first_row(int64_t *step, row_group<WARP> *g) {
  if (WARP) {
    int per_block = blockDim.x >> 5;
    g->lane = threadIdx.x & 31;
    g->width = 32;
    *step = (int64_t)gridDim.x * per_block;
    return (int64_t)blockIdx.x * per_block + (threadIdx.x >> 5);
  }
  g->lane = threadIdx.x;
  g->width = blockDim.x;
  *step = gridDim.x;
  return blockIdx.x;
}

#endif
