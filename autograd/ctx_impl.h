/* Internals shared by the autograd files: the vt_ctx struct, tape nodes and the helpers ops
 * use to check inputs, allocate outputs and record their backward. Not for model code. */
#ifndef VT_CTX_IMPL_H
#define VT_CTX_IMPL_H

#include "autograd/arena.h"
#include "autograd/ctx.h"

typedef struct vt_node vt_node;
typedef void (*vt_backward_fn)(vt_ctx *ctx, vt_node *node);

#define VT_NODE_MAX_IN 8

struct vt_node {
  vt_backward_fn backward;
  const char *op;
  vt_tensor *out;
  vt_tensor *in[VT_NODE_MAX_IN];
  int n_in;
  vt_tensor *saved[2]; /* extra tensors the gradient needs (e.g. argmax) */
  void *extra;         /* op-specific data in the arena */
  int64_t i[8];
  float f[4];
  /* Set by the op when its backward never reads out->data (only its inputs, saved tensors
   * and out->grad): vt_gemm_input / vt_lowp_store may then overwrite the output's values
   * with their bf16 copy. False (vt_record's default) keeps the values. */
  bool out_unread;
};

/* The gradient-ready hook (vt_ctx_set_grad_hook) and its per-backward state. */
typedef struct {
  const float *base;
  size_t region; /* elements from base the slots lie in */
  const size_t *lo, *hi;
  int64_t n;
  vt_grad_ready_fn fn;
  void *arg;
  int64_t *last;  /* [n]: lowest tape index reading the slot; INT64_MAX none; -1 reported */
  int64_t *order; /* [n]: slots by last, descending, unread ones at the end */
  int64_t cap, next;
} vt_grad_hook;

struct vt_ctx {
  vt_device device;
  const vt_backend *be;
  bool owns_be;  /* made by vt_ctx_init, released by vt_ctx_free */
  vt_arena meta; /* host: tensor structs, node extras */
  vt_arena data; /* device: tensor data and gradients */
  vt_node *tape;
  int64_t n_nodes, cap_nodes;
  int64_t tape_allocs;
  bool grad_enabled;
  vt_dtype gemm_dtype; /* input dtype of matmul GEMMs: VT_F32, or VT_BF16 (mixed precision) */
  bool failed;
  char error[1024];
  vt_tensor err_tensor;
  float err_value;
  vt_grad_hook hook;
};

/* A new tensor struct + data in the arena; NULL (with ctx error) when memory runs out. */
vt_tensor *vt_alloc_tensor(vt_ctx *ctx, const char *op, vt_dtype dtype, int ndim,
                           const int64_t *shape);
void *vt_arena_data(vt_ctx *ctx, const char *op, size_t bytes);
void *vt_arena_meta(vt_ctx *ctx, const char *op, size_t bytes);
/* An operand of a GEMM in the ctx's gemm dtype: `data` itself under f32; under bf16 t's
 * bf16 copy (t->lowp: the parameter store's, or vt_gemm_input's) or t's own data when t is a
 * bf16 tensor (vt_gemm_input's), when data is t's own data, else the n values
 * converted into the arena, which the caller frees by rewinding ctx->data to a mark taken
 * before. t may be NULL (a buffer of no tensor). NULL, with a ctx error, out of memory. */
const void *vt_gemm_operand(vt_ctx *ctx, const char *op, const vt_tensor *t, const float *data,
                            int64_t n);

/* The f32 gradient of t, allocated zeroed on first use. */
float *vt_grad(vt_ctx *ctx, vt_tensor *t);
/* For a writer that can overwrite instead of accumulate: the gradient of t, allocated but NOT
 * zeroed on first use, with *fresh = true then; the caller must then write every element
 * (e.g. a GEMM with beta 0, a copy). Saves the zeroing pass over the activations' gradients. */
float *vt_grad_first(vt_ctx *ctx, vt_tensor *t, bool *fresh);
/* True when any input needs a gradient and grad mode is on: then records a node for out
 * and returns it (else NULL). */
vt_node *vt_record(vt_ctx *ctx, const char *op, vt_backward_fn fn, vt_tensor *out, int n_in,
                   vt_tensor *const *in);
/* Like vt_record, but records whenever grad mode is on: for ops whose parameters are hidden
 * inside them (activation recompute). */
vt_node *vt_record_always(vt_ctx *ctx, const char *op, vt_backward_fn fn, vt_tensor *out, int n_in,
                          vt_tensor *const *in);
/* grad_hook.c: the hook's passes, called by vt_backward and recompute's backward. begin
 * finds each slot's last reader (false on out of memory, with ctx error); after_node reports
 * the slots node i finalised; nested handles the slots that nodes [first, end) of a recompute
 * segment read; end reports the rest. No-ops without a hook. */
bool vt_hook_begin(vt_ctx *ctx);
void vt_hook_after_node(vt_ctx *ctx, int64_t i);
void vt_hook_nested(vt_ctx *ctx, int64_t first, int64_t end);
void vt_hook_end(vt_ctx *ctx);
/* Input checks: each returns false after recording a ctx error naming op and shapes. */
bool vt_check_inputs(vt_ctx *ctx, const char *op, int n, vt_tensor *const *ts);
/* How an op reads its parameter inputs, for their read marks (VT_READ_*, params.h): their f32
 * values (most ops), as GEMM operands through vt_gemm_operand (the bf16 copy of a 2-D weight
 * under bf16 GEMMs), or not at all (a view, whose reader marks). */
typedef enum { VT_IN_VALUES, VT_IN_GEMM, VT_IN_VIEW } vt_input_use;
bool vt_check_inputs_as(vt_ctx *ctx, const char *op, vt_input_use use, int n, vt_tensor *const *ts);
/* Marks how op reads t when t is a store's parameter (a no-op otherwise); false, with a ctx
 * error, when it would read f32 values this rank released (sharded masters). */
bool vt_mark_param_read(vt_ctx *ctx, const char *op, const vt_tensor *t, vt_input_use use);
bool vt_check_dtype(vt_ctx *ctx, const char *op, const vt_tensor *t, vt_dtype want);
/* False, with "<op>: not supported on the <backend> backend (no kernels of the <family>
 * family)", when present is false: a backend may leave a kernel family, or a member of it,
 * NULL. Every op that needs a family kernel checks this before running. */
bool vt_need_kernels(vt_ctx *ctx, const char *op, vt_kernel_family family, bool present);
/* Normalises a possibly negative axis; false (with error) when out of range. */
bool vt_check_axis(vt_ctx *ctx, const char *op, const vt_tensor *t, int *axis);

/* Common prologue of an op: returns the error tensor when the ctx has failed or an input is
 * missing or on another device. */
#define VT_OP_INPUTS(ctx, op, ...) VT_OP_INPUTS_AS(ctx, op, VT_IN_VALUES, __VA_ARGS__)
#define VT_OP_INPUTS_AS(ctx, op, use, ...)                                                         \
  do {                                                                                             \
    vt_tensor *ins_[] = {__VA_ARGS__};                                                             \
    if (!vt_check_inputs_as((ctx), (op), (use), (int)(sizeof ins_ / sizeof ins_[0]), ins_))        \
      return &(ctx)->err_tensor;                                                                   \
  } while (0)

/* Contiguous element strides of a shape. */
static inline void vt_contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int d = ndim - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
}

/* Splits a shape around axis into [outer, len, inner]. */
static inline void vt_split_axis(const vt_tensor *t, int axis, int64_t *outer, int64_t *len,
                                 int64_t *inner) {
  *outer = vt_shape_numel(axis, t->shape);
  *len = t->shape[axis];
  *inner = vt_shape_numel(t->ndim - axis - 1, t->shape + axis + 1);
}

#endif
