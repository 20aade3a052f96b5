/* The backend interface: a small vtable of kernels per device (ggml-style). Autograd code
 * (what to save, which gradient formula) is written once in autograd/ops_*.c and calls these.
 * All float kernels work on contiguous f32 data; "accumulate" kernels add into their output,
 * which is how gradients flow. Pointers are device pointers of that backend. */
#ifndef VT_BACKEND_H
#define VT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/dtype.h"
#include "autograd/tensor.h"

typedef enum { VT_BIN_ADD, VT_BIN_SUB, VT_BIN_MUL, VT_BIN_DIV } vt_binary_op;

typedef enum {
  VT_UN_SCALE, /* y = alpha * x */
  VT_UN_GELU_TANH,
  VT_UN_GELU_ERF,
  VT_UN_SILU,
  VT_UN_RELU,
  VT_UN_LEAKY_RELU, /* alpha = negative slope */
  VT_UN_TANH,
  VT_UN_SIGMOID,
  VT_UN_COUNT
} vt_unary_op;

typedef enum { VT_RED_SUM, VT_RED_MEAN, VT_RED_MAX } vt_reduce_op;

typedef enum { VT_COPY_H2D, VT_COPY_D2H, VT_COPY_D2D } vt_copy_kind;

/* Epilogues fused into a GEMM (gemm_epilogue): + bias per column, then optionally GELU (the
 * tanh form, vt_unary_f's VT_UN_GELU_TANH). */
typedef enum { VT_EPI_BIAS = 1, VT_EPI_BIAS_GELU } vt_gemm_epilogue;

/* Broadcast layout of a binary op: out is contiguous with `shape`; a and b are read with
 * element strides sa/sb, a stride of 0 marks a broadcast dimension. */
typedef struct {
  int ndim;
  int64_t shape[VT_MAX_DIMS];
  int64_t sa[VT_MAX_DIMS];
  int64_t sb[VT_MAX_DIMS];
} vt_bcast;

/* Kernel families added by later op groups; each is defined in autograd/kernels_<family>.h
 * and implemented per device (autograd/cpu/cpu_<family>.c, autograd/cuda/cuda_<family>.cu).
 * A NULL family (or member) means the device lacks those kernels; ops then fail with an
 * error naming the family (vt_backend_family_name). The core members above every backend
 * fills. */
struct vt_norm_kernels;
struct vt_conv_kernels;
struct vt_attn_kernels;
struct vt_loss_kernels;
struct vt_optim_kernels;
struct vt_spectral_kernels;

typedef struct vt_backend vt_backend;

struct vt_backend {
  const char *name;
  vt_device device;
  void *impl; /* the instance's own state (CUDA: stream, cuBLAS handle); NULL on the CPU */
  void *(*alloc)(const vt_backend *be, size_t bytes); /* NULL on failure */
  void (*free)(const vt_backend *be, void *p);
  /* D2D copies may overlap (memmove semantics): recompute moves a tensor down the arena. */
  void (*copy)(const vt_backend *be, void *dst, const void *src, size_t bytes, vt_copy_kind kind);
  void (*fill)(const vt_backend *be, float *x, int64_t n, float v);
  void (*convert)(const vt_backend *be, vt_dtype from, vt_dtype to, int64_t n, const void *src,
                  void *dst);
  /* f32 -> bf16 with stochastic rounding: dst[i] = vt_f32_to_bf16_sr(src[i],
   * vt_sr_bits(key, index0 + i)) (autograd/kernels_optim.h), so the bits depend only on the key
   * and the element's flat index. NULL: the device rounds to nearest only. */
  void (*convert_sr)(const vt_backend *be, int64_t n, const float *src, uint16_t *dst, uint64_t key,
                     uint64_t index0);
  /* c[i] = alpha * op(a[i]) @ op(b[i]) + beta * c[i] for i < batch, row-major, where op(a)
   * is m x k and op(b) is k x n; a stride of 0 reuses the same matrix for every i. a and b
   * hold elements of dtype `in` (VT_F32 or VT_BF16, the same for both); products accumulate
   * in f32 and c is f32. Leading dimensions and strides count elements. */
  void (*gemm)(const vt_backend *be, vt_dtype in, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
               float alpha, const void *a, int64_t lda, int64_t stride_a, const void *b,
               int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c,
               int64_t batch);
  /* Whether gemm with in = VT_BF16 runs on bf16 units of this device (else it is exact but
   * slow, or emulated). Writes the kernel and ISA, or what is missing, into buf. NULL: no
   * fast bf16 GEMM. Mixed precision (vt_ctx_set_gemm_dtype) refuses to start without it.
   * A device takes part in bf16 mixed precision with three members: this one, gemm with
   * in = VT_BF16, and convert F32 -> BF16 (the parameter store's weight copies after each
   * optimizer step and every GEMM's converted activations go through it); nothing else
   * changes per device. */
  bool (*gemm_bf16_info)(const vt_backend *be, char *buf, size_t len);
  /* gemm with bf16 a and b writing a bf16 c, for a product whose readers take bf16 only:
   * c[i] = bf16(alpha op(a[i]) op(b[i]) + bias) (batch, sizes, leading dimensions and strides
   * as in gemm; beta 0, c is written, never read; stride_c is not 0 when batch > 1): the
   * products accumulate in f32, bias (f32 per column of c, NULL for none; alpha is 1 with a
   * bias) is added to the f32 sum, and that is rounded once to nearest even, so c equals gemm
   * followed by the bias's broadcast add and convert F32 -> BF16. False, with nothing written,
   * when the device cannot run it (out of scratch memory). NULL: the device writes f32 GEMM
   * outputs only; ops then run gemm and convert. */
  bool (*gemm_bf16_out)(const vt_backend *be, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                        float alpha, const uint16_t *a, int64_t lda, int64_t stride_a,
                        const uint16_t *b, int64_t ldb, int64_t stride_b, const float *bias,
                        uint16_t *c, int64_t ldc, int64_t stride_c, int64_t batch);
  /* One product with its epilogue fused (a linear layer's forward, vt_linear): row-major
   * c[i, j] = (op(a) op(b))[i, j] + bias[j] for the m x n c (ld ldc), a and b as in gemm
   * (batch 1, alpha 1, beta 0); VT_EPI_BIAS_GELU then writes that sum to aux (same layout)
   * and c = GELU(sum). The sum is rounded to f32 once before the bias is added, so on the CPU
   * the result equals gemm followed by a broadcast add bit for bit. NULL: ops run gemm and
   * the add separately. */
  void (*gemm_epilogue)(const vt_backend *be, vt_dtype in, bool ta, bool tb, int64_t m, int64_t n,
                        int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                        const float *bias, vt_gemm_epilogue epi, float *c, int64_t ldc, float *aux);
  void (*binary)(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                 const float *b, float *out);
  /* da += d out/d a, reduced over a's broadcast dims; likewise db. Either may be NULL. */
  void (*binary_backward)(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                          const float *b, const float *dout, float *da, float *db);
  void (*unary)(const vt_backend *be, vt_unary_op op, int64_t n, float alpha, const float *x,
                float *y);
  /* dx += dy * f'(x); y = f(x) is given for ops whose derivative reads it. */
  void (*unary_backward)(const vt_backend *be, vt_unary_op op, int64_t n, float alpha,
                         const float *x, const float *y, const float *dy, float *dx);
  /* SwiGLU over a packed gate/up projection: x [rows, 2 f] (per row f gate values, then f up
   * values) -> y [rows, f] = silu(gate) * up, the SiLU as `unary` computes it. NULL (a device
   * without it): ops compose slice, SiLU and mul instead. */
  void (*swiglu)(const vt_backend *be, int64_t rows, int64_t f, const float *x, float *y);
  /* dx (+)= the gradient of both halves of x from dy; accumulate false overwrites all of dx. */
  void (*swiglu_backward)(const vt_backend *be, int64_t rows, int64_t f, const float *x,
                          const float *dy, float *dx, bool accumulate);
  /* The two above with x in bf16 (the projection stored once in bf16 under mixed precision,
   * vt_lowp_store), the same arithmetic on the widened values. NULL: the op widens x into
   * scratch for the f32 kernels. */
  void (*swiglu_bf16)(const vt_backend *be, int64_t rows, int64_t f, const uint16_t *x, float *y);
  void (*swiglu_backward_bf16)(const vt_backend *be, int64_t rows, int64_t f, const uint16_t *x,
                               const float *dy, float *dx, bool accumulate);
  void (*axpy)(const vt_backend *be, int64_t n, float alpha, const float *x,
               float *y); /* y += alpha * x */
  /* x viewed as [outer, len, inner], reduced over len into y [outer, inner]; for MAX the
   * argmax (index in len) is written to arg. */
  void (*reduce)(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len, int64_t inner,
                 const float *x, float *y, int32_t *arg);
  void (*reduce_backward)(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                          int64_t inner, const float *dy, const int32_t *arg, float *dx);
  /* softmax (or log-softmax) over the last dim of [rows, cols] */
  void (*softmax)(const vt_backend *be, bool log, int64_t rows, int64_t cols, const float *x,
                  float *y);
  void (*softmax_backward)(const vt_backend *be, bool log, int64_t rows, int64_t cols,
                           const float *y, const float *dy, float *dx);
  /* dst[i] (+)= src[i] over an n-d index space with element strides (elem_size bytes per
   * element; accumulate only for f32). Serves permute, slice, concat and their gradients. */
  void (*strided_copy)(const vt_backend *be, int ndim, const int64_t *shape, const void *src,
                       const int64_t *src_strides, void *dst, const int64_t *dst_strides,
                       size_t elem_size, bool accumulate);
  /* Over [outer, n, inner] layouts: dst[o, i, :] = src[o, idx[i], :] (select),
   * dst[o, idx[i], :] += src[o, i, :] (add), dst[o, idx[i], :] = src[o, i, :] (copy),
   * dst[o, idx[i], :] = 0 (zero). */
  void (*index_select)(const vt_backend *be, int64_t outer, int64_t n_src, int64_t inner,
                       const float *src, const int32_t *idx, int64_t n_idx, float *dst);
  void (*index_add)(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                    const float *src, const int32_t *idx, int64_t n_idx, float *dst);
  void (*index_copy)(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                     const float *src, const int32_t *idx, int64_t n_idx, float *dst);
  void (*index_zero)(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                     const int32_t *idx, int64_t n_idx, float *dst);
  /* Position of the first index outside [0, limit), or -1 when all are in range. */
  int64_t (*index_check)(const vt_backend *be, const int32_t *idx, int64_t n, int64_t limit);
  void (*synchronize)(const vt_backend *be);
  /* Memory given back by range and taken again: the parameter store's f32 values, whose
   * masters bf16 ZeRO shards over ranks (vt_params_shard_masters). alloc_releasable is alloc
   * for a buffer whose ranges may be released (freed with free); NULL: alloc serves.
   * release_range gives the system the memory of the whole granules (CPU pages, CUDA VMM
   * chunks) that lie inside bytes [off, off + len) of buffer p, and returns false where it
   * cannot (then nothing was released); those bytes are not touched again until commit_range
   * takes memory back for every released granule that [off, off + len) meets (they read as
   * zeros) and returns false when it cannot have it (out of memory). NULL release_range:
   * the device never releases (the store sets the values to NaN instead). */
  void *(*alloc_releasable)(const vt_backend *be, size_t bytes);
  bool (*release_range)(const vt_backend *be, void *p, size_t off, size_t len);
  bool (*commit_range)(const vt_backend *be, void *p, size_t off, size_t len);
  /* Frees the instance itself (vt_backend_free); NULL for a shared instance (the CPU's). */
  void (*release)(const vt_backend *be);
  const struct vt_norm_kernels *norm;         /* norms, RoPE, dropout, weight norm, VQ */
  const struct vt_conv_kernels *conv;         /* conv1d/2d, conv-transpose1d, pixel shuffle */
  const struct vt_attn_kernels *attn;         /* fused (flash-style) attention */
  const struct vt_loss_kernels *loss;         /* cross-entropy, CTC and the other losses */
  const struct vt_optim_kernels *optim;       /* optimizer updates, norms of flat buffers */
  const struct vt_spectral_kernels *spectral; /* STFT and its adjoint, magnitudes, log */
};

/* The kernel families, for messages and for tests that walk them. */
typedef enum {
  VT_FAMILY_NORM,
  VT_FAMILY_CONV,
  VT_FAMILY_ATTN,
  VT_FAMILY_LOSS,
  VT_FAMILY_OPTIM,
  VT_FAMILY_SPECTRAL,
  VT_FAMILY_COUNT
} vt_kernel_family;

const char *vt_backend_family_name(vt_kernel_family f); /* "norm", "conv", ... */
bool vt_backend_has_family(const vt_backend *be, vt_kernel_family f);

/* Backend instances. Every kernel receives the instance it was called through, so a device
 * may keep per-instance state (ggml's backend contexts): a CUDA instance owns its stream and
 * cuBLAS handle, and work queued through one instance runs in order. Tensors and buffers that
 * ops combine (a ctx and the parameter store it reads) should share one instance.
 * The CPU instance is stateless and shared: never freed. */
const vt_backend *vt_backend_cpu(void);
/* A new instance on cuda:device_index with its own stream and cuBLAS handle, released with
 * vt_backend_free. NULL when the build has no CUDA backend or no GPU is usable; *why says
 * which. */
vt_backend *vt_backend_cuda(int device_index, const char **why);
/* A new instance for a device (the shared one for the CPU); NULL with *why when unusable. */
const vt_backend *vt_backend_for(vt_device device, const char **why);
/* Releases an instance from vt_backend_cuda / vt_backend_for after synchronising it; the CPU
 * instance and NULL are ignored. Memory allocated through it must be freed first. */
void vt_backend_free(const vt_backend *be);
/* Number of usable GPUs (0 without a CUDA build). */
int vt_cuda_device_count(void);

/* Device buffers for the layers above autograd/ (optimizer moments, staging, flat buffers):
 * allocation, fills and host copies go through these, so no upper layer dereferences device
 * memory or calls the vtable itself. Host copies are complete when they return. */
void *vt_buf_alloc(const vt_backend *be, size_t bytes); /* NULL when out of memory */
void *vt_buf_alloc_zeroed(const vt_backend *be, size_t bytes);
void vt_buf_free(const vt_backend *be, void *dev); /* NULL is fine */
void vt_buf_to_host(const vt_backend *be, void *host, const void *dev, size_t bytes);
void vt_buf_from_host(const vt_backend *be, void *dev, const void *host, size_t bytes);
void vt_buf_fill_f32(const vt_backend *be, float *dev, int64_t n, float value);
/* The instance's stream (a cudaStream_t on CUDA; NULL on the CPU), for code that orders its
 * own work after the instance's, e.g. NCCL collectives on a communication stream. */
void *vt_backend_stream(const vt_backend *be);
/* be->gemm_bf16_info, or false with "the <name> backend has no bf16 GEMM" when NULL. */
bool vt_backend_bf16_gemm(const vt_backend *be, char *buf, size_t len);
/* Waits until everything queued on the backend has finished. */
void vt_backend_sync(const vt_backend *be);

#endif
