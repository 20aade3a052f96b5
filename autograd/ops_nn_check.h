/* Input checks shared by the norm, quantisation and conv ops (ops_norm.c, ops_quant.c,
 * ops_conv.c): kernel-family availability on the ctx's backend and optional per-channel
 * parameters. Private to autograd/. */
#ifndef VT_OPS_NN_CHECK_H
#define VT_OPS_NN_CHECK_H

#include "autograd/ctx_impl.h"

/* False (with "<op>: not supported on the <backend> backend (no kernels of the <family>
 * family)") when a kernel is missing: a backend may leave a family, or one member, NULL. */
static inline bool vt_have_kernel(vt_ctx *ctx, const char *op, vt_kernel_family family,
                                  bool present) {
  return vt_need_kernels(ctx, op, family, present);
}

/* Whether the backend has norm-family kernel `member` (ops_norm.c, ops_quant.c). */
#define NORM_HAS(ctx, member) ((ctx)->be->norm && (ctx)->be->norm->member)

/* An optional f32 vector parameter (weight, bias, running statistic): NULL is fine, else it
 * must be on the ctx's device and hold exactly len elements in a 1-D shape. */
static inline bool vt_check_vec(vt_ctx *ctx, const char *op, const vt_tensor *t, int64_t len,
                                const char *what, const vt_tensor *x) {
  if (!t) return true;
  char s1[96], s2[96];
  if (t->device.type != ctx->device.type) {
    vt_ctx_fail(ctx, op, "%s is on another device than the context", what);
    return false;
  }
  if (t->dtype != VT_F32 || t->ndim != 1 || t->shape[0] != len) {
    vt_ctx_fail(ctx, op, "%s must be f32 [%lld] for input %s, got %s", what, (long long)len,
                vt_shape_str(x, s1, sizeof s1), vt_shape_str(t, s2, sizeof s2));
    return false;
  }
  return true;
}

/* Appends the non-NULL tensors of ts to in (for vt_record) and returns the new count; bits of
 * *mask say which of ts were present, so the backward can find them again. */
static inline int vt_gather_inputs(vt_tensor **in, int n, vt_tensor *const *ts, int nts,
                                   int64_t *mask) {
  *mask = 0;
  for (int i = 0; i < nts; i++)
    if (ts[i]) {
      in[n++] = ts[i];
      *mask |= (int64_t)1 << i;
    }
  return n;
}

/* The optional input number `which` of a node recorded with vt_gather_inputs (first optional
 * input at position first), or NULL when absent. */
static inline vt_tensor *vt_node_opt(const vt_node *n, int first, int64_t mask, int which) {
  if (!(mask >> which & 1)) return NULL;
  int pos = first;
  for (int i = 0; i < which; i++) pos += (int)(mask >> i & 1);
  return n->in[pos];
}

/* The gradient buffer of t when it takes one, else NULL. */
static inline float *vt_grad_if(vt_ctx *ctx, vt_tensor *t) {
  return t && t->requires_grad ? vt_grad(ctx, t) : NULL;
}

#endif
