/* Data-movement CUDA kernels: the n-d strided copy behind permute, slice and concat, and the
 * gather / scatter kernels over [outer, n, inner] layouts with an i32 index vector (index_add,
 * which must not use atomics, is in cuda_fused.cu). */
#include <limits.h>

#include "autograd/cuda/cuda_common.cuh"

typedef struct {
  int ndim;
  int64_t shape[VT_MAX_DIMS], ss[VT_MAX_DIMS], ds[VT_MAX_DIMS];
} copy_plan;

static __device__ __forceinline__ void copy_offsets(const copy_plan &p, int64_t i, int64_t *os,
                                                    int64_t *od) {
  int64_t s = 0, d = 0;
  for (int k = p.ndim - 1; k >= 0; k--) {
    int64_t c = i % p.shape[k];
    i /= p.shape[k];
    s += c * p.ss[k];
    d += c * p.ds[k];
  }
  *os = s;
  *od = d;
}

template <typename T>
__global__ void strided_copy_kernel(copy_plan p, int64_t n, const T *src, T *dst) {
  VT_GRID_STRIDE(i, n) {
    int64_t os, od;
    copy_offsets(p, i, &os, &od);
    dst[od] = src[os];
  }
}

__global__ void strided_add_kernel(copy_plan p, int64_t n, const float *src, float *dst) {
  VT_GRID_STRIDE(i, n) {
    int64_t os, od;
    copy_offsets(p, i, &os, &od);
    dst[od] += src[os];
  }
}

void vt_cuda_strided_copy(const vt_backend *be, int ndim, const int64_t *shape, const void *src,
                          const int64_t *src_strides, void *dst, const int64_t *dst_strides,
                          size_t elem_size, bool accumulate) {
  copy_plan p;
  p.ndim = ndim;
  int64_t n = 1;
  for (int k = 0; k < ndim; k++) {
    p.shape[k] = shape[k];
    p.ss[k] = src_strides[k];
    p.ds[k] = dst_strides[k];
    n *= shape[k];
  }
  if (n <= 0) return;
  unsigned blocks = vt_cuda_blocks(be, n, VT_CUDA_THREADS);
  cudaStream_t s = VT_STREAM(be);
  if (accumulate) {
    strided_add_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(p, n, (const float *)src, (float *)dst);
  } else {
    switch (elem_size) {
    case 1:
      strided_copy_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(p, n, (const uint8_t *)src,
                                                             (uint8_t *)dst);
      break;
    case 2:
      strided_copy_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(p, n, (const uint16_t *)src,
                                                             (uint16_t *)dst);
      break;
    case 4:
      strided_copy_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(p, n, (const uint32_t *)src,
                                                             (uint32_t *)dst);
      break;
    case 8:
      strided_copy_kernel<<<blocks, VT_CUDA_THREADS, 0, s>>>(p, n, (const uint64_t *)src,
                                                             (uint64_t *)dst);
      break;
    default: vt_cuda_die(__FILE__, __LINE__, "strided_copy", "unsupported element size");
    }
  }
  VT_CUDA_LAUNCHED();
}

/* Element i of the [outer, n_idx, inner] side, split into (o, k, j); `row` is the matching
 * offset on the [outer, n_other, inner] side, through idx[k]. */
static __device__ __forceinline__ int64_t index_row(int64_t i, int64_t n_idx, int64_t n_other,
                                                    int64_t inner, const int32_t *idx) {
  int64_t j = i % inner, t = i / inner;
  int64_t k = t % n_idx, o = t / n_idx;
  return (o * n_other + idx[k]) * inner + j;
}

__global__ void index_select_kernel(int64_t n, int64_t n_src, int64_t inner, const float *src,
                                    const int32_t *idx, int64_t n_idx, float *dst) {
  VT_GRID_STRIDE(i, n) dst[i] = src[index_row(i, n_idx, n_src, inner, idx)];
}

__global__ void index_copy_kernel(int64_t n, int64_t n_dst, int64_t inner, const float *src,
                                  const int32_t *idx, int64_t n_idx, float *dst) {
  VT_GRID_STRIDE(i, n) dst[index_row(i, n_idx, n_dst, inner, idx)] = src[i];
}

__global__ void index_zero_kernel(int64_t n, int64_t n_dst, int64_t inner, const int32_t *idx,
                                  int64_t n_idx, float *dst) {
  VT_GRID_STRIDE(i, n) dst[index_row(i, n_idx, n_dst, inner, idx)] = 0.0f;
}

#define INDEX_LAUNCH(kernel, n, ...)                                                               \
  do {                                                                                             \
    if ((n) <= 0) return;                                                                          \
    kernel<<<vt_cuda_blocks(be, (n), VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(       \
        (n), __VA_ARGS__);                                                                         \
    VT_CUDA_LAUNCHED();                                                                            \
  } while (0)

void vt_cuda_index_select(const vt_backend *be, int64_t outer, int64_t n_src, int64_t inner,
                          const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  if (vt_cuda_gather_rows(be, outer, n_src, inner, src, idx, n_idx, dst)) return; /* float4 */
  INDEX_LAUNCH(index_select_kernel, outer * n_idx * inner, n_src, inner, src, idx, n_idx, dst);
}

void vt_cuda_index_copy(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                        const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  INDEX_LAUNCH(index_copy_kernel, outer * n_idx * inner, n_dst, inner, src, idx, n_idx, dst);
}

void vt_cuda_index_zero(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                        const int32_t *idx, int64_t n_idx, float *dst) {
  INDEX_LAUNCH(index_zero_kernel, outer * n_idx * inner, n_dst, inner, idx, n_idx, dst);
}

__global__ void index_check_kernel(const int32_t *idx, int64_t n, int64_t limit,
                                   unsigned long long *first) {
  VT_GRID_STRIDE(i, n) if (idx[i] < 0 || idx[i] >= limit) atomicMin(first, (unsigned long long)i);
}

int64_t vt_cuda_index_check(const vt_backend *be, const int32_t *idx, int64_t n, int64_t limit) {
  if (n <= 0) return -1;
  unsigned long long first;
  /* all bits set: ULLONG_MAX, "none found" */
  VT_CUDA_CHECK(cudaMemsetAsync(vt_cuda_of(be)->scratch, 0xff, sizeof first, VT_STREAM(be)));
  index_check_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      idx, n, limit, vt_cuda_of(be)->scratch);
  VT_CUDA_LAUNCHED();
  VT_CUDA_CHECK(cudaMemcpyAsync(&first, vt_cuda_of(be)->scratch, sizeof first,
                                cudaMemcpyDeviceToHost, VT_STREAM(be)));
  VT_CUDA_CHECK(cudaStreamSynchronize(VT_STREAM(be)));
  return first == ULLONG_MAX ? -1 : (int64_t)first;
}
