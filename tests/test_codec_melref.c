// ctest-labels: unit
/* The log-mel distance test_codec_speak_ref.sh judges `vita speak` with, and its own check.
 *
 *   test_codec_melref OUT.wav REF.wav [SEED]
 * loads both at 24 kHz (libsoxr), takes the codec loss's main mel (n_fft 1024, hop 240, 80
 * mels, model/mel.c), resamples the reference's mel frames linearly in time to OUT's frame
 * count (a uniform stretch, not DTW: the tiny decoder's timing is not espeak's), and prints the
 * mean |log-mel| L1 of OUT to REF and of OUT to white noise of OUT's length and RMS (seeded),
 * and the margin noise - ref. Exit 0 when it computed them (the script judges), 2 on bad input.
 *
 * Run with no arguments (as ctest does), it checks the distance itself: a tone against a
 * stretched copy of itself is near 0 (frame edges: under 0.25) and closer than to noise, a tone
 * against a tone an octave up is farther than against itself, and noise against noise of another
 * seed is near 0 (white noise's log-mel is flat). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/audio.h"
#include "model/mel.h"
#include "tests/testutil.h"

static const double PI = 3.14159265358979323846;
enum { SR = 24000, NFFT = 1024, HOP = 240, NMEL = 80 };

/* log-mel [NMEL, frames] of x (n samples; cut to a multiple of HOP) into a malloc'd array. */
static float *logmel(const float *x, size_t n, int64_t *frames) {
  int64_t L = (int64_t)(n / HOP) * HOP;
  if (L < 2 * HOP) L = 2 * HOP;
  float *buf = calloc((size_t)L, sizeof *buf);
  memcpy(buf, x, (n < (size_t)L ? n : (size_t)L) * sizeof *buf);
  mel_spec m;
  if (!mel_spec_init(&m, SR, NFFT, HOP, NMEL)) return free(buf), NULL;
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *y = vt_from_host(ctx, VT_F32, 2, (int64_t[]){1, L}, buf);
  vt_tensor *s = mel_log_spectrogram(ctx, &m, y);
  float *out = NULL;
  if (s && !vt_ctx_error(ctx)[0]) {
    *frames = s->shape[2];
    out = malloc((size_t)(NMEL * *frames) * sizeof *out);
    vt_to_host(ctx, s, out);
  }
  vt_ctx_free(ctx);
  mel_spec_free(&m);
  free(buf);
  return out;
}

/* mean |a - b| with b [NMEL, fb] stretched linearly to a's fa frames */
static double mel_l1(const float *a, int64_t fa, const float *b, int64_t fb) {
  double sum = 0;
  for (int64_t t = 0; t < fa; t++) {
    double pos = fa > 1 ? (double)t * (double)(fb - 1) / (double)(fa - 1) : 0;
    int64_t i = (int64_t)pos;
    if (i >= fb - 1) i = fb - 1;
    double w = pos - (double)i;
    for (int k = 0; k < NMEL; k++) {
      double v = b[k * fb + i];
      if (i + 1 < fb) v = (1 - w) * v + w * b[k * fb + i + 1];
      sum += fabs((double)a[k * fa + t] - v);
    }
  }
  return sum / (double)(fa * NMEL);
}

/* white noise of n samples at rms (Box-Muller on the test rng) */
static float *noise(size_t n, double rms, uint64_t seed) {
  vt_rng r;
  vt_rng_seed(&r, seed);
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) {
    double u = ((double)vt_rng_below(&r, 1u << 30) + 0.5) / (double)(1u << 30);
    double v = (double)vt_rng_below(&r, 1u << 30) / (double)(1u << 30);
    x[i] = (float)(rms * sqrt(-2 * log(u)) * cos(2 * PI * v));
  }
  return x;
}

static double rms_of(const float *x, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return n ? sqrt(s / (double)n) : 0;
}

/* d(out, ref) and d(out, noise of out's length and rms) */
static bool distances(const float *out, size_t n_out, const float *ref, size_t n_ref, uint64_t seed,
                      double *d_ref, double *d_noise) {
  int64_t fo = 0, fr = 0, fn = 0;
  float *z = noise(n_out, rms_of(out, n_out), seed);
  float *mo = logmel(out, n_out, &fo), *mr = logmel(ref, n_ref, &fr), *mn = logmel(z, n_out, &fn);
  bool ok = mo && mr && mn;
  if (ok) *d_ref = mel_l1(mo, fo, mr, fr), *d_noise = mel_l1(mo, fo, mn, fn);
  free(z), free(mo), free(mr), free(mn);
  return ok;
}

static float *tone(size_t n, double hz, double amp) {
  float *x = malloc(n * sizeof *x);
  for (size_t i = 0; i < n; i++) x[i] = (float)(amp * sin(2 * PI * hz * (double)i / SR));
  return x;
}

static int self_check(void) {
  size_t n = SR / 2, m = SR * 3 / 4;
  float *a = tone(n, 440, 0.3), *a_long = tone(m, 440, 0.3), *b = tone(n, 880, 0.3);
  double d_self, d_noise, d_oct, d_unused;
  CHECK(distances(a, n, a_long, m, 1, &d_self, &d_noise));
  CHECK(distances(a, n, b, n, 1, &d_oct, &d_unused));
  printf("tone: to its stretched self %.3f, an octave up %.3f, noise %.3f\n", d_self, d_oct,
         d_noise);
  CHECK(d_self < 0.25 && d_self < d_oct && d_oct < d_noise);
  float *z1 = noise(n, 0.1, 5), *z2 = noise(n, 0.1, 6);
  double d_zz;
  CHECK(distances(z1, n, z2, n, 1, &d_zz, &d_unused));
  printf("noise to noise of another seed %.3f\n", d_zz);
  CHECK(d_zz < 1.0);
  free(a), free(a_long), free(b), free(z1), free(z2);
  return vt_test_finish("test_codec_melref");
}

int main(int argc, char **argv) {
  if (argc == 1) return self_check();
  if (argc < 3) {
    fprintf(stderr, "usage: test_codec_melref OUT.wav REF.wav [SEED]\n");
    return 2;
  }
  aud_load_opts o = aud_load_opts_default();
  o.rate = SR;
  aud_wave w[2] = {{0}};
  char err[512];
  for (int i = 0; i < 2; i++)
    if (aud_load(argv[1 + i], &o, &w[i], err, sizeof err) != AUD_OK) {
      fprintf(stderr, "%s\n", err);
      return 2;
    }
  double d_ref = 0, d_noise = 0;
  uint64_t seed = argc > 3 ? strtoull(argv[3], NULL, 10) : 1;
  if (!distances(w[0].data, w[0].n, w[1].data, w[1].n, seed, &d_ref, &d_noise)) {
    fprintf(stderr, "mel of %s or %s failed\n", argv[1], argv[2]);
    return 2;
  }
  printf("mel L1 (log, 80 mels, reference frames stretched to %zu samples): to reference %.4f, "
         "to noise %.4f, margin %.4f\n",
         w[0].n, d_ref, d_noise, d_noise - d_ref);
  aud_wave_free(&w[0]);
  aud_wave_free(&w[1]);
  return 0;
}
