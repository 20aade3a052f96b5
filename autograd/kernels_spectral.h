/* Kernels of the spectral family (STFT and its adjoint, complex magnitude, clamped log): one
 * table per device reached through vt_backend.spectral (NULL where a device lacks them).
 * autograd/ops_spectral.c calls them; pointers are device pointers, "backward" kernels
 * accumulate into their output. */
#ifndef VT_KERNELS_SPECTRAL_H
#define VT_KERNELS_SPECTRAL_H

#include "autograd/backend.h"

struct vt_spectral_kernels {
  /* Scratch floats the STFT kernels need for rows x frames frames of n_fft (the op takes them
   * from the step arena); 0 when none. */
  int64_t (*stft_work)(const vt_backend *be, int64_t rows, int64_t frames, int n_fft);
  /* x [rows, len] -> out [rows, frames, n_fft / 2 + 1, 2]: frame t of a row starts at t * hop
   * and is multiplied by w [n_fft] (NULL: rectangular) before the onesided real DFT. Returns
   * false when the device cannot transform size n_fft (out untouched). */
  bool (*stft)(const vt_backend *be, int64_t rows, int64_t len, int64_t frames, int n_fft, int hop,
               const float *x, const float *w, float *out, float *work);
  /* dx [rows, len] += the adjoint of stft applied to dy [rows, frames, n_fft / 2 + 1, 2]. */
  bool (*stft_backward)(const vt_backend *be, int64_t rows, int64_t len, int64_t frames, int n_fft,
                        int hop, const float *w, const float *dy, float *dx, float *work);
  /* y[i] = sqrt(z[2i]^2 + z[2i+1]^2 + eps) for i < m; dz += dy * z / y. */
  void (*complex_abs)(const vt_backend *be, int64_t m, float eps, const float *z, float *y);
  void (*complex_abs_backward)(const vt_backend *be, int64_t m, const float *z, const float *y,
                               const float *dy, float *dz);
  /* y = log(max(x, lo)); dx += dy / x where x >= lo. */
  void (*log_clamp)(const vt_backend *be, int64_t n, float lo, const float *x, float *y);
  void (*log_clamp_backward)(const vt_backend *be, int64_t n, float lo, const float *x,
                             const float *dy, float *dx);
};

#endif
