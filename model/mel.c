/* Mel filterbank and log-mel spectrogram; see mel.h. */
#include "model/mel.h"

#include <math.h>
#include <stdlib.h>

/* librosa's slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above. */
static const double MEL_F_SP = 200.0 / 3, MEL_MIN_LOG_HZ = 1000.0, MEL_MIN_LOG = 15.0;
#define MEL_LOGSTEP (log(6.4) / 27.0)

static double hz_to_mel(double f) {
  return f >= MEL_MIN_LOG_HZ ? MEL_MIN_LOG + log(f / MEL_MIN_LOG_HZ) / MEL_LOGSTEP : f / MEL_F_SP;
}

static double mel_to_hz(double m) {
  return m >= MEL_MIN_LOG ? MEL_MIN_LOG_HZ * exp(MEL_LOGSTEP * (m - MEL_MIN_LOG)) : m * MEL_F_SP;
}

bool mel_filterbank(float *fb, int sr, int n_fft, int n_mels, double f_min, double f_max) {
  if (f_max <= 0) f_max = sr / 2.0;
  if (sr <= 0 || n_fft < 2 || n_mels < 1 || f_min < 0 || f_min >= f_max || f_max > sr / 2.0)
    return false;
  int nb = n_fft / 2 + 1;
  double *f = malloc(sizeof(double) * (size_t)(n_mels + 2));
  if (!f) return false;
  double m0 = hz_to_mel(f_min), m1 = hz_to_mel(f_max);
  for (int i = 0; i < n_mels + 2; i++) f[i] = mel_to_hz(m0 + (m1 - m0) * i / (n_mels + 1));
  for (int m = 0; m < n_mels; m++) {
    double enorm = 2.0 / (f[m + 2] - f[m]); /* slaney: each triangle has unit area in Hz */
    for (int k = 0; k < nb; k++) {
      double hz = (double)k * (sr / 2.0) / (nb - 1);
      double lower = (hz - f[m]) / (f[m + 1] - f[m]),
             upper = (f[m + 2] - hz) / (f[m + 2] - f[m + 1]);
      double w = fmin(lower, upper);
      fb[(size_t)m * nb + k] = (float)(w > 0 ? w * enorm : 0.0);
    }
  }
  free(f);
  return true;
}

void mel_hann_window(float *w, int n) {
  for (int i = 0; i < n; i++) w[i] = (float)(0.5 - 0.5 * cos(2.0 * 3.14159265358979323846 * i / n));
}

bool mel_spec_init(mel_spec *m, int sr, int n_fft, int hop, int n_mels) {
  *m = (mel_spec){.sr = sr, .n_fft = n_fft, .hop = hop, .n_mels = n_mels};
  if (n_fft < 2 || n_fft % 2 || hop < 1 || hop > n_fft || n_mels < 1) return false;
  m->fb = malloc(sizeof(float) * (size_t)n_mels * (size_t)(n_fft / 2 + 1));
  m->win = malloc(sizeof(float) * (size_t)n_fft);
  if (!m->fb || !m->win || !mel_filterbank(m->fb, sr, n_fft, n_mels, 0, 0)) {
    mel_spec_free(m);
    return false;
  }
  mel_hann_window(m->win, n_fft);
  return true;
}

void mel_spec_free(mel_spec *m) {
  free(m->fb);
  free(m->win);
  *m = (mel_spec){0};
}

vt_tensor *mel_reflect_pad(vt_ctx *ctx, vt_tensor *x, int left, int right) {
  if (vt_ctx_failed(ctx) || (left == 0 && right == 0)) return x;
  int64_t len = x->shape[x->ndim - 1];
  if (left < 0 || right < 0 || left >= len || right >= len) {
    char s[96];
    return vt_ctx_fail(ctx, "reflect_pad", "padding %d, %d must be below the length of %s", left,
                       right, vt_shape_str(x, s, sizeof s));
  }
  int64_t n = len + left + right;
  vt_tensor *idx = vt_new(ctx, VT_I32, 1, &n);
  if (vt_ctx_failed(ctx)) return idx;
  int32_t *host = malloc(sizeof(int32_t) * (size_t)n);
  if (!host) return vt_ctx_fail(ctx, "reflect_pad", "out of memory for %lld indices", (long long)n);
  for (int64_t i = 0; i < n; i++) {
    int64_t j = i - left;
    if (j < 0) j = -j;
    if (j >= len) j = 2 * (len - 1) - j;
    host[i] = (int32_t)j;
  }
  idx = vt_from_host(ctx, VT_I32, 1, &n, host);
  free(host);
  return vt_index_select(ctx, x, -1, idx);
}

vt_tensor *mel_log_spectrogram(vt_ctx *ctx, const mel_spec *m, vt_tensor *y) {
  if (vt_ctx_failed(ctx)) return y;
  int nb = m->n_fft / 2 + 1, p = (m->n_fft - m->hop) / 2;
  vt_tensor *win = vt_from_host(ctx, VT_F32, 1, (int64_t[]){m->n_fft}, m->win);
  vt_tensor *fb = vt_from_host(ctx, VT_F32, 2, (int64_t[]){m->n_mels, nb}, m->fb);
  vt_tensor *s = vt_stft(ctx, mel_reflect_pad(ctx, y, p, p), win, m->n_fft, m->hop);
  s = vt_complex_abs(ctx, s, 1e-9f);      /* [B, T, F] */
  s = vt_matmul(ctx, s, fb, false, true); /* [B, T, n_mels] */
  return vt_log_clamp(ctx, vt_transpose(ctx, s, -1, -2), 1e-5f);
}
