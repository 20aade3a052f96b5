/* Checkpoint save and exact resume of the trainer; see trainer_impl.h. A checkpoint holds
 * model.safetensors (fp32 master weights by parameter name), optim.safetensors (moments by
 * name: exp_avg.NAME, exp_avg_sq.NAME or momentum_buffer.NAME), trainer.json (step, optimizer
 * step count, RNG, data cursor) and config.json, so it is also a model directory that
 * `vita export` and `vita eval` read. Names, not offsets, make it independent of the number
 * of ranks. */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_params.h"
#include "train/hf_config.h"
#include "train/trainer_impl.h"

#define STATE_FORMAT "vita-train trainer state v1"

/* Optimizer state tensors of trainable parameters, in store order. Returns the count; the
 * names are allocated in *names_buf (caller frees). */
static int optim_entries(trainer *t, st_entry *out, char **names_buf) {
  int n = 0;
  size_t cap = 0;
  for (int i = 0; i < t->ps.n; i++) cap += 2 * (strlen(t->ps.items[i]->name) + 24);
  char *buf = malloc(cap + 1), *p = buf;
  *names_buf = buf;
  if (!buf) return -1;
  for (int i = 0; i < t->ps.n; i++) {
    vt_param *prm = t->ps.items[i];
    float *m = NULL, *v = NULL;
    int64_t numel;
    char err[8];
    if (!prm->trainable || vt_optim_state(&t->opt, prm->name, &m, &v, &numel, err, sizeof err))
      continue;
    const char *kinds[2] = {t->opt.cfg.kind == VT_OPTIM_SGD ? "momentum_buffer" : "exp_avg",
                            "exp_avg_sq"};
    float *bufs[2] = {m, v};
    for (int k = 0; k < 2; k++) {
      if (!bufs[k]) continue;
      int w = sprintf(p, "%s.%s", kinds[k], prm->name);
      out[n] = (st_entry){.name = p, .dtype = VT_F32, .ndim = prm->t.ndim, .data = bufs[k]};
      memcpy(out[n].shape, prm->t.shape, sizeof(int64_t) * (size_t)prm->t.ndim);
      p += w + 1;
      n++;
    }
  }
  return n;
}

static char *state_json(trainer *t) {
  mix_cursor cur = mix_get_cursor(t->mix);
  char cursor[MIX_CURSOR_LEN], rng[4][24];
  mix_cursor_format(&cur, cursor);
  for (int i = 0; i < 4; i++) snprintf(rng[i], sizeof rng[i], "%016" PRIx64, t->rng.s[i]);
  json_t *j =
      json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:[s,s,s,s], s:s}", "format", STATE_FORMAT,
                "step", (json_int_t)t->step, "total_steps", (json_int_t)t->total_steps, "optim_t",
                (json_int_t)t->opt.t, "optim_skipped", (json_int_t)t->opt.n_skipped, "tokens_seen",
                (json_int_t)t->tokens_seen, "skipped_samples", (json_int_t)t->skipped_samples,
                "rng", rng[0], rng[1], rng[2], rng[3], "data_cursor", cursor);
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
    st_entry *entries = malloc(sizeof *entries * (size_t)(2 * t->ps.n + 1));
    char *names = NULL;
    int n = entries ? optim_entries(t, entries, &names) : -1;
    if (!rc && n < 0) {
      snprintf(err, err_len, "checkpoint: out of memory");
      rc = -1;
    }
    snprintf(p, sizeof p, "%s/optim.safetensors", w.tmp);
    if (!rc && n > 0) {
      st_sort_entries(entries, n);
      rc = st_write(p, entries, n, meta, 1, err, err_len);
    }
    free(entries);
    free(names);
    char *js = rc ? NULL : state_json(t);
    snprintf(p, sizeof p, "%s/trainer.json", w.tmp);
    if (!rc && (!js || ckpt_write_text(p, js, err, err_len))) rc = -1;
    free(js);
    snprintf(p, sizeof p, "%s/config.json", w.tmp);
    if (!rc) rc = hf_qwen2_config_write(p, &t->mcfg, err, err_len);
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

static int json_int(json_t *root, const char *key, const char *path, int64_t *out, char *err,
                    size_t err_len) {
  json_t *v = json_object_get(root, key);
  if (!json_is_integer(v)) {
    snprintf(err, err_len, "%s: field \"%s\": expected an integer", path, key);
    return -1;
  }
  *out = json_integer_value(v);
  return 0;
}

int trainer_restore(trainer *t, const char *dir, char *err, size_t err_len) {
  char p[8400];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  if (st_load_params_path(&t->ps, p, 0, err, err_len)) return -1;
  /* optimizer moments by name */
  snprintf(p, sizeof p, "%s/optim.safetensors", dir);
  st_file f;
  bool have_optim = false;
  for (int i = 0; i < t->ps.n; i++) {
    vt_param *prm = t->ps.items[i];
    float *m = NULL, *v = NULL;
    int64_t numel;
    char why[64];
    if (!prm->trainable || vt_optim_state(&t->opt, prm->name, &m, &v, &numel, why, sizeof why))
      continue;
    if (!m && !v) continue;
    if (!have_optim) {
      if (st_file_open(&f, p, err, err_len)) return -1;
      have_optim = true;
    }
    const char *kinds[2] = {t->opt.cfg.kind == VT_OPTIM_SGD ? "momentum_buffer" : "exp_avg",
                            "exp_avg_sq"};
    float *bufs[2] = {m, v};
    for (int k = 0; k < 2; k++) {
      if (!bufs[k]) continue;
      char name[1024];
      snprintf(name, sizeof name, "%s.%s", kinds[k], prm->name);
      const st_tensor *st = st_find(&f, name);
      if (!st || st->numel != numel) {
        snprintf(err, err_len,
                 "%s: %s %s (was the trainable set or the optimizer changed since "
                 "the checkpoint?)",
                 p, name, st ? "has the wrong size" : "is missing");
        st_file_close(&f);
        return -1;
      }
      if (st_tensor_read(st, VT_F32, bufs[k], (size_t)numel * sizeof(float), err, err_len)) {
        st_file_close(&f);
        return -1;
      }
    }
  }
  if (have_optim) st_file_close(&f);
  /* trainer state */
  snprintf(p, sizeof p, "%s/trainer.json", dir);
  char *text = ckpt_read_text(p, err, err_len);
  if (!text) return -1;
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  free(text);
  int rc = -1;
  int64_t optim_t, skipped;
  const char *fmt = j ? json_string_value(json_object_get(j, "format")) : NULL;
  if (!j || !fmt || strcmp(fmt, STATE_FORMAT) != 0) {
    snprintf(err, err_len, "%s: not a trainer state (expected format \"%s\")", p, STATE_FORMAT);
    goto done;
  }
  if (json_int(j, "step", p, &t->step, err, err_len) ||
      json_int(j, "optim_t", p, &optim_t, err, err_len) ||
      json_int(j, "optim_skipped", p, &skipped, err, err_len) ||
      json_int(j, "tokens_seen", p, &t->tokens_seen, err, err_len) ||
      json_int(j, "skipped_samples", p, &t->skipped_samples, err, err_len))
    goto done;
  t->opt.t = optim_t;
  t->opt.n_skipped = skipped;
  json_t *rng = json_object_get(j, "rng");
  for (int i = 0; i < 4; i++) {
    const char *h = json_string_value(json_array_get(rng, (size_t)i));
    if (!h) {
      snprintf(err, err_len, "%s: field \"rng\": expected 4 hex strings", p);
      goto done;
    }
    t->rng.s[i] = strtoull(h, NULL, 16);
  }
  /* the data cursor as saved (with the world size of the saving run): mix_set_cursor maps
   * it onto this run's world, so a run can resume on another number of ranks */
  const char *cs = json_string_value(json_object_get(j, "data_cursor"));
  mix_cursor cur;
  if (!cs) {
    snprintf(err, err_len, "%s: field \"data_cursor\": expected a string", p);
    goto done;
  }
  if (mix_cursor_parse(&cur, cs, err, err_len) || mix_set_cursor(t->mix, &cur, err, err_len))
    goto done;
  rc = 0;
done:
  json_decref(j);
  return rc;
}
