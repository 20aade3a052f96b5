/* Optimizers over a vt_params store: AdamW (decoupled decay), Adam (coupled L2) and SGD, with
 * parameter groups chosen by name globs, global-norm clipping and skipping of non-finite steps.
 * Moments are fp32 and flat, laid out exactly like the store's gradient buffer (trainable
 * parameters only; the stretch of it an optimizer's own parameters span), so an update is one
 * pass through the backend's optim kernels. */
#ifndef VT_OPTIM_H
#define VT_OPTIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/kernels_optim.h"
#include "autograd/params.h"

typedef enum { VT_OPTIM_ADAMW, VT_OPTIM_ADAM, VT_OPTIM_SGD } vt_optim_kind;

/* A parameter group: every parameter whose name matches one of the comma-separated fnmatch
 * globs (e.g. "vision_tower.*,mlp1.*") gets this base LR and weight decay. Groups are tried in
 * order and the first match wins; parameters no group claims use the config's lr and
 * weight_decay. A glob that matches no parameter of the store is an error (a typo). */
typedef struct {
  const char *globs;
  double lr;
  double weight_decay;
} vt_optim_group_cfg;

typedef struct {
  vt_optim_kind kind;
  double lr, weight_decay;  /* the default group */
  double beta1, beta2, eps; /* ADAMW / ADAM */
  double momentum;          /* SGD; 0 = plain SGD, no buffer */
  double max_grad_norm;     /* clip the global gradient norm to this; 0 = no clipping */
  const vt_optim_group_cfg *groups;
  int n_groups;
  /* Weight decay is not applied to parameters that vt_optim_is_no_decay() names (biases,
   * norms, layer scales, every 1-D parameter) unless decay_all is set. */
  bool decay_all;
  /* [ps->n] or NULL: the optimizer updates trainable parameter i only where only[i] (a phase
   * of a multi-phase model owns its own optimizer over its parameters). */
  const bool *only;
  /* ZeRO sharding: with shard_world > 1 the optimizer holds moments for, and updates, only
   * shard shard_rank of its stretch of the gradient buffer (vt_coll_shard_range's split);
   * the caller reduces the gradients of that shard before the step and all-gathers the
   * updated parameters after it (vt_optim_pack_shard, vt_optim_unpack_params). */
  int shard_rank, shard_world;
} vt_optim_cfg;

/* PyTorch's defaults for the kind: AdamW lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.01;
 * Adam the same with wd 0; SGD lr 1e-3, no momentum, wd 0. No clipping. */
vt_optim_cfg vt_optim_defaults(vt_optim_kind kind);

/* The no-decay rule: a parameter with one dimension, or whose name matches one of
 *   "*bias"  "*norm*"  "*.ln_*"  "ln_*"  "*.ln[0-9]*"  "*.ls1"  "*.ls2"
 * (biases; LayerNorm/RMSNorm/GroupNorm weights such as "input_layernorm.weight", "norm1",
 * GPT-style "ln_1"; InternViT's layer scales ls1/ls2), gets no weight decay. */
bool vt_optim_is_no_decay(const vt_param *p);

/* One internal group: a user group split into its decaying and non-decaying parameters. Its
 * segments are segs[seg_begin, seg_end). */
typedef struct {
  double lr, weight_decay; /* base values; the schedule multiplies lr */
  int64_t seg_begin, seg_end;
} vt_optim_group;

typedef struct {
  vt_optim_cfg cfg; /* groups copied; globs point into the caller's strings until init ends */
  vt_params *ps;
  const vt_backend *be;
  size_t numel;       /* == ps->grad_numel when the optimizer was built */
  size_t flat_lo;     /* the moments mirror gradient values [flat_lo, flat_lo + state_numel) */
  size_t state_numel; /* (all of them unless cfg->only leaves some out) */
  int shard_rank, shard_world;
  size_t shard_lo, shard_n; /* this rank's shard, in values from flat_lo */
  /* the stretch's parameters as one f32 run in the gradient layout (value j of the stretch at
   * param_base[j]), or NULL when the store lays them out otherwise (frozen ones between) */
  float *param_base;
  float *m, *v;       /* moments (device), shard_n values each; NULL where unused */
  vt_optim_seg *segs; /* device array of segments, grouped by internal group */
  int64_t n_segs;
  vt_optim_group *groups; /* host array */
  int n_int_groups;
  int64_t t;         /* updates applied (Adam's bias-correction step); checkpointed */
  int64_t n_skipped; /* steps skipped because a gradient was NaN or Inf */
  bool *covered;     /* [ps->n]: parameters this optimizer updates and holds state for */
} vt_optim;

/* Builds the optimizer over the trainable parameters of ps (after vt_params_alloc_grads),
 * those of cfg->only when given:
 * assigns groups, allocates zeroed moments and the segment table. Frozen parameters get no
 * state. Returns 0, or -1 with a message in err (bad hyper-parameter, a glob matching nothing,
 * a device without optim kernels, out of memory). vt_optim_free releases everything. */
int vt_optim_init(vt_optim *o, vt_params *ps, const vt_optim_cfg *cfg, char *err, size_t err_len);
void vt_optim_free(vt_optim *o);

typedef struct {
  double grad_norm; /* global L2 norm of the gradients before clipping (NaN/Inf if bad) */
  double clip_coef; /* factor applied to the gradients (1 when not clipped) */
  double lr;        /* the default group's effective LR of this step */
  bool skipped;     /* the gradients were not finite and nothing was updated */
} vt_optim_stats;

/* One update from the gradients in ps->grad, every group's LR being its base LR times
 * lr_mult (a schedule's value). Computes the global gradient norm in double, and when it is
 * not finite skips the step: parameters, moments and t stay as they were, n_skipped grows
 * and a warning naming `step` (the caller's step number) goes to stderr. Otherwise clips as
 * torch.nn.utils.clip_grad_norm_ does (coef = max_norm / (norm + 1e-6) when below 1; the
 * gradient buffer itself is left unscaled) and applies the update. Returns 0, or -1 with a
 * message in err when the store's trainable set changed since vt_optim_init. */
int vt_optim_step(vt_optim *o, double lr_mult, int64_t step, vt_optim_stats *stats, char *err,
                  size_t err_len);

/* The same with the global gradient norm given (NAN: computed here from the whole buffer),
 * for sharded optimizers whose caller adds vt_optim_shard_sumsq over the ranks. */
int vt_optim_step_norm(vt_optim *o, double lr_mult, int64_t step, double grad_norm,
                       vt_optim_stats *stats, char *err, size_t err_len);
/* Sum of squares (double) of the gradients of this rank's shard. */
double vt_optim_shard_sumsq(const vt_optim *o);
/* ZeRO's all-gather around the step: pack copies the parameter values of this rank's shard
 * into their gradient slots (the gradients are spent by then), so that an in-place all-gather
 * of the stretch [flat_lo, flat_lo + state_numel) of the gradient buffer gives every rank all
 * updated values; unpack copies every covered parameter back out of its slot. */
void vt_optim_pack_shard(const vt_optim *o);
void vt_optim_unpack_params(const vt_optim *o);

/* Global L2 norm of the store's gradient buffer, accumulated in double; -1 when the store's
 * device has no optim kernels. */
double vt_optim_grad_norm(const vt_params *ps);
/* Scales the gradient buffer in place so its global norm is at most max_norm (as
 * torch.nn.utils.clip_grad_norm_); returns the norm before clipping, -1 when the store's
 * device has no optim kernels. */
double vt_optim_clip_grads(vt_params *ps, double max_norm);

/* The optimizer state of one parameter, for checkpoints: *m and *v point at its numel values
 * in the flat moment buffers (device memory owned by the optimizer; *v is NULL for SGD, both
 * NULL for plain SGD). Returns 0, or -1 with a message when the name is unknown or the
 * parameter is frozen or not this optimizer's (such parameters have no state here). */
int vt_optim_state(const vt_optim *o, const char *name, float **m, float **v, int64_t *numel,
                   char *err, size_t err_len);
/* The piece of parameter i (an index into ps->items) whose state this rank holds: elements
 * [*first, *first + *n) of it, with *m and *v pointing at their moments (NULL where the
 * kind has none). False (n = 0) when it holds none: frozen, another phase's, or another
 * rank's shard. Without sharding the piece is the whole parameter. */
bool vt_optim_piece(const vt_optim *o, int i, float **m, float **v, int64_t *first, int64_t *n);

#endif
