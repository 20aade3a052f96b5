/* The trainer of one stage (`vita train`): builds the stage's model through the model
 * interface (it never names a model), loads each part's initial weights or a checkpoint,
 * applies the trainable patterns, and runs every phase of the model's step (its own loss
 * terms, optimizer state, learning rate and schedule) over batches from a data mixture, with
 * gradient accumulation, data-parallel all-reduce, metrics, periodic atomic checkpoints and
 * exact resume; a stop request (SIGINT/SIGTERM) finishes the current step, saves and
 * returns. Also `vita eval`: the model's metrics over each sample of a set exactly once. */
#ifndef VT_TRAINER_H
#define VT_TRAINER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "model/model.h"
#include "stages/stage_config.h"
#include "train/dist.h"

typedef struct {
  const stage_cfg *cfg;
  bool resume;                 /* continue from the newest complete checkpoint, if any */
  const vt_dist *dist;         /* NULL: one process */
  FILE *console;               /* progress output (rank 0 only); NULL = quiet */
  volatile sig_atomic_t *stop; /* set asynchronously: stop at the next micro-batch, save, return */
  int64_t stop_after;          /* > 0: act as if stopped once this step is done (tests) */
  /* weights of earlier stages (checkpoint or model directories, newest first) that fill every
   * parameter they hold before the stage's own init sources fill the rest (a curriculum);
   * not used when resuming from the stage's own checkpoint */
  const char *const *base_weights;
  int n_base_weights;
  const char *base_globs;   /* what the base weights may fill (comma-separated; NULL: all) */
  const char *save_initial; /* when set: the initial weights are written there (safetensors) */
} vt_trainer_opts;

typedef struct {
  int64_t start_step; /* the step the run started from (0, or the checkpoint's) */
  int64_t step;       /* optimizer steps done when it returned */
  int64_t total_steps;
  double first_loss, last_loss; /* the weighted sum of the terms of the first phase */
  bool interrupted;
  char checkpoint[4096]; /* the last checkpoint written ("" if none) */
  int64_t skipped_samples, truncated_samples;
  int64_t params, trainable_params; /* elements */
  int64_t sharded_masters;          /* values whose f32 masters bf16 ZeRO shards (0: none) */
} vt_train_result;

/* Besides checkpoints and metrics.jsonl, a run writes RUN_DIR/samples.json when it returns:
 * {"stage", "step", "datasets": [{"name", "ratio", "size", "per_epoch", "drawn"}]}, drawn
 * counting every sample the mixture gave out on all ranks since step 0 (skipped ones too). */

/* Returns 0 (also when interrupted: see r->interrupted), or -1 with err. */
int vt_train(const vt_trainer_opts *o, vt_train_result *r, char *err, size_t err_len);

/* The result of one pass over an eval set. */
typedef struct {
  vt_metric metrics[VT_MODEL_MAX_METRICS]; /* value = sum / count */
  int n_metrics;
  int64_t samples; /* samples evaluated over all ranks (each sample of the set once) */
  int64_t skipped; /* samples the model cannot take (out-of-vocabulary ids, media) */
} vt_eval_result;

/* The model's eval metrics over every sample of one epoch of `mixture` exactly once, the
 * samples split over the ranks, with the model of cfg and the weights at `weights` (a
 * checkpoint or model directory, or a file). */
int vt_eval(const stage_cfg *cfg, const char *weights, const char *mixture, const vt_dist *dist,
            vt_eval_result *res, char *err, size_t err_len);
/* The value of metric name in res (NAN when absent or counted nothing). */
double vt_eval_value(const vt_eval_result *res, const char *name);

#endif
