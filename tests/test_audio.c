// ctest-labels: unit
/* Audio input: libsndfile decoding of WAV, FLAC, OGG/Vorbis and MP3 (written here by libsndfile
 * from a fixture), channel 0 vs downmix, bad files (missing, empty, garbage, truncated header,
 * text, too long) refused with a reason and a message naming the file; libsoxr resampling
 * (lengths, a sine kept to 1e-3, a tone above the new Nyquist removed to -60 dB, bad rates);
 * SpecAugment masks (off by default, bounded bands and spans, seeded). */
#include "data/audio.h"
#include "data/audio_specaug.h"
#include "tests/check.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static void fixture_path(char *buf, size_t n, const char *name) {
  const char *d = getenv("VT_FIXTURES");
  snprintf(buf, n, "%s/audio/%s", d ? d : "tests/fixtures", name);
}

/* Writes int16 samples to path in the given libsndfile format. */
static int write_file(const char *path, int format, const short *x, size_t n, int rate, int ch) {
  SF_INFO info = {.samplerate = rate, .channels = ch, .format = format};
  SNDFILE *f = sf_open(path, SFM_WRITE, &info);
  if (!f) return -1;
  sf_count_t put = sf_writef_short(f, x, (sf_count_t)(n / (size_t)ch));
  sf_close(f);
  return put == (sf_count_t)(n / (size_t)ch) ? 0 : -1;
}

static double rms(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return sqrt(s / (double)n);
}

static void test_formats(void) {
  char path[4096], err[512], out[4400];
  fixture_path(path, sizeof path, "chirp16k.wav");
  aud_wave w;
  CHECK(aud_read(path, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_OK);
  CHECK(w.n == 16000 && w.rate == 16000 && w.channels_in == 1);
  short *pcm = malloc(sizeof(short) * w.n);
  for (size_t i = 0; i < w.n; i++) pcm[i] = (short)lrintf(w.data[i] * 32768.0f);
  const double r0 = rms(w.data, w.n);

  /* FLAC is lossless: the same samples exactly */
  snprintf(out, sizeof out, "%s/chirp.flac", tmpdir);
  CHECK(write_file(out, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, pcm, w.n, 16000, 1) == 0);
  aud_wave f;
  CHECK_MSG(aud_read(out, AUD_CHANNEL_FIRST, 0, &f, err, sizeof err) == AUD_OK, "%s", err);
  CHECK(f.n == w.n && memcmp(f.data, w.data, sizeof(float) * w.n) == 0);
  aud_wave_free(&f);

  /* Vorbis and MP3 are lossy: the duration (within codec padding) and the level survive */
  const struct {
    const char *name;
    int format;
  } lossy[] = {{"chirp.ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS},
               {"chirp.mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III}};
  for (int k = 0; k < 2; k++) {
    snprintf(out, sizeof out, "%s/%s", tmpdir, lossy[k].name);
    CHECK(write_file(out, lossy[k].format, pcm, w.n, 16000, 1) == 0);
    aud_reason r = aud_read(out, AUD_CHANNEL_FIRST, 0, &f, err, sizeof err);
    CHECK_MSG(r == AUD_OK, "%s: %s", lossy[k].name, err);
    if (r != AUD_OK) continue;
    double r1 = rms(f.data, f.n);
    CHECK_MSG(f.rate == 16000 && fabs((double)f.n - 16000.0) < 0.1 * 16000 &&
                  fabs(r1 - r0) < 0.1 * r0,
              "%s: %zu samples at %d Hz, rms %.4f vs %.4f", lossy[k].name, f.n, f.rate, r1, r0);
    aud_wave_free(&f);
  }
  free(pcm);
  aud_wave_free(&w);

  /* stereo: channel 0, or the mean of both */
  fixture_path(path, sizeof path, "stereo16k.wav");
  SF_INFO info = {0};
  SNDFILE *sf = sf_open(path, SFM_READ, &info);
  float *raw = malloc(sizeof(float) * (size_t)info.frames * 2);
  sf_readf_float(sf, raw, info.frames);
  sf_close(sf);
  aud_wave c0, mx;
  CHECK(aud_read(path, AUD_CHANNEL_FIRST, 0, &c0, err, sizeof err) == AUD_OK);
  CHECK(aud_read(path, AUD_CHANNEL_MIX, 0, &mx, err, sizeof err) == AUD_OK);
  CHECK(c0.channels_in == 2 && c0.n == (size_t)info.frames && mx.n == c0.n);
  int bad0 = 0, badm = 0;
  for (size_t i = 0; i < c0.n; i++) {
    bad0 += c0.data[i] != raw[2 * i];
    badm += fabsf(mx.data[i] - 0.5f * (raw[2 * i] + raw[2 * i + 1])) > 1e-7f;
  }
  CHECK(bad0 == 0 && badm == 0);
  free(raw);
  aud_wave_free(&c0);
  aud_wave_free(&mx);
}

static void test_bad_files(void) {
  char p[4400], err[512];
  aud_wave w;
  snprintf(p, sizeof p, "%s/missing.wav", tmpdir);
  CHECK(aud_read(p, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_UNREADABLE);
  CHECK_MSG(strstr(err, p) != NULL, "%s", err);
  CHECK(w.data == NULL);

  snprintf(p, sizeof p, "%s/empty.wav", tmpdir);
  CHECK(write_file(p, SF_FORMAT_WAV | SF_FORMAT_PCM_16, NULL, 0, 16000, 1) == 0);
  CHECK(aud_read(p, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_EMPTY);
  CHECK_MSG(strstr(err, p) && strstr(err, "found none"), "%s", err);

  snprintf(p, sizeof p, "%s/zero_bytes.wav", tmpdir);
  FILE *f = fopen(p, "wb");
  fclose(f);
  CHECK(aud_read(p, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_UNREADABLE);

  snprintf(p, sizeof p, "%s/garbage.wav", tmpdir);
  f = fopen(p, "wb");
  for (int i = 0; i < 4096; i++) fputc((i * 7919 + 13) & 0xff, f);
  fclose(f);
  CHECK(aud_read(p, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_UNREADABLE);
  CHECK_MSG(strstr(err, "garbage.wav") != NULL, "%s", err);

  snprintf(p, sizeof p, "%s/notes.txt", tmpdir);
  f = fopen(p, "wb");
  fputs("this is not audio\n", f);
  fclose(f);
  CHECK(aud_read(p, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_UNREADABLE);

  /* a WAV cut inside its header */
  char src[4096];
  fixture_path(src, sizeof src, "chirp16k.wav");
  FILE *a = fopen(src, "rb");
  unsigned char hdr[30];
  CHECK(fread(hdr, 1, sizeof hdr, a) == sizeof hdr);
  fclose(a);
  snprintf(p, sizeof p, "%s/cut.wav", tmpdir);
  f = fopen(p, "wb");
  fwrite(hdr, 1, sizeof hdr, f);
  fclose(f);
  CHECK(aud_read(p, AUD_CHANNEL_FIRST, 0, &w, err, sizeof err) == AUD_UNREADABLE);

  /* too long: refused from the header, before decoding; with aud_load too */
  CHECK(aud_read(src, AUD_CHANNEL_FIRST, 0.5, &w, err, sizeof err) == AUD_TOO_LONG);
  CHECK_MSG(strstr(err, "1.0 s") && strstr(err, "at most 0.5 s"), "%s", err);
  aud_load_opts o = aud_load_opts_default();
  o.max_seconds = 0.25;
  CHECK(aud_load(src, &o, &w, err, sizeof err) == AUD_TOO_LONG && w.data == NULL);
  CHECK(strcmp(aud_reason_name(AUD_TOO_LONG), "too_long") == 0);
}

static void test_resample(void) {
  char err[256];
  const int n = 24000; /* 0.5 s at 48 kHz */
  float *x = malloc(sizeof(float) * n), *y;
  size_t m;
  for (int i = 0; i < n; i++) x[i] = 0.5f * sinf(2.0f * 3.14159265f * 1000.0f * i / 48000.0f);
  CHECK(aud_resample(x, n, 48000, 16000, &y, &m, err, sizeof err) == AUD_OK);
  CHECK(m == 8000);
  double worst = 0;
  for (size_t i = 400; i < m - 400; i++) /* away from the edges' filter transients */
    worst = fmax(worst, fabs(y[i] - 0.5 * sin(2 * 3.141592653589793 * 1000.0 * i / 16000.0)));
  CHECK_MSG(worst < 1e-3, "1 kHz sine 48 -> 16 kHz: max error %.2e", worst);
  free(y);
  /* 16 -> 24 kHz (the codec rate) */
  for (int i = 0; i < 8000; i++) x[i] = 0.5f * sinf(2.0f * 3.14159265f * 440.0f * i / 16000.0f);
  CHECK(aud_resample(x, 8000, 16000, 24000, &y, &m, err, sizeof err) == AUD_OK);
  CHECK(m == 12000);
  worst = 0;
  for (size_t i = 600; i < m - 600; i++)
    worst = fmax(worst, fabs(y[i] - 0.5 * sin(2 * 3.141592653589793 * 440.0 * i / 24000.0)));
  CHECK_MSG(worst < 1e-3, "440 Hz sine 16 -> 24 kHz: max error %.2e", worst);
  free(y);
  /* 10 kHz cannot exist at 16 kHz: the anti-alias filter removes it */
  for (int i = 0; i < n; i++) x[i] = 0.5f * sinf(2.0f * 3.14159265f * 10000.0f * i / 48000.0f);
  CHECK(aud_resample(x, n, 48000, 16000, &y, &m, err, sizeof err) == AUD_OK);
  double r = rms(y + 400, m - 800);
  CHECK_MSG(r < 0.5 / sqrt(2.0) * 1e-3, "10 kHz tone leaks through at rms %.2e", r);
  free(y);
  /* the same rate copies; a bad rate is refused */
  CHECK(aud_resample(x, 100, 16000, 16000, &y, &m, err, sizeof err) == AUD_OK && m == 100);
  CHECK(memcmp(x, y, 100 * sizeof(float)) == 0);
  free(y);
  CHECK(aud_resample(x, 100, 0, 16000, &y, &m, err, sizeof err) == AUD_BAD_RATE && !y);
  CHECK_MSG(strstr(err, "0 -> 16000") != NULL, "%s", err);
  free(x);
}

static void test_specaug(void) {
  enum { T = 300, F = 80 };
  float *x = malloc(sizeof(float) * T * F), *y = malloc(sizeof(float) * T * F);
  for (int i = 0; i < T * F; i++) x[i] = 1.0f + (float)(i % 97);
  memcpy(y, x, sizeof(float) * T * F);
  vt_rng r;
  vt_rng_seed(&r, 3);
  aud_specaug_opts o = aud_specaug_opts_default();
  CHECK(!o.enabled);
  aud_specaug(&o, y, T, F, &r);
  CHECK(memcmp(x, y, sizeof(float) * T * F) == 0);
  o.enabled = true;
  int any = 0;
  for (int trial = 0; trial < 50; trial++) {
    memcpy(y, x, sizeof(float) * T * F);
    aud_specaug(&o, y, T, F, &r);
    /* a zero is in a masked column (all rows) or a masked row (all columns) */
    int cols = 0, rows = 0, stray = 0;
    for (int d = 0; d < F; d++) {
      int z = 0;
      for (int t = 0; t < T; t++) z += y[t * F + d] == 0;
      cols += z == T;
    }
    for (int t = 0; t < T; t++) {
      int z = 0;
      for (int d = 0; d < F; d++) z += y[t * F + d] == 0;
      rows += z == F;
      if (z && z != F) {
        for (int d = 0; d < F; d++) {
          if (y[t * F + d] != 0) continue;
          int full = 1;
          for (int u = 0; u < T; u++) full &= y[u * F + d] == 0;
          stray += !full;
        }
      }
    }
    any += cols > 0 && rows > 0;
    CHECK_MSG(cols <= 2 * o.max_f && rows <= 2 * o.max_t && stray == 0,
              "trial %d: %d masked bins, %d masked frames, %d stray zeros", trial, cols, rows,
              stray);
  }
  CHECK(any > 40);
  /* the same seed masks the same places */
  float *z = malloc(sizeof(float) * T * F);
  memcpy(y, x, sizeof(float) * T * F);
  memcpy(z, x, sizeof(float) * T * F);
  vt_rng_seed(&r, 11);
  aud_specaug(&o, y, T, F, &r);
  vt_rng_seed(&r, 11);
  aud_specaug(&o, z, T, F, &r);
  CHECK(memcmp(y, z, sizeof(float) * T * F) == 0);
  free(x);
  free(y);
  free(z);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vt_test_audio_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  test_formats();
  test_bad_files();
  test_resample();
  test_specaug();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return vt_test_finish("test_audio");
}
