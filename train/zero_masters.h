/* fp32 master weights sharded over ranks under bf16 ZeRO 1 and 2 (vt_zero_masters).
 *
 * Under `precision: bf16` the GEMMs read the store's bf16 copies; other ops (embedding
 * lookups, norms, biases, convolutions, weight norm) read a parameter's f32 values. After the
 * trainer's probe forward (before the first step), which marked how each parameter is read
 * (VT_READ_* in params.h, OR-ed over the ranks), a trainable 2-D parameter that only GEMMs
 * read keeps f32 values for this rank's shard of its phase's stretch only; every other
 * parameter keeps all of them. The store releases the rest (vt_params_shard_masters). After each
 * update:
 *  - the updated shard, rounded to bf16 by the optimizer (stochastically under
 *    train.stochastic_rounding, keyed by the store offset, so any world size makes the same
 *    copies), is all-gathered into the bf16 copies of the whole stretch: half the bytes of an
 *    f32 all-gather;
 *  - the parameters that keep whole f32 values (small: norms, biases; and embedding tables)
 *    are all-gathered in f32, packed into one run in stretch order.
 * The bf16 all-gather runs in place over the copies, one allgatherv per run of consecutive
 * parameters with copies that lie alike in the copies and in the gradient layout (one run
 * when every parameter of the stretch has a copy and no frozen one sits between them; an
 * embedding table without a copy, or a frozen parameter, starts a new run). It writes no
 * other memory: at ZeRO 2 the released gradient pages stay released, and the part of the
 * copy buffer under a table without a copy is never written. */
#ifndef VT_ZERO_MASTERS_H
#define VT_ZERO_MASTERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "train/coll.h"
#include "train/optim.h"

typedef struct {
  const vt_optim *o;
  bool on;             /* some masters of this stretch are sharded */
  int *kept, n_kept;   /* covered parameters that keep whole f32 values, in stretch order */
  size_t *kept_at;     /* [n_kept]: each one's offset in the packed run */
  size_t kept_n;       /* values of the packed run */
  size_t *kept_counts; /* [world]: the packed run's values in each rank's shard */
  int world, n_runs;   /* the bf16 gather's runs over the copies (see above) */
  size_t *run_copy;    /* [n_runs]: each run's first element in the copy buffer */
  size_t *run_counts;  /* [n_runs * world]: the run's values in each rank's shard */
} vt_zero_masters;

/* Whether parameter p, read as `reads` says (over all ranks), keeps only its shard of f32
 * values: trainable, 2-D, read by GEMMs and never in f32. */
bool vt_zero_master_sharded(const vt_param *p, uint8_t reads);
/* Sets zm up for optimizer o (sharded over `world` ranks); reads[ps->n] as above. zm->on is
 * false (and nothing is sharded) when o is not sharded, the store has no bf16 copies or no
 * parameter qualifies. Returns 0, or -1 out of
 * memory. */
int vt_zero_masters_init(vt_zero_masters *zm, const vt_optim *o, int world, const uint8_t *reads,
                         char *err, size_t err_len);
void vt_zero_masters_free(vt_zero_masters *zm);
/* This rank's f32 element range of each parameter o covers, into keep_lo / keep_hi [ps->n]
 * (vt_params_shard_masters' arguments); other entries are left as they are. */
void vt_zero_masters_keep(const vt_zero_masters *zm, int64_t *keep_lo, int64_t *keep_hi);
/* After o's step on this rank's shard: the bf16 copies and the whole f32 parameters of the
 * stretch from every rank (see above). Returns 0, or -1 with the collective's message. */
int vt_zero_masters_gather(const vt_zero_masters *zm, vt_coll *c, char *err, size_t err_len);
/* Its first half: the bf16 copies of the stretch from every rank's shard (a restore that
 * loaded only this rank's masters refreshes its copies and gathers the rest). */
int vt_zero_masters_gather_copies(const vt_zero_masters *zm, vt_coll *c, char *err, size_t err_len);

/* Bytes of weights per rank for `vita plan`: bf16 copies of all n_f32 f32 values, and f32
 * values of everything but a shard (of world) of the n_sharded values that keep only one. */
double vt_zero_masters_plan(int64_t n_f32, int64_t n_other_bytes, int64_t n_sharded, int world);

#endif
