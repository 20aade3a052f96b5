/* The model of a stage and its initial weights; see stage_model.h. */
#include "stages/stage_model.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/regfile.h"
#include "checkpoints/safetensors_params.h"

json_t *stage_read_json(const char *path, char *resolved, size_t resolved_len, char *err,
                        size_t err_len) {
  char p[STAGE_PATH + 16];
  struct stat st;
  bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(p, sizeof p, is_dir ? "%s/config.json" : "%s", path);
  if (resolved) snprintf(resolved, resolved_len, "%s", p);
  /* a regular file (a FIFO would block), and a key given twice is an error, not the last
   * one silently winning */
  size_t len;
  char *text = vt_read_regular(p, 64u << 20, &len, err, err_len);
  if (!text) return NULL;
  json_error_t je;
  json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  free(text);
  if (!j) {
    snprintf(err, err_len, "%s: line %d: %s", p, je.line, je.text);
    return NULL;
  }
  if (!json_is_object(j)) {
    snprintf(err, err_len, "%s: expected a JSON object", p);
    json_decref(j);
    return NULL;
  }
  return j;
}

vt_model *stage_model_open(const char *name, const char *path, const vt_model_opts *opts,
                           vt_params *ps, char *err, size_t err_len) {
  const vt_model_ops *ops = NULL;
  if (name && *name && !(ops = vt_model_find(name))) {
    char names[256];
    snprintf(err, err_len, "model.name: no model \"%s\" (known: %s)", name,
             vt_model_names(names, sizeof names));
    return NULL;
  }
  char where[STAGE_PATH + 16];
  json_t *j = stage_read_json(path, where, sizeof where, err, err_len);
  if (!j) return NULL;
  vt_model *m = vt_model_create(ops, j, where, opts, ps, err, err_len);
  json_decref(j);
  return m;
}

bool stage_globs_match(const char *globs, const char *name) {
  char g[STAGE_GLOBS];
  const char *s = globs;
  for (;;) {
    const char *e = strchr(s, ',');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n < sizeof g) {
      memcpy(g, s, n);
      g[n] = '\0';
      if (n && fnmatch(g, name, 0) == 0) return true;
    }
    if (!e) return false;
    s = e + 1;
  }
}

/* What a source of stage_load_init_over fills: the parameters its globs select that no base
 * newer than `newer` (bases[0 .. newer)) holds; globs NULL: loading a base, which fills what
 * base_globs allows. */
typedef struct {
  const char *globs;
  st_index *bases;
  int newer;
  const char *base_globs; /* what may come from the bases (NULL: all they hold) */
} init_pick;

static bool from_bases(const init_pick *k, const char *name) {
  return !k->base_globs || stage_globs_match(k->base_globs, name);
}

static bool held_by(const init_pick *k, const char *name) {
  for (int b = 0; b < k->newer; b++)
    if (st_index_has(&k->bases[b], name)) return from_bases(k, name);
  return false;
}

static bool select_pick(const vt_param *p, void *arg) {
  const init_pick *k = arg;
  return (k->globs ? stage_globs_match(k->globs, p->name) : from_bases(k, p->name)) &&
         !held_by(k, p->name);
}

/* A checkpoint or model directory holds model.safetensors (or shards with an index): the
 * index reader takes the directory itself. */
int stage_load_init_over(const stage_cfg *cfg, vt_params *ps, const char *const *bases, int n_bases,
                         const char *base_globs, FILE *log, char *err, size_t err_len) {
  st_index ixs[STAGE_MAX_BASES];
  int n_open = 0, rc = -1;
  char why[8192];
  if (n_bases > STAGE_MAX_BASES) {
    snprintf(err, err_len, "%s: at most %d earlier stages' weights (given %d)", cfg->path,
             STAGE_MAX_BASES, n_bases);
    return -1;
  }
  for (; n_open < n_bases; n_open++)
    if (st_index_open(&ixs[n_open], bases[n_open], why, sizeof why)) {
      snprintf(err, err_len, "%s: the weights of an earlier stage: %s", cfg->path, why);
      goto done;
    }
  for (int i = 0; i < cfg->n_init; i++) {
    const stage_init *si = &cfg->init[i];
    init_pick all = {si->params, ixs, 0, base_globs}, rest = {si->params, ixs, n_bases, base_globs};
    int matched = 0, left = 0;
    for (int k = 0; k < ps->n; k++) {
      matched += select_pick(ps->items[k], &all);
      left += select_pick(ps->items[k], &rest);
    }
    if (!matched) {
      snprintf(err, err_len, "%s:%d: init: params \"%s\" match no parameter of the model",
               cfg->path, si->line, si->params);
      goto done;
    }
    if (!left) {
      if (log)
        fprintf(log, "init: %s: every parameter it fills (%s) comes from an earlier stage\n",
                si->from, si->params);
      continue;
    }
    st_index ix;
    if (st_index_open(&ix, si->from, why, sizeof why)) {
      snprintf(err, err_len, "%s:%d: init: %s", cfg->path, si->line, why);
      goto done;
    }
    int n = 0;
    st_load_sel sel = {.prefix = si->prefix, .select = select_pick, .arg = &rest, .n_loaded = &n};
    /* tensors the source has beyond the selection are left there (a HF directory's rotary
     * tables, the other parts of an earlier stage's checkpoint); a selected parameter it
     * lacks is an error, so a source of the wrong model still fails */
    int lrc = st_load_params_sel(ps, &ix, &sel, ST_LOAD_ALLOW_UNEXPECTED, why, sizeof why);
    st_index_close(&ix);
    if (lrc) {
      snprintf(err, err_len, "%s:%d: init: %s", cfg->path, si->line, why);
      goto done;
    }
    if (log)
      fprintf(log, "init: %d parameter tensors (%s) from %s%s%s%s\n", n, si->params, si->from,
              si->prefix[0] ? " with prefix \"" : "", si->prefix, si->prefix[0] ? "\"" : "");
  }
  /* each base fills what it holds and no newer base does: loaded last, so it wins over the
   * stage's own sources wherever both hold a name */
  for (int b = 0; b < n_bases; b++) {
    init_pick pick = {NULL, ixs, b, base_globs};
    int n = 0;
    st_load_sel sel = {.select = select_pick, .arg = &pick, .n_loaded = &n};
    if (st_load_params_sel(ps, &ixs[b], &sel, ST_LOAD_ALLOW_UNEXPECTED | ST_LOAD_ALLOW_MISSING, why,
                           sizeof why)) {
      snprintf(err, err_len, "%s: the weights of an earlier stage: %s", cfg->path, why);
      goto done;
    }
    if (log && n) fprintf(log, "init: %d parameter tensors from %s\n", n, bases[b]);
  }
  rc = 0;
done:
  for (int b = 0; b < n_open; b++) st_index_close(&ixs[b]);
  return rc;
}

int stage_load_init(const stage_cfg *cfg, vt_params *ps, FILE *log, char *err, size_t err_len) {
  return stage_load_init_over(cfg, ps, NULL, 0, NULL, log, err, err_len);
}
