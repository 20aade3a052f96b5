// ctest-labels: e2e
/* `vita curriculum` end to end on the tiny curriculum of configs/curriculum/ (two LM stages,
 * then a speech decoder on the LM's embedding table), on generated data:
 * - freezing: per stage, every parameter outside its trainable set is byte-identical between
 *   the stage's initial weights and its final checkpoint, and every one inside it changed; the
 *   stages chain (a stage starts from the previous final weights, tensor for tensor);
 * - ratios: the samples drawn per dataset (samples.json) are the mixture's (ratio 0.5: half of
 *   a dataset, no sample twice in an epoch; 2.0: every sample twice), and mix_drawn's counts
 *   from a cursor equal the samples mix_next handed out, on one rank and on two;
 * - resume: a run stopped by SIGTERM inside stage 2 (after its step-10 checkpoint), resumed,
 * stopped again inside stage 3
 *   (--stop-after), resumed again, skips the finished stages and ends with byte-identical
 *   weights, losses and sample counts to the uninterrupted run;
 * - the summary table and RUN/curriculum.json. */
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "data/mixture.h"
#include "stages/stage_model.h"
#include "tests/check.h"
#include "tests/curric_fx.h"
#include "train/curriculum.h"

static char T[] = "/tmp/vt_curric_XXXXXX";
static const char *vita;

#define sh curric_fx_sh

static void write_file(const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", T, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Chaining: every tensor of stage i's initial weights that the previous final weights hold is
 * byte-identical to it; returns how many. */
static int check_chain(const curriculum *cur, int i) {
  char a_path[600], b_path[600], err[512];
  snprintf(a_path, sizeof a_path, "%s/initial.safetensors", cur->stages[i].dir);
  curric_fx_final_weights(cur->stages[i - 1].dir, b_path, sizeof b_path);
  st_file a, b;
  if (st_file_open(&a, a_path, err, sizeof err)) return -1;
  if (st_file_open(&b, b_path, err, sizeof err)) {
    st_file_close(&a);
    return -1;
  }
  int n = 0, bad = 0;
  for (int k = 0; k < a.n; k++) {
    const st_tensor *y = st_find(&b, a.tensors[k].name);
    if (!y) continue;
    if (curric_fx_same_bytes(&a.tensors[k], y))
      n++;
    else
      bad++;
  }
  st_file_close(&a);
  st_file_close(&b);
  return bad ? -bad : n;
}

/* The "loss" fields of metrics.jsonl, as text, joined. */
static char *losses(const char *dir) {
  char p[700], err[256];
  snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
  char *t = ckpt_read_text(p, err, sizeof err);
  size_t cap = t ? strlen(t) + 1 : 1, o = 0;
  char *out = calloc(cap, 1);
  for (char *l = t, *next; l && *l; l = next) {
    next = strchr(l, '\n');
    if (next) *next++ = '\0';
    char *s = strstr(l, "\"loss\": ");
    if (s) {
      size_t n = strcspn(s + 8, ",}");
      memcpy(out + o, s + 8, n);
      o += n;
      out[o++] = ' ';
    }
    if (!next) break;
  }
  free(t);
  return out;
}

static bool same_file(const char *a, const char *b) {
  char err[256];
  char *x = ckpt_read_text(a, err, sizeof err), *y = ckpt_read_text(b, err, sizeof err);
  bool eq = x && y && !strcmp(x, y);
  free(x);
  free(y);
  return eq;
}

/* mix_drawn against the samples mix_next hands out, on `world` ranks, after `per_rank` each;
 * and the ratio semantics over whole epochs. */
static void check_mix_drawn(int world, int64_t per_rank) {
  mix_config cfg = {0};
  char err[512];
  cfg.seed = 5;
  cfg.verify = true;
  /* globs are expanded by the config loader only: the shard files by name */
  char fa[2][512], fb[2][512];
  for (int i = 0; i < 2; i++) {
    snprintf(fa[i], sizeof fa[i], "%s/a/shard-%05d.h5", T, i);
    snprintf(fb[i], sizeof fb[i], "%s/b/shard-%05d.h5", T, i);
  }
  const char *la[] = {fa[0], fa[1]}, *lb[] = {fb[0], fb[1]};
  CHECK(!mix_config_add(&cfg, "a", 0.5, la, 2) && !mix_config_add(&cfg, "b", 2.0, lb, 2));
  int64_t got[2] = {0}, want[2] = {0}, uses_a[40] = {0}, uses_b[12] = {0};
  int64_t epoch_len = 0;
  for (int r = 0; r < world; r++) {
    mix *m;
    if (mix_open(&m, &cfg, r, world, err, sizeof err)) {
      CHECK_MSG(0, "%s", err);
      break;
    }
    epoch_len = mix_epoch_len(m);
    shard_sample s = {0};
    mix_ref ref;
    for (int64_t k = 0; k < per_rank && !mix_next(m, &s, &ref, err, sizeof err); k++) {
      want[ref.dataset]++;
      if (ref.epoch == 0 && ref.dataset == 0 && ref.index < 40) uses_a[ref.index]++;
      if (ref.epoch == 0 && ref.dataset == 1 && ref.index < 12) uses_b[ref.index]++;
    }
    shard_sample_free(&s);
    if (r == 0) {
      mix_cursor c = mix_get_cursor(m);
      CHECK(mix_n_datasets(m) == 2 && mix_dataset_size(m, 0) == 40 &&
            mix_dataset_per_epoch(m, 0) == 20 && mix_dataset_per_epoch(m, 1) == 24);
      CHECK_MSG(!mix_drawn(m, &c, got, err, sizeof err), "%s", err);
    }
    mix_close(m);
  }
  CHECK_MSG(got[0] == want[0] && got[1] == want[1],
            "world %d, %lld each: mix_drawn a %lld b %lld, mix_next a %lld b %lld", world,
            (long long)per_rank, (long long)got[0], (long long)got[1], (long long)want[0],
            (long long)want[1]);
  printf("mix_drawn on %d rank(s) after %lld samples each: a %lld, b %lld (as drawn)\n", world,
         (long long)per_rank, (long long)got[0], (long long)got[1]);
  if (per_rank >= epoch_len && world * epoch_len == 44) { /* epoch 0 drawn whole */
    int a1 = 0, b2 = 0, twice = 0;
    for (int i = 0; i < 40; i++) a1 += uses_a[i] == 1, twice += uses_a[i] > 1;
    CHECK(twice == 0);
    for (int i = 0; i < 12; i++) b2 += uses_b[i] == 2;
    CHECK_MSG(a1 == 20 && b2 == 12, "epoch 0: %d of a once (want 20), %d of b twice (want 12)", a1,
              b2);
  }
  mix_config_free(&cfg);
}

/* Runs the curriculum in the background and sends SIGTERM once stage 2 has saved its step-10
 * checkpoint (of 40); returns the exit status. */
static int run_and_term(const char *out_dir) {
  char log[600], cfg[600], marker[700];
  snprintf(log, sizeof log, "%s/%s.log", T, out_dir);
  snprintf(cfg, sizeof cfg, "%s/cur.yaml", T);
  snprintf(marker, sizeof marker, "%s/%s/2-lm-embed/checkpoints/step-00000010", T, out_dir);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(127);
    char outp[600];
    snprintf(outp, sizeof outp, "%s/%s", T, out_dir);
    execl(vita, vita, "curriculum", cfg, "--out", outp, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  bool sent = false;
  for (int i = 0; i < 60000 && !sent; i++) {              /* at most 2 minutes */
    if (waitpid(pid, &status, WNOHANG) == pid) return -1; /* ended before the signal */
    if (exists(marker)) {
      kill(pid, SIGTERM);
      sent = true;
    } else {
      nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
  }
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A bad curriculum is refused at load, naming the file, the line and the key. */
static void check_bad(const char *src, const char *body, const char *want) {
  char text[2048], path[600], err[2048];
  snprintf(text, sizeof text, "output: {dir: x}\nstages:\n%s", body);
  for (char *p = strstr(text, "SRC"); p; p = strstr(text, "SRC")) { /* one SRC per body */
    char rest[2048];
    snprintf(rest, sizeof rest, "%s", p + 3);
    snprintf(p, sizeof text - (size_t)(p - text), "%s%s", src, rest);
  }
  write_file("bad.yaml", text);
  snprintf(path, sizeof path, "%s/bad.yaml", T);
  curriculum c;
  int rc = curriculum_load(&c, path, NULL, err, sizeof err);
  CHECK_MSG(rc == -1 && strstr(err, want) && strstr(err, "bad.yaml"), "want \"%s\", got: %s", want,
            rc ? err : "(loaded)");
  if (!rc) curriculum_free(&c);
}

int main(void) {
  const char *src = curric_fx_start(T, &vita);
  if (!src) return 1;
  CHECK(!sh("%s gen-data --out %s/a --samples 40 --min-len 16 --max-len 48 >/dev/null", vita, T));
  CHECK(!sh("%s gen-data --out %s/b --samples 12 --min-len 16 --max-len 48 --seed 2 >/dev/null",
            vita, T));
  CHECK(!sh("%s gen-data --kind tts --vocab 256 --llm-hidden 32 --out %s/tts --samples 128 "
            "--eval-samples 32 >/dev/null",
            vita, T));
  write_file("mix.yaml",
             "seed: 1\ndatasets:\n  - {name: a, shards: a}\n  - {name: b, shards: b}\n");
  char cur_text[4096];
  snprintf(
      cur_text, sizeof cur_text,
      "name: test\noutput: {dir: full}\nsave_initial: true\nstages:\n"
      "  - {config: %s/configs/curriculum/lm-decoder.yaml, data.mixture: mix.yaml}\n"
      "  - config: %s/configs/curriculum/lm-embed.yaml\n"
      "    data: {mixture: mix.yaml, eval_mixture: mix.yaml}\n"
      "    metric: token_acc\n    chance: 0.00390625\n"
      "  - config: %s/configs/curriculum/tts.yaml\n"
      "    data.mixture: tts/train/mixture.yaml\n    data.eval_mixture: tts/eval/mixture.yaml\n"
      "    init: [{from: tts/llm, params: llm_embed}]\n"
      "    metric: token_acc\n    chance: unigram_acc\n",
      src, src, src);
  write_file("cur.yaml", cur_text);

  check_bad(src, "  - {config: SRC/configs/curriculum/lm-decoder.yaml, train.stepz: 5}\n",
            "unknown key 'stepz' in train");
  check_bad(src, "  - {config: SRC/configs/curriculum/lm-decoder.yaml, train.steps: x}\n",
            "bad.yaml:3: train.steps: expected an integer");
  check_bad(src, "  - {metric: loss}\n", "stages[0]: config (the stage config file) is required");
  /* prep steps: the codec names an earlier stage; sets are {input, out}; chance: start names
   * its metric */
  check_bad(src,
            "  - SRC/configs/curriculum/lm-decoder.yaml\n"
            "  - {prep: p, codec: nope, config: d.yaml, sets: [{input: a.json, out: o}]}\n",
            "prep p: codec: no stage nope before it");
  check_bad(src,
            "  - SRC/configs/curriculum/lm-decoder.yaml\n"
            "  - {prep: p, codec: lm-decoder, config: d.yaml, sets: [{input: a.json}]}\n",
            "p: sets[0]: expected {input: FILE.json, out: DIR}");
  check_bad(src, "  - {prep: p, codec: x, config: d.yaml, sets: [], steps: 3}\n",
            "unknown key 'steps' in a prep step");
  check_bad(src, "  - {config: SRC/configs/curriculum/lm-decoder.yaml, chance: start}\n",
            "chance: start needs the metric named");
  check_bad(src,
            "  - {config: SRC/configs/curriculum/tts.yaml, train: {steps: 3}, train.steps: 4}\n",
            "override steps given twice");

  /* the uninterrupted run */
  CHECK(!sh("%s curriculum %s/cur.yaml > %s/full.log 2>&1", vita, T, T));
  sh("cat %s/full.log", T);
  char path[600], err[1024];
  snprintf(path, sizeof path, "%s/cur.yaml", T);
  curriculum cur;
  if (curriculum_load(&cur, path, NULL, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return vt_test_finish("test_curriculum");
  }
  CHECK(cur.n_stages == 3 && cur.stages[2].cfg->steps == 20);
  for (int i = 0; i < cur.n_stages; i++) {
    curric_fx_check_freezing(&cur, i, NULL);
    curric_fx_check_ratios(&cur, i);
  }
  int n2 = check_chain(&cur, 1), n3 = check_chain(&cur, 2);
  CHECK_MSG(n2 == 15 && n3 == 1, "chained tensors: stage 2 %d (want all 15), stage 3 %d (want 1)",
            n2, n3);
  printf("chain: stage 2 starts from stage 1's %d tensors, stage 3 from stage 2's embedding\n", n2);

  /* ratios: stage 1 draws 22 x 4 = 88 samples = two epochs of 0.5 x 40 + 2 x 12 */
  json_t *s1 = curric_fx_read_json(cur.stages[0].dir, "samples.json");
  CHECK_MSG(curric_fx_drawn(s1, "a", "drawn") == 40 && curric_fx_drawn(s1, "b", "drawn") == 48 &&
                curric_fx_drawn(s1, "a", "per_epoch") == 20 &&
                curric_fx_drawn(s1, "b", "per_epoch") == 24 &&
                curric_fx_drawn(s1, "a", "size") == 40 && curric_fx_drawn(s1, "b", "size") == 12,
            "stage 1 drew a %lld, b %lld (want 40, 48)",
            (long long)curric_fx_drawn(s1, "a", "drawn"),
            (long long)curric_fx_drawn(s1, "b", "drawn"));
  json_t *s2 = curric_fx_read_json(cur.stages[1].dir, "samples.json");
  CHECK(curric_fx_drawn(s2, "a", "drawn") + curric_fx_drawn(s2, "b", "drawn") == 40 * 4 &&
        curric_fx_drawn(s2, "a", "per_epoch") == 40);
  json_decref(s1);
  json_decref(s2);
  check_mix_drawn(1, 44);
  check_mix_drawn(1, 57);
  check_mix_drawn(2, 22);
  check_mix_drawn(2, 31);

  /* the summary */
  json_t *cj = curric_fx_read_json(cur.run_dir, "curriculum.json");
  json_t *rows = json_object_get(cj, "stages");
  CHECK(json_integer_value(json_object_get(cj, "stages_done")) == 3 && json_array_size(rows) == 3);
  json_t *r2 = json_array_get(rows, 1), *r3 = json_array_get(rows, 2);
  json_t *e2 = json_object_get(r2, "eval"), *e3 = json_object_get(r3, "eval");
  CHECK(json_integer_value(json_object_get(r2, "trainable_params")) == 2 * 256 * 32);
  CHECK(!strcmp(json_string_value(json_object_get(r2, "trained")), "embed,head"));
  CHECK(!strcmp(json_string_value(json_object_get(e2, "metric")), "token_acc") &&
        json_number_value(json_object_get(e2, "value")) > 0.1 &&
        json_number_value(json_object_get(e2, "chance")) == 0.00390625);
  CHECK(json_number_value(json_object_get(r2, "loss_last")) <
        json_number_value(json_object_get(r2, "loss_first")) - 1.0);
  CHECK(json_number_value(json_object_get(e3, "chance")) > 0 &&
        json_integer_value(json_object_get(r3, "steps")) == 20);
  CHECK(!sh("grep -q 'token_acc [0-9.]* (chance 0.003906)' %s/full.log", T));
  CHECK(!sh("grep -q '== stage 3/3 tts' %s/full.log", T));
  json_decref(cj);

  /* resume: SIGTERM inside stage 2, --resume stopping inside stage 3, --resume to the end */
  int rc = run_and_term("part");
  CHECK_MSG(rc == 128 + SIGTERM, "the SIGTERM run exited with %d (want 143)", rc);
  json_t *st = curric_fx_read_json(T, "part/2-lm-embed/stage.json");
  const char *status = json_string_value(json_object_get(st, "status"));
  int64_t stopped_at = json_integer_value(json_object_get(st, "step"));
  CHECK_MSG(status && !strcmp(status, "interrupted") && stopped_at >= 10 && stopped_at < 40,
            "stage 2 after SIGTERM: %s at step %lld", status ? status : "?", (long long)stopped_at);
  json_decref(st);
  printf("SIGTERM: stopped stage 2 at step %lld; exit %d\n", (long long)stopped_at, rc);
  rc = sh("%s curriculum %s/cur.yaml --out %s/part --resume --stop-stage 3 --stop-after 7 > "
          "%s/part2.log 2>&1",
          vita, T, T, T);
  CHECK(rc == 0);
  CHECK(!sh("grep -q 'stage 1/3 lm-decoder: finished before, skipped' %s/part2.log", T));
  CHECK(!sh("grep -q 'stopped in stage 3/3 tts' %s/part2.log", T));
  rc = sh("%s curriculum %s/cur.yaml --out %s/part --resume > %s/part3.log 2>&1", vita, T, T, T);
  CHECK(rc == 0);
  CHECK(!sh("grep -q 'stage 2/3 lm-embed: finished before, skipped' %s/part3.log", T));
  for (int i = 0; i < cur.n_stages; i++) {
    char a[700], b[700], other[700];
    snprintf(other, sizeof other, "%s/part/%s", T, strrchr(cur.stages[i].dir, '/') + 1);
    curric_fx_final_weights(cur.stages[i].dir, a, sizeof a);
    curric_fx_final_weights(other, b, sizeof b);
    CHECK_MSG(a[0] && b[0] && !sh("cmp -s %s %s", a, b), "stage %d: final weights differ", i + 1);
    char *la = losses(cur.stages[i].dir), *lb = losses(other);
    CHECK_MSG(strlen(la) > 0 && !strcmp(la, lb), "stage %d losses differ:\n%s\n%s", i + 1, la, lb);
    free(la);
    free(lb);
    snprintf(a, sizeof a, "%s/samples.json", cur.stages[i].dir);
    snprintf(b, sizeof b, "%s/samples.json", other);
    CHECK_MSG(same_file(a, b), "stage %d: samples.json differ", i + 1);
  }
  printf("resume: weights, losses and sample counts of every stage identical to the "
         "uninterrupted run\n");
  /* from_previous naming parts: the speech decoder after stage 1 takes nothing but its
   * "decoder" part from there, so its LLM table comes from its own init source (the
   * generated table), not from stage 1's random embedding */
  snprintf(cur_text, sizeof cur_text,
           "output: {dir: sel}\nsave_initial: true\nstages:\n"
           "  - {config: %s/configs/curriculum/lm-decoder.yaml, data.mixture: mix.yaml}\n"
           "  - config: %s/configs/curriculum/tts.yaml\n"
           "    data: {mixture: tts/train/mixture.yaml, eval_mixture: tts/eval/mixture.yaml}\n"
           "    init: [{from: tts/llm, params: llm_embed}]\n"
           "    train.steps: 2\n    from_previous: [decoder]\n",
           src, src);
  write_file("sel.yaml", cur_text);
  CHECK(!sh("%s curriculum %s/sel.yaml > %s/sel.log 2>&1", vita, T, T));
  {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/sel/2-tts/initial.safetensors", T);
    snprintf(b, sizeof b, "%s/tts/llm/model.safetensors", T);
    st_file x, y;
    if (!st_file_open(&x, a, err, sizeof err) && !st_file_open(&y, b, err, sizeof err)) {
      const char *e = "model.embed_tokens.weight";
      CHECK_MSG(curric_fx_same_bytes(st_find(&x, e), st_find(&y, e)),
                "from_previous: [decoder]: the LLM table did not come from its own source");
      st_file_close(&y);
      st_file_close(&x);
    } else {
      CHECK_MSG(0, "%s", err);
    }
    CHECK(
        !sh("grep -q 'init: 1 parameter tensors (model.embed_tokens.weight) from' %s/sel.log", T));
  }

  /* everything done: a further --resume only prints the summary */
  CHECK(!sh("%s curriculum %s/cur.yaml --out %s/part --resume > %s/part4.log 2>&1 && "
            "grep -q 'done: 3 stages (0 trained now)' %s/part4.log",
            vita, T, T, T, T));
  curriculum_free(&cur);
  if (!vt_test_failures) sh("rm -rf %s", T);
  return vt_test_finish("test_curriculum");
}
