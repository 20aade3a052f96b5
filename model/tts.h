/* tts: the speech decoder of VITA-1.5 (Freeze-Omni's LLM2TTSCodecAR), LLaMA layers from the
 * model/ blocks. The text's LLM input-embedding rows (a frozen table), each cut into
 * llm_hidden / hidden vectors, go through NAR layers (bidirectional) and then, as the
 * conditioning [BOS, NAR output], through AR layers together with the codec tokens [SOS, y]:
 * the conditioning is bidirectional, the codec tokens are causal and see all of it. A final
 * RMSNorm and a head with bias give logits over codec_vocab + 4 classes; the loss is the
 * summed cross-entropy of y then EOS. Parameters carry the VITA-1.5 release names
 * (embedding, layers_pre_nn.N.*, layers.N.*, norm, out_fnn) plus the frozen LLM table
 * under its HF name (model.embed_tokens.weight). model/ reads no files: train/ fills cfg. */
#ifndef VT_TTS_H
#define VT_TTS_H

#include "model/nn_layer.h"

/* Special classes after the codec ids: BOS opens the conditioning, SOS the codec tokens,
 * EOS ends them, PAD is ignored by the loss (VT_SPEECH_PAD for the 1024-entry codebook). */
#define TTS_BOS(cfg) ((int32_t)(cfg)->codec_vocab)
#define TTS_SOS(cfg) ((int32_t)(cfg)->codec_vocab + 1)
#define TTS_EOS(cfg) ((int32_t)(cfg)->codec_vocab + 2)
#define TTS_PAD(cfg) ((int32_t)(cfg)->codec_vocab + 3)

typedef struct {
  int64_t hidden_size, num_attention_heads, intermediate_size;
  int64_t nar_layers, ar_layers;           /* layers_pre_nn and layers */
  int64_t codec_vocab;                     /* codebook size; classes are codec_vocab + 4 */
  int64_t llm_vocab_size, llm_hidden_size; /* the frozen LLM input-embedding table */
  double rope_theta, rms_norm_eps, initializer_range;
  bool recompute; /* recompute each layer's activations in backward */
} tts_cfg;

typedef struct {
  tts_cfg cfg;
  vt_tensor *llm_embed; /* [llm_vocab, llm_hidden], frozen */
  nn_embedding embedding;
  nn_layer *nar, *ar;
  nn_norm norm;
  nn_linear out_fnn;
} tts;

/* One batch on the host: row b holds text_lens[b] >= 1 text ids (LLM vocabulary) and
 * codec_lens[b] >= 0 codec ids; rows are strided by text_stride / codec_stride; at most
 * TTS_MAX_ROWS rows (their layout is computed on the stack). */
#define TTS_MAX_ROWS 4096
typedef struct {
  int64_t batch;
  const int32_t *text, *text_lens;
  int64_t text_stride;
  const int32_t *codec, *codec_lens;
  int64_t codec_stride;
} tts_batch;

/* The full-size decoder (4 NAR + 4 AR layers of 896, 14 heads, FFN 4864, a 1024 codebook)
 * conditioned on Qwen2.5-7B's 152064 x 3584 embedding table. */
tts_cfg tts_cfg_full(void);
/* Checks sizes and divisibility; 0, or -1 with a message naming the fields (for example a
 * llm_hidden_size that is not a multiple of hidden_size names both). */
int tts_cfg_check(const tts_cfg *cfg, char *err, size_t err_len);
/* Parameters of the decoder (what trains), and of the frozen LLM table. */
int64_t tts_param_count(const tts_cfg *cfg);
int64_t tts_llm_embed_count(const tts_cfg *cfg);

/* Registers the parameters in ps (before vt_params_alloc). Returns 0, or -1 with err. */
int tts_init(tts *m, vt_params *ps, const tts_cfg *cfg, char *err, size_t err_len);
void tts_free(tts *m);
/* normal(0, initializer_range) matrices and embeddings (PAD's row zero, as padding_idx), zero
 * head bias, unit norms. with_llm: the LLM table too (when no checkpoint provides it). */
void tts_init_weights(tts *m, const vt_params *ps, vt_rng *rng, bool with_llm);

/* What the decoder predicts for a batch: the final-normed hidden state of every codec row
 * (SOS, y...) in batch order, rows [sum(codec_lens + 1), hidden], and each row's target
 * (y then EOS), i32 [rows]. */
typedef struct {
  vt_tensor *hidden, *targets;
  int64_t rows;
} tts_out;

/* Runs the decoder; a bad batch (ids out of range, negative lengths) fails the ctx with a
 * message naming the row. */
tts_out tts_forward(tts *m, vt_ctx *ctx, const tts_batch *batch);
/* Logits [rows, codec_vocab + 4] of tts_forward's hidden rows. */
vt_tensor *tts_logits(tts *m, vt_ctx *ctx, vt_tensor *hidden);
/* The training loss: cross-entropy summed over the codec rows (PAD ignored). */
vt_tensor *tts_loss(tts *m, vt_ctx *ctx, const tts_batch *batch);

#endif
