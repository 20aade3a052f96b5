/* `vita eval --config FILE --weights DIR`: mean LM loss of weights over a shard set. */
#include <stdio.h>

#include "cli/cli.h"
#include "train/trainer.h"

static const cli_opt opts[] = {
    {"config", CLI_OPT_STR, NULL, "stage config (YAML): model, batch size, max length"},
    {"weights", CLI_OPT_STR, NULL, "checkpoint or model directory, or a safetensors file"},
    {"data", CLI_OPT_STR, NULL, "mixture YAML (default: data.eval_mixture, else data.mixture)"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  const char *path = cli_args_str(a, "config"), *weights = cli_args_str(a, "weights");
  if (!path || !weights) {
    fprintf(stderr, "vita eval: --config FILE and --weights DIR are required\n");
    return CLI_EXIT_USAGE;
  }
  char err[2048];
  vt_train_cfg cfg;
  if (vt_train_config_load(&cfg, path, err, sizeof err)) {
    fprintf(stderr, "vita eval: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  const char *data = cli_args_str(a, "data");
  if (!data) data = cfg.eval_mixture[0] ? cfg.eval_mixture : cfg.mixture;
  vt_dist dist;
  if (vt_dist_init(&dist, NULL, NULL, err, sizeof err)) {
    fprintf(stderr, "vita eval: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  double loss;
  int64_t tokens;
  int rc = vt_eval(&cfg, weights, data, &dist, &loss, &tokens, err, sizeof err);
  if (rc)
    fprintf(stderr, "vita eval: %s\n", err);
  else if (dist.rank == 0)
    printf("eval: mean loss %.6f over %lld tokens (%s)\n", loss, (long long)tokens, data);
  vt_dist_finalize(&dist);
  return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

const cli_cmd cli_cmd_eval = {"eval", "mean loss of weights over a shard set", NULL, opts, run};
