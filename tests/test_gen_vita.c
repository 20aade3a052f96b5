// ctest-labels: unit
/* `vita gen-data --kind vita` (data/vita_synth.h) at size tiny: every JSON file parses and
 * holds the counts reported; every image decodes and its pixels agree with scenes.json, and
 * every question's answer agrees with the drawn pixels (colour at the object's centre, shape
 * from two probe points, position from the centre, count from the objects); every clip
 * decodes; held-out images, clips and ids are disjoint from the training ones; the tokenizer
 * loads, has the vocabulary configs/tiny-vita/vita.json was sized for, spells every word as
 * one token and round-trips; chance.json holds each level. Skips (77) without espeak-ng. */
#include "data/audio.h"
#include "data/chat.h"
#include "data/image.h"
#include "data/shapes.h"
#include "data/tokenizer.h"
#include "data/vita_synth.h"
#include "tests/check.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

/* The palette entry (or -1 background) nearest to a pixel. */
static int colour_at(const img_rgb *im, int x, int y) {
  const uint8_t *p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
  int best = -1, bd = 3 * 30 * 30; /* the background is 225 grey; noise is +-5 */
  for (int c = -1; c < SHAPES_N_COLOURS; c++) {
    int d = 0;
    for (int k = 0; k < 3; k++) {
      int v = c < 0 ? 225 : shapes_colour_rgb[c][k], e = p[k] - v;
      d += e * e;
    }
    if (d < bd) bd = d, best = c;
  }
  return best;
}

static int index_of(const char *const *names, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (s && !strcmp(names[i], s)) return i;
  return -2;
}

/* The shape drawn at (x, y, r): two probes tell circle, square and triangle apart (square:
 * both inside; circle: the lower-right corner outside; triangle: the upper-left outside). */
static int shape_at(const img_rgb *im, int x, int y, int r, int colour) {
  int lr = colour_at(im, x + r * 8 / 10, y + r * 8 / 10) == colour; /* the square's corner */
  int ul = colour_at(im, x - r * 6 / 10, y - r * 6 / 10) == colour;
  return lr && ul ? 1 : !lr && ul ? 0 : lr && !ul ? 2 : -1;
}

static json_t *load(const char *name) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
  CHECK_MSG(j != NULL, "%s: %s", p, je.text);
  return j;
}

/* Every question of qa-SPLIT against the pixels of its image. */
static void check_answers(json_t *scenes, const char *split, int *checked) {
  char name[64];
  snprintf(name, sizeof name, "qa-%s.json", split);
  json_t *qa = load(name);
  for (size_t i = 0; qa && i < json_array_size(qa); i++) {
    json_t *s = json_array_get(qa, i);
    const char *img = json_string_value(json_object_get(s, "image"));
    json_t *types = json_object_get(s, "qtypes"), *conv = json_object_get(s, "conversations");
    json_t *objs = json_object_get(scenes, img);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, img);
    img_rgb im = {0};
    if (img_decode_file(path, 0, &im, err, sizeof err) != IMG_OK) {
      CHECK_MSG(0, "%s", err);
      continue;
    }
    CHECK_MSG(im.w == 112 && im.h == 112, "%s: %d x %d", img, im.w, im.h);
    /* the scene's objects as drawn: colour at the centre, shape from the probes */
    int n = (int)json_array_size(objs), col[3], shp[3], pos[3];
    for (int k = 0; k < n && k < 3; k++) {
      json_t *o = json_array_get(objs, (size_t)k);
      int x = (int)json_integer_value(json_object_get(o, "x"));
      int y = (int)json_integer_value(json_object_get(o, "y"));
      int r = (int)json_integer_value(json_object_get(o, "r"));
      col[k] = colour_at(&im, x, y);
      shp[k] = shape_at(&im, x, y, r, col[k]);
      pos[k] = (x < 56 ? 0 : 1) + (y < 56 ? 0 : 2); /* the quadrant, reading order */
      CHECK_MSG(k == 0 || pos[k] > pos[k - 1], "%s: objects not in reading order", img);
      CHECK_MSG(col[k] == index_of(shapes_colour_names, SHAPES_N_COLOURS,
                                   json_string_value(json_object_get(o, "colour"))),
                "%s object %d: drawn colour %d", img, k, col[k]);
      CHECK_MSG(shp[k] == index_of(shapes_shape_names, SHAPES_N_SHAPES,
                                   json_string_value(json_object_get(o, "shape"))),
                "%s object %d: drawn shape %d", img, k, shp[k]);
    }
    CHECK_MSG(json_array_size(conv) == 2 * json_array_size(types) && json_array_size(types) > 0,
              "%s: %zu turns for %zu questions", img, json_array_size(conv),
              json_array_size(types));
    for (size_t t = 0; t < json_array_size(types); t++) {
      const char *type = json_string_value(json_array_get(types, t));
      const char *q = json_string_value(json_object_get(json_array_get(conv, 2 * t), "value"));
      const char *a = json_string_value(json_object_get(json_array_get(conv, 2 * t + 1), "value"));
      bool ok = false;
      CHECK_MSG((t == 0) == (strstr(q, "<image>") != NULL), "%s turn %zu: \"%s\"", img, t, q);
      if (!strcmp(type, "count")) {
        ok = index_of(shapes_count_names, 4, a) == n;
      } else {
        for (int k = 0; k < n && !ok; k++) {
          const char *cn = shapes_colour_names[col[k] < 0 ? 0 : col[k]];
          const char *sn = shapes_shape_names[shp[k] < 0 ? 0 : shp[k]];
          char want_q[128];
          if (!strcmp(type, "colour")) {
            snprintf(want_q, sizeof want_q, "What colour is the object at the %s?",
                     shapes_pos_names[pos[k] < 0 ? 0 : pos[k]]);
            ok = strstr(q, want_q) && !strcmp(a, cn);
          } else if (!strcmp(type, "shape")) {
            snprintf(want_q, sizeof want_q, "What shape is the %s object?", cn);
            ok = strstr(q, want_q) && !strcmp(a, sn);
          } else {
            snprintf(want_q, sizeof want_q, "Where is the %s object?", cn);
            ok = strstr(q, want_q) && pos[k] >= 0 && !strcmp(a, shapes_pos_names[pos[k]]);
          }
        }
      }
      CHECK_MSG(ok, "%s: \"%s\" -> \"%s\" disagrees with the pixels", img, q, a);
      (*checked)++;
    }
    img_free(&im);
  }
  json_decref(qa);
}

/* Values of `key` (a string field) over the samples of a file, into a JSON set. */
static json_t *field_set(const char *file, const char *key) {
  json_t *set = json_object(), *arr = load(file);
  for (size_t i = 0; arr && i < json_array_size(arr); i++) {
    json_t *f = json_object_get(json_array_get(arr, i), key); /* a string or a list of them */
    for (size_t k = 0; k < (json_is_array(f) ? json_array_size(f) : 1); k++) {
      const char *v = json_string_value(json_is_array(f) ? json_array_get(f, k) : f);
      if (v) json_object_set_new(set, v, json_true());
    }
  }
  json_decref(arr);
  return set;
}

static int overlap(json_t *a, json_t *b) {
  int n = 0;
  const char *k;
  json_t *v;
  json_object_foreach(a, k, v) n += json_object_get(b, k) != NULL;
  return n;
}

int main(void) {
  if (system("command -v espeak-ng >/dev/null 2>&1") != 0) {
    printf("no espeak-ng: skipped\n");
    return 77;
  }
  snprintf(dir, sizeof dir, "/tmp/vt_test_gen_vita_%d", (int)getpid());
  vsynth_cfg c;
  CHECK(vsynth_defaults("tiny", &c) == 0);
  CHECK(vsynth_defaults("huge", &c) == -1);
  vsynth_defaults("tiny", &c);
  vsynth_stats st;
  char err[2048];
  int rc = vsynth_write(dir, &c, &st, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  if (rc) return vt_test_finish("test_gen_vita");

  /* JSON files: counts as reported */
  for (int t = 0; t < VSYNTH_TASKS; t++)
    for (int s = 0; s < 2; s++) {
      char name[64];
      snprintf(name, sizeof name, "%s-%s.json", vsynth_tasks[t], s ? "eval" : "train");
      json_t *j = load(name);
      CHECK_MSG(json_is_array(j) && (int64_t)json_array_size(j) == st.samples[t][s] &&
                    st.samples[t][s] > 0,
                "%s: %zu samples, reported %lld", name, json_array_size(j),
                (long long)st.samples[t][s]);
      json_decref(j);
    }
  CHECK(st.samples[0][0] == c.train_scenes && st.samples[1][1] == c.eval_scenes);
  /* 3.2's pairs: every caption with its speech (no codec ids: the curriculum's prep step
   * encodes them with 3.1's codec); 3.1's speech: the first codec_*_clips of them */
  CHECK(st.samples[4][0] == c.train_scenes && st.samples[4][1] == c.eval_scenes);
  CHECK(st.samples[5][0] == c.codec_train_clips && st.samples[5][1] == c.codec_eval_clips);
  {
    json_t *tts = load("tts-train.json"), *cap = load("caption-train.json");
    json_t *t0 = json_array_get(tts, 0);
    const char *text = json_string_value(json_object_get(t0, "text"));
    const char *said = json_string_value(json_object_get(
        json_array_get(json_object_get(json_array_get(cap, 0), "conversations"), 1), "value"));
    CHECK_MSG(text && said && !strcmp(text, said) && json_is_string(json_object_get(t0, "audio")) &&
                  !json_object_get(t0, "codec"),
              "tts-train[0]: the first caption with its audio, no codec ids");
    json_decref(tts), json_decref(cap);
  }

  /* answers against pixels, both splits */
  json_t *scenes = load("scenes.json");
  int checked = 0;
  check_answers(scenes, "train", &checked);
  check_answers(scenes, "eval", &checked);
  CHECK_MSG(checked == (int)(c.train_scenes + c.eval_scenes) * c.qa_per_scene,
            "%d questions checked", checked);
  json_decref(scenes);

  /* held-out images, clips and ids are not in training */
  static const char *const pairs[][2] = {{"caption", "image"}, {"qa", "image"},  {"sqa", "image"},
                                         {"asr", "audio"},     {"sqa", "audio"}, {"qa", "id"},
                                         {"tts", "id"},        {"tts", "audio"}};
  for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
    char a[64], b[64];
    snprintf(a, sizeof a, "%s-train.json", pairs[i][0]);
    snprintf(b, sizeof b, "%s-eval.json", pairs[i][0]);
    json_t *x = field_set(a, pairs[i][1]), *y = field_set(b, pairs[i][1]);
    CHECK_MSG(json_object_size(y) > 0 && overlap(x, y) == 0, "%s %s: %d held-out in training",
              pairs[i][0], pairs[i][1], overlap(x, y));
    json_decref(x), json_decref(y);
  }
  /* every clip decodes to speech-length audio */
  json_t *clips = field_set("sqa-eval.json", "audio");
  json_t *more = field_set("asr-train.json", "audio");
  json_object_update(clips, more);
  json_decref(more);
  more = field_set("tts-eval.json", "audio");
  json_object_update(clips, more);
  json_decref(more);
  const char *k;
  json_t *v;
  int n_clips = 0;
  json_object_foreach(clips, k, v) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, k);
    aud_wave w = {0};
    aud_load_opts o = aud_load_opts_default();
    CHECK_MSG(aud_load(path, &o, &w, err, sizeof err) == AUD_OK && w.n > 1600 && w.rate == 16000,
              "%s: %s (%zu samples)", path, err, w.n);
    aud_wave_free(&w);
    n_clips++;
  }
  CHECK(n_clips > 50);
  json_decref(clips);

  /* the tokenizer: the model config's vocabulary, one token per word, round trips */
  tok_tokenizer *tok = NULL;
  char tpath[512];
  snprintf(tpath, sizeof tpath, "%s/tokenizer", dir);
  CHECK_MSG(tok_init(&tok, tpath, err, sizeof err) == 0, "%s", err);
  if (tok) {
    CHECK_MSG(tok_vocab_size(tok) == st.vocab_size && st.vocab_size == 408,
              "vocabulary %d (configs/tiny-vita/vita.json says 408)", tok_vocab_size(tok));
    const char *words[] = {" red",   " circle", " triangle", " left",   " bottom",
                           "yellow", "three",   "What",      " colour", "Transcribe"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
      tok_ids ids = {0};
      CHECK(tok_encode(tok, words[i], strlen(words[i]), &ids, err, sizeof err) == 0);
      CHECK_MSG(ids.n == 1, "\"%s\" is %zu tokens", words[i], ids.n);
      tok_ids_free(&ids);
    }
    const char *text = "A green square at the top left, a red circle at the top right and a blue "
                       "triangle at the bottom left.";
    tok_ids ids = {0};
    tok_bytes back = {0};
    CHECK(tok_encode(tok, text, strlen(text), &ids, err, sizeof err) == 0);
    CHECK(tok_decode(tok, ids.v, ids.n, false, &back, err, sizeof err) == 0);
    CHECK_MSG(back.p && !strcmp(back.p, text) && ids.n == 24, "%zu tokens: \"%s\"", ids.n,
              back.p ? back.p : "");
    tok_ids_free(&ids);
    tok_bytes_free(&back);
    /* the chat template's tokens sit where vita.json's modality head expects them */
    CHECK(tok_token_id(tok, "<|im_start|>") == 400 && tok_token_id(tok, "<|im_end|>") == 401);
    CHECK(tok_token_id(tok, "\xe2\x98\x9e") == 402 && tok_token_id(tok, "\xe2\x98\x9c") == 403 &&
          tok_token_id(tok, "\xe2\x98\x9f") == 404);
    chat_turn turns[2] = {{CHAT_FROM_HUMAN, "<image>\nHow many objects are there?"},
                          {CHAT_FROM_GPT, "two"}};
    chat_sample cs = {0};
    CHECK(chat_encode(tok, NULL, turns, 2, -1, true, &cs, err, sizeof err) == 0);
    size_t nl = 0;
    for (size_t i = 0; i < cs.labels.n; i++) nl += cs.labels.v[i] != VT_IGNORE_INDEX;
    CHECK_MSG(cs.ids.n > 3 && cs.ids.v[0] == 400 && cs.ids.v[cs.ids.n - 1] == 401 &&
                  cs.ids.v[cs.ids.n - 3] == 403 && nl == 3,
              "template ids: %zu tokens, %zu labelled", cs.ids.n, nl);
    chat_sample_free(&cs);
    tok_free(tok);
  }
  /* chance levels */
  json_t *ch = load("chance.json");
  static const char *const keys[] = {"caption_loss", "qa_acc",    "sqa_acc",
                                     "asr_cer",      "asr_exact", "asr_wer"};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    double x = json_number_value(json_object_get(ch, keys[i]));
    CHECK_MSG(x > 0 && x <= 6, "chance.json %s = %g", keys[i], x);
  }
  /* QA chance sits near the uniform 1/answers (the questions are balanced by construction) */
  double qa = json_number_value(json_object_get(ch, "qa_acc"));
  CHECK_MSG(qa > 0.15 && qa < 0.5, "qa chance %g", qa);
  json_decref(ch);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  return vt_test_finish("test_gen_vita");
}
