/* The VITA omni model's vision path behind the model interface (registered as "vita", model
 * type "vita-Qwen2"): InternViT (model/vit.h) and the mlp2x_gelu adapter feed Qwen2 at the
 * batch's image spans. Each tile's 256 adapter outputs replace the input embeddings of its span
 * (the batch builder puts one span per tile, each followed by a "\n" token, and ignores the
 * labels there); a batch without images runs no vision code at all (the public code runs a
 * dummy image instead). Parameters carry the VITA-1.5 release names:
 * model.vision_tower.vision_tower.*, model.mm_projector.{0,2}.*, and the Qwen2 names.
 * With an "audio_config" the model also holds the audio encoder and adapter (model/audio_llm.h),
 * spliced at the batch's fbank spans, and with a "modality_head" the state head (loss term
 * "modality", eval metric "modality_acc"). */
#ifndef VT_VITA_MODEL_H
#define VT_VITA_MODEL_H

#include <jansson.h>

#include "model/model.h"
#include "model/vit.h"

/* The InternViT config fields (image_size, patch_size, hidden_size, intermediate_size,
 * num_hidden_layers, num_attention_heads, layer_norm_eps, drop_path_rate, initializer_range,
 * initializer_factor) of an InternViT config.json or a VITA config's "vision_config" over
 * the InternViT-300M defaults (the release's config.json carries none). norm_type must be
 * layer_norm and qk_normalization false when given. Returns 0, or -1 naming the field. */
int vit_cfg_from_json(const json_t *config, const char *where, vit_cfg *cfg, char *err,
                      size_t err_len);
json_t *vit_cfg_to_json(const vit_cfg *cfg);

/* The vision part of a created "vita" model (NULL when m is another model): for `vita embed`
 * and tests. */
typedef struct {
  vit *tower;
  vit_adapter *adapter;
} vita_vision;
vita_vision vita_model_vision(vt_model *m);

/* The LM logits [B, T, vocab] of a batch with its images and audio spliced in (eval mode; for
 * tests and small evaluations: it materialises the full logits). */
vt_tensor *vita_model_logits(vt_model *m, vt_ctx *ctx, const vt_batch *b);

extern const vt_model_ops vita_model_ops;

#endif
