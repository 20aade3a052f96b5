/* Global CMVN stats and their JSON; see cmvn.h. */
#include "data/cmvn.h"
#include "autograd/fmt.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmvn_stats_init(cmvn_stats *s, int dim) {
  memset(s, 0, sizeof *s);
  if (dim < 1) return -1;
  s->sum = calloc((size_t)dim, sizeof(double));
  s->sumsq = calloc((size_t)dim, sizeof(double));
  if (!s->sum || !s->sumsq) {
    cmvn_stats_free(s);
    return -1;
  }
  s->dim = dim;
  return 0;
}

void cmvn_stats_free(cmvn_stats *s) {
  if (!s) return;
  free(s->sum);
  free(s->sumsq);
  memset(s, 0, sizeof *s);
}

void cmvn_stats_add(cmvn_stats *s, const float *feats, size_t frames) {
  for (size_t t = 0; t < frames; t++) {
    const float *r = feats + t * (size_t)s->dim;
    for (int d = 0; d < s->dim; d++) {
      double v = r[d];
      s->sum[d] += v;
      s->sumsq[d] += v * v;
    }
  }
  s->frames += (int64_t)frames;
}

int cmvn_stats_merge(cmvn_stats *dst, const cmvn_stats *src) {
  if (dst->dim != src->dim) return -1;
  for (int d = 0; d < dst->dim; d++) {
    dst->sum[d] += src->sum[d];
    dst->sumsq[d] += src->sumsq[d];
  }
  dst->frames += src->frames;
  return 0;
}

/* A JSON array of numbers into a fresh double array; -1 with err otherwise. */
static int read_vec(json_t *root, const char *path, const char *key, double **out, size_t *n,
                    char *err, size_t len) {
  json_t *a = json_object_get(root, key);
  if (!a || !json_is_array(a)) {
    vt_seterr(err, len, "%s: %s: expected an array of numbers, found %s", path, key,
              a ? "another JSON type" : "no such field");
    return -1;
  }
  *n = json_array_size(a);
  *out = malloc((*n ? *n : 1) * sizeof(double));
  if (!*out) {
    vt_seterr(err, len, "%s: out of memory", path);
    return -1;
  }
  for (size_t i = 0; i < *n; i++) {
    json_t *v = json_array_get(a, i);
    if (!json_is_number(v) || !isfinite(json_number_value(v))) {
      vt_seterr(err, len, "%s: %s[%zu]: expected a finite number, found %s", path, key, i,
                json_is_string(v) ? "a string" : "another JSON type");
      free(*out);
      *out = NULL;
      return -1;
    }
    (*out)[i] = json_number_value(v);
  }
  return 0;
}

int cmvn_stats_load(cmvn_stats *s, const char *path, char *err, size_t err_len) {
  memset(s, 0, sizeof *s);
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root) {
    vt_seterr(err, err_len, "%s:%d: expected CMVN JSON: %s", path, je.line, je.text);
    return -1;
  }
  int rc = -1;
  double *mean = NULL, *var = NULL;
  size_t nm = 0, nv = 0;
  if (!json_is_object(root)) {
    vt_seterr(err, err_len, "%s: expected a JSON object with mean_stat, var_stat, frame_num", path);
    goto done;
  }
  if (read_vec(root, path, "mean_stat", &mean, &nm, err, err_len) ||
      read_vec(root, path, "var_stat", &var, &nv, err, err_len))
    goto done;
  if (nm == 0 || nm != nv) {
    vt_seterr(err, err_len, "%s: var_stat: expected %zu values like mean_stat, found %zu", path, nm,
              nv);
    goto done;
  }
  json_t *fn = json_object_get(root, "frame_num");
  if (!fn || !json_is_number(fn) || !(json_number_value(fn) >= 1)) {
    vt_seterr(err, err_len, "%s: frame_num: expected a positive number, found %s", path,
              !fn                  ? "no such field"
              : json_is_number(fn) ? "a value < 1"
                                   : "another JSON type");
    goto done;
  }
  if (nm > 4096 || cmvn_stats_init(s, (int)nm)) {
    vt_seterr(err, err_len, "%s: mean_stat: expected at most 4096 values, found %zu", path, nm);
    goto done;
  }
  memcpy(s->sum, mean, nm * sizeof(double));
  memcpy(s->sumsq, var, nm * sizeof(double));
  s->frames = (int64_t)json_number_value(fn);
  rc = 0;
done:
  free(mean);
  free(var);
  json_decref(root);
  return rc;
}

int cmvn_stats_save(const cmvn_stats *s, const char *path, char *err, size_t err_len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    vt_seterr(err, err_len, "%s: cannot write", tmp);
    return -1;
  }
  /* Written by hand rather than by jansson so the doubles keep all 17 digits. */
  const double *v[2] = {s->sum, s->sumsq};
  const char *key[2] = {"mean_stat", "var_stat"};
  fputc('{', f);
  for (int k = 0; k < 2; k++) {
    fprintf(f, "\"%s\": [", key[k]);
    for (int d = 0; d < s->dim; d++) fprintf(f, d ? ", %.17g" : "%.17g", v[k][d]);
    fprintf(f, "], ");
  }
  fprintf(f, "\"frame_num\": %lld}\n", (long long)s->frames);
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  if (bad || rename(tmp, path) != 0) {
    remove(tmp);
    vt_seterr(err, err_len, "%s: write failed", path);
    return -1;
  }
  return 0;
}

int cmvn_from_stats(cmvn *c, const cmvn_stats *s, char *err, size_t err_len) {
  memset(c, 0, sizeof *c);
  if (s->frames < 1 || s->dim < 1) {
    vt_seterr(err, err_len, "cmvn: expected stats of at least one frame, found %lld frames",
              (long long)s->frames);
    return -1;
  }
  c->mean = malloc(sizeof(float) * (size_t)s->dim);
  c->istd = malloc(sizeof(float) * (size_t)s->dim);
  if (!c->mean || !c->istd) {
    cmvn_free(c);
    vt_seterr(err, err_len, "cmvn: out of memory");
    return -1;
  }
  c->dim = s->dim;
  const double n = (double)s->frames;
  for (int d = 0; d < s->dim; d++) {
    double m = s->sum[d] / n, var = s->sumsq[d] / n - m * m;
    if (var < 1e-20) var = 1e-20;
    c->mean[d] = (float)m;
    c->istd[d] = (float)(1.0 / sqrt(var));
  }
  return 0;
}

void cmvn_free(cmvn *c) {
  if (!c) return;
  free(c->mean);
  free(c->istd);
  memset(c, 0, sizeof *c);
}

void cmvn_apply(const cmvn *c, float *feats, size_t frames) {
  for (size_t t = 0; t < frames; t++) {
    float *r = feats + t * (size_t)c->dim;
    for (int d = 0; d < c->dim; d++) r[d] = (r[d] - c->mean[d]) * c->istd[d];
  }
}
