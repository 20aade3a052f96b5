/* Generated stage 3.2 data: (text, codec) pairs with a learnable rule, for the speech
 * decoder's end-to-end tests and demos. Each text token t is spoken as dur(t) codec frames
 * with fixed random ids code(t, 0..dur(t)-1); with probability `noise` a frame is a uniform
 * random id instead. Written as real shards (text ids + codec tokens) with mixture configs,
 * a training set and a held-out set drawn from the same rule. */
#ifndef VT_DATA_TTS_SYNTH_H
#define VT_DATA_TTS_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t samples, eval_samples, n_shards;
  int32_t text_vocab;             /* text ids in [0, text_vocab) */
  int64_t min_text, max_text;     /* text tokens per sample, uniform */
  int32_t codec_vocab;            /* codec ids in [0, codec_vocab) */
  int32_t min_frames, max_frames; /* codec frames per text token, fixed per token */
  double noise;                   /* probability that a frame is uniform instead */
  uint64_t seed;
} tts_synth_cfg;

tts_synth_cfg tts_synth_defaults(void);
/* Writes DIR/train/shard-0000k.h5 + DIR/train/mixture.yaml and DIR/eval/shard-00000.h5 +
 * DIR/eval/mixture.yaml. Returns 0 or -1 with err. */
int tts_synth_write(const char *dir, const tts_synth_cfg *cfg, char *err, size_t err_len);

#endif
