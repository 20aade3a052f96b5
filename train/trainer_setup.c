/* Building a stage's trainer: the model through the interface, the parameter store on the
 * stage's device, the data, and one optimizer and schedule per phase; see trainer_impl.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_model.h"
#include "stages/stage_plan.h"
#include "train/trainer_impl.h"

/* Whether the stage's device has every kernel family training needs; else an error naming
 * the device and the family missing. The instance made to ask is released again. */
static bool stage_backend_ok(const stage_cfg *c, char *err, size_t err_len) {
  if (c->device.type == VT_DEV_CPU) return true;
  const char *why = "no CUDA backend in this build";
  vt_backend *be = vt_backend_cuda(c->device.index, &why);
  if (!be) {
    snprintf(err, err_len, "%s: device: cuda:%d is not usable: %s", c->path, c->device.index, why);
    return false;
  }
  const vt_kernel_family need[] = {VT_FAMILY_NORM, VT_FAMILY_ATTN, VT_FAMILY_LOSS, VT_FAMILY_OPTIM};
  bool ok = true;
  for (size_t i = 0; ok && i < sizeof need / sizeof *need; i++)
    if (!vt_backend_has_family(be, need[i])) {
      snprintf(err, err_len,
               "%s: device: training is not supported on the %s backend (no kernels of the %s "
               "family yet); use device: cpu",
               c->path, be->name, vt_backend_family_name(need[i]));
      ok = false;
    }
  vt_backend_free(be);
  return ok;
}

static int open_mixture(trainer *t, const char *mixture, bool one_rank, char *err, size_t err_len) {
  const stage_cfg *c = t->cfg;
  if (mix_config_load(&t->mixcfg, mixture, err, err_len)) return -1;
  /* the stage's ratios shape its training epochs; an eval pass covers the set as it is */
  for (int i = 0; !one_rank && i < c->n_ratios; i++) {
    size_t d = 0;
    while (d < t->mixcfg.n_datasets && strcmp(t->mixcfg.datasets[d].name, c->ratios[i].name)) d++;
    if (d == t->mixcfg.n_datasets) {
      snprintf(err, err_len, "%s: data.ratios: the mixture %s has no dataset \"%s\"", c->path,
               mixture, c->ratios[i].name);
      return -1;
    }
    t->mixcfg.datasets[d].ratio = c->ratios[i].weight;
  }
  int rank = one_rank ? 0 : t->dist->rank, world = one_rank ? 1 : t->dist->world;
  return mix_open(&t->mix, &t->mixcfg, rank, world, err, err_len);
}

/* The stage's loss weights and phase overrides must name the model's terms and phases. */
static int check_names(trainer *t, char *err, size_t err_len) {
  const stage_cfg *c = t->cfg;
  const vt_model *m = t->model;
  char list[512];
  for (int i = 0; i < c->n_losses; i++)
    if (vt_model_term_index(m, c->losses[i].name) < 0) {
      size_t o = 0;
      for (int k = 0; k < m->n_terms; k++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", m->terms[k].name);
      snprintf(err, err_len, "%s: train.losses: model %s has no loss term \"%s\" (its terms: %s)",
               c->path, m->ops->name, c->losses[i].name, list);
      return -1;
    }
  for (int i = 0; i < c->n_phases; i++)
    if (vt_model_phase_index(m, c->phases[i].name) < 0) {
      size_t o = 0;
      for (int k = 0; k < m->n_phases; k++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", k ? ", " : "", m->phases[k].name);
      snprintf(err, err_len, "%s: train.phases: model %s has no phase \"%s\" (its phases: %s)",
               c->path, m->ops->name, c->phases[i].name, list);
      return -1;
    }
  for (int k = 0; k < m->n_terms; k++) t->weights[k] = stage_loss_weight(c, m->terms[k].name);
  return 0;
}

/* The collectives: MPI for host values; for the store's buffers MPI on the CPU, NCCL on GPUs. */
static int open_colls(trainer *t, char *err, size_t err_len) {
  char why[600];
  if (vt_coll_open_mpi(&t->coll_host, t->dist, t->cfg->coll_timeout_s, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", t->cfg->path, why);
    return -1;
  }
  t->hc = &t->coll_host;
  t->dc = t->hc;
  if (t->ps.device.type != VT_DEV_CPU && t->dist->world > 1) {
    if (vt_coll_open(&t->coll_dev, t->dist, t->ps.be, t->cfg->coll_timeout_s, why, sizeof why)) {
      snprintf(err, err_len, "%s: device: %s", t->cfg->path, why);
      return -1;
    }
    t->dc = &t->coll_dev;
  }
  return 0;
}

int trainer_setup(trainer *t, const stage_cfg *cfg, const vt_dist *dist, const char *mixture,
                  bool eval_view, char *err, size_t err_len) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  if (!dist) {
    t->solo = (vt_dist){.rank = 0, .world = 1};
    dist = &t->solo;
  }
  t->dist = dist;
  vt_rng_seed(&t->rng, cfg->seed);
  if (!stage_backend_ok(cfg, err, err_len)) return -1;
  if (vt_params_init(&t->ps, cfg->device)) {
    snprintf(err, err_len, "%s: device: no parameter store on this device", cfg->path);
    return -1;
  }
  t->ps_ready = true;
  t->model =
      stage_model_open(cfg->model_name, cfg->model_config, &cfg->model_opts, &t->ps, err, err_len);
  if (!t->model || vt_params_alloc(&t->ps, err, err_len) || check_names(t, err, err_len)) return -1;
  t->n_phases = t->model->n_phases;
  /* eval passes read a one-rank view of the set and split it by slot (see vt_eval) */
  if (open_mixture(t, mixture, eval_view, err, err_len)) return -1;
  const char *why = NULL;
  /* the store's instance: on CUDA the step and the optimizer then share one stream */
  t->ctx = vt_ctx_init(&(vt_ctx_opts){.device = cfg->device, .backend = t->ps.be}, &why);
  size_t cells = (size_t)(cfg->batch_size * cfg->max_len);
  t->ids = malloc(sizeof(int32_t) * cells);
  t->labels = malloc(sizeof(int32_t) * cells);
  t->lengths = malloc(sizeof(int32_t) * (size_t)cfg->batch_size);
  t->pos = malloc(sizeof(int32_t) * cells);
  t->segments = malloc(sizeof(int32_t) * cells);
  t->codec_lens = malloc(sizeof(int32_t) * (size_t)cfg->batch_size);
  t->codec_spans = malloc(sizeof(int32_t) * 3 * (size_t)cfg->batch_size);
  t->fb_frames = malloc(sizeof(int32_t) * (size_t)cfg->batch_size);
  t->fb_spans = malloc(sizeof(int32_t) * 3 * (size_t)cfg->batch_size);
  t->wv_lens = malloc(sizeof(int32_t) * (size_t)cfg->batch_size);
  t->wv_spans = malloc(sizeof(int32_t) * 3 * (size_t)cfg->batch_size);
  if (!t->ctx) {
    snprintf(err, err_len, "%s: device: %s", cfg->path, why ? why : "no context");
    return -1;
  }
  if (!t->ids || !t->labels || !t->lengths || !t->pos || !t->segments || !t->codec_lens ||
      !t->codec_spans || !t->fb_frames || !t->fb_spans || !t->wv_lens || !t->wv_spans) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  return open_colls(t, err, err_len);
}

void trainer_free(trainer *t) {
  for (int p = 0; p < t->n_phases; p++) {
    if (t->phases[p].red_ready) vt_reducer_free(&t->phases[p].red);
    vt_zero_masters_free(&t->phases[p].zm);
    if (t->phases[p].opt_ready) vt_optim_free(&t->phases[p].opt);
    free(t->phases[p].updates);
  }
  if (t->dc && t->dc != t->hc) vt_coll_close(t->dc);
  if (t->hc) vt_coll_close(t->hc);
  t->dc = t->hc = NULL;
  vt_model_destroy(t->model);
  vt_ctx_free(t->ctx); /* before the store: the ctx borrows the store's backend instance */
  t->ctx = NULL;
  if (t->ps_ready) vt_params_free(&t->ps);
  if (t->mix) mix_close(t->mix);
  mix_config_free(&t->mixcfg);
  shard_sample_free(&t->sample);
  free(t->ids);
  free(t->labels);
  free(t->lengths);
  free(t->pos);
  free(t->segments);
  free(t->tiles);
  free(t->spans);
  free(t->codec);
  free(t->codec_pad);
  free(t->codec_lens);
  free(t->codec_spans);
  free(t->fb);
  free(t->fb_pad);
  free(t->fb_frames);
  free(t->fb_spans);
  free(t->au_frames);
  free(t->au_spans);
  free(t->wv), free(t->wv_pad), free(t->wv_lens), free(t->wv_spans);
  mix_pack_free(&t->pack);
}

/* Trainable and frozen patterns (every pattern must match something: a typo otherwise), then
 * gradient buffers for what trains. */
static int apply_masks(trainer *t, char *err, size_t err_len) {
  if (stage_apply_trainable(t->cfg, &t->ps, err, err_len)) return -1;
  return vt_params_alloc_grads(&t->ps, err, err_len);
}

static vt_optim_kind optim_kind(const char *s) {
  return !strcmp(s, "sgd") ? VT_OPTIM_SGD : !strcmp(s, "adam") ? VT_OPTIM_ADAM : VT_OPTIM_ADAMW;
}

/* The optimizer of a phase: the kind's defaults, the train values, the phase's overrides. */
static void resolve_optim(const stage_optim *top, const stage_optim *ph, trainer_phase *tp) {
  const char *kind = ph && ph->kind[0] ? ph->kind : top->kind[0] ? top->kind : "adamw";
  vt_optim_cfg *o = &tp->ocfg;
  *o = vt_optim_defaults(optim_kind(kind));
#define PICK(f)                                                                                    \
  if (ph && !isnan(ph->f))                                                                         \
    o->f = ph->f;                                                                                  \
  else if (!isnan(top->f))                                                                         \
    o->f = top->f;
  PICK(lr)
  PICK(weight_decay)
  PICK(beta1)
  PICK(beta2)
  PICK(eps)
  PICK(momentum)
  PICK(max_grad_norm)
#undef PICK
  if (ph && ph->decay_all >= 0)
    o->decay_all = ph->decay_all;
  else if (top->decay_all >= 0)
    o->decay_all = top->decay_all;
  const stage_optim *g = ph && ph->n_groups >= 0 ? ph : top->n_groups >= 0 ? top : NULL;
  o->n_groups = g ? g->n_groups : 0;
  for (int i = 0; i < o->n_groups; i++)
    tp->groups[i] = (vt_optim_group_cfg){.globs = g->groups[i].globs,
                                         .lr = isnan(g->groups[i].lr) ? o->lr : g->groups[i].lr,
                                         .weight_decay = isnan(g->groups[i].weight_decay)
                                                             ? o->weight_decay
                                                             : g->groups[i].weight_decay};
  o->groups = tp->groups;
}

static void resolve_sched(const stage_sched *top, const stage_sched *ph, vt_sched_cfg *s) {
  const char *kind = ph && ph->kind[0] ? ph->kind : top->kind[0] ? top->kind : "cosine";
  *s = (vt_sched_cfg){.kind = !strcmp(kind, "constant")    ? VT_SCHED_CONSTANT
                              : !strcmp(kind, "noam")      ? VT_SCHED_NOAM
                              : !strcmp(kind, "exp_epoch") ? VT_SCHED_EXP_EPOCH
                                                           : VT_SCHED_COSINE,
                      .warmup_ratio = 0.03};
  int64_t warm = ph && ph->warmup_steps >= 0 ? ph->warmup_steps : top->warmup_steps;
  double ratio = ph && !isnan(ph->warmup_ratio) ? ph->warmup_ratio : top->warmup_ratio;
  if (warm > 0) {
    s->warmup_steps = warm;
    s->warmup_ratio = 0; /* warmup in steps replaces the default ratio ... */
  }
  if (!isnan(ratio)) s->warmup_ratio = ratio; /* ... a ratio given too is an error below */
#define PICK(f, unset)                                                                             \
  if (ph && ph->f != (unset) && !(isnan((double)ph->f)))                                           \
    s->f = ph->f;                                                                                  \
  else if (top->f != (unset) && !isnan((double)top->f))                                            \
    s->f = top->f;
  PICK(min_lr_ratio, -1.0)
  PICK(noam_model_dim, -1.0)
  PICK(gamma, -1.0)
  PICK(steps_per_epoch, -1)
#undef PICK
}

int trainer_setup_optim(trainer *t, int64_t steps_per_epoch, char *err, size_t err_len) {
  if (apply_masks(t, err, err_len)) return -1;
  const stage_cfg *c = t->cfg;
  for (int p = 0; p < t->n_phases; p++) {
    trainer_phase *tp = &t->phases[p];
    const vt_model_phase *mp = &t->model->phases[p];
    const stage_phase *sp = stage_find_phase(c, mp->name);
    tp->updates = calloc((size_t)t->ps.n + 1, sizeof *tp->updates);
    if (!tp->updates) {
      snprintf(err, err_len, "out of memory");
      return -1;
    }
    int64_t n = 0;
    for (int i = 0; i < t->ps.n; i++) {
      tp->updates[i] =
          t->ps.items[i]->trainable && vt_model_phase_has(t->model, p, t->ps.items[i]->name);
      n += tp->updates[i];
    }
    if (!n) {
      snprintf(err, err_len,
               "%s: phase %s of model %s has nothing to train (its parameters %s "
               "are all frozen)",
               c->path, mp->name, t->model->ops->name, mp->params);
      return -1;
    }
    resolve_optim(&c->optim, sp ? &sp->optim : NULL, tp);
    tp->ocfg.only = tp->updates;
    /* ZeRO 1/2: each phase shards its own stretch over the ranks */
    if (c->zero > 0 && t->dist->world > 1) {
      tp->ocfg.shard_rank = t->dist->rank;
      tp->ocfg.shard_world = t->dist->world;
    }
    char why[512];
    if (vt_optim_init(&tp->opt, &t->ps, &tp->ocfg, why, sizeof why)) {
      if (t->n_phases > 1)
        snprintf(err, err_len, "%s: phase %s: %s", c->path, mp->name, why);
      else
        snprintf(err, err_len, "%s: %s", c->path, why);
      return -1;
    }
    tp->opt_ready = true;
    if (vt_reducer_init(&tp->red, t->dc, &tp->opt, c->zero, c->bucket_mb * (1 << 20), why,
                        sizeof why)) {
      snprintf(err, err_len, "%s: %s", c->path, why);
      return -1;
    }
    tp->red_ready = true;
    resolve_sched(&c->sched, sp ? &sp->sched : NULL, &tp->scfg);
    tp->scfg.total_steps = t->total_steps;
    if (tp->scfg.kind == VT_SCHED_EXP_EPOCH && !tp->scfg.steps_per_epoch)
      tp->scfg.steps_per_epoch = steps_per_epoch;
    if (vt_sched_init(&tp->sched, &tp->scfg, why, sizeof why)) {
      snprintf(err, err_len, "%s: schedule: %s", c->path, why);
      return -1;
    }
  }
  return 0;
}

void trainer_enter_phase(trainer *t, int p) {
  for (int i = 0; i < t->ps.n; i++) {
    vt_param *prm = t->ps.items[i];
    if (prm->trainable) prm->t.requires_grad = t->phases[p].updates[i];
  }
}
