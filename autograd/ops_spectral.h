/* Spectral ops for audio losses and discriminators: the short-time Fourier transform (FFTW on
 * the CPU; its backward is the adjoint transform), the complex magnitude and a clamped log.
 * Same conventions as autograd/ops.h; kernels of the spectral family (a device without them
 * records a ctx error naming the family). */
#ifndef VT_OPS_SPECTRAL_H
#define VT_OPS_SPECTRAL_H

#include "autograd/ctx.h"

/* torch.stft(x, n_fft, hop, window=window, center=False, onesided=True) as real pairs:
 * x [..., L] (L >= n_fft, n_fft even), window [n_fft] (a constant; NULL: rectangular) ->
 * [..., frames, n_fft / 2 + 1, 2] (re, im) with frames = 1 + (L - n_fft) / hop. Frame t starts
 * at sample t * hop; callers pad (reflect, centre) before. */
vt_tensor *vt_stft(vt_ctx *ctx, vt_tensor *x, vt_tensor *window, int n_fft, int hop);
/* sqrt(re^2 + im^2 + eps) of z [..., 2] -> [...] (eps > 0 keeps the gradient finite at 0). */
vt_tensor *vt_complex_abs(vt_ctx *ctx, vt_tensor *z, float eps);
/* log(max(x, lo)) elementwise (lo > 0); like torch.log(torch.clamp(x, min=lo)) the gradient
 * passes where x >= lo. */
vt_tensor *vt_log_clamp(vt_ctx *ctx, vt_tensor *x, float lo);

#endif
