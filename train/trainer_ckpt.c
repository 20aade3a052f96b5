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
#include "train/trainer_state.h"

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
                TRAINER_STATE_FORMAT, "stage", t->cfg->name, "model", t->model->ops->name, "step",
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
  ckpt_writer w;
  char tmp[CKPT_PATH_MAX] = "";
  if (d->rank == 0) {
    char root[4200];
    snprintf(root, sizeof root, "%s/checkpoints", t->cfg->out_dir);
    rc = ckpt_begin(&w, root, t->step, err, err_len);
    if (!rc) snprintf(tmp, sizeof tmp, "%s", w.tmp);
  }
  /* sharded optimizer state: every rank writes its own file into rank 0's directory */
  bool sharded = trainer_state_sharded(t);
  int32_t ok = rc == 0;
  if (sharded && (t->hc->ops->broadcast(t->hc, &ok, sizeof ok, 0, "checkpoint status") ||
                  (ok && t->hc->ops->broadcast(t->hc, tmp, sizeof tmp, 0, "checkpoint path")))) {
    snprintf(err, err_len, "%s", t->hc->err);
    return -1;
  }
  if (!ok && sharded) {
    if (d->rank != 0) snprintf(err, err_len, "rank 0 failed to start the checkpoint");
    return -1;
  }
  bool begun = ok; /* unsharded: only rank 0 knows, and it reports below */
  if (ok && (sharded || d->rank == 0)) rc = trainer_save_optim(t, tmp, err, err_len);
  if (sharded) {
    double failed = rc ? 1.0 : 0.0;
    if (rc) fprintf(stderr, "rank %d: %s\n", d->rank, err);
    if (vt_coll_allreduce_f64(t->hc, &failed, 1, VT_COLL_MAX, "checkpoint shard status")) {
      snprintf(err, err_len, "%s", t->hc->err);
      return -1;
    }
    if (failed > 0 && !rc) {
      snprintf(err, err_len, "a rank failed to write its optimizer shard (see its message)");
      rc = -1;
    }
  }
  /* sharded f32 masters (bf16 ZeRO): rank 0 gathers each sharded parameter from its owners
   * as the writer reaches it, the others answer */
  trainer_masters ms;
  if (trainer_masters_begin(t, &ms, err, err_len)) return -1;
  if (d->rank != 0 && ms.on && trainer_masters_serve(&ms, err, err_len)) {
    trainer_masters_end(&ms, NULL, 0);
    return -1;
  }
  if (d->rank == 0 && begun) {
    char p[8400];
    st_kv meta[1] = {{"format", "pt"}};
    st_save_opts so = {
        .dtype = -1, .meta = meta, .n_meta = 1, .fetch = trainer_masters_fetch, .fetch_ctx = &ms};
    snprintf(p, sizeof p, "%s/model.safetensors", w.tmp);
    if (!rc) rc = st_save_params(&t->ps, p, &so, err, err_len);
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
  char why[512];
  if (trainer_masters_end(&ms, why, sizeof why) && !rc) {
    snprintf(err, err_len, "%s", why);
    rc = -1;
  }
  /* every rank learns whether rank 0 succeeded, and where the checkpoint went */
  ok = rc == 0;
  if (t->hc->ops->broadcast(t->hc, &ok, sizeof ok, 0, "checkpoint status")) {
    snprintf(err, err_len, "%s", t->hc->err);
    return -1;
  }
  if (!ok && d->rank != 0 && !rc) snprintf(err, err_len, "rank 0 failed to write the checkpoint");
  return ok ? 0 : -1;
}

/* Reads dir/trainer.json and checks it against the checkpoint it sits in (the manifest's
 * step, the model's phases). */
static int read_saved_state(trainer *t, const char *dir, trainer_state *s, char *err,
                            size_t err_len) {
  char p[8400];
  snprintf(p, sizeof p, "%s/trainer.json", dir);
  ckpt_manifest man;
  if (ckpt_manifest_read(dir, &man, err, err_len)) return -1;
  int64_t man_step = man.step;
  ckpt_manifest_free(&man);
  char *text = ckpt_read_text(p, err, err_len);
  if (!text) return -1;
  const char *names[VT_MODEL_MAX_PHASES];
  for (int k = 0; k < t->n_phases && k < VT_MODEL_MAX_PHASES; k++)
    names[k] = t->model->phases[k].name;
  int rc = trainer_state_parse(text, strlen(text), p, man_step, t->model->ops->name, names,
                               t->n_phases, s, err, err_len);
  free(text);
  return rc;
}

int trainer_restore(trainer *t, const char *dir, char *err, size_t err_len) {
  /* the state first: a checkpoint whose trainer.json is wrong is refused before any weight
   * is loaded */
  trainer_state s = {0};
  if (read_saved_state(t, dir, &s, err, err_len)) return -1;
  char p[8400];
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  /* the load writes every value */
  if (vt_params_unshard_masters(&t->ps, err, err_len) ||
      st_load_params_path(&t->ps, p, 0, err, err_len) || trainer_reshard_masters(t, err, err_len))
    return -1;
  /* optimizer moments by name: this rank's pieces from whichever files hold them */
  if (trainer_restore_optim(t, dir, err, err_len)) return -1;
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
