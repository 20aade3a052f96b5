/* qwen2: the Qwen2 / Qwen2.5 decoder (RMSNorm, RoPE, grouped-query attention with qkv bias,
 * SwiGLU MLP, tied or untied LM head) over the autograd core. Parameters are registered under
 * the HF names ("model.layers.N.self_attn.q_proj.weight", ...), so a checkpoint reads like
 * the model it came from. The config is filled by the caller (train/ reads HF config.json).
 * Built from the model/ blocks: nn_embedding, nn_layer (nn_layer_cfg_llama), nn_norm. */
#ifndef VT_QWEN2_H
#define VT_QWEN2_H

#include "autograd/vt.h"
#include "model/nn_layer.h"

typedef struct {
  int64_t vocab_size, hidden_size, intermediate_size;
  int64_t num_hidden_layers, num_attention_heads, num_key_value_heads;
  int64_t max_position_embeddings;
  double rope_theta, rms_norm_eps, initializer_range;
  bool tie_word_embeddings;
  /* training options, not part of the HF config */
  bool recompute;        /* recompute each layer's activations in backward */
  int64_t ce_chunk_rows; /* rows of logits alive at once in the loss (0: automatic) */
  /* q/k/v and gate/up as separate GEMMs instead of one each (packing rounds a few values
   * differently with some BLAS kernels; the results agree within f32 tolerance) */
  bool unpacked;
} qwen2_cfg;

/* The model: blocks of model/ (nn_*) under the HF names. Per-forward state (layout, masks)
 * travels in the arguments of qwen2_forward / qwen2_loss, never in these fields. */
typedef struct qwen2 {
  qwen2_cfg cfg;
  const vt_params *ps; /* the store the parameters live in (initialisers write through it) */
  nn_embedding embed;
  nn_layer *layers; /* [num_hidden_layers] */
  nn_norm norm;
  vt_tensor *lm_head; /* == embed.w when tied */
} qwen2;

/* How the sequences of a batch [B, T] are laid out; zero (or NULL) means one sample per row,
 * positions 0..T-1, no padding. */
typedef struct {
  vt_tensor *lengths;  /* i32 [B]: right padding, keys at positions >= lengths[b] masked */
  vt_tensor *pos;      /* i32 [T] or [B, T]: RoPE positions (packed samples restart at 0) */
  vt_tensor *segments; /* i32 [B, T]: packed samples, tokens attend within their segment */
} qwen2_layout;

/* Qwen2.5-7B-Instruct's architecture (the full-size reference config). */
qwen2_cfg qwen2_cfg_7b(void);
/* Checks sizes and divisibility; returns 0, or -1 with a message naming the field. */
int qwen2_cfg_check(const qwen2_cfg *cfg, char *err, size_t err_len);
/* Parameter count of a config, without allocating anything. */
int64_t qwen2_param_count(const qwen2_cfg *cfg);

/* Registers the parameters in ps (before vt_params_alloc), each layer's in the HF order
 * except that the q/k/v weights come before their biases (so they can be packed). Returns
 * 0, or -1 with err; qwen2_free is safe after a failure. */
int qwen2_init(qwen2 *m, vt_params *ps, const qwen2_cfg *cfg, char *err, size_t err_len);
void qwen2_free(qwen2 *m);
/* HF's initialisation: normal(0, initializer_range) matrices, zero biases, unit norms. */
void qwen2_init_weights(qwen2 *m, vt_rng *rng);

/* Token embeddings of ids [B, T] (i32): [B, T, hidden]. */
vt_tensor *qwen2_embed(qwen2 *m, vt_ctx *ctx, vt_tensor *ids);
/* The decoder over input embeddings [B, T, hidden] laid out as `layout` says (NULL: plain
 * rows): the final-normed hidden states. */
vt_tensor *qwen2_forward(qwen2 *m, vt_ctx *ctx, vt_tensor *embeds, const qwen2_layout *layout);
/* Logits [B, T, vocab] of hidden states (materialises them: for tests and evaluation). */
vt_tensor *qwen2_logits(qwen2 *m, vt_ctx *ctx, vt_tensor *hidden);
/* Mean LM cross-entropy of ids [B, T] against labels [B, T] (HF semantics: position t
 * predicts labels[t + 1], -100 ignored), chunked over the vocabulary. In a packed row the
 * label at each sample's first token must be -100, so no sample predicts the next one. */
vt_tensor *qwen2_loss(qwen2 *m, vt_ctx *ctx, vt_tensor *ids, vt_tensor *labels,
                      const qwen2_layout *layout);

#endif
