/* The generated VITA dataset: scenes, media and JSON samples; see vita_synth.h. The tokenizer,
 * shards, mixtures and chance levels are written by vita_synth_out.c. */
#include "data/vita_synth.h"
#include "autograd/fmt.h"
#include "data/shapes.h"
#include "data/vita_synth_impl.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

extern char **environ;

const char *const vsynth_tasks[VSYNTH_TASKS] = {"caption", "qa", "sqa", "asr", "tts", "speech"};

/* Speaking rates (words per minute) of the spoken clips: the held-out clips use a rate the
 * training clips never have, so no held-out utterance is heard in training. */
static const int train_rates[] = {140, 175, 210}, eval_rate = 160;

int vsynth_defaults(const char *size, vsynth_cfg *out) {
  vsynth_cfg c = {.qa_per_scene = 4,
                  .image_size = 112,
                  .codec_train_clips = 96,
                  .codec_eval_clips = 16,
                  .espeak = "espeak-ng",
                  .seed = 1};
  if (!size || !strcmp(size, "small"))
    c.train_scenes = 480, c.eval_scenes = 96;
  else if (!strcmp(size, "tiny"))
    c.train_scenes = 128, c.eval_scenes = 48;
  else
    return -1;
  *out = c;
  return 0;
}

int vsynth_mkdir(const char *dir, char *err, size_t err_len) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", dir);
  for (char *p = buf + 1;; p++) {
    int end = *p == '\0';
    if (*p != '/' && !end) continue;
    *p = '\0';
    if (mkdir(buf, 0755) && errno != EEXIST) {
      vt_seterr(err, err_len, "%s: cannot create: %s", buf, strerror(errno));
      return -1;
    }
    if (end) return 0;
    *p = '/';
  }
}

int vsynth_texts_add(vsynth_texts *t, const char *s) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 256;
    char **v = realloc(t->v, cap * sizeof *v);
    if (!v) return -1;
    t->v = v, t->cap = cap;
  }
  return (t->v[t->n] = strdup(s)) ? (t->n++, 0) : -1;
}

void vsynth_texts_free(vsynth_texts *t) {
  for (size_t i = 0; i < t->n; i++) free(t->v[i]);
  free(t->v);
  *t = (vsynth_texts){0};
}

/* Runs espeak-ng -s RATE -w PATH TEXT. */
static int speak(const vsynth_cfg *c, const char *text, int rate, const char *path,
                 vsynth_stats *st, char *err, size_t err_len) {
  char rs[16];
  snprintf(rs, sizeof rs, "%d", rate);
  char *argv[] = {(char *)c->espeak, "-s", rs, "-w", (char *)path, (char *)text, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, c->espeak, NULL, NULL, argv, environ), status = 0;
  if (rc) {
    vt_seterr(err, err_len, "%s: cannot run (%s): install espeak-ng (setup.sh does)", c->espeak,
              strerror(rc));
    return -1;
  }
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
    vt_seterr(err, err_len, "%s -w %s \"%s\": failed (status %d)", c->espeak, path, text, status);
    return -1;
  }
  st->espeak_runs++;
  st->clips++;
  return 0;
}

/* A clip of text at rate, spoken once and shared by every sample that asks it: returns its
 * path relative to dir in rel. */
static int clip_of(vsynth_ctx *x, const char *text, int rate, char *rel, size_t rel_len) {
  char key[256];
  snprintf(key, sizeof key, "%d|%s", rate, text);
  size_t i = 0;
  while (i < x->spoken.n && strcmp(x->spoken.v[i], key)) i++;
  snprintf(rel, rel_len, "audio/s%04zu.wav", i);
  if (i < x->spoken.n) return 0;
  if (vsynth_texts_add(&x->spoken, key)) {
    vt_seterr(x->err, x->err_len, "out of memory");
    return -1;
  }
  char path[4600];
  snprintf(path, sizeof path, "%s/%s", x->dir, rel);
  return speak(x->c, text, rate, path, x->st, x->err, x->err_len);
}

static json_t *turns(const char *q, const char *a) {
  return json_pack("[{s:s, s:s}, {s:s, s:s}]", "from", "human", "value", q, "from", "gpt", "value",
                   a);
}

/* Appends a question and its answer as two turns to conversations. */
static void push_turns(json_t *conversations, const char *q, const char *a) {
  json_t *t = turns(q, a);
  json_array_extend(conversations, t);
  json_decref(t);
}

static int add(vsynth_ctx *x, int task, int split, json_t *sample, const char *q, const char *a) {
  if (!sample || json_array_append_new(x->samples[task][split], sample) ||
      (q && vsynth_texts_add(&x->texts, q)) || (a && vsynth_texts_add(&x->texts, a))) {
    vt_seterr(x->err, x->err_len, "out of memory");
    return -1;
  }
  x->st->samples[task][split]++;
  return 0;
}

/* One image: its PNG, its scene in scenes.json, its caption, its questions typed and spoken. */
static int scene(vsynth_ctx *x, int split, int64_t k, uint8_t *rgb) {
  const vsynth_cfg *c = x->c;
  shapes_scene s;
  shapes_draw(&x->rng, c->image_size, &s);
  shapes_render(&s, c->image_size, &x->rng, rgb);
  const char *sp = split ? "eval" : "train";
  char rel[64], path[4600], cap[256], q[128], a[32], qi[160], id[64];
  snprintf(rel, sizeof rel, "images/%s-%05lld.png", sp, (long long)k);
  snprintf(path, sizeof path, "%s/%s", x->dir, rel);
  if (!stbi_write_png(path, c->image_size, c->image_size, 3, rgb, c->image_size * 3)) {
    vt_seterr(x->err, x->err_len, "%s: cannot write the PNG", path);
    return -1;
  }
  x->st->images++;
  json_t *objs = json_array();
  for (int i = 0; i < s.n; i++)
    json_array_append_new(objs, json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "shape",
                                          shapes_shape_names[s.obj[i].shape], "colour",
                                          shapes_colour_names[s.obj[i].colour], "position",
                                          shapes_pos_names[s.obj[i].pos], "x", s.obj[i].cx, "y",
                                          s.obj[i].cy, "r", s.obj[i].r));
  json_object_set_new(x->scenes, rel, objs);

  shapes_caption(&s, cap, sizeof cap);
  snprintf(id, sizeof id, "cap-%s-%05lld", sp, (long long)k);
  const char *dq = "<image>\nDescribe the picture.";
  if (add(x, 0, split,
          json_pack("{s:s, s:s, s:s, s:o}", "id", id, "set", "caption", "image", rel,
                    "conversations", turns(dq, cap)),
          NULL, NULL))
    return -1;
  /* the caption spoken, for stage 3.2 (text and speech: the curriculum's prep step encodes it
   * with the codec of stage 3.1) and, for the first scenes of each split, for 3.1 itself */
  char cclip[64];
  int crate = split ? eval_rate : train_rates[vt_rng_below(&x->rng, 3)];
  if (clip_of(x, cap, crate, cclip, sizeof cclip)) return -1;
  snprintf(id, sizeof id, "tts-%s-%05lld", sp, (long long)k);
  if (add(x, 4, split,
          json_pack("{s:s, s:s, s:s, s:s}", "id", id, "set", "tts", "text", cap, "audio", cclip),
          NULL, NULL))
    return -1;
  if (k < (split ? c->codec_eval_clips : c->codec_train_clips)) {
    snprintf(id, sizeof id, "speech-%s-%05lld", sp, (long long)k);
    if (add(x, 5, split,
            json_pack("{s:s, s:s, s:s, s:o}", "id", id, "set", "speech", "audio", cclip,
                      "conversations", turns("<audio>\nTranscribe.", cap)),
            NULL, NULL))
      return -1;
  }

  /* one conversation per image: qa_per_scene questions (a shuffle of the types, so each
   * conversation asks them all once when there are four), each about a random object; the
   * same turns spoken for sqa */
  json_t *qt = json_array(), *st = json_array(), *types = json_array(), *clips = json_array();
  int order[SHAPES_N_Q] = {0, 1, 2, 3};
  for (int i = SHAPES_N_Q - 1; i > 0; i--) {
    int j = (int)vt_rng_below(&x->rng, (uint64_t)(i + 1)), t = order[i];
    order[i] = order[j], order[j] = t;
  }
  int colour_obj = -1, pos_obj = -1; /* the objects the colour and position questions ask */
  for (int j = 0; j < c->qa_per_scene; j++) {
    shapes_q type = (shapes_q)order[j % SHAPES_N_Q];
    int obj = (int)vt_rng_below(&x->rng, (uint64_t)s.n);
    /* the colour question names a position and the position question a colour: about one
     * object, the earlier answer would tell the later one without the image */
    int other = type == SHAPES_Q_COLOUR ? pos_obj : type == SHAPES_Q_POS ? colour_obj : -1;
    if (s.n > 1 && obj == other)
      obj = (obj + 1 + (int)vt_rng_below(&x->rng, (uint64_t)(s.n - 1))) % s.n;
    if (type == SHAPES_Q_COLOUR) colour_obj = obj;
    if (type == SHAPES_Q_POS) pos_obj = obj;
    shapes_question(&s, type, obj, q, sizeof q, a, sizeof a);
    snprintf(qi, sizeof qi, "%s%s", j ? "" : "<image>\n", q);
    char clip[64];
    int rate = split ? eval_rate : train_rates[vt_rng_below(&x->rng, 3)];
    if (clip_of(x, q, rate, clip, sizeof clip) || vsynth_texts_add(&x->texts, q) ||
        vsynth_texts_add(&x->texts, a)) {
      json_decref(qt), json_decref(st), json_decref(types), json_decref(clips);
      return -1;
    }
    if (split) { /* the same question alone, for the per-type held-out accuracy */
      snprintf(id, sizeof id, "qa-eval-%05lld-%s", (long long)k, shapes_q_names[type]);
      char q1[160];
      snprintf(q1, sizeof q1, "<image>\n%s", q);
      json_t *one = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "set", "qa", "image", rel,
                              "conversations", turns(q1, a));
      if (!one || json_array_append_new(x->qa_type[type], one)) {
        json_decref(qt), json_decref(st), json_decref(types), json_decref(clips);
        vt_seterr(x->err, x->err_len, "out of memory");
        return -1;
      }
    }
    push_turns(qt, qi, a);
    push_turns(st, j ? "<audio>" : "<image>\n<audio>", a);
    json_array_append_new(types, json_string(shapes_q_names[type]));
    json_array_append_new(clips, json_string(clip));
  }
  snprintf(id, sizeof id, "qa-%s-%05lld", sp, (long long)k);
  if (add(x, 1, split,
          json_pack("{s:s, s:s, s:O, s:s, s:o}", "id", id, "set", "qa", "qtypes", types, "image",
                    rel, "conversations", qt),
          NULL, NULL))
    return json_decref(st), json_decref(types), json_decref(clips), -1;
  snprintf(id, sizeof id, "sqa-%s-%05lld", sp, (long long)k);
  if (add(x, 2, split,
          json_pack("{s:s, s:s, s:o, s:s, s:o, s:o}", "id", id, "set", "sqa", "qtypes", types,
                    "image", rel, "audio", clips, "conversations", st),
          NULL, NULL))
    return -1;
  return 0;
}

/* The ASR phrases: every word the questions answer with, and every colour-shape pair; each
 * spoken at the training rates (train) and at the held-out rate (eval). */
static int asr(vsynth_ctx *x) {
  char ph[64], clip[64], id[64];
  int n = 0;
  for (int kind = 0; kind < 5; kind++) {
    int count = kind == 0   ? SHAPES_N_COLOURS
                : kind == 1 ? SHAPES_N_SHAPES
                : kind == 2 ? SHAPES_N_POS
                : kind == 3 ? SHAPES_MAX_OBJ
                            : SHAPES_N_COLOURS * SHAPES_N_SHAPES;
    for (int i = 0; i < count; i++, n++) {
      if (kind == 0) snprintf(ph, sizeof ph, "%s", shapes_colour_names[i]);
      if (kind == 1) snprintf(ph, sizeof ph, "%s", shapes_shape_names[i]);
      if (kind == 2) snprintf(ph, sizeof ph, "%s", shapes_pos_names[i]);
      if (kind == 3) snprintf(ph, sizeof ph, "%s", shapes_count_names[i + 1]);
      if (kind == 4)
        snprintf(ph, sizeof ph, "%s %s", shapes_colour_names[i / SHAPES_N_SHAPES],
                 shapes_shape_names[i % SHAPES_N_SHAPES]);
      for (int r = 0; r < 4; r++) {
        int split = r == 3, rate = split ? eval_rate : train_rates[r];
        if (clip_of(x, ph, rate, clip, sizeof clip)) return -1;
        snprintf(id, sizeof id, "asr-%s-%02d-r%d", split ? "eval" : "train", n, rate);
        if (add(x, 3, split,
                json_pack("{s:s, s:s, s:s, s:o}", "id", id, "set", "asr", "audio", clip,
                          "conversations", turns("<audio>\nTranscribe.", ph)),
                "Transcribe.", ph))
          return -1;
      }
    }
  }
  return 0;
}

static int write_samples(vsynth_ctx *x) {
  char path[4600];
  for (int t = 0; t < VSYNTH_TASKS; t++)
    for (int s = 0; s < 2; s++) {
      snprintf(path, sizeof path, "%s/%s-%s.json", x->dir, vsynth_tasks[t], s ? "eval" : "train");
      if (json_dump_file(x->samples[t][s], path, JSON_INDENT(1))) {
        vt_seterr(x->err, x->err_len, "%s: cannot write", path);
        return -1;
      }
    }
  for (int q = 0; q < SHAPES_N_Q; q++) {
    snprintf(path, sizeof path, "%s/qa-eval-%s.json", x->dir, shapes_q_names[q]);
    if (json_dump_file(x->qa_type[q], path, JSON_INDENT(1))) {
      vt_seterr(x->err, x->err_len, "%s: cannot write", path);
      return -1;
    }
  }
  snprintf(path, sizeof path, "%s/scenes.json", x->dir);
  if (json_dump_file(x->scenes, path, JSON_INDENT(1) | JSON_SORT_KEYS)) {
    vt_seterr(x->err, x->err_len, "%s: cannot write", path);
    return -1;
  }
  return 0;
}

int vsynth_write(const char *dir, const vsynth_cfg *c, vsynth_stats *st, char *err,
                 size_t err_len) {
  memset(st, 0, sizeof *st);
  if (c->train_scenes < 1 || c->eval_scenes < 1 || c->train_scenes > 100000 ||
      c->eval_scenes > 100000 || c->qa_per_scene < 1 || c->qa_per_scene > 16 ||
      c->image_size < 28 || c->image_size > 1024 || c->codec_train_clips < 0 ||
      c->codec_eval_clips < 0) {
    vt_seterr(err, err_len,
              "generated VITA data: 1 <= scenes <= 100000, 1 <= questions per scene <= 16, "
              "28 <= image size <= 1024 and codec clips >= 0 expected (found %lld + %lld "
              "scenes, %d, %d px, %lld + %lld codec clips)",
              (long long)c->train_scenes, (long long)c->eval_scenes, c->qa_per_scene, c->image_size,
              (long long)c->codec_train_clips, (long long)c->codec_eval_clips);
    return -1;
  }
  vsynth_ctx x = {.dir = dir, .c = c, .st = st, .err = err, .err_len = err_len};
  vt_rng_seed(&x.rng, c->seed ^ 0x5eed5a9e5ull);
  char sub[4300];
  int rc = -1;
  uint8_t *rgb = malloc((size_t)c->image_size * (size_t)c->image_size * 3);
  x.scenes = json_object();
  for (int t = 0; t < VSYNTH_TASKS; t++)
    x.samples[t][0] = json_array(), x.samples[t][1] = json_array();
  for (int q = 0; q < SHAPES_N_Q; q++) x.qa_type[q] = json_array();
  if (!rgb) {
    vt_seterr(err, err_len, "out of memory");
    goto done;
  }
  snprintf(sub, sizeof sub, "%s/images", dir);
  if (vsynth_mkdir(sub, err, err_len)) goto done;
  snprintf(sub, sizeof sub, "%s/audio", dir);
  if (vsynth_mkdir(sub, err, err_len)) goto done;
  for (int split = 0; split < 2; split++)
    for (int64_t k = 0; k < (split ? c->eval_scenes : c->train_scenes); k++)
      if (scene(&x, split, k, rgb)) goto done;
  if (asr(&x) || write_samples(&x) || vsynth_finish(&x)) goto done;
  rc = 0;
done:
  free(rgb);
  json_decref(x.scenes);
  for (int t = 0; t < VSYNTH_TASKS; t++) json_decref(x.samples[t][0]), json_decref(x.samples[t][1]);
  for (int q = 0; q < SHAPES_N_Q; q++) json_decref(x.qa_type[q]);
  vsynth_texts_free(&x.texts);
  vsynth_texts_free(&x.spoken);
  return rc;
}
