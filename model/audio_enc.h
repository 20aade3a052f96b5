/* audio_enc: VITA-1.5's audio encoder (WeNet-style, DESIGN.md §4) from the model/ blocks:
 * global CMVN, Conv2d subsampling x4 (nn_conv), the input layer, pre-norm transformer layers
 * with the relative-position attention (nn_layer_cfg_wenet), the final LayerNorm; chunk masks
 * full / static / dynamic; per-sample lengths carried through the masks. Optional CTC head
 * (stage 2.1a). Parameters live under the release names "model.audio_encoder.encoder.*". */
#ifndef VT_AUDIO_ENC_H
#define VT_AUDIO_ENC_H

#include "autograd/vt.h"
#include "model/nn_conv.h"
#include "model/nn_layer.h"

typedef enum {
  AUDIO_ENC_CHUNK_FULL = 0, /* every frame attends to every valid frame */
  AUDIO_ENC_CHUNK_STATIC,   /* chunks of chunk_size frames with left_chunks chunks of history */
  AUDIO_ENC_CHUNK_DYNAMIC,  /* the public default: a random chunk per forward (needs an rng) */
} audio_enc_chunk_mode;

typedef struct {
  int64_t n_mels;  /* 80 */
  int64_t hidden;  /* 1024: also the subsampling's conv channels */
  int64_t heads;   /* 16 */
  int64_t ffn;     /* 4096 */
  int64_t layers;  /* 24 */
  int64_t max_pos; /* 5000 positions of the sinusoid table (200 s at 25 Hz) */
  double norm_eps; /* 1e-5 */
  float dropout;   /* 0.1: input layer, after the scaling, on pe, in the layers */
  audio_enc_chunk_mode chunk_mode;
  int64_t chunk_size;  /* STATIC: c > 0 */
  int64_t left_chunks; /* STATIC: L (< 0: all earlier chunks) */
  bool dynamic_left;   /* DYNAMIC: draw the left chunks too (DESIGN.md); else all */
  int64_t ctc_vocab;   /* > 0: a CTC head Linear(hidden -> ctc_vocab), blank 0 */
  bool recompute;      /* recompute each layer in backward */
} audio_enc_cfg;

/* The full-size VITA-1.5 encoder (357,950,464 parameters), no CTC head, dynamic chunks. */
audio_enc_cfg audio_enc_cfg_vita(void);
int audio_enc_cfg_check(const audio_enc_cfg *c, char *err, size_t err_len);
/* Parameters of a config (CMVN stats excluded: they are buffers), CTC head included. */
int64_t audio_enc_param_count(const audio_enc_cfg *c);
/* Frequency bins left after the two stride-2 convs: ((n_mels - 1) / 2 - 1) / 2 (19 for 80). */
int64_t audio_enc_freq_out(int64_t n_mels);
/* Encoder frames of a clip of t fbank frames (its mask subsampled twice as [2::2]). */
int64_t audio_enc_out_len(int64_t t);

/* Names under which the CMVN buffers live; they are read detached, never trained, and a stage
 * should keep them frozen: vt_params_set_trainable(ps, AUDIO_ENC_CMVN_GLOB, false). */
#define AUDIO_ENC_PREFIX "model.audio_encoder.encoder"
#define AUDIO_ENC_CMVN_GLOB "model.audio_encoder.encoder.global_cmvn.*"

typedef struct {
  audio_enc_cfg cfg;
  const vt_params *ps;
  vt_tensor *cmvn_mean, *cmvn_istd; /* [n_mels]; mean 0 / istd 1 until loaded */
  nn_conv conv0, conv2;             /* enc.0.core.conv.{0,2} */
  nn_linear sub_out;                /* enc.0.core.out.0 */
  nn_linear embed;                  /* enc.1.embed.0 */
  nn_norm embed_norm;               /* enc.1.embed.1 */
  nn_layer *blocks;                 /* enc.1.encoders.N */
  nn_norm after_norm;               /* enc.1.after_norm */
  nn_linear ctc;                    /* model.audio_encoder.ctc.ctc_lo (when ctc_vocab > 0) */
} audio_enc;

/* Registers the parameters in ps (before vt_params_alloc). Returns 0, or -1 with err;
 * audio_enc_free is safe after a failure. */
int audio_enc_init(audio_enc *m, vt_params *ps, const audio_enc_cfg *cfg, char *err,
                   size_t err_len);
void audio_enc_free(audio_enc *m);
/* torch's default initialisation (kaiming-uniform linears and convs, unit norms, zero
 * pos_bias_u/v replaced by xavier as WeNet does), CMVN mean 0 / istd 1. */
void audio_enc_init_weights(audio_enc *m, vt_rng *rng);
/* Loads CMVN mean and istd (n_mels each) into the buffers. */
void audio_enc_set_cmvn(audio_enc *m, const float *mean, const float *istd);

/* Per-forward state: training turns dropout and the dynamic chunk draw on (both from rng). */
typedef struct {
  bool training;
  vt_rng *rng;
  /* the chunk this forward used (filled by audio_enc_forward): 0 = full attention */
  int64_t chunk_used, left_used;
} audio_enc_fwd;

/* fbank [B, T, n_mels] (before CMVN; frames >= lengths[b] are padding) and host lengths[B]
 * -> encoder output [B, T', hidden] with out_lengths[b] = audio_enc_out_len(lengths[b]) (host,
 * caller's array of B). Padded output rows hold values but are masked as keys everywhere. */
vt_tensor *audio_enc_forward(audio_enc *m, vt_ctx *ctx, vt_tensor *fbank, const int32_t *lengths,
                             int32_t *out_lengths, audio_enc_fwd *f);
/* CTC log-probabilities [B, T', vocab] of encoder output h (log-softmax of the CTC head). */
vt_tensor *audio_enc_ctc_log_probs(audio_enc *m, vt_ctx *ctx, vt_tensor *h);

#endif
