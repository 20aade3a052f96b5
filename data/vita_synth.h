/* `vita gen-data --kind vita`: a small generated dataset in the VITA JSON format for the tiny
 * curriculum 1.1 -> 3.2, with its media, a tiny tokenizer, shards and chance levels.
 * vsynth_write draws scenes of coloured shapes (data/shapes.h) into PNG files and writes, per
 * task, a train and a held-out JSON file (held-out images are other scenes):
 *   caption   <image> + "Describe the picture." -> a caption                 (stages 1.1, 1.2)
 *   qa        <image> + a question -> one word (colour, shape, count, position)     (1.3, 2.2)
 *   sqa       the same questions spoken by espeak-ng as <audio> after the <image>     (2.2)
 *   asr       a spoken phrase -> its transcript ("Transcribe.")              (2.1a, 2.1b)
 *   tts       a caption's text and the caption spoken by espeak-ng (the curriculum's prep
 *             step turns the speech into the 3.1 codec's tokens)                    (3.2)
 *   speech    the first codec_*_clips spoken captions as ASR-style pairs: the codec's
 *             waveforms                                                              (3.1)
 * then DIR/tokenizer (tok_train.h over every text written), DIR/prep.yaml, the shards of each
 * file but tts's (DIR/shards/TASK-SPLIT, through prep_run; speech's with 24 kHz waveforms),
 * mixtures DIR/mix/NAME.yaml, DIR/scenes.json (every image's objects) and DIR/chance.json (each
 * held-out metric's chance level). */
#ifndef VT_DATA_VITA_SYNTH_H
#define VT_DATA_VITA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t train_scenes, eval_scenes; /* images per split */
  int qa_per_scene;                  /* questions asked about each image */
  int image_size;                    /* side of the square PNG images (one tile each) */
  int64_t codec_train_clips;         /* spoken captions per split for stage 3.1 (speech) */
  int64_t codec_eval_clips;
  const char *espeak; /* the espeak-ng program */
  uint64_t seed;
} vsynth_cfg;

/* "small" (the demo's: 480 + 96 scenes) or "tiny" (tests: 128 + 48); NULL for an unknown size. */
int vsynth_defaults(const char *size, vsynth_cfg *out);

enum { VSYNTH_TASKS = 6 };

typedef struct {
  int vocab_size;                     /* of the tokenizer written */
  int64_t samples[VSYNTH_TASKS][2];   /* per task (vsynth_tasks), train / eval */
  int64_t images, clips, espeak_runs; /* files written */
} vsynth_stats;

extern const char *const vsynth_tasks[VSYNTH_TASKS]; /* caption qa sqa asr tts speech */

/* The sample rate of the speech shards' waveforms (the tiny codec's, configs/tiny/codec.json). */
#define VSYNTH_WAVE_RATE 24000

/* Writes the dataset into dir (created). Returns 0, or -1 with err (espeak-ng missing or
 * failing, a file that cannot be written, a prep failure). */
int vsynth_write(const char *dir, const vsynth_cfg *c, vsynth_stats *st, char *err, size_t err_len);

#endif
