/* The curriculum runner (`vita curriculum CONFIG [--resume]`): stages trained in order, each
 * from the final weights of the stages before it, resumable at any point, with a summary.
 *
 * The config (YAML; relative paths are from its directory):
 *
 *   name: tiny                      # for logs (default: the file's base name)
 *   output: {dir: runs/curric}      # RUN; each stage runs in RUN/<n>-<stage>/
 *   save_initial: false             # write each stage's initial weights (RUN/<n>-<stage>/
 *                                   #   initial.safetensors), for freezing checks
 *   defaults: {device: cpu}         # overrides applied to every stage (before its own)
 *   stages:
 *     - ../stages/1.1.yaml          # a stage config as it is
 *     - config: ../stages/1.2.yaml  # or with overrides: the stage config's keys, nested
 *       train: {steps: 20}          #   as there or dotted ("train.lr: 1e-3"); a list given
 *       data.mixture: mix.yaml      #   replaces a list, a mapping merges (stage_config.h)
 *       metric: token_acc           # the eval metric the summary reports (default: the
 *                                   #   first the model's eval gives besides loss)
 *       chance: 0.25                # its chance level: a number, the name of another eval
 *                                   #   metric (unigram_acc), or FILE.json:key
 *       from_previous: true         # start from the earlier stages' weights (default); false,
 *                                   #   or parts / name globs: only those from them
 *     - prep: codec-tokens          # a prep step, not a stage: `vita prep` of JSON files with
 *       codec: ticodec-3.1          #   the final checkpoint of this earlier stage as the codec
 *       config: ../data/prep.yaml   #   (speech given as audio -> its codec tokens), with this
 *       sets:                       #   data config (vita prep --config), each input into the
 *         - {input: tts-train.json, out: ../data/shards/tts-train}   # shard directory named
 *
 * A chance of "start" is the metric of the stage's own initial weights (its initial.safetensors,
 * written for it, evaluated on the held-out mixture once the stage is done): for a stage
 * trained from scratch (the codec of 3.1: mel_l1 of the untrained codec).
 *
 * Each stage's output.dir is replaced by RUN/<n>-<stage>. Its initial weights: every parameter
 * that the final checkpoint of an earlier stage holds comes from the newest such stage; the
 * stage's own init sources fill the parameters none of them holds (stage_load_init_over).
 * A part an earlier stage left at its random init is carried on like any other: name the
 * parts to take (from_previous: [llm, vision]) when a later stage loads one from elsewhere.
 * A stage that finished has RUN/<n>-<stage>/stage.json with "status": "done" and is not run
 * again; an interrupted one resumes from its own newest checkpoint exactly (the trainer's
 * resume). A stop request (SIGINT/SIGTERM) saves the running stage and returns. A prep step
 * that finished (RUN/<n>-<name>/stage.json done: the sets written, samples and codec tokens
 * per set) is not redone; one that did not is redone from the start, its output directories
 * emptied first. Stages start from the stages' checkpoints only (a prep step holds none).
 *
 * Per stage the run dir holds the trainer's files (checkpoints/, metrics.jsonl,
 * samples.json: samples drawn per dataset) and stage.json (status, parts trained, parameter
 * counts, steps, the final checkpoint, eval metrics, wall time over all attempts). After
 * each stage and at the end the summary table goes to the console and RUN/curriculum.json:
 * stage, trained parts, trainable parameters, steps, samples drawn per dataset, loss first ->
 * last, the eval metric (name, value, chance), wall time. */
#ifndef VT_CURRICULUM_H
#define VT_CURRICULUM_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

#include "data/prep.h"
#include "stages/stage_config.h"
#include "train/dist.h"

#define CURRICULUM_PREP_SETS 8

/* A prep step: each set's JSON input into its shard directory (absolute or resolved paths). */
typedef struct {
  char name[128];
  char config[STAGE_PATH]; /* the data config (vita prep --config) */
  int codec_stage;         /* 0-based index of the stage whose final checkpoint is the codec */
  int n_sets;
  struct {
    char name[64]; /* the out directory's base name (tts-train) */
    char input[STAGE_PATH], out[STAGE_PATH];
  } sets[CURRICULUM_PREP_SETS];
} curriculum_prep;

typedef struct {
  stage_cfg *cfg;                   /* the stage config with every override applied; NULL for
                                       a prep step */
  curriculum_prep *prep;            /* a prep step instead of a stage; NULL for a stage */
  const char *name;                 /* cfg->name or prep->name */
  char dir[STAGE_PATH];             /* RUN/<n>-<name> (= cfg->out_dir) */
  char metric[64];                  /* "" : the first eval metric besides loss */
  char chance_metric[64];           /* chance given as another eval metric's name */
  double chance;                    /* NAN: none given (or read from chance_metric) */
  bool chance_start;                /* chance: start (chance_metric = "start_" metric) */
  bool from_previous;               /* start from the earlier stages' final weights */
  char previous_globs[STAGE_GLOBS]; /* only these from them ("": all) */
} curriculum_stage;

typedef struct {
  char path[STAGE_PATH];
  char name[128];
  char run_dir[STAGE_PATH];
  bool save_initial;
  curriculum_stage *stages;
  int n_stages;
} curriculum;

/* Loads path; run_dir (may be NULL) replaces output.dir. Every stage config is loaded and
 * validated with its overrides now, so a typo in stage 7 fails before stage 1 runs. Returns 0
 * or -1 with err naming the file, line and key. curriculum_free releases (also on failure). */
int curriculum_load(curriculum *c, const char *path, const char *run_dir, char *err,
                    size_t err_len);
void curriculum_free(curriculum *c);

/* Opens a codec weights directory for a prep step (cli_codec_prep_open); close releases it. */
typedef int (*curriculum_codec_open)(const char *dir, prep_codec *pc, char *err, size_t err_len);
typedef void (*curriculum_codec_close)(prep_codec *pc);

typedef struct {
  const curriculum *cur;
  bool resume; /* false: the stages' run dirs are removed first and everything runs */
  const vt_dist *dist;
  FILE *console; /* rank 0's progress and summaries; NULL: quiet */
  volatile sig_atomic_t *stop;
  int stop_stage;     /* with stop_after > 0: stop stage stop_stage (1-based) after that step */
  int64_t stop_after; /* (tests: an interrupt at a known step; a prep step: after that many
                         sets) */
  curriculum_codec_open codec_open; /* NULL: a prep step fails, naming what is missing */
  curriculum_codec_close codec_close;
} curriculum_opts;

typedef struct {
  int done;         /* stages finished (now or before) */
  int ran;          /* stages trained by this call */
  bool interrupted; /* stopped inside stage `stage` */
  int stage;        /* 1-based: the stage running when it returned */
} curriculum_result;

/* Runs the stages in order (see above). Returns 0 (also when interrupted) or -1 with err. */
int curriculum_run(const curriculum_opts *o, curriculum_result *r, char *err, size_t err_len);

/* Builds the summary from the stage dirs (finished, interrupted and pending stages alike),
 * prints the table to out (may be NULL) and writes RUN/curriculum.json atomically. */
int curriculum_summary(const curriculum *c, FILE *out, char *err, size_t err_len);

#endif
