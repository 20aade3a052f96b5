/* `vita info`: what a model config describes — which model, its architecture, the exact
 * parameter count and the memory full training needs — from the config alone: the model
 * registers its parameters (through the model interface), nothing is allocated. With
 * --stage, the stage's plan on one rank: trainable parameters, FLOPs per sample at the
 * configured lengths, and memory (`vita plan` for other world sizes and ZeRO stages). */
#include <stdio.h>

#include "autograd/fmt.h"
#include "cli/cli.h"
#include "cli/cmd_plan.h"
#include "stages/stage_hf.h"

static const cli_opt opts[] = {
    {"stage", CLI_OPT_STR, NULL, "a stage config (YAML): its plan on one rank instead"},
    {NULL, 0, NULL, NULL}};

static int run_stage(const char *path) {
  char err[2048];
  static stage_cfg cfg;
  stage_plan p;
  if (stage_config_load(&cfg, path, err, sizeof err) ||
      stage_plan_make(&cfg, &(stage_plan_opts){.world = 1}, &p, err, sizeof err)) {
    fprintf(stderr, "vita info: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  cli_plan_print(stdout, path, &p, 0, cfg.device.type == VT_DEV_CUDA, 0);
  return CLI_EXIT_OK;
}

static int run(const cli_args *a) {
  if (cli_args_str(a, "stage")) {
    if (a->n_positional) {
      fprintf(stderr, "vita info: give a model config or --stage STAGE.yaml, not both\n");
      return CLI_EXIT_USAGE;
    }
    return run_stage(cli_args_str(a, "stage"));
  }
  if (a->n_positional != 1) {
    fprintf(stderr, "vita info: give one model config.json (or a directory holding one)\n");
    return CLI_EXIT_USAGE;
  }
  char err[1024], num[48];
  stage_model_info info;
  if (stage_model_describe(a->positional[0], &info, err, sizeof err)) {
    fprintf(stderr, "vita info: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  int64_t n = info.n_params, nt = info.n_phase_params;
  printf("model: %s (%s)\n", info.model, a->positional[0]);
  if (info.arch[0]) printf("  %s\n", info.arch);
  printf("  %d parameter tensors; loss terms: %s; %d phase%s per step\n", info.n_tensors,
         info.terms, info.n_phases, info.n_phases == 1 ? "" : "s");
  if (nt == n) {
    printf("parameters: %s\n", vt_group_digits(n, num, sizeof num));
  } else {
    char all[48];
    printf("parameters: %s trained (%s with the frozen inputs)\n",
           vt_group_digits(nt, num, sizeof num), vt_group_digits(n, all, sizeof all));
  }
  const double gib = 1024.0 * 1024.0 * 1024.0;
  printf("memory for full training (one rank, no sharding): weights f32 %.1f GiB, gradients "
         "f32 %.1f GiB, AdamW moments %.1f GiB; bf16 weights alone %.1f GiB\n",
         4.0 * n / gib, 4.0 * nt / gib, 8.0 * nt / gib, 2.0 * n / gib);
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_info = {
    "info", "describe a model config: model, architecture, parameter count, memory",
    "[CONFIG.json|MODEL_DIR]", opts, run};
