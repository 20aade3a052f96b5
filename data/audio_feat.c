/* File -> fbank; see audio_feat.h. */
#include "data/audio_feat.h"
#include "autograd/fmt.h"

#include <stdlib.h>
#include <string.h>

aud_reason aud_fbank_file(const char *path, const aud_load_opts *o, const fbank_plan *plan,
                          vt_rng *rng, size_t min_frames, float **feats, size_t *frames,
                          aud_wave *wave, char *err, size_t err_len) {
  *feats = NULL;
  *frames = 0;
  if (wave) memset(wave, 0, sizeof *wave);
  const fbank_opts *fo = fbank_plan_opts(plan);
  if (o->rate <= 0 || (double)o->rate != fo->sample_rate) {
    vt_seterr(err, err_len, "%s: features at %g Hz need audio at that rate, asked for %d Hz", path,
              fo->sample_rate, o->rate);
    return AUD_BAD_RATE;
  }
  aud_wave w;
  aud_reason r = aud_load(path, o, &w, err, err_len);
  if (r != AUD_OK) return r;
  size_t T = fbank_num_frames(plan, w.n);
  if (T < min_frames || T == 0) {
    vt_seterr(err, err_len, "%s: %.3f s gives %zu fbank frames, expected at least %zu", path,
              (double)w.n / w.rate, T, min_frames ? min_frames : 1);
    aud_wave_free(&w);
    return AUD_TOO_SHORT;
  }
  float *x = malloc(sizeof(float) * w.n), *f = malloc(sizeof(float) * T * (size_t)fo->num_mel_bins);
  if (!x || !f) {
    free(x);
    free(f);
    aud_wave_free(&w);
    vt_seterr(err, err_len, "%s: out of memory for %zu frames", path, T);
    return AUD_NO_MEMORY;
  }
  for (size_t i = 0; i < w.n; i++) x[i] = w.data[i] * 32768.0f;
  int rc = fbank_compute(plan, x, w.n, f, fo->dither > 0 ? rng : NULL);
  free(x);
  if (rc) {
    free(f);
    aud_wave_free(&w);
    vt_seterr(err, err_len, "%s: out of memory computing %zu frames", path, T);
    return AUD_NO_MEMORY;
  }
  *feats = f;
  *frames = T;
  if (wave)
    *wave = w;
  else
    aud_wave_free(&w);
  return AUD_OK;
}
