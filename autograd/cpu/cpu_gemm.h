/* The CPU backend's bf16 GEMM: oneDNN's matmul primitive with bf16 inputs and f32
 * accumulation, f32 or bf16 output (autograd/cpu/cpu_gemm_dnnl.c), one primitive cached per shape.
 * Private to autograd/cpu/; the backend's gemm member calls it for VT_BF16 inputs and falls
 * back to widening the operands to f32 for sgemm (exact, slow) when it returns false. */
#ifndef VT_CPU_GEMM_H
#define VT_CPU_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The backend gemm contract (autograd/backend.h) with bf16 a and b. False when oneDNN is not
 * built in or refuses the shape; nothing was written then. */
bool vt_cpu_dnnl_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                           const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                           int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                           int64_t stride_c, int64_t batch);
/* The same product with beta 0 and c written as f32 or (c_bf16) bf16: c[i] = alpha op(a[i])
 * op(b[i]) + bias[j], the bias (f32 per column, NULL for none) added to the f32 sum, which is
 * then rounded once to nearest even for a bf16 c. False when oneDNN is not built in or refuses
 * (a bias with alpha != 1, a c shared by a batch); nothing was written then. */
bool vt_cpu_dnnl_gemm_bf16_ex(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                              const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                              int64_t ldb, int64_t stride_b, const float *bias, void *c,
                              bool c_bf16, int64_t ldc, int64_t stride_c, int64_t batch);
/* True when bf16 GEMMs run on bf16 units here (oneDNN built in, and the CPU has AVX512-BF16 or
 * AMX-BF16). Writes the kernel ("oneDNN 2.6.3 brg:avx512_core_bf16 (CPU has avx512_bf16)")
 * or why not ("CPU lacks avx512_bf16 and amx_bf16", "built without oneDNN") into buf. */
bool vt_cpu_bf16_gemm_info(char *buf, size_t len);
/* vt_cpu_bf16_gemm_info's answer without the text, asked once: kernels check it before a bf16
 * path they cannot abandon halfway. */
bool vt_cpu_bf16_gemm_ok(void);

#endif
