/* CUDA kernels of the spectral family (autograd/kernels_spectral.h). The STFT is a direct DFT
 * in double (one thread per output bin, twiddles from an exact index k * i mod n_fft), not
 * cuFFT: the audio front ends use n_fft of a few hundred, where this costs little next to the
 * model, and it keeps the family free of plans and extra libraries. The adjoint is the same
 * sum transposed, and the overlap-add gathers per sample so no atomics are needed. */
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_spectral.h"
}

static int64_t cuda_stft_work(const vt_backend *be, int64_t rows, int64_t frames, int n_fft) {
  (void)be;
  return rows * frames * n_fft; /* the backward's per-frame adjoints */
}

/* out[j, k] for frame j = (r, t) and bin k < n_fft / 2 + 1: sum_i f_i e^{-2 pi i k i / n}. */
__global__ void stft_kernel(int64_t rows, int64_t len, int64_t frames, int n_fft, int hop,
                            const float *x, const float *w, float *out) {
  int nb = n_fft / 2 + 1;
  VT_GRID_STRIDE(e, rows * frames * nb) {
    int64_t j = e / nb, r = j / frames, t = j % frames;
    int k = (int)(e % nb);
    const float *src = x + r * len + t * hop;
    double re = 0, im = 0;
    for (int i = 0; i < n_fft; i++) {
      float f = w ? src[i] * w[i] : src[i];
      double sn, cs;
      sincospi(2.0 * (double)(((int64_t)k * i) % n_fft) / (double)n_fft, &sn, &cs);
      re += f * cs;
      im -= f * sn;
    }
    out[e * 2] = (float)re;
    out[e * 2 + 1] = (float)im;
  }
}

/* work[j, i] = w_i * sum_k (g_re cos - g_im sin)(2 pi k i / n): the adjoint of one frame. */
__global__ void stft_adjoint_kernel(int64_t jobs, int n_fft, const float *w, const float *dy,
                                    float *work) {
  int nb = n_fft / 2 + 1;
  VT_GRID_STRIDE(e, jobs * n_fft) {
    int64_t j = e / n_fft;
    int i = (int)(e % n_fft);
    const float *g = dy + j * 2 * nb;
    double acc = 0;
    for (int k = 0; k < nb; k++) {
      double sn, cs;
      sincospi(2.0 * (double)(((int64_t)k * i) % n_fft) / (double)n_fft, &sn, &cs);
      acc += g[2 * k] * cs - g[2 * k + 1] * sn;
    }
    work[e] = w ? (float)acc * w[i] : (float)acc;
  }
}

/* dx[r, p] += the frames covering p, in frame order. */
__global__ void overlap_add_kernel(int64_t rows, int64_t len, int64_t frames, int n_fft, int hop,
                                   const float *work, float *dx) {
  VT_GRID_STRIDE(e, rows * len) {
    int64_t r = e / len, p = e % len;
    int64_t t1 = p / hop;                                /* last frame starting at or before p */
    int64_t t0 = p >= n_fft ? (p - n_fft) / hop + 1 : 0; /* first frame reaching p */
    if (t1 >= frames) t1 = frames - 1;
    float acc = dx[e];
    for (int64_t t = t0; t <= t1; t++) acc += work[(r * frames + t) * n_fft + (p - t * hop)];
    dx[e] = acc;
  }
}

static bool cuda_stft(const vt_backend *be, int64_t rows, int64_t len, int64_t frames, int n_fft,
                      int hop, const float *x, const float *w, float *out, float *work) {
  (void)work;
  int64_t n = rows * frames * (n_fft / 2 + 1);
  if (n <= 0) return true;
  stft_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      rows, len, frames, n_fft, hop, x, w, out);
  VT_CUDA_LAUNCHED();
  return true;
}

static bool cuda_stft_backward(const vt_backend *be, int64_t rows, int64_t len, int64_t frames,
                               int n_fft, int hop, const float *w, const float *dy, float *dx,
                               float *work) {
  int64_t jobs = rows * frames;
  if (jobs <= 0) return true;
  stft_adjoint_kernel<<<vt_cuda_blocks(be, jobs * n_fft, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                        VT_STREAM(be)>>>(jobs, n_fft, w, dy, work);
  VT_CUDA_LAUNCHED();
  overlap_add_kernel<<<vt_cuda_blocks(be, rows * len, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                       VT_STREAM(be)>>>(rows, len, frames, n_fft, hop, work, dx);
  VT_CUDA_LAUNCHED();
  return true;
}

__global__ void complex_abs_kernel(int64_t m, float eps, const float *z, float *y) {
  VT_GRID_STRIDE(i, m) y[i] = sqrtf(z[2 * i] * z[2 * i] + z[2 * i + 1] * z[2 * i + 1] + eps);
}

__global__ void complex_abs_backward_kernel(int64_t m, const float *z, const float *y,
                                            const float *dy, float *dz) {
  VT_GRID_STRIDE(i, m) {
    float s = dy[i] / y[i];
    dz[2 * i] += s * z[2 * i];
    dz[2 * i + 1] += s * z[2 * i + 1];
  }
}

__global__ void log_clamp_kernel(int64_t n, float lo, const float *x, float *y) {
  VT_GRID_STRIDE(i, n) y[i] = logf(x[i] > lo ? x[i] : lo);
}

__global__ void log_clamp_backward_kernel(int64_t n, float lo, const float *x, const float *dy,
                                          float *dx) {
  VT_GRID_STRIDE(i, n) if (x[i] >= lo) dx[i] += dy[i] / x[i];
}

#define LAUNCH(kernel, n, ...)                                                                     \
  do {                                                                                             \
    if ((n) > 0) {                                                                                 \
      kernel<<<vt_cuda_blocks(be, (n), VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(     \
          __VA_ARGS__);                                                                            \
      VT_CUDA_LAUNCHED();                                                                          \
    }                                                                                              \
  } while (0)

static void cuda_complex_abs(const vt_backend *be, int64_t m, float eps, const float *z, float *y) {
  LAUNCH(complex_abs_kernel, m, m, eps, z, y);
}

static void cuda_complex_abs_backward(const vt_backend *be, int64_t m, const float *z,
                                      const float *y, const float *dy, float *dz) {
  LAUNCH(complex_abs_backward_kernel, m, m, z, y, dy, dz);
}

static void cuda_log_clamp(const vt_backend *be, int64_t n, float lo, const float *x, float *y) {
  LAUNCH(log_clamp_kernel, n, n, lo, x, y);
}

static void cuda_log_clamp_backward(const vt_backend *be, int64_t n, float lo, const float *x,
                                    const float *dy, float *dx) {
  LAUNCH(log_clamp_backward_kernel, n, n, lo, x, dy, dx);
}

static vt_spectral_kernels make_table(void) {
  vt_spectral_kernels t;
  memset(&t, 0, sizeof t);
  t.stft_work = cuda_stft_work;
  t.stft = cuda_stft;
  t.stft_backward = cuda_stft_backward;
  t.complex_abs = cuda_complex_abs;
  t.complex_abs_backward = cuda_complex_abs_backward;
  t.log_clamp = cuda_log_clamp;
  t.log_clamp_backward = cuda_log_clamp_backward;
  return t;
}

const vt_spectral_kernels *vt_cuda_spectral_table(void) {
  static const vt_spectral_kernels t = make_table();
  return &t;
}
