/* disc: the codec's discriminators as TiCodec trains them: HiFi-GAN's multi-period (MPD) and
 * multi-scale (MSD, its first scale spectral-normed) discriminators and EnCodec's multi-scale
 * STFT discriminator. Each sub-discriminator returns its logits and feature maps. Parameter
 * names are TiCodec's ("mpd.discriminators.K.convs.I.weight_g", "msd.discriminators.0.convs.I.
 * weight_orig", "mstftd.discriminators.K.convs.I.conv.weight_v", ...). */
#ifndef VT_DISC_H
#define VT_DISC_H

#include "model/nn_conv.h"

#define DISC_MAX_SUB 8
#define DISC_MAX_FMAP 8

typedef struct {
  int n_periods, periods[DISC_MAX_SUB]; /* MPD: 2, 3, 5, 7, 11 */
  int mpd_ch[5];                        /* 32, 128, 512, 1024, 1024 */
  int n_scales;                         /* MSD: 3 (the first spectral-normed) */
  int msd_ch[7], msd_groups[7];         /* 128, 128, 256, 512, 1024, 1024, 1024; 1, 4, 16, ... */
  int n_stft, stft_n_fft[DISC_MAX_SUB], stft_hop[DISC_MAX_SUB]; /* 1024/256, 2048/512, ... */
  int stft_filters;                                             /* 32 */
  int stft_dilations[3];                                        /* 1, 2, 4 */
} disc_cfg;

/* TiCodec's discriminators at their public sizes. */
disc_cfg disc_cfg_vita(void);

/* A spectral-normed conv's weight (torch.nn.utils.spectral_norm, one power iteration). */
typedef struct {
  vt_tensor *w, *b, *u, *v; /* weight_orig, bias, weight_u [O], weight_v [rest] (buffers) */
} disc_sn;

typedef struct {
  int period;
  nn_conv convs[5], post;
} disc_p;

typedef struct {
  bool spectral;
  nn_conv convs[7], post; /* weight norm */
  disc_sn sn[8];          /* spectral norm: convs 0..6, post */
  int kernel[8], stride[8], groups[8];
} disc_s;

typedef struct {
  int n_fft, hop;
  nn_conv convs[5], post; /* convs[1..3] dilated in time */
  int dilations[3];
  float *win; /* periodic Hann [n_fft] (host) */
} disc_stft;

typedef struct {
  disc_cfg cfg;
  disc_p mpd[DISC_MAX_SUB];
  disc_s msd[DISC_MAX_SUB];
  disc_stft stft[DISC_MAX_SUB];
} disc;

/* A sub-discriminator's result: logits (flattened [B, N] for MPD / MSD, [B, 1, T, F] for
 * STFT) and feature maps (MPD / MSD: the post conv's output last; STFT: without it). */
typedef struct {
  vt_tensor *logit;
  vt_tensor *fmap[DISC_MAX_FMAP];
  int n_fmap;
} disc_out;

/* Registers every parameter; the spectral norm's weight_u / weight_v are registered too and
 * must be marked buffers (disc_freeze_buffers; the ticodec model does). Returns false on no memory;
 * registration failures are sticky on r. */
bool disc_init(disc *d, nn_reg *r, const disc_cfg *cfg);
void disc_free(disc *d);
void disc_freeze_buffers(vt_params *ps);
/* HiFi-GAN / EnCodec initialisation: torch's defaults, weight_g = |weight_v|, random unit u / v. */
void disc_init_weights(const disc *d, const vt_params *ps, vt_rng *rng);

/* The sub-discriminators on x [B, 1, L]. training: the spectral norm runs its power iteration
 * and updates weight_u / weight_v in place (as torch does in train mode). */
disc_out disc_p_forward(const disc_p *p, vt_ctx *ctx, vt_tensor *x);
disc_out disc_s_forward(const disc_s *s, vt_ctx *ctx, vt_tensor *x, bool training);
disc_out disc_stft_forward(const disc_stft *s, vt_ctx *ctx, vt_tensor *x);
/* AvgPool1d(4, 2, padding=2) between the MSD scales (padding counted). */
vt_tensor *disc_pool(vt_ctx *ctx, vt_tensor *x);

#endif
