/* vt_params: the named parameters of a model. Every parameter has a stable hierarchical name
 * (the export name, e.g. "model.layers.0.self_attn.q_proj.weight") and lives in one flat
 * buffer per dtype; the gradients of trainable f32 parameters live in one flat f32 buffer, so
 * all-reduce, grad-norm and checkpoint I/O are one call each. Usage: add every parameter,
 * vt_params_alloc(), set trainable patterns, vt_params_alloc_grads(). */
#ifndef VT_PARAMS_H
#define VT_PARAMS_H

#include "autograd/backend.h"
#include "autograd/tensor.h"

typedef struct {
  vt_tensor t; /* t.name points to name; t.data / t.grad into the flat buffers */
  char *name;
  size_t offset;      /* in elements, into the flat buffer of t.dtype */
  size_t grad_offset; /* in elements, into the grad buffer (trainable only) */
  bool trainable;
  bool buffer;  /* state the model updates itself (BatchNorm running statistics, spectral-norm
                   vectors): saved with the weights, never trainable, no optimizer state */
  bool no_copy; /* no bf16 copy under mixed precision (vt_params_set_copy): a table that is only
                   gathered, never a GEMM operand */
} vt_param;

typedef struct {
  vt_param **items; /* stable pointers: model structs keep &items[i]->t */
  int n, cap;
  vt_device device;
  const vt_backend *be;
  bool owns_be;
  void *data[VT_DTYPE_COUNT];
  size_t numel[VT_DTYPE_COUNT];
  float *grad;
  size_t grad_numel;
  void *lowp; /* bf16 copies of the f32 buffer (same offsets), or NULL: see enable_lowp */
  /* Stochastic rounding of the copies (vt_params_set_rounding): on, its seed, and the step
   * whose key the last refresh used (vt_params_sync_lowp_step). */
  bool sr;
  uint64_t sr_seed;
  int64_t sr_step;
  bool allocated;
  uint8_t *reads; /* [n]: each parameter's VT_READ_* bits (t.reads points here) */
  /* Sharded f32 masters (vt_params_shard_masters): parameter i keeps the f32 values of its
   * elements [keep_lo[i], keep_hi[i]); the f32 values of the store that exist, as sorted
   * [lo, hi) runs of store offsets (n_spans of them). NULL / 0: every value exists. */
  int64_t *keep_lo, *keep_hi;
  size_t (*spans)[2];
  int n_spans;
  int *index; /* open-addressing hash of item indices by name (-1 empty): finds in O(1) */
  size_t index_cap;
} vt_params;

/* Returns 0, or -1 when the device has no usable backend. The store makes and owns a backend
 * instance for the device (the shared one on the CPU). */
int vt_params_init(vt_params *ps, vt_device device);
/* The same on a borrowed instance (which must outlive the store), e.g. to share one stream
 * with a ctx; ps->be is the instance either way. */
void vt_params_init_backend(vt_params *ps, const vt_backend *be);
void vt_params_free(vt_params *ps);
/* Registers a parameter (trainable by default) before vt_params_alloc. Returns NULL (and
 * writes err) on a duplicate name, a bad shape (a size <= 0, or sizes whose product or the
 * store's total overflows) or after allocation. */
vt_tensor *vt_params_add(vt_params *ps, const char *name, vt_dtype dtype, int ndim,
                         const int64_t *shape, char *err, size_t err_len);
/* Allocates the flat buffers (zeroed) and points every parameter into them. */
int vt_params_alloc(vt_params *ps, char *err, size_t err_len);
/* Marks every parameter whose name matches the glob (fnmatch) as trainable or frozen;
 * returns how many matched. Call vt_params_alloc_grads afterwards. */
int vt_params_set_trainable(vt_params *ps, const char *glob, bool trainable);
/* Marks every parameter matching the glob as a buffer (and frozen: set_trainable never makes
 * it trainable again); returns how many matched. */
int vt_params_set_buffer(vt_params *ps, const char *glob);
/* Lays out the gradient buffer over the trainable f32 parameters only (zeroed); frozen
 * parameters get no gradient and no requires_grad. */
int vt_params_alloc_grads(vt_params *ps, char *err, size_t err_len);
void vt_params_zero_grad(vt_params *ps);
vt_param *vt_params_find(const vt_params *ps, const char *name);
/* The index of the parameter named name in ps->items (from the name hash, O(1)), or -1. */
int vt_params_index(const vt_params *ps, const char *name);
size_t vt_params_count(const vt_params *ps, bool trainable_only); /* elements */

struct vt_ctx;
/* One tensor [sum of dim 0, rest] over n parameters ts[0..n) stored back to back in this order
 * (the same trailing shape; data, and gradients when any has one, contiguous), so several
 * projections of one input run as one GEMM; its gradient lands in the parameters' own
 * gradient slots. The view lives in ctx's step. NULL (no error) when they are not contiguous,
 * e.g. one of them is frozen: the caller then uses them one by one. */
vt_tensor *vt_params_concat_view(struct vt_ctx *ctx, vt_tensor *const *ts, int n);

/* bf16 mixed precision. The store keeps a bf16 copy of its whole f32 buffer on the device
 * (same offsets, 2 bytes per value) and points each f32 parameter's t.lowp into it; GEMMs of a
 * ctx in bf16 mode (vt_ctx_set_gemm_dtype) read those copies, while the f32 values stay the
 * masters that the optimizer updates and checkpoints save. Copies are made by the backend's
 * convert kernel (no host loop), so the same code serves every device:
 *  - enable_lowp allocates and fills them (call after the weights are initialised or loaded;
 *    dtype must be VT_BF16). Returns 0, or -1 with a message (out of memory, bad dtype);
 *  - sync_lowp refreshes all of them: the optimizer calls it after each update;
 *  - vt_param_write, _write_f32 and _fill refresh the written parameter's copy themselves;
 *  - disable_lowp frees them (t.lowp = NULL). */
int vt_params_enable_lowp(vt_params *ps, vt_dtype dtype, char *err, size_t err_len);
/* Whether parameter t (of this store) gets a bf16 copy (default yes). An embedding table that
 * is only gathered needs none (nn_embedding_init says so; a model tying it to its LM head says
 * yes again): its stretch of the copies is never written, so those pages are never resident,
 * and a GEMM that reads it anyway converts it per call. Call before vt_optim_init and
 * enable_lowp. */
void vt_params_set_copy(vt_params *ps, const vt_tensor *t, bool copy);
void vt_params_sync_lowp(vt_params *ps);
void vt_params_disable_lowp(vt_params *ps);
/* Stochastic rounding of the bf16 copies (train.stochastic_rounding; off = round to nearest
 * even): every later refresh draws each value's rounding from (seed, step, flat index)
 * (vt_sr_key / vt_sr_bits, autograd/kernels_optim.h). Returns -1 with a message when the
 * backend has no convert_sr. */
int vt_params_set_rounding(vt_params *ps, bool stochastic, uint64_t seed, char *err,
                           size_t err_len);
/* sync_lowp after optimizer step `step` (1-based, as the trainer counts): the step picks the
 * key, and later plain sync_lowp calls (a ZeRO all-gather's refresh, a parameter write) reuse
 * it, so a resumed run that syncs at its restored step makes the same copies. */
void vt_params_sync_lowp_step(vt_params *ps, int64_t step);

/* How ops read a parameter (t.reads, set by every op's input check, vt_check_inputs): through
 * a GEMM that takes the bf16 copy under bf16 mode (VT_READ_GEMM), or its f32 values
 * (VT_READ_F32: any other op, or a GEMM in f32 mode); a reshape marks nothing, its view
 * carries the marks to its reader. VT_READ_SHARDED marks a parameter whose
 * f32 values this rank does not all hold: an op that would read them fails with a message. */
enum { VT_READ_GEMM = 1, VT_READ_F32 = 2, VT_READ_SHARDED = 4 };

/* ZeRO under bf16: the f32 masters of trainable parameters sharded over ranks. Parameter i
 * keeps the f32 values of elements [keep_lo[i], keep_hi[i]) (arrays of ps->n; [0, numel) for
 * a whole one); the bf16 copies stay whole. The rest is released through the backend
 * (release_range): on the CPU its whole pages go back to the system (madvise), on a GPU with
 * virtual memory management its whole 2 MiB chunks are unmapped and freed; where the backend
 * cannot (a GPU without VMM) the values are set to NaN instead (a wrong reader shows). Only
 * trainable f32 parameters with bf16 copies may keep less than the whole. From then on
 * sync_lowp refreshes the copies of kept values only, reading a parameter with released values
 * is an error (vt_param_read*, ops: VT_READ_SHARDED; st_save_params takes a fetch for them),
 * a load writes the kept values only, and whoever writes every value back calls unshard first.
 * Returns 0, or -1 with a message. */
int vt_params_shard_masters(vt_params *ps, const int64_t *keep_lo, const int64_t *keep_hi,
                            char *err, size_t err_len);
/* Every f32 value exists again: the released memory is taken back (commit_range; it reads as
 * zeros until written) and nothing is sharded. Returns 0, or -1 with a message when the device
 * has not the memory (the store stays sharded). */
int vt_params_unshard_masters(vt_params *ps, char *err, size_t err_len);
/* Of the whole pages that hold only released f32 values (CPU), how many are resident
 * (mincore), with their count in *pages; 0 (and 0 pages) when nothing is released or on
 * another device, -1 when mincore fails. */
int64_t vt_params_released_resident(const vt_params *ps, int64_t *pages);
/* Whether parameter t's f32 values all exist on this rank. */
bool vt_param_has_masters(const vt_params *ps, const vt_tensor *t);

/* Parameter memory from the host, through the store's backend: nothing above autograd/ reads
 * or writes t->data or t->grad itself, so the same code serves every device. t must be a
 * parameter of the allocated store ps; host holds vt_numel(t) elements. Each returns 0, or -1
 * with a message naming the parameter in err. */
int vt_param_write(const vt_params *ps, vt_tensor *t, const void *host, char *err,
                   size_t err_len); /* host in t's dtype */
int vt_param_read(const vt_params *ps, const vt_tensor *t, void *host, char *err, size_t err_len);
/* As above with f32 host values, converted to or from t's dtype (round to nearest even). */
int vt_param_write_f32(const vt_params *ps, vt_tensor *t, const float *host, char *err,
                       size_t err_len);
int vt_param_read_f32(const vt_params *ps, const vt_tensor *t, float *host, char *err,
                      size_t err_len);
/* Sets every element of t to value (in t's dtype). */
int vt_param_fill(const vt_params *ps, vt_tensor *t, float value, char *err, size_t err_len);
/* The f32 gradient of t; zeros for a parameter without one (frozen). */
int vt_param_grad_read(const vt_params *ps, const vt_tensor *t, float *host, char *err,
                       size_t err_len);
/* The flat gradient buffer (grad_numel f32 values) to and from host memory, e.g. around a
 * host all-reduce, and scaled in place on the device (e.g. by 1 / world after a sum). */
void vt_params_grad_to_host(const vt_params *ps, float *host);
void vt_params_grad_from_host(vt_params *ps, const float *host);
void vt_params_scale_grad(vt_params *ps, float alpha);

#endif
