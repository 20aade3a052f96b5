/* The built-in demo job: trains tiny_lm on generated token sequences (a fixed random
 * permutation of the previous token with 10% noise) with AdamW and a warmup + cosine schedule, printing a
 * progress line as it goes. Used by `vita demo` and the end-to-end test. */
#ifndef VT_DEMO_H
#define VT_DEMO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  int64_t steps;
  int64_t batch; /* predicted tokens per step */
  double lr;
  uint64_t seed;
  int vocab, context, dim, hidden;
  int log_every; /* progress line every N steps (0 = quiet) */
  FILE *log;
} vt_demo_cfg;

typedef struct {
  double first_loss, last_loss; /* mean over the first / last tenth of the steps */
  double min_possible;           /* entropy of the generating rule: the best reachable loss */
  double seconds, tokens_per_s;
  int64_t params;
} vt_demo_result;

vt_demo_cfg vt_demo_defaults(void);
/* Returns 0, or -1 with a message in err. */
int vt_demo_run(const vt_demo_cfg *cfg, vt_demo_result *res, char *err, size_t err_len);

#endif
