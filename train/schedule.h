/* Learning-rate schedules as pure functions of the optimizer step: vt_sched_lr(s, step) gives
 * the multiplier applied to every group's base learning rate, so a resumed run needs only the
 * step count. Usage: vt_sched_init(&s, &cfg, err, n) once, then vt_sched_lr(&s, step). */
#ifndef VT_SCHEDULE_H
#define VT_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  VT_SCHED_CONSTANT,  /* 1 */
  VT_SCHED_COSINE,    /* linear warmup from 0, then cosine decay to min_lr_ratio */
  VT_SCHED_NOAM,      /* inverse-sqrt decay after linear warmup */
  VT_SCHED_EXP_EPOCH, /* gamma^epoch, epoch = step / steps_per_epoch */
} vt_sched_kind;

typedef struct {
  vt_sched_kind kind;
  int64_t total_steps;     /* COSINE: steps of the whole run */
  int64_t warmup_steps;    /* COSINE, NOAM; when 0, COSINE uses warmup_ratio */
  double warmup_ratio;     /* COSINE: warmup = ceil(ratio * total_steps), as HF Trainer does */
  double min_lr_ratio;     /* COSINE: floor of the decay as a fraction of the base LR */
  double noam_model_dim;   /* NOAM: scale d^-0.5 (Vaswani); 0 normalises the peak to 1 (WeNet) */
  int64_t steps_per_epoch; /* EXP_EPOCH */
  double gamma;            /* EXP_EPOCH */
} vt_sched_cfg;

typedef struct {
  vt_sched_cfg cfg;
  int64_t warmup; /* resolved warmup steps */
} vt_sched;

/* Checks the configuration and resolves the warmup. Returns 0, or -1 with a message in err. */
int vt_sched_init(vt_sched *s, const vt_sched_cfg *cfg, char *err, size_t err_len);

/* The LR multiplier for 0-based optimizer step `step` (the number of steps already taken), as
 * torch's LambdaLR gives it when scheduler.step() follows optimizer.step():
 *   CONSTANT  1
 *   COSINE    step < W: step / W;  else  0.5 * (1 + cos(pi * p)) * (1 - r) + r,
 *             p = (step - W) / (T - W) clamped to [0, 1], r = min_lr_ratio
 *             (HF get_cosine_with_min_lr_schedule_with_warmup, one half-cycle; HF lets
 *             the LR rise again past T, here it stays at r)
 *   NOAM      s = step + 1:  c * min(s^-0.5, s * W^-1.5),  c = d^-0.5 or W^0.5 when d = 0
 *   EXP_EPOCH gamma ^ floor(step / steps_per_epoch)                                         */
double vt_sched_lr(const vt_sched *s, int64_t step);

#endif
