/* The TiCodec-style codec behind the model interface (registered as "ticodec"): its model.json
 * (TiCodec's own config keys where it has them, VITA-1.5's values by default), the codec and
 * its discriminators in one store, and two phases per step: "disc" (MPD, MSD, MS-STFT; term
 * "disc") then "gen" (encoder, quantizer, generator; terms "adv", "fm", "mel", "vq",
 * "consistency", already weighted by the config's loss weights). Batches carry waveforms
 * (VT_MEDIA_WAVE); each item gives a training segment and a second segment of the same
 * utterance for the consistency loss. Eval metrics: "mel_l1" (the 1024/240 mel L1 of the
 * reconstruction) and "snr_db". */
#ifndef VT_CODEC_MODEL_H
#define VT_CODEC_MODEL_H

#include <jansson.h>

#include "model/codec_loss.h"
#include "model/codec_restart.h"
#include "model/model.h"

typedef struct {
  codec_cfg codec;
  disc_cfg disc;
  codec_gan_cfg gan;
  int segment;               /* samples per training segment (TiCodec's segment_size; 24000) */
  codec_restart_cfg restart; /* codebook k-means init and dead-code re-seeding (off) */
} codec_model_cfg;

codec_model_cfg codec_model_cfg_vita(void);
/* The fields of a codec model.json into cfg (absent ones keep VITA-1.5's values). Returns 0,
 * or -1 with a message naming `where`, the field, what was expected and what was found. */
int codec_model_cfg_from_json(const json_t *config, const char *where, codec_model_cfg *cfg,
                              char *err, size_t err_len);
json_t *codec_model_cfg_to_json(const codec_model_cfg *cfg); /* new reference */

/* The codec inside a model made by codec_model_ops (for tools: encode / decode). */
const codec *codec_model_codec(const vt_model *m);
const codec_model_cfg *codec_model_config(const vt_model *m);

/* After loading trained weights into a fresh store (an import): the codebook counts as
 * initialised, so training it does not run the first batch's k-means over it. */
void codec_model_codebook_loaded(const vt_model *m, const vt_params *ps);

/* Whether a parameter is part of the codec's release (VITA-1.5's vita_tts_ckpt/codec/: the
 * encoder, quantizer and generator, under TiCodec's names as they are registered), not a
 * discriminator, which only training needs. */
bool codec_model_release_param(const char *name);

extern const vt_model_ops codec_model_ops;

#endif
