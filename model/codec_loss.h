/* codec_gan: the codec's GAN training losses as TiCodec computes them, for the two phases of
 * a step. The discriminator phase: LSGAN on MPD, MSD and MS-STFT of the real and the
 * (detached) generated waveform. The generator phase: LSGAN generator terms, feature matching
 * (x 2, L1 of every feature map), mel L1 at three resolutions (45 x the 1024/240 one, 1 x
 * 512/120 and 256/60), 10 x the quantizer loss and 5 x the consistency loss 1 - cos(g, sg(g2))
 * between the global vectors of two segments of one utterance. */
#ifndef VT_CODEC_LOSS_H
#define VT_CODEC_LOSS_H

#include "model/codec.h"
#include "model/disc.h"
#include "model/mel.h"

#define CODEC_N_MEL 3

typedef struct {
  int mel_n_fft[CODEC_N_MEL], mel_hop[CODEC_N_MEL], n_mels;
  float mel_w[CODEC_N_MEL]; /* 45, 1, 1 */
  float w_q, w_cons;        /* 10, 5 */
  float fm_scale;           /* feature matching's factor (2) */
} codec_gan_cfg;

codec_gan_cfg codec_gan_cfg_vita(void);

typedef struct {
  codec_gan_cfg cfg;
  const codec *m;
  const disc *d;
  mel_spec mel[CODEC_N_MEL];
} codec_gan;

/* Returns false on bad mel settings or no memory. The models are borrowed. */
bool codec_gan_init(codec_gan *g, const codec *m, const disc *d, const codec_gan_cfg *cfg, int sr);
void codec_gan_free(codec_gan *g);

/* The generator's forward on a segment y [B, 1, L] and a second segment yy of the same
 * utterances (the consistency target). */
typedef struct {
  vt_tensor *y_hat;  /* [B, 1, L] */
  vt_tensor *latent; /* the encoder's output [B, latent, T], before quantisation */
  codec_vq vq;
  vt_tensor *g;    /* the global vector of y */
  vt_tensor *cons; /* 1 - cos(g, sg(g2)), [1] */
} codec_gan_fwd;

codec_gan_fwd codec_gan_forward(const codec_gan *g, vt_ctx *ctx, vt_tensor *y, vt_tensor *yy,
                                codec_mode mode);

typedef struct {
  vt_tensor *total, *mpd, *msd, *stft;
} codec_d_losses;

/* Discriminator phase on y and the generated y_hat (detached here). */
codec_d_losses codec_gan_d_loss(const codec_gan *g, vt_ctx *ctx, vt_tensor *y, vt_tensor *y_hat);

typedef struct {
  vt_tensor *total;
  vt_tensor *g_mpd, *g_msd, *g_stft;    /* LSGAN generator terms */
  vt_tensor *fm_mpd, *fm_msd, *fm_stft; /* feature matching (x fm_scale) */
  vt_tensor *mel;                       /* the weighted mel L1 sum */
  vt_tensor *mel_main;                  /* L1 of the first resolution, unweighted (a metric) */
  vt_tensor *q, *cons;                  /* unweighted */
} codec_g_losses;

/* Generator phase: the real waveform's features and mels are constants; gradients reach the
 * codec through y_hat, the quantizer loss and the consistency loss. (They reach the
 * discriminators' parameters too, as in torch: zero them before the discriminator phase.) */
codec_g_losses codec_gan_g_loss(const codec_gan *g, vt_ctx *ctx, vt_tensor *y,
                                const codec_gan_fwd *f);

#endif
