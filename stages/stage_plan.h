/* A stage's plan (`vita plan`, `vita info --stage`): what the model of a stage holds and what
 * one of its steps computes, from the stage config alone (the model registers its parameters,
 * nothing is allocated). The memory a rank holds for gradients and optimizer state at a ZeRO
 * stage is train/zero.h's vt_zero_plan, fed with the counts here (the command joins them).
 *
 *   weights      fp32: 4 N bytes; bf16: 4 N f32 masters + 2 N bf16 compute copies; at ZeRO
 *                1/2 the f32 masters of the S shardable values are 4 S / world (CPU pages,
 *                GPU 2 MiB chunks: n_kept_runs bounds the rounding)
 *                (train/zero_masters.h: trainable 2-D weights that only GEMMs read; the plan
 *                takes every trainable 2-D parameter but embedding tables and codebooks, by
 *                name, as the trainer decides by the reads of a forward)
 *   activations  the step arena of one micro-batch: the model's cost hook (model.h), per part
 *                on the tape when gradients reach it, forward alone otherwise; summed over
 *                the parts of a phase, the largest phase's (the arena is reset between)
 * FLOPs of a sample: each part's forward; input gradients (the forward's GEMMs again and
 * twice its attention) where gradients reach it; weight gradients for its trainable share. A
 * part gets gradients when it trains or one of its inputs does (vt_model_cost.inputs). */
#ifndef VT_STAGE_PLAN_H
#define VT_STAGE_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "stages/stage_config.h"

typedef struct {
  int world;            /* ranks, >= 1 */
  int zero;             /* 0, 1 or 2 */
  bool bf16;            /* bf16 compute copies over fp32 masters */
  vt_model_shape shape; /* zeros: the stage's max_len and batch_size, then the model's defaults */
  double bucket_bytes;  /* one gradient reduction bucket (0: the config's train.bucket_mb) */
} stage_plan_opts;

typedef struct {
  vt_model_cost cost;
  int64_t n_params, n_trainable;
  bool grad; /* gradients reach it (it or a part before it trains) */
} stage_plan_part;

typedef struct {
  char model[64];
  vt_model_shape shape; /* the micro-batch planned (defaults filled) */
  int world;
  bool bf16;
  int64_t n_params, n_trainable, grad_accum;
  int64_t n_shardable; /* f32 master values bf16 ZeRO shards (see above) */
  /* Runs of values a rank keeps at most: the runs of f32 parameters kept whole (store order),
   * and one shard per phase. GPUs release masters in 2 MiB chunks (autograd/cuda/cuda_vmm.cu),
   * and each run keeps the chunks it touches: less than 2 chunks more than its values. */
  int64_t n_kept_runs;
  double bucket_bytes; /* gradient reduction buckets (0: one reduction after backward) */
  int moments;         /* f32 optimizer values per trainable value (AdamW / Adam 2, SGD 1) */
  stage_plan_part parts[VT_MODEL_MAX_COST_PARTS];
  int n_parts;                  /* 0: the model gives no cost estimate (no activations or FLOPs) */
  double weights, grads, optim; /* bytes per rank */
  double act, act_recompute;    /* bytes per rank, one micro-batch */
  double flops_sample;          /* forward + backward of one sample */
  double flops_step;            /* of one optimizer step over all ranks */
} stage_plan;

/* The trainable set of cfg (train.trainable, then train.frozen) applied to ps's flags; every
 * pattern must match a parameter. Returns 0, or -1 with err naming the file and the pattern.
 * The trainer uses it too, so the plan counts what a run trains. */
int stage_apply_trainable(const stage_cfg *cfg, vt_params *ps, char *err, size_t err_len);

/* Plans cfg at o. Returns 0, or -1 with err (the config, the model, the options). */
int stage_plan_make(const stage_cfg *cfg, const stage_plan_opts *o, stage_plan *p, char *err,
                    size_t err_len);

#endif
