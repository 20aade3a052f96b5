/* Pre-norm transformer layer built from the blocks:
 *   x = x + drop_path(ls1 * dropout(attn(norm1(x))))
 *   x = x + drop_path(ls2 * dropout(mlp(norm2(x))))
 * configured by norm kind, biases, activation, layer scale (ls1/ls2), dropout and drop path,
 * with optional activation recompute. Presets give the Qwen2 / LLaMA, InternViT and WeNet
 * (audio encoder) layers with their export names. */
#ifndef VT_NN_LAYER_H
#define VT_NN_LAYER_H

#include "model/nn_attn.h"
#include "model/nn_mlp.h"
#include "model/nn_norm.h"

typedef struct {
  nn_attn_cfg attn;
  nn_mlp_cfg mlp;
  nn_norm_kind norm;
  double norm_eps;
  bool norm_bias;            /* LayerNorm with bias */
  const char *norm1, *norm2; /* "input_layernorm", "post_attention_layernorm"; "norm1", ... */
  bool layer_scale;          /* ls1 / ls2 vectors [hidden] (InternViT) */
  const char *ls1, *ls2;
  float dropout;   /* on each branch's output before the residual add (WeNet: 0.1) */
  float drop_path; /* this layer's stochastic depth probability */
  bool recompute;  /* recompute the layer's activations in backward */
} nn_layer_cfg;

typedef struct {
  nn_layer_cfg cfg;
  nn_norm norm1, norm2;
  nn_attn attn;
  nn_mlp mlp;
  vt_tensor *ls1, *ls2;
} nn_layer;

/* Qwen2 / LLaMA decoder layer (RMSNorm, RoPE, SwiGLU, no o/mlp bias) under HF names. */
nn_layer_cfg nn_layer_cfg_llama(int64_t hidden, int64_t heads, int64_t kv_heads, int64_t ffn,
                                double rope_theta, double eps, bool qkv_bias);
/* InternViT-300M layer (LayerNorm, fused qkv with bias, GELU erf MLP, ls1/ls2). */
nn_layer_cfg nn_layer_cfg_internvit(int64_t hidden, int64_t heads, int64_t ffn, double eps);
/* WeNet / ESPnet transformer encoder layer of the audio encoder (LayerNorm, relative position
 * attention, ReLU FFN with biases, dropout). */
nn_layer_cfg nn_layer_cfg_wenet(int64_t hidden, int64_t heads, int64_t ffn, double eps,
                                float dropout);

void nn_layer_init(nn_layer *l, nn_reg *r, const char *prefix, const nn_layer_cfg *cfg);
/* HF-style initialisation: every linear normal(0, std) with zero bias (q, k, v or qkv, o,
 * linear_pos, then the MLP's), pos_bias_u/v normal(0, std), norms one / zero, ls1/ls2 ls_init. */
void nn_layer_init_weights(const nn_layer *l, const vt_params *ps, vt_rng *rng, float std,
                           float ls_init);
/* x [B, T, hidden] -> [B, T, hidden]. */
vt_tensor *nn_layer_forward(const nn_layer *l, vt_ctx *ctx, vt_tensor *x, const nn_fwd *f);

#endif
