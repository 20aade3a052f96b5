/* Direct 1-D correlation for thin channel counts (the codec's ResBlocks, its up- and
 * downsampling convs): dst[o, m] (+)= sum over i and taps t of w(o, i, t) * src[i, m * istride +
 * off[t]] (zero outside the source row), without unfolding the input. im2col + sgemm spends
 * most of its time copying when a conv has few channels, and an sgemm with 4 to 32 output rows
 * runs far below peak; this kernel keeps a 4-channel x 16-position tile in registers. The
 * conv kernels in cpu_conv.c map conv forward (and the data gradient, as a polyphase
 * correlation) onto it. */
#ifndef VT_CPU_CONV1D_H
#define VT_CPU_CONV1D_H

#include <stdbool.h>
#include <stdint.h>

#define CPU_CORR_MAX_TAPS 64

typedef struct {
  const float *src;
  int64_t src_ld, len, istride; /* rows of len floats, src_ld apart; read stride */
  float *dst;
  int64_t dst_ld, ostride, obase, m; /* dst[o * dst_ld + obase + j * ostride], j < m */
  const float *w;
  int64_t so, si;      /* w(o, i, t) = w[o * so + i * si + t] */
  int64_t n_o, n_i, k; /* output rows, input rows, taps */
  int64_t off[CPU_CORR_MAX_TAPS];
  bool on[CPU_CORR_MAX_TAPS]; /* taps that contribute */
  bool acc;                   /* add into dst instead of overwriting it */
} cpu_corr1d;

/* Runs the correlation, threaded over chunks of output positions. */
void cpu_corr1d_run(const cpu_corr1d *c);
/* Its weight gradient: dw(o, i, t) += sum over j < m of dy[o * dy_ld + j] * src[i, j * istride
 * + off[t]] (c's dst and acc unused; dw laid out as c's w). Threaded over input rows. */
void cpu_corr1d_dweight(const cpu_corr1d *c, const float *dy, int64_t dy_ld, float *dw);

#endif
