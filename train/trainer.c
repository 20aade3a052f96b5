/* The training loop and evaluation; see trainer.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_params.h"
#include "train/hf_config.h"
#include "train/trainer_impl.h"

int trainer_build_model(trainer *t, char *err, size_t err_len) {
  const vt_train_cfg *c = t->cfg;
  char path[VT_CFG_PATH + 16];
  struct stat st;
  bool is_dir = stat(c->model_config, &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(path, sizeof path, is_dir ? "%s/config.json" : "%s", c->model_config);
  if (hf_qwen2_config_read(path, &t->mcfg, err, err_len)) return -1;
  t->mcfg.recompute = c->recompute;
  t->mcfg.ce_chunk_rows = c->ce_chunk_rows;
  if (vt_params_init(&t->ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, err_len, "no CPU backend");
    return -1;
  }
  if (qwen2_init(&t->model, &t->ps, &t->mcfg, err, err_len)) return -1;
  t->model_ready = true;
  return vt_params_alloc(&t->ps, err, err_len);
}

/* Trainable and frozen patterns; every pattern must match something (a typo otherwise). */
static int apply_masks(trainer *t, char *err, size_t err_len) {
  const vt_train_cfg *c = t->cfg;
  if (c->n_trainable) {
    vt_params_set_trainable(&t->ps, "*", false);
    for (int i = 0; i < c->n_trainable; i++)
      if (!vt_params_set_trainable(&t->ps, c->trainable[i], true)) {
        snprintf(err, err_len, "%s: train.trainable: \"%s\" matches no parameter", c->path,
                 c->trainable[i]);
        return -1;
      }
  }
  for (int i = 0; i < c->n_frozen; i++)
    if (!vt_params_set_trainable(&t->ps, c->frozen[i], false)) {
      snprintf(err, err_len, "%s: train.frozen: \"%s\" matches no parameter", c->path,
               c->frozen[i]);
      return -1;
    }
  if (!vt_params_count(&t->ps, true)) {
    snprintf(err, err_len, "%s: the trainable patterns leave nothing to train", c->path);
    return -1;
  }
  return vt_params_alloc_grads(&t->ps, err, err_len);
}

static void trainer_free(trainer *t) {
  if (t->opt_ready) vt_optim_free(&t->opt);
  if (t->model_ready) qwen2_free(&t->model);
  vt_params_free(&t->ps);
  if (t->mix) mix_close(t->mix);
  mix_config_free(&t->mixcfg);
  vt_ctx_free(t->ctx);
  shard_sample_free(&t->sample);
  free(t->ids);
  free(t->labels);
  free(t->lengths);
  free(t->pos);
  free(t->segments);
  mix_pack_free(&t->pack);
}

/* Everything but the data: model, weights, masks, context, host batch buffers. */
static int trainer_setup(trainer *t, const vt_train_cfg *cfg, const vt_dist *dist,
                         const char *mixture, char *err, size_t err_len) {
  memset(t, 0, sizeof *t);
  t->cfg = cfg;
  if (!dist) {
    t->solo = (vt_dist){.rank = 0, .world = 1};
    dist = &t->solo;
  }
  t->dist = dist;
  vt_rng_seed(&t->rng, cfg->seed);
  if (trainer_build_model(t, err, err_len)) return -1;
  if (mix_config_load(&t->mixcfg, mixture, err, err_len)) return -1;
  if (mix_open(&t->mix, &t->mixcfg, dist->rank, dist->world, err, err_len)) return -1;
  t->ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, NULL);
  size_t cells = (size_t)(cfg->batch_size * cfg->max_len);
  t->ids = malloc(sizeof(int32_t) * cells);
  t->labels = malloc(sizeof(int32_t) * cells);
  t->lengths = malloc(sizeof(int32_t) * (size_t)cfg->batch_size);
  if (t->mixcfg.pack) {
    t->pos = malloc(sizeof(int32_t) * cells);
    t->segments = malloc(sizeof(int32_t) * cells);
  }
  if (!t->ctx || !t->ids || !t->labels || !t->lengths ||
      (t->mixcfg.pack && (!t->pos || !t->segments))) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  return 0;
}

/* Loss of the current micro-batch (on the tape when grad is enabled). */
static vt_tensor *batch_loss(trainer *t) {
  vt_ctx *ctx = t->ctx;
  int64_t b = t->cfg->batch_size, T = t->batch_t;
  vt_tensor *ids = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, T}, t->ids);
  vt_tensor *labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, T}, t->labels);
  vt_tensor *lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){b}, t->lengths);
  qwen2_layout lay = {.lengths = lengths};
  if (t->mixcfg.pack) {
    lay.pos = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, T}, t->pos);
    lay.segments = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, T}, t->segments);
  }
  return qwen2_loss(&t->model, ctx, ids, labels, &lay);
}

static int eval_epoch(trainer *t, mix *m, double *loss, int64_t *tokens, char *err, size_t err_len);

static int64_t steps_per_epoch(const trainer *t) {
  int64_t per_step = t->cfg->batch_size * t->cfg->grad_accum;
  int64_t n = mix_epoch_len(t->mix);
  return n > 0 ? (n + per_step - 1) / per_step : 0;
}

int vt_train(const vt_trainer_opts *o, vt_train_result *r, char *err, size_t err_len) {
  const vt_train_cfg *cfg = o->cfg;
  trainer t;
  memset(r, 0, sizeof *r);
  int rc = -1;
  vt_metrics met = {0};
  mix_config eval_cfg = {0};
  mix *eval_mix = NULL;
  if (trainer_setup(&t, cfg, o->dist, cfg->mixture, err, err_len)) goto done;
  if (cfg->eval_every &&
      (mix_config_load(&eval_cfg, cfg->eval_mixture, err, err_len) ||
       mix_open(&eval_mix, &eval_cfg, t.dist->rank, t.dist->world, err, err_len)))
    goto done;
  const vt_dist *d = t.dist;
  FILE *console = d->rank == 0 ? o->console : NULL;

  /* initial weights: a checkpoint (resume), given weights, or a seeded random init */
  char ckpt_root[VT_CFG_PATH + 16], ckpt_dir[4096] = "";
  snprintf(ckpt_root, sizeof ckpt_root, "%s/checkpoints", cfg->out_dir);
  int64_t ckpt_step = 0;
  int found = 0;
  if (o->resume) {
    found = ckpt_find_latest(ckpt_root, ckpt_dir, sizeof ckpt_dir, &ckpt_step, err, err_len);
    if (found < 0) goto done;
  }
  if (!found) {
    if (cfg->init[0]) {
      if (st_load_params_path(&t.ps, cfg->init, 0, err, err_len)) goto done;
    } else {
      qwen2_init_weights(&t.model, &t.rng); /* same seed on every rank: same weights */
    }
  }
  if (apply_masks(&t, err, err_len)) goto done;
  if (vt_optim_init(&t.opt, &t.ps, &cfg->optim, err, err_len)) goto done;
  t.opt_ready = true;
  int64_t spe = steps_per_epoch(&t);
  t.total_steps = cfg->steps > 0 ? cfg->steps : cfg->epochs * spe;
  if (t.total_steps < 1) {
    snprintf(err, err_len, "%s: the data mixture %s gives no steps", cfg->path, cfg->mixture);
    goto done;
  }
  vt_sched_cfg sc = cfg->sched;
  sc.total_steps = t.total_steps;
  if (sc.kind == VT_SCHED_EXP_EPOCH && !sc.steps_per_epoch) sc.steps_per_epoch = spe;
  if (vt_sched_init(&t.sched, &sc, err, err_len)) goto done;
  if (found && trainer_restore(&t, ckpt_dir, err, err_len)) goto done;
  r->start_step = t.step;
  if (found) snprintf(r->checkpoint, sizeof r->checkpoint, "%s", ckpt_dir); /* if nothing is left */
  r->total_steps = t.total_steps;
  if (d->rank == 0 && ckpt_mkdirs(cfg->out_dir, err, err_len)) goto done;
  if (d->rank == 0 &&
      vt_metrics_open(&met, cfg->out_dir, t.step, t.total_steps, console, err, err_len))
    goto done;
  if (console) {
    char n1[32], n2[32];
    vt_group_digits((int64_t)vt_params_count(&t.ps, false), n1, sizeof n1);
    vt_group_digits((int64_t)vt_params_count(&t.ps, true), n2, sizeof n2);
    vt_metrics_note(&met,
                    "vita train: %s parameters (%s trainable), %lld steps of %lld x %lld "
                    "sequences on %d rank(s)%s%s",
                    n1, n2, (long long)t.total_steps, (long long)cfg->batch_size,
                    (long long)cfg->grad_accum, d->world, found ? ", resumed from " : "",
                    found ? ckpt_dir : "");
  }

  double t_last = vt_now();
  int64_t empty_steps = 0;
  while (t.step < t.total_steps) {
    /* Every counted token of the step weighs the same, however the step is split into
     * micro-batches and ranks: each micro-batch contributes its summed loss, and the sum of
     * all ranks' gradients is divided by the global token count. So `mpirun -np 2` with
     * batch B equals one process with batch 2B on the same samples. */
    double loss_sum = 0;
    int64_t tokens = 0;
    vt_params_zero_grad(&t.ps);
    for (int64_t micro = 0; micro < cfg->grad_accum; micro++) {
      if (trainer_next_batch(&t, t.mix, err, err_len)) goto done;
      if (!t.batch_tokens) continue; /* nothing to learn from in this micro-batch */
      vt_tensor *loss = batch_loss(&t);
      double l = vt_item(t.ctx, loss);
      loss = vt_scale(t.ctx, loss, (float)t.batch_tokens); /* the summed loss */
      if (!vt_backward(t.ctx, loss)) {
        snprintf(err, err_len, "step %lld: %s", (long long)t.step + 1, vt_ctx_error(t.ctx));
        goto done;
      }
      vt_ctx_reset(t.ctx);
      loss_sum += l * (double)t.batch_tokens;
      tokens += t.batch_tokens;
    }
    /* ranks' loss sums and token counts (exact in f32 below 2^24 tokens a step) */
    float stats[2] = {(float)loss_sum, (float)tokens};
    vt_dist_allreduce_mean(d, stats, 2);
    double global_tokens_f = (double)stats[1] * d->world;
    if (vt_dist_allreduce_mean(d, t.ps.grad, t.ps.grad_numel)) {
      snprintf(err, err_len, "step %lld: gradient all-reduce failed", (long long)t.step + 1);
      goto done;
    }
    /* the all-reduce averaged over ranks: times world, over the global token count */
    if (global_tokens_f > 0)
      t.ps.be->optim->scale(t.ps.grad, (int64_t)t.ps.grad_numel,
                            (float)((double)d->world / global_tokens_f));
    stats[0] = global_tokens_f > 0 ? (float)((double)stats[0] * d->world / global_tokens_f) : 0;
    int64_t global_tokens = (int64_t)llround(global_tokens_f);
    vt_optim_stats os = {.lr = t.opt.cfg.lr * vt_sched_lr(&t.sched, t.step)};
    /* a step without a trained token has no gradient: no update (momentum would still move
     * the weights), but the step counts so the schedule and the data go on */
    if (global_tokens &&
        vt_optim_step(&t.opt, vt_sched_lr(&t.sched, t.step), t.step + 1, &os, err, err_len))
      goto done;
    t.step++;
    if (!global_tokens && !empty_steps++ && console)
      vt_metrics_note(&met,
                      "warning: step %lld had no trained tokens (every label -100: answers cut "
                      "off by data.max_len %lld?); no update was made",
                      (long long)t.step, (long long)cfg->max_len);
    t.tokens_seen += global_tokens;
    double now = vt_now();
    vt_step_metrics sm = {.step = t.step,
                          .loss = stats[0],
                          .lr = os.lr,
                          .grad_norm = os.grad_norm,
                          .tokens = global_tokens,
                          .tokens_per_s = (double)global_tokens / (now - t_last),
                          .skipped = os.skipped};
    t_last = now;
    if (r->first_loss == 0) r->first_loss = sm.loss;
    r->last_loss = sm.loss;
    if (d->rank == 0)
      vt_metrics_step(&met, &sm,
                      cfg->log_every && (t.step % cfg->log_every == 0 || t.step == t.total_steps));
    if (eval_mix && t.step % cfg->eval_every == 0) {
      double el;
      int64_t et;
      if (eval_epoch(&t, eval_mix, &el, &et, err, err_len)) goto done;
      if (d->rank == 0) {
        vt_metrics_value(&met, t.step, "eval_loss", el);
        vt_metrics_note(&met, "step %lld: eval loss %.4f over %lld tokens", (long long)t.step, el,
                        (long long)et);
      }
    }
    bool stop = (o->stop && *o->stop) || (o->stop_after > 0 && t.step >= o->stop_after);
    /* ranks agree on stopping: a signal may reach only some of them */
    float stop_f = stop ? 1.0f : 0.0f;
    vt_dist_allreduce_mean(d, &stop_f, 1);
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

/* Mean loss over the counted tokens of one epoch of m (this rank's slice), all ranks
 * combined, without the tape. m restarts at its cursor so repeated evaluations agree. */
static int eval_epoch(trainer *t, mix *m, double *loss, int64_t *tokens, char *err,
                      size_t err_len) {
  mix_cursor start = mix_get_cursor(m);
  bool prev = vt_set_grad_enabled(t->ctx, false);
  int64_t n = mix_epoch_len(m), batches = (n + t->cfg->batch_size - 1) / t->cfg->batch_size;
  double sum = 0;
  int64_t count = 0;
  int rc = -1;
  for (int64_t i = 0; i < batches; i++) {
    if (trainer_next_batch(t, m, err, err_len)) goto done;
    if (!t->batch_tokens) continue;
    double l = vt_item(t->ctx, batch_loss(t));
    if (vt_ctx_failed(t->ctx)) {
      snprintf(err, err_len, "eval batch %lld: %s", (long long)i, vt_ctx_error(t->ctx));
      goto done;
    }
    sum += l * (double)t->batch_tokens;
    count += t->batch_tokens;
    vt_ctx_reset(t->ctx);
  }
  float agg[2] = {(float)sum, (float)count};
  vt_dist_allreduce_mean(t->dist, agg, 2);
  *tokens = (int64_t)llround((double)agg[1] * t->dist->world);
  *loss = agg[1] > 0 ? (double)agg[0] / (double)agg[1] : NAN;
  rc = mix_set_cursor(m, &start, err, err_len);
done:
  vt_ctx_reset(t->ctx);
  vt_set_grad_enabled(t->ctx, prev);
  return rc;
}

int vt_eval(const vt_train_cfg *cfg, const char *weights, const char *mixture, const vt_dist *dist,
            double *loss, int64_t *tokens, char *err, size_t err_len) {
  trainer t;
  int rc = -1;
  if (trainer_setup(&t, cfg, dist, mixture, err, err_len)) goto done;
  char path[4200];
  struct stat st;
  snprintf(path, sizeof path, "%s/model.safetensors", weights);
  /* a checkpoint directory holds model.safetensors next to the optimizer state */
  bool ckpt_dir = stat(weights, &st) == 0 && S_ISDIR(st.st_mode) && stat(path, &st) == 0;
  if (!ckpt_dir) snprintf(path, sizeof path, "%s", weights);
  if (st_load_params_path(&t.ps, path, 0, err, err_len)) goto done;
  rc = eval_epoch(&t, t.mix, loss, tokens, err, err_len);
done:
  trainer_free(&t);
  return rc;
}
