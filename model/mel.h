/* Mel spectrograms as the codec's losses compute them (TiCodec / HiFi-GAN mel_spectrogram):
 * reflect padding of (n_fft - hop) / 2 on both sides, |STFT| with a periodic Hann window and
 * center off (1e-9 inside the square root), a librosa-style mel filterbank (slaney mel scale,
 * slaney area normalisation) and log(clamp(., 1e-5)). Differentiable in the waveform. */
#ifndef VT_MEL_H
#define VT_MEL_H

#include "autograd/vt.h"

/* librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney") into
 * fb[n_mels][n_fft / 2 + 1] (fmax <= 0 means sr / 2). Computed in double, rounded to float as
 * librosa returns it. Returns false when the arguments make no filterbank. */
bool mel_filterbank(float *fb, int sr, int n_fft, int n_mels, double fmin, double fmax);
/* torch.hann_window(n) (periodic): 0.5 - 0.5 cos(2 pi i / n). */
void mel_hann_window(float *w, int n);

/* One resolution: its filterbank and window on the host (mel_spec_init fills them). */
typedef struct {
  int sr, n_fft, hop, n_mels;
  float *fb;  /* [n_mels, n_fft / 2 + 1] */
  float *win; /* [n_fft] */
} mel_spec;

/* Returns false (and leaves m empty) on bad arguments or no memory. */
bool mel_spec_init(mel_spec *m, int sr, int n_fft, int hop, int n_mels);
void mel_spec_free(mel_spec *m);
/* y [B, L] (L > (n_fft - hop) / 2) -> log-mel [B, n_mels, frames], frames = L / hop for
 * L a multiple of hop. Errors are sticky on ctx. */
vt_tensor *mel_log_spectrogram(vt_ctx *ctx, const mel_spec *m, vt_tensor *y);
/* A reflect-padded copy of x [..., L] along its last axis (torch F.pad mode "reflect"), as an
 * index_select so the gradient flows; left, right < L. */
vt_tensor *mel_reflect_pad(vt_ctx *ctx, vt_tensor *x, int left, int right);

#endif
