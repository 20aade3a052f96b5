/* MLP blocks: gated (SwiGLU: down(act(gate(x)) * up(x)), Qwen2 / LLaMA) or plain
 * (fc2(dropout(act(fc1(x)))), InternViT's GELU, the audio encoder's ReLU FFN), with or without
 * biases. The names of the linears are config values, so each model keeps its export names. */
#ifndef VT_NN_MLP_H
#define VT_NN_MLP_H

#include "model/nn_act.h"
#include "model/nn_linear.h"

typedef struct {
  int64_t dim, hidden;
  nn_act act;      /* SwiGLU: NN_ACT_SILU */
  float act_slope; /* NN_ACT_LEAKY_RELU */
  bool gated;      /* act(fc1) * up */
  bool bias;       /* biases on every linear */
  float dropout;   /* after the activation (WeNet's FFN); needs training + rng */
  bool pack;       /* gated: gate and up as one GEMM when contiguous (registered so) */
  const char *fc1; /* "mlp.gate_proj", "mlp.fc1", "feed_forward.w_1" */
  const char *up;  /* gated only: "mlp.up_proj" */
  const char *fc2; /* "mlp.down_proj", "mlp.fc2", "feed_forward.w_2" */
} nn_mlp_cfg;

typedef struct {
  nn_mlp_cfg cfg;
  nn_linear fc1, up, fc2;
} nn_mlp;

void nn_mlp_init(nn_mlp *m, nn_reg *r, const char *prefix, const nn_mlp_cfg *cfg);
/* d: the call's dropout state (NULL: eval). */
vt_tensor *nn_mlp_forward(const nn_mlp *m, vt_ctx *ctx, vt_tensor *x, const nn_drop *d);

#endif
