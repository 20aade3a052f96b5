// ctest-labels: e2e
/* A sample whose label is outside the model's vocabulary (a corrupt or foreign shard) is a
 * skipped, counted sample, as an out-of-vocabulary token is, not an aborted run: training
 * on generated shards plus one shard of such samples finishes and counts them. */
#include <stdlib.h>
#include <string.h>

#include "data/shard.h"
#include "data/synth.h"
#include "tests/testutil.h"
#include "train/trainer.h"

int main(void) {
  char tmp[] = "/tmp/vt_labels_XXXXXX", data[512], path[600], err[2048];
  CHECK(mkdtemp(tmp) != NULL);
  snprintf(data, sizeof data, "%s/data", tmp);
  synth_cfg sc = synth_defaults();
  sc.samples = 64;
  sc.vocab = 96; /* the tiny fixture model's vocabulary */
  sc.min_len = 8;
  sc.max_len = 16;
  CHECK_MSG(synth_write(data, &sc, err, sizeof err) == 0, "%s", err);
  /* 16 samples with a label of 5000 among in-vocabulary tokens */
  snprintf(path, sizeof path, "%s/shard-bad.h5", data);
  shard_writer *w;
  CHECK_MSG(shard_writer_open(&w, path, err, sizeof err) == 0, "%s", err);
  for (int s = 0; s < 16; s++) {
    int32_t ids[8], labels[8];
    for (int k = 0; k < 8; k++) ids[k] = labels[k] = (s + k) % 96;
    labels[3] = 5000;
    char id[32];
    snprintf(id, sizeof id, "bad-%d", s);
    shard_sample_in in = {.id = id, .ids = ids, .labels = labels, .n = 8};
    CHECK(shard_write_sample(w, &in, err, sizeof err) == 0);
  }
  CHECK_MSG(shard_writer_close(w, err, sizeof err) == 0, "%s", err);
  snprintf(path, sizeof path, "%s/stage.yaml", tmp);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "model: {config: %s/qwen2_tiny/config.json}\n"
          "data: {mixture: data/mixture.yaml, max_len: 16}\n"
          "train: {steps: 8, batch_size: 4, seed: 3, lr: 1.0e-2}\n"
          "output: {dir: run, log_every: 0}\n",
          getenv("VT_FIXTURES"));
  fclose(f);
  static stage_cfg cfg;
  CHECK_MSG(stage_config_load(&cfg, path, err, sizeof err) == 0, "%s", err);
  vt_trainer_opts o = {.cfg = &cfg};
  vt_train_result r;
  int rc = vt_train(&o, &r, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  CHECK_MSG(rc != 0 || (r.step == 8 && r.skipped_samples > 0), "step %lld, %lld skipped",
            (long long)r.step, (long long)r.skipped_samples);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_train_labels");
}
