/* What `vita prep` stores of a sample's audio clips: each clip's fbank (f16, before CMVN) for
 * the encoder stages and, when asked, its waveform (int16 at the codec's rate) for the codec
 * stage. aud_prep_clips computes them for one sample; a bad clip makes the sample a skip. */
#ifndef VT_DATA_AUDIO_PREP_H
#define VT_DATA_AUDIO_PREP_H

#include "data/audio_feat.h"

#include <stdint.h>

typedef struct {
  aud_load_opts load; /* channel, max_seconds (the rate is the fbank's) */
  fbank_opts fbank;   /* dither is ignored here: features are stored without it */
  int wave_rate;      /* > 0: also keep each clip's waveform at this rate (24000) */
  size_t min_frames;  /* clips shorter than this are refused (AUD_MIN_FRAMES) */
} aud_prep_opts;

/* Defaults: channel 0, 600 s at most, DESIGN.md fbank, no waveforms, AUD_MIN_FRAMES. */
aud_prep_opts aud_prep_opts_default(void);

/* One sample's clips, reused across samples; aud_prep_free releases. */
typedef struct {
  size_t n;
  int64_t *frames, *wave_len; /* [n] */
  uint16_t *fbank;            /* all clips' [frames, bins] f16 back to back */
  int16_t **wave;             /* [n] (NULL entries when no waveforms are kept) */
  size_t cap, cap_fbank;
  fbank_plan *plan;
} aud_prep;

/* Builds the plan. Returns 0, or -1 with err (bad fbank options). */
int aud_prep_init(aud_prep *p, const aud_prep_opts *o, char *err, size_t err_len);
void aud_prep_free(aud_prep *p);
/* Computes the clips of paths[0..n). Returns AUD_OK, or the first clip's reason with err. */
aud_reason aud_prep_clips(aud_prep *p, const aud_prep_opts *o, const char *const *paths, size_t n,
                          char *err, size_t err_len);

#endif
