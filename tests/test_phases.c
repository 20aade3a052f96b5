// ctest-labels: e2e
/* A two-phase model (tests/two_phase_fx.h) through the model interface and the real trainer
 * (as a GAN codec: a discriminator phase, then a generator phase). The model is registered by
 * the test: the trainer never names it. Checks: each phase updates only its own parameters with its
 * own optimizer state, learning rate and schedule; every loss term reaches metrics.jsonl;
 * a checkpoint holds both phases' moments and step counts; a run stopped and resumed logs
 * bit-identical losses and ends with byte-identical weights; unknown terms and phases in
 * the stage config are errors that name them. */
#include <stdlib.h>
#include <string.h>

#include "autograd/regfile.h"
#include "checkpoints/safetensors.h"
#include "data/synth.h"
#include "stages/stage_config.h"
#include "tests/testutil.h"
#include "tests/two_phase_fx.h"
#include "train/trainer.h"

/* ---- the test ---- */

static char tmp[] = "/tmp/vt_phases_XXXXXX";

static void write_stage(const char *name, const char *run, const char *extra) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "stage: gan-test\n"
          "model: {name: two_phase, config: model.json}\n"
          "data: {mixture: data/mixture.yaml, max_len: 32}\n"
          "train:\n  steps: 8\n  batch_size: 4\n  grad_accum: 2\n  seed: 4\n  lr: 1.0e-2\n"
          "  losses: {adv: 0.5}\n"
          "  phases:\n"
          "    disc: {optimizer: sgd, momentum: 0.9, lr: 0.05, schedule: {kind: constant}}\n"
          "    gen: {lr: 2.0e-2}\n"
          "schedule: {kind: cosine, warmup_steps: 2}\n"
          "output: {dir: %s, save_every: 4, keep_last: 5, log_every: 0}\n%s",
          run, extra);
  fclose(f);
}

static int train(const char *name, bool resume, int64_t stop_after, vt_train_result *r, char *err,
                 size_t err_len) {
  static stage_cfg cfg;
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  if (stage_config_load(&cfg, path, err, err_len)) return -1;
  vt_trainer_opts o = {.cfg = &cfg, .resume = resume, .stop_after = stop_after};
  return vt_train(&o, r, err, err_len);
}

/* The whole file at path (NULL when it cannot be read); the caller frees it. */
static char *slurp(const char *path, size_t *len) {
  return vt_read_regular(path, (size_t)1 << 30, len, NULL, 0);
}

/* The value of "key" in line n (1-based) of RUN/metrics.jsonl, or NAN. */
static double metric(const char *run, int n, const char *key) {
  char path[512], line[1024], pat[80];
  snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp, run);
  snprintf(pat, sizeof pat, "\"%s\": ", key);
  FILE *f = fopen(path, "r");
  double v = NAN;
  for (int i = 1; f && fgets(line, sizeof line, f); i++)
    if (i == n) {
      char *p = strstr(line, pat);
      if (p) v = atof(p + strlen(pat));
    }
  if (f) fclose(f);
  return v;
}

int main(void) {
  CHECK(vt_model_register(&tp_ops) == 0);
  CHECK(vt_model_register(&tp_ops) == -1); /* a name is registered once */
  CHECK(mkdtemp(tmp) != NULL);
  char path[512], err[2048];
  snprintf(path, sizeof path, "%s/data", tmp);
  synth_cfg sc = synth_defaults();
  sc.samples = 128;
  sc.vocab = 64;
  sc.min_len = 12;
  sc.max_len = 30;
  CHECK_MSG(synth_write(path, &sc, err, sizeof err) == 0, "%s", err);
  snprintf(path, sizeof path, "%s/model.json", tmp);
  FILE *f = fopen(path, "w");
  fprintf(f, "{\"model_type\": \"two_phase\", \"vocab_size\": 64, \"dim\": 16}\n");
  fclose(f);

  write_stage("a.yaml", "run_a", "");
  write_stage("b.yaml", "run_b", "");
  vt_train_result ra, rb;
  CHECK_MSG(train("a.yaml", false, 0, &ra, err, sizeof err) == 0, "%s", err);
  CHECK(ra.step == 8);
  /* each term in metrics.jsonl; the generator's LM term falls; per-phase LR and schedule:
   * the disc's constant 0.05 (SGD), the gen's cosine from 2e-2 after 2 warmup steps */
  double lm1 = metric("run_a", 1, "loss_lm"), lm8 = metric("run_a", 8, "loss_lm");
  CHECK_MSG(lm8 < lm1 - 0.05, "lm %g -> %g", lm1, lm8);
  CHECK(!isnan(metric("run_a", 8, "loss_disc")) && !isnan(metric("run_a", 8, "loss_adv")));
  CHECK_MSG(metric("run_a", 1, "lr") == 0.05 && metric("run_a", 8, "lr") == 0.05, "disc lr %g",
            metric("run_a", 8, "lr"));
  double g2 = metric("run_a", 2, "lr_gen"), g3 = metric("run_a", 3, "lr_gen"),
         g8 = metric("run_a", 8, "lr_gen");
  CHECK_MSG(fabs(g2 - 1e-2) < 1e-9 && fabs(g3 - 2e-2) < 1e-9 && g8 < g3, "gen lr %g %g %g", g2, g3,
            g8);
  /* the reported step loss is the disc phase's weighted terms */
  CHECK(fabs(metric("run_a", 8, "loss") - metric("run_a", 8, "loss_disc")) < 1e-6);
  printf("lm %.4f -> %.4f, disc %.4f -> %.4f, adv %.4f -> %.4f; gen lr %g %g %g\n", lm1, lm8,
         metric("run_a", 1, "loss_disc"), metric("run_a", 8, "loss_disc"),
         metric("run_a", 1, "loss_adv"), metric("run_a", 8, "loss_adv"), g2, g3, g8);

  /* the checkpoint holds each phase's state for its own parameters only */
  snprintf(path, sizeof path, "%s/run_a/checkpoints/step-00000008/optim.safetensors", tmp);
  st_file sf;
  CHECK_MSG(st_file_open(&sf, path, err, sizeof err) == 0, "%s", err);
  CHECK(st_find(&sf, "disc.momentum_buffer.disc.score.weight") != NULL);
  CHECK(st_find(&sf, "gen.exp_avg.gen.embed.weight") &&
        st_find(&sf, "gen.exp_avg_sq.gen.head.weight"));
  CHECK(!st_find(&sf, "disc.momentum_buffer.gen.embed.weight") &&
        !st_find(&sf, "gen.exp_avg.disc.score.weight") &&
        !st_find(&sf, "exp_avg.gen.embed.weight"));
  st_file_close(&sf);
  size_t len;
  snprintf(path, sizeof path, "%s/run_a/checkpoints/step-00000008/trainer.json", tmp);
  char *js = slurp(path, &len);
  CHECK(js && strstr(js, "\"name\": \"disc\"") && strstr(js, "\"name\": \"gen\"") &&
        strstr(js, "\"model\": \"two_phase\""));
  free(js);

  /* stopped after step 3 and resumed: the same losses, bit for bit, and the same weights */
  CHECK_MSG(train("b.yaml", false, 3, &rb, err, sizeof err) == 0, "%s", err);
  CHECK(rb.interrupted && rb.step == 3);
  CHECK_MSG(train("b.yaml", true, 0, &rb, err, sizeof err) == 0, "%s", err);
  CHECK(rb.start_step == 3 && rb.step == 8);
  const char *keys[] = {"loss", "loss_lm", "loss_adv", "grad_norm", "grad_norm_gen"};
  for (int s = 1; s <= 8; s++)
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
      double a = metric("run_a", s, keys[k]), b = metric("run_b", s, keys[k]);
      CHECK_MSG(a == b, "step %d %s: %.9g uninterrupted, %.9g resumed", s, keys[k], a, b);
    }
  char pa[512], pb[512];
  snprintf(pa, sizeof pa, "%s/run_a/checkpoints/step-00000008/model.safetensors", tmp);
  snprintf(pb, sizeof pb, "%s/run_b/checkpoints/step-00000008/model.safetensors", tmp);
  CHECK(vt_test_same_bytes(pa, pb));

  write_stage("bad_term.yaml", "run_x", "");
  snprintf(path, sizeof path, "%s/bad_term.yaml", tmp);
  char *text = slurp(path, &len);
  char *p = strstr(text, "adv: 0.5");
  memcpy(p, "adz: 0.5", 8);
  f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  CHECK(train("bad_term.yaml", false, 0, &rb, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "\"adz\"") && strstr(err, "lm, adv"), "%s", err);
  p = strstr(text, "adz: 0.5");
  memcpy(p, "adv: 0.5", 8);
  p = strstr(text, "    gen: {");
  memcpy(p, "    gem: {", 10);
  f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  free(text);
  CHECK(train("bad_term.yaml", false, 0, &rb, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "\"gem\"") && strstr(err, "disc, gen"), "%s", err);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_phases");
}
