/* audio_llm: the audio path of the VITA model (DESIGN.md §4, §7): the audio encoder and the audio
 * adapter, whose outputs replace the input embeddings at each clip's span (the batch builder
 * expands each <audio> placeholder into audio_llm_positions(frames) positions and ignores the
 * labels there), and the optional modality (user state) head: Linear(hidden -> classes) on the
 * LLM's final normed hidden state at the last position of each clip, trained with class-weighted
 * cross-entropy. A clip's label is the state marker that opens the answer after it (☞ speech
 * question, ☟ a turn not to answer, ☜ text), found in the row's tokens. Names are the release's:
 * model.audio_encoder.encoder.*, model.audio_encoder.adpter.*,
 * model.audio_encoder.prompt_embeddings; the head (absent from the release) is
 * model.predict_head.*. A batch without fbank items does no audio work. */
#ifndef VT_AUDIO_LLM_H
#define VT_AUDIO_LLM_H

#include <jansson.h>

#include "model/audio_adapter.h"
#include "model/audio_enc.h"
#include "model/batch.h"
#include "model/nn_fwd.h"
#include "model/nn_linear.h"

#define AUDIO_LLM_MAX_CLASSES 8
#define AUDIO_LLM_HEAD "model.predict_head"

typedef struct {
  bool on;   /* the config has an "audio_config" */
  bool head; /* the config has a "modality_head" */
  audio_enc enc;
  audio_adapter ad;
  nn_linear cls;
  int n_classes;                            /* 3 */
  float class_w[AUDIO_LLM_MAX_CLASSES];     /* [1, 5, 1] */
  int64_t state_ids[AUDIO_LLM_MAX_CLASSES]; /* the marker token of each class */
} audio_llm;

/* Reads config's "audio_config" (model/audio_cfg.h fields; llm_hidden_size, when given, must be
 * llm_hidden; no CTC head) and "modality_head" ({"num_classes", "class_weights",
 * "state_token_ids"}, defaults 3, [1, 5, 1], [☞ 144766, ☟ 146164, ☜ 145789]) and registers the
 * parameters. Neither present: a->on and a->head false, nothing registered. Returns 0 or -1. */
int audio_llm_init(audio_llm *a, vt_params *ps, const json_t *config, const char *where,
                   int64_t llm_hidden, bool recompute, char *err, size_t err_len);
void audio_llm_free(audio_llm *a);
void audio_llm_init_weights(audio_llm *a, vt_rng *rng, float init_range);
/* Adds "audio_config" and "modality_head" to a config object (when present). */
void audio_llm_to_json(const audio_llm *a, json_t *o);
/* LLM positions of one clip of `frames` fbank frames (prompts included); 0 without audio. */
int64_t audio_llm_positions(const audio_llm *a, int64_t frames);

/* emb [B, T, H] with each fbank item's adapter rows written at its span (row, start, count),
 * count == audio_llm_positions(its frames); emb itself when the batch has no fbank items.
 * A span outside the batch or of the wrong count is a ctx error naming the clip. The encoder
 * runs in train mode (dropout, dynamic chunks) only when f->training and it trains, or
 * frozen_train (stage key frozen_mode: train). Frozen parameters record no tape. */
vt_tensor *audio_llm_splice(audio_llm *a, vt_ctx *ctx, vt_tensor *emb, const vt_batch *b,
                            const nn_fwd *f, bool frozen_train);

/* The modality head's loss over the batch's clips: per-clip labels from the tokens (a clip with
 * no marker after it in its row is not counted), class-weighted mean cross-entropy of the
 * head's logits at each clip's last position. *counted gets the clips counted and *correct the
 * argmax hits (host). No clips: a zero scalar off the tape. */
vt_tensor *audio_llm_modality_loss(audio_llm *a, vt_ctx *ctx, vt_tensor *hidden, const vt_batch *b,
                                   int64_t *counted, int64_t *correct);

#endif
