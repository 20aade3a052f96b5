/* Internals of the trainer shared by trainer.c (the loop and eval), trainer_setup.c (model,
 * weights, optimizers), trainer_batch.c (batches from the mixture) and trainer_ckpt.c
 * (checkpoint save and resume). */
#ifndef VT_TRAINER_IMPL_H
#define VT_TRAINER_IMPL_H

#include "data/mixture.h"
#include "data/pack.h"
#include "train/metrics.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "train/zero.h"
#include "train/zero_masters.h"

/* One phase of the step: the parameters it updates, its optimizer state and schedule. */
typedef struct {
  vt_optim_cfg ocfg;
  vt_optim_group_cfg groups[STAGE_MAX_GROUPS];
  vt_optim opt;
  bool opt_ready;
  vt_sched_cfg scfg;
  vt_sched sched;
  bool *updates;  /* [ps.n]: parameter i is trainable and in this phase */
  vt_reducer red; /* its gradient buckets (data parallel) */
  bool red_ready;
  vt_zero_masters zm; /* its sharded f32 masters (bf16 ZeRO), set after the first step */
} trainer_phase;

typedef struct {
  const stage_cfg *cfg;
  const vt_dist *dist;
  vt_dist solo;
  /* collectives: hc for host values (statistics, flags), dc for the store's buffers
   * (gradients, parameters); the same MPI instance on the CPU, NCCL for dc on GPUs */
  vt_coll coll_host, coll_dev;
  vt_coll *hc, *dc;
  vt_model *model;
  vt_params ps;
  bool ps_ready;
  bool masters_probed; /* bf16 ZeRO: the probe's reads decided which masters shard */
  /* right after the last restore's load: whole pages of released masters resident, of how many */
  int64_t restored_resident, restored_pages;
  trainer_phase phases[VT_MODEL_MAX_PHASES];
  int n_phases;
  double weights[VT_MODEL_MAX_TERMS]; /* of the model's terms, by index */
  mix_config mixcfg;
  mix *mix;
  vt_ctx *ctx;
  vt_rng rng;
  int64_t step, total_steps, tokens_seen;
  int64_t skipped_samples, truncated_samples;
  bool count_samples;          /* count skips and cuts (the first phase of a step reads the data) */
  volatile sig_atomic_t *stop; /* a stop request, checked between micro-batches too */
  /* one micro-batch on the host: up to [batch_size, max_len] */
  int32_t *ids, *labels, *lengths;
  int32_t *pos, *segments; /* packed batches only: RoPE positions and sample index per token */
  mix_pack pack;
  int64_t batch_rows;    /* rows filled (the last eval batch may hold fewer) */
  int64_t batch_t;       /* padded length of the current batch */
  int64_t batch_tokens;  /* labels counted in the current batch */
  int64_t batch_samples; /* samples in it */
  bool batch_packed;
  /* codec tokens of each row, for models that take them (the speech decoder): appended per
   * row, padded to [rows, longest] at upload; buffers grow to the largest batch seen */
  int32_t *codec, *codec_pad, *codec_lens, *codec_spans;
  size_t codec_n, codec_cap, codec_pad_cap;
  /* the first stored audio clip's fbank of each row (f16 -> f32), for models that take
   * VT_MEDIA_FBANK (the audio encoder): appended per row, padded at upload */
  float *fb, *fb_pad;
  int32_t *fb_frames, *fb_spans, fb_bins;
  size_t fb_n, fb_cap, fb_pad_cap;
  /* a model that splices audio at <audio> (ops->audio_positions): every clip of the batch,
   * its fbank appended to fb, its frames and span (row, start, count) here */
  int32_t *au_frames, *au_spans;
  int64_t n_au, cap_au;
  /* the first stored audio clip's waveform of each row (int16 -> f32 in [-1, 1)), for models
   * that take VT_MEDIA_WAVE (the codec): appended per row, zero-padded at upload */
  float *wv, *wv_pad;
  int32_t *wv_lens, *wv_spans;
  size_t wv_n, wv_cap, wv_pad_cap;
  shard_sample sample;
  /* the batch's image tiles (normalised, [n, 3, S, S]) and their spans (row, start, count) */
  float *tiles;
  int32_t *spans;
  int64_t n_tiles, cap_tiles;
  int tile_size;
} trainer;

/* trainer_setup.c */
/* Everything but the weights: model, parameter store, context, data, host buffers. An
 * eval_view opens the mixture as one rank (eval passes split it by slot themselves). */
int trainer_setup(trainer *t, const stage_cfg *cfg, const vt_dist *dist, const char *mixture,
                  bool eval_view, char *err, size_t err_len);
void trainer_free(trainer *t);
/* Trainable and frozen patterns, gradient buffer, one optimizer per phase. */
int trainer_setup_optim(trainer *t, int64_t steps_per_epoch, char *err, size_t err_len);
/* Marks what phase p backpropagates into: its parameters need gradients, the rest not, so
 * the tape records nothing through parts the phase does not train. */
void trainer_enter_phase(trainer *t, int p);

/* trainer_batch.c */
/* Fills the next training micro-batch from m (skipping unusable samples, counted). */
int trainer_next_batch(trainer *t, mix *m, char *err, size_t err_len);
/* Fills an eval batch from slots *slot, *slot + stride, ... < end of the epoch-0 order of a
 * one-rank mixture m; advances *slot. Rows left empty at the end make a shorter batch. */
int trainer_eval_batch(trainer *t, mix *m, int64_t *slot, int64_t stride, int64_t end,
                       int64_t *skipped, char *err, size_t err_len);
/* The host batch as device tensors of the ctx. */
void trainer_upload(trainer *t, vt_batch *b);

/* trainer_ckpt.c */
/* Saves a checkpoint of the current step under RUN_DIR/checkpoints (rank 0 writes). */
int trainer_save(trainer *t, char *path_out, size_t path_len, char *err, size_t err_len);
/* bf16 ZeRO before the first step and before a restore: one forward of each phase on the
 * first batch, without gradients and leaving the data cursor and the random state as they
 * were, marks how every parameter is read (which ops run, not the values: a resumed run has
 * not loaded its weights yet); then trainer_shard_masters shards the f32 masters that only
 * GEMMs read (see zero_masters.h; the ranks' marks are OR-ed). No-ops otherwise.
 * trainer_restore_copies, after a restore loaded this rank's masters, makes the bf16 copies
 * of the values it holds (at the restored step's rounding key) and gathers the rest. */
int trainer_probe_masters(trainer *t, char *err, size_t err_len);
int trainer_shard_masters(trainer *t, char *err, size_t err_len);
int trainer_restore_copies(trainer *t, char *err, size_t err_len);
/* The checkpoint's model.safetensors from sharded masters, one parameter at a time (no rank
 * holds more than one whole parameter extra): begin on every rank (a no-op without sharded
 * masters); rank 0 passes trainer_masters_fetch as st_save_opts.fetch, which names the
 * parameter to the others and gathers it, while they run trainer_masters_serve; end on every
 * rank (rank 0's releases the others; call it whether or not the write succeeded). */
typedef struct {
  trainer *t;
  bool on;
  float *dev;     /* one parameter's values, on the store's device */
  size_t *counts; /* [world] */
} trainer_masters;
int trainer_masters_begin(trainer *t, trainer_masters *m, char *err, size_t err_len);
int trainer_masters_fetch(void *ctx, const vt_param *p, void *host, char *err, size_t err_len);
int trainer_masters_serve(trainer_masters *m, char *err, size_t err_len);
int trainer_masters_end(trainer_masters *m, char *err, size_t err_len);
/* Values of the parameters whose f32 masters are sharded, and how many of them this rank
 * keeps. */
int64_t trainer_sharded_masters(const trainer *t, int64_t *kept);
/* Restores weights, optimizers, step, RNG and data cursor from a checkpoint directory. */
int trainer_restore(trainer *t, const char *dir, char *err, size_t err_len);

/* zero_ckpt.c: the optimizer state by parameter name (pieces where ZeRO cut a parameter).
 * Whether any phase's state is sharded; save writes this rank's file into dir (unsharded:
 * rank 0 writes all of it), restore fills this rank's pieces from all the files in dir. */
bool trainer_state_sharded(const trainer *t);
int trainer_save_optim(trainer *t, const char *dir, char *err, size_t err_len);
int trainer_restore_optim(trainer *t, const char *dir, char *err, size_t err_len);

#endif
