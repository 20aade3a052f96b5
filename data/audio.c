/* libsndfile decoding and libsoxr resampling; see audio.h. */
#include "data/audio.h"
#include "autograd/fmt.h"

#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *aud_reason_name(aud_reason r) {
  static const char *const names[AUD_N_REASONS] = {"ok",       "unreadable_audio", "empty_audio",
                                                   "too_long", "bad_sample_rate",  "no_memory",
                                                   "too_short"};
  return (r >= 0 && r < AUD_N_REASONS) ? names[r] : "unknown";
}

void aud_wave_free(aud_wave *w) {
  if (!w) return;
  free(w->data);
  memset(w, 0, sizeof *w);
}

aud_load_opts aud_load_opts_default(void) {
  return (aud_load_opts){.channel = AUD_CHANNEL_FIRST, .rate = 16000, .max_seconds = 600.0};
}

/* Frames read per sf_readf_float call: bounded memory for the interleaved buffer. */
#define AUD_BLOCK 65536

aud_reason aud_read(const char *path, aud_channel_mode channel, double max_seconds, aud_wave *out,
                    char *err, size_t err_len) {
  memset(out, 0, sizeof *out);
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *f = sf_open(path, SFM_READ, &info);
  if (!f) {
    vt_seterr(err, err_len, "%s: cannot decode audio: %s", path, sf_strerror(NULL));
    return AUD_UNREADABLE;
  }
  aud_reason rc = AUD_OK;
  float *buf = NULL, *mono = NULL;
  if (info.channels < 1 || info.samplerate <= 0) {
    vt_seterr(err, err_len, "%s: expected at least 1 channel and a positive rate, found %d, %d Hz",
              path, info.channels, info.samplerate);
    rc = AUD_UNREADABLE;
    goto done;
  }
  if (max_seconds > 0 && info.frames > 0 && (double)info.frames / info.samplerate > max_seconds) {
    vt_seterr(err, err_len, "%s: %.1f s of audio, expected at most %.1f s", path,
              (double)info.frames / info.samplerate, max_seconds);
    rc = AUD_TOO_LONG;
    goto done;
  }
  /* Frame counts of some formats (MP3, damaged headers) are estimates: read blocks until the
   * decoder stops and grow the output as needed. */
  size_t cap = info.frames > 0 && info.frames < ((sf_count_t)1 << 34) ? (size_t)info.frames : 0;
  if (cap == 0) cap = AUD_BLOCK;
  mono = malloc(cap * sizeof *mono);
  buf = malloc((size_t)AUD_BLOCK * (size_t)info.channels * sizeof *buf);
  if (!mono || !buf) {
    vt_seterr(err, err_len, "%s: out of memory for %zu samples", path, cap);
    rc = AUD_NO_MEMORY;
    goto done;
  }
  size_t n = 0;
  const int ch = info.channels;
  for (;;) {
    sf_count_t got = sf_readf_float(f, buf, AUD_BLOCK);
    if (got <= 0) break;
    if (n + (size_t)got > cap) {
      size_t ncap = cap * 2 > n + (size_t)got ? cap * 2 : n + (size_t)got;
      float *p = realloc(mono, ncap * sizeof *p);
      if (!p) {
        vt_seterr(err, err_len, "%s: out of memory for %zu samples", path, ncap);
        rc = AUD_NO_MEMORY;
        goto done;
      }
      mono = p;
      cap = ncap;
    }
    for (sf_count_t i = 0; i < got; i++) {
      const float *fr = buf + (size_t)i * (size_t)ch;
      float v = fr[0];
      if (channel == AUD_CHANNEL_MIX && ch > 1) {
        double s = 0;
        for (int c = 0; c < ch; c++) s += fr[c];
        v = (float)(s / ch);
      }
      mono[n + (size_t)i] = v;
    }
    n += (size_t)got;
    if (max_seconds > 0 && (double)n / info.samplerate > max_seconds) {
      vt_seterr(err, err_len, "%s: more than %.1f s of audio, expected at most %.1f s", path,
                (double)n / info.samplerate, max_seconds);
      rc = AUD_TOO_LONG;
      goto done;
    }
  }
  if (sf_error(f) != SF_ERR_NO_ERROR && n == 0) {
    vt_seterr(err, err_len, "%s: cannot decode audio: %s", path, sf_strerror(f));
    rc = AUD_UNREADABLE;
    goto done;
  }
  if (n == 0) {
    vt_seterr(err, err_len, "%s: expected audio samples, found none", path);
    rc = AUD_EMPTY;
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(mono[i])) {
      vt_seterr(err, err_len, "%s: sample %zu is not finite", path, i);
      rc = AUD_UNREADABLE;
      goto done;
    }
  }
  out->data = mono;
  out->n = n;
  out->rate = info.samplerate;
  out->rate_in = info.samplerate;
  out->channels_in = ch;
  mono = NULL;
done:
  free(buf);
  free(mono);
  sf_close(f);
  return rc;
}

aud_reason aud_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                        size_t *n_out, char *err, size_t err_len) {
  *out = NULL;
  *n_out = 0;
  if (in_rate <= 0 || out_rate <= 0) {
    vt_seterr(err, err_len, "resample: expected positive rates, found %d -> %d Hz", in_rate,
              out_rate);
    return AUD_BAD_RATE;
  }
  size_t m = (size_t)llround((double)n * out_rate / in_rate);
  float *y = malloc((m ? m : 1) * sizeof *y);
  if (!y) {
    vt_seterr(err, err_len, "resample: out of memory for %zu samples", m);
    return AUD_NO_MEMORY;
  }
  if (in_rate == out_rate) {
    memcpy(y, in, n * sizeof *y);
  } else if (m > 0) {
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    size_t done = 0;
    soxr_error_t e =
        soxr_oneshot((double)in_rate, (double)out_rate, 1, in, n, NULL, y, m, &done, &io, &q, NULL);
    if (e) {
      vt_seterr(err, err_len, "resample %d -> %d Hz: %s", in_rate, out_rate, soxr_strerror(e));
      free(y);
      return AUD_BAD_RATE;
    }
    for (size_t i = done; i < m; i++) y[i] = 0.0f; /* soxr flushes the whole tail; belt only */
  }
  *out = y;
  *n_out = m;
  return AUD_OK;
}

aud_reason aud_load(const char *path, const aud_load_opts *o, aud_wave *out, char *err,
                    size_t err_len) {
  aud_reason r = aud_read(path, o->channel, o->max_seconds, out, err, err_len);
  if (r != AUD_OK || o->rate <= 0 || o->rate == out->rate) return r;
  float *y;
  size_t m;
  r = aud_resample(out->data, out->n, out->rate, o->rate, &y, &m, err, err_len);
  if (r != AUD_OK) {
    aud_wave_free(out);
    return r;
  }
  if (m == 0) { /* a clip shorter than one output sample (a file claiming a huge rate) */
    vt_seterr(err, err_len, "%s: %zu samples at %d Hz leave no sample at %d Hz", path, out->n,
              out->rate, o->rate);
    free(y);
    aud_wave_free(out);
    return AUD_EMPTY;
  }
  free(out->data);
  out->data = y;
  out->n = m;
  out->rate = o->rate;
  return AUD_OK;
}

int aud_write_wav16(const char *path, const float *x, size_t n, int rate, char *err,
                    size_t err_len) {
  SF_INFO info = {.samplerate = rate, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  if (!f) {
    vt_seterr(err, err_len, "%s: cannot write WAV: %s", path, sf_strerror(NULL));
    return -1;
  }
  sf_count_t put = sf_writef_float(f, x, (sf_count_t)n);
  int bad = put != (sf_count_t)n;
  if (sf_close(f) != 0) bad = 1;
  if (bad) {
    vt_seterr(err, err_len, "%s: short write (%lld of %zu samples)", path, (long long)put, n);
    return -1;
  }
  return 0;
}
