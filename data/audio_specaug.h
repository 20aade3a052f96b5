/* SpecAugment for training (off by default; the public code's use is unconfirmed): zeroes random
 * frequency bands and time spans of one clip's fbank, with WeNet's spec_aug sampling. */
#ifndef VT_DATA_AUDIO_SPECAUG_H
#define VT_DATA_AUDIO_SPECAUG_H

#include "autograd/rng.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  bool enabled;   /* default false */
  int num_t_mask; /* time masks per clip; 2 */
  int num_f_mask; /* frequency masks per clip; 2 */
  int max_t;      /* longest time mask in frames; 50 */
  int max_f;      /* widest frequency mask in bins; 10 */
} aud_specaug_opts;

aud_specaug_opts aud_specaug_opts_default(void);

/* Masks feats[frames][dim] in place: each mask starts uniformly in [0, size) and is 1..max long
 * (clipped at the end), set to 0. Does nothing when !o->enabled. */
void aud_specaug(const aud_specaug_opts *o, float *feats, size_t frames, int dim, vt_rng *rng);

#endif
