// ctest-labels: e2e
/* The trainer end to end on generated shards: the loss falls; a run stopped after step 5
 * and resumed from its checkpoint logs bit-identical losses to an uninterrupted run and ends
 * with byte-identical weights; a corrupt newest checkpoint is refused and the previous one
 * used; vita eval's mean loss matches the trained model. */
#include <dirent.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "autograd/regfile.h"
#include "checkpoints/ckpt.h"
#include "data/synth.h"
#include "tests/testutil.h"
#include "train/trainer.h"

static char tmp[] = "/tmp/vt_train_XXXXXX";

static void write_config(const char *name, const char *out, int64_t steps, int64_t save_every) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  fprintf(f,
          "model:\n  config: %s/qwen2_tiny/config.json\n"
          "data:\n  mixture: data/mixture.yaml\n  max_len: 40\n"
          "train:\n  steps: %lld\n  batch_size: 4\n  grad_accum: 2\n  seed: 3\n  lr: 1.0e-2\n"
          "  max_grad_norm: 1.0\n"
          "schedule:\n  kind: cosine\n  warmup_steps: 2\n"
          "output:\n  dir: %s\n  save_every: %lld\n  keep_last: 5\n  log_every: 0\n",
          getenv("VT_FIXTURES"), (long long)steps, out, (long long)save_every);
  fclose(f);
}

/* The "loss" field of each line of RUN/metrics.jsonl, as text. */
static int read_losses(const char *run, char losses[][32], int max) {
  char path[512], line[512];
  snprintf(path, sizeof path, "%s/%s/metrics.jsonl", tmp, run);
  FILE *f = fopen(path, "r");
  int n = 0;
  while (f && n < max && fgets(line, sizeof line, f)) {
    char *p = strstr(line, "\"loss\": ");
    if (!p) continue;
    sscanf(p + 8, "%31[^,]", losses[n++]);
  }
  if (f) fclose(f);
  return n;
}

/* The whole file at path (NULL when it cannot be read); the caller frees it. */
static char *slurp(const char *path, size_t *len) {
  return vt_read_regular(path, (size_t)1 << 30, len, NULL, 0);
}

static volatile sig_atomic_t stop_flag;

static int train(const char *cfg_name, bool resume, int64_t stop_after, vt_train_result *r) {
  char path[512], err[2048];
  snprintf(path, sizeof path, "%s/%s", tmp, cfg_name);
  static stage_cfg cfg;
  if (stage_config_load(&cfg, path, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  vt_trainer_opts o = {.cfg = &cfg, .resume = resume, .stop_after = stop_after, .stop = &stop_flag};
  int rc = vt_train(&o, r, err, sizeof err);
  if (rc) fprintf(stderr, "train: %s\n", err);
  return rc;
}

/* Edits DIR/trainer.json (set key, in phase 0 when in_phase) and rewrites DIR's manifest so
 * that it matches again: a checkpoint consistent on disk whose state lies. */
static void forge_state(const char *dir, const char *key, json_int_t v, bool in_phase) {
  char p[1024];
  snprintf(p, sizeof p, "%s/trainer.json", dir);
  json_t *j = json_load_file(p, 0, NULL);
  CHECK(j != NULL);
  if (!j) return;
  json_t *obj = in_phase ? json_array_get(json_object_get(j, "phases"), 0) : j;
  json_object_set_new(obj, key, json_integer(v));
  CHECK(json_dump_file(j, p, JSON_INDENT(2)) == 0);
  json_decref(j);
  char man[8192];
  int64_t step = atoll(strrchr(dir, '-') + 1);
  size_t n =
      (size_t)snprintf(man, sizeof man, "vita-train checkpoint v1\nstep %lld\n", (long long)step);
  DIR *d = opendir(dir);
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.' || !strcmp(e->d_name, "COMPLETE")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    size_t len = 0;
    char *buf = slurp(p, &len);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), (const Bytef *)buf, (uInt)len);
    n += (size_t)snprintf(man + n, sizeof man - n, "file %s %zu %08lx\n", e->d_name, len, crc);
    free(buf);
  }
  if (d) closedir(d);
  snprintf(p, sizeof p, "%s/COMPLETE", dir);
  FILE *f = fopen(p, "w");
  fputs(man, f);
  fclose(f);
  char err[512];
  CHECK_MSG(ckpt_verify(dir, err, sizeof err) == 0, "%s", err);
}

int main(void) {
  CHECK(mkdtemp(tmp) != NULL);
  char data[512], err[1024];
  snprintf(data, sizeof data, "%s/data", tmp);
  synth_cfg sc = synth_defaults();
  sc.samples = 256;
  sc.vocab = 96; /* the tiny fixture model's vocabulary */
  sc.min_len = 16;
  sc.max_len = 48; /* some samples are cut to max_len 40 */
  CHECK_MSG(synth_write(data, &sc, err, sizeof err) == 0, "%s", err);

  write_config("a.yaml", "run_a", 12, 0);
  write_config("b.yaml", "run_b", 12, 5);
  vt_train_result ra, rb;
  CHECK(train("a.yaml", false, 0, &ra) == 0);
  CHECK(ra.step == 12 && !ra.interrupted && ra.truncated_samples > 0);
  CHECK_MSG(ra.last_loss < ra.first_loss - 1.0, "loss %.4f -> %.4f", ra.first_loss, ra.last_loss);

  CHECK(train("b.yaml", false, 7, &rb) == 0); /* stops after step 7: checkpoints 5 and 7 */
  CHECK(rb.interrupted && rb.step == 7);
  CHECK(strstr(rb.checkpoint, "step-00000007") != NULL);
  CHECK(train("b.yaml", true, 0, &rb) == 0);
  CHECK(rb.start_step == 7 && rb.step == 12 && !rb.interrupted);

  /* a stop request inside a step (between its two micro-batches) ends it without an update,
   * saves step 0 with the data rewound, and the resumed run ends with run a's weights */
  write_config("c.yaml", "run_c", 12, 0);
  vt_train_result rc;
  stop_flag = 1;
  CHECK(train("c.yaml", false, 0, &rc) == 0);
  stop_flag = 0;
  CHECK_MSG(rc.interrupted && rc.step == 0 && strstr(rc.checkpoint, "step-00000000"),
            "stopped at %lld (%s)", (long long)rc.step, rc.checkpoint);
  CHECK(train("c.yaml", true, 0, &rc) == 0);
  CHECK(rc.start_step == 0 && rc.step == 12);
  {
    char pa_[512], pc_[512];
    snprintf(pa_, sizeof pa_, "%s/run_a/checkpoints/step-00000012/model.safetensors", tmp);
    snprintf(pc_, sizeof pc_, "%s/run_c/checkpoints/step-00000012/model.safetensors", tmp);
    CHECK(vt_test_same_bytes(pa_, pc_));
  }

  char la[32][32], lb[32][32];
  int na = read_losses("run_a", la, 32), nb = read_losses("run_b", lb, 32);
  CHECK_MSG(na == 12 && nb == 12, "%d and %d metrics lines", na, nb);
  for (int i = 0; i < na && i < nb; i++)
    CHECK_MSG(strcmp(la[i], lb[i]) == 0, "step %d: loss %s uninterrupted, %s resumed", i + 1, la[i],
              lb[i]);
  char pa[512], pb[512];
  snprintf(pa, sizeof pa, "%s/run_a/checkpoints/step-00000012/model.safetensors", tmp);
  snprintf(pb, sizeof pb, "%s/run_b/checkpoints/step-00000012/model.safetensors", tmp);
  CHECK(vt_test_same_bytes(pa, pb));

  /* corrupt the newest checkpoint of run b: resume falls back to step 10 (kept: 5, 7, 10, 12) */
  snprintf(pb, sizeof pb, "%s/run_b/checkpoints/step-00000012/optim.safetensors", tmp);
  FILE *f = fopen(pb, "r+b");
  CHECK(f != NULL);
  if (f) {
    fseek(f, 200, SEEK_SET);
    fputc(0x5a, f);
    fclose(f);
  }
  char dir[CKPT_PATH_MAX];
  int64_t step;
  snprintf(pb, sizeof pb, "%s/run_b/checkpoints", tmp);
  CHECK(ckpt_find_latest(pb, dir, sizeof dir, &step, err, sizeof err) == 1 && step == 10);

  /* checkpoints whose trainer.json lies (step 99 in step-10, optim_t -5 in step-7): each is
   * refused naming the file and field, and resume falls back to step 5 */
  forge_state(dir, "step", 99, false);
  snprintf(pa, sizeof pa, "%s/run_b/checkpoints/step-00000007", tmp);
  forge_state(pa, "optim_t", -5, true);
  CHECK(train("b.yaml", true, 0, &rb) == 0);
  CHECK_MSG(rb.start_step == 5 && rb.step == 12, "resumed from %lld", (long long)rb.start_step);

  /* vita eval on the final weights of run a */
  char cfg_path[512];
  snprintf(cfg_path, sizeof cfg_path, "%s/a.yaml", tmp);
  static stage_cfg cfg;
  CHECK(stage_config_load(&cfg, cfg_path, err, sizeof err) == 0);
  snprintf(pa, sizeof pa, "%s/run_a/checkpoints/step-00000012", tmp);
  vt_eval_result er;
  CHECK_MSG(vt_eval(&cfg, pa, cfg.mixture, NULL, &er, err, sizeof err) == 0, "%s", err);
  double loss = vt_eval_value(&er, "loss");
  int64_t tokens = (int64_t)er.metrics[0].count;
  printf("eval loss %.4f over %lld tokens; training loss went %.4f -> %.4f\n", loss,
         (long long)tokens, ra.first_loss, ra.last_loss);
  CHECK(tokens > 1000 && loss < ra.first_loss - 1.0);

  /* packed rows: the same data with pack: true trains (max_len 40 rows hold 1-3 samples) */
  char mpath[512];
  snprintf(mpath, sizeof mpath, "%s/data/mixture_packed.yaml", tmp);
  f = fopen(mpath, "w");
  fprintf(f, "seed: 1\npack: true\ndatasets:\n  - name: synth\n    shards: .\n");
  fclose(f);
  snprintf(cfg_path, sizeof cfg_path, "%s/packed.yaml", tmp);
  f = fopen(cfg_path, "w");
  fprintf(f,
          "model: {config: %s/qwen2_tiny/config.json}\n"
          "data: {mixture: data/mixture_packed.yaml, eval_mixture: data/mixture.yaml, "
          "max_len: 40}\n"
          "train: {steps: 12, batch_size: 4, grad_accum: 2, seed: 3, lr: 1.0e-2}\n"
          "output: {dir: run_packed, log_every: 0, eval_every: 6}\n",
          getenv("VT_FIXTURES"));
  fclose(f);
  vt_train_result rp;
  CHECK(train("packed.yaml", false, 0, &rp) == 0);
  CHECK_MSG(rp.step == 12 && rp.last_loss < rp.first_loss - 1.0, "packed: %.4f -> %.4f",
            rp.first_loss, rp.last_loss);
  /* eval_every: an eval_loss line after steps 6 and 12, falling, near the training loss */
  snprintf(mpath, sizeof mpath, "%s/run_packed/metrics.jsonl", tmp);
  f = fopen(mpath, "r");
  char line[256];
  double evals[4];
  int n_eval = 0;
  while (f && fgets(line, sizeof line, f) && n_eval < 4) {
    char *p = strstr(line, "\"eval_loss\": ");
    if (p) evals[n_eval++] = atof(p + 13);
  }
  if (f) fclose(f);
  CHECK_MSG(n_eval == 2 && evals[1] < evals[0] && fabs(evals[1] - rp.last_loss) < 1.0,
            "%d eval lines (%g, %g), last training loss %g", n_eval, n_eval ? evals[0] : 0,
            n_eval > 1 ? evals[1] : 0, rp.last_loss);

  /* a config with an unknown key is refused naming the key and the file */
  snprintf(cfg_path, sizeof cfg_path, "%s/bad.yaml", tmp);
  f = fopen(cfg_path, "w");
  fprintf(f, "model:\n  config: x\ntrain:\n  stepz: 3\n");
  fclose(f);
  CHECK(stage_config_load(&cfg, cfg_path, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "stepz") && strstr(err, "bad.yaml"), "%s", err);

  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_train_resume");
}
