/* The trainer of one stage (`vita train`): builds the Qwen2 model from its HF config, loads
 * initial weights or a checkpoint, applies the trainable patterns, and runs the optimizer
 * over batches from a data mixture with gradient accumulation, data-parallel all-reduce,
 * metrics, periodic atomic checkpoints and exact resume; a stop request (SIGINT/SIGTERM)
 * finishes the current step, saves and returns. Also `vita eval`'s mean loss. */
#ifndef VT_TRAINER_H
#define VT_TRAINER_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "train/dist.h"
#include "train/train_config.h"

typedef struct {
  const vt_train_cfg *cfg;
  bool resume;                 /* continue from the newest complete checkpoint, if any */
  const vt_dist *dist;         /* NULL: one process */
  FILE *console;               /* progress output (rank 0 only); NULL = quiet */
  volatile sig_atomic_t *stop; /* set asynchronously: save after the current step, return */
  int64_t stop_after;          /* > 0: act as if stopped once this step is done (tests) */
} vt_trainer_opts;

typedef struct {
  int64_t start_step; /* the step the run started from (0, or the checkpoint's) */
  int64_t step;       /* optimizer steps done when it returned */
  int64_t total_steps;
  double first_loss, last_loss;
  bool interrupted;
  char checkpoint[4096]; /* the last checkpoint written ("" if none) */
  int64_t skipped_samples, truncated_samples;
} vt_train_result;

/* Returns 0 (also when interrupted: see r->interrupted), or -1 with err. */
int vt_train(const vt_trainer_opts *o, vt_train_result *r, char *err, size_t err_len);

/* Mean LM loss over the counted tokens of one epoch of `mixture` with the model of cfg and
 * the weights at `weights` (a checkpoint or model directory, or a file). */
int vt_eval(const vt_train_cfg *cfg, const char *weights, const char *mixture, const vt_dist *dist,
            double *loss, int64_t *tokens, char *err, size_t err_len);

#endif
