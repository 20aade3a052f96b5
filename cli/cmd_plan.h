/* The stage plan as `vita plan` and `vita info --stage` print it. */
#ifndef VT_CMD_PLAN_H
#define VT_CMD_PLAN_H

#include <stdio.h>

#include "stages/stage_plan.h"

#include "train/zero.h"

/* The memory of one rank: the plan's weights and activations with vt_zero_plan's gradients,
 * optimizer state and communication buffers at ZeRO stage zero (nccl: GPU ranks). */
typedef struct {
  vt_zero_mem zm;
  double total, total_recompute; /* bytes, with the activations of one micro-batch */
} cli_plan_mem;

cli_plan_mem cli_plan_memory(const stage_plan *p, int zero, bool nccl);
/* Prints p for the stage at path; memory > 0 adds whether it fits that many bytes. */
void cli_plan_print(FILE *f, const char *path, const stage_plan *p, int zero, bool nccl,
                    double memory);
/* "80GiB", "512MiB", "1.5TB", "1e9" -> bytes; -1 when s is not a size. */
double cli_parse_bytes(const char *s);

#endif
