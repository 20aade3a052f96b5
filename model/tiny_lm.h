/* tiny_lm: a small next-token model for the built-in demo and end-to-end tests: the
 * embeddings of the previous `context` tokens, concatenated, go through a GELU MLP to
 * logits over the vocabulary. It registers its parameters in a vt_params store by name. */
#ifndef VT_TINY_LM_H
#define VT_TINY_LM_H

#include "autograd/vt.h"

typedef struct {
  int vocab, context, dim, hidden;
} tiny_lm_cfg;

typedef struct {
  tiny_lm_cfg cfg;
  vt_tensor *embed;        /* model.embed_tokens.weight [vocab, dim] */
  vt_tensor *fc1_w, *fc1_b; /* model.mlp.fc1 [hidden, context*dim], [hidden] */
  vt_tensor *fc2_w, *fc2_b; /* model.lm_head [vocab, hidden], [vocab] */
} tiny_lm;

/* Registers the parameters (before vt_params_alloc). Returns 0, or -1 with err filled. */
int tiny_lm_init(tiny_lm *m, vt_params *ps, const tiny_lm_cfg *cfg, char *err, size_t err_len);
/* Fills the allocated parameters: normal(0, 0.02) weights, zero biases. */
void tiny_lm_init_weights(tiny_lm *m, vt_rng *rng);
/* Mean next-token cross-entropy: ids [n, context] (i32) predict targets [n] (i32, read on the
 * host: the demo runs on the CPU). */
vt_tensor *tiny_lm_loss(tiny_lm *m, vt_ctx *ctx, vt_tensor *ids, vt_tensor *targets);

#endif
