// ctest-labels: e2e
/* The README's main job, short: `vita demo` generates the VITA dataset (size tiny) and runs
 * the tiny curriculum 0 -> 1.1 -> 1.2 -> 1.3 -> 2.1a -> 2.1b -> 2.2 -> 3.1 -> prep -> 3.2 of
 * configs/tiny-vita with its steps scaled down (--scale, --stage-scale), then plots each
 * stage's loss and exports the run in the VITA-1.5 release layout. Checks:
 * - every stage finished from the ones before it (its init lines), the loss plots, the
 *   summary, the export's release layout (side directories, the speech decoder), 1.3's
 *   per-type accuracy printed;
 * - every stage's held-out metric against its chance level, with a margin where the short
 *   run reliably has one (curriculum.json): caption loss vs the unigram loss (and 1.2 below
 *   stage 0's, which had no image), QA accuracy, CER, the LLM's own WER, the codec's held-out
 *   mel L1 and SNR vs the untrained codec's, speech-token accuracy vs the best constant
 *   guess (above it by a margin when the codec uses more than one code for most frames); the
 *   prep step wrote every pair, with as many codec tokens as the clips have codec
 *   frames (24 kHz / hop 600). 2.2's spoken-QA accuracy is only reported next to its chance
 *   level: a short 2.2 does not beat it (the full demo's does, docs/bench.md); its held-out
 *   loss (teacher-forced, the spoken questions' answers) is asserted below 70% of its initial
 *   weights' (one `vita eval` of them, a few seconds);
 * - freezing (tests/curric_fx.h): per stage, every parameter outside its trainable set is
 *   byte-identical from its initial weights to its final checkpoint, every one inside it
 *   changed; ratios: the samples drawn per dataset are each stage's ratios;
 * - resume: a further --resume skips every stage and the prep step; a prep step stopped after
 *   its first set (its shards half gone) is redone from the start and writes the same shards.
 * `vita demo --kind lm` (the token-language demo) still runs. Skips (77) without espeak-ng. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "data/audio.h"
#include "tests/check.h"
#include "tests/curric_fx.h"
#include "train/curriculum.h"

static char T[] = "/tmp/vt_test_tiny_vita_XXXXXX";
static const char *vita;

#define sh curric_fx_sh

/* Row `stage` of curriculum.json's stages. */
static json_t *row_of(json_t *cj, const char *stage) {
  size_t k;
  json_t *r;
  json_array_foreach(json_object_get(cj, "stages"), k, r) {
    if (!strcmp(json_string_value(json_object_get(r, "stage")), stage)) return r;
  }
  return NULL;
}

static double eval_of(json_t *row, const char *key) {
  json_t *v = json_object_get(json_object_get(row, "eval"), key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static double eval_all(json_t *row, const char *key) {
  json_t *v = json_object_get(json_object_get(row, "eval_all"), key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

/* value vs chance: lower (or higher) than chance by at least margin. */
static void beats(json_t *cj, const char *stage, bool lower, double margin) {
  json_t *r = row_of(cj, stage);
  double v = eval_of(r, "value"), c = eval_of(r, "chance");
  bool ok = isfinite(v) && isfinite(c) && (lower ? v < c - margin : v > c + margin);
  CHECK_MSG(ok, "stage %s: %s %.4f vs chance %.4f (margin %g)", stage,
            json_string_value(json_object_get(json_object_get(r, "eval"), "metric")), v, c, margin);
  printf("stage %-5s %-9s %.4f  chance %.4f  %s by more than %g\n", stage,
         json_string_value(json_object_get(json_object_get(r, "eval"), "metric")), v, c,
         lower ? "below" : "above", margin);
}

/* The codec frames of the clips of a tts JSON file: ceil(samples at 24 kHz / 600) each. */
static int64_t codec_frames(const char *json_path, const char *data_dir) {
  json_t *arr = json_load_file(json_path, 0, NULL), *s;
  size_t k;
  int64_t n = 0;
  json_array_foreach(arr, k, s) {
    char path[700], err[512];
    snprintf(path, sizeof path, "%s/%s", data_dir, json_string_value(json_object_get(s, "audio")));
    aud_load_opts o = aud_load_opts_default();
    o.rate = 24000;
    aud_wave w = {0};
    if (aud_load(path, &o, &w, err, sizeof err) != AUD_OK) {
      CHECK_MSG(0, "%s", err);
      n = -1;
      break;
    }
    n += ((int64_t)w.n + 599) / 600;
    aud_wave_free(&w);
  }
  json_decref(arr);
  return n;
}

/* `vita eval` of stage 2.2's initial weights on its held-out mixture (the spoken questions):
 * the loss, or NAN. */
static double start_loss_2_2(void) {
  const char *src = getenv("VT_SOURCE_DIR");
  char path[700], line[4096];
  snprintf(path, sizeof path, "%s/eval-2.2-start.txt", T);
  int rc = sh("%s eval --config %s/configs/tiny-vita/2.2.yaml --weights "
              "%s/demo/run/7-2.2/initial.safetensors --data %s/demo/data/mix/sqa-eval.yaml > %s "
              "2>&1",
              vita, src, T, T, path);
  FILE *f = fopen(path, "r");
  double loss = NAN;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "eval: loss %lf", &loss) == 1) break;
  if (f) fclose(f);
  CHECK_MSG(rc == 0 && isfinite(loss), "vita eval of 2.2's initial weights (%d): see %s", rc, path);
  if (rc || !isfinite(loss)) sh("tail -5 %s", path);
  return loss;
}

/* The prep step: every pair of both sets written with its codec frames. */
static void check_prep(json_t *cj) {
  json_t *r = row_of(cj, "codec-tokens");
  CHECK_MSG(r && !strcmp(json_string_value(json_object_get(r, "status")), "done"),
            "no finished prep step");
  json_t *st = curric_fx_read_json(json_string_value(json_object_get(r, "dir")), "stage.json");
  json_t *sets = json_object_get(st, "sets"), *e;
  size_t k;
  CHECK(json_array_size(sets) == 2);
  json_array_foreach(sets, k, e) {
    const char *in = json_string_value(json_object_get(e, "input"));
    json_t *arr = json_load_file(in, 0, NULL);
    char data[600];
    snprintf(data, sizeof data, "%s/demo/data", T);
    int64_t frames = codec_frames(in, data);
    int64_t written = json_integer_value(json_object_get(e, "written"));
    int64_t tokens = json_integer_value(json_object_get(e, "codec_tokens"));
    CHECK_MSG(written == (int64_t)json_array_size(arr) && written > 0 &&
                  json_integer_value(json_object_get(e, "skipped")) == 0 && tokens == frames,
              "prep %s: %lld of %zu written, %lld codec tokens for %lld frames",
              json_string_value(json_object_get(e, "name")), (long long)written,
              json_array_size(arr), (long long)tokens, (long long)frames);
    printf("prep %s: %lld pairs, %lld codec tokens = the clips' frames at 24 kHz / 600\n",
           json_string_value(json_object_get(e, "name")), (long long)written, (long long)tokens);
    json_decref(arr);
  }
  json_decref(st);
}

/* The prep step's resume: skipped when done; stopped after its first set, with the shards of
 * its second set removed, it is redone and its shards come out byte-identical. */
static void check_prep_resume(void) {
  const char *cur = "demo/curriculum.yaml", *ev = "demo/data/shards/tts-eval";
  CHECK(!sh("cd %s && %s curriculum %s --resume > resume1.txt 2>&1", T, vita, cur));
  CHECK(!sh("grep -q 'stage 9/10 codec-tokens: finished before, skipped' %s/resume1.txt", T));
  CHECK(!sh("grep -q 'done: 10 stages (0 trained now)' %s/resume1.txt", T));
  CHECK(!sh("cd %s && cp -r %s eval-before && rm demo/run/9-codec-tokens/stage.json && rm -r %s", T,
            ev, ev));
  CHECK(!sh("cd %s && %s curriculum %s --resume --stop-stage 9 --stop-after 1 > resume2.txt 2>&1",
            T, vita, cur));
  CHECK(!sh("grep -q 'stopped in stage 9/10 codec-tokens' %s/resume2.txt", T));
  CHECK(!sh("grep -q '\"status\": \"interrupted\"' %s/demo/run/9-codec-tokens/stage.json", T));
  CHECK(!sh("cd %s && %s curriculum %s --resume > resume3.txt 2>&1", T, vita, cur));
  CHECK(!sh("grep -q 'prep codec-tokens: .*tts-train: [0-9]* written' %s/resume3.txt", T));
  CHECK(!sh("grep -q 'stage 10/10 3.2: finished before, skipped' %s/resume3.txt", T));
  CHECK(!sh("grep -q '\"status\": \"done\"' %s/demo/run/9-codec-tokens/stage.json", T));
  CHECK_MSG(!sh("cd %s && diff -r eval-before %s >/dev/null", T, ev),
            "the redone prep step wrote other tts-eval shards");
  printf("prep resume: skipped when done; stopped after one set, redone with the same shards\n");
}

int main(void) {
  const char *src = curric_fx_start(T, &vita);
  if (!src) return 1;
  if (sh("command -v espeak-ng >/dev/null") != 0) {
    printf("skip: no espeak-ng\n");
    return 77;
  }
  time_t t0 = time(NULL);
  /* 1.3, 2.1a and 2.1b need more of their steps than the others to beat chance; 2.2 does not
   * get there in a short run at all (it did in 600 steps, docs/bench.md): a few steps */
  int rc = sh("%s demo --size tiny --scale 0.2 --stage-scale 1.3=0.4,2.1a=1,2.1b=1,2.2=0.05 "
              "--configs %s/configs/tiny-vita --out %s/demo > %s/out.txt 2>&1",
              vita, src, T, T);
  printf("demo: %lld s\n", (long long)(time(NULL) - t0));
  sh("tail -16 %s/out.txt", T);
  CHECK_MSG(rc == 0, "vita demo exited with %d", rc);
  if (rc) {
    sh("tail -40 %s/out.txt", T);
    return vt_test_finish("test_tiny_vita");
  }
  CHECK(!sh("grep -q '== stage 10/10 3.2' %s/out.txt", T));
  /* stages 2..10 but the codec (from scratch) and the prep step start from earlier ones */
  CHECK(!sh("[ $(grep -c '^init: .* parameter tensors from .*/run/' %s/out.txt) -ge 7 ]", T));
  static const char *const dirs[] = {"1-0-llm", "2-1.1", "3-1.2", "4-1.3",          "5-2.1a",
                                     "6-2.1b",  "7-2.2", "8-3.1", "9-codec-tokens", "10-3.2"};
  for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
    CHECK_MSG(!sh("grep -q '\"status\": \"done\"' %s/demo/run/%s/stage.json", T, dirs[i]),
              "%s not done", dirs[i]);
    if (i != 8)
      CHECK_MSG(!sh("[ -s %s/demo/run/%s/loss.png ]", T, dirs[i]), "no plot: %s", dirs[i]);
  }
  /* the export: the VITA-1.5 release layout of the whole run (stages/stage_release.h) */
  CHECK(!sh("grep -q '\"model_type\": *\"vita-Qwen2\"' %s/demo/export/config.json", T));
  CHECK(!sh("grep -q '\"mm_vision_tower\": *\"/.*/export/InternViT-300M-448px\"' "
            "%s/demo/export/config.json",
            T));
  CHECK(!sh("[ -s %s/demo/export/InternViT-300M-448px/config.json ]", T));
  CHECK(!sh("for f in %s/demo/export/model*.safetensors; do head -c 40000 $f; done | tr -d '\\0' "
            "| grep -q '\"model.mm_projector.2.weight\".*' ",
            T));
  CHECK(!sh("for f in %s/demo/export/model*.safetensors; do head -c 40000 $f; done | tr -d '\\0' "
            "| grep -q '\"model.audio_encoder.adpter.project.weight\"'",
            T));
  CHECK(!sh("[ -s %s/demo/export/tokenizer.json ]", T));
  CHECK(!sh("[ -s %s/demo/export/vita_tts_ckpt/decoder/model.safetensors ]", T));
  CHECK(!sh("[ -s %s/demo/run/qa-per-type.json ]", T));
  CHECK(!sh("grep -q 'QA accuracy per question type' %s/out.txt", T));
  CHECK(!sh("grep -q '^codec-tokens .* yes$' %s/out.txt", T));

  /* every stage's metric against its chance level */
  char path[700], err[4096];
  snprintf(path, sizeof path, "%s/demo/run/curriculum.json", T);
  json_t *cj = json_load_file(path, 0, NULL);
  CHECK_MSG(json_integer_value(json_object_get(cj, "stages_done")) == 10, "%s", path);
  beats(cj, "0-llm", true, 1.0);
  beats(cj, "1.1", true, 1.0);
  beats(cj, "1.2", true, 1.0);
  CHECK_MSG(eval_of(row_of(cj, "1.2"), "value") < eval_of(row_of(cj, "0-llm"), "value") - 0.2,
            "1.2's caption loss is not below stage 0's (no image)");
  beats(cj, "1.3", false, 0.0);
  beats(cj, "2.1a", true, 0.1);
  beats(cj, "2.1b", true, 0.0);
  { /* reported against its chance level, not moved by a few steps; what the few steps do
     * move: the teacher-forced held-out loss of the spoken questions' answers, against that of
     * the stage's initial weights (2.1b's, which never saw a spoken question) */
    json_t *r = row_of(cj, "2.2");
    double v = eval_of(r, "value"), c = eval_of(r, "chance");
    CHECK_MSG(v >= 0 && v <= 1 && c > 0.2 && c < 0.5, "stage 2.2: qa_acc %g, chance %g", v, c);
    printf("stage 2.2   qa_acc    %.4f  chance %.4f  (a few steps: not asserted above it)\n", v, c);
    double start = start_loss_2_2(), end = eval_all(r, "loss");
    CHECK_MSG(isfinite(start) && isfinite(end) && end < 0.7 * start,
              "stage 2.2: held-out loss %.4f, its initial weights' %.4f (want below 70%%)", end,
              start);
    printf("stage 2.2   loss      %.4f  initial weights %.4f  below 70%% of it\n", end, start);
  }
  json_t *codec = row_of(cj, "3.1");
  beats(cj, "3.1", true, 0.3 * eval_of(codec, "chance")); /* mel L1 below 70% of the start's */
  /* the waveform SNR of a GAN codec after a few dozen steps moves by less than its spread
   * between runs (phase is not trained by the mel terms): printed, not asserted here; the full
   * demo's 3.1 and docs/codec.md record it improving over a longer run */
  CHECK(isfinite(eval_all(codec, "snr_db")) && isfinite(eval_all(codec, "start_snr_db")));
  printf("stage 3.1   snr_db    %.2f  untrained %.2f  (printed, not asserted at this scale)\n",
         eval_all(codec, "snr_db"), eval_all(codec, "start_snr_db"));
  check_prep(cj);
  { /* 3.2 against the best constant guess: never below it, and above it by a margin once the
     * codec spreads its speech over its codebook (a codec that says every frame with one code
     * leaves nothing to learn beyond that constant) */
    json_t *r = row_of(cj, "3.2");
    double v = eval_of(r, "value"), c = eval_of(r, "chance");
    bool spread = c < 0.9;
    CHECK_MSG(isfinite(v) && isfinite(c) && v >= c - 1e-6 && (!spread || v > c + 0.02),
              "stage 3.2: token_acc %.4f vs the best constant guess %.4f", v, c);
    printf("stage 3.2   token_acc %.4f  chance %.4f  %s\n", v, c,
           spread ? "above by more than 0.02"
                  : "not below (the codec said nearly every frame with one code)");
  }
  json_decref(cj);

  /* freezing and ratios of every training stage */
  curriculum cur;
  snprintf(path, sizeof path, "%s/demo/curriculum.yaml", T);
  if (curriculum_load(&cur, path, NULL, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return vt_test_finish("test_tiny_vita");
  }
  CHECK(cur.n_stages == 10 && cur.stages[8].prep && !cur.stages[8].cfg);
  for (int i = 0; i < cur.n_stages; i++) {
    if (!cur.stages[i].cfg) continue;
    /* the codec's MSD conv_post has one output channel: its spectral-norm vector u is the
     * unit vector of one dimension, which no power iteration changes */
    curric_fx_check_freezing(&cur, i,
                             cur.stages[i].cfg->steps && !strcmp(cur.stages[i].name, "3.1")
                                 ? "msd.discriminators.0.conv_post.weight_u"
                                 : NULL);
    curric_fx_check_ratios(&cur, i);
  }
  curriculum_free(&cur);
  check_prep_resume();

  CHECK(!sh("%s demo --kind lm --steps 4 --batch 2 --out %s/lm > %s/lm.txt 2>&1 && grep -q 'demo: "
            "loss' %s/lm.txt",
            vita, T, T, T));
  if (!vt_test_failures) sh("rm -rf %s", T);
  return vt_test_finish("test_tiny_vita");
}
