/* Data-parallel gradient reduction and ZeRO sharding over the collective interface.
 *
 * vt_reducer: the gradients an optimizer updates (one phase's stretch of the flat gradient
 * buffer), cut into buckets of about train.bucket_mb, from the end of the buffer (where
 * backward finishes first) to its start. Armed on the ctx before the last micro-batch's
 * backward, it starts a bucket's non-blocking reduction as soon as every gradient in it is
 * final (autograd's gradient-ready hook), so communication overlaps the rest of backward.
 * Buckets start in one fixed order on every rank (a bucket waits for those before it), as
 * collectives must; ranks whose tapes differ (a batch without images) still agree.
 *   ZeRO 0 and 1: each bucket is all-reduced (ZeRO 1 then updates only its shard).
 *   ZeRO 2: buckets are cut at shard boundaries and each is reduced to its owner only, which
 *   together is a reduce-scatter of the stretch.
 *
 * vt_zero_plan: bytes per rank of weights, gradients, optimizer state and communication
 * buffers at a ZeRO stage, for `vita plan` and the benchmark. */
#ifndef VT_ZERO_H
#define VT_ZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/ctx.h"
#include "train/coll.h"
#include "train/optim.h"

/* Buckets in flight at most: each holds an MPI temporary of its size until it completes. */
#define VT_REDUCER_WINDOW 2

typedef struct {
  size_t lo, hi; /* elements of the flat gradient buffer */
  int owner;     /* ZeRO 2: the rank that receives the sum; -1: all ranks */
  vt_coll_req req;
  int64_t pending; /* gradients in it not final yet (this backward) */
  bool started;
} vt_bucket;

typedef struct {
  vt_coll *coll;
  vt_params *ps;
  int zero;
  vt_bucket *b;
  int nb;
  int next;                  /* buckets [0, next) have been started */
  int done;                  /* buckets [0, done) completed (tested during backward) */
  size_t *slot_lo, *slot_hi; /* the gradient slots of the covered parameters, sorted */
  int64_t n_slots;
  int *slot_b0, *slot_b1; /* buckets [b0, b1) each slot overlaps */
  size_t lo, hi;          /* the stretch, and this rank's shard of it (ZeRO 2) */
  size_t own_lo, own_hi;
  int window; /* buckets in flight at most (VT_REDUCER_WINDOW; <= 0: no limit) */
  bool armed, failed;
  char err[600];
} vt_reducer;

/* Buckets over the stretch of o (the parameters it updates) for a group of coll's size;
 * bucket_bytes <= 0 makes one bucket per shard (no overlap: all start after backward). */
int vt_reducer_init(vt_reducer *r, vt_coll *coll, const vt_optim *o, int zero, double bucket_bytes,
                    char *err, size_t err_len);
void vt_reducer_free(vt_reducer *r);
/* Installs the hook on ctx for the next vt_backward (no-op in a group of one or without
 * overlap); vt_reducer_disarm removes it. */
void vt_reducer_arm(vt_reducer *r, vt_ctx *ctx);
void vt_reducer_disarm(vt_reducer *r, vt_ctx *ctx);
/* Starts every bucket not started yet and waits for all: afterwards the gradients hold the
 * sums over ranks (ZeRO 2: in this rank's shard only). Returns 0 or -1 with err. */
int vt_reducer_finish(vt_reducer *r, char *err, size_t err_len);

/* Zeroes the gradient buffer; at ZeRO 2 on the CPU by returning its pages to the system
 * (they read as zeros), so that only the gradients backward writes and this rank keeps are
 * resident. */
void vt_zero_clear_grads(vt_params *ps, int zero, int world);

/* Scales the reduced gradients by alpha (1 / the global count): the
 * whole buffer, or at ZeRO 2 over several ranks only this rank's shard, which alone holds sums;
 * touching the rest would bring back the pages the reduction returned. */
void vt_zero_scale_grads(vt_params *ps, const vt_optim *o, int zero, int world, float alpha);

/* Memory of one rank, in bytes (see vt_zero_plan). */
typedef struct {
  double weights;    /* the full model in its dtypes (every rank runs the whole forward) */
  double grads;      /* the flat f32 gradient buffer of the trainable parameters, at its peak */
  double grads_idle; /* what of it stays resident between steps (ZeRO 2 on the CPU: the shard) */
  double optimizer;  /* moments (2 per value for Adam, 1 for SGD with momentum), sharded at 1+ */
  double comm;       /* staging of the collectives (NCCL pads shards; MPI: vt_zero_plan_overlap) */
  double total;
  int64_t shard; /* values of each rank's shard (the last may be shorter) */
} vt_zero_mem;

/* Per-rank memory of a model with n_weight_bytes of weights and n_trainable f32 trainable
 * values, an optimizer keeping moments_per_value f32 moments per value, at ZeRO stage `zero`
 * over world ranks (nccl: GPU ranks). total = weights + grads + optimizer + comm. The gradient
 * peak is the full flat buffer at every stage: backward accumulates into it and writes every
 * page before the first buckets are reduced. At stage 2 on the CPU the pages of other ranks'
 * buckets are dropped once reduced, so only the shard stays resident between steps
 * (grads_idle); on GPUs the buffer stays allocated. MPI's own temporaries (a reduce keeps
 * about one bucket per bucket in flight) are not counted. */
vt_zero_mem vt_zero_plan(double n_weight_bytes, int64_t n_trainable, int moments_per_value,
                         int zero, int world, bool nccl);

/* What the buckets change on CPU ranks (MPI), with buckets of bucket_bytes overlapped with
 * backward: MPI holds a bucket-sized temporary for each bucket in flight, VT_REDUCER_WINDOW
 * of them (m->comm); and at ZeRO 2 with one micro-batch per step, each bucket another rank
 * owns is returned to the system as soon as its reduce completes, while backward still runs,
 * so the gradient peak is this rank's shard plus the window's buckets (as long as the
 * reductions keep pace with backward; the bench measures it). With several micro-batches the
 * first ones write every page before any reduction, and GPU ranks keep the buffer: the peak
 * stays the full buffer. Adjusts m->grads, m->comm and m->total. */
void vt_zero_plan_overlap(vt_zero_mem *m, int zero, int world, bool nccl, double bucket_bytes,
                          int64_t grad_accum);

#endif
