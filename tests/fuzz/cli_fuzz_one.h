/* One fuzz input through the CLI argument parser (cli/cli.h): the bytes, split at NULs, are
 * the arguments of a command whose table has an option of every kind. The parse succeeds or
 * is a usage error with a message; on success every given INT is an integer >= 0 and every
 * FLOAT finite, as the table promises the commands. Shared by the libFuzzer target and the
 * corpus replay; returns 0 when it behaved. */
#ifndef VT_CLI_FUZZ_ONE_H
#define VT_CLI_FUZZ_ONE_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int cli_fuzz_run(const cli_args *a) {
  (void)a;
  return 0;
}

static inline int cli_fuzz_one(const uint8_t *data, size_t size) {
  static const cli_opt opts[] = {
      {"steps", CLI_OPT_INT, "200", "an integer"},
      {"lr", CLI_OPT_FLOAT, "1e-3", "a float"},
      {"out", CLI_OPT_STR, NULL, "a string"},
      {"resume", CLI_OPT_FLAG, NULL, "a flag"},
      {"max-len", CLI_OPT_INT, NULL, "an integer without default"},
      {NULL, 0, NULL, NULL},
  };
  static const cli_cmd cmd = {"fuzz", "the fuzz command", "[inputs ...]", opts, cli_fuzz_run};
  if (size > 4096) return 0;
  char *buf = malloc(size + 1);
  char *argv[64];
  int argc = 0;
  if (!buf) return 0;
  memcpy(buf, data, size);
  buf[size] = 0;
  for (size_t i = 0, start = 0; i <= size && argc < 64; i++)
    if (buf[i] == 0) {
      argv[argc++] = buf + start;
      start = i + 1;
    }
  cli_args a;
  bool help = false;
  char err[512] = "";
  int rc = cli_parse(&cmd, argc, argv, &a, &help, err, sizeof err), bad = 0;
  if (rc == CLI_EXIT_OK && !help) {
    if (cli_args_given(&a, "steps") && cli_args_int(&a, "steps") < 0) bad = 1;
    if (cli_args_given(&a, "max-len") && cli_args_int(&a, "max-len") < 0) bad = 1;
    if (!isfinite(cli_args_float(&a, "lr"))) bad = 1;
    (void)cli_args_str(&a, "out");
    (void)cli_args_flag(&a, "resume");
    if (a.n_positional > CLI_MAX_POSITIONAL) bad = 1;
  } else if (rc == CLI_EXIT_USAGE && !err[0]) {
    bad = 1;
  } else if (rc != CLI_EXIT_OK && rc != CLI_EXIT_USAGE) {
    bad = 1;
  }
  free(buf);
  return bad;
}

#endif
