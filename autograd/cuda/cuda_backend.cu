/* The CUDA backend: instances, memory (a caching pool, pinned staging), conversions, cuBLAS
 * GEMM and the vtable. The other kernels live in cuda_elementwise.cu, cuda_reduce.cu,
 * cuda_index.cu and one file per kernel family (cuda_norm.cu, cuda_conv.cu, cuda_attn.cu,
 * cuda_loss.cu, cuda_optim.cu, cuda_spectral.cu). Each instance made
 * by vt_backend_cuda owns its stream, cuBLAS handle and scratch (vt_cuda_inst); nothing here
 * is process-wide beyond the device's CUDA context. */
#include <limits.h>

#include "autograd/cuda/cuda_common.cuh"

void vt_cuda_die(const char *file, int line, const char *what, const char *msg) {
  fprintf(stderr, "%s:%d: CUDA error in %s: %s\n", file, line, what, msg);
  abort();
}

/* Memory comes from the device's stream-ordered pool (cudaMallocAsync on the instance's
 * stream), which caches freed blocks instead of returning them to the driver: a step's arena
 * blocks and temporaries are recycled without cudaMalloc / cudaFree round trips (the release
 * threshold is set to keep everything, see vt_backend_cuda). Plain device memory, no managed
 * memory. An allocation is synchronised before it is returned, so any stream may use it;
 * frees are ordered after the work already queued on the stream. A device without memory
 * pools (some virtualised ones) gets plain cudaMalloc / cudaFree. */
static void *cuda_alloc(const vt_backend *be, size_t bytes) {
  void *p = NULL;
  vt_cuda_inst *st = vt_cuda_of(be);
  cudaStream_t s = st->stream;
  if (!bytes) bytes = 256;
  cudaError_t e = st->pool ? cudaMallocAsync(&p, bytes, s) : cudaMalloc(&p, bytes);
  if (e == cudaErrorMemoryAllocation && st->pool) {
    /* the pool may hold freed blocks of other sizes: give them back and try once more */
    (void)cudaGetLastError();
    VT_CUDA_CHECK(cudaStreamSynchronize(s));
    cudaMemPool_t pool;
    VT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, st->device));
    VT_CUDA_CHECK(cudaMemPoolTrimTo(pool, 0));
    e = cudaMallocAsync(&p, bytes, s);
  }
  if (e == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError(); /* out of memory is a status for the caller, not sticky */
    return NULL;
  }
  VT_CUDA_CHECK(e);
  if (st->pool) VT_CUDA_CHECK(cudaStreamSynchronize(s));
  return p;
}

static void cuda_free(const vt_backend *be, void *p) {
  if (!p || vt_cuda_vmm_free(be, p)) return;
  if (vt_cuda_of(be)->pool)
    VT_CUDA_CHECK(cudaFreeAsync(p, VT_STREAM(be)));
  else
    VT_CUDA_CHECK(cudaFree(p)); /* synchronises the device: nothing queued still reads p */
}

/* Host <-> device copies above this size go through the instance's pinned staging buffer in
 * chunks, the host memcpy of one half overlapping the DMA of the other; smaller ones are
 * direct. */
#define STAGE_MIN ((size_t)256 << 10)

static void staged_h2d(vt_cuda_inst *st, char *dst, const char *src, size_t bytes) {
  for (size_t off = 0, i = 0; off < bytes; off += VT_CUDA_STAGING, i++) {
    size_t n = bytes - off < VT_CUDA_STAGING ? bytes - off : VT_CUDA_STAGING;
    int h = (int)(i & 1);
    char *buf = st->staging + (size_t)h * VT_CUDA_STAGING;
    VT_CUDA_CHECK(cudaEventSynchronize(st->staged[h])); /* this half's previous DMA is done */
    memcpy(buf, src + off, n);
    VT_CUDA_CHECK(cudaMemcpyAsync(dst + off, buf, n, cudaMemcpyHostToDevice, st->stream));
    VT_CUDA_CHECK(cudaEventRecord(st->staged[h], st->stream));
  }
  VT_CUDA_CHECK(cudaStreamSynchronize(st->stream));
}

static void staged_d2h(vt_cuda_inst *st, char *dst, const char *src, size_t bytes) {
  size_t prev_off = 0, prev_n = 0;
  for (size_t off = 0, i = 0; off < bytes; off += VT_CUDA_STAGING, i++) {
    size_t n = bytes - off < VT_CUDA_STAGING ? bytes - off : VT_CUDA_STAGING;
    int h = (int)(i & 1);
    char *buf = st->staging + (size_t)h * VT_CUDA_STAGING;
    VT_CUDA_CHECK(cudaMemcpyAsync(buf, src + off, n, cudaMemcpyDeviceToHost, st->stream));
    VT_CUDA_CHECK(cudaEventRecord(st->staged[h], st->stream));
    if (i > 0) { /* drain the other half while this chunk is in flight */
      VT_CUDA_CHECK(cudaEventSynchronize(st->staged[h ^ 1]));
      memcpy(dst + prev_off, st->staging + (size_t)(h ^ 1) * VT_CUDA_STAGING, prev_n);
    }
    prev_off = off;
    prev_n = n;
  }
  VT_CUDA_CHECK(cudaStreamSynchronize(st->stream));
  if (prev_n) {
    size_t last = (bytes - 1) / VT_CUDA_STAGING;
    memcpy(dst + prev_off, st->staging + (last & 1) * VT_CUDA_STAGING, prev_n);
  }
}

static void cuda_copy(const vt_backend *be, void *dst, const void *src, size_t bytes,
                      vt_copy_kind kind) {
  if (!bytes) return;
  cudaMemcpyKind k = kind == VT_COPY_H2D   ? cudaMemcpyHostToDevice
                     : kind == VT_COPY_D2H ? cudaMemcpyDeviceToHost
                                           : cudaMemcpyDeviceToDevice;
  const char *d = (const char *)dst, *s = (const char *)src;
  if (kind == VT_COPY_D2D && d < s + bytes && s < d + bytes && d != s) {
    /* overlapping regions (recompute moves a tensor down the arena): memmove semantics via
     * a stream-ordered temporary */
    void *tmp = cuda_alloc(be, bytes);
    if (!tmp) vt_cuda_die(__FILE__, __LINE__, "copy", "out of device memory for a memmove");
    VT_CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, VT_STREAM(be)));
    VT_CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, VT_STREAM(be)));
    cuda_free(be, tmp);
    return;
  }
  vt_cuda_inst *st = vt_cuda_of(be);
  if (kind != VT_COPY_D2D && bytes > STAGE_MIN && st->staging) {
    if (kind == VT_COPY_H2D)
      staged_h2d(st, (char *)dst, s, bytes);
    else
      staged_d2h(st, (char *)dst, s, bytes);
    return;
  }
  VT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, VT_STREAM(be)));
  /* Host memory may be reused as soon as we return. */
  if (kind != VT_COPY_D2D) VT_CUDA_CHECK(cudaStreamSynchronize(VT_STREAM(be)));
}

__global__ void fill_kernel(float *x, int64_t n, float v) { VT_GRID_STRIDE(i, n) x[i] = v; }

static void cuda_fill(const vt_backend *be, float *x, int64_t n, float v) {
  if (n <= 0) return;
  if (v == 0.0f && !signbit(v)) {
    VT_CUDA_CHECK(cudaMemsetAsync(x, 0, (size_t)n * sizeof(float), VT_STREAM(be)));
    return;
  }
  fill_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(x, n,
                                                                                             v);
  VT_CUDA_LAUNCHED();
}

/* Element i of an array of dtype t, as f32 (and back), as in the CPU backend. */
static __device__ __forceinline__ float load_f32(vt_dtype t, const void *p, int64_t i) {
  switch (t) {
  case VT_F32: return ((const float *)p)[i];
  case VT_BF16: return vt_bf16_to_f32(((const uint16_t *)p)[i]);
  case VT_F16: return vt_f16_to_f32(((const uint16_t *)p)[i]);
  case VT_I32: return (float)((const int32_t *)p)[i];
  default: return (float)((const int64_t *)p)[i];
  }
}

static __device__ __forceinline__ void store_f32(vt_dtype t, void *p, int64_t i, float v) {
  switch (t) {
  case VT_F32: ((float *)p)[i] = v; break;
  case VT_BF16: ((uint16_t *)p)[i] = vt_f32_to_bf16(v); break;
  case VT_F16: ((uint16_t *)p)[i] = vt_f32_to_f16(v); break;
  case VT_I32: ((int32_t *)p)[i] = (int32_t)v; break;
  default: ((int64_t *)p)[i] = (int64_t)v; break;
  }
}

__global__ void convert_kernel(vt_dtype from, vt_dtype to, int64_t n, const void *src, void *dst) {
  if (from == VT_I32 && to == VT_I64) {
    VT_GRID_STRIDE(i, n)((int64_t *)dst)[i] = ((const int32_t *)src)[i];
  } else if (from == VT_I64 && to == VT_I32) {
    VT_GRID_STRIDE(i, n)((int32_t *)dst)[i] = (int32_t)((const int64_t *)src)[i];
  } else {
    VT_GRID_STRIDE(i, n) store_f32(to, dst, i, load_f32(from, src, i));
  }
}

static void cuda_convert(const vt_backend *be, vt_dtype from, vt_dtype to, int64_t n,
                         const void *src, void *dst) {
  if (n <= 0) return;
  if (from == to) {
    VT_CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * vt_dtype_size(from),
                                  cudaMemcpyDeviceToDevice, VT_STREAM(be)));
    return;
  }
  convert_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      from, to, n, src, dst);
  VT_CUDA_LAUNCHED();
}

/* Stochastic rounding to bf16 (kernels_optim.h, the CPU's function): four elements a thread,
 * read as one float4 and written as one 8-byte store when the buffers are aligned for it. */
__global__ void convert_sr_kernel(int64_t n, const float *src, uint16_t *dst, uint64_t key,
                                  uint64_t index0, bool vec) {
  if (vec) {
    VT_GRID_STRIDE(i4, n / 4) {
      float4 x = reinterpret_cast<const float4 *>(src)[i4];
      uint64_t i = index0 + (uint64_t)(4 * i4);
      ushort4 y = make_ushort4(vt_f32_to_bf16_sr(x.x, vt_sr_bits(key, i)),
                               vt_f32_to_bf16_sr(x.y, vt_sr_bits(key, i + 1)),
                               vt_f32_to_bf16_sr(x.z, vt_sr_bits(key, i + 2)),
                               vt_f32_to_bf16_sr(x.w, vt_sr_bits(key, i + 3)));
      reinterpret_cast<ushort4 *>(dst)[i4] = y;
    }
    VT_GRID_STRIDE(t, n % 4) {
      int64_t i = n / 4 * 4 + t;
      dst[i] = vt_f32_to_bf16_sr(src[i], vt_sr_bits(key, index0 + (uint64_t)i));
    }
    return;
  }
  VT_GRID_STRIDE(i, n) dst[i] = vt_f32_to_bf16_sr(src[i], vt_sr_bits(key, index0 + (uint64_t)i));
}

static void cuda_convert_sr(const vt_backend *be, int64_t n, const float *src, uint16_t *dst,
                            uint64_t key, uint64_t index0) {
  if (n <= 0) return;
  bool vec = ((((uintptr_t)src) & 15) | (((uintptr_t)dst) & 7)) == 0 && !vt_cuda_simple_kernels();
  convert_sr_kernel<<<vt_cuda_blocks(be, vec ? (n + 3) / 4 : n, VT_CUDA_THREADS), VT_CUDA_THREADS,
                      0, VT_STREAM(be)>>>(n, src, dst, key, index0, vec);
  VT_CUDA_LAUNCHED();
}

/* c = beta * c over an m x n row-major block (the k == 0 case of GEMM). */
__global__ void scale_matrix_kernel(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
  VT_GRID_STRIDE(i, m * n) {
    float *p = c + (i / n) * ldc + i % n;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

static int gemm_int(int64_t v) {
  if (v < 0 || v > INT_MAX) vt_cuda_die(__FILE__, __LINE__, "gemm", "size exceeds INT_MAX");
  return (int)(v > 0 ? v : 1);
}

/* A bf16 GEMM shape and the cuBLASLt algorithm chosen for it, kept per instance so the
 * heuristic runs once per shape (a training step repeats a few dozen shapes). */
struct vt_cuda_lt_plan {
  bool used, ok; /* ok false: no algorithm; cublasGemmEx serves that shape */
  int64_t key[14];
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
};

static void lt_plan_destroy(struct vt_cuda_lt_plan *p) {
  if (!p->used) return;
  VT_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->la));
  VT_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lb));
  VT_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(p->lc));
  VT_CUBLAS_CHECK(cublasLtMatmulDescDestroy(p->op));
  p->used = false;
}

/* The plan of column-major C[n x m] (ld ldc) = op1(X1) op2(X2), X1 = b (ld ldb), X2 = a
 * (ld lda), for one product (the row-major C = op(A) op(B) seen column-major). */
static uint32_t ptr_align(const void *p) {
  uint32_t a = 256;
  while (a > 1 && (uintptr_t)p % a) a >>= 1;
  return a;
}

/* The plan depends on the operands' alignment too: cuBLASLt assumes 256 bytes unless told. */
/* bias: the epilogue CUBLASLT_EPILOGUE_BIAS (Lt's bias runs along D's rows, our columns), its
 * pointer set on the plan's descriptor before each call; NULL: no epilogue. */
static struct vt_cuda_lt_plan *lt_plan(vt_cuda_inst *st, bool ta, bool tb, int64_t m, int64_t n,
                                       int64_t k, const void *a, int64_t lda, const void *b,
                                       int64_t ldb, const float *c, int64_t ldc, bool beta0,
                                       const float *bias) {
  uint32_t al_a = ptr_align(a), al_b = ptr_align(b), al_c = ptr_align(c);
  int64_t key[14] = {ta,  tb,    m,    n,    k,    lda,          ldb,
                     ldc, beta0, al_a, al_b, al_c, bias != NULL, bias ? ptr_align(bias) : 0};
  uint64_t h = 1469598103934665603ull;
  for (int i = 0; i < 14; i++) h = (h ^ (uint64_t)key[i]) * 1099511628211ull;
  struct vt_cuda_lt_plan *p = &st->lt_plans[h % VT_CUDA_LT_PLANS];
  if (p->used && !memcmp(p->key, key, sizeof key)) return p;
  lt_plan_destroy(p); /* a collision replaces the slot's plan */
  memcpy(p->key, key, sizeof key);
  p->used = true;
  cublasOperation_t op1 = tb ? CUBLAS_OP_T : CUBLAS_OP_N, op2 = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  VT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  VT_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &op1, sizeof op1));
  VT_CUBLAS_CHECK(
      cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &op2, sizeof op2));
  if (bias) {
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    cudaDataType_t bt = CUDA_R_32F;
    VT_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    VT_CUBLAS_CHECK(
        cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
    VT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias,
                                                   sizeof bias));
  }
  /* stored shapes: X1 is n x k (k x n when transposed), X2 is k x m (m x k) */
  VT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, (uint64_t)(tb ? k : n),
                                             (uint64_t)(tb ? n : k), ldb));
  VT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, (uint64_t)(ta ? m : k),
                                             (uint64_t)(ta ? k : m), lda));
  VT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, (uint64_t)n, (uint64_t)m, ldc));
  cublasLtMatmulPreference_t pref;
  VT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
  size_t ws = VT_CUDA_LT_WS;
  VT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  /* Lt's A is our b, its B our a */
  const cublasLtMatmulPreferenceAttributes_t al_attr[4] = {
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
      CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
  const uint32_t al_val[4] = {al_b, al_a, al_c, al_c};
  for (int i = 0; i < 4; i++)
    VT_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, al_attr[i], &al_val[i], sizeof al_val[i]));
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(st->lt, p->op, p->la, p->lb, p->lc, p->lc,
                                                     pref, 1, &res, &found);
  VT_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
  p->ok = hs == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
  if (p->ok) p->algo = res.algo;
  return p;
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap the operands. f32
 * inputs use full FP32 math (the handle's default, no TF32) so results match the CPU. bf16
 * inputs accumulate in f32 into an f32 C: one product through cuBLASLt (its algorithm planned
 * once per shape), batches through the strided-batched cublasGemmEx. */
static void cuda_gemm(const vt_backend *be, vt_dtype in, bool ta, bool tb, int64_t m, int64_t n,
                      int64_t k, float alpha, const void *a, int64_t lda, int64_t stride_a,
                      const void *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                      int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return;
  if (k <= 0) { /* op(A) op(B) is zero: C = beta * C, once per batch as the loop would */
    for (int64_t i = 0; i < batch; i++) {
      scale_matrix_kernel<<<vt_cuda_blocks(be, m * n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                            VT_STREAM(be)>>>(m, n, beta, c + i * stride_c, ldc);
      VT_CUDA_LAUNCHED();
    }
    return;
  }
  cublasHandle_t h = vt_cuda_of(be)->cublas;
  cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  int im = gemm_int(m), in_ = gemm_int(n), ik = gemm_int(k);
  int ilda = gemm_int(lda), ildb = gemm_int(ldb), ildc = gemm_int(ldc);
  size_t es = vt_dtype_size(in);
  cudaDataType_t t = in == VT_BF16 ? CUDA_R_16BF : CUDA_R_32F;
  const char *pa = (const char *)a, *pb = (const char *)b;
  if (in == VT_F32) { /* the plain SGEMM calls: full FP32 under the handle's default math */
    const float *fa = (const float *)a, *fb = (const float *)b;
    if (stride_c == 0 && batch > 1) {
      /* Every batch accumulates into the same C: one GEMM after another, in stream order. */
      for (int64_t i = 0; i < batch; i++)
        VT_CUBLAS_CHECK(cublasSgemm(h, opb, opa, in_, im, ik, &alpha, fb + i * stride_b, ildb,
                                    fa + i * stride_a, ilda, &beta, c, ildc));
      return;
    }
    VT_CUBLAS_CHECK(cublasSgemmStridedBatched(h, opb, opa, in_, im, ik, &alpha, fb, ildb, stride_b,
                                              fa, ilda, stride_a, &beta, c, ildc, stride_c,
                                              gemm_int(batch)));
    return;
  }
  if (batch == 1) { /* one bf16 product: cuBLASLt with the algorithm planned for its shape */
    vt_cuda_inst *st = vt_cuda_of(be);
    struct vt_cuda_lt_plan *p =
        lt_plan(st, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, beta == 0.0f, NULL);
    if (p->ok) {
      VT_CUBLAS_CHECK(cublasLtMatmul(st->lt, p->op, &alpha, b, p->la, a, p->lb, &beta, c, p->lc, c,
                                     p->lc, &p->algo, st->lt_ws, VT_CUDA_LT_WS, st->stream));
      return;
    }
  }
  if (stride_c == 0 && batch > 1) {
    for (int64_t i = 0; i < batch; i++)
      VT_CUBLAS_CHECK(cublasGemmEx(h, opb, opa, in_, im, ik, &alpha, pb + i * stride_b * es, t,
                                   ildb, pa + i * stride_a * es, t, ilda, &beta, c, CUDA_R_32F,
                                   ildc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  VT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      h, opb, opa, in_, im, ik, &alpha, b, t, ildb, stride_b, a, t, ilda, stride_a, &beta, c,
      CUDA_R_32F, ildc, stride_c, gemm_int(batch), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

__global__ void axpy_kernel(int64_t n, bool vec, float alpha, const float *x, float *y) {
  vt_for_vec(n, vec, VT_GRID_LANE, VT_GRID_WIDTH, [&](int64_t i, int w) {
    if (w == 1) {
      y[i] += alpha * x[i];
      return;
    }
    vt_f4 a = vt_ld4(x + i), o = vt_ld4(y + i);
    for (int e = 0; e < 4; e++) o.f[e] += alpha * a.f[e];
    vt_st4(y + i, o);
  });
}

void vt_cuda_axpy(const vt_backend *be, int64_t n, float alpha, const float *x, float *y) {
  if (n <= 0) return;
  bool vec = vt_cuda_flat_vec(x, y, NULL, NULL);
  axpy_kernel<<<VT_VEC_BLOCKS(be, n, vec), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(n, vec, alpha, x,
                                                                                y);
  VT_CUDA_LAUNCHED();
}

/* bf16 GEMMs run on tensor cores from compute capability 8.0 (Ampere) on; older devices
 * would run them through slow paths, which mixed precision refuses. */
/* c[i, j] += bias[j] (add_bias), then GELU keeping the sum in aux: the epilogue when cuBLASLt
 * does not fuse it (f32 inputs, VT_CUDA_SIMPLE, a shape without an Lt algorithm), and GELU's
 * half of VT_EPI_BIAS_GELU after Lt's bias epilogue (add_bias false). */
__global__ void bias_act_kernel(int64_t m, int64_t n, const float *bias, bool add_bias, bool gelu,
                                float *c, int64_t ldc, float *aux) {
  VT_GRID_STRIDE(idx, m * n) {
    int64_t i = idx / n, j = idx % n;
    float s = c[i * ldc + j];
    if (add_bias) s += bias[j];
    if (gelu) {
      aux[i * ldc + j] = s;
      s = vt_unary_f(VT_UN_GELU_TANH, 0.0f, s);
    }
    c[i * ldc + j] = s;
  }
}

/* One product with the bias (and GELU) epilogue: bf16 inputs through cuBLASLt's BIAS epilogue
 * (the bias added to the f32 accumulator inside the GEMM: no extra pass over c); otherwise, and
 * for GELU, the plain GEMM and then bias_act_kernel. */
static void cuda_gemm_epilogue(const vt_backend *be, vt_dtype in, bool ta, bool tb, int64_t m,
                               int64_t n, int64_t k, const void *a, int64_t lda, const void *b,
                               int64_t ldb, const float *bias, vt_gemm_epilogue epi, float *c,
                               int64_t ldc, float *aux) {
  if (m <= 0 || n <= 0) return;
  bool gelu = epi == VT_EPI_BIAS_GELU, fused = false;
  if (in == VT_BF16 && k > 0 && !vt_cuda_simple_kernels()) {
    vt_cuda_inst *st = vt_cuda_of(be);
    struct vt_cuda_lt_plan *p = lt_plan(st, ta, tb, m, n, k, a, lda, b, ldb, c, ldc, true, bias);
    if (p->ok) {
      const float one = 1.0f, zero = 0.0f;
      VT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                                     &bias, sizeof bias));
      VT_CUBLAS_CHECK(cublasLtMatmul(st->lt, p->op, &one, b, p->la, a, p->lb, &zero, c, p->lc, c,
                                     p->lc, &p->algo, st->lt_ws, VT_CUDA_LT_WS, st->stream));
      fused = true;
    }
  }
  if (!fused) cuda_gemm(be, in, ta, tb, m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, c, ldc, 0, 1);
  if (!fused || gelu) {
    bias_act_kernel<<<vt_cuda_blocks(be, m * n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                      VT_STREAM(be)>>>(m, n, bias, !fused, gelu, c, ldc, aux);
    VT_CUDA_LAUNCHED();
  }
}

static bool cuda_gemm_bf16_info(const vt_backend *be, char *buf, size_t len) {
  vt_cuda_inst *st = vt_cuda_of(be);
  cudaDeviceProp prop;
  VT_CUDA_CHECK(cudaGetDeviceProperties(&prop, st->device));
  if (prop.major < 8) {
    snprintf(buf, len, "cuda:%d (%s, sm_%d%d) has no bf16 tensor cores (sm_80 or newer)",
             st->device, prop.name, prop.major, prop.minor);
    return false;
  }
  snprintf(buf, len, "cuBLASLt bf16 tensor cores, f32 accumulate (cuda:%d, %s, sm_%d%d)",
           st->device, prop.name, prop.major, prop.minor);
  return true;
}

static void cuda_synchronize(const vt_backend *be) {
  VT_CUDA_CHECK(cudaStreamSynchronize(VT_STREAM(be)));
}

static void cuda_release(const vt_backend *be) {
  vt_cuda_inst *st = vt_cuda_of(be);
  VT_CUDA_CHECK(cudaStreamSynchronize(st->stream));
  VT_CUDA_CHECK(cudaFree(st->scratch));
  VT_CUDA_CHECK(cudaFree(st->partials));
  if (st->red) VT_CUDA_CHECK(cudaFree(st->red));
  if (st->staging)
    VT_CUDA_CHECK(cudaFreeHost(st->staging)); /* partials_host lives in it */
  else
    free(st->partials_host);
  VT_CUDA_CHECK(cudaEventDestroy(st->staged[0]));
  VT_CUDA_CHECK(cudaEventDestroy(st->staged[1]));
  for (int i = 0; i < VT_CUDA_LT_PLANS; i++) lt_plan_destroy(&st->lt_plans[i]);
  free(st->lt_plans);
  VT_CUDA_CHECK(cudaFree(st->lt_ws));
  VT_CUBLAS_CHECK(cublasLtDestroy(st->lt));
  VT_CUBLAS_CHECK(cublasDestroy(st->cublas));
  VT_CUDA_CHECK(cudaStreamDestroy(st->stream));
  free(st);
  free((void *)be);
}

/* Filled by name (CUDA C++ has no designated initialisers before C++20); members added to
 * vt_backend later stay NULL until written here. */
static void cuda_fill_table(vt_backend *t, vt_cuda_inst *st) {
  memset(t, 0, sizeof *t);
  t->name = "cuda";
  t->device.type = VT_DEV_CUDA;
  t->device.index = st->device;
  t->impl = st;
  t->alloc = cuda_alloc;
  t->free = cuda_free;
  t->copy = cuda_copy;
  t->fill = cuda_fill;
  t->convert = cuda_convert;
  t->convert_sr = cuda_convert_sr;
  t->gemm_epilogue = cuda_gemm_epilogue;
  t->gemm = cuda_gemm;
  t->gemm_bf16_info = cuda_gemm_bf16_info;
  t->binary = vt_cuda_binary;
  t->binary_backward = vt_cuda_binary_backward;
  t->unary = vt_cuda_unary;
  t->unary_backward = vt_cuda_unary_backward;
  t->swiglu = vt_cuda_swiglu;
  t->swiglu_backward = vt_cuda_swiglu_backward;
  t->axpy = vt_cuda_axpy;
  t->reduce = vt_cuda_reduce;
  t->reduce_backward = vt_cuda_reduce_backward;
  t->softmax = vt_cuda_softmax;
  t->softmax_backward = vt_cuda_softmax_backward;
  t->strided_copy = vt_cuda_strided_copy;
  t->index_select = vt_cuda_index_select;
  t->index_add = vt_cuda_index_add;
  t->index_copy = vt_cuda_index_copy;
  t->index_zero = vt_cuda_index_zero;
  t->index_check = vt_cuda_index_check;
  t->synchronize = cuda_synchronize;
  t->alloc_releasable = vt_cuda_vmm_alloc;
  t->release_range = vt_cuda_vmm_release_range;
  t->commit_range = vt_cuda_vmm_commit_range;
  t->release = cuda_release;
  t->norm = vt_cuda_norm_table();
  t->conv = vt_cuda_conv_table();
  t->attn = vt_cuda_attn_table();
  t->loss = vt_cuda_loss_table();
  t->optim = vt_cuda_optim_table();
  t->spectral = vt_cuda_spectral_table();
}

extern "C" int vt_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError(); /* no driver or no device: not an error, just none */
    return 0;
  }
  return n;
}

extern "C" vt_backend *vt_backend_cuda(int device_index, const char **why) {
  static __thread char reason[160];
  int n = vt_cuda_device_count();
  if (n == 0) {
    if (why) *why = "no usable CUDA device (cudaGetDeviceCount found none)";
    return NULL;
  }
  if (device_index < 0 || device_index >= n) {
    snprintf(reason, sizeof reason, "cuda:%d does not exist (%d device%s found)", device_index, n,
             n == 1 ? "" : "s");
    if (why) *why = reason;
    return NULL;
  }
  vt_backend *be = (vt_backend *)calloc(1, sizeof *be);
  vt_cuda_inst *st = (vt_cuda_inst *)calloc(1, sizeof *st);
  if (!be || !st) {
    free(be);
    free(st);
    if (why) *why = "out of host memory for a CUDA backend instance";
    return NULL;
  }
  /* The current device is per host thread: set it for every thread that makes an instance. */
  VT_CUDA_CHECK(cudaSetDevice(device_index));
  st->device = device_index;
  VT_CUDA_CHECK(cudaDeviceGetAttribute(&st->num_sms, cudaDevAttrMultiProcessorCount, device_index));
  VT_CUDA_CHECK(cudaStreamCreateWithFlags(&st->stream, cudaStreamNonBlocking));
  VT_CUBLAS_CHECK(cublasCreate(&st->cublas));
  VT_CUBLAS_CHECK(cublasSetStream(st->cublas, st->stream));
  /* Full FP32: TF32 tensor-core math would change results against the CPU backend. */
  VT_CUBLAS_CHECK(cublasSetMathMode(st->cublas, CUBLAS_DEFAULT_MATH));
  VT_CUDA_CHECK(cudaMalloc(&st->scratch, sizeof *st->scratch));
  VT_CUDA_CHECK(cudaMalloc(&st->partials, sizeof(double) * VT_CUDA_PARTIALS));
  VT_CUBLAS_CHECK(cublasLtCreate(&st->lt));
  VT_CUDA_CHECK(cudaMalloc(&st->lt_ws, VT_CUDA_LT_WS));
  st->lt_plans = (struct vt_cuda_lt_plan *)calloc(VT_CUDA_LT_PLANS, sizeof *st->lt_plans);
  if (!st->lt_plans) vt_cuda_die(__FILE__, __LINE__, "calloc", "out of host memory");
  /* Pinned host memory (the staging halves, then the partial sums' copy) is an optimisation:
   * where it cannot be had, copies go direct and the partial sums to plain host memory. */
  if (cudaMallocHost(&st->staging, 2 * VT_CUDA_STAGING + sizeof(double) * VT_CUDA_PARTIALS) !=
      cudaSuccess) {
    (void)cudaGetLastError();
    st->staging = NULL;
  }
  st->partials_host = st->staging ? (double *)(st->staging + 2 * VT_CUDA_STAGING)
                                  : (double *)calloc(VT_CUDA_PARTIALS, sizeof(double));
  if (!st->partials_host) vt_cuda_die(__FILE__, __LINE__, "calloc", "out of host memory");
  VT_CUDA_CHECK(cudaEventCreateWithFlags(&st->staged[0], cudaEventDisableTiming));
  VT_CUDA_CHECK(cudaEventCreateWithFlags(&st->staged[1], cudaEventDisableTiming));
  /* The pool keeps what is freed (the default threshold of 0 would return it to the driver at
   * every synchronisation): the caching allocator behind cuda_alloc. */
  int pools = 0;
  VT_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device_index));
  st->pool = pools != 0;
  if (st->pool) {
    cudaMemPool_t pool;
    VT_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, device_index));
    uint64_t keep = UINT64_MAX;
    VT_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  }
  cuda_fill_table(be, st);
  return be;
}
