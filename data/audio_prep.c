/* Audio clips for the shards; see audio_prep.h. */
#include "data/audio_prep.h"
#include "autograd/dtype.h"
#include "autograd/fmt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

aud_prep_opts aud_prep_opts_default(void) {
  return (aud_prep_opts){.load = aud_load_opts_default(),
                         .fbank = fbank_opts_default(),
                         .wave_rate = 0,
                         .min_frames = AUD_MIN_FRAMES};
}

int aud_prep_init(aud_prep *p, const aud_prep_opts *o, char *err, size_t err_len) {
  memset(p, 0, sizeof *p);
  fbank_opts fo = o->fbank;
  fo.dither = 0;
  return fbank_plan_init(&p->plan, &fo, err, err_len);
}

static void free_waves(aud_prep *p) {
  for (size_t k = 0; p->wave && k < p->n; k++) {
    free(p->wave[k]);
    p->wave[k] = NULL;
  }
}

void aud_prep_free(aud_prep *p) {
  if (!p) return;
  free_waves(p);
  free(p->frames);
  free(p->wave_len);
  free(p->fbank);
  free(p->wave);
  fbank_plan_free(p->plan);
  memset(p, 0, sizeof *p);
}

aud_reason aud_prep_clips(aud_prep *p, const aud_prep_opts *o, const char *const *paths, size_t n,
                          char *err, size_t err_len) {
  free_waves(p);
  p->n = 0;
  if (n > p->cap) {
    int64_t *f = realloc(p->frames, n * sizeof *f),
            *l = f ? realloc(p->wave_len, n * sizeof *l) : NULL;
    if (f) p->frames = f;
    if (l) p->wave_len = l;
    int16_t **w = l ? realloc(p->wave, n * sizeof *w) : NULL;
    if (!w) {
      vt_seterr(err, err_len, "out of memory for %zu audio clips", n);
      return AUD_NO_MEMORY;
    }
    p->wave = w;
    for (size_t k = p->cap; k < n; k++) p->wave[k] = NULL;
    p->cap = n;
  }
  const int bins = fbank_plan_opts(p->plan)->num_mel_bins;
  aud_load_opts lo = o->load;
  lo.rate = (int)fbank_plan_opts(p->plan)->sample_rate;
  size_t used = 0;
  for (size_t k = 0; k < n; k++) {
    float *feats;
    size_t T;
    aud_reason r =
        aud_fbank_file(paths[k], &lo, p->plan, NULL, o->min_frames, &feats, &T, NULL, err, err_len);
    if (r != AUD_OK) return r;
    size_t need = used + T * (size_t)bins;
    if (need > p->cap_fbank) {
      uint16_t *q = realloc(p->fbank, need * 2 * sizeof *q);
      if (!q) {
        free(feats);
        vt_seterr(err, err_len, "%s: out of memory for %zu frames", paths[k], T);
        return AUD_NO_MEMORY;
      }
      p->fbank = q;
      p->cap_fbank = need * 2;
    }
    for (size_t i = 0; i < T * (size_t)bins; i++) p->fbank[used + i] = vt_f32_to_f16(feats[i]);
    free(feats);
    used = need;
    p->frames[k] = (int64_t)T;
    p->wave_len[k] = 0;
    p->n = k + 1;
    if (o->wave_rate > 0) {
      /* decoded again and resampled from the file's own rate, not from the 16 kHz copy */
      aud_load_opts wo = o->load;
      wo.rate = o->wave_rate;
      aud_wave w;
      if ((r = aud_load(paths[k], &wo, &w, err, err_len)) != AUD_OK) return r;
      size_t m = w.n;
      p->wave[k] = malloc((m ? m : 1) * sizeof(int16_t));
      if (p->wave[k])
        for (size_t i = 0; i < m; i++) {
          float v = roundf(w.data[i] * 32768.0f);
          p->wave[k][i] = (int16_t)(v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v);
        }
      aud_wave_free(&w);
      if (!p->wave[k]) {
        vt_seterr(err, err_len, "%s: out of memory for the waveform", paths[k]);
        return AUD_NO_MEMORY;
      }
      p->wave_len[k] = (int64_t)m;
    }
  }
  return AUD_OK;
}
