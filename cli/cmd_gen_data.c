/* `vita gen-data --out DIR`: writes generated token shards and a mixture config, the data of
 * the built-in job and the end-to-end tests. */
#include <stdint.h>
#include <stdio.h>

#include "cli/cli.h"
#include "data/synth.h"

static const cli_opt opts[] = {
    {"out", CLI_OPT_STR, NULL, "output directory"},
    {"samples", CLI_OPT_INT, "2048", "number of samples"},
    {"shards", CLI_OPT_INT, "2", "number of shards"},
    {"vocab", CLI_OPT_INT, "256", "token ids are below this"},
    {"min-len", CLI_OPT_INT, "48", "shortest sample (tokens)"},
    {"max-len", CLI_OPT_INT, "128", "longest sample (tokens)"},
    {"noise", CLI_OPT_FLOAT, "0.1", "probability of a random token"},
    {"seed", CLI_OPT_INT, "1", "seed"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  const char *out = cli_args_str(a, "out");
  if (!out) {
    fprintf(stderr, "vita gen-data: --out DIR is required\n");
    return CLI_EXIT_USAGE;
  }
  if (cli_args_int(a, "vocab") > INT32_MAX) { /* ids are int32: not wrapped into another */
    fprintf(stderr, "vita gen-data: --vocab must be at most %d\n", INT32_MAX);
    return CLI_EXIT_USAGE;
  }
  synth_cfg c = {.samples = cli_args_int(a, "samples"),
                 .n_shards = cli_args_int(a, "shards"),
                 .vocab = (int32_t)cli_args_int(a, "vocab"),
                 .min_len = cli_args_int(a, "min-len"),
                 .max_len = cli_args_int(a, "max-len"),
                 .noise = cli_args_float(a, "noise"),
                 .seed = (uint64_t)cli_args_int(a, "seed")};
  char err[1024];
  if (synth_write(out, &c, err, sizeof err)) {
    fprintf(stderr, "vita gen-data: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  printf("wrote %lld samples in %lld shards to %s (mixture: %s/mixture.yaml); best reachable "
         "loss %.4f\n",
         (long long)c.samples, (long long)c.n_shards, out, out, synth_entropy(&c));
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_gen_data = {"gen-data", "write generated token shards for tests and demos",
                                  NULL, opts, run};
