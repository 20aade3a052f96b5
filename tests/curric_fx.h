/* Checks of a finished curriculum run shared by tests/test_curriculum.c (the LM curriculum of
 * configs/curriculum) and tests/test_tiny_vita.c (the tiny VITA curriculum of `vita demo`):
 * - freezing: every parameter of a stage outside its trainable set is byte-identical between
 *   the stage's initial weights (RUN/<n>-<stage>/initial.safetensors, save_initial) and its
 *   final checkpoint, and every one inside it changed;
 * - ratios: the samples drawn from each dataset of a stage (samples.json) are its ratios'
 *   share: each dataset's slots per epoch are round(ratio x size) (below 1 subsamples, above
 *   1 repeats), and a stage that drew E epochs' worth drew between floor(E) and ceil(E) of
 *   each dataset's slots. */
#ifndef VT_TEST_CURRIC_FX_H
#define VT_TEST_CURRIC_FX_H

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "stages/stage_model.h"
#include "tests/check.h"
#include "train/curriculum.h"

/* system() of the formatted command: its exit status (-1 if it did not exit). */
static inline int curric_fx_sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  fflush(NULL); /* the child's output comes after ours */
  int rc = system(cmd);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* The test's environment: $VITA into *vita and $VT_SOURCE_DIR returned, the temporary directory
 * tmpl (mkdtemp) made; NULL, said on stderr, when one is missing. */
static inline const char *curric_fx_start(char *tmpl, const char **vita) {
  *vita = getenv("VITA");
  const char *src = getenv("VT_SOURCE_DIR");
  if (!*vita || !src || !mkdtemp(tmpl)) {
    fprintf(stderr, "needs VITA and VT_SOURCE_DIR (and a writable /tmp)\n");
    return NULL;
  }
  return src;
}

/* The final checkpoint's model.safetensors of a stage dir ("" if none). */
static inline void curric_fx_final_weights(const char *dir, char *out, size_t len) {
  char root[600], ck[600], err[256];
  int64_t step;
  snprintf(root, sizeof root, "%s/checkpoints", dir);
  out[0] = '\0';
  if (ckpt_find_latest(root, ck, sizeof ck, &step, err, sizeof err) == 1)
    snprintf(out, len, "%s/model.safetensors", ck);
}

static inline bool curric_fx_same_bytes(const st_tensor *a, const st_tensor *b) {
  return a && b && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
}

static inline bool curric_fx_trains(const stage_cfg *c, const char *name) {
  bool t = c->n_trainable == 0;
  for (int i = 0; i < c->n_trainable; i++) t |= stage_globs_match(c->trainable[i], name);
  for (int i = 0; i < c->n_frozen; i++) t &= !stage_globs_match(c->frozen[i], name);
  return t;
}

static inline json_t *curric_fx_read_json(const char *dir, const char *file) {
  char p[700], err[256];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  char *t = ckpt_read_text(p, err, sizeof err);
  json_t *j = t ? json_loads(t, 0, NULL) : NULL;
  free(t);
  return j;
}

/* Freezing of stage i (see above). Tensors whose names match `untouched` (comma-separated
 * globs; NULL: none) are trained but may end as they began (buffers no step writes). */
static inline void curric_fx_check_freezing(const curriculum *cur, int i, const char *untouched) {
  const curriculum_stage *s = &cur->stages[i];
  char a_path[600], b_path[600], err[512];
  snprintf(a_path, sizeof a_path, "%s/initial.safetensors", s->dir);
  curric_fx_final_weights(s->dir, b_path, sizeof b_path);
  st_file a, b;
  int ra = st_file_open(&a, a_path, err, sizeof err),
      rb = st_file_open(&b, b_path, err, sizeof err);
  CHECK_MSG(!ra && !rb, "stage %d: %s", i + 1, err);
  if (ra || rb) {
    if (!ra) st_file_close(&a);
    if (!rb) st_file_close(&b);
    return;
  }
  int same = 0, changed = 0, bad = 0;
  CHECK(a.n == b.n);
  for (int k = 0; k < a.n; k++) {
    const st_tensor *x = &a.tensors[k], *y = st_find(&b, x->name);
    bool eq = curric_fx_same_bytes(x, y), tr = curric_fx_trains(s->cfg, x->name);
    if (eq != tr || (eq && untouched && stage_globs_match(untouched, x->name))) {
      same += eq, changed += !eq;
      continue;
    }
    bad++;
    fprintf(stderr, "stage %d: %s %s\n", i + 1, x->name,
            tr ? "is trained but did not change" : "is frozen but changed");
  }
  CHECK_MSG(bad == 0 && changed > 0, "stage %d: %d frozen same, %d trained changed, %d wrong",
            i + 1, same, changed, bad);
  printf("freezing, stage %d (%s): %d frozen or untouched tensors byte-identical, %d trained "
         "ones changed\n",
         i + 1, s->name, same, changed);
  st_file_close(&a);
  st_file_close(&b);
}

/* The samples.json field of dataset name (-1 if absent). */
static inline int64_t curric_fx_drawn(json_t *samples, const char *name, const char *field) {
  size_t k;
  json_t *d;
  json_array_foreach(json_object_get(samples, "datasets"), k, d) {
    if (!strcmp(json_string_value(json_object_get(d, "name")), name))
      return json_integer_value(json_object_get(d, field));
  }
  return -1;
}

/* Ratios of stage i (see above): drew steps x batch samples in all. */
static inline void curric_fx_check_ratios(const curriculum *cur, int i) {
  const curriculum_stage *s = &cur->stages[i];
  json_t *sm = curric_fx_read_json(s->dir, "samples.json");
  json_t *ds = json_object_get(sm, "datasets"), *d;
  size_t k;
  int64_t total = 0, slots = 0;
  json_array_foreach(ds, k, d) {
    double ratio = json_number_value(json_object_get(d, "ratio"));
    int64_t size = json_integer_value(json_object_get(d, "size"));
    int64_t pe = json_integer_value(json_object_get(d, "per_epoch"));
    CHECK_MSG(size > 0 && llabs(pe - (int64_t)llround(ratio * (double)size)) == 0,
              "stage %s: %s: %lld slots per epoch for ratio %g of %lld", s->name,
              json_string_value(json_object_get(d, "name")), (long long)pe, ratio, (long long)size);
    total += json_integer_value(json_object_get(d, "drawn")), slots += pe;
  }
  int64_t want = s->cfg->steps * s->cfg->batch_size * (s->cfg->grad_accum ? s->cfg->grad_accum : 1);
  CHECK_MSG(json_array_size(ds) > 0 && total >= want && slots > 0, /* + skipped ones */
            "stage %s: drew %lld samples (want %lld)", s->name, (long long)total, (long long)want);
  double epochs = slots ? (double)total / (double)slots : 0;
  json_array_foreach(ds, k, d) {
    int64_t pe = json_integer_value(json_object_get(d, "per_epoch"));
    int64_t got = json_integer_value(json_object_get(d, "drawn"));
    CHECK_MSG(got >= (int64_t)floor(epochs) * pe && got <= (int64_t)ceil(epochs) * pe,
              "stage %s: %s drew %lld, not %g epochs of %lld slots", s->name,
              json_string_value(json_object_get(d, "name")), (long long)got, epochs, (long long)pe);
  }
  printf("ratios, stage %d (%s): %lld samples over %zu datasets, %.2f epochs of their slots\n",
         i + 1, s->name, (long long)total, json_array_size(ds), epochs);
  json_decref(sm);
}

#endif
