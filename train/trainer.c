/* The training loop and evaluation; see trainer.h. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/checked.h"
#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_params.h"
#include "stages/stage_model.h"
#include "train/trainer_impl.h"

static int64_t steps_per_epoch(const trainer *t) {
  int64_t per_step = t->cfg->batch_size * t->cfg->grad_accum;
  int64_t n = mix_epoch_len(t->mix);
  return n > 0 ? (n + per_step - 1) / per_step : 0;
}

/* What one phase of a step measured, over all ranks. */
typedef struct {
  double term[VT_MODEL_MAX_TERMS]; /* global sums / global count */
  double loss;                     /* the weighted sum of the terms */
  double count;
  vt_optim_stats os;
} phase_result;

/* Data parallel after the step's backward: the gradient buckets (some started during
 * backward) complete, then the statistics are added. ZeRO 2 leaves each rank the sums of its
 * own shard only. The trainer divides by the global count in one place (phase_step). */
static int reduce_phase(trainer *t, trainer_phase *tp, double *stats, size_t n_stats, char *err,
                        size_t err_len) {
  char why[600];
  if (t->ps.grad_numel && vt_reducer_finish(&tp->red, why, sizeof why)) {
    snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, why);
    return -1;
  }
  if (vt_coll_allreduce_f64(t->hc, stats, n_stats, VT_COLL_SUM, "loss statistics")) {
    snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, t->hc->err);
    return -1;
  }
  return 0;
}

/* The update of a phase: unsharded, one optimizer step on the reduced gradients; ZeRO 1/2,
 * the step on this rank's shard (the global norm from the shards' sums of squares at stage
 * 2, where only the shard holds sums), then every rank's updated shard all-gathered. */
static int update_phase(trainer *t, trainer_phase *tp, double mult, vt_optim_stats *os, char *err,
                        size_t err_len) {
  vt_optim *o = &tp->opt;
  double norm = NAN;
  if (o->shard_world > 1 && t->cfg->zero == 2) {
    double ss = vt_optim_shard_sumsq(o);
    if (vt_coll_allreduce_f64(t->hc, &ss, 1, VT_COLL_SUM, "gradient norm")) {
      snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, t->hc->err);
      return -1;
    }
    norm = sqrt(ss);
  }
  if (vt_optim_step_norm(o, mult, t->step + 1, norm, os, err, err_len)) return -1;
  if (o->shard_world <= 1 || os->skipped || !o->state_numel) return 0;
  int rc;
  if (tp->zm.on) { /* sharded masters: the bf16 copies, and the whole f32 parameters */
    char why[600];
    if (!vt_zero_masters_gather(&tp->zm, t->dc, why, sizeof why)) return 0;
    snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, why);
    return -1;
  }
  if (o->param_base) { /* the parameters lie in the gradient layout: gather them in place */
    rc = t->dc->ops->allgather(t->dc, o->param_base, o->state_numel, "updated parameters");
  } else {
    vt_optim_pack_shard(o);
    rc =
        t->dc->ops->allgather(t->dc, t->ps.grad + o->flat_lo, o->state_numel, "updated parameters");
    if (!rc) vt_optim_unpack_params(o);
  }
  if (rc)
    snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, t->dc->err);
  else
    vt_params_sync_lowp(&t->ps); /* bf16 copies follow the gathered masters (no-op in fp32) */
  return rc;
}

/* One phase of the step: grad_accum micro-batches (the same ones every phase sees), summed
 * weighted loss terms backpropagated, all-reduced, divided by the global count, one update. */
static int phase_step(trainer *t, int p, phase_result *res, char *err, size_t err_len) {
  const stage_cfg *cfg = t->cfg;
  vt_model *m = t->model;
  int nt = m->n_terms;
  double stats[VT_MODEL_MAX_TERMS + 1] = {0}; /* term sums, then the count */
  memset(res, 0, sizeof *res);
  trainer_enter_phase(t, p);
  trainer_phase *tp = &t->phases[p];
  vt_zero_clear_grads(&t->ps, cfg->zero, t->dist->world);
  vt_model_step st = {.phase = p, .train = true, .frozen_train = cfg->frozen_train, .rng = &t->rng};
  for (int64_t micro = 0; micro < cfg->grad_accum; micro++) {
    /* a stop request between the micro-batches of the first phase ends the step before any
     * update (a long step with many micro-batches stops within one of them); the ranks agree,
     * as every rank must leave the step together */
    if (micro > 0 && p == 0 && t->stop) {
      double want = *t->stop ? 1.0 : 0.0;
      if (vt_coll_allreduce_f64(t->hc, &want, 1, VT_COLL_MAX, "stop request")) {
        snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, t->hc->err);
        return -1;
      }
      if (want > 0) return 1;
    }
    if (trainer_next_batch(t, t->mix, err, err_len)) return -1;
    vt_batch b;
    trainer_upload(t, &b);
    vt_model_loss out = {0};
    vt_tensor *objective = NULL;
    if (m->ops->loss(m, t->ctx, &b, &st, &out)) {
      snprintf(err, err_len, "step %lld: model %s, phase %s: %s", (long long)t->step + 1,
               m->ops->name, m->phases[p].name,
               vt_ctx_failed(t->ctx) ? vt_ctx_error(t->ctx) : "the loss failed");
      return -1;
    }
    if (out.count > 0) {
      for (int k = 0; k < out.n_terms; k++) {
        int ti = vt_model_term_index(m, out.terms[k].name);
        if (ti < 0 || m->terms[ti].phase != p) {
          snprintf(err, err_len, "model %s: loss term \"%s\" is not one of phase %s's terms",
                   m->ops->name, out.terms[k].name, m->phases[p].name);
          return -1;
        }
        stats[ti] += vt_item(t->ctx, out.terms[k].sum);
        double w = t->weights[ti];
        if (w == 0) continue;
        vt_tensor *x = w == 1 ? out.terms[k].sum : vt_scale(t->ctx, out.terms[k].sum, (float)w);
        objective = objective ? vt_add(t->ctx, objective, x) : x;
      }
    }
    if (!vt_ctx_failed(t->ctx) && objective && out.count > 0 && objective->requires_grad) {
      /* the last micro-batch's backward finishes the gradients: its buckets start reducing
       * as they become final */
      bool last = micro == cfg->grad_accum - 1;
      if (last) vt_reducer_arm(&tp->red, t->ctx);
      vt_backward(t->ctx, objective);
      if (last) vt_reducer_disarm(&tp->red, t->ctx);
    }
    if (vt_ctx_failed(t->ctx)) {
      snprintf(err, err_len, "step %lld: %s", (long long)t->step + 1, vt_ctx_error(t->ctx));
      return -1;
    }
    vt_ctx_reset(t->ctx);
    stats[nt] += out.count;
  }
  if (reduce_phase(t, tp, stats, (size_t)nt + 1, err, err_len)) return -1;
  res->count = stats[nt];
  /* the one place the sums become means: gradients and reported terms alike */
  if (res->count > 0 && t->ps.grad_numel)
    vt_zero_scale_grads(&t->ps, &tp->opt, cfg->zero, t->dist->world, (float)(1.0 / res->count));
  for (int k = 0; k < nt; k++) {
    if (m->terms[k].phase != p) continue;
    res->term[k] = res->count > 0 ? stats[k] / res->count : 0;
    res->loss += t->weights[k] * res->term[k];
  }
  double mult = vt_sched_lr(&tp->sched, t->step);
  res->os = (vt_optim_stats){.lr = tp->opt.cfg.lr * mult};
  /* a phase without a counted unit has no gradient: no update (momentum would still move
   * the weights), but the step counts so the schedule and the data go on */
  if (res->count > 0 && update_phase(t, tp, mult, &res->os, err, err_len)) return -1;
  return 0;
}

/* The model's metrics over every sample of epoch 0 of m (a one-rank view of the set) exactly
 * once: rank r takes slots r, r + world, ... of the order, all ranks' sums are added. */
static int eval_pass(trainer *t, mix *m, vt_eval_result *res, char *err, size_t err_len) {
  bool prev = vt_set_grad_enabled(t->ctx, false);
  bool counting = t->count_samples;
  t->count_samples = false;
  memset(res, 0, sizeof *res);
  double acc[2 * VT_MODEL_MAX_METRICS + 2] = {0};
  int n_metrics = 0, rc = -1;
  const char *names[VT_MODEL_MAX_METRICS] = {0};
  int64_t slot = t->dist->rank, end = mix_epoch_total(m), skipped = 0, samples = 0;
  while (slot < end) {
    if (trainer_eval_batch(t, m, &slot, t->dist->world, end, &skipped, err, err_len)) goto done;
    if (!t->batch_rows) continue;
    vt_batch b;
    trainer_upload(t, &b);
    vt_metric got[VT_MODEL_MAX_METRICS];
    int n = 0;
    if (t->model->ops->eval(t->model, t->ctx, &b, got, &n) || vt_ctx_failed(t->ctx)) {
      snprintf(err, err_len, "eval: model %s: %s", t->model->ops->name,
               vt_ctx_failed(t->ctx) ? vt_ctx_error(t->ctx) : "the metrics failed");
      goto done;
    }
    for (int k = 0; k < n && k < VT_MODEL_MAX_METRICS; k++) {
      names[k] = got[k].name;
      acc[2 * k] += got[k].sum;
      acc[2 * k + 1] += got[k].count;
    }
    if (n > n_metrics) n_metrics = n;
    samples += b.samples;
    vt_ctx_reset(t->ctx);
  }
  /* how many metrics: the most any rank saw (a rank without samples saw none); the names are
   * those of the rank's own batches, and rank 0, holding slot 0, always has them */
  acc[2 * VT_MODEL_MAX_METRICS] = (double)samples;
  acc[2 * VT_MODEL_MAX_METRICS + 1] = (double)skipped;
  double nm = n_metrics;
  if (vt_coll_allreduce_f64(t->hc, acc, 2 * VT_MODEL_MAX_METRICS + 2, VT_COLL_SUM,
                            "eval metrics") ||
      vt_coll_allreduce_f64(t->hc, &nm, 1, VT_COLL_MAX, "eval metric count")) {
    snprintf(err, err_len, "eval: %s", t->hc->err);
    goto done;
  }
  res->n_metrics = (int)nm;
  for (int k = 0; k < res->n_metrics; k++)
    res->metrics[k] = (vt_metric){names[k] ? names[k] : "?", acc[2 * k], acc[2 * k + 1]};
  res->samples = (int64_t)acc[2 * VT_MODEL_MAX_METRICS];
  res->skipped = (int64_t)acc[2 * VT_MODEL_MAX_METRICS + 1];
  rc = 0;
done:
  vt_ctx_reset(t->ctx);
  vt_set_grad_enabled(t->ctx, prev);
  t->count_samples = counting;
  return rc;
}

double vt_eval_value(const vt_eval_result *res, const char *name) {
  for (int k = 0; k < res->n_metrics; k++)
    if (!strcmp(res->metrics[k].name, name))
      return res->metrics[k].count > 0 ? res->metrics[k].sum / res->metrics[k].count : NAN;
  return NAN;
}

/* RUN_DIR/samples.json: what the mixture gave out from step 0 to the cursor (see trainer.h). */
static int write_samples(trainer *t, char *err, size_t err_len) {
  size_t n = mix_n_datasets(t->mix);
  int64_t *drawn = calloc(n ? n : 1, sizeof *drawn);
  mix_cursor c = mix_get_cursor(t->mix);
  if (!drawn || mix_drawn(t->mix, &c, drawn, err, err_len)) {
    if (!drawn) snprintf(err, err_len, "out of memory");
    free(drawn);
    return -1;
  }
  json_t *ds = json_array();
  for (size_t d = 0; d < n; d++)
    json_array_append_new(
        ds, json_pack("{s:s, s:f, s:I, s:I, s:I}", "name", t->mixcfg.datasets[d].name, "ratio",
                      t->mixcfg.datasets[d].ratio, "size", (json_int_t)mix_dataset_size(t->mix, d),
                      "per_epoch", (json_int_t)mix_dataset_per_epoch(t->mix, d), "drawn",
                      (json_int_t)drawn[d]));
  free(drawn);
  json_t *j = json_pack("{s:s, s:I, s:o}", "stage", t->cfg->name, "step", (json_int_t)t->step,
                        "datasets", ds);
  char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  json_decref(j);
  char path[STAGE_PATH + 32];
  snprintf(path, sizeof path, "%s/samples.json", t->cfg->out_dir);
  int rc = text ? ckpt_write_text(path, text, err, err_len) : -1;
  if (!text) snprintf(err, err_len, "%s: out of memory", path);
  free(text);
  return rc;
}

static void note_eval(vt_metrics *met, int64_t step, const vt_eval_result *er) {
  char line[512];
  size_t o = 0;
  for (int k = 0; k < er->n_metrics; k++) {
    double v = er->metrics[k].count > 0 ? er->metrics[k].sum / er->metrics[k].count : NAN;
    char key[80];
    snprintf(key, sizeof key, "eval_%s", er->metrics[k].name);
    vt_metrics_value(met, step, key, v);
    o += (size_t)snprintf(line + o, sizeof line - o, "%s %s %.4f", k ? "," : "",
                          er->metrics[k].name, v);
  }
  vt_metrics_note(met, "step %lld: eval%s over %lld samples", (long long)step, line,
                  (long long)er->samples);
}

int vt_train(const vt_trainer_opts *o, vt_train_result *r, char *err, size_t err_len) {
  const stage_cfg *cfg = o->cfg;
  trainer t;
  memset(r, 0, sizeof *r);
  if (err_len) err[0] = '\0';
  int rc = -1;
  vt_metrics met = {0};
  mix_config eval_cfg = {0};
  mix *eval_mix = NULL;
  if (trainer_setup(&t, cfg, o->dist, cfg->mixture, false, err, err_len)) goto done;
  t.stop = o->stop;
  const vt_dist *d = t.dist;
  /* the eval set: a one-rank view split by slot, so every sample counts once (see eval_pass) */
  if (cfg->eval_every && (mix_config_load(&eval_cfg, cfg->eval_mixture, err, err_len) ||
                          mix_open(&eval_mix, &eval_cfg, 0, 1, err, err_len)))
    goto done;
  FILE *console = d->rank == 0 ? o->console : NULL;

  /* initial weights: a checkpoint (resume), the stage's sources, or a seeded random init */
  char ckpt_root[STAGE_PATH + 16], ckpt_dir[4096] = "";
  snprintf(ckpt_root, sizeof ckpt_root, "%s/checkpoints", cfg->out_dir);
  int64_t ckpt_step = 0;
  int found = 0;
  if (o->resume) {
    found = ckpt_find_latest(ckpt_root, ckpt_dir, sizeof ckpt_dir, &ckpt_step, err, err_len);
    if (found < 0) goto done;
  }
  if (!found) {
    /* same seed on every rank: same weights; sources then overwrite what they hold */
    if (t.model->ops->init_weights(t.model, &t.ps, &t.rng, err, err_len) ||
        stage_load_init_over(cfg, &t.ps, o->base_weights, o->n_base_weights, o->base_globs, console,
                             err, err_len))
      goto done;
    if (o->save_initial && d->rank == 0 &&
        st_save_params(&t.ps, o->save_initial, NULL, err, err_len))
      goto done;
  }
  int64_t spe = steps_per_epoch(&t);
  if (cfg->steps > 0)
    t.total_steps = cfg->steps;
  else if (vt_mul_i64_overflows(cfg->epochs, spe, &t.total_steps) ||
           t.total_steps > STAGE_MAX_STEPS) {
    snprintf(err, err_len, "%s: train.epochs %lld x %lld steps per epoch is too many steps",
             cfg->path, (long long)cfg->epochs, (long long)spe);
    goto done;
  }
  if (t.total_steps < 1) {
    snprintf(err, err_len, "%s: the data mixture %s gives no steps", cfg->path, cfg->mixture);
    goto done;
  }
  if (trainer_setup_optim(&t, spe, err, err_len)) goto done;
  /* bf16 mixed precision: the GEMMs read bf16 copies of the initial f32 masters (a restore
   * below makes them again from the restored ones); without bf16 units this is an error
   * naming what the CPU lacks */
  char gemm_kernel[256] = "";
  if (cfg->precision != VT_F32 && (vt_ctx_set_gemm_dtype(t.ctx, cfg->precision, gemm_kernel,
                                                         sizeof gemm_kernel, err, err_len) ||
                                   vt_params_enable_lowp(&t.ps, cfg->precision, err, err_len))) {
    char why[1024];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, err_len, "%s: train.precision %s: %s", cfg->path, vt_dtype_name(cfg->precision),
             why);
    goto done;
  }
  /* stochastic rounding of the copies: keyed by the seed and the step, so the copies made
   * here at a restored step are the ones the uninterrupted run made after that step */
  if (cfg->stochastic_rounding) {
    if (cfg->precision == VT_F32) {
      snprintf(err, err_len, "%s: train.stochastic_rounding needs train.precision: bf16",
               cfg->path);
      goto done;
    }
    if (vt_params_set_rounding(&t.ps, true, cfg->seed, err, err_len)) goto done;
    vt_params_sync_lowp_step(&t.ps, t.step);
  }
  /* bf16 ZeRO: the first batch's forward marks how each parameter is read, and the GEMM
   * weights' f32 masters are sharded before the first step, and before a restore, which then
   * loads this rank's shard of them only (trainer_restore_copies makes the copies) */
  if (trainer_probe_masters(&t, err, err_len)) goto done;
  /* a checkpoint whose state does not match it (trainer.json against the manifest, NaN in the
   * moments, ...) is skipped for the one before it, as an incomplete one is */
  while (found && trainer_restore(&t, ckpt_dir, err, err_len)) {
    fprintf(stderr, "warning: skipping checkpoint %s: %s\n", ckpt_dir, err);
    char why[1024];
    found = ckpt_find_before(ckpt_root, ckpt_step, ckpt_dir, sizeof ckpt_dir, &ckpt_step, why,
                             sizeof why);
    if (found <= 0) {
      if (found < 0)
        snprintf(err, err_len, "%s", why);
      else
        snprintf(err, err_len, "%s: no checkpoint left that can be resumed (see the warnings)",
                 ckpt_root);
      goto done;
    }
  }
  r->start_step = t.step;
  if (found) snprintf(r->checkpoint, sizeof r->checkpoint, "%s", ckpt_dir); /* if nothing is left */
  r->total_steps = t.total_steps;
  r->params = (int64_t)vt_params_count(&t.ps, false);
  r->trainable_params = (int64_t)vt_params_count(&t.ps, true);
  if (d->rank == 0 && ckpt_mkdirs(cfg->out_dir, err, err_len)) goto done;
  if (d->rank == 0 &&
      vt_metrics_open(&met, cfg->out_dir, t.step, t.total_steps, console, err, err_len))
    goto done;
  if (console) {
    char n1[32], n2[32];
    vt_group_digits((int64_t)vt_params_count(&t.ps, false), n1, sizeof n1);
    vt_group_digits((int64_t)vt_params_count(&t.ps, true), n2, sizeof n2);
    vt_metrics_note(&met,
                    "vita train: stage %s, model %s, %s parameters (%s trainable), %lld steps of "
                    "%lld x %lld sequences on %d rank(s)%s%s",
                    cfg->name, t.model->ops->name, n1, n2, (long long)t.total_steps,
                    (long long)cfg->batch_size, (long long)cfg->grad_accum, d->world,
                    found ? ", resumed from " : "", found ? ckpt_dir : "");
    if (cfg->precision != VT_F32)
      vt_metrics_note(&met, "precision %s: GEMMs on %s, f32 master weights and optimizer",
                      vt_dtype_name(cfg->precision), gemm_kernel);
  }
  {
    int64_t kept, n = trainer_sharded_masters(&t, &kept);
    r->sharded_masters = n;
    bool wanted = cfg->precision == VT_BF16 && cfg->zero >= 1 && d->world > 1;
    if (!n && wanted && console)
      vt_metrics_note(&met, "f32 masters kept whole: no trainable 2-D weight is read by GEMMs "
                            "alone");
    /* right after a restore's load, which read only this rank's shard of the masters: the
     * pages of the released ones were never written (the larger count of the ranks) */
    double res[2] = {0, 0};
    if (n && found) {
      res[0] = (double)t.restored_resident, res[1] = (double)t.restored_pages;
      if (d->world > 1 && vt_coll_allreduce_f64(t.hc, res, 2, VT_COLL_MAX, "resident masters")) {
        snprintf(err, err_len, "%s", t.hc->err);
        goto done;
      }
    }
    if (n && console) {
      char a[32], b[32], c[96] = "";
      vt_group_digits(n, a, sizeof a);
      vt_group_digits(kept, b, sizeof b);
      if (found)
        snprintf(c, sizeof c, "; after the restore %.0f of %.0f released whole pages resident",
                 res[0], res[1]);
      vt_metrics_note(&met,
                      "f32 masters sharded: %s values of GEMM weights, %s kept by rank 0; "
                      "norms, biases, embeddings and the rest kept whole%s",
                      a, b, c);
    }
  }

  double t_last = vt_now();
  int64_t empty_steps = 0;
  vt_model *m = t.model;
  while (t.step < t.total_steps) {
    /* Every counted unit of the step weighs the same, however the step is split into
     * micro-batches and ranks: micro-batches contribute summed terms, the sums of all ranks
     * are added and divided by the global count. So `mpirun -np 2` with batch B equals one
     * process with batch 2B on the same samples. Each phase reads the same micro-batches. */
    mix_cursor step_start = mix_get_cursor(t.mix);
    vt_rng rng_start = t.rng; /* and the same random draws (a codec's segments) */
    phase_result pr[VT_MODEL_MAX_PHASES];
    int cut = 0;
    for (int p = 0; p < t.n_phases && !cut; p++) {
      t.count_samples = p == 0;
      if (p > 0) t.rng = rng_start;
      if (p > 0 && mix_set_cursor(t.mix, &step_start, err, err_len)) goto done;
      cut = phase_step(&t, p, &pr[p], err, err_len);
      if (cut < 0) goto done;
    }
    if (cut) { /* stopped inside the step: no update made; the data rewound to its start */
      vt_params_zero_grad(&t.ps);
      t.rng = rng_start;
      if (mix_set_cursor(t.mix, &step_start, err, err_len) ||
          trainer_save(&t, r->checkpoint, sizeof r->checkpoint, err, err_len))
        goto done;
      if (console)
        vt_metrics_note(&met, "stopped inside step %lld; saved checkpoint %s",
                        (long long)t.step + 1, r->checkpoint);
      r->interrupted = true;
      break;
    }
    t.step++;
    int64_t global_count = (int64_t)llround(pr[0].count);
    if (!global_count && !empty_steps++ && console)
      vt_metrics_note(&met,
                      "warning: step %lld had no trained tokens (every label -100: answers cut "
                      "off by data.max_len %lld?); no update was made",
                      (long long)t.step, (long long)cfg->max_len);
    t.tokens_seen += global_count;
    double now = vt_now();
    vt_step_metrics sm = {.step = t.step,
                          .loss = pr[0].loss,
                          .lr = pr[0].os.lr,
                          .grad_norm = pr[0].os.grad_norm,
                          .tokens = global_count,
                          .tokens_per_s = (double)global_count / (now - t_last),
                          .skipped = pr[0].os.skipped};
    for (int k = 0; k < m->n_terms; k++) {
      sm.term_names[sm.n_terms] = m->terms[k].name;
      sm.term_values[sm.n_terms++] = pr[m->terms[k].phase].term[k];
    }
    for (int p = 1; p < t.n_phases; p++) {
      sm.phase_names[sm.n_phases] = m->phases[p].name;
      sm.phase_lr[sm.n_phases] = pr[p].os.lr;
      sm.phase_grad_norm[sm.n_phases++] = pr[p].os.grad_norm;
    }
    t_last = now;
    if (t.step == r->start_step + 1) r->first_loss = sm.loss;
    r->last_loss = sm.loss;
    if (d->rank == 0)
      vt_metrics_step(&met, &sm,
                      cfg->log_every && (t.step % cfg->log_every == 0 || t.step == t.total_steps));
    if (eval_mix && t.step % cfg->eval_every == 0) {
      vt_eval_result er;
      if (eval_pass(&t, eval_mix, &er, err, err_len)) goto done;
      if (d->rank == 0) note_eval(&met, t.step, &er);
    }
    bool stop = (o->stop && *o->stop) || (o->stop_after > 0 && t.step >= o->stop_after);
    /* ranks agree on stopping: a signal may reach only some of them */
    double stop_f = stop ? 1.0 : 0.0;
    if (vt_coll_allreduce_f64(t.hc, &stop_f, 1, VT_COLL_MAX, "stop request")) {
      snprintf(err, err_len, "step %lld: %s", (long long)t.step, t.hc->err);
      goto done;
    }
    stop = stop_f > 0;
    bool periodic = cfg->save_every && t.step % cfg->save_every == 0;
    if (periodic || stop || t.step == t.total_steps) {
      if (trainer_save(&t, r->checkpoint, sizeof r->checkpoint, err, err_len)) goto done;
      if (console) vt_metrics_note(&met, "saved checkpoint %s", r->checkpoint);
    }
    if (stop) {
      r->interrupted = true;
      break;
    }
  }
  r->step = t.step;
  if (d->rank == 0 && write_samples(&t, err, err_len)) goto done;
  r->skipped_samples = t.skipped_samples;
  r->truncated_samples = t.truncated_samples;
  if (console && (t.skipped_samples || t.truncated_samples))
    vt_metrics_note(&met, "samples skipped: %lld, cut to max_len %lld: %lld",
                    (long long)t.skipped_samples, (long long)cfg->max_len,
                    (long long)t.truncated_samples);
  rc = 0;
done:
  vt_metrics_close(&met);
  if (eval_mix) mix_close(eval_mix);
  mix_config_free(&eval_cfg);
  trainer_free(&t);
  return rc;
}

int vt_eval(const stage_cfg *cfg, const char *weights, const char *mixture, const vt_dist *dist,
            vt_eval_result *res, char *err, size_t err_len) {
  trainer t;
  int rc = -1;
  if (trainer_setup(&t, cfg, dist, mixture, true, err, err_len)) goto done;
  /* a checkpoint or model directory holds model.safetensors (or shards with an index) */
  if (st_load_params_path(&t.ps, weights, 0, err, err_len)) goto done;
  rc = eval_pass(&t, t.mix, res, err, err_len);
done:
  trainer_free(&t);
  return rc;
}
