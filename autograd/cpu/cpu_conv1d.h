/* Direct 1-D correlation for thin channel counts (the codec's ResBlocks, its up- and
 * downsampling convs): dst[o, m] (+)= sum over i and taps t of w(o, i, t) * src[i, m * istride +
 * off[t]] (zero outside the source row), without unfolding the input. im2col + sgemm spends
 * most of its time copying when a conv has few channels, and an sgemm with 4 to 32 output rows
 * runs far below peak; this kernel keeps a 4-channel x 16-position tile in AVX2 registers (4 x
 * 64 in AVX-512 ones where the CPU has them). The conv kernels in cpu_conv.c map conv forward
 * (and the data gradient, as a polyphase correlation) onto it. Forward passes without a tape
 * can fold the ops around a conv into it: a LeakyReLU of the source as it is read, and the
 * bias, a LeakyReLU and a residual add as the tile is stored. */
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
  /* cpu_corr1d_run only. Each stored value v becomes ((acc ? dst + v : v) + bias[o]), then
   * LeakyReLU(out_slope) when out_act, then + res[o * res_ld + obase + j * ostride]: the
   * composition's ops in its order, so the same bits. in_act: the source is read as
   * LeakyReLU(in_slope) of src, through an activated copy of each chunk's window. */
  const float *bias, *res; /* NULL: none */
  int64_t res_ld;
  bool in_act, out_act;
  float in_slope, out_slope;
} cpu_corr1d;

/* Whether cpu_corr1d_run can take c: false when in_act's window of the n_i source rows would
 * not fit its stack buffer for even one tile (the caller then composes the ops). */
bool cpu_corr1d_fits(const cpu_corr1d *c);
/* Runs the correlation, threaded over chunks of output positions. */
void cpu_corr1d_run(const cpu_corr1d *c);
/* The widest tile kernels used, for tests that compare the paths: 0 plain C, 1 AVX2, 2
 * AVX-512 (each capped by what the CPU has; the default is the widest it has). Returns the
 * previous cap. The AVX2 and AVX-512 paths give the same bits; the plain one rounds without
 * FMA. */
int cpu_corr1d_set_isa(int max_isa);
/* Its weight gradient: dw(o, i, t) += sum over j < m of dy[o * dy_ld + j] * src[i, j * istride
 * + off[t]] (c's dst and acc unused; dw laid out as c's w). Threaded over input rows. */
void cpu_corr1d_dweight(const cpu_corr1d *c, const float *dy, int64_t dy_ld, float *dw);

#endif
