/* trainer.json's reader (see trainer_state.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer_state.h"

/* An integer field in [lo, hi]; the message names the file and the field. */
static int json_int(json_t *root, const char *key, const char *path, int64_t lo, int64_t hi,
                    int64_t *out, char *err, size_t err_len) {
  json_t *v = json_object_get(root, key);
  if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
    char found[40] = "no integer";
    if (json_is_integer(v)) snprintf(found, sizeof found, "%lld", (long long)json_integer_value(v));
    snprintf(err, err_len, "%s: field \"%s\": expected an integer in [%lld, %lld], found %s", path,
             key, (long long)lo, (long long)hi, found);
    return -1;
  }
  *out = json_integer_value(v);
  return 0;
}

int trainer_state_parse(const char *text, size_t len, const char *p, int64_t man_step,
                        const char *model_name, const char *const *phase_names, int n_phases,
                        trainer_state *s, char *err, size_t err_len) {
  memset(s, 0, sizeof *s);
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  int rc = -1;
  const char *fmt = j ? json_string_value(json_object_get(j, "format")) : NULL;
  if (!j || !fmt || strcmp(fmt, TRAINER_STATE_FORMAT) != 0) {
    if (!j)
      snprintf(err, err_len, "%s: line %d: %s", p, je.line, je.text);
    else
      snprintf(err, err_len, "%s: not a trainer state (expected format \"%s\")", p,
               TRAINER_STATE_FORMAT);
    goto done;
  }
  if (json_int(j, "total_steps", p, 1, INT64_MAX / 2, &s->total_steps, err, err_len) ||
      json_int(j, "step", p, 0, s->total_steps, &s->step, err, err_len) ||
      json_int(j, "tokens_seen", p, 0, INT64_MAX, &s->tokens_seen, err, err_len) ||
      json_int(j, "skipped_samples", p, 0, INT64_MAX, &s->skipped_samples, err, err_len))
    goto done;
  if (s->step != man_step) {
    snprintf(err, err_len, "%s: field \"step\": %lld, but the checkpoint's manifest says %lld", p,
             (long long)s->step, (long long)man_step);
    goto done;
  }
  json_t *phases = json_object_get(j, "phases");
  if (json_array_size(phases) != (size_t)n_phases || n_phases > VT_MODEL_MAX_PHASES) {
    snprintf(err, err_len, "%s: field \"phases\": expected %d phases (model %s), found %zu", p,
             n_phases, model_name, json_array_size(phases));
    goto done;
  }
  for (int k = 0; k < n_phases; k++) {
    json_t *ph = json_array_get(phases, (size_t)k);
    const char *name = json_string_value(json_object_get(ph, "name"));
    if (!name || strcmp(name, phase_names[k])) {
      snprintf(err, err_len, "%s: phase %d: expected \"%s\", found \"%s\"", p, k, phase_names[k],
               name ? name : "(none)");
      goto done;
    }
    /* at most one update (made or skipped) per phase and step */
    char where[8600];
    snprintf(where, sizeof where, "%s: phase %s", p, name);
    if (json_int(ph, "optim_t", where, 0, s->step, &s->optim_t[k], err, err_len) ||
        json_int(ph, "optim_skipped", where, 0, s->step - s->optim_t[k], &s->optim_skipped[k], err,
                 err_len))
      goto done;
  }
  json_t *rng = json_object_get(j, "rng");
  for (int i = 0; i < 4; i++) {
    const char *h = json_string_value(json_array_get(rng, (size_t)i));
    char *end = NULL;
    s->rng[i] = h ? strtoull(h, &end, 16) : 0;
    if (!h || json_array_size(rng) != 4 || strlen(h) != 16 || *end) {
      snprintf(err, err_len, "%s: field \"rng\": expected 4 strings of 16 hex digits", p);
      goto done;
    }
  }
  if (!(s->rng[0] | s->rng[1] | s->rng[2] | s->rng[3])) {
    snprintf(err, err_len, "%s: field \"rng\": the all-zero state is not a generator state", p);
    goto done;
  }
  const char *cs = json_string_value(json_object_get(j, "data_cursor"));
  char why[512];
  if (!cs) {
    snprintf(err, err_len, "%s: field \"data_cursor\": expected a string", p);
    goto done;
  }
  if (mix_cursor_parse(&s->cursor, cs, why, sizeof why)) {
    snprintf(err, err_len, "%s: field \"data_cursor\": %s", p, why);
    goto done;
  }
  rc = 0;
done:
  json_decref(j);
  return rc;
}
