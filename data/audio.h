/* Audio input: aud_read decodes a file with libsndfile (WAV, FLAC, OGG/Vorbis, MP3 where the
 * library has it) to mono float samples in [-1, 1), aud_resample changes the rate with libsoxr,
 * and aud_load does both with the checks `vita prep` needs (empty, too long, unsupported). */
#ifndef VT_DATA_AUDIO_H
#define VT_DATA_AUDIO_H

#include <stddef.h>

/* Which samples make the mono signal: channel 0 (what the public VITA code takes) or the mean
 * of all channels. */
typedef enum { AUD_CHANNEL_FIRST = 0, AUD_CHANNEL_MIX = 1 } aud_channel_mode;

/* Why a file was refused (a skip reason for prep and cmvn; AUD_OK = 0). */
typedef enum {
  AUD_OK = 0,
  AUD_UNREADABLE, /* missing, unsupported or corrupt: libsndfile refused it */
  AUD_EMPTY,      /* zero samples */
  AUD_TOO_LONG,   /* longer than max_seconds */
  AUD_BAD_RATE,   /* a sample rate libsoxr cannot convert */
  AUD_NO_MEMORY,
  AUD_TOO_SHORT, /* fewer fbank frames than the encoder needs (aud_fbank_file) */
  AUD_N_REASONS
} aud_reason;

const char *aud_reason_name(aud_reason r);

/* Mono samples at `rate` Hz. data is malloc'd; aud_wave_free releases it. */
typedef struct {
  float *data;
  size_t n;
  int rate;
  int channels_in; /* channels of the file it came from */
  int rate_in;     /* the file's own rate (before aud_load resampled) */
} aud_wave;

void aud_wave_free(aud_wave *w);

typedef struct {
  aud_channel_mode channel; /* default AUD_CHANNEL_FIRST */
  int rate;                 /* target rate in Hz (16000 encoder, 24000 codec); <= 0 keeps it */
  double max_seconds;       /* longer files are refused; <= 0: no limit */
} aud_load_opts;

/* Defaults: channel 0, 16 kHz, at most 600 s. */
aud_load_opts aud_load_opts_default(void);

/* Decodes path to mono at the file's own rate. Returns AUD_OK, or a reason with err naming the
 * file and what was wrong. max_seconds <= 0: no limit (checked before decoding). */
aud_reason aud_read(const char *path, aud_channel_mode channel, double max_seconds, aud_wave *out,
                    char *err, size_t err_len);

/* Converts n samples at in_rate to out_rate (libsoxr, high quality, linear phase). The output
 * has round(n * out_rate / in_rate) samples, malloc'd into *out (caller frees). Returns AUD_OK,
 * AUD_BAD_RATE or AUD_NO_MEMORY (err says which). */
aud_reason aud_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                        size_t *n_out, char *err, size_t err_len);

/* aud_read, then aud_resample to o->rate when it differs. */
aud_reason aud_load(const char *path, const aud_load_opts *o, aud_wave *out, char *err,
                    size_t err_len);

/* Writes mono 16-bit PCM WAV (tests and tools). Returns 0, or -1 with err. */
int aud_write_wav16(const char *path, const float *x, size_t n, int rate, char *err,
                    size_t err_len);

#endif
