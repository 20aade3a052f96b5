/* The spectral family on the CPU (autograd/kernels_spectral.h): FFTW's single-precision real
 * plans, one plan pair per size, made once and kept for the process (the FFTW planner is not
 * thread-safe: a mutex guards it; executing a plan is). */
#include <fftw3.h>
#include <math.h>
#include <pthread.h>

#include "autograd/cpu/cpu_par.h"
#include "autograd/kernels_spectral.h"

#define PLAN_SLOTS 32
#define PAR_MIN 32768

typedef struct {
  int n;
  fftwf_plan r2c, c2r;
} fft_plans;

static fft_plans g_plans[PLAN_SLOTS];
static int g_nplans;
static pthread_mutex_t g_plan_lock = PTHREAD_MUTEX_INITIALIZER;

/* The plans of size n (unaligned: executed on arena buffers), or NULL when none can be made. */
static const fft_plans *plans_for(int n) {
  const fft_plans *p = NULL;
  pthread_mutex_lock(&g_plan_lock);
  for (int i = 0; i < g_nplans && !p; i++)
    if (g_plans[i].n == n) p = &g_plans[i];
  if (!p && g_nplans < PLAN_SLOTS) {
    float *r = fftwf_malloc(sizeof(float) * (size_t)n);
    fftwf_complex *c = fftwf_malloc(sizeof(fftwf_complex) * (size_t)(n / 2 + 1));
    unsigned flags = FFTW_ESTIMATE | FFTW_UNALIGNED;
    fft_plans q = {n, r && c ? fftwf_plan_dft_r2c_1d(n, r, c, flags) : NULL,
                   r && c ? fftwf_plan_dft_c2r_1d(n, c, r, flags) : NULL};
    fftwf_free(r);
    fftwf_free(c);
    if (q.r2c && q.c2r) {
      g_plans[g_nplans] = q;
      p = &g_plans[g_nplans++];
    }
  }
  pthread_mutex_unlock(&g_plan_lock);
  return p;
}

static int64_t cpu_stft_work(const vt_backend *be, int64_t rows, int64_t frames, int n_fft) {
  (void)be;
  return rows * frames * (n_fft + 2 * (n_fft / 2 + 1));
}

static bool cpu_stft(const vt_backend *be, int64_t rows, int64_t len, int64_t frames, int n_fft,
                     int hop, const float *x, const float *w, float *out, float *work) {
  (void)be;
  const fft_plans *p = plans_for(n_fft);
  if (!p) return false;
  int nb = n_fft / 2 + 1;
  int64_t jobs = rows * frames;
  VT_OMP_IF(
      jobs * n_fft > PAR_MIN, "omp parallel for schedule(static)",
      for (int64_t j = 0; j < jobs; j++) {
        int64_t r = j / frames, t = j % frames;
        float *fr = work + j * n_fft;
        const float *src = x + r * len + t * hop;
        for (int i = 0; i < n_fft; i++) fr[i] = w ? src[i] * w[i] : src[i];
        fftwf_execute_dft_r2c(p->r2c, fr, (fftwf_complex *)(out + j * 2 * nb));
      });
  return true;
}

static bool cpu_stft_backward(const vt_backend *be, int64_t rows, int64_t len, int64_t frames,
                              int n_fft, int hop, const float *w, const float *dy, float *dx,
                              float *work) {
  (void)be;
  const fft_plans *p = plans_for(n_fft);
  if (!p) return false;
  int nb = n_fft / 2 + 1;
  int64_t jobs = rows * frames;
  VT_OMP_IF(
      jobs * n_fft > PAR_MIN, "omp parallel for schedule(static)",
      for (int64_t j = 0; j < jobs; j++) {
        /* the adjoint of the onesided real DFT is c2r of the gradient with the bins between
         * DC and Nyquist halved (c2r counts each of them twice, as k and n - k) */
        float *fr = work + j * (n_fft + 2 * nb), *spec = fr + n_fft;
        const float *g = dy + j * 2 * nb;
        for (int k = 0; k < nb; k++) {
          float h = k == 0 || k == n_fft / 2 ? 1.0f : 0.5f;
          spec[2 * k] = g[2 * k] * h;
          spec[2 * k + 1] = g[2 * k + 1] * h;
        }
        fftwf_execute_dft_c2r(p->c2r, (fftwf_complex *)spec, fr);
        if (w)
          for (int i = 0; i < n_fft; i++) fr[i] *= w[i];
      });
  /* overlap-add of the frames (serial per row: frames overlap) */
  VT_OMP_IF(
      rows > 1 && rows * len > PAR_MIN, "omp parallel for schedule(static)",
      for (int64_t r = 0; r < rows; r++) for (int64_t t = 0; t < frames; t++) {
        const float *fr = work + (r * frames + t) * (n_fft + 2 * nb);
        float *d = dx + r * len + t * hop;
        for (int i = 0; i < n_fft; i++) d[i] += fr[i];
      });
  return true;
}

static void cpu_complex_abs(const vt_backend *be, int64_t m, float eps, const float *z, float *y) {
  (void)be;
  for (int64_t i = 0; i < m; i++)
    y[i] = sqrtf(z[2 * i] * z[2 * i] + z[2 * i + 1] * z[2 * i + 1] + eps);
}

static void cpu_complex_abs_backward(const vt_backend *be, int64_t m, const float *z,
                                     const float *y, const float *dy, float *dz) {
  (void)be;
  for (int64_t i = 0; i < m; i++) {
    float s = dy[i] / y[i];
    dz[2 * i] += s * z[2 * i];
    dz[2 * i + 1] += s * z[2 * i + 1];
  }
}

static void cpu_log_clamp(const vt_backend *be, int64_t n, float lo, const float *x, float *y) {
  (void)be;
  for (int64_t i = 0; i < n; i++) y[i] = logf(x[i] > lo ? x[i] : lo);
}

static void cpu_log_clamp_backward(const vt_backend *be, int64_t n, float lo, const float *x,
                                   const float *dy, float *dx) {
  (void)be;
  for (int64_t i = 0; i < n; i++)
    if (x[i] >= lo) dx[i] += dy[i] / x[i];
}

const struct vt_spectral_kernels vt_cpu_spectral_kernels = {
    .stft_work = cpu_stft_work,
    .stft = cpu_stft,
    .stft_backward = cpu_stft_backward,
    .complex_abs = cpu_complex_abs,
    .complex_abs_backward = cpu_complex_abs_backward,
    .log_clamp = cpu_log_clamp,
    .log_clamp_backward = cpu_log_clamp_backward,
};
