/* Helpers of the PyTorch parity tests; see parity.h. */
#include "tests/parity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/qwen2_config.h"
#include "tests/testutil.h"

const char *parity_path(const char *dir, const char *name) {
  static char path[1024];
  const char *root = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/%s/%s", root ? root : "tests/fixtures", dir, name);
  return path;
}

bool parity_open(st_file *f, const char *dir, const char *name) {
  char err[512];
  bool ok = st_file_open(f, parity_path(dir, name), err, sizeof err) == 0;
  CHECK_MSG(ok, "%s", err);
  return ok;
}

void *parity_read(const st_file *f, const char *name, vt_dtype dtype, int64_t *numel) {
  const st_tensor *t = st_find(f, name);
  if (!t) {
    fprintf(stderr, "reference has no tensor %s\n", name);
    exit(1);
  }
  void *buf = malloc((size_t)t->numel * 4);
  char err[256];
  if (st_tensor_read(t, dtype, buf, (size_t)t->numel * 4, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  if (numel) *numel = t->numel;
  return buf;
}

double parity_max_abs(const float *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

double parity_max_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

int parity_load_weights(vt_params *ps, const char *dir, const char *const *files) {
  enum { MAX_FILES = 4 };
  st_file w[MAX_FILES];
  int n_files = 0, tensors = 0;
  char err[512];
  for (; files[n_files] && n_files < MAX_FILES; n_files++) {
    if (!parity_open(&w[n_files], dir, files[n_files])) {
      for (int k = 0; k < n_files; k++) st_file_close(&w[k]);
      return -1;
    }
    tensors += w[n_files].n;
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    const st_tensor *t = NULL;
    for (int k = 0; k < n_files && !t; k++) t = st_find(&w[k], p->name);
    CHECK_MSG(t && t->numel == vt_numel(&p->t), "weight %s missing or misshaped", p->name);
    if (!t || t->numel != vt_numel(&p->t)) continue;
    float *host = malloc(sizeof(float) * (size_t)t->numel);
    CHECK_MSG(st_tensor_read(t, VT_F32, host, sizeof(float) * (size_t)t->numel, err, sizeof err) ==
                  0,
              "%s", err);
    CHECK_MSG(vt_param_write_f32(ps, &p->t, host, err, sizeof err) == 0, "%s", err);
    free(host);
  }
  for (int k = 0; k < n_files; k++) st_file_close(&w[k]);
  return tensors;
}

int parity_check_grads(vt_ctx *ctx, const vt_params *ps, const st_file *ref, const char *prefix,
                       double rel) {
  int compared = 0;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, p->name);
    if (!p->trainable || !st_find(ref, key)) continue;
    int64_t ng;
    float *want = parity_read(ref, key, VT_F32, &ng);
    float *g = malloc(sizeof(float) * (size_t)ng);
    vt_grad_to_host(ctx, &p->t, g);
    CHECK_CLOSE(key, g, want, (long)ng, rel * parity_max_abs(want, ng), rel);
    compared++;
    free(g);
    free(want);
  }
  return compared;
}

qwen2_cfg parity_qwen2_cfg(void) {
  qwen2_cfg cfg;
  char err[512];
  CHECK_MSG(hf_qwen2_config_read(parity_path(PARITY_QWEN2, "config.json"), &cfg, err, sizeof err) ==
                0,
            "%s", err);
  return cfg;
}

void parity_qwen2_init(qwen2 *m, vt_params *ps, const qwen2_cfg *cfg) {
  char err[512];
  vt_params_init(ps, (vt_device){VT_DEV_CPU, 0});
  CHECK_MSG(qwen2_init(m, ps, cfg, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(vt_params_alloc(ps, err, sizeof err) == 0, "%s", err);
}

parity_qwen2_batch parity_qwen2_batch_read(const st_file *ref) {
  parity_qwen2_batch bt = {.ids = parity_read(ref, "input_ids", VT_I32, NULL),
                           .labels = parity_read(ref, "labels", VT_I32, NULL)};
  const st_tensor *ti = st_find(ref, "input_ids");
  bt.b = ti->shape[0], bt.t = ti->shape[1];
  return bt;
}

void parity_qwen2_batch_free(parity_qwen2_batch *bt) {
  free(bt->ids);
  free(bt->labels);
}

float *parity_qwen2_logits(qwen2 *m, vt_ctx *ctx, const parity_qwen2_batch *bt) {
  vt_set_grad_enabled(ctx, false);
  vt_tensor *tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){bt->b, bt->t}, bt->ids);
  vt_tensor *pos = vt_new(ctx, VT_I32, 1, (int64_t[]){bt->t});
  for (int64_t i = 0; i < bt->t; i++) ((int32_t *)pos->data)[i] = (int32_t)i;
  vt_tensor *logits = qwen2_logits(
      m, ctx, qwen2_forward(m, ctx, qwen2_embed(m, ctx, tid), &(qwen2_layout){.pos = pos}));
  if (vt_ctx_failed(ctx)) { /* nothing to compare */
    fprintf(stderr, "qwen2 forward on the fixture batch: %s\n", vt_ctx_error(ctx));
    exit(1);
  }
  float *out = malloc(vt_nbytes(logits));
  vt_to_host(ctx, logits, out);
  vt_set_grad_enabled(ctx, true);
  vt_ctx_reset(ctx);
  return out;
}

vt_tensor *parity_qwen2_loss(qwen2 *m, vt_ctx *ctx, const parity_qwen2_batch *bt) {
  int64_t sh[2] = {bt->b, bt->t};
  return qwen2_loss(m, ctx, vt_from_host(ctx, VT_I32, 2, sh, bt->ids),
                    vt_from_host(ctx, VT_I32, 2, sh, bt->labels), NULL);
}
