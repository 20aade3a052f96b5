/* Stage plans: memory per rank and FLOPs per step from the config (see stage_plan.h). */
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "stages/stage_model.h"
#include "stages/stage_plan.h"

int stage_apply_trainable(const stage_cfg *c, vt_params *ps, char *err, size_t err_len) {
  if (c->n_trainable) {
    vt_params_set_trainable(ps, "*", false);
    for (int i = 0; i < c->n_trainable; i++) {
      int n = 0;
      for (int k = 0; k < ps->n; k++)
        if (stage_globs_match(c->trainable[i], ps->items[k]->name))
          n += vt_params_set_trainable(ps, ps->items[k]->name, true);
      if (!n) {
        snprintf(err, err_len, "%s: train.trainable: \"%s\" matches no parameter", c->path,
                 c->trainable[i]);
        return -1;
      }
    }
  }
  for (int i = 0; i < c->n_frozen; i++) {
    int n = 0;
    for (int k = 0; k < ps->n; k++)
      if (stage_globs_match(c->frozen[i], ps->items[k]->name))
        n += vt_params_set_trainable(ps, ps->items[k]->name, false);
    if (!n) {
      snprintf(err, err_len, "%s: train.frozen: \"%s\" matches no parameter", c->path,
               c->frozen[i]);
      return -1;
    }
  }
  if (!vt_params_count(ps, true)) {
    snprintf(err, err_len, "%s: the trainable patterns leave nothing to train", c->path);
    return -1;
  }
  return 0;
}

/* Activations and FLOPs from the model's cost parts. */
static void plan_compute(const stage_plan_opts *o, stage_plan *p) {
  double flops = 0, act[VT_MODEL_MAX_PHASES] = {0}, act_rc[VT_MODEL_MAX_PHASES] = {0};
  p->act = p->act_recompute = 0;
  for (int i = 0; i < p->n_parts; i++) {
    stage_plan_part *q = &p->parts[i];
    const vt_model_cost *c = &q->cost;
    /* inputs 0: the part before it (none for the first) */
    unsigned in = c->inputs & VT_MODEL_COST_ROOT ? 0
                  : c->inputs                    ? c->inputs
                  : i                            ? 1u << (i - 1)
                                                 : 0;
    bool grad = q->n_trainable > 0;
    for (int k = 0; k < i; k++)
      if (in & (1u << k)) grad = grad || p->parts[k].grad;
    q->grad = grad;
    flops += c->flops_weight + c->flops_attn;
    int ph = c->phase >= 0 && c->phase < VT_MODEL_MAX_PHASES ? c->phase : 0;
    if (grad) {
      flops += c->flops_weight + 2.0 * c->flops_attn;
      if (q->n_params > 0) flops += c->flops_weight * (double)q->n_trainable / (double)q->n_params;
      act[ph] += c->act_bytes;
      act_rc[ph] += c->act_bytes_recompute;
    } else {
      act[ph] += c->act_bytes_frozen;
      act_rc[ph] += c->act_bytes_frozen;
    }
  }
  for (int ph = 0; ph < VT_MODEL_MAX_PHASES; ph++) { /* the arena is reset between phases */
    p->act = fmax(p->act, act[ph]);
    p->act_recompute = fmax(p->act_recompute, act_rc[ph]);
  }
  p->flops_sample = flops / (double)p->shape.batch;
  p->flops_step = p->flops_sample * (double)p->shape.batch * (double)p->grad_accum * o->world;
}

int stage_plan_make(const stage_cfg *cfg, const stage_plan_opts *o, stage_plan *p, char *err,
                    size_t err_len) {
  memset(p, 0, sizeof *p);
  if (o->world < 1) {
    snprintf(err, err_len, "plan: world %d: expected at least 1 rank", o->world);
    return -1;
  }
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m =
      stage_model_open(cfg->model_name, cfg->model_config, &cfg->model_opts, &ps, err, err_len);
  int rc = -1;
  if (!m || stage_apply_trainable(cfg, &ps, err, err_len)) goto out;
  snprintf(p->model, sizeof p->model, "%s", m->ops->name);
  p->world = o->world, p->bf16 = o->bf16;
  p->grad_accum = cfg->grad_accum > 0 ? cfg->grad_accum : 1;
  p->bucket_bytes = o->bucket_bytes > 0 ? o->bucket_bytes : cfg->bucket_mb * (1 << 20);
  p->n_params = (int64_t)vt_params_count(&ps, false);
  p->n_trainable = (int64_t)vt_params_count(&ps, true);
  p->weights = (o->bf16 ? 6.0 : 4.0) * (double)p->n_params;
  bool in_run = false; /* in a run of f32 parameters kept whole (store order) */
  for (int k = 0; k < ps.n; k++) {
    const vt_param *q = ps.items[k];
    if (q->t.dtype != VT_F32) continue;
    bool shardable = q->trainable && q->t.ndim == 2 && fnmatch("*embed*", q->name, 0) &&
                     fnmatch("*codebook*", q->name, 0);
    if (shardable) p->n_shardable += vt_numel(&q->t);
    p->n_kept_runs += !shardable && !in_run;
    in_run = !shardable;
  }
  p->n_kept_runs += m->n_phases > 0 ? m->n_phases : 1; /* each phase's shard */
  p->moments = !strcmp(cfg->optim.kind, "sgd") ? 1 : 2;
  p->shape = o->shape;
  if (p->shape.batch <= 0) p->shape.batch = cfg->batch_size;
  if (p->shape.tokens <= 0) p->shape.tokens = cfg->max_len;
  vt_model_cost costs[VT_MODEL_MAX_COST_PARTS];
  memset(costs, 0, sizeof costs);
  p->n_parts = m->ops->cost ? m->ops->cost(m, &p->shape, costs) : 0;
  if (p->shape.batch <= 0) p->shape.batch = 1;
  for (int i = 0; i < p->n_parts; i++) p->parts[i].cost = costs[i];
  /* each parameter counts in the first part whose globs take it */
  for (int k = 0; k < ps.n; k++) {
    for (int i = 0; i < p->n_parts; i++) {
      if (!stage_globs_match(costs[i].params, ps.items[k]->name)) continue;
      int64_t e = vt_numel(&ps.items[k]->t);
      p->parts[i].n_params += e;
      if (ps.items[k]->trainable) p->parts[i].n_trainable += e;
      break;
    }
  }
  plan_compute(o, p);
  rc = 0;
out:
  vt_model_destroy(m);
  vt_params_free(&ps);
  return rc;
}
