/* `vita train --config FILE [--resume]`: one stage of training; `mpirun -np N vita train`
 * runs it data-parallel. SIGINT/SIGTERM stop at the next micro-batch, save a checkpoint and
 * exit with 130/143 (a second signal exits at once); `--resume` continues from the newest complete
 * checkpoint. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_stop.h"
#include "train/trainer.h"

static const cli_opt opts[] = {
    {"config", CLI_OPT_STR, NULL, "stage config (YAML)"},
    {"resume", CLI_OPT_FLAG, NULL, "continue from the newest complete checkpoint in output.dir"},
    {"stop-after", CLI_OPT_INT, "0", "stop (saving a checkpoint) after this step, for testing"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  const char *path = cli_args_str(a, "config");
  if (!path) {
    fprintf(stderr, "vita train: --config FILE is required\n");
    return CLI_EXIT_USAGE;
  }
  char err[2048];
  static stage_cfg cfg; /* large: not on the stack */
  if (stage_config_load(&cfg, path, err, sizeof err)) {
    fprintf(stderr, "vita train: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  vt_dist dist;
  if (vt_dist_init(&dist, NULL, NULL, err, sizeof err)) {
    fprintf(stderr, "vita train: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  /* GPU ranks: the node-local rank picks the GPU (counting from the configured one) */
  if (cfg.device.type == VT_DEV_CUDA && dist.local_world > 1 && vt_cuda_device_count() > 0)
    cfg.device.index = (cfg.device.index + dist.local_rank) % vt_cuda_device_count();
  volatile sig_atomic_t *stop = cli_stop_install("vita train");
  vt_trainer_opts o = {.cfg = &cfg,
                       .resume = cli_args_flag(a, "resume"),
                       .dist = &dist,
                       .console = stdout,
                       .stop = stop,
                       .stop_after = cli_args_int(a, "stop-after")};
  vt_train_result r;
  int rc = vt_train(&o, &r, err, sizeof err);
  if (rc) {
    fprintf(stderr, "vita train (rank %d): %s\n", dist.rank, err);
    /* the other ranks may wait in a collective this rank will never join: end the job */
    if (dist.world > 1) {
      /* the launcher ends the job with SIGTERM, which must not start a graceful stop now;
       * and should the abort itself hang (a peer stopped, the launcher slow), the alarm's
       * default action ends this process, which the launcher notices too */
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      alarm(20);
      vt_dist_abort(&dist, CLI_EXIT_FAIL);
    }
  } else if (dist.rank == 0) {
    if (r.interrupted)
      printf("stopped at step %lld of %lld; checkpoint %s; continue with: vita train --config %s "
             "--resume\n",
             (long long)r.step, (long long)r.total_steps, r.checkpoint, path);
    else if (r.step == r.start_step)
      printf("nothing to do: already at step %lld of %lld; checkpoint %s\n", (long long)r.step,
             (long long)r.total_steps, r.checkpoint);
    else
      printf("done: %lld steps, loss %.4f -> %.4f; checkpoint %s\n", (long long)r.step,
             r.first_loss, r.last_loss, r.checkpoint);
  }
  vt_dist_finalize(&dist);
  if (rc) return CLI_EXIT_FAIL;
  if (r.interrupted && *stop) return 128 + *stop;
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_train = {"train", "train one stage from a YAML config (resumable)", NULL,
                               opts, run};
