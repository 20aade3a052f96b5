/* vt_params <-> safetensors by name. Loading checks every parameter first and reports all
 * problems in one message; saving streams each parameter through a scratch buffer (device
 * download and dtype conversion) into st_write_fn / st_write_sharded_fn. */
#include "checkpoints/safetensors_params.h"

#include "autograd/fmt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool float_dtype(vt_dtype t) { return t == VT_F32 || t == VT_BF16 || t == VT_F16; }

static bool same_kind(vt_dtype a, vt_dtype b) { return float_dtype(a) == float_dtype(b); }

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int st_load_params(vt_params *ps, st_index *src, unsigned flags, char *err, size_t err_len) {
  return st_load_params_sel(ps, src, &(st_load_sel){0}, flags, err, err_len);
}

/* The name parameter p has in the source ("" prefix: its own), or NULL when it lacks it. */
static const char *source_name(const vt_param *p, const char *prefix) {
  size_t n = strlen(prefix);
  return strncmp(p->name, prefix, n) == 0 ? p->name + n : NULL;
}

/* The elements [*first, *first + *n) of parameter i this rank holds; false when that is less
 * than the whole (its f32 masters sharded). */
static bool held(const vt_params *ps, int i, int64_t *first, int64_t *n) {
  const vt_param *p = ps->items[i];
  *first = 0, *n = vt_numel(&p->t);
  if (vt_param_has_masters(ps, &p->t)) return true;
  *first = ps->keep_lo[i], *n = ps->keep_hi[i] - ps->keep_lo[i];
  return false;
}

int st_load_params_sel(vt_params *ps, st_index *src, const st_load_sel *sel, unsigned flags,
                       char *err, size_t err_len) {
  const char *prefix = sel->prefix ? sel->prefix : "";
  if (sel->select || *prefix) flags |= ST_LOAD_ALLOW_UNEXPECTED; /* a part of the source */
  int n_loaded = 0;
  if (!ps->allocated) {
    vt_seterr(err, err_len, "%s: the parameter store is not allocated", src->path);
    return -1;
  }
  const st_tensor **found = (const st_tensor **)calloc((size_t)ps->n + 1, sizeof *found);
  const char **pnames = (const char **)malloc(((size_t)ps->n + 1) * sizeof *pnames);
  vt_strbuf missing = {0}, unexpected = {0}, mismatch = {0}, msg = {0};
  int n_missing = 0, n_unexpected = 0, n_mismatch = 0, rc = -1;
  void *stage = NULL;
  if (!found || !pnames) {
    vt_seterr(err, err_len, "%s: out of memory", src->path);
    goto done;
  }
  size_t max_bytes = 0;
  int n_sel = 0;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (sel->select && !sel->select(p, sel->arg)) continue;
    const char *name = source_name(p, prefix);
    const st_tensor *t = NULL;
    if (name) pnames[n_sel++] = name;
    if (name && st_index_get(src, name, &t, err, err_len)) goto done;
    if (!t) {
      vt_strbuf_addf(&missing, "%s%s", n_missing++ ? ", " : "", p->name);
      continue;
    }
    bool shape_ok = t->ndim == p->t.ndim;
    for (int d = 0; shape_ok && d < t->ndim; d++) shape_ok = t->shape[d] == p->t.shape[d];
    if (!shape_ok || !same_kind(t->dtype, p->t.dtype)) {
      char a[160], b[160];
      vt_strbuf_addf(&mismatch, "%s%s (file %s %s, parameter %s %s)", n_mismatch++ ? ", " : "",
                     p->name, st_shape_str(t->ndim, t->shape, a, sizeof a), st_dtype_name(t->dtype),
                     st_shape_str(p->t.ndim, p->t.shape, b, sizeof b), st_dtype_name(p->t.dtype));
      continue;
    }
    found[i] = t;
    size_t nb = vt_nbytes(&p->t);
    if (nb > max_bytes) max_bytes = nb;
  }
  qsort(pnames, (size_t)n_sel, sizeof *pnames, cmp_str);
  for (int i = 0; i < src->n && !(flags & ST_LOAD_ALLOW_UNEXPECTED); i++) {
    const char *name = src->names[i];
    if (!bsearch(&name, pnames, (size_t)n_sel, sizeof *pnames, cmp_str))
      vt_strbuf_addf(&unexpected, "%s%s", n_unexpected++ ? ", " : "", name);
  }
  if (n_missing && (flags & ST_LOAD_ALLOW_MISSING)) n_missing = 0;
  if (n_unexpected && (flags & ST_LOAD_ALLOW_UNEXPECTED)) n_unexpected = 0;
  if (n_missing || n_unexpected || n_mismatch) {
    vt_strbuf_addf(&msg, "%s: does not match the parameters:", src->path);
    if (n_missing) vt_strbuf_addf(&msg, " %d missing: %s;", n_missing, missing.s);
    if (n_unexpected) vt_strbuf_addf(&msg, " %d unexpected: %s;", n_unexpected, unexpected.s);
    if (n_mismatch) vt_strbuf_addf(&msg, " %d mismatched: %s;", n_mismatch, mismatch.s);
    if (msg.s && msg.len) msg.s[--msg.len] = '\0'; /* drop the last ';' */
    vt_strbuf_give(&msg, err, err_len);
    goto done;
  }

  /* NaN or Inf in weights (or moments) would turn every later step into NaN: refused here,
   * still before anything is written */
  for (int i = 0; i < ps->n; i++) {
    int64_t at, a = 0, n = 0;
    if (found[i]) held(ps, i, &a, &n);
    if (found[i] && (at = st_first_nonfinite_range(found[i], a, n)) >= 0) {
      vt_seterr(err, err_len, "%s: %s: element %lld is not finite (NaN or Inf)", src->path,
                found[i]->name, (long long)at);
      goto done;
    }
  }

  bool on_cpu = ps->device.type == VT_DEV_CPU;
  if (!on_cpu && max_bytes) {
    stage = malloc(max_bytes);
    if (!stage) {
      vt_seterr(err, err_len, "%s: out of memory (%zu bytes of staging)", src->path, max_bytes);
      goto done;
    }
  }
  for (int i = 0; i < ps->n; i++) {
    if (!found[i]) continue;
    vt_param *p = ps->items[i];
    size_t nb = vt_nbytes(&p->t);
    char e[512];
    int64_t a, n;
    if (!held(ps, i, &a, &n)) { /* sharded masters: this rank's elements only */
      size_t es = vt_dtype_size(p->t.dtype), fs = vt_dtype_size(found[i]->dtype);
      char *dst = (char *)(on_cpu ? p->t.data : stage) + (size_t)a * es;
      if (st_convert(found[i]->dtype, (const char *)found[i]->data + (size_t)a * fs, p->t.dtype,
                     dst, (size_t)n, e, sizeof e)) {
        vt_seterr(err, err_len, "%s: tensor \"%s\": %s", src->path, found[i]->name, e);
        goto done;
      }
      if (!on_cpu)
        vt_buf_from_host(ps->be, (char *)p->t.data + (size_t)a * es, dst, (size_t)n * es);
      n_loaded++;
      continue;
    }
    if (st_tensor_read(found[i], p->t.dtype, on_cpu ? p->t.data : stage, nb, e, sizeof e)) {
      vt_seterr(err, err_len, "%s: %s", src->path, e);
      goto done;
    }
    if (!on_cpu) vt_buf_from_host(ps->be, p->t.data, stage, nb);
    n_loaded++;
  }
  if (sel->n_loaded) *sel->n_loaded = n_loaded;
  rc = 0;
done:
  free(found);
  free(pnames);
  free(missing.s);
  free(unexpected.s);
  free(mismatch.s);
  free(msg.s);
  free(stage);
  return rc;
}

int st_load_params_path(vt_params *ps, const char *path, unsigned flags, char *err,
                        size_t err_len) {
  st_index ix;
  if (st_index_open(&ix, path, err, err_len)) return -1;
  int rc = st_load_params(ps, &ix, flags, err, err_len);
  st_index_close(&ix);
  return rc;
}

typedef struct {
  const vt_params *ps;
  const st_entry *entries;
  vt_param **params; /* params[i] is written as entries[i] */
  void *host;        /* a device parameter downloaded here before conversion */
  const st_save_opts *o;
} save_ctx;

static const void *produce_param(void *vctx, int i, void *scratch, char *err, size_t err_len) {
  save_ctx *c = (save_ctx *)vctx;
  const vt_param *p = c->params[i];
  const st_entry *e = &c->entries[i];
  size_t nb = vt_nbytes(&p->t);
  const void *src = p->t.data;
  if (!vt_param_has_masters(c->ps, &p->t)) { /* sharded masters: from their owners */
    void *dst = e->dtype == p->t.dtype ? scratch : c->host;
    if (!c->o->fetch) {
      vt_seterr(err, err_len, "parameter \"%s\": this rank holds only a shard of its values",
                p->name);
      return NULL;
    }
    if (c->o->fetch(c->o->fetch_ctx, p, dst, err, err_len)) return NULL;
    if (e->dtype == p->t.dtype) return scratch;
    src = dst;
  } else if (c->ps->device.type != VT_DEV_CPU) {
    void *dst = e->dtype == p->t.dtype ? scratch : c->host;
    vt_buf_to_host(c->ps->be, dst, p->t.data, nb);
    if (e->dtype == p->t.dtype) return scratch;
    src = dst;
  } else if (e->dtype == p->t.dtype) {
    return p->t.data;
  }
  char m[256];
  if (st_convert(p->t.dtype, src, e->dtype, scratch, (size_t)vt_numel(&p->t), m, sizeof m)) {
    vt_seterr(err, err_len, "parameter \"%s\": %s", p->name, m);
    return NULL;
  }
  return scratch;
}

int st_save_params(const vt_params *ps, const char *path, const st_save_opts *opts, char *err,
                   size_t err_len) {
  st_save_opts o = opts ? *opts : (st_save_opts){.dtype = -1};
  if (!ps->allocated) {
    vt_seterr(err, err_len, "%s: the parameter store is not allocated", path);
    return -1;
  }
  if (o.dtype >= VT_DTYPE_COUNT || (o.dtype >= 0 && !float_dtype((vt_dtype)o.dtype))) {
    vt_seterr(err, err_len, "%s: cannot save parameters as dtype %d", path, o.dtype);
    return -1;
  }
  st_entry *es = (st_entry *)calloc((size_t)ps->n + 1, sizeof *es);
  vt_param **params = (vt_param **)calloc((size_t)ps->n + 1, sizeof *params);
  save_ctx c = {.ps = ps, .entries = es, .params = params, .o = &o};
  int rc = -1;
  if (!es || !params) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    goto done;
  }
  size_t max_bytes = 0;
  for (int i = 0; i < ps->n; i++) {
    const vt_param *p = ps->items[i];
    st_entry *e = &es[i];
    e->name = p->name;
    e->dtype = (o.dtype >= 0 && float_dtype(p->t.dtype)) ? (vt_dtype)o.dtype : p->t.dtype;
    e->ndim = p->t.ndim;
    for (int d = 0; d < p->t.ndim; d++) e->shape[d] = p->t.shape[d];
    if (vt_nbytes(&p->t) > max_bytes) max_bytes = vt_nbytes(&p->t);
  }
  if (o.max_shard_bytes == 0) st_sort_entries(es, ps->n);
  for (int i = 0; i < ps->n; i++) params[i] = vt_params_find(ps, es[i].name);
  if ((ps->device.type != VT_DEV_CPU || ps->spans) && max_bytes) {
    c.host = malloc(max_bytes);
    if (!c.host) {
      vt_seterr(err, err_len, "%s: out of memory (%zu bytes of staging)", path, max_bytes);
      goto done;
    }
  }
  if (o.max_shard_bytes == 0)
    rc = st_write_fn(path, es, ps->n, o.meta, o.n_meta, produce_param, &c, err, err_len);
  else
    rc = st_write_sharded_fn(path, es, ps->n, o.max_shard_bytes, o.meta, o.n_meta, produce_param,
                             &c, NULL, err, err_len);
done:
  free(es);
  free(params);
  free(c.host);
  return rc;
}
