/* The codec's release directory; see stage_codec.h. */
#include "stages/stage_codec.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/safetensors_params.h"
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

/* The codec of the config at cfg_path in a CPU store, allocated. */
static int store_open(store *s, const char *cfg_path, char *err, size_t err_len) {
  memset(s, 0, sizeof *s);
  if (vt_params_init(&s->ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, err_len, "no CPU backend");
    return -1;
  }
  s->ready = true;
  s->m = stage_model_open("ticodec", cfg_path, NULL, &s->ps, err, err_len);
  return !s->m || vt_params_alloc(&s->ps, err, err_len) ? -1 : 0;
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

int stage_codec_import(const char *src, const char *out_dir, uint64_t seed, int *n_tensors,
                       char *err, size_t err_len) {
  char cfg[4200], path[4200];
  snprintf(cfg, sizeof cfg, "%s/model.json", src);
  store s;
  int rc = -1, loaded = 0;
  if (store_open(&s, cfg, err, err_len)) goto done;
  vt_rng rng;
  vt_rng_seed(&rng, seed);
  if (s.m->ops->init_weights(s.m, &s.ps, &rng, err, err_len)) goto done;
  st_index ix;
  if (st_index_open(&ix, src, err, err_len)) goto done;
  st_load_sel sel = {.select = select_release, .n_loaded = &loaded};
  int lr = st_load_params_sel(&s.ps, &ix, &sel, 0, err, err_len);
  st_index_close(&ix);
  if (lr || make_dir(out_dir, err, err_len)) goto done;
  codec_model_codebook_loaded(s.m, &s.ps); /* a trained codebook: no first-batch k-means */
  snprintf(path, sizeof path, "%s/config.json", out_dir);
  if (write_json(s.m, path, err, err_len)) goto done;
  snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
  if (st_save_params(&s.ps, path, NULL, err, err_len)) goto done;
  if (n_tensors) *n_tensors = loaded;
  rc = 0;
done:
  store_free(&s);
  return rc;
}
