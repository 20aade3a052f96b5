/* The model of a stage and its initial weights; see stage_model.h. */
#include "stages/stage_model.h"

#include <fnmatch.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/safetensors_params.h"

json_t *stage_read_json(const char *path, char *resolved, size_t resolved_len, char *err,
                        size_t err_len) {
  char p[STAGE_PATH + 16];
  struct stat st;
  bool is_dir = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(p, sizeof p, is_dir ? "%s/config.json" : "%s", path);
  if (resolved) snprintf(resolved, resolved_len, "%s", p);
  json_error_t je;
  json_t *j = json_load_file(p, 0, &je);
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

static bool select_init(const vt_param *p, void *arg) {
  return stage_globs_match(((const stage_init *)arg)->params, p->name);
}

/* A checkpoint or model directory holds model.safetensors (or shards with an index): the
 * index reader takes the directory itself. */
int stage_load_init(const stage_cfg *cfg, vt_params *ps, FILE *log, char *err, size_t err_len) {
  for (int i = 0; i < cfg->n_init; i++) {
    const stage_init *si = &cfg->init[i];
    int matched = 0;
    for (int k = 0; k < ps->n; k++) matched += select_init(ps->items[k], (void *)si);
    if (!matched) {
      snprintf(err, err_len, "%s:%d: init: params \"%s\" match no parameter of the model",
               cfg->path, si->line, si->params);
      return -1;
    }
    st_index ix;
    char why[8192];
    if (st_index_open(&ix, si->from, why, sizeof why)) {
      snprintf(err, err_len, "%s:%d: init: %s", cfg->path, si->line, why);
      return -1;
    }
    int n = 0;
    st_load_sel sel = {
        .prefix = si->prefix, .select = select_init, .arg = (void *)si, .n_loaded = &n};
    /* tensors the source has beyond the selection are left there (a HF directory's rotary
     * tables, the other parts of an earlier stage's checkpoint); a selected parameter it
     * lacks is an error, so a source of the wrong model still fails */
    int rc = st_load_params_sel(ps, &ix, &sel, ST_LOAD_ALLOW_UNEXPECTED, why, sizeof why);
    st_index_close(&ix);
    if (rc) {
      snprintf(err, err_len, "%s:%d: init: %s", cfg->path, si->line, why);
      return -1;
    }
    if (log)
      fprintf(log, "init: %d parameter tensors (%s) from %s%s%s%s\n", n, si->params, si->from,
              si->prefix[0] ? " with prefix \"" : "", si->prefix, si->prefix[0] ? "\"" : "");
  }
  return 0;
}
