/* The YAML config of one training stage for `vita train`: model (HF config, initial weights,
 * recompute), data (mixture, max length), optimization (optimizer, groups, schedule, batch,
 * accumulation, steps or epochs, seed, trainable patterns) and output (run dir, checkpoint
 * interval and retention). Unknown keys are errors naming the key, its line and the file. */
#ifndef VT_TRAIN_CONFIG_H
#define VT_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "train/optim.h"
#include "train/schedule.h"

#define VT_CFG_PATH 4096
#define VT_CFG_MAX_GLOBS 32
#define VT_CFG_MAX_GROUPS 16

typedef struct {
  char path[VT_CFG_PATH]; /* the config file itself */
  /* model: */
  char model_config[VT_CFG_PATH]; /* HF config.json, or a directory holding one */
  char init[VT_CFG_PATH];         /* initial weights (file, index or dir); "" = random */
  char tokenizer[VT_CFG_PATH];    /* copied on export; "" = none */
  bool recompute;
  int64_t ce_chunk_rows;
  /* data: */
  char mixture[VT_CFG_PATH];      /* data mixture YAML (data/mixture.h) */
  char eval_mixture[VT_CFG_PATH]; /* optional, for eval_every */
  int64_t max_len;                /* longer samples are cut (and counted) */
  /* train: */
  int64_t steps, epochs; /* exactly one of them > 0 */
  int64_t batch_size;    /* sequences per micro-batch on each rank */
  int64_t grad_accum;    /* micro-batches per optimizer step */
  uint64_t seed;
  vt_optim_cfg optim;
  vt_optim_group_cfg groups[VT_CFG_MAX_GROUPS];
  char group_globs[VT_CFG_MAX_GROUPS][1024];
  int n_groups;
  vt_sched_cfg sched;
  char trainable[VT_CFG_MAX_GLOBS][256]; /* globs; empty list = everything */
  int n_trainable;
  char frozen[VT_CFG_MAX_GLOBS][256]; /* applied after trainable */
  int n_frozen;
  /* output: */
  char out_dir[VT_CFG_PATH];
  int64_t save_every; /* steps; 0 = only at the end */
  int keep_last;
  int64_t log_every;
  int64_t eval_every; /* steps; 0 = never */
} vt_train_cfg;

/* Loads and validates path; relative paths in it are taken from the file's directory.
 * Returns 0, or -1 with err naming the file, the line and the key. */
int vt_train_config_load(vt_train_cfg *cfg, const char *path, char *err, size_t err_len);

#endif
