/* Internals of the trainer shared by trainer.c (the loop), trainer_batch.c (batches from the
 * mixture) and trainer_ckpt.c (checkpoint save and resume). */
#ifndef VT_TRAINER_IMPL_H
#define VT_TRAINER_IMPL_H

#include "data/mixture.h"
#include "data/pack.h"
#include "model/qwen2.h"
#include "train/metrics.h"
#include "train/trainer.h"

typedef struct {
  const vt_train_cfg *cfg;
  const vt_dist *dist;
  vt_dist solo;
  qwen2_cfg mcfg;
  qwen2 model;
  bool model_ready;
  vt_params ps;
  vt_optim opt;
  bool opt_ready;
  vt_sched sched;
  mix_config mixcfg;
  mix *mix;
  vt_ctx *ctx;
  vt_rng rng;
  int64_t step, total_steps, tokens_seen;
  int64_t skipped_samples, truncated_samples;
  /* one micro-batch on the host: [batch, max_len] */
  int32_t *ids, *labels, *lengths;
  int32_t *pos, *segments; /* packed batches only: RoPE positions and sample index per token */
  mix_pack pack;
  int64_t batch_t;      /* padded length of the current batch */
  int64_t batch_tokens; /* labels counted by the loss in the current batch */
  shard_sample sample;
} trainer;

/* Creates the model and the parameter store from cfg->model_config. */
int trainer_build_model(trainer *t, char *err, size_t err_len);
/* Fills the next micro-batch from m (skipping unusable samples, counted). */
int trainer_next_batch(trainer *t, mix *m, char *err, size_t err_len);
/* Saves a checkpoint of the current step under RUN_DIR/checkpoints (rank 0 writes). */
int trainer_save(trainer *t, char *path_out, size_t path_len, char *err, size_t err_len);
/* Restores weights, optimizer, step, RNG and data cursor from a checkpoint directory. */
int trainer_restore(trainer *t, const char *dir, char *err, size_t err_len);

#endif
