/* Kaldi-compatible log mel filterbank features (what torchaudio.compliance.kaldi.fbank computes):
 * framing, dither, DC removal, pre-emphasis, window, zero-padded FFT (FFTW), power spectrum, mel
 * triangles, log. A fbank_plan holds the window, the FFT plan and the mel weights for one set of
 * options; fbank_compute is then thread-safe on one plan. */
#ifndef VT_DATA_FBANK_H
#define VT_DATA_FBANK_H

#include "autograd/rng.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum {
  FBANK_WIN_POVEY = 0, /* Hann (symmetric) to the power 0.85: Kaldi's default */
  FBANK_WIN_HANNING,
  FBANK_WIN_HAMMING,
  FBANK_WIN_RECTANGULAR,
  FBANK_WIN_BLACKMAN,
} fbank_window;

typedef struct {
  double sample_rate;     /* Hz; 16000 */
  int num_mel_bins;       /* 80 */
  double frame_length_ms; /* 25 */
  double frame_shift_ms;  /* 10 */
  double dither;          /* Gaussian noise std added to each frame's samples; 0 at inference */
  double preemph;         /* 0.97 */
  bool remove_dc;         /* subtract each frame's mean; true */
  fbank_window window;    /* povey */
  bool round_pow2;        /* pad the FFT to a power of two (400 -> 512); true */
  bool snip_edges;        /* true: frames only where they fit; false: Kaldi's reflected edges */
  double low_freq;        /* 20 Hz */
  double high_freq;       /* <= 0: offset from Nyquist (0 = Nyquist) */
  bool use_power;         /* power (true) or magnitude spectrum */
  bool use_log;           /* log of the mel energies, floored at FLT_EPSILON; true */
} fbank_opts;

/* The DESIGN.md values: 16 kHz, 80 bins, 25/10 ms, povey, pre-emphasis 0.97, 512-point FFT,
 * snip edges, 20 Hz low, log power, dither 0. */
fbank_opts fbank_opts_default(void);

typedef struct fbank_plan fbank_plan;

/* Validates o and builds the plan. Returns 0, or -1 with err naming the field, the expected range
 * and the value found (a window longer than 1 s, more mel bins than FFT bins, ...). */
int fbank_plan_init(fbank_plan **p, const fbank_opts *o, char *err, size_t err_len);
void fbank_plan_free(fbank_plan *p);
const fbank_opts *fbank_plan_opts(const fbank_plan *p);
int fbank_window_size(const fbank_plan *p); /* samples per frame (400) */
int fbank_window_shift(const fbank_plan *p);
int fbank_fft_size(const fbank_plan *p); /* 512 */

/* Frames for n samples under the plan's options (0 when shorter than a window with snip edges). */
size_t fbank_num_frames(const fbank_plan *p, size_t n);

/* Features of n samples x (already scaled as the model expects: DESIGN.md multiplies [-1, 1)
 * audio by 32768) into out[frames * num_mel_bins], frames = fbank_num_frames. rng supplies the
 * dither noise (NULL: no dither); the noise is drawn in frame order, so a seed gives one result
 * whatever the thread count. Returns 0, or -1 when out of memory (out is then unusable). */
int fbank_compute(const fbank_plan *p, const float *x, size_t n, float *out, vt_rng *rng);

/* Encoder frames after the x4 subsampling, ((T-1)/2-1)/2 (0 when T < 7), and LLM tokens after the
 * adapter's stride-2 conv, ceil(enc/2), plus n_prompt prompt embeddings per clip. */
size_t fbank_encoder_frames(size_t frames);
size_t fbank_llm_tokens(size_t frames, size_t n_prompt);

#endif
