/* The differentiable ops. Each takes the ctx first, checks its inputs (a bad shape, dtype or
 * index records a ctx error naming the op and the shapes, and the error tensor is returned),
 * computes on the ctx's backend and records its backward on the tape when grad is enabled.
 * Float ops work on f32; index tensors are i32. Axis arguments may be negative. */
#ifndef VT_OPS_H
#define VT_OPS_H

#include "autograd/ctx.h"

#define VT_ALL_AXES 127 /* reduce over every element to a scalar of shape [1] */

/* a [..., M, K] (or [..., K, M] when ta) times b [..., K, N] (or [..., N, K] when tb).
 * Batch dims must match, or b may be 2-D and is then shared by every batch. */
vt_tensor *vt_matmul(vt_ctx *ctx, vt_tensor *a, vt_tensor *b, bool ta, bool tb);
/* Under bf16 GEMMs (vt_ctx_set_gemm_dtype), y as a GEMM input stored once in bf16: the copy
 * the next matmuls read forward and backward, written here. When y was just written by ops
 * whose backward never reads their output (the tape entry's out_unread: norms, elementwise
 * binaries, permute, matmul, linear (its bias node too), swiglu, attention_qkv; or a reshape view
 * of one) and y is the arena's last allocation, the copy replaces y's f32 values and halves
 * its memory: y becomes a bf16 tensor that only vt_matmul, vt_linear, vt_swiglu and
 * vt_attention_qkv accept, so call it only on a tensor whose sole readers are those. Otherwise y
 * keeps its values and gains the copy (y->lowp). Under f32 GEMMs it returns y unchanged. */
vt_tensor *vt_gemm_input(vt_ctx *ctx, vt_tensor *y);
/* vt_gemm_input's in-place case only: y in bf16 when that halves its memory, else y as it is
 * (no copy beside it), for a tensor whose readers take bf16 but are not all GEMMs (the packed
 * gate/up projection that vt_swiglu reads, the q/k/v projection of vt_attention_qkv). */
vt_tensor *vt_lowp_store(vt_ctx *ctx, vt_tensor *y);
/* A linear layer, y = x w^T + b for x [.., k], w [n, k], b [n] (NULL: none): the product and
 * the bias in one GEMM where the backend has gemm_epilogue (cuBLASLt's bias epilogue on the
 * GPU), else vt_matmul then vt_add. Same values and gradients as that pair, bit for bit on
 * the CPU. */
vt_tensor *vt_linear(vt_ctx *ctx, vt_tensor *x, vt_tensor *w, vt_tensor *b);
/* vt_linear for an output that only ops taking bf16 read (vt_swiglu, vt_attention_qkv,
 * vt_matmul, vt_linear): under bf16 GEMMs on a backend with gemm_bf16_out the GEMM writes y
 * in bf16 itself (f32 accumulation, the bias added to the f32 sum, rounded once), so y is a
 * bf16 tensor with the bits vt_linear then vt_lowp_store would give, without the f32 store,
 * the conversion pass or the f32 buffer. Otherwise (f32 GEMMs, a backend without it) it is
 * vt_linear. The gradient of y is f32 either way. */
vt_tensor *vt_linear_lowp(vt_ctx *ctx, vt_tensor *x, vt_tensor *w, vt_tensor *b);

/* Elementwise with NumPy-style broadcasting of trailing dims. */
vt_tensor *vt_add(vt_ctx *ctx, vt_tensor *a, vt_tensor *b);
vt_tensor *vt_sub(vt_ctx *ctx, vt_tensor *a, vt_tensor *b);
vt_tensor *vt_mul(vt_ctx *ctx, vt_tensor *a, vt_tensor *b);
vt_tensor *vt_div(vt_ctx *ctx, vt_tensor *a, vt_tensor *b);
vt_tensor *vt_scale(vt_ctx *ctx, vt_tensor *x, float s);

vt_tensor *vt_gelu_tanh(vt_ctx *ctx, vt_tensor *x);
vt_tensor *vt_gelu_erf(vt_ctx *ctx, vt_tensor *x);
vt_tensor *vt_silu(vt_ctx *ctx, vt_tensor *x);
vt_tensor *vt_relu(vt_ctx *ctx, vt_tensor *x);
vt_tensor *vt_leaky_relu(vt_ctx *ctx, vt_tensor *x, float negative_slope);
vt_tensor *vt_tanh(vt_ctx *ctx, vt_tensor *x);
vt_tensor *vt_sigmoid(vt_ctx *ctx, vt_tensor *x);
/* silu(gate) * up over x [..., 2 f] = [gate | up] (a packed gate/up projection) -> [..., f]:
 * the same bits as vt_mul(vt_silu(slice gate), slice up) without the slices, the SiLU output
 * and their gradients (ops_swiglu.c). */
vt_tensor *vt_swiglu(vt_ctx *ctx, vt_tensor *x);
/* vt_lowp_store of x for vt_swiglu, its sole reader, where this backend's swiglu kernels read
 * bf16 (swiglu_bf16); elsewhere x as it is (widening it back would cost more than it saves). */
vt_tensor *vt_swiglu_input(vt_ctx *ctx, vt_tensor *x);

/* Reductions over one axis (or VT_ALL_AXES); keepdim leaves a dim of size 1. */
vt_tensor *vt_sum(vt_ctx *ctx, vt_tensor *x, int axis, bool keepdim);
vt_tensor *vt_mean(vt_ctx *ctx, vt_tensor *x, int axis, bool keepdim);
vt_tensor *vt_max(vt_ctx *ctx, vt_tensor *x, int axis, bool keepdim);

/* Softmax / log-softmax over the last axis. */
vt_tensor *vt_softmax(vt_ctx *ctx, vt_tensor *x);
vt_tensor *vt_log_softmax(vt_ctx *ctx, vt_tensor *x);

/* Shape ops. reshape is a view (no copy); one size may be -1. */
vt_tensor *vt_reshape(vt_ctx *ctx, vt_tensor *x, int ndim, const int64_t *shape);
vt_tensor *vt_permute(vt_ctx *ctx, vt_tensor *x, const int *perm);
vt_tensor *vt_transpose(vt_ctx *ctx, vt_tensor *x, int d0, int d1);
vt_tensor *vt_concat(vt_ctx *ctx, vt_tensor *const *xs, int n, int axis);
/* Elements [start, end) along axis. */
vt_tensor *vt_slice(vt_ctx *ctx, vt_tensor *x, int axis, int64_t start, int64_t end);

/* Gather/scatter along an axis with an i32 index vector idx [n]:
 *   index_select: out = x with axis resized to n, out[.., i, ..] = x[.., idx[i], ..]
 *   index_copy:   out = base, then out[.., idx[i], ..] = src[.., i, ..] (indices unique)
 *   index_add:    out = base, then out[.., idx[i], ..] += src[.., i, ..]                 */
vt_tensor *vt_index_select(vt_ctx *ctx, vt_tensor *x, int axis, vt_tensor *idx);
vt_tensor *vt_index_copy(vt_ctx *ctx, vt_tensor *base, int axis, vt_tensor *idx, vt_tensor *src);
vt_tensor *vt_index_add(vt_ctx *ctx, vt_tensor *base, int axis, vt_tensor *idx, vt_tensor *src);
/* Rows of weight [V, D] for ids (i32, any shape): out [ids..., D]. */
vt_tensor *vt_embedding(vt_ctx *ctx, vt_tensor *weight, vt_tensor *ids);

/* A copy in another dtype (a gradient only to f32, from f32 or bf16: the f32 gradient passes
 * through). */
vt_tensor *vt_cast(vt_ctx *ctx, vt_tensor *x, vt_dtype dtype);
/* A copy that stops gradients. */
vt_tensor *vt_detach(vt_ctx *ctx, vt_tensor *x);

#endif
