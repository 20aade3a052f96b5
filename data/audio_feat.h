/* From an audio file to the encoder's input: aud_fbank_file loads (aud_load), scales by 32768 and
 * computes Kaldi fbank (before CMVN), refusing clips too short for the encoder. `vita features
 * audio`, `vita cmvn` and `vita prep` share it. */
#ifndef VT_DATA_AUDIO_FEAT_H
#define VT_DATA_AUDIO_FEAT_H

#include "data/audio.h"
#include "data/fbank.h"

/* Fewest fbank frames that give the encoder one output frame: ((7-1)/2-1)/2 = 1. */
#define AUD_MIN_FRAMES 7

/* Loads path with o (o->rate must be the plan's sample rate), computes fbank into *feats
 * (malloc'd, frames x num_mel_bins; caller frees) with dither noise from rng (NULL: none).
 * wave, when not NULL, receives the loaded samples in [-1, 1) (caller frees with aud_wave_free).
 * Returns AUD_OK, or the reason (AUD_TOO_SHORT below min_frames frames) with err naming the
 * file. */
aud_reason aud_fbank_file(const char *path, const aud_load_opts *o, const fbank_plan *plan,
                          vt_rng *rng, size_t min_frames, float **feats, size_t *frames,
                          aud_wave *wave, char *err, size_t err_len);

#endif
