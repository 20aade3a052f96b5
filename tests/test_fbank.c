// ctest-labels: unit
/* Kaldi fbank against torchaudio.compliance.kaldi.fbank (fixtures from
 * tests/reference/gen_fbank_fixtures.py): synthetic signals under every option the plan has, real
 * speech (Debian's alsa-utils recording at 48 kHz, and resampled to 16 kHz by libsoxr), espeak-ng
 * speech; all within 1e-3 absolute of torchaudio in f64, and real and espeak speech also of
 * torchaudio in f32 (its own f32 rounding reaches 5e-3 on pure tones: see the generator). Also:
 * dither statistics against torchaudio's, seeded reproducibility whatever the thread count, frame
 * counts, and refused options. */
#include "data/audio.h"
#include "data/fbank.h"
#include "tests/check.h"
#include "tests/fixture.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REAL_SPEECH "/usr/share/sounds/alsa/Front_Center.wav"

static const vt_fixture *fx;

static void fixture_path(char *buf, size_t n, const char *name) {
  const char *d = getenv("VT_FIXTURES");
  snprintf(buf, n, "%s/audio/%s", d ? d : "tests/fixtures", name);
}

/* Reads a file at its own rate, channel mode ch, scaled by 32768. */
static aud_wave load(const char *path, aud_channel_mode ch, int rate) {
  aud_wave w;
  char err[512];
  aud_load_opts o = aud_load_opts_default();
  o.channel = ch;
  o.rate = rate;
  aud_reason r = aud_load(path, &o, &w, err, sizeof err);
  CHECK_MSG(r == AUD_OK, "%s", err);
  if (r != AUD_OK) exit(vt_test_finish("test_fbank"));
  for (size_t i = 0; i < w.n; i++) w.data[i] *= 32768.0f;
  return w;
}

/* Computes fbank of w under o and compares with fixture case `name` within 1e-3 absolute (log
 * features) or 1e-3 relative (energies, use_log off: the same criterion). */
static void check_case(const char *name, const aud_wave *w, fbank_opts o) {
  char err[512];
  fbank_plan *p;
  int rc = fbank_plan_init(&p, &o, err, sizeof err);
  CHECK_MSG(rc == 0, "%s: %s", name, err);
  if (rc) return;
  const vt_fixture_tensor *ref = vt_fixture_get(fx, name);
  size_t T = fbank_num_frames(p, w->n);
  CHECK_MSG((long)T == ref->shape[0] && o.num_mel_bins == ref->shape[1],
            "%s: %zu x %d frames, torchaudio %lld x %lld", name, T, o.num_mel_bins,
            (long long)ref->shape[0], (long long)ref->shape[1]);
  if ((long)T == ref->shape[0]) {
    float *got = malloc(sizeof(float) * T * (size_t)o.num_mel_bins);
    CHECK(fbank_compute(p, w->data, w->n, got, NULL) == 0);
    double worst = 0;
    for (long i = 0; i < ref->n; i++)
      worst = fmax(worst, fabs((double)got[i] - ref->f[i]) / (o.use_log ? 1.0 : fabs(ref->f[i])));
    printf("%-14s %4zu frames x %2d bins: max %s = %.2e\n", name, T, o.num_mel_bins,
           o.use_log ? "|C - torchaudio|" : "relative error", worst);
    CHECK_CLOSE(name, got, ref->f, ref->n, o.use_log ? 1e-3 : 0, o.use_log ? 0 : 1e-3);
    free(got);
  }
  fbank_plan_free(p);
}

static void test_parity(void) {
  char path[4096];
  fbank_opts d = fbank_opts_default();
  fixture_path(path, sizeof path, "chirp16k.wav");
  aud_wave chirp = load(path, AUD_CHANNEL_FIRST, 0);
  CHECK(chirp.rate == 16000 && chirp.n == 16000);
  check_case("chirp_default", &chirp, d);
  fbank_opts o = d;
  o.snip_edges = false;
  check_case("chirp_nosnip", &chirp, o);
  o = d;
  o.num_mel_bins = 40;
  o.window = FBANK_WIN_HAMMING;
  o.round_pow2 = false;
  o.use_power = false;
  o.preemph = 0.5;
  o.remove_dc = false;
  o.low_freq = 64;
  o.high_freq = -400;
  check_case("chirp_variant", &chirp, o);
  o = d;
  o.use_log = false;
  o.window = FBANK_WIN_BLACKMAN;
  o.frame_length_ms = 20;
  o.frame_shift_ms = 12.5;
  check_case("chirp_logoff", &chirp, o);
  o = d;
  o.window = FBANK_WIN_HANNING;
  o.num_mel_bins = 64;
  check_case("chirp_hanning", &chirp, o);
  o = d;
  o.window = FBANK_WIN_RECTANGULAR;
  o.num_mel_bins = 23;
  check_case("chirp_rect", &chirp, o);
  aud_wave_free(&chirp);

  fixture_path(path, sizeof path, "quiet16k.wav");
  aud_wave q = load(path, AUD_CHANNEL_FIRST, 0);
  check_case("quiet_default", &q, d);
  aud_wave_free(&q);

  fixture_path(path, sizeof path, "stereo16k.wav");
  aud_wave s0 = load(path, AUD_CHANNEL_FIRST, 0), sm = load(path, AUD_CHANNEL_MIX, 0);
  CHECK(s0.channels_in == 2 && s0.n == 8000 && sm.n == 8000);
  check_case("stereo_ch0", &s0, d);
  check_case("stereo_mix", &sm, d);
  aud_wave_free(&s0);
  aud_wave_free(&sm);

  fixture_path(path, sizeof path, "tone8k.wav");
  aud_wave t8 = load(path, AUD_CHANNEL_FIRST, 0);
  o = d;
  o.sample_rate = 8000;
  o.num_mel_bins = 40;
  check_case("tone8k", &t8, o);
  aud_wave_free(&t8);

  /* espeak-ng speech at 22.05 kHz through libsoxr to 16 kHz: the resampled samples match
   * python-soxr's, then the features torchaudio's */
  fixture_path(path, sizeof path, "espeak_hello.wav");
  aud_wave e = load(path, AUD_CHANNEL_FIRST, 16000);
  const vt_fixture_tensor *el = vt_fixture_get(fx, "espeak_16k_len");
  CHECK_MSG((long)e.n == el->i[0], "espeak resampled to %zu samples, python-soxr %d", e.n,
            el->i[0]);
  if (e.n > 4200)
    CHECK_CLOSE("espeak_16k_wave", e.data + 4000, vt_fixture_get(fx, "espeak_16k_wave")->f, 200,
                0.05, 1e-5);
  check_case("espeak_16k", &e, d);
  check_case("espeak_16k_f32", &e, d);
  aud_wave_free(&e);

  /* real speech: a human voice recording that Debian ships (alsa-utils, installed by setup.sh) */
  aud_wave r48 = load(REAL_SPEECH, AUD_CHANNEL_FIRST, 0);
  CHECK(r48.rate == 48000);
  o = d;
  o.sample_rate = 48000;
  check_case("real48k", &r48, o);
  check_case("real48k_f32", &r48, o);
  aud_wave_free(&r48);
  aud_wave r16 = load(REAL_SPEECH, AUD_CHANNEL_FIRST, 16000);
  const vt_fixture_tensor *rl = vt_fixture_get(fx, "real_16k_len");
  CHECK_MSG((long)r16.n == rl->i[0], "real speech resampled to %zu samples, python-soxr %d", r16.n,
            rl->i[0]);
  if (r16.n > 8200)
    CHECK_CLOSE("real_16k_wave", r16.data + 8000, vt_fixture_get(fx, "real_16k_wave")->f, 200, 0.05,
                1e-5);
  check_case("real_16k", &r16, d);
  check_case("real_16k_f32", &r16, d);
  aud_wave_free(&r16);
}

/* Dither 1 on digital silence: the mean features over 20 s agree with torchaudio's (its noise is
 * Gaussian too) to well within the sampling error; the same seed gives the same features on 1
 * and 2 threads, another seed others; dither 0 on silence gives log(FLT_EPSILON) exactly. */
static void test_dither(void) {
  char err[256];
  fbank_opts o = fbank_opts_default();
  o.dither = 1.0;
  fbank_plan *p;
  CHECK(fbank_plan_init(&p, &o, err, sizeof err) == 0);
  const size_t n = 16000 * 20, T = fbank_num_frames(p, n);
  float *z = calloc(n, sizeof *z), *a = malloc(sizeof(float) * T * 80),
        *b = malloc(sizeof(float) * T * 80);
  vt_rng r;
  vt_rng_seed(&r, 7);
  omp_set_num_threads(1);
  CHECK(fbank_compute(p, z, n, a, &r) == 0);
  omp_set_num_threads(2);
  vt_rng_seed(&r, 7);
  CHECK(fbank_compute(p, z, n, b, &r) == 0);
  CHECK(memcmp(a, b, sizeof(float) * T * 80) == 0);
  const vt_fixture_tensor *ref = vt_fixture_get(fx, "dither_silence_mean");
  float mean[80] = {0};
  for (size_t t = 0; t < T; t++)
    for (int m = 0; m < 80; m++) mean[m] += a[t * 80 + m] / (float)T;
  /* per-frame log-energy spread is about 1 (a few chi-square bins); over 2000 frames the mean's
   * error is about 0.03: 0.15 is 5 sigma, while a dither off by a factor 2 moves it by log 4 */
  CHECK_CLOSE("dither_silence_mean", mean, ref->f, 80, 0.15, 0);
  vt_rng_seed(&r, 8);
  CHECK(fbank_compute(p, z, n, b, &r) == 0);
  CHECK(memcmp(a, b, sizeof(float) * T * 80) != 0);
  fbank_plan_free(p);

  o.dither = 0;
  CHECK(fbank_plan_init(&p, &o, err, sizeof err) == 0);
  CHECK(fbank_compute(p, z, 16000, a, NULL) == 0);
  CHECK(a[0] == logf(1.1920929e-07f) && a[97 * 80 + 79] == a[0]);
  fbank_plan_free(p);
  free(z);
  free(a);
  free(b);
}

static void test_frames_and_opts(void) {
  char err[256];
  fbank_plan *p;
  fbank_opts o = fbank_opts_default();
  CHECK(fbank_plan_init(&p, &o, err, sizeof err) == 0);
  CHECK(fbank_window_size(p) == 400 && fbank_window_shift(p) == 160 && fbank_fft_size(p) == 512);
  CHECK(fbank_num_frames(p, 399) == 0 && fbank_num_frames(p, 400) == 1);
  CHECK(fbank_num_frames(p, 16000) == 98 && fbank_num_frames(p, 559) == 1);
  CHECK(fbank_num_frames(p, 560) == 2);
  float out[80];
  CHECK(fbank_compute(p, out, 100, out, NULL) == 0); /* no frames: writes nothing */
  fbank_plan_free(p);
  /* encoder x4: ((T-1)//2-1)//2, adapter ceil(/2) */
  CHECK(fbank_encoder_frames(6) == 0 && fbank_encoder_frames(7) == 1);
  CHECK(fbank_encoder_frames(98) == 23 && fbank_encoder_frames(1000) == 249);
  CHECK(fbank_llm_tokens(98, 0) == 12 && fbank_llm_tokens(1000, 0) == 125);
  CHECK(fbank_llm_tokens(1000, 25) == 150 && fbank_llm_tokens(3, 25) == 0);

  struct {
    const char *field;
    fbank_opts o;
  } bad[8];
  int nb = 0;
  for (int i = 0; i < 8; i++) bad[i].o = fbank_opts_default();
  bad[nb].field = "sample_rate", bad[nb++].o.sample_rate = 0;
  bad[nb].field = "num_mel_bins", bad[nb++].o.num_mel_bins = 3;
  bad[nb].field = "num_mel_bins", bad[nb++].o.num_mel_bins = 300; /* > 256 FFT bins */
  bad[nb].field = "low_freq", bad[nb++].o.low_freq = 9000;
  bad[nb].field = "high_freq", bad[nb++].o.high_freq = 9000;
  bad[nb].field = "frame_length_ms", bad[nb++].o.frame_length_ms = -1;
  bad[nb].field = "dither", bad[nb++].o.dither = NAN;
  bad[nb].field = "preemph", bad[nb++].o.preemph = 2;
  for (int i = 0; i < nb; i++) {
    err[0] = 0;
    p = NULL;
    int rc = fbank_plan_init(&p, &bad[i].o, err, sizeof err);
    CHECK_MSG(rc == -1 && !p && strstr(err, bad[i].field), "%s: rc %d, '%s'", bad[i].field, rc,
              err);
  }
}

int main(void) {
  fx = vt_fixture_load("audio/fbank.txt");
  test_parity();
  test_dither();
  test_frames_and_opts();
  vt_fixture_free((vt_fixture *)fx);
  return vt_test_finish("test_fbank");
}
