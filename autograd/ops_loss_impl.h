/* Helpers shared by the loss ops (ops_loss.c, ops_ctc.c): the backend's loss kernels or a ctx
 * error, host copies of small i32 tensors for validation, and the scalar output. Internal. */
#ifndef VT_OPS_LOSS_IMPL_H
#define VT_OPS_LOSS_IMPL_H

#include "autograd/ctx_impl.h"
#include "autograd/kernels_loss.h"

/* The loss family of the ctx's backend; NULL (with "<op>: not supported on ...") when none. */
const struct vt_loss_kernels *vt_loss_family(vt_ctx *ctx, const char *op);
/* A host copy of t's i32 data in the meta arena (NULL with a ctx error when out of memory). */
int32_t *vt_loss_host_i32(vt_ctx *ctx, const char *op, const vt_tensor *t);
/* A new f32 tensor of shape [1]. */
vt_tensor *vt_loss_scalar(vt_ctx *ctx, const char *op);

#endif
