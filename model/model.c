/* The model registry and the helpers every model shares; see model.h. */
#include "model/model.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/codec_model.h"
#include "model/qwen2_model.h"
#include "model/vita_model.h"

extern const vt_model_ops tts_model_ops;       /* model/tts_model.c */
extern const vt_model_ops audio_ctc_model_ops; /* model/audio_enc_model.c */

#define MAX_MODELS 16

/* Built-in models first; vt_model_register appends. The one process-wide table of models.
 * vita before qwen2: a "vita-Qwen2" config is the omni model (qwen2 also reads that type). */
static const vt_model_ops *models[MAX_MODELS] = {&vita_model_ops, &qwen2_model_ops, &tts_model_ops,
                                                 &codec_model_ops, &audio_ctc_model_ops};
static int n_models = 5;

const vt_model_ops *vt_model_find(const char *name) {
  for (int i = 0; name && i < n_models; i++)
    if (!strcmp(models[i]->name, name)) return models[i];
  return NULL;
}

int vt_model_register(const vt_model_ops *ops) {
  if (!ops || !ops->name || vt_model_find(ops->name) || n_models == MAX_MODELS) return -1;
  models[n_models++] = ops;
  return 0;
}

const char *vt_model_names(char *buf, size_t len) {
  size_t o = 0;
  if (len) buf[0] = '\0';
  for (int i = 0; i < n_models && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", models[i]->name);
  return buf;
}

const vt_model_ops *vt_model_for_config(const json_t *config, const char *where, char *err,
                                        size_t err_len) {
  const char *type = json_string_value(json_object_get(config, "model_type"));
  for (int i = 0; type && i < n_models; i++) {
    if (!strcmp(models[i]->name, type)) return models[i];
    for (const char *const *t = models[i]->model_types; t && *t; t++)
      if (!strcmp(*t, type)) return models[i];
  }
  char names[256];
  snprintf(err, err_len,
           "%s: field \"model_type\": expected one of the models known (%s), found %s%s%s", where,
           vt_model_names(names, sizeof names), type ? "\"" : "", type ? type : "none",
           type ? "\"" : "");
  return NULL;
}

vt_model *vt_model_create(const vt_model_ops *ops, const json_t *config, const char *where,
                          const vt_model_opts *opts, vt_params *ps, char *err, size_t err_len) {
  if (!json_is_object(config)) {
    snprintf(err, err_len, "%s: the model config must be a JSON object", where);
    return NULL;
  }
  if (!ops && !(ops = vt_model_for_config(config, where, err, err_len))) return NULL;
  vt_model_opts none = {0};
  vt_model *m = ops->create(config, where, opts ? opts : &none, ps, err, err_len);
  if (!m) return NULL;
  m->ops = ops;
  const char *bad = NULL;
  if (m->n_phases < 1 || m->n_phases > VT_MODEL_MAX_PHASES)
    bad = "a model needs 1 to VT_MODEL_MAX_PHASES phases";
  else if (m->n_terms < 1 || m->n_terms > VT_MODEL_MAX_TERMS)
    bad = "a model needs 1 to VT_MODEL_MAX_TERMS loss terms";
  for (int i = 0; !bad && i < m->n_terms; i++)
    if (!m->terms[i].name || m->terms[i].phase < 0 || m->terms[i].phase >= m->n_phases)
      bad = "a loss term has no name or names no phase";
  for (int i = 0; !bad && i < m->n_phases; i++)
    if (!m->phases[i].name || !m->phases[i].params) bad = "a phase has no name or no params";
  if (bad) {
    snprintf(err, err_len, "model %s: %s", ops->name, bad);
    vt_model_destroy(m);
    return NULL;
  }
  return m;
}

void vt_model_destroy(vt_model *m) {
  if (m && m->ops && m->ops->destroy) m->ops->destroy(m);
}

int vt_model_term_index(const vt_model *m, const char *name) {
  for (int i = 0; i < m->n_terms; i++)
    if (!strcmp(m->terms[i].name, name)) return i;
  return -1;
}

int vt_model_phase_index(const vt_model *m, const char *name) {
  for (int i = 0; i < m->n_phases; i++)
    if (!strcmp(m->phases[i].name, name)) return i;
  return -1;
}

bool vt_model_phase_has(const vt_model *m, int p, const char *param_name) {
  const char *s = m->phases[p].params;
  char glob[256];
  while (*s) {
    const char *e = strchr(s, ',');
    size_t n = e ? (size_t)(e - s) : strlen(s);
    if (n < sizeof glob) {
      memcpy(glob, s, n);
      glob[n] = '\0';
      if (fnmatch(glob, param_name, 0) == 0) return true;
    }
    if (!e) break;
    s = e + 1;
  }
  return false;
}

void *vt_model_alloc(size_t size, const char *name, char *err, size_t err_len) {
  void *m = calloc(1, size);
  if (!m) snprintf(err, err_len, "%s: out of memory", name);
  return m;
}

void vt_model_one_phase(vt_model *m, const char *params, const char *term) {
  m->phases[0] = (vt_model_phase){"main", params};
  m->n_phases = 1;
  m->terms[0] = (vt_model_term){term, 0};
  m->n_terms = 1;
}

const char *vt_model_torch_dtype(vt_dtype dtype) {
  return dtype == VT_BF16 ? "bfloat16" : dtype == VT_F16 ? "float16" : "float32";
}

void vt_model_keep_token_ids(json_t *out, const json_t *src) {
  static const char *const keep[] = {"bos_token_id", "eos_token_id", "pad_token_id", NULL};
  for (int i = 0; out && src && keep[i]; i++) {
    json_t *v = json_object_get(src, keep[i]);
    if (v && !json_is_null(v)) json_object_set(out, keep[i], v);
  }
}

int vt_model_argmax_rows(vt_ctx *ctx, vt_tensor *x, vt_tensor *head, int32_t *best,
                         const char *op) {
  if (vt_ctx_failed(ctx)) return -1;
  int64_t R = x->shape[0], K = head ? head->shape[0] : x->shape[1];
  int64_t chunk = R < VT_MODEL_ARGMAX_ROWS ? (R > 0 ? R : 1) : VT_MODEL_ARGMAX_ROWS;
  float *lg = malloc(sizeof(float) * (size_t)(chunk * K));
  if (!lg) {
    vt_ctx_fail(ctx, op, "out of host memory for the accuracy");
    return -1;
  }
  for (int64_t r0 = 0; r0 < R; r0 += VT_MODEL_ARGMAX_ROWS) {
    int64_t r1 = r0 + VT_MODEL_ARGMAX_ROWS < R ? r0 + VT_MODEL_ARGMAX_ROWS : R;
    vt_tensor *part = vt_slice(ctx, x, 0, r0, r1);
    if (head) part = vt_matmul(ctx, part, head, false, true);
    if (vt_ctx_failed(ctx)) break;
    vt_to_host(ctx, part, lg);
    for (int64_t r = r0; r < r1; r++) {
      const float *l = lg + (r - r0) * K;
      int64_t b = 0;
      for (int64_t k = 1; k < K; k++)
        if (l[k] > l[b]) b = k;
      best[r] = (int32_t)b;
    }
  }
  free(lg);
  return vt_ctx_failed(ctx) ? -1 : 0;
}
