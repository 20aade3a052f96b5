/* `vita demo`: the built-in default job. `--kind vita` (the default) runs the tiny VITA
 * curriculum on a generated multimodal dataset (cmd_demo_vita.c). `--kind lm` (also chosen
 * when one of its options --steps, --batch, --lr, --log-every is given without --kind)
 * generates token shards of a synthetic language, trains a small Qwen2-shaped model on them
 * with the real trainer (checkpoints, metrics, resume), and exports the result as a HF
 * checkpoint: the whole path of one stage in seconds, with nothing to download. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/ckpt.h"
#include "cli/cli.h"
#include "cli/cmd_demo_vita.h"
#include "data/synth.h"
#include "stages/stage_hf.h"
#include "train/trainer.h"

static const cli_opt opts[] = {
    {"kind", CLI_OPT_STR, NULL,
     "vita (the tiny VITA curriculum, the default) or lm (one Qwen2 stage on a token language; "
     "--steps, --batch, --lr, --log-every are its options and select it)"},
    {"out", CLI_OPT_STR, NULL,
     "run directory (data, checkpoints, metrics, export; vita: runs/tiny-vita, lm: runs/demo)"},
    {"steps", CLI_OPT_INT, "200", "optimizer steps"},
    {"batch", CLI_OPT_INT, "8", "sequences per step (--kind lm)"},
    {"lr", CLI_OPT_FLOAT, "3e-3", "peak learning rate, AdamW, warmup + cosine (--kind lm)"},
    {"seed", CLI_OPT_INT, "1", "seed of the data and the initial weights"},
    {"log-every", CLI_OPT_INT, "20", "print a progress line every N steps (--kind lm)"},
    {"configs", CLI_OPT_STR, "configs/tiny-vita", "vita: the tiny curriculum's stage configs"},
    {"size", CLI_OPT_STR, "small", "vita: dataset size, small or tiny"},
    {"scale", CLI_OPT_FLOAT, "1", "vita: each stage's steps times this (a shorter run)"},
    {"stage-scale", CLI_OPT_STR, NULL,
     "vita: STAGE=FACTOR,... a stage's own factor instead of --scale (1.3=0.5,2.1a=1)"},
    {"threads", CLI_OPT_INT, "1", "vita: OpenMP threads (0: as OMP_NUM_THREADS says)"},
    {"resume", CLI_OPT_FLAG, NULL, "continue an interrupted demo run (else --out starts afresh)"},
    {"precision", CLI_OPT_STR, "fp32", "fp32, or bf16 (bf16 GEMMs, f32 masters; needs bf16 units)"},
    {NULL, 0, NULL, NULL},
};

/* The demo model: Qwen2's architecture at a size that trains in minutes on a CPU, as the HF
 * config.json the stage names. */
static const char demo_model[] =
    "{\n  \"architectures\": [\"Qwen2ForCausalLM\"],\n  \"model_type\": \"qwen2\",\n"
    "  \"hidden_act\": \"silu\",\n  \"vocab_size\": 256,\n  \"hidden_size\": 128,\n"
    "  \"intermediate_size\": 352,\n  \"num_hidden_layers\": 2,\n  \"num_attention_heads\": 4,\n"
    "  \"num_key_value_heads\": 2,\n  \"max_position_embeddings\": 512,\n"
    "  \"rope_theta\": 10000.0,\n  \"rms_norm_eps\": 1e-06,\n  \"initializer_range\": 0.02,\n"
    "  \"tie_word_embeddings\": false\n}\n";

/* The demo's stage, in the form `vita train --config` reads (written to RUN/stage.yaml, so
 * the run can be continued or varied by hand). */
static int write_stage(const char *path, const cli_args *a, int64_t max_len, char *err,
                       size_t err_len) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, err_len, "%s: cannot write: %s", path, strerror(errno));
    return -1;
  }
  fprintf(f,
          "# the stage `vita demo` runs; `vita train --config %s --resume` continues it\n"
          "stage: demo\n"
          "device: cpu\n"
          "model:\n  name: qwen2\n  config: config.json\n"
          "data:\n  mixture: data/mixture.yaml\n  max_len: %lld\n"
          "train:\n  steps: %lld\n  batch_size: %lld\n  grad_accum: 1\n  seed: %lld\n"
          "  precision: %s\n"
          "  optimizer: adamw\n  lr: %.9g\n  max_grad_norm: 1.0\n  losses: {lm: 1.0}\n"
          "schedule:\n  kind: cosine\n  warmup_ratio: 0.03\n  min_lr_ratio: 0.1\n"
          "output:\n  dir: .\n  save_every: 100\n  keep_last: 2\n  log_every: %lld\n",
          path, (long long)max_len, (long long)cli_args_int(a, "steps"),
          (long long)cli_args_int(a, "batch"), (long long)cli_args_int(a, "seed"),
          cli_args_str(a, "precision"), cli_args_float(a, "lr"),
          (long long)cli_args_int(a, "log-every"));
  if (fclose(f)) {
    snprintf(err, err_len, "%s: cannot write: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

static int run_lm(const cli_args *a) {
  const char *out = cli_args_given(a, "out") ? cli_args_str(a, "out") : "runs/demo";
  char err[2048], path[4200];
  bool resume = cli_args_flag(a, "resume");
  /* a fresh demo starts from nothing: earlier checkpoints, metrics and exports go */
  if (!resume) {
    char p[4200];
    const char *old[] = {"checkpoints", "metrics.jsonl", "loss.png",
                         "data",        "stage.yaml",    "config.json"};
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
      snprintf(p, sizeof p, "%s/%s", out, old[i]);
      if (ckpt_remove_tree(p, err, sizeof err)) {
        fprintf(stderr, "vita demo: %s\n", err);
        return CLI_EXIT_FAIL;
      }
    }
    DIR *d = opendir(out);
    struct dirent *e;
    while (d && (e = readdir(d)))
      if (strncmp(e->d_name, "export-step-", 12) == 0) {
        snprintf(p, sizeof p, "%s/%s", out, e->d_name);
        ckpt_remove_tree(p, err, sizeof err);
      }
    if (d) closedir(d);
  }
  if (ckpt_mkdirs(out, err, sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  /* 1. data */
  synth_cfg sc = synth_defaults();
  sc.seed = (uint64_t)cli_args_int(a, "seed");
  snprintf(path, sizeof path, "%s/data", out);
  if (!resume) {
    if (synth_write(path, &sc, err, sizeof err)) {
      fprintf(stderr, "vita demo: %s\n", err);
      return CLI_EXIT_FAIL;
    }
    printf("demo: wrote %lld generated samples to %s (best reachable loss %.3f)\n",
           (long long)sc.samples, path, synth_entropy(&sc));
  }
  /* 2. train */
  if (cli_args_int(a, "steps") < 1 || cli_args_int(a, "batch") < 1) {
    fprintf(stderr, "vita demo: --steps and --batch must be at least 1\n");
    return CLI_EXIT_USAGE;
  }
  char stage_path[4200];
  snprintf(path, sizeof path, "%s/config.json", out);
  snprintf(stage_path, sizeof stage_path, "%s/stage.yaml", out);
  if (!resume && (ckpt_write_text(path, demo_model, err, sizeof err) ||
                  write_stage(stage_path, a, sc.max_len, err, sizeof err))) {
    fprintf(stderr, "vita demo: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  static stage_cfg cfg; /* large: not on the stack */
  if (stage_config_load(&cfg, stage_path, err, sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  vt_trainer_opts o = {.cfg = &cfg, .resume = resume, .console = stdout};
  vt_train_result r;
  if (vt_train(&o, &r, err, sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  /* 3. export */
  char export_dir[4200];
  snprintf(export_dir, sizeof export_dir, "%s/export-step-%08lld", out, (long long)r.step);
  hf_io_opts eo = {.dtype = VT_BF16};
  hf_io_stats es;
  struct stat st;
  if (stat(export_dir, &st) == 0) {
    printf("demo: %s exists already (an earlier run of the same length)\n", export_dir);
  } else if (stage_hf_export(r.checkpoint, export_dir, &eo, &es, err, sizeof err)) {
    fprintf(stderr, "vita demo: export: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  if (r.step > r.start_step)
    printf("demo: loss %.4f -> %.4f (best reachable %.3f); ", r.first_loss, r.last_loss,
           synth_entropy(&sc));
  else
    printf("demo: already trained to step %lld; ", (long long)r.step);
  printf("metrics %s/metrics.jsonl (vita plot %s); checkpoint %s; HF export %s\n", out, out,
         r.checkpoint, export_dir);
  return CLI_EXIT_OK;
}

static int run(const cli_args *a) {
  const char *kind = cli_args_str(a, "kind");
  if (!kind) { /* the token-language demo's own options select it (scripts written for it) */
    static const char *const lm_only[] = {"steps", "batch", "lr", "log-every"};
    kind = "vita";
    for (size_t i = 0; i < sizeof lm_only / sizeof *lm_only; i++)
      if (cli_args_given(a, lm_only[i])) kind = "lm";
  }
  if (!strcmp(kind, "lm")) return run_lm(a);
  if (!strcmp(kind, "vita")) return cli_demo_vita(a);
  fprintf(stderr, "vita demo: --kind: expected vita or lm, got '%s'\n", kind);
  return CLI_EXIT_USAGE;
}

const cli_cmd cli_cmd_demo = {"demo",
                              "the built-in job: generated multimodal data, the tiny VITA "
                              "curriculum 1.1 -> 3.2, export (--kind lm: one Qwen2 stage)",
                              NULL, opts, run};
