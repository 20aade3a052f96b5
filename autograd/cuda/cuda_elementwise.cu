/* Elementwise CUDA kernels: broadcasting binary ops and their gradients (reduced over the
 * broadcast dims), activations and their derivatives. The math is cpu_math.h's, shared with
 * the CPU backend; the same-shape binary ops and the activations take 16-byte loads when
 * their pointers are aligned (vt_for_vec). */
#include "autograd/cuda/cuda_common.cuh"

/* Offsets in a and b of output element i (decoded over the broadcast shape). */
static __device__ __forceinline__ void bcast_offsets(const vt_bcast &bc, int64_t i, int64_t *oa,
                                                     int64_t *ob) {
  int64_t a = 0, b = 0;
  for (int d = bc.ndim - 1; d >= 0; d--) {
    int64_t c = i % bc.shape[d];
    i /= bc.shape[d];
    a += c * bc.sa[d];
    b += c * bc.sb[d];
  }
  *oa = a;
  *ob = b;
}

__global__ void binary_same_kernel(vt_binary_op op, int64_t n, bool vec, const float *a,
                                   const float *b, float *out) {
  vt_for_vec(n, vec, VT_GRID_LANE, VT_GRID_WIDTH, [&](int64_t i, int w) {
    if (w == 1) {
      out[i] = vt_binary_f(op, a[i], b[i]);
      return;
    }
    vt_f4 x = vt_ld4(a + i), y = vt_ld4(b + i), o;
    for (int e = 0; e < 4; e++) o.f[e] = vt_binary_f(op, x.f[e], y.f[e]);
    vt_st4(out + i, o);
  });
}

__global__ void binary_bcast_kernel(vt_binary_op op, vt_bcast bc, int64_t n, const float *a,
                                    const float *b, float *out) {
  VT_GRID_STRIDE(i, n) {
    int64_t oa, ob;
    bcast_offsets(bc, i, &oa, &ob);
    out[i] = vt_binary_f(op, a[oa], b[ob]);
  }
}

static int64_t bcast_numel(const vt_bcast *bc) {
  int64_t n = 1;
  for (int d = 0; d < bc->ndim; d++) n *= bc->shape[d];
  return n;
}

/* Whether strides s are the contiguous strides of the broadcast shape (no broadcasting). */
static bool bcast_dense(const vt_bcast *bc, const int64_t *s) {
  int64_t want = 1;
  for (int d = bc->ndim - 1; d >= 0; d--) {
    if (bc->shape[d] != 1 && s[d] != want) return false;
    want *= bc->shape[d];
  }
  return true;
}

void vt_cuda_binary(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                    const float *b, float *out) {
  int64_t n = bcast_numel(bc);
  if (n <= 0) return;
  if (bcast_dense(bc, bc->sa) && bcast_dense(bc, bc->sb)) {
    bool vec = vt_cuda_flat_vec(a, b, out, NULL);
    binary_same_kernel<<<VT_VEC_BLOCKS(be, n, vec), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(op, n, vec,
                                                                                         a, b, out);
  } else if (!vt_cuda_binary_rows(be, op, bc, a, b, out)) { /* cuda_rows.cu: float4 rows */
    binary_bcast_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                          VT_STREAM(be)>>>(op, *bc, n, a, b, out);
  }
  VT_CUDA_LAUNCHED();
}

/* The gradient of one operand X splits the output dims into kept ones (X's own) and reduced
 * ones (broadcast in X: stride 0, size > 1). Element j of X sums over the reduced index space;
 * each dim carries its strides in out, a and b. */
typedef struct {
  int n;
  int64_t shape[VT_MAX_DIMS], so[VT_MAX_DIMS], sa[VT_MAX_DIMS], sb[VT_MAX_DIMS];
} dim_set;

typedef struct {
  dim_set keep, red;
} grad_plan;

static __device__ __forceinline__ void dims_offsets(const dim_set &s, int64_t i, int64_t *o,
                                                    int64_t *a, int64_t *b) {
  int64_t po = 0, pa = 0, pb = 0;
  for (int d = s.n - 1; d >= 0; d--) {
    int64_t c = i % s.shape[d];
    i /= s.shape[d];
    po += c * s.so[d];
    pa += c * s.sa[d];
    pb += c * s.sb[d];
  }
  *o = po;
  *a = pa;
  *b = pb;
}

/* One thread per element of X, summing the reduced dims in order (as the CPU does). Reads
 * are coalesced when the reduced dims are outer ones (e.g. a bias over rows). */
__global__ void grad_thread_kernel(vt_binary_op op, int which, grad_plan p, int64_t nx, int64_t nr,
                                   const float *a, const float *b, const float *dout, float *dst) {
  VT_GRID_STRIDE(j, nx) {
    int64_t ko, ka, kb;
    dims_offsets(p.keep, j, &ko, &ka, &kb);
    float acc = 0.0f;
    for (int64_t r = 0; r < nr; r++) {
      int64_t ro = 0, ra = 0, rb = 0;
      if (p.red.n) dims_offsets(p.red, r, &ro, &ra, &rb);
      acc += vt_binary_grad(op, which, a[ka + ra], b[kb + rb], dout[ko + ro]);
    }
    dst[which ? kb : ka] += acc;
  }
}

/* One block per element of X (and per chunk of the reduced space when X has few elements):
 * reads are coalesced when the last dim is reduced (e.g. a [N, 1] operand). With several
 * chunks each block writes its partial sum to part[j * chunks + chunk] and grad_chunks_kernel
 * adds them in chunk order: the same bits on every run (no atomics). */
__global__ void grad_block_kernel(vt_binary_op op, int which, grad_plan p, int64_t nr,
                                  int64_t chunk, const float *a, const float *b, const float *dout,
                                  float *dst, double *part) {
  __shared__ float shared[32];
  int64_t j = blockIdx.x;
  int64_t r0 = (int64_t)blockIdx.y * chunk, r1 = r0 + chunk < nr ? r0 + chunk : nr;
  int64_t ko, ka, kb;
  dims_offsets(p.keep, j, &ko, &ka, &kb);
  float acc = 0.0f;
  for (int64_t r = r0 + threadIdx.x; r < r1; r += blockDim.x) {
    int64_t ro, ra, rb;
    dims_offsets(p.red, r, &ro, &ra, &rb);
    acc += vt_binary_grad(op, which, a[ka + ra], b[kb + rb], dout[ko + ro]);
  }
  acc = vt_block_sum(acc, shared);
  if (threadIdx.x == 0) {
    if (gridDim.y > 1)
      part[j * gridDim.y + blockIdx.y] = acc;
    else
      dst[which ? kb : ka] += acc;
  }
}

__global__ void grad_chunks_kernel(int which, grad_plan p, int64_t nx, int64_t chunks,
                                   const double *part, float *dst) {
  VT_GRID_STRIDE(j, nx) {
    int64_t ko, ka, kb;
    dims_offsets(p.keep, j, &ko, &ka, &kb);
    float acc = 0.0f;
    for (int64_t c = 0; c < chunks; c++) acc += (float)part[j * chunks + c];
    dst[which ? kb : ka] += acc;
  }
}

static void grad_into(const vt_backend *be, vt_binary_op op, int which, const vt_bcast *bc,
                      const float *a, const float *b, const float *dout, float *dst) {
  if (vt_cuda_colsum_grad(be, op, which, bc, a, b, dout, dst)) return; /* a bias over rows */
  const int64_t *s = which ? bc->sb : bc->sa;
  int64_t so[VT_MAX_DIMS], nx = 1, nr = 1;
  int64_t stride = 1;
  for (int d = bc->ndim - 1; d >= 0; d--) {
    so[d] = stride;
    stride *= bc->shape[d];
  }
  grad_plan p;
  p.keep.n = p.red.n = 0;
  bool last_reduced = false;
  for (int d = 0; d < bc->ndim; d++) {
    bool red = s[d] == 0 && bc->shape[d] > 1;
    dim_set *ds = red ? &p.red : &p.keep;
    ds->shape[ds->n] = bc->shape[d];
    ds->so[ds->n] = so[d];
    ds->sa[ds->n] = bc->sa[d];
    ds->sb[ds->n] = bc->sb[d];
    ds->n++;
    if (red)
      nr *= bc->shape[d];
    else
      nx *= bc->shape[d];
    last_reduced = red;
  }
  if (nx <= 0 || nr <= 0) return;
  if (nr == 1 || (!last_reduced && nx >= (int64_t)vt_cuda_of(be)->num_sms * 64)) {
    grad_thread_kernel<<<vt_cuda_blocks(be, nx, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                         VT_STREAM(be)>>>(op, which, p, nx, nr, a, b, dout, dst);
  } else {
    int threads = nr >= 4096 ? 256 : nr >= 512 ? 128 : 32;
    /* Few elements with long reductions: split each over chunks (partials added in order). */
    int64_t want = ((int64_t)vt_cuda_of(be)->num_sms * 8 + nx - 1) / nx;
    int64_t max_chunks = (nr + threads * 16 - 1) / (threads * 16);
    int64_t chunks = want < max_chunks ? want : max_chunks;
    if (chunks > 65535) chunks = 65535;
    if (chunks < 1) chunks = 1;
    int64_t chunk = (nr + chunks - 1) / chunks;
    chunks = (nr + chunk - 1) / chunk;
    if (nx > INT32_MAX) vt_cuda_die(__FILE__, __LINE__, "binary_backward", "too many elements");
    dim3 grid((unsigned)nx, (unsigned)chunks);
    double *part = chunks > 1 ? vt_cuda_red_scratch(be, (size_t)(nx * chunks)) : NULL;
    grad_block_kernel<<<grid, threads, 0, VT_STREAM(be)>>>(op, which, p, nr, chunk, a, b, dout, dst,
                                                           part);
    if (chunks > 1) {
      VT_CUDA_LAUNCHED();
      grad_chunks_kernel<<<vt_cuda_blocks(be, nx, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                           VT_STREAM(be)>>>(which, p, nx, chunks, part, dst);
    }
  }
  VT_CUDA_LAUNCHED();
}

void vt_cuda_binary_backward(const vt_backend *be, vt_binary_op op, const vt_bcast *bc,
                             const float *a, const float *b, const float *dout, float *da,
                             float *db) {
  if (da) grad_into(be, op, 0, bc, a, b, dout, da);
  if (db) grad_into(be, op, 1, bc, a, b, dout, db);
}

__global__ void unary_kernel(vt_unary_op op, int64_t n, bool vec, float alpha, const float *x,
                             float *y) {
  vt_for_vec(n, vec, VT_GRID_LANE, VT_GRID_WIDTH, [&](int64_t i, int w) {
    if (w == 1) {
      y[i] = vt_unary_f(op, alpha, x[i]);
      return;
    }
    vt_f4 a = vt_ld4(x + i), o;
    for (int e = 0; e < 4; e++) o.f[e] = vt_unary_f(op, alpha, a.f[e]);
    vt_st4(y + i, o);
  });
}

__global__ void unary_backward_kernel(vt_unary_op op, int64_t n, bool vec, float alpha,
                                      const float *x, const float *y, const float *dy, float *dx) {
  vt_for_vec(n, vec, VT_GRID_LANE, VT_GRID_WIDTH, [&](int64_t i, int w) {
    if (w == 1) {
      dx[i] += dy[i] * vt_unary_df(op, alpha, x[i], y ? y[i] : 0.0f);
      return;
    }
    vt_f4 a = vt_ld4(x + i), g = vt_ld4(dy + i), o = vt_ld4(dx + i), b;
    if (y) b = vt_ld4(y + i);
    for (int e = 0; e < 4; e++)
      o.f[e] += g.f[e] * vt_unary_df(op, alpha, a.f[e], y ? b.f[e] : 0.0f);
    vt_st4(dx + i, o);
  });
}

void vt_cuda_unary(const vt_backend *be, vt_unary_op op, int64_t n, float alpha, const float *x,
                   float *y) {
  if (n <= 0) return;
  bool vec = vt_cuda_flat_vec(x, y, NULL, NULL);
  unary_kernel<<<VT_VEC_BLOCKS(be, n, vec), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(op, n, vec, alpha,
                                                                                 x, y);
  VT_CUDA_LAUNCHED();
}

void vt_cuda_unary_backward(const vt_backend *be, vt_unary_op op, int64_t n, float alpha,
                            const float *x, const float *y, const float *dy, float *dx) {
  if (n <= 0) return;
  bool vec = vt_cuda_flat_vec(x, y, dy, dx);
  unary_backward_kernel<<<VT_VEC_BLOCKS(be, n, vec), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      op, n, vec, alpha, x, y, dy, dx);
  VT_CUDA_LAUNCHED();
}
