/* `vita eval --config FILE --weights DIR`: the model's eval metrics (loss, token accuracy, ...)
 * of weights over a shard set, each sample counted exactly once on any number of ranks. */
#include <math.h>
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
  static stage_cfg cfg; /* large: not on the stack */
  if (stage_config_load(&cfg, path, err, sizeof err)) {
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
  vt_eval_result res;
  int rc = vt_eval(&cfg, weights, data, &dist, &res, err, sizeof err);
  if (rc) {
    fprintf(stderr, "vita eval: %s\n", err);
  } else if (dist.rank == 0) {
    /* every metric the model reports, each over the whole set (every sample once) */
    printf("eval:");
    for (int k = 0; k < res.n_metrics; k++)
      printf("%s %s %.6f over %.0f", k ? "," : "", res.metrics[k].name,
             res.metrics[k].count > 0 ? res.metrics[k].sum / res.metrics[k].count : NAN,
             res.metrics[k].count);
    printf(" (%lld samples of %s", (long long)res.samples, data);
    if (res.skipped) printf(", %lld skipped", (long long)res.skipped);
    printf(")\n");
  }
  vt_dist_finalize(&dist);
  return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

const cli_cmd cli_cmd_eval = {"eval", "eval metrics of weights over a shard set (each sample once)",
                              NULL, opts, run};
