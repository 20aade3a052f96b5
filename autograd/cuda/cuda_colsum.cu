/* Deterministic column sums on the GPU: the bias-like gradient of a broadcast binary op (an
 * operand broadcast over the leading dims of the output: dst[j] += sum_r g(r, j), g the element
 * gradient of vt_binary_grad) and sum / mean over the middle axis of [outer, len, inner] with
 * inner > 1. No atomics; the summation order depends on the shape alone (not on the GPU):
 *   - the rows are cut into slices of colsum_slice_rows(rows) rows;
 *   - a block of W warps (W = colsum_warps(rows)) takes one slice and 32 columns (128 with
 *     float4 loads: columns a multiple of 4, every pointer 16-byte aligned): warp w sums rows
 *     w, w + W, ... of its slice in order, in double, one float4 (or float) per lane and row,
 *     so a warp reads 512 (128) consecutive bytes per row;
 *   - the W warp sums are added in a fixed tree (w += w + W/2, then W/4, ...);
 *   - with one slice the block finishes the column; with several, the slice sums go to the
 *     instance's scratch and one thread per column adds them in slice order.
 * The element math is cpu_math.h's. tests/test_cuda_sim.cpp compiles the kernels and the
 * layout classification for the host (VT_CUDA_SIM) and checks them against the CPU backend and
 * against a model of the order above; the launchers at the end are CUDA only.
 *
 * Not cuBLASLt's CUBLASLT_EPILOGUE_BGRADB: it would give a linear's bias gradient inside the
 * weight-gradient GEMM, but its reduction order is not documented (and may change with the
 * algorithm and split-K the heuristic picks), it accumulates in f32, and nothing promises the
 * same bits on every run. The sum here is the same on every run and every GPU. */
#ifdef VT_CUDA_SIM
#include "tests/flash_sim.h"
// flash_sim.h first: it defines float4
#include "autograd/cuda/cuda_vec.cuh"
extern "C" {
#include "autograd/cpu/cpu_math.h"
}
#else
#include "autograd/cuda/cuda_common.cuh"
#endif

#define CS_MAX_WARPS 8
#define CS_MAX_SLICES 1024

/* The work of one column sum: element (o, r, j) is g(op, which, a[o, r, j], b[o, r, j],
 * d[o, r, j]) with row strides a_row / b_row (0: broadcast over the rows) and outer strides
 * a_outer / b_outer / d_outer; columns are contiguous in every operand. The result of (o, j)
 * is dst[o * cols + j] (+)= (float)(sum / div). */
struct colsum_args {
  vt_binary_op op;
  int which;
  int64_t outer, rows, cols, slice_rows, slices;
  const float *a, *b, *d;
  int64_t a_row, b_row, d_row, a_outer, b_outer, d_outer;
  double div;
  bool accumulate;
  double *part; /* [outer, slices, cols] when slices > 1 */
  float *dst;
};

/* Rows per slice: 64, more for long columns so that there are at most CS_MAX_SLICES slices
 * (a multiple of 8, so every warp of a full slice has the same number of rows). */
static inline int64_t colsum_slice_rows(int64_t rows) {
  int64_t s = (rows + CS_MAX_SLICES - 1) / CS_MAX_SLICES;
  s = (s + 7) / 8 * 8;
  return s < 64 ? 64 : s;
}

/* Warps per block: 8, fewer (a power of two) for short columns. */
static inline int colsum_warps(int64_t rows) {
  int w = 1;
  while (w < CS_MAX_WARPS && w < rows) w *= 2;
  return w;
}

static __device__ __forceinline__ float cs_elem(const colsum_args &p, float a, float b, float d) {
  return vt_binary_grad(p.op, p.which, a, b, d);
}

static __device__ __forceinline__ void cs_finish(const colsum_args &p, int64_t o, int64_t j,
                                                 double t) {
  float v = (float)(t / p.div);
  float *q = p.dst + o * p.cols + j;
  *q = p.accumulate ? *q + v : v;
}

/* Grid (column tiles, slices, outer); blockDim.x = 32 W. VEC is 1 or 4 (a template argument:
 * the accumulators stay in registers). */
template <int VEC> __global__ void colsum_part_kernel(colsum_args p) {
  const int vec = VEC;
  __shared__ double sh[CS_MAX_WARPS][32 * 4];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  bool reads = p.op == VT_BIN_MUL || p.op == VT_BIN_DIV; /* add / sub ignore a and b */
  int64_t sl = blockIdx.y, j0 = ((int64_t)blockIdx.x * 32 + lane) * vec;
  int64_t r0 = sl * p.slice_rows, r1 = r0 + p.slice_rows < p.rows ? r0 + p.slice_rows : p.rows;
  for (int64_t o = blockIdx.z; o < p.outer; o += gridDim.z) {
    const float *pa = p.a + o * p.a_outer + j0, *pb = p.b + o * p.b_outer + j0;
    const float *pd = p.d + o * p.d_outer + j0;
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    if (j0 < p.cols) {
      for (int64_t r = r0 + warp; r < r1; r += nw) {
        if (VEC == 4) {
          vt_f4 x = {}, y = {}, g = vt_ld4(pd + r * p.d_row);
          if (reads) {
            x = vt_ld4(pa + r * p.a_row);
            y = vt_ld4(pb + r * p.b_row);
          }
          for (int e = 0; e < 4; e++) acc[e] += cs_elem(p, x.f[e], y.f[e], g.f[e]);
        } else {
          float x = reads ? pa[r * p.a_row] : 0.0f, y = reads ? pb[r * p.b_row] : 0.0f;
          acc[0] += cs_elem(p, x, y, pd[r * p.d_row]);
        }
      }
    }
    __syncthreads(); /* sh may still be read for the previous o */
    for (int e = 0; e < vec; e++) sh[warp][lane * vec + e] = acc[e];
    __syncthreads();
    for (int s = nw / 2; s > 0; s /= 2) {
      if (warp < s)
        for (int e = 0; e < vec; e++) sh[warp][lane * vec + e] += sh[warp + s][lane * vec + e];
      __syncthreads();
    }
    if (warp == 0)
      for (int e = 0; e < vec && j0 + e < p.cols; e++) {
        double t = sh[0][lane * vec + e];
        if (p.slices > 1)
          p.part[(o * p.slices + sl) * p.cols + j0 + e] = t;
        else
          cs_finish(p, o, j0 + e, t);
      }
  }
}

/* The slices of each (o, column) in order. */
__global__ void colsum_slices_kernel(colsum_args p) {
  int64_t n = p.outer * p.cols;
  for (int64_t q = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; q < n;
       q += (int64_t)blockDim.x * gridDim.x) {
    int64_t o = q / p.cols, j = q % p.cols;
    const double *pp = p.part + o * p.slices * p.cols + j;
    double t = 0.0;
    for (int64_t s = 0; s < p.slices; s++) t += pp[s * p.cols];
    cs_finish(p, o, j, t);
  }
}

/* Contiguous strides of shape[from, to) (after dropping sizes of 1) equal s there. */
static bool cs_contig(const vt_bcast *bc, const int64_t *s, int from, int to) {
  int64_t want = 1;
  for (int d = to - 1; d >= from; d--) {
    if (bc->shape[d] == 1) continue;
    if (s[d] != want) return false;
    want *= bc->shape[d];
  }
  return true;
}

/* Strides s over dims [0, k) are all 0 (broadcast: row stride 0) or contiguous with rows of
 * `cols` elements (row stride cols). */
static bool cs_row_stride(const vt_bcast *bc, const int64_t *s, int k, int64_t cols, int64_t *row) {
  bool zero = true;
  for (int d = 0; d < k; d++) zero &= s[d] == 0 || bc->shape[d] == 1;
  if (zero) {
    *row = 0;
    return true;
  }
  int64_t want = cols;
  for (int d = k - 1; d >= 0; d--) {
    if (bc->shape[d] == 1) continue;
    if (s[d] != want) return false;
    want *= bc->shape[d];
  }
  *row = cols;
  return true;
}

/* The column-sum plan of operand `which`'s gradient, when the layout fits: the dims X is
 * broadcast over (stride 0, size > 1) are all leading, the kept dims trailing and contiguous
 * in X, and the other operand is either broadcast over the same rows or dense. Size-1 dims do
 * not count. Returns false otherwise (the general kernels serve). */
static bool colsum_plan(vt_binary_op op, int which, const vt_bcast *bc, const float *a,
                        const float *b, const float *dout, float *dst, colsum_args *p) {
  const int64_t *sx = which ? bc->sb : bc->sa, *so = which ? bc->sa : bc->sb;
  int k = 0; /* dims [0, k) reduced */
  int64_t rows = 1, cols = 1;
  for (int d = 0; d < bc->ndim; d++) {
    if (bc->shape[d] == 1) continue;
    if (sx[d] == 0) {
      for (int e = k; e < d; e++)
        if (bc->shape[e] != 1) return false; /* a kept dim before a reduced one */
      k = d + 1;
      rows *= bc->shape[d];
    }
  }
  for (int d = k; d < bc->ndim; d++) cols *= bc->shape[d];
  if (rows <= 1 || cols < 1 || !cs_contig(bc, sx, k, bc->ndim)) return false;
  int64_t orow = 0; /* add and sub do not read the operands */
  if ((op == VT_BIN_MUL || op == VT_BIN_DIV) &&
      (!cs_contig(bc, so, k, bc->ndim) || !cs_row_stride(bc, so, k, cols, &orow)))
    return false;
  memset(p, 0, sizeof *p);
  p->op = op;
  p->which = which;
  p->outer = 1;
  p->rows = rows;
  p->cols = cols;
  p->a = a;
  p->b = b;
  p->d = dout;
  p->a_row = which ? orow : 0;
  p->b_row = which ? 0 : orow;
  p->d_row = cols;
  p->div = 1.0;
  p->accumulate = true;
  p->dst = dst;
  p->slice_rows = colsum_slice_rows(rows);
  p->slices = (rows + p->slice_rows - 1) / p->slice_rows;
  return true;
}

/* The plan of sum (div 1) or mean (div len) over the middle axis of x [outer, len, inner]. */
static void colsum_reduce_plan(int64_t outer, int64_t len, int64_t inner, const float *x, float *y,
                               bool mean, colsum_args *p) {
  memset(p, 0, sizeof *p);
  p->op = VT_BIN_ADD;
  p->outer = outer;
  p->rows = len;
  p->cols = inner;
  p->a = p->b = p->d = x;
  p->d_row = inner;
  p->d_outer = len * inner;
  p->div = mean ? (double)len : 1.0;
  p->dst = y;
  p->slice_rows = colsum_slice_rows(len);
  p->slices = (len + p->slice_rows - 1) / p->slice_rows;
}

/* float4 loads: columns a multiple of 4 and every pointer read 16-byte aligned. */
static bool colsum_vec(const colsum_args *p) {
  bool reads = p->op == VT_BIN_MUL || p->op == VT_BIN_DIV;
  return p->cols % 4 == 0 && vt_cuda_al16(p->d) &&
         (!reads || (vt_cuda_al16(p->a) && vt_cuda_al16(p->b)));
}

#ifndef VT_CUDA_SIM

static void colsum_launch(const vt_backend *be, colsum_args *p) {
  bool vec = colsum_vec(p);
  int w = colsum_warps(p->rows);
  int64_t tiles = (p->cols + 32 * (vec ? 4 : 1) - 1) / (32 * (vec ? 4 : 1));
  if (tiles > INT32_MAX) vt_cuda_die(__FILE__, __LINE__, "column sum", "too many columns");
  if (p->slices > 1) p->part = vt_cuda_red_scratch(be, (size_t)(p->outer * p->slices * p->cols));
  dim3 grid((unsigned)tiles, (unsigned)p->slices, vt_cuda_grid(p->outer));
  if (vec)
    colsum_part_kernel<4><<<grid, 32 * w, 0, VT_STREAM(be)>>>(*p);
  else
    colsum_part_kernel<1><<<grid, 32 * w, 0, VT_STREAM(be)>>>(*p);
  VT_CUDA_LAUNCHED();
  if (p->slices > 1) {
    colsum_slices_kernel<<<vt_cuda_blocks(be, p->outer * p->cols, VT_CUDA_THREADS), VT_CUDA_THREADS,
                           0, VT_STREAM(be)>>>(*p);
    VT_CUDA_LAUNCHED();
  }
}

bool vt_cuda_colsum_grad(const vt_backend *be, vt_binary_op op, int which, const vt_bcast *bc,
                         const float *a, const float *b, const float *dout, float *dst) {
  colsum_args p;
  if (vt_cuda_simple_kernels() || !colsum_plan(op, which, bc, a, b, dout, dst, &p)) return false;
  colsum_launch(be, &p);
  return true;
}

void vt_cuda_colsum_reduce(const vt_backend *be, int64_t outer, int64_t len, int64_t inner,
                           const float *x, float *y, bool mean) {
  colsum_args p;
  colsum_reduce_plan(outer, len, inner, x, y, mean, &p);
  colsum_launch(be, &p);
}

#endif /* VT_CUDA_SIM */
