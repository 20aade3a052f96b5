/* The model-neutral half of the VITA-1.5 release layout; see release.h. */
#include "checkpoints/release.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_index.h"
#include "checkpoints/safetensors_write.h"

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static bool path_join(char *out, size_t len, const char *a, const char *b) {
  return snprintf(out, len, "%s/%s", a, b) < (int)len;
}

bool release_globs_match(const char *globs, const char *name) {
  char buf[1024];
  const char *p = globs;
  while (p && *p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    while (n && *p == ' ') p++, n--;
    while (n && p[n - 1] == ' ') n--;
    if (n && n < sizeof buf) {
      memcpy(buf, p, n);
      buf[n] = '\0';
      if (!fnmatch(buf, name, 0)) return true;
    }
    p = e ? e + 1 : NULL;
  }
  return false;
}

json_t *release_read_json(const char *path, char *err, size_t err_len) {
  char *text = ckpt_read_text(path, err, err_len);
  if (!text) return NULL;
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  free(text);
  if (!j) vt_seterr(err, err_len, "%s: line %d: %s", path, je.line, je.text);
  return j;
}

/* One weight set: dir holds config.json (a checkpoint's manifest verified). */
static int add_source(release_sources *s, const char *dir, const char *stage, char *err,
                      size_t err_len) {
  if (s->n >= RELEASE_MAX_SRC) {
    vt_seterr(err, err_len, "%s: more than %d weight sets", dir, RELEASE_MAX_SRC);
    return -1;
  }
  char p[RELEASE_PATH + 32];
  release_src *r = &s->src[s->n];
  memset(r, 0, sizeof *r);
  if (snprintf(r->dir, sizeof r->dir, "%s", dir) >= (int)sizeof r->dir) {
    vt_seterr(err, err_len, "%s: path too long", dir);
    return -1;
  }
  snprintf(p, sizeof p, "%s/COMPLETE", dir);
  bool ckpt = is_file(p);
  snprintf(p, sizeof p, "%s/trainer.json", dir);
  ckpt |= is_file(p);
  if (ckpt && ckpt_verify(dir, err, err_len)) return -1;
  snprintf(p, sizeof p, "%s/config.json", dir);
  json_t *c = release_read_json(p, err, err_len);
  if (!c) return -1;
  const char *mt = json_string_value(json_object_get(c, "model_type"));
  if (!mt) {
    vt_seterr(err, err_len, "%s: field \"model_type\": expected a string", p);
    json_decref(c);
    return -1;
  }
  snprintf(r->model_type, sizeof r->model_type, "%s", mt);
  json_decref(c);
  snprintf(r->stage, sizeof r->stage, "%s", stage);
  snprintf(p, sizeof p, "%s/optim.safetensors", dir);
  r->has_optim = is_file(p);
  s->n++;
  return 0;
}

/* A run directory: its newest complete checkpoint. 1 added, 0 none there, -1 error. */
static int add_run(release_sources *s, const char *run, const char *stage, char *err,
                   size_t err_len) {
  char root[RELEASE_PATH + 16], ck[RELEASE_PATH];
  snprintf(root, sizeof root, "%s/checkpoints", run);
  if (!is_dir(root)) return 0;
  int64_t step;
  int found = ckpt_find_latest(root, ck, sizeof ck, &step, err, err_len);
  if (found <= 0) return found;
  return add_source(s, ck, stage, err, err_len) ? -1 : 1;
}

typedef struct {
  long num;
  char name[256];
} stage_dir;

static int cmp_stage(const void *a, const void *b) {
  const stage_dir *x = a, *y = b;
  if (x->num != y->num) return x->num < y->num ? -1 : 1;
  return strcmp(x->name, y->name);
}

int release_find_sources(const char *path, release_sources *out, char *err, size_t err_len) {
  memset(out, 0, sizeof *out);
  if (!is_dir(path)) {
    vt_seterr(err, err_len, "%s: not a directory", path);
    return -1;
  }
  char p[RELEASE_PATH + 32];
  const char *base = strrchr(path, '/');
  base = base && base[1] ? base + 1 : path;
  snprintf(p, sizeof p, "%s/config.json", path);
  if (is_file(p)) return add_source(out, path, base, err, err_len);
  int r = add_run(out, path, base, err, err_len);
  if (r) return r < 0 ? -1 : 0;
  /* a curriculum: stage run directories <n>-<stage> */
  DIR *d = opendir(path);
  if (!d) {
    vt_seterr(err, err_len, "%s: cannot list: %s", path, strerror(errno));
    return -1;
  }
  stage_dir sd[RELEASE_MAX_SRC];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof sd[0].name) continue;
    if (!path_join(p, sizeof p, path, e->d_name) || !is_dir(p)) continue;
    char root[RELEASE_PATH + 300];
    snprintf(root, sizeof root, "%s/checkpoints", p);
    if (!is_dir(root)) continue;
    if (n == RELEASE_MAX_SRC) {
      closedir(d);
      vt_seterr(err, err_len, "%s: more than %d stage directories", path, RELEASE_MAX_SRC);
      return -1;
    }
    char *end;
    long num = strtol(e->d_name, &end, 10);
    sd[n].num = end == e->d_name ? LONG_MAX : num;
    snprintf(sd[n].name, sizeof sd[n].name, "%s", e->d_name);
    n++;
  }
  closedir(d);
  qsort(sd, (size_t)n, sizeof *sd, cmp_stage);
  for (int i = 0; i < n; i++) {
    path_join(p, sizeof p, path, sd[i].name);
    if (add_run(out, p, sd[i].name, err, err_len) < 0) return -1;
  }
  if (!out->n) {
    vt_seterr(err, err_len,
              "%s: no weights: expected config.json + weights, a run directory with "
              "checkpoints/, or a curriculum run with <n>-<stage>/checkpoints/",
              path);
    return -1;
  }
  return 0;
}

static bool type_in(const char *t, const char *const *types) {
  for (int i = 0; types && types[i]; i++)
    if (!strcmp(t, types[i])) return true;
  return false;
}

const release_src *release_last_of(const release_sources *s, const char *const *types) {
  for (int i = s->n - 1; i >= 0; i--)
    if (type_in(s->src[i].model_type, types)) return &s->src[i];
  return NULL;
}

/* The parameter an optimizer state tensor belongs to: "[PHASE.]exp_avg.NAME" and friends. */
static const char *state_param(const char *t) {
  static const char *const kinds[] = {"exp_avg_sq.", "exp_avg.", "momentum_buffer.", NULL};
  for (int k = 0; kinds[k]; k++) {
    const char *h = strstr(t, kinds[k]);
    if (h && (h == t || h[-1] == '.')) return h + strlen(kinds[k]);
  }
  return NULL;
}

int release_trained(const release_sources *s, const char *const *types, const char *globs,
                    char *err, size_t err_len) {
  for (int i = 0; i < s->n; i++) {
    const release_src *r = &s->src[i];
    if (!type_in(r->model_type, types)) continue;
    if (!r->has_optim) return 1;
    char p[RELEASE_PATH + 32];
    snprintf(p, sizeof p, "%s/optim.safetensors", r->dir);
    st_file f;
    if (st_file_open(&f, p, err, err_len)) return -1;
    bool hit = false;
    for (int k = 0; k < f.n && !hit; k++) {
      const char *name = state_param(f.tensors[k].name);
      hit = name && release_globs_match(globs, name);
    }
    st_file_close(&f);
    if (hit) return 1;
  }
  return 0;
}

static int make_parents(const char *path, char *err, size_t err_len) {
  char dir[RELEASE_PATH];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir) {
    vt_seterr(err, err_len, "%s: path too long", path);
    return -1;
  }
  char *slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  return ckpt_mkdirs(dir, err, err_len);
}

int release_write_text(const char *path, const char *text, char *err, size_t err_len) {
  if (make_parents(path, err, err_len)) return -1;
  return ckpt_write_text(path, text, err, err_len);
}

int release_write_json(const char *path, const json_t *j, char *err, size_t err_len) {
  char *t = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
  if (!t) {
    vt_seterr(err, err_len, "%s: cannot serialise the JSON", path);
    return -1;
  }
  size_t n = strlen(t);
  char *nl = malloc(n + 2);
  if (!nl) {
    free(t);
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  memcpy(nl, t, n);
  nl[n] = '\n', nl[n + 1] = '\0';
  free(t);
  int rc = release_write_text(path, nl, err, err_len);
  free(nl);
  return rc;
}

int release_write_cmvn(const char *path, const float *mean, const float *istd, int n, char *err,
                       size_t err_len) {
  json_t *ms = json_array(), *vs = json_array();
  for (int i = 0; i < n; i++) {
    if (!(istd[i] > 0) || !isfinite(istd[i]) || !isfinite(mean[i])) {
      json_decref(ms), json_decref(vs);
      vt_seterr(err, err_len, "%s: CMVN bin %d: expected a finite mean and istd > 0, found %g, %g",
                path, i, (double)mean[i], (double)istd[i]);
      return -1;
    }
    double m = mean[i], var = 1.0 / ((double)istd[i] * (double)istd[i]);
    json_array_append_new(ms, json_real(m));
    json_array_append_new(vs, json_real(var + m * m));
  }
  json_t *o =
      json_pack("{s:o, s:o, s:I}", "mean_stat", ms, "var_stat", vs, "frame_num", (json_int_t)1);
  int rc = release_write_json(path, o, err, err_len);
  json_decref(o);
  return rc;
}

int release_write_model_json(const char *path, long long idim, long long odim, const json_t *args,
                             char *err, size_t err_len) {
  json_t *a = json_pack("[I, I, O]", (json_int_t)idim, (json_int_t)odim, (json_t *)args);
  int rc = release_write_json(path, a, err, err_len);
  json_decref(a);
  return rc;
}

typedef struct {
  st_index *ix;
  char **names; /* source names, parallel to the entries */
  const st_entry *es;
  const char *src;
} copy_ctx;

static const void *copy_produce(void *vctx, int i, void *scratch, char *err, size_t err_len) {
  copy_ctx *c = vctx;
  const st_tensor *t;
  if (st_index_get(c->ix, c->names[i], &t, err, err_len)) return NULL;
  if (!t) {
    vt_seterr(err, err_len, "%s: tensor \"%s\" disappeared", c->src, c->names[i]);
    return NULL;
  }
  const void *view = st_tensor_data(t, c->es[i].dtype);
  if (view) return view;
  if (st_tensor_read(t, c->es[i].dtype, scratch, (size_t)t->numel * vt_dtype_size(c->es[i].dtype),
                     err, err_len))
    return NULL;
  return scratch;
}

int release_copy_renamed(const char *src, const char *prefix, const char *out_file, int dtype,
                         int *n_out, char *err, size_t err_len) {
  st_index ix;
  if (st_index_open(&ix, src, err, err_len)) return -1;
  size_t pl = strlen(prefix);
  st_entry *es = calloc((size_t)ix.n + 1, sizeof *es);
  char **names = calloc((size_t)ix.n + 1, sizeof *names);
  int n = 0, rc = -1;
  if (!es || !names) {
    vt_seterr(err, err_len, "out of memory");
    goto done;
  }
  for (int i = 0; i < ix.n; i++) {
    if (strncmp(ix.names[i], prefix, pl) || !ix.names[i][pl]) continue;
    const st_tensor *t;
    if (st_index_get(&ix, ix.names[i], &t, err, err_len)) goto done;
    es[n] = (st_entry){.name = ix.names[i] + pl, .dtype = (vt_dtype)dtype, .ndim = t->ndim};
    memcpy(es[n].shape, t->shape, sizeof es[n].shape);
    names[n++] = ix.names[i];
  }
  if (!n) {
    vt_seterr(err, err_len, "%s: no tensor named %s*", src, prefix);
    goto done;
  }
  if (make_parents(out_file, err, err_len)) goto done;
  copy_ctx c = {&ix, names, es, src};
  const st_kv meta[] = {{"format", "pt"}};
  rc = st_write_fn(out_file, es, n, meta, 1, copy_produce, &c, err, err_len);
  if (!rc && n_out) *n_out = n;
done:
  free(es);
  free(names);
  st_index_close(&ix);
  return rc;
}

int release_read_f32(const char *src, const char *name, float *out, int64_t n, char *err,
                     size_t err_len) {
  st_index ix;
  if (st_index_open(&ix, src, err, err_len)) return -1;
  const st_tensor *t;
  int rc = st_index_get(&ix, name, &t, err, err_len);
  if (!rc && (!t || t->numel != n)) {
    vt_seterr(err, err_len, "%s: tensor \"%s\": expected %lld values, found %s", src, name,
              (long long)n, t ? "another count" : "no such tensor");
    rc = -1;
  }
  if (!rc) rc = st_tensor_read(t, VT_F32, out, sizeof(float) * (size_t)n, err, err_len);
  st_index_close(&ix);
  return rc;
}
