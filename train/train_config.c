/* Loading the stage config; see train_config.h. */
#include "train/train_config.h"

#include <string.h>

#include "data/yamlcfg.h"

/* Reads optional scalars of a mapping; each returns -1 on a type error. */
static int opt_str(ycfg *c, yaml_node_t *map, const char *key, const char *where, char *out,
                   size_t out_len, bool is_path, char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  if (!v) return 0;
  char full[256];
  snprintf(full, sizeof full, "%s.%s", where, key);
  const char *s;
  if (ycfg_str(c, v, full, &s, err, err_len)) return -1;
  if (is_path && *s)
    ycfg_resolve(c, s, out, out_len);
  else
    snprintf(out, out_len, "%s", s);
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

/* A list of strings (or one string) into globs. */
static int opt_globs(ycfg *c, yaml_node_t *map, const char *key, const char *where,
                     char (*out)[256], int *n, char *err, size_t err_len) {
  yaml_node_t *v = ycfg_get(c, map, key);
  *n = 0;
  if (!v) return 0;
  char full[256];
  snprintf(full, sizeof full, "%s.%s", where, key);
  if (v->type == YAML_SCALAR_NODE) {
    const char *s;
    if (ycfg_str(c, v, full, &s, err, err_len)) return -1;
    snprintf(out[(*n)++], 256, "%s", s);
    return 0;
  }
  if (v->type != YAML_SEQUENCE_NODE) {
    snprintf(err, err_len, "%s:%zu: %s: expected a list of name patterns", c->path,
             v->start_mark.line + 1, full);
    return -1;
  }
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    if (*n == VT_CFG_MAX_GLOBS) {
      snprintf(err, err_len, "%s: %s: at most %d patterns", c->path, full, VT_CFG_MAX_GLOBS);
      return -1;
    }
    const char *s;
    if (ycfg_str(c, yaml_document_get_node(&c->doc, *it), full, &s, err, err_len)) return -1;
    snprintf(out[(*n)++], 256, "%s", s);
  }
  return 0;
}

static yaml_node_t *section(ycfg *c, yaml_node_t *root, const char *name, const char *const *keys,
                            char *err, size_t err_len, int *rc) {
  yaml_node_t *s = ycfg_get(c, root, name);
  if (s && ycfg_check_keys(c, s, keys, name, err, err_len)) *rc = -1;
  return s;
}

static int load_sections(vt_train_cfg *cfg, ycfg *c, char *err, size_t err_len) {
  yaml_node_t *root = ycfg_root(c);
  static const char *const top[] = {"model", "data", "train", "schedule", "output", NULL};
  static const char *const model_keys[] = {"config",    "init",          "tokenizer",
                                           "recompute", "ce_chunk_rows", NULL};
  static const char *const data_keys[] = {"mixture", "eval_mixture", "max_len", NULL};
  static const char *const train_keys[] = {
      "steps",        "epochs", "batch_size", "grad_accum", "seed",     "optimizer",     "lr",
      "weight_decay", "beta1",  "beta2",      "eps",        "momentum", "max_grad_norm", "groups",
      "trainable",    "frozen", "decay_all",  NULL};
  static const char *const sched_keys[] = {
      "kind",           "warmup_steps",    "warmup_ratio", "min_lr_ratio",
      "noam_model_dim", "steps_per_epoch", "gamma",        NULL};
  static const char *const out_keys[] = {"dir",       "save_every", "keep_last",
                                         "log_every", "eval_every", NULL};
  if (!root || ycfg_check_keys(c, root, top, "the top level", err, err_len)) {
    if (!root) snprintf(err, err_len, "%s: the config is empty", c->path);
    return -1;
  }
  int rc = 0;
  yaml_node_t *m = section(c, root, "model", model_keys, err, err_len, &rc);
  yaml_node_t *d = rc ? NULL : section(c, root, "data", data_keys, err, err_len, &rc);
  yaml_node_t *t = rc ? NULL : section(c, root, "train", train_keys, err, err_len, &rc);
  yaml_node_t *s = rc ? NULL : section(c, root, "schedule", sched_keys, err, err_len, &rc);
  yaml_node_t *o = rc ? NULL : section(c, root, "output", out_keys, err, err_len, &rc);
  if (rc) return -1;
  if (!m || !d || !t || !o) {
    snprintf(err, err_len, "%s: the sections model, data, train and output are required", c->path);
    return -1;
  }
  int64_t keep = cfg->keep_last, seed = (int64_t)cfg->seed;
  const char *kind_name = NULL;
  char optimizer[32] = "adamw", sched_kind[32] = "cosine";
  if (opt_str(c, m, "config", "model", cfg->model_config, VT_CFG_PATH, true, err, err_len) ||
      opt_str(c, m, "init", "model", cfg->init, VT_CFG_PATH, true, err, err_len) ||
      opt_str(c, m, "tokenizer", "model", cfg->tokenizer, VT_CFG_PATH, true, err, err_len) ||
      opt_bool(c, m, "recompute", "model", &cfg->recompute, err, err_len) ||
      opt_int(c, m, "ce_chunk_rows", "model", &cfg->ce_chunk_rows, err, err_len) ||
      opt_str(c, d, "mixture", "data", cfg->mixture, VT_CFG_PATH, true, err, err_len) ||
      opt_str(c, d, "eval_mixture", "data", cfg->eval_mixture, VT_CFG_PATH, true, err, err_len) ||
      opt_int(c, d, "max_len", "data", &cfg->max_len, err, err_len) ||
      opt_int(c, t, "steps", "train", &cfg->steps, err, err_len) ||
      opt_int(c, t, "epochs", "train", &cfg->epochs, err, err_len) ||
      opt_int(c, t, "batch_size", "train", &cfg->batch_size, err, err_len) ||
      opt_int(c, t, "grad_accum", "train", &cfg->grad_accum, err, err_len) ||
      opt_int(c, t, "seed", "train", &seed, err, err_len) ||
      opt_str(c, t, "optimizer", "train", optimizer, sizeof optimizer, false, err, err_len) ||
      opt_globs(c, t, "trainable", "train", cfg->trainable, &cfg->n_trainable, err, err_len) ||
      opt_globs(c, t, "frozen", "train", cfg->frozen, &cfg->n_frozen, err, err_len) ||
      opt_str(c, o, "dir", "output", cfg->out_dir, VT_CFG_PATH, true, err, err_len) ||
      opt_int(c, o, "save_every", "output", &cfg->save_every, err, err_len) ||
      opt_int(c, o, "keep_last", "output", &keep, err, err_len) ||
      opt_int(c, o, "log_every", "output", &cfg->log_every, err, err_len) ||
      opt_int(c, o, "eval_every", "output", &cfg->eval_every, err, err_len))
    return -1;
  cfg->seed = (uint64_t)seed;
  cfg->keep_last = (int)keep;
  if (!strcmp(optimizer, "adamw"))
    cfg->optim = vt_optim_defaults(VT_OPTIM_ADAMW);
  else if (!strcmp(optimizer, "adam"))
    cfg->optim = vt_optim_defaults(VT_OPTIM_ADAM);
  else if (!strcmp(optimizer, "sgd"))
    cfg->optim = vt_optim_defaults(VT_OPTIM_SGD);
  else {
    snprintf(err, err_len, "%s: train.optimizer: expected adamw, adam or sgd, found \"%s\"",
             c->path, optimizer);
    return -1;
  }
  vt_optim_cfg *oc = &cfg->optim;
  if (opt_float(c, t, "lr", "train", &oc->lr, err, err_len) ||
      opt_float(c, t, "weight_decay", "train", &oc->weight_decay, err, err_len) ||
      opt_float(c, t, "beta1", "train", &oc->beta1, err, err_len) ||
      opt_float(c, t, "beta2", "train", &oc->beta2, err, err_len) ||
      opt_float(c, t, "eps", "train", &oc->eps, err, err_len) ||
      opt_float(c, t, "momentum", "train", &oc->momentum, err, err_len) ||
      opt_float(c, t, "max_grad_norm", "train", &oc->max_grad_norm, err, err_len) ||
      opt_bool(c, t, "decay_all", "train", &oc->decay_all, err, err_len))
    return -1;
  yaml_node_t *groups = ycfg_get(c, t, "groups");
  if (groups) {
    static const char *const gkeys[] = {"params", "lr", "weight_decay", NULL};
    if (groups->type != YAML_SEQUENCE_NODE) {
      snprintf(err, err_len,
               "%s:%zu: train.groups: expected a list of {params, lr, "
               "weight_decay}",
               c->path, groups->start_mark.line + 1);
      return -1;
    }
    for (yaml_node_item_t *it = groups->data.sequence.items.start;
         it < groups->data.sequence.items.top; it++) {
      yaml_node_t *g = yaml_document_get_node(&c->doc, *it);
      if (cfg->n_groups == VT_CFG_MAX_GROUPS) {
        snprintf(err, err_len, "%s: train.groups: at most %d groups", c->path, VT_CFG_MAX_GROUPS);
        return -1;
      }
      int k = cfg->n_groups;
      char globs[VT_CFG_MAX_GLOBS][256];
      int n_globs = 0;
      vt_optim_group_cfg *gc = &cfg->groups[k];
      gc->lr = oc->lr;
      gc->weight_decay = oc->weight_decay;
      if (ycfg_check_keys(c, g, gkeys, "train.groups", err, err_len) ||
          opt_globs(c, g, "params", "train.groups", globs, &n_globs, err, err_len) ||
          opt_float(c, g, "lr", "train.groups", &gc->lr, err, err_len) ||
          opt_float(c, g, "weight_decay", "train.groups", &gc->weight_decay, err, err_len))
        return -1;
      if (!n_globs) {
        snprintf(err, err_len, "%s:%zu: train.groups: a group needs params (name patterns)",
                 c->path, g->start_mark.line + 1);
        return -1;
      }
      size_t len = 0;
      for (int i = 0; i < n_globs; i++)
        len += (size_t)snprintf(cfg->group_globs[k] + len, sizeof cfg->group_globs[k] - len, "%s%s",
                                i ? "," : "", globs[i]);
      gc->globs = cfg->group_globs[k];
      cfg->n_groups++;
    }
  }
  oc->groups = cfg->groups;
  oc->n_groups = cfg->n_groups;
  if (s) {
    int64_t warm = 0, spe = 0;
    if (opt_str(c, s, "kind", "schedule", sched_kind, sizeof sched_kind, false, err, err_len) ||
        opt_int(c, s, "warmup_steps", "schedule", &warm, err, err_len) ||
        opt_float(c, s, "warmup_ratio", "schedule", &cfg->sched.warmup_ratio, err, err_len) ||
        opt_float(c, s, "min_lr_ratio", "schedule", &cfg->sched.min_lr_ratio, err, err_len) ||
        opt_float(c, s, "noam_model_dim", "schedule", &cfg->sched.noam_model_dim, err, err_len) ||
        opt_int(c, s, "steps_per_epoch", "schedule", &spe, err, err_len) ||
        opt_float(c, s, "gamma", "schedule", &cfg->sched.gamma, err, err_len))
      return -1;
    cfg->sched.warmup_steps = warm;
    /* warmup in steps replaces the default ratio unless a ratio is also given (an error) */
    if (warm > 0 && !ycfg_get(c, s, "warmup_ratio")) cfg->sched.warmup_ratio = 0;
    cfg->sched.steps_per_epoch = spe;
  }
  static const struct {
    const char *name;
    vt_sched_kind kind;
  } kinds[] = {{"constant", VT_SCHED_CONSTANT},
               {"cosine", VT_SCHED_COSINE},
               {"noam", VT_SCHED_NOAM},
               {"exp_epoch", VT_SCHED_EXP_EPOCH}};
  for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
    if (!strcmp(sched_kind, kinds[i].name)) {
      cfg->sched.kind = kinds[i].kind;
      kind_name = kinds[i].name;
    }
  if (!kind_name) {
    snprintf(err, err_len,
             "%s: schedule.kind: expected constant, cosine, noam or exp_epoch, "
             "found \"%s\"",
             c->path, sched_kind);
    return -1;
  }
  return 0;
}

int vt_train_config_load(vt_train_cfg *cfg, const char *path, char *err, size_t err_len) {
  memset(cfg, 0, sizeof *cfg);
  snprintf(cfg->path, sizeof cfg->path, "%s", path);
  cfg->batch_size = 1;
  cfg->grad_accum = 1;
  cfg->seed = 1;
  cfg->max_len = 2048;
  cfg->keep_last = 3;
  cfg->log_every = 1;
  cfg->sched.kind = VT_SCHED_COSINE;
  cfg->sched.warmup_ratio = 0.03;
  ycfg c;
  if (ycfg_load(&c, path, err, err_len)) return -1;
  int rc = load_sections(cfg, &c, err, err_len);
  ycfg_free(&c);
  if (rc) return -1;
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
  else if (cfg->max_len < 2)
    bad = "data.max_len must be at least 2";
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
