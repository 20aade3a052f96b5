/* Reading the stage config; see stage_config.h. */
#include "stages/stage_config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/yamlcfg.h"

/* Optional scalars of a mapping: each leaves *out alone when the key is absent and returns
 * -1 on a type error (the message names file, line and key). */
static int opt_str(ycfg *c, yaml_node_t *map, const char *key, const char *where, char *out,
                   size_t out_len, bool is_path, char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  if (!v) return 0;
  char full[256];
  snprintf(full, sizeof full, "%s.%s", where, key);
  const char *s;
  if (ycfg_str(c, v, full, &s, err, err_len)) return -1;
  if (is_path && *s) {
    ycfg_resolve(c, s, out, out_len);
    size_t l = strlen(out); /* "DIR/." reads better as DIR */
    if (l > 2 && !strcmp(out + l - 2, "/.")) out[l - 2] = '\0';
  } else {
    snprintf(out, out_len, "%s", s);
  }
  return 0;
}

static int opt_int(ycfg *c, yaml_node_t *map, const char *key, const char *where, int64_t *out,
                   char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  if (!v) return 0;
  char full[256];
  snprintf(full, sizeof full, "%s.%s", where, key);
  long long x;
  if (ycfg_int(c, v, full, &x, err, err_len)) return -1;
  *out = x;
  return 0;
}

static int opt_float(ycfg *c, yaml_node_t *map, const char *key, const char *where, double *out,
                     char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  if (!v) return 0;
  char full[256];
  snprintf(full, sizeof full, "%s.%s", where, key);
  return ycfg_float(c, v, full, out, err, err_len);
}

static int opt_bool(ycfg *c, yaml_node_t *map, const char *key, const char *where, bool *out,
                    char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  if (!v) return 0;
  char full[256];
  snprintf(full, sizeof full, "%s.%s", where, key);
  return ycfg_bool(c, v, full, out, err, err_len);
}

static yaml_node_t *item(ycfg *c, yaml_node_item_t *it) {
  return yaml_document_get_node(&c->doc, *it);
}

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

/* The text of a mapping key (a name), or NULL with err when the key is not a plain scalar. */
static const char *key_name(ycfg *c, const yaml_node_t *k, const char *where, char *err,
                            size_t err_len) {
  if (k && k->type == YAML_SCALAR_NODE) return (const char *)k->data.scalar.value;
  snprintf(err, err_len, "%s:%d: %s: expected names as keys", c->path, k ? line_of(k) : 0, where);
  return NULL;
}

/* A pattern, or a part's name standing for its globs, appended to out (comma-separated). */
static int add_pattern(const stage_cfg *cfg, const char *s, char *out, size_t out_len) {
  const char *globs = s;
  for (int i = 0; i < cfg->n_parts; i++)
    if (!strcmp(cfg->parts[i].name, s)) globs = cfg->parts[i].globs;
  size_t l = strlen(out);
  int w = snprintf(out + l, out_len - l, "%s%s", l ? "," : "", globs);
  return w < 0 || (size_t)w >= out_len - l ? -1 : 0;
}

/* A pattern or list of patterns (parts expanded) joined into out. */
static int read_patterns(ycfg *c, const stage_cfg *cfg, yaml_node_t *v, const char *key, char *out,
                         size_t out_len, char *err, size_t err_len) {
  out[0] = '\0';
  const char *s;
  if (v->type == YAML_SCALAR_NODE) {
    if (ycfg_str(c, v, key, &s, err, err_len)) return -1;
    if (!*s || add_pattern(cfg, s, out, out_len)) goto bad;
    return 0;
  }
  if (v->type != YAML_SEQUENCE_NODE) goto bad;
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    if (ycfg_str(c, item(c, it), key, &s, err, err_len)) return -1;
    if (!*s || strchr(s, ',') || add_pattern(cfg, s, out, out_len)) goto bad;
  }
  if (out[0]) return 0;
bad:
  snprintf(err, err_len,
           "%s:%d: %s: expected a name pattern, a part or a list of them (at most %d "
           "characters in all)",
           c->path, line_of(v), key, STAGE_GLOBS - 1);
  return -1;
}

/* train.trainable / train.frozen: each list entry (a part or a glob) one slot. */
static int read_list(ycfg *c, const stage_cfg *cfg, yaml_node_t *map, const char *key,
                     char (*out)[STAGE_GLOBS], int *n, char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  char full[64];
  snprintf(full, sizeof full, "train.%s", key);
  if (!v) return 0;
  *n = 0; /* a list given replaces the one before (an overlay's) */
  if (v->type == YAML_SEQUENCE_NODE) {
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
      if (*n == STAGE_MAX_LIST) {
        snprintf(err, err_len, "%s:%d: %s: at most %d entries", c->path, line_of(v), full,
                 STAGE_MAX_LIST);
        return -1;
      }
      if (read_patterns(c, cfg, item(c, it), full, out[*n], STAGE_GLOBS, err, err_len)) return -1;
      (*n)++;
    }
    return 0;
  }
  if (read_patterns(c, cfg, v, full, out[0], STAGE_GLOBS, err, err_len)) return -1;
  *n = 1;
  return 0;
}

/* A mapping NAME -> number (train.losses, data.ratios). */
static int read_weights(ycfg *c, yaml_node_t *map, const char *key, const char *where,
                        stage_weight *out, int max, int *n, char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  if (!v) return 0;
  if (v->type != YAML_MAPPING_NODE) {
    snprintf(err, err_len, "%s:%d: %s.%s: expected a mapping of names to numbers", c->path,
             line_of(v), where, key);
    return -1;
  }
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
    yaml_node_t *val = yaml_document_get_node(&c->doc, p->value);
    char wk[96];
    snprintf(wk, sizeof wk, "%s.%s", where, key);
    const char *name = key_name(c, k, wk, err, err_len);
    if (!name) return -1;
    /* a name given again (by an overlay) replaces its weight; mappings merge */
    int i = 0;
    while (i < *n && strcmp(out[i].name, name)) i++;
    if (i == max) {
      snprintf(err, err_len, "%s:%d: %s.%s: at most %d entries", c->path, line_of(v), where, key,
               max);
      return -1;
    }
    snprintf(out[i].name, sizeof out[i].name, "%s", name);
    char full[160];
    snprintf(full, sizeof full, "%s.%s.%s", where, key, out[i].name);
    if (ycfg_float(c, val, full, &out[i].weight, err, err_len)) return -1;
    if (!(out[i].weight >= 0)) {
      snprintf(err, err_len, "%s:%d: %s: expected a number >= 0, found %g", c->path, line_of(val),
               full, out[i].weight);
      return -1;
    }
    if (i == *n) (*n)++;
  }
  return 0;
}

static const char *const optim_keys[] = {
    "optimizer",     "lr",        "weight_decay", "beta1", "beta2", "eps", "momentum",
    "max_grad_norm", "decay_all", "groups",       NULL};

static int read_optim(ycfg *c, const stage_cfg *cfg, yaml_node_t *t, const char *where,
                      stage_optim *o, char *err, size_t err_len) {
  bool decay_all = false;
  if (opt_str(c, t, "optimizer", where, o->kind, sizeof o->kind, false, err, err_len) ||
      opt_float(c, t, "lr", where, &o->lr, err, err_len) ||
      opt_float(c, t, "weight_decay", where, &o->weight_decay, err, err_len) ||
      opt_float(c, t, "beta1", where, &o->beta1, err, err_len) ||
      opt_float(c, t, "beta2", where, &o->beta2, err, err_len) ||
      opt_float(c, t, "eps", where, &o->eps, err, err_len) ||
      opt_float(c, t, "momentum", where, &o->momentum, err, err_len) ||
      opt_float(c, t, "max_grad_norm", where, &o->max_grad_norm, err, err_len) ||
      opt_bool(c, t, "decay_all", where, &decay_all, err, err_len))
    return -1;
  if (ycfg_get(c, t, "decay_all")) o->decay_all = decay_all;
  if (o->kind[0] && strcmp(o->kind, "adamw") && strcmp(o->kind, "adam") && strcmp(o->kind, "sgd")) {
    snprintf(err, err_len, "%s:%d: %s.optimizer: expected adamw, adam or sgd, found \"%s\"",
             c->path, line_of(ycfg_get(c, t, "optimizer")), where, o->kind);
    return -1;
  }
  yaml_node_t *groups = ycfg_get(c, t, "groups");
  if (!groups) return 0;
  char gw[96];
  snprintf(gw, sizeof gw, "%s.groups", where);
  if (groups->type != YAML_SEQUENCE_NODE) {
    snprintf(err, err_len, "%s:%d: %s: expected a list of {params, lr, weight_decay}", c->path,
             line_of(groups), gw);
    return -1;
  }
  static const char *const gkeys[] = {"params", "lr", "weight_decay", NULL};
  o->n_groups = 0;
  for (yaml_node_item_t *it = groups->data.sequence.items.start;
       it < groups->data.sequence.items.top; it++) {
    yaml_node_t *g = item(c, it);
    if (o->n_groups == STAGE_MAX_GROUPS) {
      snprintf(err, err_len, "%s:%d: %s: at most %d groups", c->path, line_of(g), gw,
               STAGE_MAX_GROUPS);
      return -1;
    }
    stage_group *sg = &o->groups[o->n_groups];
    sg->lr = sg->weight_decay = NAN;
    yaml_node_t *params = ycfg_get(c, g, "params");
    if (ycfg_check_keys(c, g, gkeys, gw, err, err_len) ||
        opt_float(c, g, "lr", gw, &sg->lr, err, err_len) ||
        opt_float(c, g, "weight_decay", gw, &sg->weight_decay, err, err_len))
      return -1;
    if (!params) {
      snprintf(err, err_len, "%s:%d: %s: a group needs params (parts or name patterns)", c->path,
               line_of(g), gw);
      return -1;
    }
    if (read_patterns(c, cfg, params, gw, sg->globs, sizeof sg->globs, err, err_len)) return -1;
    o->n_groups++;
  }
  return 0;
}

static const char *const sched_keys[] = {
    "kind",           "warmup_steps",    "warmup_ratio", "min_lr_ratio",
    "noam_model_dim", "steps_per_epoch", "gamma",        NULL};

static int read_sched(ycfg *c, yaml_node_t *s, const char *where, stage_sched *o, char *err,
                      size_t err_len) {
  if (ycfg_check_keys(c, s, sched_keys, where, err, err_len) ||
      opt_str(c, s, "kind", where, o->kind, sizeof o->kind, false, err, err_len) ||
      opt_int(c, s, "warmup_steps", where, &o->warmup_steps, err, err_len) ||
      opt_float(c, s, "warmup_ratio", where, &o->warmup_ratio, err, err_len) ||
      opt_float(c, s, "min_lr_ratio", where, &o->min_lr_ratio, err, err_len) ||
      opt_float(c, s, "noam_model_dim", where, &o->noam_model_dim, err, err_len) ||
      opt_int(c, s, "steps_per_epoch", where, &o->steps_per_epoch, err, err_len) ||
      opt_float(c, s, "gamma", where, &o->gamma, err, err_len))
    return -1;
  static const char *const kinds[] = {"constant", "cosine", "noam", "exp_epoch"};
  bool ok = !o->kind[0];
  for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) ok |= !strcmp(o->kind, kinds[i]);
  if (!ok) {
    snprintf(err, err_len,
             "%s:%d: %s.kind: expected constant, cosine, noam or exp_epoch, found \"%s\"", c->path,
             line_of(ycfg_get(c, s, "kind")), where, o->kind);
    return -1;
  }
  return 0;
}

static void optim_unset(stage_optim *o) {
  memset(o, 0, sizeof *o);
  o->lr = o->weight_decay = o->beta1 = o->beta2 = o->eps = o->momentum = o->max_grad_norm = NAN;
  o->decay_all = -1;
  o->n_groups = -1;
}

static void sched_unset(stage_sched *s) {
  memset(s, 0, sizeof *s);
  s->warmup_steps = s->steps_per_epoch = -1;
  s->warmup_ratio = s->min_lr_ratio = s->noam_model_dim = s->gamma = NAN;
}

void stage_cfg_defaults(stage_cfg *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->device = (vt_device){VT_DEV_CPU, 0};
  cfg->batch_size = 1;
  cfg->grad_accum = 1;
  cfg->seed = 1;
  cfg->max_len = 2048;
  cfg->keep_last = 3;
  cfg->log_every = 1;
  cfg->bucket_mb = 25.0;
  cfg->coll_timeout_s = 600.0;
  optim_unset(&cfg->optim);
  sched_unset(&cfg->sched);
}

static int read_precision(ycfg *c, yaml_node_t *t, stage_cfg *cfg, char *err, size_t err_len) {
  char p[32] = "fp32";
  if (opt_str(c, t, "precision", "train", p, sizeof p, false, err, err_len)) return -1;
  if (!strcmp(p, "fp32")) {
    cfg->precision = VT_F32;
  } else if (!strcmp(p, "bf16")) {
    cfg->precision = VT_BF16;
  } else {
    snprintf(err, err_len, "%s:%d: train.precision: expected fp32 or bf16, found \"%s\"", c->path,
             line_of(ycfg_get(c, t, "precision")), p);
    return -1;
  }
  return 0;
}

static int read_device(ycfg *c, yaml_node_t *root, stage_cfg *cfg, char *err, size_t err_len) {
  char dev[32] = "cpu";
  if (opt_str(c, root, "device", "the top level", dev, sizeof dev, false, err, err_len)) return -1;
  int idx = 0, used = 0;
  if (!strcmp(dev, "cpu")) {
    cfg->device = (vt_device){VT_DEV_CPU, 0};
  } else if (!strcmp(dev, "cuda") ||
             (sscanf(dev, "cuda:%d%n", &idx, &used) == 1 && used == (int)strlen(dev) && idx >= 0)) {
    cfg->device = (vt_device){VT_DEV_CUDA, idx};
  } else {
    snprintf(err, err_len, "%s:%d: device: expected cpu, cuda or cuda:N, found \"%s\"", c->path,
             line_of(ycfg_get(c, root, "device")), dev);
    return -1;
  }
  return 0;
}

static int read_model(ycfg *c, yaml_node_t *m, stage_cfg *cfg, char *err, size_t err_len) {
  static const char *const keys[] = {"name",          "config",      "tokenizer", "recompute",
                                     "ce_chunk_rows", "frozen_mode", "parts",     NULL};
  char mode[16] = "eval";
  if (ycfg_check_keys(c, m, keys, "model", err, err_len) ||
      opt_str(c, m, "name", "model", cfg->model_name, sizeof cfg->model_name, false, err,
              err_len) ||
      opt_str(c, m, "config", "model", cfg->model_config, STAGE_PATH, true, err, err_len) ||
      opt_str(c, m, "tokenizer", "model", cfg->tokenizer, STAGE_PATH, true, err, err_len) ||
      opt_bool(c, m, "recompute", "model", &cfg->model_opts.recompute, err, err_len) ||
      opt_int(c, m, "ce_chunk_rows", "model", &cfg->model_opts.ce_chunk_rows, err, err_len) ||
      opt_str(c, m, "frozen_mode", "model", mode, sizeof mode, false, err, err_len))
    return -1;
  if (strcmp(mode, "eval") && strcmp(mode, "train")) {
    snprintf(err, err_len, "%s:%d: model.frozen_mode: expected eval or train, found \"%s\"",
             c->path, line_of(ycfg_get(c, m, "frozen_mode")), mode);
    return -1;
  }
  if (ycfg_get(c, m, "frozen_mode")) cfg->frozen_train = !strcmp(mode, "train");
  yaml_node_t *parts = ycfg_get(c, m, "parts");
  if (!parts) return 0;
  if (parts->type != YAML_MAPPING_NODE) {
    snprintf(err, err_len, "%s:%d: model.parts: expected a mapping of part names to patterns",
             c->path, line_of(parts));
    return -1;
  }
  for (yaml_node_pair_t *p = parts->data.mapping.pairs.start; p < parts->data.mapping.pairs.top;
       p++) {
    yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
    const char *name = key_name(c, k, "model.parts", err, err_len);
    if (!name) return -1;
    int at = 0; /* a part named again (by an overlay) is redefined in place */
    while (at < cfg->n_parts && strcmp(cfg->parts[at].name, name)) at++;
    if (at == STAGE_MAX_PARTS) {
      snprintf(err, err_len, "%s:%d: model.parts: at most %d parts", c->path, line_of(k),
               STAGE_MAX_PARTS);
      return -1;
    }
    stage_part *sp = &cfg->parts[at];
    snprintf(sp->name, sizeof sp->name, "%s", name);
    char full[96];
    snprintf(full, sizeof full, "model.parts.%s", sp->name);
    /* parts are defined by globs only (a part naming another would depend on order) */
    int saved = cfg->n_parts;
    cfg->n_parts = 0;
    int rc = read_patterns(c, cfg, yaml_document_get_node(&c->doc, p->value), full, sp->globs,
                           sizeof sp->globs, err, err_len);
    cfg->n_parts = saved;
    if (rc) return -1;
    if (at == cfg->n_parts) cfg->n_parts++;
  }
  return 0;
}

static int read_init(ycfg *c, yaml_node_t *v, stage_cfg *cfg, char *err, size_t err_len) {
  static const char *const keys[] = {"from", "params", "prefix", NULL};
  if (v->type != YAML_SEQUENCE_NODE) {
    snprintf(err, err_len, "%s:%d: init: expected a list of {from, params, prefix}", c->path,
             line_of(v));
    return -1;
  }
  cfg->n_init = 0; /* a list given replaces the one before (an overlay's) */
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = item(c, it);
    if (cfg->n_init == STAGE_MAX_INIT) {
      snprintf(err, err_len, "%s:%d: init: at most %d sources", c->path, line_of(e),
               STAGE_MAX_INIT);
      return -1;
    }
    stage_init *si = &cfg->init[cfg->n_init];
    si->line = line_of(e);
    snprintf(si->params, sizeof si->params, "*");
    yaml_node_t *params = ycfg_get(c, e, "params");
    if (ycfg_check_keys(c, e, keys, "init", err, err_len) ||
        opt_str(c, e, "from", "init", si->from, sizeof si->from, true, err, err_len) ||
        opt_str(c, e, "prefix", "init", si->prefix, sizeof si->prefix, false, err, err_len) ||
        (params &&
         read_patterns(c, cfg, params, "init.params", si->params, sizeof si->params, err, err_len)))
      return -1;
    if (!si->from[0]) {
      snprintf(err, err_len, "%s:%d: init: each source needs from (a weights file or directory)",
               c->path, si->line);
      return -1;
    }
    cfg->n_init++;
  }
  return 0;
}

static int read_phases(ycfg *c, yaml_node_t *v, stage_cfg *cfg, char *err, size_t err_len) {
  if (v->type != YAML_MAPPING_NODE) {
    snprintf(err, err_len, "%s:%d: train.phases: expected a mapping of phase names to settings",
             c->path, line_of(v));
    return -1;
  }
  for (yaml_node_pair_t *p = v->data.mapping.pairs.start; p < v->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(&c->doc, p->key);
    yaml_node_t *val = yaml_document_get_node(&c->doc, p->value);
    const char *name = key_name(c, k, "train.phases", err, err_len);
    if (!name) return -1;
    int at = 0; /* a phase named again (by an overlay) gets its keys merged */
    while (at < cfg->n_phases && strcmp(cfg->phases[at].name, name)) at++;
    if (at == VT_MODEL_MAX_PHASES) {
      snprintf(err, err_len, "%s:%d: train.phases: at most %d phases", c->path, line_of(k),
               VT_MODEL_MAX_PHASES);
      return -1;
    }
    stage_phase *ph = &cfg->phases[at];
    if (at == cfg->n_phases) {
      snprintf(ph->name, sizeof ph->name, "%s", name);
      optim_unset(&ph->optim);
      sched_unset(&ph->sched);
    }
    char where[96];
    snprintf(where, sizeof where, "train.phases.%s", ph->name);
    const char *keys[16];
    int nk = 0;
    for (int i = 0; optim_keys[i]; i++) keys[nk++] = optim_keys[i];
    keys[nk++] = "schedule";
    keys[nk] = NULL;
    if (ycfg_check_keys(c, val, keys, where, err, err_len) ||
        read_optim(c, cfg, val, where, &ph->optim, err, err_len))
      return -1;
    yaml_node_t *s = ycfg_get(c, val, "schedule");
    char sw[128];
    snprintf(sw, sizeof sw, "%s.schedule", where);
    if (s && read_sched(c, s, sw, &ph->sched, err, err_len)) return -1;
    if (at == cfg->n_phases) cfg->n_phases++;
  }
  return 0;
}

/* The sections of root into cfg. An overlay (a curriculum's overrides) may give any subset;
 * extra names keys of root that belong to the caller. Absent keys leave cfg alone. */
static int load_sections(stage_cfg *cfg, ycfg *c, yaml_node_t *root, bool overlay,
                         const char *const *extra, char *err, size_t err_len) {
  static const char *const top0[] = {"stage", "device",   "model",  "init", "data",
                                     "train", "schedule", "output", NULL};
  const char *top[32];
  int ntop = 0;
  for (int i = 0; top0[i]; i++) top[ntop++] = top0[i];
  for (int i = 0; extra && extra[i] && ntop < 31; i++) top[ntop++] = extra[i];
  top[ntop] = NULL;
  static const char *const data_keys[] = {"mixture", "eval_mixture", "ratios", "max_len", NULL};
  static const char *const out_keys[] = {"dir",       "save_every", "keep_last",
                                         "log_every", "eval_every", NULL};
  if (!root) {
    snprintf(err, err_len, "%s: the config is empty", c->path);
    return -1;
  }
  if (ycfg_check_keys(c, root, top, "the top level", err, err_len)) return -1;
  yaml_node_t *m = ycfg_get(c, root, "model"), *d = ycfg_get(c, root, "data");
  yaml_node_t *t = ycfg_get(c, root, "train"), *o = ycfg_get(c, root, "output");
  yaml_node_t *s = ycfg_get(c, root, "schedule"), *init = ycfg_get(c, root, "init");
  const char *train_keys[40];
  int nk = 0;
  static const char *const tk[] = {"steps",      "epochs",
                                   "batch_size", "grad_accum",
                                   "seed",       "trainable",
                                   "frozen",     "losses",
                                   "phases",     "zero",
                                   "bucket_mb",  "coll_timeout_s",
                                   "precision",  "stochastic_rounding",
                                   NULL};
  for (int i = 0; tk[i]; i++) train_keys[nk++] = tk[i];
  for (int i = 0; optim_keys[i]; i++) train_keys[nk++] = optim_keys[i];
  train_keys[nk] = NULL;
  /* unknown keys first: a misspelt section name reads better as itself than as "missing" */
  if ((m && read_model(c, m, cfg, err, err_len)) ||
      (d && ycfg_check_keys(c, d, data_keys, "data", err, err_len)) ||
      (t && ycfg_check_keys(c, t, train_keys, "train", err, err_len)) ||
      (o && ycfg_check_keys(c, o, out_keys, "output", err, err_len)))
    return -1;
  if (!overlay && (!m || !d || !t || !o)) {
    snprintf(err, err_len, "%s: the sections model, data, train and output are required", c->path);
    return -1;
  }
  if (opt_str(c, root, "stage", "the top level", cfg->name, sizeof cfg->name, false, err,
              err_len) ||
      read_device(c, root, cfg, err, err_len) || (init && read_init(c, init, cfg, err, err_len)))
    return -1;
  int64_t keep = cfg->keep_last, seed = (int64_t)cfg->seed, zero = cfg->zero;
  if (opt_str(c, d, "mixture", "data", cfg->mixture, STAGE_PATH, true, err, err_len) ||
      opt_str(c, d, "eval_mixture", "data", cfg->eval_mixture, STAGE_PATH, true, err, err_len) ||
      opt_int(c, d, "max_len", "data", &cfg->max_len, err, err_len) ||
      read_weights(c, d, "ratios", "data", cfg->ratios, STAGE_MAX_RATIOS, &cfg->n_ratios, err,
                   err_len) ||
      opt_int(c, t, "steps", "train", &cfg->steps, err, err_len) ||
      opt_int(c, t, "epochs", "train", &cfg->epochs, err, err_len) ||
      opt_int(c, t, "batch_size", "train", &cfg->batch_size, err, err_len) ||
      opt_int(c, t, "grad_accum", "train", &cfg->grad_accum, err, err_len) ||
      opt_int(c, t, "seed", "train", &seed, err, err_len) ||
      opt_int(c, t, "zero", "train", &zero, err, err_len) ||
      opt_float(c, t, "bucket_mb", "train", &cfg->bucket_mb, err, err_len) ||
      opt_float(c, t, "coll_timeout_s", "train", &cfg->coll_timeout_s, err, err_len) ||
      read_precision(c, t, cfg, err, err_len) ||
      opt_bool(c, t, "stochastic_rounding", "train", &cfg->stochastic_rounding, err, err_len) ||
      read_list(c, cfg, t, "trainable", cfg->trainable, &cfg->n_trainable, err, err_len) ||
      read_list(c, cfg, t, "frozen", cfg->frozen, &cfg->n_frozen, err, err_len) ||
      read_weights(c, t, "losses", "train", cfg->losses, VT_MODEL_MAX_TERMS, &cfg->n_losses, err,
                   err_len) ||
      read_optim(c, cfg, t, "train", &cfg->optim, err, err_len) ||
      (ycfg_get(c, t, "phases") && read_phases(c, ycfg_get(c, t, "phases"), cfg, err, err_len)) ||
      (s && read_sched(c, s, "schedule", &cfg->sched, err, err_len)) ||
      opt_str(c, o, "dir", "output", cfg->out_dir, STAGE_PATH, true, err, err_len) ||
      opt_int(c, o, "save_every", "output", &cfg->save_every, err, err_len) ||
      opt_int(c, o, "keep_last", "output", &keep, err, err_len) ||
      opt_int(c, o, "log_every", "output", &cfg->log_every, err, err_len) ||
      opt_int(c, o, "eval_every", "output", &cfg->eval_every, err, err_len))
    return -1;
  cfg->seed = (uint64_t)seed;
  cfg->zero = zero >= 0 && zero <= 2 ? (int)zero : -1; /* refused below */
  if (keep < 0 || keep > INT32_MAX) keep = -1;         /* refused below */
  cfg->keep_last = (int)keep;
  return 0;
}

/* The checks of a whole config, after every overlay. */
static int validate(stage_cfg *cfg, char *err, size_t err_len) {
  const char *path = cfg->path;
  const char *bad = NULL;
  if (!cfg->model_config[0])
    bad = "model.config is required";
  else if (!cfg->mixture[0])
    bad = "data.mixture is required";
  else if (!cfg->out_dir[0])
    bad = "output.dir is required";
  else if ((cfg->steps > 0) == (cfg->epochs > 0))
    bad = "give exactly one of train.steps and train.epochs (> 0)";
  else if (cfg->batch_size < 1)
    bad = "train.batch_size must be at least 1";
  else if (cfg->grad_accum < 1)
    bad = "train.grad_accum must be at least 1";
  else if (cfg->zero < 0)
    bad = "train.zero must be 0, 1 or 2 (the ZeRO stage)";
  else if (!(cfg->bucket_mb >= 0 && cfg->bucket_mb <= 65536))
    bad = "train.bucket_mb must lie in [0, 65536] (0: one reduction after backward)";
  else if (!(cfg->coll_timeout_s > 0 && cfg->coll_timeout_s <= 86400))
    bad = "train.coll_timeout_s must lie in (0, 86400] seconds";
  else if (cfg->max_len < 2)
    bad = "data.max_len must be at least 2";
  /* upper bounds, so that no product of them (host buffers of batch_size x max_len tokens,
   * epochs x steps per epoch) can overflow */
  else if (cfg->max_len > STAGE_MAX_LEN)
    bad = "data.max_len must be at most 16777216";
  else if (cfg->batch_size > STAGE_MAX_BATCH || cfg->grad_accum > STAGE_MAX_BATCH)
    bad = "train.batch_size and train.grad_accum must be at most 1048576";
  else if (cfg->batch_size * cfg->max_len > STAGE_MAX_TOKENS)
    bad = "train.batch_size x data.max_len must be at most 2^31 tokens";
  else if (cfg->steps > STAGE_MAX_STEPS || cfg->epochs > STAGE_MAX_STEPS)
    bad = "train.steps and train.epochs must be at most 2^40";
  else if (cfg->seed > (uint64_t)INT64_MAX)
    bad = "train.seed must be in [0, 2^63) (a negative seed is not one)";
  else if (cfg->keep_last < 0)
    bad = "output.keep_last must not be negative";
  else if (cfg->save_every < 0 || cfg->log_every < 0 || cfg->eval_every < 0)
    bad = "output intervals must not be negative";
  else if (cfg->eval_every > 0 && !cfg->eval_mixture[0])
    bad = "output.eval_every needs data.eval_mixture";
  if (bad) {
    snprintf(err, err_len, "%s: %s", path, bad);
    return -1;
  }
  return 0;
}

int stage_config_load(stage_cfg *cfg, const char *path, char *err, size_t err_len) {
  return stage_config_load_with(cfg, path, NULL, NULL, 0, NULL, err, err_len);
}

int stage_config_load_with(stage_cfg *cfg, const char *path, ycfg *ov, yaml_node_t *const *maps,
                           int n_maps, const char *const *extra, char *err, size_t err_len) {
  stage_cfg_defaults(cfg);
  snprintf(cfg->path, sizeof cfg->path, "%s", path);
  const char *base = strrchr(path, '/');
  snprintf(cfg->name, sizeof cfg->name, "%s", base ? base + 1 : path);
  char *dot = strrchr(cfg->name, '.');
  if (dot && dot != cfg->name) *dot = '\0';
  ycfg c;
  if (ycfg_load(&c, path, err, err_len)) return -1;
  int rc = load_sections(cfg, &c, ycfg_root(&c), false, NULL, err, err_len);
  ycfg_free(&c);
  for (int i = 0; !rc && i < n_maps; i++)
    if (maps[i]) rc = load_sections(cfg, ov, maps[i], true, extra, err, err_len);
  return rc ? -1 : validate(cfg, err, err_len);
}

const stage_phase *stage_find_phase(const stage_cfg *cfg, const char *name) {
  for (int i = 0; i < cfg->n_phases; i++)
    if (!strcmp(cfg->phases[i].name, name)) return &cfg->phases[i];
  return NULL;
}

double stage_loss_weight(const stage_cfg *cfg, const char *name) {
  for (int i = 0; i < cfg->n_losses; i++)
    if (!strcmp(cfg->losses[i].name, name)) return cfg->losses[i].weight;
  return 1.0;
}
