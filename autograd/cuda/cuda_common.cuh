/* Shared declarations of the CUDA backend: error checks, the per-instance state (stream,
 * cuBLAS handle, scratch), launch helpers and the kernels each autograd/cuda/cuda_*.cu defines.
 * Only the .cu files include this; everything else reaches the kernels through vt_backend. */
#ifndef VT_CUDA_COMMON_CUH
#define VT_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The project headers are C: give their functions C linkage when compiled as CUDA C++. The
 * system headers they include come first, above, so no C++ header lands inside extern "C". */
#include "autograd/cuda/cuda_vec.cuh"

extern "C" {
#include "autograd/backend.h"
#include "autograd/cpu/cpu_math.h"
#include "autograd/kernels_attn.h"
#include "autograd/kernels_optim.h"
}

/* A failing CUDA or cuBLAS call is a broken invariant (bad input is rejected by the ops before
 * kernels run): report where and abort. */
#define VT_CUDA_CHECK(call)                                                                        \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) vt_cuda_die(__FILE__, __LINE__, #call, cudaGetErrorString(e_));         \
  } while (0)

#define VT_CUBLAS_CHECK(call)                                                                      \
  do {                                                                                             \
    cublasStatus_t s_ = (call);                                                                    \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                               \
      vt_cuda_die(__FILE__, __LINE__, #call, cublasGetStatusString(s_));                           \
  } while (0)

/* Checks the launch of the kernel just queued (configuration errors surface here; faults inside
 * the kernel surface at the next synchronising call, which is checked too). */
#define VT_CUDA_LAUNCHED() VT_CUDA_CHECK(cudaGetLastError())

[[noreturn]] void vt_cuda_die(const char *file, int line, const char *what, const char *msg);

/* The state of one backend instance (vt_backend.impl): its own stream, cuBLAS handle and
 * scratch, so instances never share mutable state; the device's CUDA context is the only
 * process-wide state. Kernels run on the calling thread's current device, which
 * vt_backend_cuda sets to the instance's. */
typedef struct {
  int device;
  cudaStream_t stream;         /* every kernel, copy and GEMM of the instance is queued here */
  cublasHandle_t cublas;       /* full FP32 math (no TF32) for f32 GEMMs */
  unsigned long long *scratch; /* 8 device bytes for index_check */
  int num_sms;
  bool pool;             /* the device has stream-ordered memory pools (cudaMallocAsync) */
  double *red;           /* scratch of two-pass deterministic column sums (cuda_norm.cu) */
  size_t red_n;          /* its size in doubles (grown on demand) */
  double *partials;      /* VT_CUDA_PARTIALS device doubles: fixed-order partial sums */
  double *partials_host; /* their pinned host copy */
  /* Pinned host staging for host <-> device copies: two halves, so one chunk is copied on
   * the host while the other is in flight. */
  char *staging;
  cudaEvent_t staged[2];
  /* cuBLASLt for the bf16 GEMMs: handle, workspace, and the algorithms chosen per shape */
  cublasLtHandle_t lt;
  void *lt_ws;
  struct vt_cuda_lt_plan *lt_plans; /* VT_CUDA_LT_PLANS slots, cuda_backend.cu */
  struct vt_cuda_vmm *vmm;          /* the releasable buffers it allocated (cuda_vmm.cu) */
} vt_cuda_inst;

static inline vt_cuda_inst *vt_cuda_of(const vt_backend *be) { return (vt_cuda_inst *)be->impl; }
#define VT_STREAM(be) (vt_cuda_of(be)->stream)

#define VT_CUDA_THREADS 256
#define VT_CUDA_PARTIALS 256
#define VT_CUDA_LT_WS ((size_t)32 << 20) /* cuBLASLt workspace bytes */
#define VT_CUDA_LT_PLANS 128
#define VT_CUDA_STAGING ((size_t)4 << 20) /* bytes per half of the staging buffer */

/* VT_CUDA_SIMPLE=1 (any value but empty or "0") bypasses the fast kernels (flash attention,
 * cuBLASLt epilogues, the vectorised elementwise paths) for the simple ones they replaced, so
 * a broken fast kernel can be ruled out on a GPU without a rebuild. Read at each call: tests
 * switch it within one process. */
static inline bool vt_cuda_simple_kernels(void) {
  const char *s = getenv("VT_CUDA_SIMPLE");
  return s && *s && strcmp(s, "0") != 0;
}

/* Whether a flat elementwise pass takes 16-byte loads (cuda_vec.cuh): aligned pointers (NULL
 * counts as aligned, pass NULL for unused slots), unless VT_CUDA_SIMPLE. */
static inline bool vt_cuda_flat_vec(const void *a, const void *b, const void *c, const void *d) {
  return !vt_cuda_simple_kernels() && vt_cuda_al16(a) && vt_cuda_al16(b) && vt_cuda_al16(c) &&
         vt_cuda_al16(d);
}

/* The same for a row kernel's elementwise passes: rows of whole groups of 4 too. The row
 * statistics' loops stay one float per thread and step, so their summation order and bits are
 * unchanged. */
static inline bool vt_cuda_rows_vec(int64_t cols, const void *a, const void *b, const void *c) {
  return cols % 4 == 0 && vt_cuda_flat_vec(a, b, c, NULL);
}

/* Flash attention on tensor cores (cuda_attn_flash.cu): whether it serves this geometry and
 * these pointers (bf16 allowed, head dims 64/128, 16-byte aligned), and its kernels; Dl is the
 * backward's dout . out per row. */
bool vt_cuda_flash_fits(const vt_attn_geom *g, const void *const *ptrs, int n);
void vt_cuda_flash_forward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                           const float *k, const float *v, float *out, float *lse);
void vt_cuda_flash_backward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                            const float *k, const float *v, const float *dout, const float *lse,
                            const float *Dl, float *dq, float *dk, float *dv, float *dbias);

/* Blocks for a grid-stride loop over n items: enough to fill the GPU, never more than needed. */
static inline unsigned vt_cuda_blocks(const vt_backend *be, int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  int64_t cap = (int64_t)vt_cuda_of(be)->num_sms * 32;
  if (b > cap) b = cap;
  return (unsigned)(b < 1 ? 1 : b);
}

#define VT_GRID_STRIDE(i, n)                                                                       \
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
       i += (int64_t)blockDim.x * gridDim.x)

/* The same over a grid-stride loop of the whole grid. */
#define VT_GRID_LANE ((int64_t)blockIdx.x * blockDim.x + threadIdx.x)
#define VT_GRID_WIDTH ((int64_t)blockDim.x * gridDim.x)

/* Blocks for n elements taken 4 at a time when vec. */
#define VT_VEC_BLOCKS(be, n, vec) vt_cuda_blocks(be, (vec) ? ((n) + 3) / 4 : (n), VT_CUDA_THREADS)

/* cuda_vmm.cu: the releasable buffers behind alloc_releasable, release_range and
 * commit_range (plain memory where the device has no VMM); vmm_free frees p when it is one of
 * them and says whether it was. */
void *vt_cuda_vmm_alloc(const vt_backend *be, size_t bytes);
bool vt_cuda_vmm_free(const vt_backend *be, void *p);
bool vt_cuda_vmm_release_range(const vt_backend *be, void *p, size_t off, size_t len);
bool vt_cuda_vmm_commit_range(const vt_backend *be, void *p, size_t off, size_t len);

/* Kernels of the other files, with the vt_backend signatures. */
void vt_cuda_binary(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                    const float *b, float *out);
void vt_cuda_binary_backward(const vt_backend *be, vt_binary_op op, const vt_bcast *bc,
                             const float *a, const float *b, const float *dout, float *da,
                             float *db);
/* cuda_colsum.cu: deterministic column sums (no atomics, an order fixed by the shape). The
 * gradient of a binary op's operand broadcast over leading dims (a bias); false when the layout
 * does not fit or under VT_CUDA_SIMPLE (the caller's general kernels then serve). */
bool vt_cuda_colsum_grad(const vt_backend *be, vt_binary_op op, int which, const vt_bcast *bc,
                         const float *a, const float *b, const float *dout, float *dst);
/* y[o, j] = sum (mean) over l of x[o, l, j]. */
void vt_cuda_colsum_reduce(const vt_backend *be, int64_t outer, int64_t len, int64_t inner,
                           const float *x, float *y, bool mean);
/* cuda_rows.cu: float4 row kernels of a broadcasting binary op (last dim contiguous or
 * broadcast per operand), index_select and the plain RoPE; false when the layout does not fit
 * or under VT_CUDA_SIMPLE (the caller's scalar kernel then serves). */
bool vt_cuda_binary_rows(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                         const float *b, float *out);
bool vt_cuda_gather_rows(const vt_backend *be, int64_t outer, int64_t n_src, int64_t inner,
                         const float *src, const int32_t *idx, int64_t n_idx, float *dst);
bool vt_cuda_rope_rows(const vt_backend *be, int64_t b, int64_t ho, int64_t t, int64_t hi,
                       int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                       const float *x, float *y, bool inverse);
/* cuda_ce.cu: the cross-entropy rows of the loss table (kernels_loss.h's signatures). */
void vt_cuda_ce_forward(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                        const int32_t *target, int32_t ignore_index, const float *class_w,
                        float *lse, float *nll, float *wrow);
void vt_cuda_ce_backward(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                         const int32_t *target, int32_t ignore_index, const float *class_w,
                         const float *lse, const float *gout, const float *denom, float *dlogits,
                         bool accumulate);
/* cuda_chnorm.cu: GroupNorm and BatchNorm of the norm table (kernels_norm.h's signatures). */
void vt_cuda_group_norm(const vt_backend *be, int64_t n, int64_t c, int64_t s, int64_t groups,
                        float eps, const float *x, const float *w, const float *b, float *y,
                        float *mean, float *rstd);
void vt_cuda_group_norm_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                                 int64_t groups, const float *x, const float *w, const float *mean,
                                 const float *rstd, const float *dy, float *dx, float *dw,
                                 float *db);
void vt_cuda_batch_norm(const vt_backend *be, int64_t n, int64_t c, int64_t s, bool training,
                        float momentum, float eps, const float *x, const float *w, const float *b,
                        float *running_mean, float *running_var, float *y, float *mean,
                        float *rstd);
void vt_cuda_batch_norm_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                                 bool training, const float *x, const float *w, const float *mean,
                                 const float *rstd, const float *dy, float *dx, float *dw,
                                 float *db);
void vt_cuda_unary(const vt_backend *be, vt_unary_op op, int64_t n, float alpha, const float *x,
                   float *y);
void vt_cuda_unary_backward(const vt_backend *be, vt_unary_op op, int64_t n, float alpha,
                            const float *x, const float *y, const float *dy, float *dx);
/* cuda_fused.cu: SwiGLU, RoPE fused with the q/k/v split, and index_add (below). */
void vt_cuda_swiglu(const vt_backend *be, int64_t rows, int64_t f, const float *x, float *y);
void vt_cuda_swiglu_backward(const vt_backend *be, int64_t rows, int64_t f, const float *x,
                             const float *dy, float *dx, bool accumulate);
void vt_cuda_rope_qkv(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                      int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                      const float *x, float *q, float *k, float *v);
void vt_cuda_rope_qkv_backward(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                               int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                               const float *dq, const float *dk, const float *dv, float *dx,
                               bool accumulate);
void vt_cuda_axpy(const vt_backend *be, int64_t n, float alpha, const float *x, float *y);
void vt_cuda_reduce(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                    int64_t inner, const float *x, float *y, int32_t *arg);
void vt_cuda_reduce_backward(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                             int64_t inner, const float *dy, const int32_t *arg, float *dx);
void vt_cuda_softmax(const vt_backend *be, bool log, int64_t rows, int64_t cols, const float *x,
                     float *y);
void vt_cuda_softmax_backward(const vt_backend *be, bool log, int64_t rows, int64_t cols,
                              const float *y, const float *dy, float *dx);
void vt_cuda_strided_copy(const vt_backend *be, int ndim, const int64_t *shape, const void *src,
                          const int64_t *src_strides, void *dst, const int64_t *dst_strides,
                          size_t elem_size, bool accumulate);
void vt_cuda_index_select(const vt_backend *be, int64_t outer, int64_t n_src, int64_t inner,
                          const float *src, const int32_t *idx, int64_t n_idx, float *dst);
void vt_cuda_index_add(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                       const float *src, const int32_t *idx, int64_t n_idx, float *dst);
void vt_cuda_index_copy(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                        const float *src, const int32_t *idx, int64_t n_idx, float *dst);
void vt_cuda_index_zero(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                        const int32_t *idx, int64_t n_idx, float *dst);
int64_t vt_cuda_index_check(const vt_backend *be, const int32_t *idx, int64_t n, int64_t limit);

/* The instance's scratch of at least n doubles for two-pass fixed-order sums (cuda_norm.cu;
 * grown on demand, shared by the kernels of the instance's stream in stream order). */
double *vt_cuda_red_scratch(const vt_backend *be, size_t n);

/* The kernel families, one table per file (cuda_norm.cu, ...), filled by name on first use. */
const struct vt_norm_kernels *vt_cuda_norm_table(void);
const struct vt_conv_kernels *vt_cuda_conv_table(void);
const struct vt_attn_kernels *vt_cuda_attn_table(void);
const struct vt_loss_kernels *vt_cuda_loss_table(void);
const struct vt_optim_kernels *vt_cuda_optim_table(void);
const struct vt_spectral_kernels *vt_cuda_spectral_table(void);

/* Block and grid sizes of the row kernels: one block per row, up to this many blocks (the
 * kernels loop over rows beyond that). */
#define VT_CUDA_MAX_GRID 65535

static inline unsigned vt_cuda_grid(int64_t n) {
  return (unsigned)(n < 1 ? 1 : n > VT_CUDA_MAX_GRID ? VT_CUDA_MAX_GRID : n);
}

/* Warp and block reductions: their own header, so the host emulation of the kernels has them. */
#include "autograd/cuda/cuda_red.cuh"

#endif
