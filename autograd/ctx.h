/* vt_ctx: the execution context of one training process on one device. It owns the backend,
 * the step arena (activations and temporaries), the tape recorded by ops, the no-grad flag
 * and a sticky error: the first failing op records its name, shapes and file:line, and every
 * later op passes an error tensor through, so model code reads straight and is checked once
 * per step with vt_ctx_failed(). */
#ifndef VT_CTX_H
#define VT_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/backend.h"
#include "autograd/tensor.h"

typedef struct vt_ctx vt_ctx;

typedef struct {
  vt_device device;
  size_t arena_bytes; /* first arena block; grows as needed (default 64 MiB) */
  /* The backend instance to run on (borrowed; its device wins over `device`), e.g. the one of
   * the parameter store the ctx reads, so both queue on one stream. NULL: the ctx makes and
   * owns an instance for `device`. */
  const vt_backend *backend;
} vt_ctx_opts;

/* Returns NULL when the device is unusable; *err (if given) says why. */
vt_ctx *vt_ctx_init(const vt_ctx_opts *opts, const char **err);
void vt_ctx_free(vt_ctx *ctx);

const vt_backend *vt_ctx_backend(const vt_ctx *ctx);
vt_device vt_ctx_device(const vt_ctx *ctx);

/* Mixed precision: the input dtype of the ctx's matmul GEMMs (vt_matmul, the LM head of
 * vt_lm_cross_entropy, attention's score and value products). VT_F32 (the default) or
 * VT_BF16: both operands go in as bf16 (weights from the store's copies, vt_params_enable_lowp;
 * activations stored once in bf16 by vt_gemm_input, or converted per GEMM; gradients
 * converted per GEMM), products accumulate in f32 and come out f32, and every other op (norms,
 * softmax, losses, reductions, the optimizer) stays f32. bf16 needs bf16 GEMM units on the
 * backend: without them it returns -1 and err names what is missing (e.g. "CPU lacks
 * avx512_bf16 and amx_bf16"); the ctx stays f32. 0 on success; `kernel` (may be NULL) gets
 * the GEMM kernel the backend reports. */
int vt_ctx_set_gemm_dtype(vt_ctx *ctx, vt_dtype dtype, char *kernel, size_t kernel_len, char *err,
                          size_t err_len);
vt_dtype vt_ctx_gemm_dtype(const vt_ctx *ctx);

bool vt_ctx_failed(const vt_ctx *ctx);
const char *vt_ctx_error(const vt_ctx *ctx); /* "" when none */
void vt_ctx_clear_error(vt_ctx *ctx);
/* Records an error (first one wins) and returns the error tensor. */
vt_tensor *vt_ctx_fail_at(vt_ctx *ctx, const char *file, int line, const char *op, const char *fmt,
                          ...) __attribute__((format(printf, 5, 6)));
#define vt_ctx_fail(ctx, op, ...) vt_ctx_fail_at((ctx), __FILE__, __LINE__, (op), __VA_ARGS__)

/* Ends a step: drops the tape and rewinds the arena (tensors from the step become invalid). */
void vt_ctx_reset(vt_ctx *ctx);

/* A no-grad scope of the step arena: vt_scope_end(ctx, s, keep) moves `keep` down to where
 * the scope began and frees everything else allocated inside it, so inference over a long
 * input holds only live tensors and keeps reusing the same warm pages instead of touching
 * fresh memory for every intermediate. Tensors made inside the scope other than the returned
 * one become invalid. Outside no-grad mode, after an error, or when keep was not made inside
 * the scope, it frees nothing and returns keep. */
typedef struct {
  int data_block, meta_block;
  size_t data_used, meta_used;
  int64_t n_nodes;
} vt_scope;
vt_scope vt_scope_begin(vt_ctx *ctx);
vt_tensor *vt_scope_end(vt_ctx *ctx, vt_scope s, vt_tensor *keep);

/* No-grad mode: ops record nothing. Returns the previous setting. */
bool vt_set_grad_enabled(vt_ctx *ctx, bool enabled);
bool vt_grad_enabled(const vt_ctx *ctx);

/* Runs the tape backwards from a scalar loss (d loss = 1), accumulating into the gradients
 * of every tensor that requires one (parameters: their flat gradient buffer). The tape and
 * its saved activations are released afterwards. Returns false (with the ctx error set) on
 * failure. */
bool vt_backward(vt_ctx *ctx, vt_tensor *loss);
int64_t vt_tape_len(const vt_ctx *ctx);

/* Gradient-ready hook, for communication that overlaps backward (a data-parallel bucketed
 * all-reduce). slot_lo/slot_hi give n disjoint element ranges of the f32 buffer at base (the
 * parameter store's flat gradients), sorted by slot_lo. During each vt_backward, fn(arg, s) is
 * called once per slot s as soon as its gradient is final: right after the last tape node that
 * reads a tensor whose gradient overlaps the range has run (inside a recompute segment: after
 * the segment's backward), and for slots no node reads at the end. A slot whose gradient
 * would change after it was reported (a parameter read inside a recompute segment and also
 * after it on the tape) is a ctx error. The arrays are borrowed until the hook is cleared
 * (fn NULL). */
typedef void (*vt_grad_ready_fn)(void *arg, int64_t slot);
void vt_ctx_set_grad_hook(vt_ctx *ctx, const float *base, const size_t *slot_lo,
                          const size_t *slot_hi, int64_t n, vt_grad_ready_fn fn, void *arg);

/* Tensors in the step arena. */
vt_tensor *vt_new(vt_ctx *ctx, vt_dtype dtype, int ndim, const int64_t *shape);
vt_tensor *vt_zeros(vt_ctx *ctx, vt_dtype dtype, int ndim, const int64_t *shape);
vt_tensor *vt_full(vt_ctx *ctx, int ndim, const int64_t *shape, float value);
/* Copies host memory (of dtype's layout) into a new tensor on the ctx's device. */
vt_tensor *vt_from_host(vt_ctx *ctx, vt_dtype dtype, int ndim, const int64_t *shape,
                        const void *host);
/* Copies a tensor's data (or gradient, as f32) to host memory of vt_nbytes / numel*4. */
void vt_to_host(vt_ctx *ctx, const vt_tensor *t, void *host);
void vt_grad_to_host(vt_ctx *ctx, const vt_tensor *t, float *host);
/* Writes (reads) elements [first, first + n) of t from (to) host memory in t's dtype, e.g. a
 * tensor filled in chunks from a stack buffer. A range outside t is a ctx error, and nothing
 * is copied when the ctx has failed. */
void vt_write_host(vt_ctx *ctx, vt_tensor *t, int64_t first, int64_t n, const void *host);
void vt_read_host(vt_ctx *ctx, const vt_tensor *t, int64_t first, int64_t n, void *host);
/* Marks a leaf tensor as needing a gradient (for inputs being differentiated). */
void vt_requires_grad(vt_ctx *ctx, vt_tensor *t);
/* Reads one f32 element of a (small) tensor, e.g. a loss. */
float vt_item(vt_ctx *ctx, const vt_tensor *t);

/* How many times arenas or the tape took memory from the heap or device since init. After the
 * first step of a fixed-shape loop this stays constant. */
int64_t vt_ctx_heap_allocs(const vt_ctx *ctx);
size_t vt_ctx_arena_high_water(const vt_ctx *ctx);

#endif
