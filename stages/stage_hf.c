/* The per-model half of HF import/export, from the model interface; see stage_hf.h. */
#include "stages/stage_hf.h"

#include <stdio.h>
#include <string.h>

#include "stages/stage_model.h"

typedef struct {
  vt_params ps, own; /* what the model registers; the part of it the model owns */
  bool ps_ready, own_ready;
  vt_model *model;
  json_t *config;
  const char *exclude;    /* globs of the model's parameters left out (a part not exported) */
  const json_t *override; /* the source's config.json as the caller completed it; NULL: read */
} part_state;

static bool excluded(const part_state *s, const char *name) {
  return s->exclude && stage_globs_match(s->exclude, name);
}

static bool ignored(void *arg, const char *name) {
  vt_model *m = ((part_state *)arg)->model;
  /* a parameter another model owns is no error in a source either (a training checkpoint
   * holds it) and is not carried over */
  return (m->ops->hf_ignored && m->ops->hf_ignored(m, name)) ||
         (m->ops->hf_external && m->ops->hf_external(m, name)) || excluded((part_state *)arg, name);
}

static void part_close(void *arg, hf_spec *spec) {
  part_state *s = arg;
  vt_model_destroy(s->model);
  if (s->ps_ready) vt_params_free(&s->ps);
  if (s->own_ready) vt_params_free(&s->own);
  json_decref(s->config);
  memset(s, 0, sizeof *s);
  memset(spec, 0, sizeof *spec);
}

static int part_open(void *arg, const char *config_path, vt_dtype dtype, bool export, hf_spec *spec,
                     char *err, size_t err_len) {
  part_state *s = arg;
  const char *exclude = s->exclude;
  const json_t *override = s->override;
  memset(s, 0, sizeof *s);
  s->exclude = exclude, s->override = override;
  json_t *src =
      override ? json_deep_copy(override) : stage_read_json(config_path, NULL, 0, err, err_len);
  if (!src) return -1;
  int rc = -1;
  if (vt_params_init(&s->ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, err_len, "cannot create a CPU parameter store");
    goto done;
  }
  s->ps_ready = true;
  s->model = vt_model_create(NULL, src, config_path, NULL, &s->ps, err, err_len);
  if (!s->model) goto done;
  if (export) {
    s->config = s->model->ops->hf_config ? s->model->ops->hf_config(s->model, src, dtype)
                                         : s->model->ops->config_json(s->model);
    if (!s->config) {
      snprintf(err, err_len, "%s: model %s could not build its export config", config_path,
               s->model->ops->name);
      goto done;
    }
  } else if (override) {
    s->config = json_deep_copy(override); /* an import writes the completed config */
  }
  /* the weights of an import or export are the model's own parameters only */
  const vt_params *params = &s->ps;
  if (s->model->ops->hf_external || s->exclude) {
    if (vt_params_init(&s->own, (vt_device){VT_DEV_CPU, 0})) {
      snprintf(err, err_len, "cannot create a CPU parameter store");
      goto done;
    }
    s->own_ready = true;
    for (int i = 0; i < s->ps.n; i++) {
      const vt_param *p = s->ps.items[i];
      if ((s->model->ops->hf_external && s->model->ops->hf_external(s->model, p->name)) ||
          excluded(s, p->name))
        continue;
      if (!vt_params_add(&s->own, p->name, p->t.dtype, p->t.ndim, p->t.shape, err, err_len))
        goto done;
    }
    params = &s->own;
  }
  *spec = (hf_spec){.model_name = s->model->ops->name,
                    .params = params,
                    .ignored = ignored,
                    .arg = s,
                    .config = s->config};
  rc = 0;
done:
  json_decref(src);
  if (rc) part_close(s, spec);
  return rc;
}

static int convert(const char *src, const char *out, const hf_io_opts *opts, bool export,
                   const char *exclude, const json_t *config, hf_io_stats *stats, char *err,
                   size_t err_len) {
  part_state st = {.exclude = exclude, .override = config};
  hf_model_part part = {part_open, part_close, &st};
  return hf_convert(src, out, opts, export, &part, stats, err, err_len);
}

int stage_hf_import(const char *src_dir, const char *out_dir, const hf_io_opts *opts,
                    hf_io_stats *stats, char *err, size_t err_len) {
  return convert(src_dir, out_dir, opts, false, NULL, NULL, stats, err, err_len);
}

int stage_hf_export(const char *src_dir, const char *out_dir, const hf_io_opts *opts,
                    hf_io_stats *stats, char *err, size_t err_len) {
  hf_io_opts o = opts ? *opts : (hf_io_opts){.dtype = VT_BF16, .max_shard_bytes = 5000000000u};
  return convert(src_dir, out_dir, &o, true, NULL, NULL, stats, err, err_len);
}

int stage_hf_convert_sel(const char *src_dir, const char *out_dir, const hf_io_opts *opts,
                         bool export, const char *exclude, const json_t *config, hf_io_stats *stats,
                         char *err, size_t err_len) {
  return convert(src_dir, out_dir, opts, export, exclude, config, stats, err, err_len);
}

int stage_hf_check(const char *src, const char *config_path, int *n_ignored, char *err,
                   size_t err_len) {
  part_state st = {0};
  hf_spec spec;
  if (part_open(&st, config_path, VT_F32, false, &spec, err, err_len)) return -1;
  int rc = hf_check_weights(src, &spec, n_ignored, err, err_len);
  part_close(&st, &spec);
  return rc;
}

int stage_model_describe(const char *path, stage_model_info *info, char *err, size_t err_len) {
  memset(info, 0, sizeof *info);
  vt_params ps;
  if (vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, err_len, "cannot create a CPU parameter store");
    return -1;
  }
  vt_model *m = stage_model_open(NULL, path, NULL, &ps, err, err_len);
  if (!m) {
    vt_params_free(&ps);
    return -1;
  }
  snprintf(info->model, sizeof info->model, "%s", m->ops->name);
  if (m->ops->describe) m->ops->describe(m, info->arch, sizeof info->arch);
  for (int i = 0; i < ps.n; i++) {
    info->n_params += vt_numel(&ps.items[i]->t);
    bool in_phase = false;
    for (int p = 0; p < m->n_phases; p++) in_phase |= vt_model_phase_has(m, p, ps.items[i]->name);
    if (in_phase) info->n_phase_params += vt_numel(&ps.items[i]->t);
  }
  info->n_tensors = ps.n;
  info->n_phases = m->n_phases;
  info->n_terms = m->n_terms;
  size_t o = 0;
  for (int k = 0; k < m->n_terms; k++)
    o += (size_t)snprintf(info->terms + o, sizeof info->terms - o, "%s%s", k ? ", " : "",
                          m->terms[k].name);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return 0;
}
