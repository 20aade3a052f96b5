/* The CPU attention kernels' bf16 path (autograd/cpu/cpu_attn_bf16.c): under bf16 mixed
 * precision (vt_attn_geom.lowp) the score and value products QK^T, PV, dO V^T, dS K, dS^T Q
 * and P^T dO run as batched oneDNN bf16 matmuls with f32 accumulation; masks, bias, softmax,
 * the log-sum-exp and the gradient's D = dout . out stay f32. Same contract as the f32
 * kernels of kernels_attn.h. Private to autograd/cpu/. */
#ifndef VT_CPU_ATTN_BF16_H
#define VT_CPU_ATTN_BF16_H

#include <stdbool.h>

#include "autograd/kernels_attn.h"

/* Workspace bytes of both passes: for one chunk of (batch, kv head) pairs (about 2 MiB of
 * them, at least one pair), bf16 copies of k and v and of one query tile of q and dout, and
 * that tile's scores over all keys, f32 and bf16; plus D, one float per query row. */
size_t vt_cpu_attn_bf16_workspace(const vt_attn_geom *g);
/* False when oneDNN is not built in or refuses a product; the caller then runs the f32 path,
 * which rewrites everything forward writes. Backward accumulates into dq, dk, dv and dbias
 * as its products run: a false return after the first of them would leave a partial sum, so
 * the caller checks vt_cpu_bf16_gemm_ok first. */
bool vt_cpu_attn_bf16_forward(const vt_attn_geom *g, const float *q, const float *k, const float *v,
                              float *out, float *lse, void *work);
bool vt_cpu_attn_bf16_backward(const vt_attn_geom *g, const float *q, const float *k,
                               const float *v, const float *out, const float *dout,
                               const float *lse, float *dq, float *dk, float *dv, float *dbias,
                               void *work);

#endif
