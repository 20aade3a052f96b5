/* Kaldi fbank with FFTW; see fbank.h. The order of the steps and the mel triangles follow Kaldi's
 * feature-fbank / mel-computations (as torchaudio.compliance.kaldi restates them). */
#include "data/fbank.h"
#include "autograd/fmt.h"

#include <fftw3.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct fbank_plan {
  fbank_opts o;
  int win, shift, nfft, nbins; /* nbins = nfft/2 + 1 spectrum bins */
  double *window;              /* [win] */
  /* mel triangle m covers spectrum bins [first[m], first[m] + len[m]) with weights at w + off[m] */
  int *first, *len, *off;
  double *w;
  fftw_plan fft;
};

fbank_opts fbank_opts_default(void) {
  return (fbank_opts){.sample_rate = 16000,
                      .num_mel_bins = 80,
                      .frame_length_ms = 25,
                      .frame_shift_ms = 10,
                      .dither = 0,
                      .preemph = 0.97,
                      .remove_dc = true,
                      .window = FBANK_WIN_POVEY,
                      .round_pow2 = true,
                      .snip_edges = true,
                      .low_freq = 20,
                      .high_freq = 0,
                      .use_power = true,
                      .use_log = true};
}

/* The FFTW planner is not thread-safe (execution is): plans are made under this lock. */
static pthread_mutex_t fftw_plan_lock = PTHREAD_MUTEX_INITIALIZER;

static double mel_scale(double f) { return 1127.0 * log(1.0 + f / 700.0); }

static void window_fill(double *w, int n, fbank_window kind) {
  const double a = n > 1 ? 2.0 * 3.14159265358979323846 / (n - 1) : 0.0;
  for (int i = 0; i < n; i++) {
    double v = 1.0;
    switch (kind) {
    case FBANK_WIN_POVEY: v = pow(0.5 - 0.5 * cos(a * i), 0.85); break;
    case FBANK_WIN_HANNING: v = 0.5 - 0.5 * cos(a * i); break;
    case FBANK_WIN_HAMMING: v = 0.54 - 0.46 * cos(a * i); break;
    case FBANK_WIN_RECTANGULAR: v = 1.0; break;
    case FBANK_WIN_BLACKMAN: v = 0.42 - 0.5 * cos(a * i) + 0.08 * cos(2.0 * a * i); break;
    }
    w[i] = v;
  }
}

void fbank_plan_free(fbank_plan *p) {
  if (!p) return;
  if (p->fft) {
    pthread_mutex_lock(&fftw_plan_lock);
    fftw_destroy_plan(p->fft);
    pthread_mutex_unlock(&fftw_plan_lock);
  }
  free(p->window);
  free(p->first);
  free(p->len);
  free(p->off);
  free(p->w);
  free(p);
}

static int check_opts(const fbank_opts *o, char *err, size_t len) {
#define BAD(...) (vt_seterr(err, len, "fbank options: " __VA_ARGS__), -1)
  if (!(o->sample_rate >= 1000 && o->sample_rate <= 384000))
    return BAD("sample_rate: expected 1000..384000 Hz, found %g", o->sample_rate);
  if (!(o->frame_length_ms > 0 && o->frame_length_ms <= 1000))
    return BAD("frame_length_ms: expected (0, 1000], found %g", o->frame_length_ms);
  if (!(o->frame_shift_ms > 0 && o->frame_shift_ms <= 1000))
    return BAD("frame_shift_ms: expected (0, 1000], found %g", o->frame_shift_ms);
  if (!(o->num_mel_bins > 3 && o->num_mel_bins <= 1024))
    return BAD("num_mel_bins: expected 4..1024, found %d", o->num_mel_bins);
  if (!(o->dither >= 0 && isfinite(o->dither)))
    return BAD("dither: expected >= 0, found %g", o->dither);
  if (!(o->preemph >= 0 && o->preemph <= 1))
    return BAD("preemph: expected 0..1, found %g", o->preemph);
  if ((int)o->window < FBANK_WIN_POVEY || (int)o->window > FBANK_WIN_BLACKMAN)
    return BAD("window: expected povey, hanning, hamming, rectangular or blackman, found %d",
               (int)o->window);
  double nyq = 0.5 * o->sample_rate, hi = o->high_freq <= 0 ? o->high_freq + nyq : o->high_freq;
  if (!(o->low_freq >= 0 && o->low_freq < nyq))
    return BAD("low_freq: expected 0 <= low < Nyquist %g, found %g", nyq, o->low_freq);
  if (!(hi > 0 && hi <= nyq && o->low_freq < hi))
    return BAD("high_freq: expected low %g < high <= Nyquist %g, found %g (from %g)", o->low_freq,
               nyq, hi, o->high_freq);
  return 0;
#undef BAD
}

int fbank_plan_init(fbank_plan **out, const fbank_opts *o, char *err, size_t err_len) {
  *out = NULL;
  if (check_opts(o, err, err_len)) return -1;
  fbank_plan *p = calloc(1, sizeof *p);
  if (!p) goto oom;
  p->o = *o;
  /* Kaldi: window and shift in samples are truncated after the ms -> s product */
  p->win = (int)(o->sample_rate * o->frame_length_ms * 0.001);
  p->shift = (int)(o->sample_rate * o->frame_shift_ms * 0.001);
  if (p->win < 2 || p->shift < 1) {
    vt_seterr(err, err_len,
              "fbank options: frame_length_ms/frame_shift_ms: expected at least 2/1 samples, "
              "found %d/%d at %g Hz",
              p->win, p->shift, o->sample_rate);
    fbank_plan_free(p);
    return -1;
  }
  p->nfft = p->win;
  if (o->round_pow2) {
    p->nfft = 1;
    while (p->nfft < p->win) p->nfft <<= 1;
  }
  if (p->nfft % 2) p->nfft++; /* Kaldi requires an even FFT length; rfft wants one too */
  p->nbins = p->nfft / 2 + 1;
  const int nm = o->num_mel_bins, nfb = p->nfft / 2; /* the Nyquist bin gets no weight */
  if (nm > nfb) {
    vt_seterr(err, err_len,
              "fbank options: num_mel_bins: expected at most %d for a %d-point FFT, found %d", nfb,
              p->nfft, nm);
    fbank_plan_free(p);
    return -1;
  }
  p->window = malloc(sizeof(double) * (size_t)p->win);
  p->first = calloc((size_t)nm, sizeof(int));
  p->len = calloc((size_t)nm, sizeof(int));
  p->off = calloc((size_t)nm, sizeof(int));
  p->w = calloc((size_t)nm * (size_t)nfb, sizeof(double));
  if (!p->window || !p->first || !p->len || !p->off || !p->w) goto oom;
  window_fill(p->window, p->win, o->window);

  const double nyq = 0.5 * o->sample_rate;
  const double hi = o->high_freq <= 0 ? o->high_freq + nyq : o->high_freq;
  const double bw = o->sample_rate / p->nfft, mlo = mel_scale(o->low_freq);
  const double delta = (mel_scale(hi) - mlo) / (nm + 1);
  int off = 0;
  for (int m = 0; m < nm; m++) {
    double l = mlo + m * delta, c = mlo + (m + 1) * delta, r = mlo + (m + 2) * delta;
    int first = -1, last = -1;
    for (int k = 0; k < nfb; k++) {
      double mel = mel_scale(bw * k);
      double up = (mel - l) / (c - l), down = (r - mel) / (r - c);
      double v = up < down ? up : down;
      if (v > 0) {
        if (first < 0) first = k;
        last = k;
        p->w[off + (k - first)] = v;
      }
    }
    if (first < 0) {
      /* Kaldi refuses mel bins that cover no FFT bin: too many bins for this resolution */
      vt_seterr(err, err_len,
                "fbank options: num_mel_bins: mel bin %d covers no FFT bin with a %d-point FFT "
                "at %g Hz; use fewer bins or a longer frame",
                m, p->nfft, o->sample_rate);
      fbank_plan_free(p);
      return -1;
    }
    p->first[m] = first;
    p->len[m] = last - first + 1;
    p->off[m] = off;
    off += p->len[m];
  }

  double *in = fftw_malloc(sizeof(double) * (size_t)p->nfft);
  fftw_complex *spec = fftw_malloc(sizeof(fftw_complex) * (size_t)p->nbins);
  if (!in || !spec) {
    fftw_free(in);
    fftw_free(spec);
    goto oom;
  }
  pthread_mutex_lock(&fftw_plan_lock);
  p->fft = fftw_plan_dft_r2c_1d(p->nfft, in, spec, FFTW_ESTIMATE);
  pthread_mutex_unlock(&fftw_plan_lock);
  fftw_free(in);
  fftw_free(spec);
  if (!p->fft) {
    vt_seterr(err, err_len, "fbank: FFTW could not plan a %d-point real FFT", p->nfft);
    fbank_plan_free(p);
    return -1;
  }
  *out = p;
  return 0;
oom:
  vt_seterr(err, err_len, "fbank: out of memory");
  fbank_plan_free(p);
  return -1;
}

const fbank_opts *fbank_plan_opts(const fbank_plan *p) { return &p->o; }
int fbank_window_size(const fbank_plan *p) { return p->win; }
int fbank_window_shift(const fbank_plan *p) { return p->shift; }
int fbank_fft_size(const fbank_plan *p) { return p->nfft; }

size_t fbank_num_frames(const fbank_plan *p, size_t n) {
  if (p->o.snip_edges) return n < (size_t)p->win ? 0 : 1 + (n - (size_t)p->win) / (size_t)p->shift;
  return (n + (size_t)p->shift / 2) / (size_t)p->shift;
}

/* Sample j of frame f, with Kaldi's reflection at both ends when edges are not snipped. */
static inline float frame_sample(const fbank_plan *p, const float *x, size_t n, size_t f, int j) {
  if (p->o.snip_edges) return x[f * (size_t)p->shift + (size_t)j];
  long long pad = p->win / 2 - p->shift / 2, N = (long long)n;
  long long k = (long long)(f * (size_t)p->shift) + j - pad;
  if (k < 0) k = -k - 1;
  if (k >= N) k = 2 * N - 1 - k;
  if (k < 0) k = 0; /* signals shorter than half a window: Kaldi would reflect again */
  if (k >= N) k = N - 1;
  return x[k];
}

/* Frames [f0, f1) into out, with scratch buffers from fftw_malloc (the plan's alignment). The
 * frame math is in double: in f32 the FFT's rounding (about 1e-7 of the frame's peak) moves the
 * log of a band 100 dB below the peak by 3e-3, which is torchaudio's own error in f32. */
static void frames_range(const fbank_plan *p, const float *x, size_t n, const float *noise,
                         size_t f0, size_t f1, float *out, double *buf, fftw_complex *spec,
                         double *pw) {
  const int win = p->win, nm = p->o.num_mel_bins;
  const double pre = p->o.preemph;
  for (size_t f = f0; f < f1; f++) {
    if (p->o.snip_edges) {
      const float *xf = x + f * (size_t)p->shift;
      for (int j = 0; j < win; j++) buf[j] = xf[j];
    } else {
      for (int j = 0; j < win; j++) buf[j] = frame_sample(p, x, n, f, j);
    }
    if (noise) {
      const float *z = noise + (f - f0) * (size_t)win;
      for (int j = 0; j < win; j++) buf[j] += z[j];
    }
    if (p->o.remove_dc) {
      double s = 0;
      for (int j = 0; j < win; j++) s += buf[j];
      double mean = s / win;
      for (int j = 0; j < win; j++) buf[j] -= mean;
    }
    if (pre != 0.0) {
      for (int j = win - 1; j > 0; j--) buf[j] -= pre * buf[j - 1];
      buf[0] -= pre * buf[0];
    }
    for (int j = 0; j < win; j++) buf[j] *= p->window[j];
    for (int j = win; j < p->nfft; j++) buf[j] = 0.0;
    fftw_execute_dft_r2c(p->fft, buf, spec);
    for (int k = 0; k < p->nbins; k++) {
      double re = spec[k][0], im = spec[k][1], e = re * re + im * im;
      pw[k] = p->o.use_power ? e : sqrt(e);
    }
    float *o = out + f * (size_t)nm;
    for (int m = 0; m < nm; m++) {
      const double *w = p->w + p->off[m], *s = pw + p->first[m];
      double acc = 0.0;
      for (int k = 0; k < p->len[m]; k++) acc += w[k] * s[k];
      if (p->o.use_log) acc = log(acc > FLT_EPSILON ? acc : FLT_EPSILON);
      o[m] = (float)acc;
    }
  }
}

/* Frames per task: large enough that a thread's FFTW scratch allocation does not matter. */
#define FBANK_BLOCK 256

int fbank_compute(const fbank_plan *p, const float *x, size_t n, float *out, vt_rng *rng) {
  const size_t T = fbank_num_frames(p, n);
  if (T == 0) return 0;
  const size_t win = (size_t)p->win;
  const bool dither = p->o.dither > 0 && rng;
  const size_t nblk = (T + FBANK_BLOCK - 1) / FBANK_BLOCK;
  /* Dither noise is drawn up front in frame order, so the result does not depend on threads. */
  float *noise = NULL;
  if (dither) {
    noise = malloc(sizeof(float) * T * win);
    if (!noise) return -1;
    const float d = (float)p->o.dither;
    for (size_t i = 0; i < T * win; i++) noise[i] = d * vt_rng_normal(rng);
  }
  int failed = 0;
#pragma omp parallel for schedule(dynamic, 1) if (nblk > 1)
  for (size_t b = 0; b < nblk; b++) {
    double *buf = fftw_malloc(sizeof(double) * (size_t)p->nfft);
    fftw_complex *spec = fftw_malloc(sizeof(fftw_complex) * (size_t)p->nbins);
    double *pw = malloc(sizeof(double) * (size_t)p->nbins);
    size_t f0 = b * FBANK_BLOCK, f1 = f0 + FBANK_BLOCK < T ? f0 + FBANK_BLOCK : T;
    if (buf && spec && pw)
      frames_range(p, x, n, noise ? noise + f0 * win : NULL, f0, f1, out, buf, spec, pw);
    else {
#pragma omp atomic write
      failed = 1;
    }
    fftw_free(buf);
    fftw_free(spec);
    free(pw);
  }
  free(noise);
  return failed ? -1 : 0;
}

size_t fbank_encoder_frames(size_t frames) {
  if (frames < 7) return 0;
  return ((frames - 1) / 2 - 1) / 2;
}

size_t fbank_llm_tokens(size_t frames, size_t n_prompt) {
  size_t e = fbank_encoder_frames(frames);
  return (e + 1) / 2 + (e ? n_prompt : 0);
}
