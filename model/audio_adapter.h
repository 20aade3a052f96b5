/* audio_adapter: VITA-1.5's audio adapter (`CNNSubsampling`, DESIGN.md §4) from the model/
 * blocks: zero the padded encoder frames, right-pad 4, Conv1d(enc -> 2 enc, k 5, stride 2)
 * `conv1d2`, LayerNorm(eps 1e-3) `bn2`, GELU, Linear(2 enc -> llm) `project`; lengths halve as
 * mask[:, :, 0::2]. Optional prompt embeddings [n, llm] are prepended to every clip. Names are
 * the release's "model.audio_encoder.adpter.*" (sic) and "model.audio_encoder.prompt_embeddings".
 */
#ifndef VT_AUDIO_ADAPTER_H
#define VT_AUDIO_ADAPTER_H

#include "autograd/vt.h"
#include "model/nn_conv.h"
#include "model/nn_linear.h"

typedef struct {
  int64_t enc_dim;  /* 1024 */
  int64_t llm_dim;  /* 3584 */
  int kernel;       /* 5 */
  double norm_eps;  /* 1e-3 */
  int64_t n_prompt; /* 0: none (the release); 25 in the public prompt-tuning script */
} audio_adapter_cfg;

audio_adapter_cfg audio_adapter_cfg_vita(void);
int64_t audio_adapter_param_count(const audio_adapter_cfg *c);
/* LLM rows of a clip of t encoder frames: ceil(t / 2) + n_prompt (0 for an empty clip). */
int64_t audio_adapter_out_len(const audio_adapter_cfg *c, int64_t t);

typedef struct {
  audio_adapter_cfg cfg;
  const vt_params *ps;
  nn_conv conv; /* conv1d2 + bn2 + GELU */
  nn_linear project;
  nn_embedding prompt; /* n_prompt > 0 */
} audio_adapter;

int audio_adapter_init(audio_adapter *a, vt_params *ps, const audio_adapter_cfg *cfg, char *err,
                       size_t err_len);
/* torch's defaults: U(+-1/sqrt(fan_in)) conv and linear, unit LayerNorm, N(0, 1) prompts. */
void audio_adapter_init_weights(audio_adapter *a, vt_rng *rng);

/* Encoder output h [B, T, enc] with host lengths[B] -> [B, n_prompt + ceil(T / 2), llm] with
 * out_lengths[b] = audio_adapter_out_len(lengths[b]) (host array of B; rows past it are
 * padding). */
vt_tensor *audio_adapter_forward(audio_adapter *a, vt_ctx *ctx, vt_tensor *h,
                                 const int32_t *lengths, int32_t *out_lengths);

#endif
