/* The stage config (YAML) that `vita train --config STAGE.yaml` runs: which model and which
 * of its parts train, where each part's initial weights come from (several sources, each
 * with a name prefix), the loss terms and their weights, the data mixture and its ratios,
 * the optimizer (per-group learning rates, per-phase overrides), the schedule, the device
 * and the output. Values are plain (strings and numbers); train/ turns them into optimizer
 * and schedule settings. Unknown keys are errors naming the key, its line and the file. */
#ifndef VT_STAGE_CONFIG_H
#define VT_STAGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/tensor.h"
#include "data/yamlcfg.h"
#include "model/model.h"

#define STAGE_PATH 4096
#define STAGE_GLOBS 1024 /* comma-separated fnmatch globs */
#define STAGE_MAX_LIST 32
#define STAGE_MAX_GROUPS 16
#define STAGE_MAX_PARTS 16
#define STAGE_MAX_INIT 8
#define STAGE_MAX_RATIOS 16
#define STAGE_MAX_BASES 16 /* earlier stages whose weights a curriculum stage starts from */

/* A named set of parameters (model.parts): usable wherever globs are. */
typedef struct {
  char name[64];
  char globs[STAGE_GLOBS];
} stage_part;

/* One source of initial weights (init:): every selected parameter is read from `from` under
 * the name it has there, which is ours without `prefix` (ours = prefix + theirs). */
typedef struct {
  char from[STAGE_PATH];    /* safetensors file, index, model or checkpoint directory */
  char params[STAGE_GLOBS]; /* which parameters it fills ("*": all); parts expanded */
  char prefix[256];
  int line; /* of the entry, for messages */
} stage_init;

typedef struct {
  char globs[STAGE_GLOBS];
  double lr, weight_decay; /* NAN: the optimizer's */
} stage_group;

/* Optimizer settings; NAN / -1 / "" mean "not given" (defaults of the kind, or in a phase
 * the top-level train values). */
typedef struct {
  char kind[16]; /* adamw, adam, sgd */
  double lr, weight_decay, beta1, beta2, eps, momentum, max_grad_norm;
  int decay_all;
  stage_group groups[STAGE_MAX_GROUPS];
  int n_groups; /* -1: not given */
} stage_optim;

typedef struct {
  char kind[16]; /* constant, cosine, noam, exp_epoch */
  int64_t warmup_steps, steps_per_epoch;
  double warmup_ratio, min_lr_ratio, noam_model_dim, gamma;
} stage_sched;

/* train.phases.NAME: overrides for one phase of a multi-phase model. */
typedef struct {
  char name[64];
  stage_optim optim;
  stage_sched sched;
} stage_phase;

typedef struct {
  char name[64];
  double weight;
} stage_weight;

typedef struct {
  char path[STAGE_PATH]; /* the config file itself */
  char name[128];        /* stage: (default: the file's base name) */
  vt_device device;      /* device: cpu | cuda[:N] */
  /* model: */
  char model_name[64];           /* "" : from the config's model_type */
  char model_config[STAGE_PATH]; /* the model's JSON config file, or a directory with config.json */
  char tokenizer[STAGE_PATH];    /* copied on export; "" = none */
  vt_model_opts model_opts;
  bool frozen_train; /* model.frozen_mode: train */
  stage_part parts[STAGE_MAX_PARTS];
  int n_parts;
  /* init: */
  stage_init init[STAGE_MAX_INIT];
  int n_init;
  /* data: */
  char mixture[STAGE_PATH];
  char eval_mixture[STAGE_PATH];
  stage_weight ratios[STAGE_MAX_RATIOS]; /* dataset ratios overriding the mixture's */
  int n_ratios;
  int64_t max_len;
  /* train: */
  int64_t steps, epochs, batch_size, grad_accum;
  uint64_t seed;
  /* train.precision: fp32 (VT_F32, the default) or bf16 (VT_BF16: bf16 GEMMs with f32
   * accumulation and f32 masters, see vt_ctx_set_gemm_dtype) */
  vt_dtype precision;
  /* train.stochastic_rounding: the bf16 weight copies are rounded stochastically (seeded by
   * train.seed and the step) instead of to nearest; needs precision bf16. Off by default. */
  bool stochastic_rounding;
  char trainable[STAGE_MAX_LIST][STAGE_GLOBS]; /* parts expanded; empty = everything */
  int n_trainable;
  char frozen[STAGE_MAX_LIST][STAGE_GLOBS]; /* applied after trainable */
  int n_frozen;
  stage_weight losses[VT_MODEL_MAX_TERMS]; /* term weights; terms not named weigh 1 */
  int n_losses;
  stage_optim optim;
  stage_phase phases[VT_MODEL_MAX_PHASES];
  int n_phases;
  stage_sched sched;
  /* train: data parallel (ZeRO stage 0, 1 or 2; gradient bucket size in MiB, 0 = one
   * reduction after backward; collective deadline in seconds) */
  int zero;
  double bucket_mb, coll_timeout_s;
  /* output: */
  char out_dir[STAGE_PATH];
  int64_t save_every, log_every, eval_every;
  int keep_last;
} stage_cfg;

/* Defaults of every field (a config built in code, like the demo's, starts here). */
void stage_cfg_defaults(stage_cfg *cfg);
/* Upper bounds of a stage's sizes (the config is refused beyond them). */
#define STAGE_MAX_LEN (INT64_C(1) << 24)
#define STAGE_MAX_BATCH (INT64_C(1) << 20)
#define STAGE_MAX_TOKENS (INT64_C(1) << 31)
#define STAGE_MAX_STEPS (INT64_C(1) << 40)

/* Loads and validates path; relative paths in it are taken from the file's directory.
 * Returns 0, or -1 with err naming the file, the line and the key. */
int stage_config_load(stage_cfg *cfg, const char *path, char *err, size_t err_len);
/* stage_config_load, then the overlays maps[0..n_maps) of ov applied in order (NULL entries
 * skipped): mappings with the stage config's keys (a curriculum's overrides), relative paths
 * in them taken from ov's file. A scalar given replaces, a list given (init, trainable,
 * frozen, groups) replaces the list, a mapping merges by name (parts, ratios, losses, phases);
 * model.parts redefined after trainable patterns were expanded do not change those patterns.
 * extra: further keys the overlay maps may hold (the caller's own). The whole config is
 * validated after the last overlay. Returns 0 or -1 with err naming file, line and key. */
int stage_config_load_with(stage_cfg *cfg, const char *path, ycfg *ov, yaml_node_t *const *maps,
                           int n_maps, const char *const *extra, char *err, size_t err_len);
/* The phase overrides called name, or NULL. */
const stage_phase *stage_find_phase(const stage_cfg *cfg, const char *name);
/* The weight of loss term name (1 when the config does not name it). */
double stage_loss_weight(const stage_cfg *cfg, const char *name);

#endif
