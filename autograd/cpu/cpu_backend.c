/* The CPU backend: OpenBLAS sgemm for f32 matmuls, oneDNN for bf16 ones (cpu_gemm_dnnl.c),
 * OpenMP for the other loops. */
#define _DEFAULT_SOURCE /* madvise */
#include "autograd/cpu/cpu_par.h"
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "autograd/backend.h"
#include "autograd/cpu/cpu_gemm.h"
#include "autograd/cpu/cpu_math.h"
#include "autograd/cpu/cpu_vexp.h"
#include "autograd/cpu/cpu_vgelu.h"
#include "autograd/kernels_optim.h"

/* Loops shorter than this run on one thread: forking costs more than it saves. */
#define PAR_MIN 32768

static void *cpu_alloc(const vt_backend *be, size_t bytes) {
  (void)be;
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64)) return NULL;
  return p;
}

static void cpu_free(const vt_backend *be, void *p) {
  (void)be;
  free(p);
}

/* The whole pages inside the range go back to the system (they read as zeros again, and a
 * later write faults a fresh page in: commit has nothing to do). */
static bool cpu_release_range(const vt_backend *be, void *p, size_t off, size_t len) {
  (void)be;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = ((uintptr_t)p + off + page - 1) / page * page;
  uintptr_t b = ((uintptr_t)p + off + len) / page * page;
  return b <= a || !madvise((void *)a, b - a, MADV_DONTNEED);
}

static bool cpu_commit_range(const vt_backend *be, void *p, size_t off, size_t len) {
  (void)be, (void)p, (void)off, (void)len;
  return true;
}

static void cpu_copy(const vt_backend *be, void *dst, const void *src, size_t bytes,
                     vt_copy_kind kind) {
  (void)be;
  (void)kind;
  if (bytes) memmove(dst, src, bytes);
}

static void cpu_fill(const vt_backend *be, float *x, int64_t n, float v) {
  (void)be;
  if (v == 0.0f) {
    memset(x, 0, (size_t)n * sizeof(float));
    return;
  }
  VT_OMP_IF(n > PAR_MIN, "omp parallel for", for (int64_t i = 0; i < n; i++) x[i] = v;);
}

static float load_f32(vt_dtype t, const void *p, int64_t i) {
  switch (t) {
  case VT_F32: return ((const float *)p)[i];
  case VT_BF16: return vt_bf16_to_f32(((const uint16_t *)p)[i]);
  case VT_F16: return vt_f16_to_f32(((const uint16_t *)p)[i]);
  case VT_I32: return (float)((const int32_t *)p)[i];
  default: return (float)((const int64_t *)p)[i];
  }
}

static void store_f32(vt_dtype t, void *p, int64_t i, float v) {
  switch (t) {
  case VT_F32: ((float *)p)[i] = v; break;
  case VT_BF16: ((uint16_t *)p)[i] = vt_f32_to_bf16(v); break;
  case VT_F16: ((uint16_t *)p)[i] = vt_f32_to_f16(v); break;
  case VT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
  default: ((int64_t *)p)[i] = (int64_t)v; break;
  }
}

/* f32 -> bf16 and back, the conversions of bf16 mixed precision (weight copies after every
 * optimizer step, activations into each GEMM): vectorised clones of dtype.h's rounding. */
VT_SIMD_HOT void f32_to_bf16_rows(int64_t n, const float *restrict src, uint16_t *restrict dst) {
  _Pragma("omp simd") for (int64_t i = 0; i < n; i++) dst[i] = vt_f32_to_bf16(src[i]);
}

/* The widening is spelled out: VT_SIMD_HOT's optimize attribute keeps dtype.h's inline
 * functions from being inlined here, and a call per element does not vectorise. */
VT_SIMD_HOT void bf16_to_f32_rows(int64_t n, const uint16_t *restrict src, float *restrict dst) {
  uint32_t *restrict bits = (uint32_t *)dst;
  _Pragma("omp simd") for (int64_t i = 0; i < n; i++) bits[i] = (uint32_t)src[i] << 16;
}

#define CONVERT_CHUNK 16384

/* Stochastic rounding to bf16: each element's bits come from its own index, so the chunks
 * (and threads) may split the range anyhow. */
static void cpu_convert_sr(const vt_backend *be, int64_t n, const float *src, uint16_t *dst,
                           uint64_t key, uint64_t index0) {
  (void)be;
  int64_t chunks = (n + CONVERT_CHUNK - 1) / CONVERT_CHUNK;
  VT_OMP_IF(
      n > PAR_MIN, "omp parallel for", for (int64_t c = 0; c < chunks; c++) {
        int64_t i0 = c * CONVERT_CHUNK, i1 = n - i0 < CONVERT_CHUNK ? n : i0 + CONVERT_CHUNK;
        for (int64_t i = i0; i < i1; i++)
          dst[i] = vt_f32_to_bf16_sr(src[i], vt_sr_bits(key, index0 + (uint64_t)i));
      });
}

static void cpu_convert(const vt_backend *be, vt_dtype from, vt_dtype to, int64_t n,
                        const void *src, void *dst) {
  (void)be;
  if ((from == VT_F32 && to == VT_BF16) || (from == VT_BF16 && to == VT_F32)) {
    int64_t chunks = (n + CONVERT_CHUNK - 1) / CONVERT_CHUNK;
    bool narrow = from == VT_F32;
    VT_OMP_IF(
        n > PAR_MIN, "omp parallel for", for (int64_t c = 0; c < chunks; c++) {
          int64_t i0 = c * CONVERT_CHUNK, len = n - i0 < CONVERT_CHUNK ? n - i0 : CONVERT_CHUNK;
          if (narrow)
            f32_to_bf16_rows(len, (const float *)src + i0, (uint16_t *)dst + i0);
          else
            bf16_to_f32_rows(len, (const uint16_t *)src + i0, (float *)dst + i0);
        });
    return;
  }
  if (from == to) {
    memmove(dst, src, (size_t)n * vt_dtype_size(from));
    return;
  }
  if (from == VT_I32 && to == VT_I64) {
    for (int64_t i = 0; i < n; i++) ((int64_t *)dst)[i] = ((const int32_t *)src)[i];
    return;
  }
  if (from == VT_I64 && to == VT_I32) {
    for (int64_t i = 0; i < n; i++) ((int32_t *)dst)[i] = (int32_t)((const int64_t *)src)[i];
    return;
  }
  VT_OMP_IF(n > PAR_MIN, "omp parallel for",
            for (int64_t i = 0; i < n; i++) store_f32(to, dst, i, load_f32(from, src, i)););
}

static void sgemm_batch(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                        const float *a, int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                        int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c,
                        int64_t batch) {
  for (int64_t i = 0; i < batch; i++)
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a + i * stride_a, (int)lda, b + i * stride_b,
                (int)ldb, beta, c + i * stride_c, (int)ldc);
}

/* A stored rows x cols bf16 matrix (leading dimension ld) as dense f32. */
static void bf16_panel(const uint16_t *x, int64_t rows, int64_t cols, int64_t ld, float *out) {
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < cols; j++) out[r * cols + j] = vt_bf16_to_f32(x[r * ld + j]);
}

/* bf16 inputs without oneDNN (or a shape it refuses): Debian's OpenBLAS has no sbgemm, so each
 * operand is widened to f32 (exact) and multiplied by sgemm, which accumulates in f32 as the
 * contract says. Correct, not fast. Without memory for the panels a plain loop does the same
 * arithmetic in place. */
static void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                      const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                      int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                      int64_t stride_c, int64_t batch) {
  int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  size_t na = (size_t)(ar * ac), nb = (size_t)(br * bc);
  float *pa = malloc(sizeof(float) * (na + nb + 1));
  if (!pa) {
    for (int64_t i = 0; i < batch; i++)
      for (int64_t r = 0; r < m; r++)
        for (int64_t j = 0; j < n; j++) {
          float acc = 0.0f;
          for (int64_t p = 0; p < k; p++) {
            const uint16_t *ea = a + i * stride_a + (ta ? p * lda + r : r * lda + p);
            const uint16_t *eb = b + i * stride_b + (tb ? j * ldb + p : p * ldb + j);
            acc += vt_bf16_to_f32(*ea) * vt_bf16_to_f32(*eb);
          }
          float *pc = c + i * stride_c + r * ldc + j;
          *pc = alpha * acc + (beta == 0.0f ? 0.0f : beta * *pc);
        }
    return;
  }
  float *pb = pa + na;
  for (int64_t i = 0; i < batch; i++) {
    if (i == 0 || stride_a) bf16_panel(a + i * stride_a, ar, ac, lda, pa);
    if (i == 0 || stride_b) bf16_panel(b + i * stride_b, br, bc, ldb, pb);
    sgemm_batch(ta, tb, m, n, k, alpha, pa, ac > 0 ? ac : 1, 0, pb, bc > 0 ? bc : 1, 0, beta,
                c + i * stride_c, ldc, 0, 1);
  }
  free(pa);
}

static void cpu_gemm(const vt_backend *be, vt_dtype in, bool ta, bool tb, int64_t m, int64_t n,
                     int64_t k, float alpha, const void *a, int64_t lda, int64_t stride_a,
                     const void *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                     int64_t ldc, int64_t stride_c, int64_t batch) {
  (void)be;
  if (in == VT_BF16 && !vt_cpu_dnnl_gemm_bf16(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                              stride_b, beta, c, ldc, stride_c, batch))
    gemm_bf16(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c,
              batch);
  else if (in != VT_BF16)
    sgemm_batch(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c,
                batch);
}

/* oneDNN writes the bf16 c itself; else (no oneDNN, a shape it refuses) the f32 product into
 * scratch, then the bias and the rounding, which is what the contract says c equals. */
static bool cpu_gemm_bf16_out(const vt_backend *be, bool ta, bool tb, int64_t m, int64_t n,
                              int64_t k, float alpha, const uint16_t *a, int64_t lda,
                              int64_t stride_a, const uint16_t *b, int64_t ldb, int64_t stride_b,
                              const float *bias, uint16_t *c, int64_t ldc, int64_t stride_c,
                              int64_t batch) {
  if (vt_cpu_dnnl_gemm_bf16_ex(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, bias, c,
                               true, ldc, stride_c, batch))
    return true;
  if (m <= 0 || n <= 0 || batch <= 0) return true;
  float *t = malloc(sizeof(float) * (size_t)(m * n));
  if (!t) return false;
  for (int64_t i = 0; i < batch; i++) {
    cpu_gemm(be, VT_BF16, ta, tb, m, n, k, alpha, a + i * stride_a, lda, 0, b + i * stride_b, ldb,
             0, 0.0f, t, n, 0, 1);
    uint16_t *ci = c + i * stride_c;
    for (int64_t r = 0; r < m; r++)
      for (int64_t j = 0; j < n; j++)
        ci[r * ldc + j] = vt_f32_to_bf16(bias ? t[r * n + j] + bias[j] : t[r * n + j]);
  }
  free(t);
  return true;
}

static bool cpu_gemm_bf16_info(const vt_backend *be, char *buf, size_t len) {
  (void)be;
  return vt_cpu_bf16_gemm_info(buf, len);
}

/* Offsets of a and b for the start of output row r (row = all dims but the last). */
static void row_offsets(const vt_bcast *bc, int64_t r, int64_t *oa, int64_t *ob) {
  int64_t a = 0, b = 0;
  for (int d = bc->ndim - 2; d >= 0; d--) {
    int64_t c = r % bc->shape[d];
    r /= bc->shape[d];
    a += c * bc->sa[d];
    b += c * bc->sb[d];
  }
  *oa = a;
  *ob = b;
}

static void bcast_rows(const vt_bcast *bc, int64_t *rows, int64_t *cols) {
  *cols = bc->ndim ? bc->shape[bc->ndim - 1] : 1;
  *rows = 1;
  for (int d = 0; d + 1 < bc->ndim; d++) *rows *= bc->shape[d];
}

static void cpu_binary(const vt_backend *be, vt_binary_op op, const vt_bcast *bc, const float *a,
                       const float *b, float *out) {
  (void)be;
  int64_t rows, cols;
  bcast_rows(bc, &rows, &cols);
  int64_t la = bc->ndim ? bc->sa[bc->ndim - 1] : 0, lb = bc->ndim ? bc->sb[bc->ndim - 1] : 0;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        row_offsets(bc, r, &oa, &ob);
        const float *pa = a + oa, *pb = b + ob;
        float *po = out + r * cols;
        if (la == 1 && lb == 1) {
          /* omp simd: out may be a or b (in place) but never a shifted view of them, and GCC's
           * -O2 cost model does not add the alias checks it would need to vectorise otherwise. */
          switch (op) {
          case VT_BIN_ADD:
            _Pragma("omp simd") for (int64_t j = 0; j < cols; j++) po[j] = pa[j] + pb[j];
            break;
          case VT_BIN_SUB:
            _Pragma("omp simd") for (int64_t j = 0; j < cols; j++) po[j] = pa[j] - pb[j];
            break;
          case VT_BIN_MUL:
            _Pragma("omp simd") for (int64_t j = 0; j < cols; j++) po[j] = pa[j] * pb[j];
            break;
          default:
            _Pragma("omp simd") for (int64_t j = 0; j < cols; j++) po[j] = pa[j] / pb[j];
            break;
          }
        } else {
          for (int64_t j = 0; j < cols; j++) po[j] = vt_binary_f(op, pa[j * la], pb[j * lb]);
        }
      });
}

/* Whether distinct output rows write distinct rows of the operand with strides s. */
static bool rows_distinct(const vt_bcast *bc, const int64_t *s) {
  for (int d = 0; d + 1 < bc->ndim; d++)
    if (s[d] == 0 && bc->shape[d] > 1) return false;
  return true;
}

static void grad_into(vt_binary_op op, int which, const vt_bcast *bc, const float *a,
                      const float *b, const float *dout, float *dst) {
  int64_t rows, cols;
  bcast_rows(bc, &rows, &cols);
  const int64_t *s = which ? bc->sb : bc->sa;
  int64_t la = bc->ndim ? bc->sa[bc->ndim - 1] : 0, lb = bc->ndim ? bc->sb[bc->ndim - 1] : 0;
  int64_t ld = which ? lb : la;
  bool par = rows_distinct(bc, s) && rows * cols > PAR_MIN;
  VT_OMP_IF(
      par, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        int64_t oa, ob;
        row_offsets(bc, r, &oa, &ob);
        const float *pa = a + oa, *pb = b + ob, *pd = dout + r * cols;
        float *pt = dst + (which ? ob : oa);
        if (ld == 1 && (op == VT_BIN_ADD || (op == VT_BIN_SUB && !which))) {
          _Pragma("omp simd") for (int64_t j = 0; j < cols; j++) pt[j] += pd[j];
        } else if (op == VT_BIN_MUL && la == 1 && lb == 1) { /* the SwiGLU product's backward */
          const float *po = which ? pa : pb;
          _Pragma("omp simd") for (int64_t j = 0; j < cols; j++) pt[j] += pd[j] * po[j];
        } else if (ld == 0) {
          float acc = 0;
          for (int64_t j = 0; j < cols; j++)
            acc += vt_binary_grad(op, which, pa[j * la], pb[j * lb], pd[j]);
          pt[0] += acc;
        } else {
          for (int64_t j = 0; j < cols; j++)
            pt[j] += vt_binary_grad(op, which, pa[j * la], pb[j * lb], pd[j]);
        }
      });
}

static void cpu_binary_backward(const vt_backend *be, vt_binary_op op, const vt_bcast *bc,
                                const float *a, const float *b, const float *dout, float *da,
                                float *db) {
  (void)be;
  if (da) grad_into(op, 0, bc, a, b, dout, da);
  if (db) grad_into(op, 1, bc, a, b, dout, db);
}

/* SiLU and the sigmoid (about 7% of a Qwen2 step with libm's expf) run in simd lanes with
 * cpu_vexp.h's exp, in blocks spread over the threads; the formulas are cpu_math.h's. The
 * other activations call cpu_math.h per element. */
#define VEC_BLOCK 8192

static bool unary_vectorised(vt_unary_op op) {
  return op == VT_UN_SILU || op == VT_UN_SIGMOID || op == VT_UN_RELU || op == VT_UN_GELU_ERF;
}

VT_SIMD_HOT void unary_vec(vt_unary_op op, int64_t n, const float *x, float *y) {
  if (op == VT_UN_RELU) { /* NaN gives 0, as vt_unary_f */
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0.0f;
  } else if (op == VT_UN_GELU_ERF) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = vt_vgelu_erf(x[i]);
  } else if (op == VT_UN_SILU) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * vt_vsigmoidf(x[i]);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = vt_vsigmoidf(x[i]);
  }
}

/* The sigmoid's derivative comes from y (no exp), SiLU's from the sigmoid of x. */
VT_SIMD_HOT void unary_backward_vec(vt_unary_op op, int64_t n, const float *x, const float *y,
                                    const float *dy, float *dx) {
  if (op == VT_UN_RELU) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (x[i] > 0 ? 1.0f : 0.0f); /* NaN dy: NaN */
  } else if (op == VT_UN_GELU_ERF) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * vt_vgelu_erf_grad(x[i]);
  } else if (op == VT_UN_SILU) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
      float s = vt_vsigmoidf(x[i]);
      dx[i] += dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
    }
  } else {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] += dy[i] * (y[i] * (1.0f - y[i]));
  }
}

static void cpu_unary(const vt_backend *be, vt_unary_op op, int64_t n, float alpha, const float *x,
                      float *y) {
  (void)be;
  if (unary_vectorised(op)) {
    int64_t nb = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    VT_OMP_IF(
        n > PAR_MIN / 4, "omp parallel for", for (int64_t b = 0; b < nb; b++) {
          int64_t i = b * VEC_BLOCK, len = n - i < VEC_BLOCK ? n - i : VEC_BLOCK;
          unary_vec(op, len, x + i, y + i);
        });
    return;
  }
  if (op == VT_UN_LEAKY_RELU) { /* the codec's activation: a select the compiler vectorises */
    VT_OMP_IF(n > PAR_MIN, "omp parallel for simd",
              for (int64_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : alpha * x[i];);
    return;
  }
  VT_OMP_IF(n > PAR_MIN / 4, "omp parallel for",
            for (int64_t i = 0; i < n; i++) y[i] = vt_unary_f(op, alpha, x[i]););
}

static void cpu_unary_backward(const vt_backend *be, vt_unary_op op, int64_t n, float alpha,
                               const float *x, const float *y, const float *dy, float *dx) {
  (void)be;
  if (unary_vectorised(op) && (y || op != VT_UN_SIGMOID)) {
    int64_t nb = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    VT_OMP_IF(
        n > PAR_MIN / 4, "omp parallel for", for (int64_t b = 0; b < nb; b++) {
          int64_t i = b * VEC_BLOCK, len = n - i < VEC_BLOCK ? n - i : VEC_BLOCK;
          unary_backward_vec(op, len, x + i, y ? y + i : NULL, dy + i, dx + i);
        });
    return;
  }
  if (op == VT_UN_LEAKY_RELU) {
    VT_OMP_IF(n > PAR_MIN, "omp parallel for simd",
              for (int64_t i = 0; i < n; i++) dx[i] += x[i] > 0 ? dy[i] : alpha * dy[i];);
    return;
  }
  VT_OMP_IF(n > PAR_MIN / 4, "omp parallel for",
            for (int64_t i = 0; i < n; i++) dx[i] +=
            dy[i] * vt_unary_df(op, alpha, x[i], y ? y[i] : 0.0f););
}

/* SwiGLU on n columns of the packed [gate | up] projection, with the arithmetic of SiLU
 * (unary_vec) followed by the product, so the fused op gives the composition's bits. */
VT_SIMD_HOT void swiglu_span(int64_t n, const float *gate, const float *up, float *y) {
#pragma omp simd
  for (int64_t j = 0; j < n; j++) y[j] = vt_swiglu_f(gate[j], up[j], vt_vsigmoidf(gate[j]));
}

/* The backward of n columns as the composition forms it: d silu = dy * up, then SiLU's
 * derivative; d up = dy * silu(gate). */
VT_SIMD_HOT void swiglu_span_backward(int64_t n, const float *gate, const float *up,
                                      const float *dy, float *dgate, float *dup, bool accumulate) {
  /* two loops: a fresh dx holds whatever the arena held (denormals are slow even unused) */
  if (accumulate) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) {
      float g = gate[j], s = vt_vsigmoidf(g);
      dgate[j] += vt_swiglu_dgate(g, up[j], s, dy[j]);
      dup[j] += vt_swiglu_dup(g, s, dy[j]);
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < n; j++) {
    float g = gate[j], s = vt_vsigmoidf(g);
    dgate[j] = vt_swiglu_dgate(g, up[j], s, dy[j]);
    dup[j] = vt_swiglu_dup(g, s, dy[j]);
  }
}

static void cpu_swiglu(const vt_backend *be, int64_t rows, int64_t f, const float *x, float *y) {
  (void)be;
  VT_OMP_IF(
      rows * f > PAR_MIN / 4, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * 2 * f;
        swiglu_span(f, xr, xr + f, y + r * f);
      });
}

static void cpu_swiglu_backward(const vt_backend *be, int64_t rows, int64_t f, const float *x,
                                const float *dy, float *dx, bool accumulate) {
  (void)be;
  VT_OMP_IF(
      rows * f > PAR_MIN / 4, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * 2 * f;
        float *dr = dx + r * 2 * f;
        swiglu_span_backward(f, xr, xr + f, dy + r * f, dr, dr + f, accumulate);
      });
}

/* bf16 x: each row widened SWIGLU_SPAN columns of gate and up at a time into stack buffers,
 * then the f32 spans above (the same bits as the f32 kernels on the widened x). */
#define SWIGLU_SPAN 512

/* Forward (dy NULL: out = y [rows, f]) or backward (out = dx [rows, 2 f]) on bf16 x. */
static void swiglu_bf16_rows(int64_t rows, int64_t f, const uint16_t *x, const float *dy,
                             float *out, bool accumulate) {
  VT_OMP_IF(
      rows * f > PAR_MIN / 4, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        float g[SWIGLU_SPAN], u[SWIGLU_SPAN];
        for (int64_t j0 = 0; j0 < f; j0 += SWIGLU_SPAN) {
          int64_t n = f - j0 < SWIGLU_SPAN ? f - j0 : SWIGLU_SPAN;
          bf16_to_f32_rows(n, x + r * 2 * f + j0, g);
          bf16_to_f32_rows(n, x + r * 2 * f + f + j0, u);
          if (!dy) {
            swiglu_span(n, g, u, out + r * f + j0);
            continue;
          }
          float *dr = out + r * 2 * f + j0;
          swiglu_span_backward(n, g, u, dy + r * f + j0, dr, dr + f, accumulate);
        }
      });
}

static void cpu_swiglu_bf16(const vt_backend *be, int64_t rows, int64_t f, const uint16_t *x,
                            float *y) {
  (void)be;
  swiglu_bf16_rows(rows, f, x, NULL, y, false);
}

static void cpu_swiglu_backward_bf16(const vt_backend *be, int64_t rows, int64_t f,
                                     const uint16_t *x, const float *dy, float *dx,
                                     bool accumulate) {
  (void)be;
  swiglu_bf16_rows(rows, f, x, dy, dx, accumulate);
}

static void cpu_axpy(const vt_backend *be, int64_t n, float alpha, const float *x, float *y) {
  (void)be;
  VT_OMP_IF(n > PAR_MIN, "omp parallel for simd",
            for (int64_t i = 0; i < n; i++) y[i] += alpha * x[i];);
}

static void cpu_reduce(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                       int64_t inner, const float *x, float *y, int32_t *arg) {
  (void)be;
  VT_OMP_IF(
      outer * len * inner > PAR_MIN, "omp parallel for", for (int64_t o = 0; o < outer; o++) {
        const float *px = x + o * len * inner;
        float *py = y + o * inner;
        if (op == VT_RED_MAX) {
          int32_t *pa = arg + o * inner;
          for (int64_t j = 0; j < inner; j++) {
            py[j] = px[j];
            pa[j] = 0;
          }
          for (int64_t l = 1; l < len; l++)
            for (int64_t j = 0; j < inner; j++) /* NaN wins, as in torch.max */
              if (!(px[l * inner + j] <= py[j]) && !isnan(py[j])) {
                py[j] = px[l * inner + j];
                pa[j] = (int32_t)l;
              }
        } else {
          double scale = op == VT_RED_MEAN ? 1.0 / (double)len : 1.0;
          for (int64_t j = 0; j < inner; j++) py[j] = 0;
          if (inner == 1) {
            double acc = 0;
            for (int64_t l = 0; l < len; l++) acc += px[l];
            py[0] = (float)(acc * scale);
          } else {
            for (int64_t l = 0; l < len; l++)
              for (int64_t j = 0; j < inner; j++) py[j] += px[l * inner + j];
            for (int64_t j = 0; j < inner; j++) py[j] = (float)(py[j] * scale);
          }
        }
      });
}

static void cpu_reduce_backward(const vt_backend *be, vt_reduce_op op, int64_t outer, int64_t len,
                                int64_t inner, const float *dy, const int32_t *arg, float *dx) {
  (void)be;
  float scale = op == VT_RED_MEAN ? 1.0f / (float)len : 1.0f;
  VT_OMP_IF(
      outer * len * inner > PAR_MIN, "omp parallel for", for (int64_t o = 0; o < outer; o++) {
        float *px = dx + o * len * inner;
        const float *py = dy + o * inner;
        if (op == VT_RED_MAX) {
          const int32_t *pa = arg + o * inner;
          for (int64_t j = 0; j < inner; j++) px[(int64_t)pa[j] * inner + j] += py[j];
        } else {
          for (int64_t l = 0; l < len; l++)
            for (int64_t j = 0; j < inner; j++) px[l * inner + j] += py[j] * scale;
        }
      });
}

static void cpu_softmax(const vt_backend *be, bool log, int64_t rows, int64_t cols, const float *x,
                        float *y) {
  (void)be;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *px = x + r * cols;
        float *py = y + r * cols;
        float m = -INFINITY;
        for (int64_t j = 0; j < cols; j++) m = px[j] > m ? px[j] : m;
        if (m == -INFINITY) m = 0; /* a fully masked row: avoid inf - inf */
        double s = 0;
        for (int64_t j = 0; j < cols; j++) s += exp((double)(px[j] - m));
        if (log) {
          float lse = m + (float)logf((float)s);
          for (int64_t j = 0; j < cols; j++) py[j] = px[j] - lse;
        } else {
          float inv = (float)(1.0 / s);
          for (int64_t j = 0; j < cols; j++) py[j] = expf(px[j] - m) * inv;
        }
      });
}

static void cpu_softmax_backward(const vt_backend *be, bool log, int64_t rows, int64_t cols,
                                 const float *y, const float *dy, float *dx) {
  (void)be;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *py = y + r * cols, *pdy = dy + r * cols;
        float *pdx = dx + r * cols;
        double s = 0;
        if (log) {
          for (int64_t j = 0; j < cols; j++) s += pdy[j];
          for (int64_t j = 0; j < cols; j++) pdx[j] += pdy[j] - expf(py[j]) * (float)s;
        } else {
          for (int64_t j = 0; j < cols; j++) s += (double)pdy[j] * py[j];
          for (int64_t j = 0; j < cols; j++) pdx[j] += py[j] * (pdy[j] - (float)s);
        }
      });
}

static void cpu_strided_copy(const vt_backend *be, int ndim, const int64_t *shape, const void *src,
                             const int64_t *src_strides, void *dst, const int64_t *dst_strides,
                             size_t elem_size, bool accumulate) {
  (void)be;
  int64_t cols = ndim ? shape[ndim - 1] : 1, rows = 1;
  for (int d = 0; d + 1 < ndim; d++) rows *= shape[d];
  int64_t ls = ndim ? src_strides[ndim - 1] : 0, ld = ndim ? dst_strides[ndim - 1] : 0;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        int64_t os = 0, od = 0, rr = r;
        for (int d = ndim - 2; d >= 0; d--) {
          int64_t c = rr % shape[d];
          rr /= shape[d];
          os += c * src_strides[d];
          od += c * dst_strides[d];
        }
        if (accumulate) {
          const float *s = (const float *)src + os;
          float *t = (float *)dst + od;
          for (int64_t j = 0; j < cols; j++) t[j * ld] += s[j * ls];
        } else if (ls == 1 && ld == 1) {
          memcpy((char *)dst + od * (int64_t)elem_size, (const char *)src + os * (int64_t)elem_size,
                 (size_t)cols * elem_size);
        } else {
          for (int64_t j = 0; j < cols; j++)
            memcpy((char *)dst + (od + j * ld) * (int64_t)elem_size,
                   (const char *)src + (os + j * ls) * (int64_t)elem_size, elem_size);
        }
      });
}

static void cpu_index_select(const vt_backend *be, int64_t outer, int64_t n_src, int64_t inner,
                             const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  (void)be;
  VT_OMP_IF(outer * n_idx * inner > PAR_MIN, "omp parallel for collapse(2)",
            for (int64_t o = 0; o < outer; o++) for (int64_t i = 0; i < n_idx; i++)
                memcpy(dst + (o * n_idx + i) * inner, src + (o * n_src + idx[i]) * inner,
                       (size_t)inner * sizeof(float)););
}

static void cpu_index_add(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                          const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  (void)be;
  /* Repeated indices add into the same row: split the work by columns, not by index. */
  int64_t block = 256;
  int64_t n_blocks = (inner + block - 1) / block;
  VT_OMP_IF(
      outer * n_idx * inner > PAR_MIN, "omp parallel for collapse(2)",
      for (int64_t o = 0; o < outer; o++) for (int64_t jb = 0; jb < n_blocks; jb++) {
        int64_t j0 = jb * block, j1 = j0 + block < inner ? j0 + block : inner;
        for (int64_t i = 0; i < n_idx; i++) {
          const float *s = src + (o * n_idx + i) * inner;
          float *d = dst + (o * n_dst + idx[i]) * inner;
          for (int64_t j = j0; j < j1; j++) d[j] += s[j];
        }
      });
}

static void cpu_index_copy(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                           const float *src, const int32_t *idx, int64_t n_idx, float *dst) {
  (void)be;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < n_idx; i++)
      memcpy(dst + (o * n_dst + idx[i]) * inner, src + (o * n_idx + i) * inner,
             (size_t)inner * sizeof(float));
}

static void cpu_index_zero(const vt_backend *be, int64_t outer, int64_t n_dst, int64_t inner,
                           const int32_t *idx, int64_t n_idx, float *dst) {
  (void)be;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < n_idx; i++)
      memset(dst + (o * n_dst + idx[i]) * inner, 0, (size_t)inner * sizeof(float));
}

static int64_t cpu_index_check(const vt_backend *be, const int32_t *idx, int64_t n, int64_t limit) {
  (void)be;
  for (int64_t i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= limit) return i;
  return -1;
}

static void cpu_synchronize(const vt_backend *be) { (void)be; }

/* Kernel families, each defined in its own autograd/cpu/cpu_<family>.c. */
extern const struct vt_norm_kernels vt_cpu_norm_kernels;
extern const struct vt_conv_kernels vt_cpu_conv_kernels;
extern const struct vt_attn_kernels vt_cpu_attn_kernels;
extern const struct vt_loss_kernels vt_cpu_loss_kernels;
extern const struct vt_optim_kernels vt_cpu_optim_kernels;
extern const struct vt_spectral_kernels vt_cpu_spectral_kernels;

/* The epilogue after the plain GEMM: the reference semantics of gemm_epilogue. */
static void cpu_gemm_epilogue(const vt_backend *be, vt_dtype in, bool ta, bool tb, int64_t m,
                              int64_t n, int64_t k, const void *a, int64_t lda, const void *b,
                              int64_t ldb, const float *bias, vt_gemm_epilogue epi, float *c,
                              int64_t ldc, float *aux) {
  /* bf16 inputs: oneDNN adds the bias to the f32 sum as it stores c (no second pass) */
  if (in == VT_BF16 && epi == VT_EPI_BIAS &&
      vt_cpu_dnnl_gemm_bf16_ex(ta, tb, m, n, k, 1.0f, a, lda, 0, b, ldb, 0, bias, c, false, ldc, 0,
                               1))
    return;
  cpu_gemm(be, in, ta, tb, m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, c, ldc, 0, 1);
  VT_OMP_IF(
      m * n > PAR_MIN, "omp parallel for", for (int64_t i = 0; i < m; i++) {
        float *row = c + i * ldc;
        for (int64_t j = 0; j < n; j++) {
          float s = row[j] + bias[j];
          if (epi == VT_EPI_BIAS_GELU) {
            aux[i * ldc + j] = s;
            s = vt_unary_f(VT_UN_GELU_TANH, 0.0f, s);
          }
          row[j] = s;
        }
      });
}

static const vt_backend cpu_backend = {
    .name = "cpu",
    .device = {VT_DEV_CPU, 0},
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .convert = cpu_convert,
    .convert_sr = cpu_convert_sr,
    .gemm = cpu_gemm,
    .gemm_bf16_info = cpu_gemm_bf16_info,
    .gemm_bf16_out = cpu_gemm_bf16_out,
    .gemm_epilogue = cpu_gemm_epilogue,
    .binary = cpu_binary,
    .binary_backward = cpu_binary_backward,
    .unary = cpu_unary,
    .unary_backward = cpu_unary_backward,
    .swiglu = cpu_swiglu,
    .swiglu_backward = cpu_swiglu_backward,
    .swiglu_bf16 = cpu_swiglu_bf16,
    .swiglu_backward_bf16 = cpu_swiglu_backward_bf16,
    .axpy = cpu_axpy,
    .reduce = cpu_reduce,
    .reduce_backward = cpu_reduce_backward,
    .softmax = cpu_softmax,
    .softmax_backward = cpu_softmax_backward,
    .strided_copy = cpu_strided_copy,
    .index_select = cpu_index_select,
    .index_add = cpu_index_add,
    .index_copy = cpu_index_copy,
    .index_zero = cpu_index_zero,
    .index_check = cpu_index_check,
    .synchronize = cpu_synchronize,
    .release_range = cpu_release_range,
    .commit_range = cpu_commit_range,
    .norm = &vt_cpu_norm_kernels,
    .conv = &vt_cpu_conv_kernels,
    .attn = &vt_cpu_attn_kernels,
    .loss = &vt_cpu_loss_kernels,
    .optim = &vt_cpu_optim_kernels,
    .spectral = &vt_cpu_spectral_kernels,
};

const vt_backend *vt_backend_cpu(void) { return &cpu_backend; }

const vt_backend *vt_backend_for(vt_device device, const char **why) {
  if (device.type == VT_DEV_CPU) return &cpu_backend;
  if (device.type == VT_DEV_CUDA) return vt_backend_cuda(device.index, why);
  if (why) *why = "unknown device type";
  return NULL;
}
