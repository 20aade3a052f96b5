/* The cost hooks' arithmetic for each model family (vt_model_ops.cost): parts of a forward
 * counted from the blocks (model/nn_cost.h) at a micro-batch shape. Bytes are of the step
 * arena: a part on the tape allocates its forward values and about as many in backward; under
 * recompute a layer keeps its input and that input's gradient, and one layer at a time is
 * replayed. */
#ifndef VT_MODEL_COST_H
#define VT_MODEL_COST_H

#include "model/audio_adapter.h"
#include "model/audio_enc.h"
#include "model/model.h"
#include "model/nn_cost.h"
#include "model/qwen2.h"
#include "model/tts.h"
#include "model/vit.h"

/* Fills a part from its layers (n_layers of one layer's count, hidden wide) and the rest of
 * its forward (embeddings, norms, heads), per micro-batch of rows positions; `fused` of the
 * rest's values get no gradient of their own (the chunked loss's logits). */
void model_cost_part(vt_model_cost *p, const char *name, const char *params, nn_cost layer,
                     int64_t n_layers, int64_t hidden, int64_t rows, nn_cost rest, double fused);

/* Qwen2 over s->batch x s->tokens: part "llm" (the loss forms its logits a chunk at a time). */
void model_cost_qwen2(const qwen2_cfg *c, const vt_model_shape *s, const char *params,
                      vt_model_cost *llm);
/* InternViT over s->batch x s->tiles tiles, then the mlp2x_gelu adapter into llm_hidden:
 * parts "vision" and "adapter". */
void model_cost_vit(const vit_cfg *c, int64_t llm_hidden, const vt_model_shape *s,
                    const char *vision_params, const char *adapter_params, vt_model_cost *vision,
                    vt_model_cost *adapter);
/* The audio encoder over s->batch clips of `frames` fbank frames (CTC head when ctc_vocab):
 * part "audio_encoder". */
void model_cost_audio_enc(const audio_enc_cfg *c, int64_t batch, int64_t frames, const char *params,
                          vt_model_cost *enc);
/* The audio adapter (CNNSubsampling: conv1d k, stride 2, LayerNorm, GELU, Linear) over
 * `batch` clips of `frames` encoder frames: part "audio_adapter". */
void model_cost_audio_adapter(const audio_adapter_cfg *c, int64_t batch, int64_t frames,
                              const char *params, vt_model_cost *ad);
/* The speech decoder over s->batch samples of s->tokens text tokens and s->speech codec
 * tokens: part "speech_decoder". */
void model_cost_tts(const tts_cfg *c, const vt_model_shape *s, const char *params,
                    vt_model_cost *dec);

#endif
