// ctest-labels: mpi e2e
/* An eval pass covers each sample of the set exactly once, for any batch size and any number
 * of ranks: on a set of 37 samples (no multiple of the batch sizes or of the world), run
 * under mpiexec -n 2, vt_eval on one process and on both ranks reports 37 samples and
 * exactly the label tokens the set holds, and the same loss, for batch sizes 1, 3, 4, 5, 8
 * and 64 (more than the set). Before the fix the last partial batch rolled into the next
 * epoch's order and counted samples twice. */
#include <stdlib.h>
#include <string.h>

#include "data/mixture.h"
#include "data/synth.h"
#include "tests/testutil.h"
#include "train/trainer.h"

static char tmp[] = "/tmp/vt_eval_XXXXXX";

static int load(stage_cfg *cfg, int64_t batch, char *err, size_t err_len) {
  char path[512];
  snprintf(path, sizeof path, "%s/s.yaml", tmp);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "model: {config: %s/qwen2_tiny/config.json}\n"
          "data: {mixture: data/mixture.yaml, max_len: 24}\n"
          "train: {steps: 1, batch_size: %lld, seed: 3, lr: 1.0e-2}\n"
          "output: {dir: run, log_every: 0}\n",
          getenv("VT_FIXTURES"), (long long)batch);
  fclose(f);
  return stage_config_load(cfg, path, err, err_len);
}

int main(int argc, char **argv) {
  vt_dist d;
  char err[2048];
  if (vt_dist_init(&d, &argc, &argv, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  CHECK(mkdtemp(tmp) != NULL); /* each rank its own copy of the same data and weights */
  char path[600];
  snprintf(path, sizeof path, "%s/data", tmp);
  synth_cfg sc = synth_defaults();
  sc.samples = 37;
  sc.vocab = 96;
  sc.min_len = 8;
  sc.max_len = 30; /* some are cut to max_len 24 */
  sc.seed = 11;
  CHECK_MSG(synth_write(path, &sc, err, sizeof err) == 0, "%s", err);

  /* the label tokens the set holds: every sample once, cut to max_len, position 0 never
   * predicted */
  mix_config mc = {0};
  mix *m = NULL;
  snprintf(path, sizeof path, "%s/data/mixture.yaml", tmp);
  CHECK(mix_config_load(&mc, path, err, sizeof err) == 0);
  CHECK(mix_open(&m, &mc, 0, 1, err, sizeof err) == 0);
  int64_t want_tokens = 0, n_set = mix_epoch_total(m);
  shard_sample s = {0};
  for (int64_t i = 0; i < n_set; i++) {
    CHECK(mix_next(m, &s, NULL, err, sizeof err) == 0);
    for (size_t k = 1; k < s.ids.n && k < 24; k++) want_tokens += s.labels.v[k] != -100;
  }
  shard_sample_free(&s);
  mix_close(m);
  mix_config_free(&mc);
  CHECK(n_set == 37);

  /* weights: one training step of one process */
  static stage_cfg cfg;
  CHECK_MSG(load(&cfg, 4, err, sizeof err) == 0, "%s", err);
  vt_train_result tr;
  vt_trainer_opts o = {.cfg = &cfg};
  CHECK_MSG(vt_train(&o, &tr, err, sizeof err) == 0, "%s", err);

  const int64_t batches[] = {1, 3, 4, 5, 8, 64};
  double ref_loss = NAN;
  for (size_t bi = 0; bi < sizeof batches / sizeof *batches; bi++) {
    CHECK_MSG(load(&cfg, batches[bi], err, sizeof err) == 0, "%s", err);
    for (int ranks = 1; ranks <= d.world; ranks++) {
      vt_eval_result res;
      CHECK_MSG(vt_eval(&cfg, tr.checkpoint, cfg.mixture, ranks == 1 ? NULL : &d, &res, err,
                        sizeof err) == 0,
                "%s", err);
      double loss = vt_eval_value(&res, "loss");
      int64_t tokens = (int64_t)res.metrics[0].count;
      CHECK_MSG(res.samples == 37 && tokens == want_tokens,
                "batch %lld on %d rank(s): %lld samples (want 37), %lld tokens (want %lld)",
                (long long)batches[bi], ranks, (long long)res.samples, (long long)tokens,
                (long long)want_tokens);
      if (isnan(ref_loss)) ref_loss = loss;
      /* the same tokens summed in another grouping: f32 roundings apart */
      CHECK_MSG(fabs(loss - ref_loss) <= 1e-5 * ref_loss,
                "batch %lld on %d rank(s): loss %.9g vs %.9g", (long long)batches[bi], ranks, loss,
                ref_loss);
      double acc = vt_eval_value(&res, "token_acc");
      CHECK(acc >= 0 && acc <= 1 && res.metrics[1].count == tokens);
      if (d.rank == 0)
        printf("batch %2lld, %d rank(s): %lld samples, %lld tokens, loss %.6f, token_acc %.4f\n",
               (long long)batches[bi], ranks, (long long)res.samples, (long long)tokens, loss, acc);
    }
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  int rc = vt_test_finish(d.rank == 0 ? "test_eval rank 0" : "test_eval rank 1");
  vt_dist_finalize(&d);
  return rc;
}
