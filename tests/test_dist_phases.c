// ctest-labels: mpi e2e
/* ZeRO with a two-phase model (as the GAN codec: a discriminator phase with SGD + momentum,
 * then a generator phase with AdamW) through the real trainer on 2 ranks: each phase shards its
 * own stretch (both phases' state pieces appear in every rank's optimizer file), and ZeRO 1 and
 * ZeRO 2 with batch 2 x 2 micro-batches per rank log the per-term losses of one process with
 * batch 4 x 2, and end with its weights (to f32 reduction order). One parameter is frozen: it
 * has no gradient slot, so no shard. The same under bf16, where both phases shard the f32
 * masters of their GEMM weights (the head, the disc) and keep the embedding's whole, against
 * one bf16 process. The model (tests/two_phase_fx.h, with its fixed vector) is registered by
 * the test. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoints/safetensors.h"
#include "data/synth.h"
#include "stages/stage_config.h"
#include "tests/testutil.h"
#include "tests/two_phase_fx.h"
#include "train/trainer.h"

static char dir[256];

static int64_t sharded; /* the last run's sharded f32 master values */

static int train(const char *name, int batch, int zero, const char *precision, const vt_dist *d,
                 char *err, size_t err_len) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
  if (!d || d->rank == 0) {
    FILE *f = fopen(path, "w");
    fprintf(f,
            "model: {name: two_phase, config: model.json}\n"
            "data: {mixture: data/mixture.yaml, max_len: 32}\n"
            "train:\n  steps: 5\n  batch_size: %d\n  grad_accum: 2\n  seed: 4\n  lr: 1.0e-2\n"
            "  zero: %d\n  bucket_mb: 0.001\n  frozen: [gen.fixed.weight]\n  precision: %s\n"
            "  losses: {adv: 0.5}\n"
            "  phases:\n"
            "    disc: {optimizer: sgd, momentum: 0.9, lr: 0.05, schedule: {kind: constant}}\n"
            "    gen: {lr: 2.0e-2, max_grad_norm: 0.5}\n"
            "output: {dir: %s, log_every: 0}\n",
            batch, zero, precision, name);
    fclose(f);
  }
  if (d) vt_dist_barrier(d);
  static stage_cfg cfg;
  if (stage_config_load(&cfg, path, err, err_len)) return -1;
  vt_trainer_opts o = {.cfg = &cfg, .dist = d};
  vt_train_result r;
  int rc = vt_train(&o, &r, err, err_len);
  sharded = r.sharded_masters;
  return rc;
}

/* Term `key` of step n of a run's metrics.jsonl (NAN when absent). */
static double metric(const char *run, int n, const char *key) {
  char path[600], line[4096], pat[80];
  snprintf(path, sizeof path, "%s/%s/metrics.jsonl", dir, run);
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  FILE *f = fopen(path, "r");
  double v = NAN;
  for (int i = 0; f && fgets(line, sizeof line, f);)
    if (strstr(line, "\"step\"") && ++i == n) {
      char *p = strstr(line, pat);
      if (p) v = atof(p + strlen(pat));
    }
  if (f) fclose(f);
  return v;
}

static double weights_diff(const char *a, const char *b) {
  char pa[600], pb[600], err[512];
  snprintf(pa, sizeof pa, "%s/%s/checkpoints/step-00000005/model.safetensors", dir, a);
  snprintf(pb, sizeof pb, "%s/%s/checkpoints/step-00000005/model.safetensors", dir, b);
  st_file fa, fb;
  if (st_file_open(&fa, pa, err, sizeof err) || st_file_open(&fb, pb, err, sizeof err)) {
    printf("%s\n", err);
    return INFINITY;
  }
  double worst = fa.n == fb.n ? 0 : INFINITY;
  for (int i = 0; i < fa.n; i++) {
    const st_tensor *x = &fa.tensors[i], *y = st_find(&fb, x->name);
    if (!y || y->numel != x->numel) return INFINITY;
    float *u = malloc(sizeof(float) * (size_t)x->numel),
          *w = malloc(sizeof(float) * (size_t)x->numel);
    st_tensor_read(x, VT_F32, u, sizeof(float) * (size_t)x->numel, err, sizeof err);
    st_tensor_read(y, VT_F32, w, sizeof(float) * (size_t)x->numel, err, sizeof err);
    for (int64_t j = 0; j < x->numel; j++)
      worst = fmax(worst, fabs((double)u[j] - w[j]) / (1e-3 + fabs((double)u[j])));
    free(u);
    free(w);
  }
  st_file_close(&fa);
  st_file_close(&fb);
  return worst;
}

int main(int argc, char **argv) {
  vt_dist d;
  char err[2048];
  CHECK(vt_dist_init(&d, &argc, &argv, err, sizeof err) == 0);
  if (d.world != 2) {
    printf("needs exactly 2 ranks (mpirun -np 2), got %d: skipped\n", d.world);
    vt_dist_finalize(&d);
    return 77;
  }
  CHECK(vt_model_register(&tp_ops) == 0);
  if (d.rank == 0) {
    snprintf(dir, sizeof dir, "/tmp/vt_zero_phases_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char path[600];
    snprintf(path, sizeof path, "%s/data", dir);
    synth_cfg sc = synth_defaults();
    sc.samples = 96;
    sc.vocab = 48;
    sc.min_len = sc.max_len = 24; /* no padding: the disc term sums every position */
    CHECK_MSG(synth_write(path, &sc, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/model.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "{\"model_type\": \"two_phase\", \"vocab_size\": 48, \"dim\": 16, \"fixed\": true}\n");
    fclose(f);
  }
  CHECK(vt_dist_broadcast(&d, dir, sizeof dir) == 0);
  if (chdir(dir)) return 1;
  /* the reference: one process (rank 0 alone) on the global batch */
  if (d.rank == 0) CHECK_MSG(train("ref", 4, 0, "fp32", NULL, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(train("z1", 2, 1, "fp32", &d, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(train("z2", 2, 2, "fp32", &d, err, sizeof err) == 0, "%s", err);
  /* bf16: the head and the disc (2-D, read by GEMMs only) shard their f32 masters, each phase
   * its own; the embedding (a lookup) keeps them whole */
  char kern[256];
  vt_ctx *probe = vt_test_cpu_ctx();
  bool bf16 = vt_ctx_set_gemm_dtype(probe, VT_BF16, kern, sizeof kern, err, sizeof err) == 0;
  vt_ctx_free(probe);
  if (bf16 && d.rank == 0)
    CHECK_MSG(train("ref16", 4, 0, "bf16", NULL, err, sizeof err) == 0, "%s", err);
  for (int z = 1; bf16 && z <= 2; z++) {
    CHECK_MSG(train(z == 1 ? "h1" : "h2", 2, z, "bf16", &d, err, sizeof err) == 0, "%s", err);
    CHECK(sharded == 48 * 16 + 16); /* the head [48, 16] and the disc [1, 16] */
  }
  if (d.rank == 0 && bf16) {
    const char *runs[] = {"h1", "h2"}, *keys[] = {"loss_disc", "loss_lm", "loss_adv"};
    for (int r = 0; r < 2; r++) {
      double worst = 0;
      for (int n = 1; n <= 5; n++)
        for (int k = 0; k < 3; k++) {
          double a = metric("ref16", n, keys[k]), b = metric(runs[r], n, keys[k]);
          worst = fmax(worst, fabs(a - b) / (1e-3 + fabs(a)));
        }
      double w = weights_diff("ref16", runs[r]);
      printf("bf16 %s: per-term losses of 5 steps within %.2g, weights within %.2g of one "
             "process\n",
             runs[r], worst, w);
      CHECK(worst < 1e-4 && w < 1e-3); /* bf16 roundings flipped by the reduction order */
    }
  }
  if (d.rank == 0) {
    const char *runs[] = {"z1", "z2"}, *keys[] = {"loss_disc", "loss_lm", "loss_adv"};
    for (int r = 0; r < 2; r++) {
      double worst = 0;
      for (int n = 1; n <= 5; n++)
        for (int k = 0; k < 3; k++) {
          double a = metric("ref", n, keys[k]), b = metric(runs[r], n, keys[k]);
          worst = fmax(worst, fabs(a - b) / (1e-3 + fabs(a)));
          CHECK_MSG(fabs(a - b) <= 2e-5 * (1e-3 + fabs(a)), "%s step %d %s: %.9g vs %.9g", runs[r],
                    n, keys[k], a, b);
        }
      double w = weights_diff("ref", runs[r]);
      CHECK_MSG(w < 1e-4, "%s: final weights differ by %g (relative)", runs[r], w);
      printf("%s: per-term losses of 5 steps within %.2g, weights within %.2g of one process\n",
             runs[r], worst, w);
    }
  }
  /* every rank's optimizer file holds pieces of both phases, and nothing of the frozen one */
  char path[700];
  snprintf(path, sizeof path, "z2/checkpoints/step-00000005/optim-rank-%05d-of-00002.safetensors",
           d.rank);
  st_file f;
  CHECK_MSG(st_file_open(&f, path, err, sizeof err) == 0, "%s", err);
  int disc = 0, gen = 0, fixed = 0;
  for (int i = 0; i < f.n; i++) {
    disc += !strncmp(f.tensors[i].name, "disc.", 5);
    gen += !strncmp(f.tensors[i].name, "gen.", 4);
    fixed += strstr(f.tensors[i].name, "gen.fixed") != NULL;
  }
  st_file_close(&f);
  CHECK_MSG(disc > 0 && gen > 0 && fixed == 0, "rank %d: %d disc, %d gen, %d frozen pieces", d.rank,
            disc, gen, fixed);
  vt_dist_barrier(&d);
  if (d.rank == 0) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd)) printf("could not remove %s\n", dir);
  }
  char name[64];
  snprintf(name, sizeof name, "test_dist_phases rank %d", d.rank);
  int rc = vt_test_finish(name);
  vt_dist_finalize(&d);
  return rc;
}
