// ctest-labels: unit
/* The stage config (stages/stage_config.c) and a stage's initial weights from several sources
 * (stages/stage_model.c): parts stand for their globs everywhere; each init source fills the
 * parameters it selects under their names there (ours = prefix + theirs), later sources win;
 * a selected tensor missing from a source is an error naming the config line; unknown keys
 * are errors naming the key, its line and the file; data.ratios override the mixture's and
 * must name its datasets; device: cuda without a usable GPU is an error naming the device. */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors_write.h"
#include "data/synth.h"
#include "stages/stage_model.h"
#include "tests/testutil.h"
#include "train/trainer.h"

static char tmp[] = "/tmp/vt_stage_XXXXXX";

static const char *write_file(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

static char body[8192];

/* The stage used throughout, with `extra` appended at the top level. */
static const char *stage(const char *name, const char *init, const char *extra) {
  snprintf(body, sizeof body,
           "stage: s1\n"
           "device: cpu\n"
           "model:\n"
           "  config: %s/qwen2_tiny\n"
           "  frozen_mode: train\n"
           "  parts:\n"
           "    llm: [\"model.*\"]\n"
           "    head: lm_head.*\n"
           "init:\n%s"
           "data:\n  mixture: data/mixture.yaml\n  max_len: 32\n  ratios: {synth: 0.5}\n"
           "train:\n  epochs: 1\n  batch_size: 8\n  lr: 1.0e-3\n"
           "  trainable: [head, \"model.norm.*\"]\n"
           "  losses: {lm: 2.0}\n"
           "  groups:\n    - {params: head, lr: 5.0e-3}\n"
           "schedule: {kind: constant}\n"
           "output: {dir: run, log_every: 0}\n%s",
           getenv("VT_FIXTURES"), init, extra);
  return write_file(name, body);
}

int main(void) {
  CHECK(mkdtemp(tmp) != NULL);
  char err[4096], path[600];
  snprintf(path, sizeof path, "%s/data", tmp);
  synth_cfg sc = synth_defaults();
  sc.samples = 64;
  sc.vocab = 96;
  sc.min_len = 8;
  sc.max_len = 24;
  CHECK_MSG(synth_write(path, &sc, err, sizeof err) == 0, "%s", err);

  /* source 2: lm_head under another name, read with a prefix */
  float *head = malloc(sizeof(float) * 96 * 64);
  for (int i = 0; i < 96 * 64; i++) head[i] = 0.25f;
  st_entry e = {.name = "weight", .dtype = VT_F32, .ndim = 2, .shape = {96, 64}, .data = head};
  snprintf(path, sizeof path, "%s/head.safetensors", tmp);
  CHECK_MSG(st_write(path, &e, 1, NULL, 0, err, sizeof err) == 0, "%s", err);
  char init[2048];
  snprintf(init, sizeof init,
           "  - {from: %s/qwen2_tiny, params: [llm, head]}\n"
           "  - from: head.safetensors\n    params: head\n    prefix: lm_head.\n",
           getenv("VT_FIXTURES"));
  static stage_cfg cfg;
  CHECK_MSG(stage_config_load(&cfg, stage("a.yaml", init, ""), err, sizeof err) == 0, "%s", err);
  CHECK(!strcmp(cfg.name, "s1") && cfg.device.type == VT_DEV_CPU && cfg.frozen_train);
  CHECK(cfg.n_parts == 2 && !strcmp(cfg.parts[1].globs, "lm_head.*"));
  CHECK(cfg.n_init == 2 && !strcmp(cfg.init[0].params, "model.*,lm_head.*") &&
        !strcmp(cfg.init[1].prefix, "lm_head.") && cfg.init[1].line == 11);
  CHECK(cfg.n_trainable == 2 && !strcmp(cfg.trainable[0], "lm_head.*"));
  CHECK(cfg.optim.n_groups == 1 && !strcmp(cfg.optim.groups[0].globs, "lm_head.*"));
  CHECK(stage_loss_weight(&cfg, "lm") == 2.0 && stage_loss_weight(&cfg, "other") == 1.0);
  CHECK(cfg.n_ratios == 1 && cfg.ratios[0].weight == 0.5);

  /* the sources in order: the fixture everywhere, then lm_head from the second file */
  vt_params ps;
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  vt_model *m =
      stage_model_open(cfg.model_name, cfg.model_config, &cfg.model_opts, &ps, err, sizeof err);
  CHECK_MSG(m && vt_params_alloc(&ps, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(stage_load_init(&cfg, &ps, stdout, err, sizeof err) == 0, "%s", err);
  const float *lm = vt_params_find(&ps, "lm_head.weight")->t.data;
  const float *emb = vt_params_find(&ps, "model.embed_tokens.weight")->t.data;
  CHECK(lm[0] == 0.25f && lm[96 * 64 - 1] == 0.25f && emb[0] != 0.0f && emb[0] != 0.25f);
  vt_model_destroy(m);
  vt_params_free(&ps);

  /* a source without what it is asked for: the config line and the tensor are named */
  snprintf(init, sizeof init, "  - {from: head.safetensors, params: llm}\n");
  CHECK(stage_config_load(&cfg, stage("b.yaml", init, ""), err, sizeof err) == 0);
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  m = stage_model_open(NULL, cfg.model_config, NULL, &ps, err, sizeof err);
  CHECK(m && vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(stage_load_init(&cfg, &ps, NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "b.yaml:10") && strstr(err, "model.embed_tokens.weight") &&
                strstr(err, "missing"),
            "%s", err);
  vt_model_destroy(m);
  vt_params_free(&ps);

  /* a trainer run: ratio 0.5 halves the epoch (64 -> 32 samples, 4 steps of 8) */
  snprintf(init, sizeof init, "  - {from: %s/qwen2_tiny}\n", getenv("VT_FIXTURES"));
  CHECK(stage_config_load(&cfg, stage("c.yaml", init, ""), err, sizeof err) == 0);
  vt_train_result r;
  vt_trainer_opts o = {.cfg = &cfg};
  CHECK_MSG(vt_train(&o, &r, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(r.total_steps == 4, "%lld steps", (long long)r.total_steps);

  /* errors: unknown keys (key, line, file), a ratio naming no dataset, a device */
  struct {
    const char *extra, *want[3];
  } bad[] = {
      {"optput: {}\n", {"optput", "d.yaml:25", "the top level"}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CHECK(stage_config_load(&cfg, stage("d.yaml", init, bad[i].extra), err, sizeof err) == -1);
    for (int k = 0; k < 3; k++)
      CHECK_MSG(strstr(err, bad[i].want[k]) && strstr(err, "d.yaml"), "want %s: %s", bad[i].want[k],
                err);
  }
  const char *typo = write_file("t.yaml", "device: tpu\nmodel: {config: x}\ndata: {mixture: m}\n"
                                          "train: {steps: 1}\noutput: {dir: o}\n");
  CHECK(stage_config_load(&cfg, typo, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "t.yaml:1") && strstr(err, "\"tpu\"") && strstr(err, "cpu, cuda"), "%s",
            err);
  typo = write_file("e.yaml",
                    "model: {config: x, recompte: true}\ndata: {mixture: m}\ntrain: {steps: 1}\n"
                    "output: {dir: o}\n");
  CHECK(stage_config_load(&cfg, typo, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "recompte") && strstr(err, "e.yaml:1"), "%s", err);
  typo = write_file("f.yaml", "model: {config: x}\ninit:\n  - {from: y, prefx: a.}\n"
                              "data: {mixture: m}\ntrain: {steps: 1}\noutput: {dir: o}\n");
  CHECK(stage_config_load(&cfg, typo, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "prefx") && strstr(err, "f.yaml:3"), "%s", err);
  typo = write_file("g.yaml", "model: {config: x}\ndata: {mixture: m}\n"
                              "train:\n  steps: 1\n  phases:\n    gen: {lr: 1, warmup: 3}\n"
                              "output: {dir: o}\n");
  CHECK(stage_config_load(&cfg, typo, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "warmup") && strstr(err, "g.yaml:6") && strstr(err, "train.phases.gen"),
            "%s", err);

  CHECK(stage_config_load(&cfg, stage("h.yaml", init, ""), err, sizeof err) == 0);
  cfg.ratios[0] = (stage_weight){"captions", 0.2};
  CHECK(vt_train(&o, &r, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "data.ratios") && strstr(err, "\"captions\""), "%s", err);

  CHECK(stage_config_load(&cfg, stage("i.yaml", init, ""), err, sizeof err) == 0);
  cfg.device = (vt_device){VT_DEV_CUDA, 3};
  CHECK(vt_train(&o, &r, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "device") && strstr(err, "cuda:3"), "%s", err);
  printf("device error: %s\n", err);

  /* the shipped stage configs read and build */
  const char *shipped[] = {"configs/tiny/train.yaml", "configs/stages/qwen2.5-7b-sft.yaml"};
  for (size_t i = 0; i < sizeof shipped / sizeof *shipped; i++) {
    snprintf(path, sizeof path, "%s/%s", getenv("VT_SOURCE_DIR"), shipped[i]);
    CHECK_MSG(stage_config_load(&cfg, path, err, sizeof err) == 0, "%s", err);
    CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
    m = stage_model_open(cfg.model_name, cfg.model_config, &cfg.model_opts, &ps, err, sizeof err);
    CHECK_MSG(m != NULL, "%s: %s", shipped[i], err);
    vt_model_destroy(m);
    vt_params_free(&ps);
  }

  free(head);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_stage_config");
}
