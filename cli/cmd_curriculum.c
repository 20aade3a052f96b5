/* `vita curriculum CONFIG [--resume]`: the stages of a curriculum in order, each from the
 * weights of the ones before, with a summary after each stage (train/curriculum.h). SIGINT /
 * SIGTERM save the running stage and exit with 130/143; `--resume` skips the finished stages
 * and resumes the interrupted one exactly. Prep steps encode speech with the codec of an
 * earlier stage (cli_codec). */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/cli_codec.h"
#include "cli/cli_stop.h"
#include "train/curriculum.h"

static const cli_opt opts[] = {
    {"resume", CLI_OPT_FLAG, NULL,
     "skip finished stages, resume the interrupted one (default: start afresh)"},
    {"out", CLI_OPT_STR, NULL, "run directory (default: the config's output.dir)"},
    {"stop-stage", CLI_OPT_INT, "0", "with --stop-after: the stage (1-based) to stop in"},
    {"stop-after", CLI_OPT_INT, "0",
     "stop (saving a checkpoint) after this step (a prep step: after this many sets), for "
     "testing"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  if (a->n_positional != 1) {
    fprintf(stderr, "vita curriculum: expected one CONFIG (the curriculum YAML)\n");
    return CLI_EXIT_USAGE;
  }
  const char *path = a->positional[0];
  char err[4096];
  curriculum cur;
  if (curriculum_load(&cur, path, cli_args_str(a, "out"), err, sizeof err)) {
    fprintf(stderr, "vita curriculum: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  vt_dist dist;
  if (vt_dist_init(&dist, NULL, NULL, err, sizeof err)) {
    fprintf(stderr, "vita curriculum: %s\n", err);
    curriculum_free(&cur);
    return CLI_EXIT_FAIL;
  }
  volatile sig_atomic_t *stop = cli_stop_install("vita curriculum");
  curriculum_opts o = {.cur = &cur,
                       .resume = cli_args_flag(a, "resume"),
                       .dist = &dist,
                       .console = stdout,
                       .stop = stop,
                       .stop_stage = (int)cli_args_int(a, "stop-stage"),
                       .stop_after = cli_args_int(a, "stop-after"),
                       .codec_open = cli_codec_prep_open,
                       .codec_close = cli_codec_prep_close};
  curriculum_result r;
  int rc = curriculum_run(&o, &r, err, sizeof err);
  if (rc)
    fprintf(stderr, "vita curriculum (rank %d): stage %d/%d: %s\n", dist.rank, r.stage,
            cur.n_stages, err);
  else if (dist.rank == 0 && r.interrupted)
    printf("stopped in stage %d/%d %s; continue with: vita curriculum %s --resume\n", r.stage,
           cur.n_stages, cur.stages[r.stage - 1].name, path);
  else if (dist.rank == 0)
    printf("done: %d stages (%d trained now); summary in %s/curriculum.json\n", r.done, r.ran,
           cur.run_dir);
  vt_dist_finalize(&dist);
  curriculum_free(&cur);
  if (rc) return CLI_EXIT_FAIL;
  if (r.interrupted && *stop) return 128 + *stop;
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_curriculum = {
    "curriculum", "train the stages of a curriculum in order (resumable)", "CONFIG", opts, run};
