/* Cost estimates of the blocks, for planning (`vita plan`, `vita info --stage`): the FLOPs of
 * one forward and the f32 values it allocates, counted from the ops the blocks run. Every op's
 * output lives in the step arena until the step ends, and backward allocates about as many
 * values again (one gradient per saved output, except a fused op's internals), so a layer on
 * the tape costs about twice its forward count; a layer under recompute keeps only its input (and
 * that input's gradient). tests/test_plan.c checks these counts against the arena's measured
 * high-water mark. */
#ifndef VT_NN_COST_H
#define VT_NN_COST_H

#include <stdbool.h>
#include <stdint.h>

#include "model/nn_layer.h"

typedef struct {
  double flops_weight;  /* forward GEMM FLOPs against weights: 2 per weight per position */
  double flops_attn;    /* forward FLOPs of the attention scores and the value mix */
  double act_floats;    /* f32 values the forward allocates */
  double nograd_floats; /* of those, values no gradient mirrors (a fused op's internals) */
} nn_cost;

/* One pre-norm layer over one sample of seq positions (causal halves the attention). */
nn_cost nn_cost_layer(const nn_layer_cfg *c, int64_t seq, bool causal);
/* A linear of in -> out over positions rows (with the bias add's output when bias). */
nn_cost nn_cost_linear(int64_t in, int64_t out, bool bias, int64_t rows);
/* a += b, every field. */
void nn_cost_add(nn_cost *a, nn_cost b);
/* Every field times k. */
nn_cost nn_cost_scale(nn_cost a, double k);

#endif
