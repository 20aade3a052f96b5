/* Run output: one JSON object per optimizer step appended to RUN_DIR/metrics.jsonl (flushed
 * every line, so a crash loses at most one), and the human progress line on the console:
 * step, loss, LR, grad norm, tokens/s and ETA, redrawn in place on a terminal. */
#ifndef VT_METRICS_H
#define VT_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "model/model.h"

typedef struct {
  int64_t step; /* 1-based: optimizer steps done */
  double loss, lr, grad_norm;
  int64_t tokens; /* tokens (with a counted label) in this step, over all ranks */
  double tokens_per_s;
  bool skipped; /* non-finite gradients: update skipped */
  /* the model's loss terms (means over the step), and the later phases' LR and grad norm */
  const char *term_names[VT_MODEL_MAX_TERMS];
  double term_values[VT_MODEL_MAX_TERMS];
  int n_terms;
  const char *phase_names[VT_MODEL_MAX_PHASES];
  double phase_lr[VT_MODEL_MAX_PHASES], phase_grad_norm[VT_MODEL_MAX_PHASES];
  int n_phases;
} vt_step_metrics;

typedef struct {
  FILE *jsonl;
  FILE *console; /* NULL: quiet */
  bool tty;
  int64_t total_steps;
  double start_time;
  int64_t start_step;
} vt_metrics;

/* Opens RUN_DIR/metrics.jsonl; on resume keeps only the lines of steps <= resume_step (a
 * run that died after its last checkpoint logged steps that will be redone). */
int vt_metrics_open(vt_metrics *m, const char *run_dir, int64_t resume_step, int64_t total_steps,
                    FILE *console, char *err, size_t err_len);
void vt_metrics_step(vt_metrics *m, const vt_step_metrics *s, bool print);
/* A free-form line (eval results, checkpoint saves), kept apart from the progress line. */
void vt_metrics_note(vt_metrics *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends {"step": N, key: value} to the jsonl (e.g. eval_loss). */
void vt_metrics_value(vt_metrics *m, int64_t step, const char *key, double value);
void vt_metrics_close(vt_metrics *m);
double vt_now(void);

#endif
