/* SpecAugment masks; see audio_specaug.h. */
#include "data/audio_specaug.h"

#include <string.h>

aud_specaug_opts aud_specaug_opts_default(void) {
  return (aud_specaug_opts){
      .enabled = false, .num_t_mask = 2, .num_f_mask = 2, .max_t = 50, .max_f = 10};
}

void aud_specaug(const aud_specaug_opts *o, float *feats, size_t frames, int dim, vt_rng *rng) {
  if (!o->enabled || frames == 0 || dim <= 0) return;
  for (int i = 0; i < o->num_f_mask && o->max_f > 0; i++) {
    size_t start = (size_t)vt_rng_below(rng, (uint64_t)dim);
    size_t len = 1 + (size_t)vt_rng_below(rng, (uint64_t)o->max_f);
    size_t end = start + len < (size_t)dim ? start + len : (size_t)dim;
    for (size_t t = 0; t < frames; t++)
      memset(feats + t * (size_t)dim + start, 0, (end - start) * sizeof(float));
  }
  for (int i = 0; i < o->num_t_mask && o->max_t > 0; i++) {
    size_t start = (size_t)vt_rng_below(rng, (uint64_t)frames);
    size_t len = 1 + (size_t)vt_rng_below(rng, (uint64_t)o->max_t);
    size_t end = start + len < frames ? start + len : frames;
    memset(feats + start * (size_t)dim, 0, (end - start) * (size_t)dim * sizeof(float));
  }
}
