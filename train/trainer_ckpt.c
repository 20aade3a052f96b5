/* Checkpoint save and exact resume of the trainer; see trainer_impl.h. A checkpoint holds
 * model.safetensors (fp32 master weights by parameter name), optim.safetensors (each phase's
 * moments by name: exp_avg.NAME, exp_avg_sq.NAME or momentum_buffer.NAME, prefixed with
 * "PHASE." when the model has several phases), trainer.json (step, each phase's optimizer
 * step count, RNG, data cursor) and the model's config.json, so it is also a model directory
 * that `vita export` and `vita eval` read. Names, not offsets, make it independent of the
 * number of ranks. Tensors move through the backend's copies: the state may live on a GPU. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_params.h"
#include "train/trainer_impl.h"

#define STATE_FORMAT "vita-train trainer state v2"

/* The name of moment k (0, 1) of parameter prm of phase p, into buf. */
static void state_name(const trainer *t, int p, int k, const char *param, char *buf, size_t len) {
  const char *kind = k == 1                                      ? "exp_avg_sq"
                     : t->phases[p].opt.cfg.kind == VT_OPTIM_SGD ? "momentum_buffer"
                                                                 : "exp_avg";
  if (t->n_phases > 1)
    snprintf(buf, len, "%s.%s.%s", t->model->phases[p].name, kind, param);
  else
    snprintf(buf, len, "%s.%s", kind, param);
}

/* Calls fn for every optimizer state tensor (phase, moment, parameter, its device buffer). */
typedef int (*state_fn)(trainer *t, const char *name, const vt_param *prm, float *buf, void *arg);

static int each_state(trainer *t, state_fn fn, void *arg) {
  for (int p = 0; p < t->n_phases; p++)
    for (int i = 0; i < t->ps.n; i++) {
      vt_param *prm = t->ps.items[i];
      float *m = NULL, *v = NULL;
      int64_t numel;
      char why[8];
      if (!t->phases[p].updates[i] ||
          vt_optim_state(&t->phases[p].opt, prm->name, &m, &v, &numel, why, sizeof why))
        continue;
      float *bufs[2] = {m, v};
      for (int k = 0; k < 2; k++) {
        if (!bufs[k]) continue;
        char name[1200];
        state_name(t, p, k, prm->name, name, sizeof name);
        int rc = fn(t, name, prm, bufs[k], arg);
        if (rc) return rc;
      }
    }
  return 0;
}

typedef struct {
  const vt_backend *be; /* where the state lives */
  st_entry *e;
  char *names;
  int n, cap;
  size_t used, names_cap;
} entry_list;

static int add_entry(trainer *t, const char *name, const vt_param *prm, float *buf, void *arg) {
  (void)t;
  entry_list *l = arg;
  size_t len = strlen(name) + 1;
  if (l->n == l->cap || l->used + len > l->names_cap) return -1;
  memcpy(l->names + l->used, name, len);
  l->e[l->n] =
      (st_entry){.name = l->names + l->used, .dtype = VT_F32, .ndim = prm->t.ndim, .data = buf};
  memcpy(l->e[l->n].shape, prm->t.shape, sizeof(int64_t) * (size_t)prm->t.ndim);
  l->used += len;
  l->n++;
  return 0;
}

/* The bytes of a state tensor: downloaded from the optimizer's device into scratch. */
static const void *produce_state(void *vctx, int i, void *scratch, char *err, size_t err_len) {
  (void)err, (void)err_len;
  const entry_list *l = vctx;
  const st_entry *e = &l->e[i];
  size_t numel = 1;
  for (int d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
  vt_buf_to_host(l->be, scratch, e->data, numel * sizeof(float));
  return scratch;
}

static int save_optim(trainer *t, const char *path, const st_kv *meta, char *err, size_t err_len) {
  entry_list l = {.be = t->ps.be, .cap = 2 * t->ps.n * t->n_phases + 1};
  for (int i = 0; i < t->ps.n; i++)
    l.names_cap += 2 * (size_t)t->n_phases * (strlen(t->ps.items[i]->name) + 96);
  l.e = malloc(sizeof *l.e * (size_t)l.cap);
  l.names = malloc(l.names_cap + 1);
  int rc = -1;
  if (!l.e || !l.names || each_state(t, add_entry, &l)) {
    snprintf(err, err_len, "checkpoint: out of memory");
    goto done;
  }
  rc = 0;
  if (l.n > 0) {
    st_sort_entries(l.e, l.n);
    rc = st_write_fn(path, l.e, l.n, meta, 1, produce_state, &l, err, err_len);
  }
done:
  free(l.e);
  free(l.names);
  return rc;
}

static char *state_json(trainer *t) {
  mix_cursor cur = mix_get_cursor(t->mix);
  char cursor[MIX_CURSOR_LEN], rng[4][24];
  mix_cursor_format(&cur, cursor);
  for (int i = 0; i < 4; i++) snprintf(rng[i], sizeof rng[i], "%016" PRIx64, t->rng.s[i]);
  json_t *phases = json_array();
  for (int p = 0; p < t->n_phases; p++)
    json_array_append_new(phases,
                          json_pack("{s:s, s:I, s:I}", "name", t->model->phases[p].name, "optim_t",
                                    (json_int_t)t->phases[p].opt.t, "optim_skipped",
                                    (json_int_t)t->phases[p].opt.n_skipped));
  json_t *j =
      json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:[s,s,s,s], s:s, s:o}", "format",
                STATE_FORMAT, "stage", t->cfg->name, "model", t->model->ops->name, "step",
                (json_int_t)t->step, "total_steps", (json_int_t)t->total_steps, "tokens_seen",
                (json_int_t)t->tokens_seen, "skipped_samples", (json_int_t)t->skipped_samples,
                "rng", rng[0], rng[1], rng[2], rng[3], "data_cursor", cursor, "phases", phases);
  char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  json_decref(j);
  return s;
}

int trainer_save(trainer *t, char *path_out, size_t path_len, char *err, size_t err_len) {
  const vt_dist *d = t->dist;
  int rc = 0;
  if (d->rank == 0) {
    char root[4200], p[8400];
    snprintf(root, sizeof root, "%s/checkpoints", t->cfg->out_dir);
    ckpt_writer w;
    if (ckpt_begin(&w, root, t->step, err, err_len)) return -1;
    st_kv meta[1] = {{"format", "pt"}};
    st_save_opts so = {.dtype = -1, .meta = meta, .n_meta = 1};
    snprintf(p, sizeof p, "%s/model.safetensors", w.tmp);
    rc = st_save_params(&t->ps, p, &so, err, err_len);
    snprintf(p, sizeof p, "%s/optim.safetensors", w.tmp);
    if (!rc) rc = save_optim(t, p, meta, err, err_len);
    char *js = rc ? NULL : state_json(t);
    snprintf(p, sizeof p, "%s/trainer.json", w.tmp);
    if (!rc && (!js || ckpt_write_text(p, js, err, err_len))) rc = -1;
    free(js);
    json_t *cj = rc ? NULL : t->model->ops->config_json(t->model);
    char *ct = cj ? json_dumps(cj, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    snprintf(p, sizeof p, "%s/config.json", w.tmp);
    if (!rc && (!ct || ckpt_write_text(p, ct, err, err_len))) {
      if (!ct) snprintf(err, err_len, "%s: cannot build the model config", p);
      rc = -1;
    }
    free(ct);
    json_decref(cj);
    if (!rc) rc = ckpt_commit(&w, t->cfg->keep_last, err, err_len);
    if (rc)
      ckpt_abort(&w);
    else
      snprintf(path_out, path_len, "%s", w.final);
  }
  vt_dist_barrier(d);
  /* every rank learns whether rank 0 succeeded */
  int32_t ok = rc == 0;
  vt_dist_broadcast(d, &ok, sizeof ok);
  if (!ok && d->rank != 0) snprintf(err, err_len, "rank 0 failed to write the checkpoint");
  return ok ? 0 : -1;
}

typedef struct {
  st_file f;
  bool open;
  const char *path;
  float *host;
  char *err;
  size_t err_len;
} restore_ctx;

static int read_state(trainer *t, const char *name, const vt_param *prm, float *buf, void *arg) {
  restore_ctx *r = arg;
  if (!r->open) {
    if (st_file_open(&r->f, r->path, r->err, r->err_len)) return -1;
    r->open = true;
  }
  int64_t numel = vt_numel(&prm->t);
  const st_tensor *st = st_find(&r->f, name);
  if (!st || st->numel != numel) {
    snprintf(r->err, r->err_len,
             "%s: %s %s (was the trainable set or the optimizer changed since the checkpoint?)",
             r->path, name, st ? "has the wrong size" : "is missing");
    return -1;
  }
  int64_t bad = st_first_nonfinite(st);
  if (bad >= 0) {
    snprintf(r->err, r->err_len, "%s: %s: element %lld is not finite (NaN or Inf)", r->path, name,
             (long long)bad);
    return -1;
  }
  if (st_tensor_read(st, VT_F32, r->host, (size_t)numel * sizeof(float), r->err, r->err_len))
    return -1;
  vt_buf_from_host(t->ps.be, buf, r->host, (size_t)numel * sizeof(float));
  return 0;
}

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

/* trainer.json as read, before any of it is applied */
typedef struct {
  int64_t step, total_steps, tokens_seen, skipped_samples;
  int64_t optim_t[VT_MODEL_MAX_PHASES], optim_skipped[VT_MODEL_MAX_PHASES];
  uint64_t rng[4];
  mix_cursor cursor;
} saved_state;

/* Reads dir/trainer.json and checks it against the checkpoint it sits in: the step against
 * the manifest (whose step ckpt_verify matched to the directory name), the step within the
 * total, each phase's optimizer counts within the step, the RNG and the data cursor. */
static int read_saved_state(trainer *t, const char *dir, saved_state *s, char *err,
                            size_t err_len) {
  char p[8400];
  snprintf(p, sizeof p, "%s/trainer.json", dir);
  ckpt_manifest man;
  if (ckpt_manifest_read(dir, &man, err, err_len)) return -1;
  int64_t man_step = man.step;
  ckpt_manifest_free(&man);
  char *text = ckpt_read_text(p, err, err_len);
  if (!text) return -1;
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  free(text);
  int rc = -1;
  const char *fmt = j ? json_string_value(json_object_get(j, "format")) : NULL;
  if (!j || !fmt || strcmp(fmt, STATE_FORMAT) != 0) {
    if (!j)
      snprintf(err, err_len, "%s: line %d: %s", p, je.line, je.text);
    else
      snprintf(err, err_len, "%s: not a trainer state (expected format \"%s\")", p, STATE_FORMAT);
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
  if (json_array_size(phases) != (size_t)t->n_phases || t->n_phases > VT_MODEL_MAX_PHASES) {
    snprintf(err, err_len, "%s: field \"phases\": expected %d phases (model %s), found %zu", p,
             t->n_phases, t->model->ops->name, json_array_size(phases));
    goto done;
  }
  for (int k = 0; k < t->n_phases; k++) {
    json_t *ph = json_array_get(phases, (size_t)k);
    const char *name = json_string_value(json_object_get(ph, "name"));
    if (!name || strcmp(name, t->model->phases[k].name)) {
      snprintf(err, err_len, "%s: phase %d: expected \"%s\", found \"%s\"", p, k,
               t->model->phases[k].name, name ? name : "(none)");
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

int trainer_restore(trainer *t, const char *dir, char *err, size_t err_len) {
  /* the state first: a checkpoint whose trainer.json is wrong is refused before any weight
   * is loaded */
  saved_state s = {0};
  if (read_saved_state(t, dir, &s, err, err_len)) return -1;
  char p[8400];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  if (st_load_params_path(&t->ps, p, 0, err, err_len)) return -1;
  /* optimizer moments by name, staged through one host buffer of the largest parameter */
  snprintf(p, sizeof p, "%s/optim.safetensors", dir);
  size_t largest = 1;
  for (int i = 0; i < t->ps.n; i++)
    if ((size_t)vt_numel(&t->ps.items[i]->t) > largest)
      largest = (size_t)vt_numel(&t->ps.items[i]->t);
  restore_ctx rc_ = {
      .path = p, .host = malloc(largest * sizeof(float)), .err = err, .err_len = err_len};
  if (!rc_.host) {
    snprintf(err, err_len, "%s: out of host memory for %zu moments", p, largest);
    return -1;
  }
  int st = each_state(t, read_state, &rc_);
  if (rc_.open) st_file_close(&rc_.f);
  free(rc_.host);
  if (st) return -1;
  /* the data cursor as saved (with the world size of the saving run): mix_set_cursor maps
   * it onto this run's world, so a run can resume on another number of ranks */
  char why[512];
  if (mix_set_cursor(t->mix, &s.cursor, why, sizeof why)) {
    snprintf(err, err_len, "%s/trainer.json: field \"data_cursor\": %s", dir, why);
    return -1;
  }
  t->step = s.step;
  t->tokens_seen = s.tokens_seen;
  t->skipped_samples = s.skipped_samples;
  for (int k = 0; k < t->n_phases; k++) {
    t->phases[k].opt.t = s.optim_t[k];
    t->phases[k].opt.n_skipped = s.optim_skipped[k];
  }
  for (int i = 0; i < 4; i++) t->rng.s[i] = s.rng[i];
  return 0;
}
