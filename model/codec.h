/* codec: the TiCodec-style VQ-VAE speech codec of VITA-1.5 (DESIGN.md §4): a convolutional
 * encoder with GroupNorm on the running sums of its ResBlocks, one codebook with straight-
 * through nearest-neighbour quantisation, the time-invariant global branch (global token
 * encoder and its codebooks) and a HiFi-GAN-style generator. Parameter names are TiCodec's
 * state-dict names under "encoder.", "quantizer.", "generator.". The discriminators are in
 * model/disc.h, the training losses in model/codec_loss.h. */
#ifndef VT_CODEC_H
#define VT_CODEC_H

#include "model/nn_conv.h"
#include "model/nn_linear.h"

#define CODEC_MAX_STAGES 6
#define CODEC_MAX_RES 4

typedef struct {
  int sample_rate;
  int n_stages;                   /* upsampling stages of the generator (= encoder stages) */
  int rates[CODEC_MAX_STAGES];    /* generator upsampling rates; the encoder's strides reversed */
  int kernels[CODEC_MAX_STAGES];  /* generator ConvTranspose kernels; encoder's reversed */
  int n_res;                      /* ResBlock1s per stage (their outputs are averaged) */
  int res_kernels[CODEC_MAX_RES]; /* generator order; the encoder uses them reversed */
  int n_dil;                      /* dilations per ResBlock1 */
  int res_dilations[CODEC_MAX_RES][NN_RES_MAX];
  int enc_ch;        /* encoder conv_pre width; stage i has enc_ch << (i + 1) channels */
  int gen_ch;        /* generator conv_pre width; stage i has gen_ch >> (i + 1) channels */
  int group_ch;      /* encoder GroupNorm(ch / group_ch) */
  int global_hidden; /* global token encoder hidden width */
  int global_dim;    /* the global vector (added where a generator stage has this width) */
  int n_codes;       /* codebook size (main and global codebooks) */
  int n_global;      /* global codebooks, each of global_dim / n_global */
  float commitment;  /* commitment loss weight (0.25; the codebook term has weight 1) */
  float bn_momentum, bn_eps;
} codec_cfg;

/* VITA-1.5's codec: 24 kHz, hop 600 (rates 8, 5, 5, 3), 512-d latent, 1024 codes, 8 global
 * codebooks of 16. */
codec_cfg codec_cfg_vita(void);
/* Checks the config (and that the global width meets a generator stage); false with a message. */
bool codec_cfg_check(const codec_cfg *c, char *err, size_t err_len);
int codec_hop(const codec_cfg *c);    /* samples per token */
int codec_latent(const codec_cfg *c); /* enc_ch << n_stages */

typedef struct {
  codec_cfg cfg;
  /* encoder */
  nn_conv e_pre, e_ups[CODEC_MAX_STAGES], e_post;
  nn_resblock e_res[CODEC_MAX_STAGES * CODEC_MAX_RES];
  vt_tensor *e_norm_w[CODEC_MAX_STAGES * CODEC_MAX_RES],
      *e_norm_b[CODEC_MAX_STAGES * CODEC_MAX_RES];
  nn_conv g_conv[3];
  nn_linear g_fc;
  vt_tensor *bn_w, *bn_b, *bn_mean, *bn_var; /* running statistics: frozen buffers */
  /* quantizer */
  vt_tensor *codebook, *g_codebooks[16];
  /* generator */
  nn_conv d_pre, d_ups[CODEC_MAX_STAGES], d_post;
  nn_resblock d_res[CODEC_MAX_STAGES * CODEC_MAX_RES];
} codec;

/* Registers every parameter ("encoder.*", "quantizer.*", "generator.*"); the BatchNorm
 * running statistics are registered too and must be marked buffers by the caller
 * (codec_freeze_buffers; the ticodec model does). Failures are sticky on r. */
void codec_init(codec *m, nn_reg *r, const codec_cfg *cfg);
/* Marks the running statistics buffers (vt_params_set_buffer: updated in place, saved, never
 * trained, no optimizer state). */
void codec_freeze_buffers(vt_params *ps);
/* TiCodec's initialisation: N(0, 0.01) for the convolutions HiFi-GAN initialises so, torch's
 * defaults elsewhere, weight_g = |weight_v|, codebooks U(-1/n, 1/n), BatchNorm 1 / 0. */
void codec_init_weights(const codec *m, const vt_params *ps, vt_rng *rng);

/* How the global branch's BatchNorm runs. */
typedef enum {
  CODEC_EVAL = 0,         /* running statistics */
  CODEC_TRAIN,            /* batch statistics; the running ones are updated */
  CODEC_TRAIN_KEEP_STATS, /* batch statistics, running ones untouched: the generator pass of
                             the discriminator phase, so a step updates them once, as torch */
} codec_mode;

/* Encoder on y [B, 1, L] (L a multiple of the hop): the latent [B, latent, L / hop] and, in
 * *g, the global vector [B, global_dim]. */
vt_tensor *codec_encode(const codec *m, vt_ctx *ctx, vt_tensor *y, codec_mode mode, vt_tensor **g);
/* The global vector of a second segment (the first half of the encoder and the global token
 * encoder), detached: the consistency loss's target. */
vt_tensor *codec_global_target(const codec *m, vt_ctx *ctx, vt_tensor *yy, codec_mode mode);

typedef struct {
  vt_tensor *q;    /* [B, latent, T] straight-through quantised latent */
  vt_tensor *idx;  /* i32 [B, T] codes */
  vt_tensor *gq;   /* [B, global_dim] quantised global vector (straight-through) */
  vt_tensor *gidx; /* i32 [B, n_global] global codes */
  vt_tensor *loss; /* codebook + commitment loss of both, [1] */
} codec_vq;

codec_vq codec_quantize(const codec *m, vt_ctx *ctx, vt_tensor *c, vt_tensor *g);
/* The codebook rows of codes idx [B, T] and global codes gidx [B, n_global] (inference):
 * *q [B, latent, T], *gq [B, global_dim]. */
void codec_embed(const codec *m, vt_ctx *ctx, vt_tensor *idx, vt_tensor *gidx, vt_tensor **q,
                 vt_tensor **gq);
/* Generator: q [B, latent, T], gq [B, global_dim] -> waveform [B, 1, T * hop] in (-1, 1). */
vt_tensor *codec_decode(const codec *m, vt_ctx *ctx, vt_tensor *q, vt_tensor *gq);

/* The fixed global tokens VITA-1.5 decodes with (its 8 global codebooks). */
extern const int32_t CODEC_VITA_GLOBAL_TOKENS[8];

#endif
