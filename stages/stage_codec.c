/* The codec's release directory; see stage_codec.h. */
#include "stages/stage_codec.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_params.h"
#include "checkpoints/torch_pt.h"
#include "model/codec_model.h"
#include "stages/stage_model.h"

typedef struct {
  vt_params ps;
  bool ready;
  vt_model *m;
} store;

static void store_free(store *s) {
  if (s->m) vt_model_destroy(s->m);
  if (s->ready) vt_params_free(&s->ps);
}

/* The codec of config cfg (where names it in errors) in a CPU store, allocated. */
static int store_open_json(store *s, const json_t *cfg, const char *where, char *err,
                           size_t err_len) {
  memset(s, 0, sizeof *s);
  if (vt_params_init(&s->ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, err_len, "no CPU backend");
    return -1;
  }
  s->ready = true;
  vt_model_opts mo = {0};
  s->m = vt_model_create(vt_model_find("ticodec"), cfg, where, &mo, &s->ps, err, err_len);
  return !s->m || vt_params_alloc(&s->ps, err, err_len) ? -1 : 0;
}

/* The same for the config at cfg_path (a file, or a directory with config.json). */
static int store_open(store *s, const char *cfg_path, char *err, size_t err_len) {
  char where[4200];
  json_t *j = stage_read_json(cfg_path, where, sizeof where, err, err_len);
  if (!j) {
    memset(s, 0, sizeof *s);
    return -1;
  }
  int rc = store_open_json(s, j, where, err, err_len);
  json_decref(j);
  return rc;
}

static int make_dir(const char *dir, char *err, size_t err_len) {
  if (mkdir(dir, 0755) && errno != EEXIST) {
    snprintf(err, err_len, "%s: cannot create: %s", dir, strerror(errno));
    return -1;
  }
  return 0;
}

static int write_json(const vt_model *m, const char *path, char *err, size_t err_len) {
  json_t *j = m->ops->config_json(m);
  int rc = j ? json_dump_file(j, path, JSON_INDENT(2)) : -1;
  json_decref(j);
  if (rc) snprintf(err, err_len, "%s: cannot write", path);
  return rc ? -1 : 0;
}

typedef struct {
  const vt_params *ps;
  vt_param **sel;
} produce_ctx;

static const void *produce(void *arg, int i, void *scratch, char *err, size_t err_len) {
  produce_ctx *c = arg;
  return vt_param_read_f32(c->ps, &c->sel[i]->t, scratch, err, err_len) ? NULL : scratch;
}

int stage_codec_export(const char *src, const char *out_dir, int *n_tensors, char *err,
                       size_t err_len) {
  store s;
  int rc = -1, n = 0;
  st_entry *ts = NULL;
  vt_param **sel = NULL;
  char path[4200];
  if (store_open(&s, src, err, err_len) || st_load_params_path(&s.ps, src, 0, err, err_len) ||
      make_dir(out_dir, err, err_len))
    goto done;
  ts = calloc((size_t)s.ps.n, sizeof *ts);
  sel = calloc((size_t)s.ps.n, sizeof *sel);
  if (!ts || !sel) {
    snprintf(err, err_len, "out of memory");
    goto done;
  }
  for (int i = 0; i < s.ps.n; i++) {
    vt_param *p = s.ps.items[i];
    if (!codec_model_release_param(p->name)) continue;
    st_entry *e = &ts[n];
    e->name = p->name;
    e->dtype = VT_F32;
    e->ndim = p->t.ndim;
    for (int d = 0; d < p->t.ndim; d++) e->shape[d] = p->t.shape[d];
    sel[n++] = p;
  }
  snprintf(path, sizeof path, "%s/model.json", out_dir);
  if (write_json(s.m, path, err, err_len)) goto done;
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  produce_ctx pc = {&s.ps, sel};
  static const st_kv meta[] = {{"format", "pt"}};
  if (st_write_fn(path, ts, n, meta, 1, produce, &pc, err, err_len)) goto done;
  if (n_tensors) *n_tensors = n;
  rc = 0;
done:
  free(ts);
  free(sel);
  store_free(&s);
  return rc;
}

static bool select_release(const vt_param *p, void *arg) {
  (void)arg;
  return codec_model_release_param(p->name);
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

json_t *stage_codec_read_config(const char *path, char *err, size_t err_len) {
  json_t *c = stage_read_json(path, NULL, 0, err, err_len);
  if (c && !json_object_get(c, "model_type"))
    json_object_set_new(c, "model_type", json_string("ticodec"));
  return c;
}

bool stage_codec_torch_tensor(const char *name, void *arg) {
  (void)arg;
  return codec_model_release_param(name) && !ends_with(name, ".num_batches_tracked");
}

/* Where an import of src reads: the model.json (json) and the weights (w: a safetensors
 * directory, index or file, or a torch pickle when *torch). */
static int import_paths(const char *src, char *json, char *w, size_t len, bool *torch, char *err,
                        size_t err_len) {
  struct stat sb;
  if (stat(src, &sb)) {
    snprintf(err, err_len, "%s: %s", src, strerror(errno));
    return -1;
  }
  char dir[4200], p[4300];
  const char *file;
  if (S_ISDIR(sb.st_mode)) {
    snprintf(dir, sizeof dir, "%s", src);
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", src);
    bool st = exists(p);
    snprintf(p, sizeof p, "%s/model.safetensors", src);
    st = st || exists(p);
    *torch = !st;
    file = st ? "model.safetensors" : "final.pt";
    snprintf(w, len, st ? "%s" : "%s/final.pt", src);
    if (!st && !exists(w)) {
      snprintf(err, err_len,
               "%s: no model.safetensors and no final.pt (the codec's weights: our export or "
               "the release's torch pickle)",
               src);
      return -1;
    }
  } else {
    const char *slash = strrchr(src, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - src) : 1, slash ? src : ".");
    file = slash ? slash + 1 : src;
    *torch = !ends_with(src, ".safetensors") && !ends_with(src, ".safetensors.index.json");
    snprintf(w, len, "%s", src);
  }
  snprintf(json, len, "%s/model.json", dir);
  if (!exists(json)) {
    snprintf(err, err_len, "%s: %s without model.json (the codec's sizes)", dir, file);
    return -1;
  }
  return 0;
}

int stage_codec_import(const char *src, const char *out_dir, uint64_t seed,
                       stage_codec_import_stats *stats, char *err, size_t err_len) {
  stage_codec_import_stats st = {0};
  char cfg_path[4200], path[4300], staged[4300] = "";
  store s = {0};
  json_t *cfg = NULL;
  bool made = false;
  int rc = -1;
  if (import_paths(src, cfg_path, st.src, sizeof st.src, &st.torch, err, err_len) ||
      !(cfg = stage_codec_read_config(cfg_path, err, err_len)) ||
      store_open_json(&s, cfg, cfg_path, err, err_len))
    goto done;
  vt_rng rng;
  vt_rng_seed(&rng, seed);
  if (s.m->ops->init_weights(s.m, &s.ps, &rng, err, err_len)) goto done;
  if (mkdir(out_dir, 0755) == 0)
    made = true;
  else if (make_dir(out_dir, err, err_len))
    goto done;
  const char *from = st.src;
  if (st.torch) { /* the pickle's codec tensors as f32 safetensors, checked as any others */
    torch_pt_file f;
    snprintf(staged, sizeof staged, "%s/.final-pt.safetensors", out_dir);
    if (torch_pt_open(&f, st.src, err, err_len)) goto done;
    int wr = torch_pt_write_safetensors(&f, staged, stage_codec_torch_tensor, NULL, NULL,
                                        &st.n_skipped, err, err_len);
    torch_pt_close(&f);
    if (wr) goto done;
    from = staged;
  }
  st_index ix;
  if (st_index_open(&ix, from, err, err_len)) goto done;
  st_load_sel sel = {.select = select_release, .n_loaded = &st.n_tensors};
  int lr = st_load_params_sel(&s.ps, &ix, &sel, 0, err, err_len);
  st_index_close(&ix);
  if (lr) {
    size_t k = strlen(staged);
    if (st.torch && !strncmp(err, staged, k)) { /* name the pickle, not the staging file */
      char m[4096];
      snprintf(m, sizeof m, "%s", err + k);
      snprintf(err, err_len, "%s%s", st.src, m);
    }
    goto done;
  }
  codec_model_codebook_loaded(s.m, &s.ps); /* a trained codebook: no first-batch k-means */
  snprintf(path, sizeof path, "%s/config.json", out_dir);
  if (write_json(s.m, path, err, err_len)) goto done;
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  if (st_save_params(&s.ps, path, NULL, err, err_len)) goto done;
  if (stats) *stats = st;
  rc = 0;
done:
  if (*staged) unlink(staged);
  if (rc && made) {
    char why[256];
    ckpt_remove_tree(out_dir, why, sizeof why);
  }
  json_decref(cfg);
  store_free(&s);
  return rc;
}
