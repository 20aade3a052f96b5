/* `vita demo`: the built-in default job, a short training run on generated data. */
#include <stdio.h>

#include "train/cli.h"
#include "train/demo.h"

static const vt_opt opts[] = {
    {"steps", VT_OPT_INT, "300", "optimizer steps"},
    {"batch", VT_OPT_INT, "256", "predicted tokens per step"},
    {"lr", VT_OPT_FLOAT, "3e-3", "peak learning rate (AdamW, warmup + cosine)"},
    {"seed", VT_OPT_INT, "1", "seed of the data and the initial weights"},
    {"log-every", VT_OPT_INT, "20", "print a progress line every N steps"},
    {NULL, 0, NULL, NULL},
};

static int run(const vt_args *a) {
  vt_demo_cfg cfg = vt_demo_defaults();
  cfg.steps = vt_args_int(a, "steps");
  cfg.batch = vt_args_int(a, "batch");
  cfg.lr = vt_args_float(a, "lr");
  cfg.seed = (uint64_t)vt_args_int(a, "seed");
  cfg.log_every = (int)vt_args_int(a, "log-every");
  vt_demo_result res;
  char err[512];
  if (vt_demo_run(&cfg, &res, err, sizeof err)) {
    fprintf(stderr, "vita demo: %s\n", err);
    return VT_EXIT_FAIL;
  }
  printf("done: loss %.4f -> %.4f (best reachable %.4f) in %.1fs, %.0f tokens/s\n",
         res.first_loss, res.last_loss, res.min_possible, res.seconds, res.tokens_per_s);
  return VT_EXIT_OK;
}

const vt_cmd vt_cmd_demo = {"demo",
                            "train a small model on generated data and print its falling loss",
                            NULL, opts, run};
