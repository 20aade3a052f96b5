/* Helpers of the packing tests (tests/test_pack_images.c, test_pack_audio.c), which train
 * packed rows of media samples in a temporary directory: a file writer, the samples' shard,
 * one SGD step packed
 * or unpacked, the comparison of the two steps' gradients, and the max_len check (a sample
 * whose media alone overflows a row is skipped and counted, never cut through its media
 * positions, while a text-only sample is cut and packed alone). */
#ifndef VT_TEST_PACK_FX_H
#define VT_TEST_PACK_FX_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "data/shard.h"
#include "stages/stage_config.h"
#include "tests/check.h"
#include "train/trainer.h"

static void pack_fx_write_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
}

/* The shard of the dataset the stages train on, DIR/data/shard-00000.h5 (folders made):
 * open, add each sample, close. Each exits the test on an error (no data, no test). */
static shard_writer *pack_fx_shard_open(const char *dir) {
  char path[600], err[512];
  shard_writer *w = NULL;
  snprintf(path, sizeof path, "%s/data", dir);
  int rc = ckpt_mkdirs(path, err, sizeof err);
  snprintf(path, sizeof path, "%s/data/shard-00000.h5", dir);
  if (rc || shard_writer_open(&w, path, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  return w;
}

static void pack_fx_shard_add(shard_writer *w, const shard_sample_in *in) {
  char err[512];
  if (shard_write_sample(w, in, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
}

static void pack_fx_shard_close(shard_writer *w) {
  char err[512];
  if (shard_writer_close(w, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
}

/* What a packing test trains on: the dataset (its shards in DIR/data) as the mixture names
 * it, the rows' max_len, extra keys of the train map (", losses: {...}" or ""), and the
 * samples of an epoch. */
typedef struct {
  const char *dataset;
  int max_len;
  const char *train_extra;
  int64_t samples;
} pack_fx_data;

/* One SGD step (lr 1, no momentum, decay or clipping: the update is the mean gradient) of
 * stage dir/name.yaml over dir's model.json and data (mixture name-mix.yaml, packed or not);
 * dir/name-initial.safetensors gets the initial weights. Checks that nothing was skipped or
 * cut and that the step drew the epoch's samples. Returns the step's loss (NAN on failure). */
static double pack_fx_step(const char *dir, const pack_fx_data *data, const char *name, bool pack,
                           int64_t batch) {
  char text[2048], path[600], err[2048];
  snprintf(text, sizeof text, "seed: 3\npack: %s\ndatasets:\n  - {name: %s, shards: data}\n",
           pack ? "true" : "false", data->dataset);
  snprintf(path, sizeof path, "%s-mix.yaml", name);
  pack_fx_write_file(dir, path, text);
  snprintf(text, sizeof text,
           "model: {config: model.json}\n"
           "data: {mixture: %s-mix.yaml, max_len: %d}\n"
           "train: {steps: 1, batch_size: %lld, seed: 5, optimizer: sgd, lr: 1.0, momentum: 0.0,\n"
           "        weight_decay: 0.0, max_grad_norm: 0.0%s}\n"
           "schedule: {kind: constant}\n"
           "output: {dir: %s, log_every: 0}\n",
           name, data->max_len, (long long)batch, data->train_extra, name);
  snprintf(path, sizeof path, "%s.yaml", name);
  pack_fx_write_file(dir, path, text);
  static stage_cfg cfg;
  snprintf(path, sizeof path, "%s/%s.yaml", dir, name);
  if (stage_config_load(&cfg, path, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return NAN;
  }
  char init[600];
  snprintf(init, sizeof init, "%s/%s-initial.safetensors", dir, name);
  vt_trainer_opts o = {.cfg = &cfg, .save_initial = init};
  vt_train_result r;
  if (vt_train(&o, &r, err, sizeof err)) {
    CHECK_MSG(0, "%s: %s", name, err);
    return NAN;
  }
  CHECK_MSG(r.skipped_samples == 0 && r.truncated_samples == 0, "%s: %lld skipped, %lld cut", name,
            (long long)r.skipped_samples, (long long)r.truncated_samples);
  /* both runs drew the samples of the epoch */
  snprintf(path, sizeof path, "%s/%s/samples.json", dir, name);
  char *s = ckpt_read_text(path, err, sizeof err);
  json_t *j = s ? json_loads(s, 0, NULL) : NULL;
  json_t *d = json_array_get(json_object_get(j, "datasets"), 0);
  CHECK_MSG(json_integer_value(json_object_get(d, "drawn")) == data->samples,
            "%s drew %lld samples", name,
            (long long)json_integer_value(json_object_get(d, "drawn")));
  json_decref(j);
  free(s);
  return r.first_loss;
}

/* The initial and the step-1 weights of step name. */
static int pack_fx_open_pair(const char *dir, const char *name, st_file *w0, st_file *w1) {
  char a[600], b[600], err[512];
  snprintf(a, sizeof a, "%s/%s-initial.safetensors", dir, name);
  snprintf(b, sizeof b, "%s/%s/checkpoints/step-00000001/model.safetensors", dir, name);
  if (st_file_open(w0, a, err, sizeof err) || st_file_open(w1, b, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return -1;
  }
  return 0;
}

/* The gradient of tensor name (initial minus updated weights: SGD, lr 1), and the weights'
 * magnitudes (the update is rounded at them) into *mag when mag is not NULL. */
static float *pack_fx_grad_of(const st_file *w0, const st_file *w1, const char *name, int64_t *n,
                              float **mag) {
  const st_tensor *a = st_find(w0, name), *b = st_find(w1, name);
  if (!a || !b || a->numel != b->numel || a->dtype != VT_F32) return NULL;
  float *g = malloc(sizeof(float) * (size_t)a->numel),
        *x = malloc(sizeof(float) * (size_t)a->numel);
  char err[256];
  st_tensor_read(a, VT_F32, g, sizeof(float) * (size_t)a->numel, err, sizeof err);
  st_tensor_read(b, VT_F32, x, sizeof(float) * (size_t)a->numel, err, sizeof err);
  for (int64_t i = 0; i < a->numel; i++) {
    float w = g[i];
    g[i] -= x[i];
    x[i] = fabsf(w) + fabsf(x[i]);
  }
  if (mag)
    *mag = x;
  else
    free(x);
  *n = a->numel;
  return g;
}

/* The steps "packed" and "unpacked" start from the same weights and every tensor's gradient
 * agrees: f32 sums in another order (one row of three samples against three rows, the media
 * of a batch in another order through their encoder) within 1e-5 of the tensor's largest
 * gradient, plus w - g rounded at the weights' magnitude in each run (half an ulp each, 2^-24
 * relative). moved[k]: tensors whose names start with prefixes[k] (NULL-ended) and whose
 * largest gradient exceeds 1e-6; *worst: the largest difference beyond the update's rounding
 * over the tensor's largest gradient. Returns the tensors compared (all of them, more than 30,
 * else a failed check). */
static int pack_fx_grads_agree(const char *dir, const char *const *prefixes, int *moved,
                               double *worst) {
  st_file p0, p1, u0, u1;
  *worst = 0;
  for (int k = 0; prefixes[k]; k++) moved[k] = 0;
  if (pack_fx_open_pair(dir, "packed", &p0, &p1) || pack_fx_open_pair(dir, "unpacked", &u0, &u1))
    return 0;
  int compared = 0, bad = 0;
  for (int k = 0; k < u0.n; k++) {
    const char *name = u0.tensors[k].name;
    const st_tensor *pt = st_find(&p0, name);
    CHECK_MSG(pt && u0.tensors[k].nbytes == pt->nbytes &&
                  !memcmp(u0.tensors[k].data, pt->data, u0.tensors[k].nbytes),
              "%s: the two runs start from different weights", name);
    int64_t n = 0, m = 0;
    float *mag = NULL;
    float *gu = pack_fx_grad_of(&u0, &u1, name, &n, &mag),
          *gp = pack_fx_grad_of(&p0, &p1, name, &m, NULL);
    if (!gu || !gp || n != m) {
      CHECK_MSG(0, "%s: not comparable", name);
      free(gu), free(gp), free(mag);
      continue;
    }
    double scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(gu[i]));
    for (int64_t i = 0; i < n; i++) {
      double d = fabs(gp[i] - gu[i]), tol = 1e-5 * scale + 1.2e-7 * mag[i] + 1e-12;
      if (d > tol && bad++ < 5)
        fprintf(stderr, "%s[%lld]: packed %g, unpacked %g\n", name, (long long)i, gp[i], gu[i]);
      if (scale > 0) *worst = fmax(*worst, fmax(d - 1.2e-7 * mag[i], 0) / scale);
    }
    for (int j = 0; prefixes[j]; j++)
      if (!strncmp(name, prefixes[j], strlen(prefixes[j])) && scale > 1e-6) moved[j]++;
    compared++;
    free(gu), free(gp), free(mag);
  }
  CHECK_MSG(bad == 0, "%d gradient elements differ", bad);
  CHECK_MSG(compared == u0.n && compared > 30, "%d of %d tensors compared", compared, u0.n);
  st_file_close(&p0), st_file_close(&p1), st_file_close(&u0), st_file_close(&u1);
  return compared;
}

/* One step of one row at max_len over dir's packed-mix.yaml and model.json, which hold exactly
 * one text-only sample longer than max_len (and media samples that overflow it once expanded):
 * the step draws until that sample, so samples.json counts the skipped ones plus one. */
static void pack_fx_too_long(const char *dir, int max_len, const char *media) {
  char text[1024], path[600], err[2048];
  snprintf(text, sizeof text,
           "model: {config: model.json}\n"
           "data: {mixture: packed-mix.yaml, max_len: %d}\n"
           "train: {steps: 1, batch_size: 1, seed: 5, lr: 1.0e-3}\n"
           "output: {dir: short, log_every: 0}\n",
           max_len);
  pack_fx_write_file(dir, "short.yaml", text);
  static stage_cfg cfg;
  snprintf(path, sizeof path, "%s/short.yaml", dir);
  vt_trainer_opts o = {.cfg = &cfg};
  vt_train_result r;
  if (stage_config_load(&cfg, path, err, sizeof err) || vt_train(&o, &r, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return;
  }
  snprintf(path, sizeof path, "%s/short/samples.json", dir);
  char *s = ckpt_read_text(path, err, sizeof err);
  json_t *j = s ? json_loads(s, 0, NULL) : NULL;
  int64_t drawn = json_integer_value(
      json_object_get(json_array_get(json_object_get(j, "datasets"), 0), "drawn"));
  json_decref(j);
  free(s);
  CHECK_MSG(r.truncated_samples == 1 && drawn == r.skipped_samples + 1 && isfinite(r.last_loss),
            "max_len %d: %lld cut (want 1), %lld skipped, %lld drawn (want skipped + 1)", max_len,
            (long long)r.truncated_samples, (long long)r.skipped_samples, (long long)drawn);
  printf("max_len %d: %lld %s samples skipped (not cut), the text-only one cut and packed alone\n",
         max_len, (long long)r.skipped_samples, media);
}

#endif
