/* Learning-rate schedules; see schedule.h. */
#include "train/schedule.h"

#include <math.h>
#include <stdio.h>

#define PI 3.14159265358979323846

int vt_sched_init(vt_sched *s, const vt_sched_cfg *cfg, char *err, size_t err_len) {
  s->cfg = *cfg;
  s->warmup = cfg->warmup_steps;
  switch (cfg->kind) {
  case VT_SCHED_CONSTANT: return 0;
  case VT_SCHED_COSINE:
    if (cfg->total_steps <= 0) {
      snprintf(err, err_len, "cosine schedule: total_steps must be positive, got %lld",
               (long long)cfg->total_steps);
      return -1;
    }
    if (cfg->warmup_steps < 0 || !(cfg->warmup_ratio >= 0 && cfg->warmup_ratio <= 1)) {
      snprintf(err, err_len,
               "cosine schedule: warmup_steps %lld / warmup_ratio %g (want >= 0 / in [0, 1])",
               (long long)cfg->warmup_steps, cfg->warmup_ratio);
      return -1;
    }
    if (cfg->warmup_steps && cfg->warmup_ratio) {
      snprintf(err, err_len, "cosine schedule: give warmup_steps or warmup_ratio, not both");
      return -1;
    }
    if (!cfg->warmup_steps) s->warmup = (int64_t)ceil(cfg->warmup_ratio * cfg->total_steps);
    if (!(cfg->min_lr_ratio >= 0 && cfg->min_lr_ratio <= 1)) {
      snprintf(err, err_len, "cosine schedule: min_lr_ratio %g is outside [0, 1]",
               cfg->min_lr_ratio);
      return -1;
    }
    return 0;
  case VT_SCHED_NOAM:
    if (cfg->warmup_steps <= 0) {
      snprintf(err, err_len, "noam schedule: warmup_steps %lld must be positive",
               (long long)cfg->warmup_steps);
      return -1;
    }
    if (!(cfg->noam_model_dim >= 0 && isfinite(cfg->noam_model_dim))) {
      snprintf(err, err_len, "noam schedule: noam_model_dim %g must be finite and >= 0",
               cfg->noam_model_dim);
      return -1;
    }
    return 0;
  case VT_SCHED_EXP_EPOCH:
    if (cfg->steps_per_epoch <= 0 || !(cfg->gamma > 0 && isfinite(cfg->gamma))) {
      snprintf(err, err_len,
               "exponential schedule: steps_per_epoch %lld and gamma %g must be positive",
               (long long)cfg->steps_per_epoch, cfg->gamma);
      return -1;
    }
    return 0;
  }
  snprintf(err, err_len, "unknown schedule kind %d", (int)cfg->kind);
  return -1;
}

double vt_sched_lr(const vt_sched *s, int64_t step) {
  const vt_sched_cfg *c = &s->cfg;
  if (step < 0) step = 0;
  switch (c->kind) {
  case VT_SCHED_CONSTANT: return 1.0;
  case VT_SCHED_COSINE: {
    if (step < s->warmup) return (double)step / (double)s->warmup;
    double span = (double)(c->total_steps - s->warmup);
    double p = span > 0 ? (double)(step - s->warmup) / span : 1.0;
    if (p > 1.0) p = 1.0; /* past total_steps the LR stays at its floor */
    double f = 0.5 * (1.0 + cos(PI * p));
    return f * (1.0 - c->min_lr_ratio) + c->min_lr_ratio; /* HF's order of operations */
  }
  case VT_SCHED_NOAM: {
    double st = (double)(step + 1), w = (double)s->warmup;
    double scale = c->noam_model_dim > 0 ? 1.0 / sqrt(c->noam_model_dim) : sqrt(w);
    return scale * fmin(1.0 / sqrt(st), st * pow(w, -1.5));
  }
  case VT_SCHED_EXP_EPOCH: return pow(c->gamma, (double)(step / c->steps_per_epoch));
  }
  return 1.0;
}
