// ctest-labels: unit
/* Stage configs a hostile user writes: through the shared YAML reader a duplicate key, an
 * infinite or overflowing float and a quoted number are errors naming the file, line and key;
 * the stage's own bounds refuse a negative seed, sizes whose products overflow and a
 * negative keep_last. A valid config still loads. */
#include "stages/stage_config.h"
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char path[] = "/tmp/vt_stage_XXXXXX";

static int load(const char *train_extra, const char *data_extra, char *err, size_t n) {
  FILE *f = fopen(path, "w");
  fprintf(f,
          "model:\n  config: m/config.json\ndata:\n  mixture: mix.yaml\n%s"
          "train:\n  steps: 10\n%soutput:\n  dir: run\n",
          data_extra, train_extra);
  fclose(f);
  static stage_cfg cfg;
  return stage_config_load(&cfg, path, err, n);
}

static void refused(const char *train_extra, const char *data_extra, const char *want) {
  char err[1024] = "";
  CHECK_MSG(load(train_extra, data_extra, err, sizeof err) == -1, "accepted: %s%s", train_extra,
            data_extra);
  CHECK_MSG(strstr(err, want) && strstr(err, path), "\"%s\" lacks \"%s\"", err, want);
}

int main(void) {
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  char err[1024] = "";
  CHECK_MSG(load("  lr: 1.0e-3\n  seed: 7\n", "  max_len: 64\n", err, sizeof err) == 0, "%s", err);
  refused("  lr: 1.0e-3\n  lr: 2.0e-3\n", "", ":8: duplicate key 'lr' (first given at line 7)");
  refused("  lr: inf\n", "", "lr: expected a finite number, found inf");
  refused("  lr: 1e400\n", "", "expected a finite number, found 1e400");
  refused("  weight_decay: .nan\n", "", "weight_decay");
  refused("  lr: \"1e-3\"\n", "", "found the quoted string \"1e-3\"");
  refused("  seed: -1\n", "", "train.seed must be in [0, 2^63)");
  refused("  batch_size: 1048576\n", "  max_len: 1048576\n",
          "train.batch_size x data.max_len must be at most 2^31 tokens");
  refused("", "  max_len: 4611686018427387904\n", "data.max_len must be at most 16777216");
  refused("  grad_accum: 99999999999\n", "", "train.grad_accum must be at most 1048576");
  /* steps is given once in the base config: epochs instead shows the bound */
  FILE *f = fopen(path, "w");
  fprintf(f, "model: {config: m.json}\ndata: {mixture: x.yaml}\ntrain: {epochs: 1099511627777}\n"
             "output: {dir: run}\n");
  fclose(f);
  static stage_cfg cfg;
  CHECK(stage_config_load(&cfg, path, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "must be at most 2^40"), "%s", err);
  unlink(path);
  return vt_test_finish("test_stage_hostile");
}
