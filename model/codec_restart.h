/* codec_restart: codebook use of the codec's quantizer, the recipe of SoundStream (§3.2) as
 * EnCodec's and vector-quantize-pytorch's quantizers implement it: the codebook is initialised
 * by k-means over the encoder frames of the first training batch, and a code that no frame
 * has chosen for `dead_batches` training batches is re-seeded with a frame of the current
 * batch. TiCodec trains neither (its codebook starts U(-1/n, 1/n)); both are off by default
 * and only the main codebook is touched (the global codebooks are left as TiCodec has them).
 *
 * The state (each code's batches since a frame chose it, and whether the k-means has run)
 * lives in two buffers, "quantizer_state.code_age" [n_codes] and "quantizer_state.
 * initialised" [1], saved with the checkpoint and outside the release ("quantizer." names);
 * the random draws come from the trainer's rng, so a resumed run is bit-identical. */
#ifndef VT_CODEC_RESTART_H
#define VT_CODEC_RESTART_H

#include "model/nn_reg.h"

typedef struct {
  bool kmeans_init; /* k-means of the first training batch's frames into the codebook */
  int kmeans_iters; /* Lloyd iterations (EnCodec's 10; 0: the sampled frames alone) */
  int dead_batches; /* re-seed a code unused for this many training batches; 0: off */
} codec_restart_cfg;

typedef struct {
  codec_restart_cfg cfg;
  int64_t n_codes;
  vt_tensor *age;   /* f32 [n_codes]: training batches since a frame chose the code */
  vt_tensor *ready; /* f32 [1]: 1 once the k-means has run (or the codebook was loaded) */
} codec_restart;

static inline bool codec_restart_on(const codec_restart_cfg *c) {
  return c->kmeans_init || c->dead_batches > 0;
}

/* Registers the two buffers when either part is on (nothing otherwise). Failures are sticky
 * on r. */
void codec_restart_init(codec_restart *s, nn_reg *r, const codec_restart_cfg *cfg, int64_t n_codes);
/* Marks them buffers (saved, never trained). */
void codec_restart_freeze_buffers(vt_params *ps);
/* Zero ages; `ready` 0 (a fresh codebook, k-means pending) or 1 (a trained one). */
void codec_restart_reset(const codec_restart *s, const vt_params *ps, bool ready);

/* EnCodec's kmeans(): the means start as the rows init[0..k) of x [n, d]; each of `iters`
 * rounds assigns every row to its nearest mean (squared distance, the first on a tie) and
 * moves each mean with rows to their average (a mean without rows stays). means [k, d];
 * bins [k] (may be NULL): the rows of the last round's assignment. Returns false when out of
 * memory. */
bool codec_kmeans(const float *x, int64_t n, int64_t d, int64_t k, int iters, const int64_t *init,
                  float *means, int64_t *bins);
/* EnCodec's sample_vectors(): k row indices of n, without repetition when n >= k, else drawn
 * with repetition. */
void codec_sample_rows(vt_rng *rng, int64_t n, int64_t k, int64_t *out);

/* Whether the k-means is still to run (kmeans_init on, `ready` 0). */
bool codec_restart_pending(const codec_restart *s, vt_ctx *ctx);
/* The first training batch (before its forward): with kmeans_init and `ready` 0, the codebook
 * [n_codes, d] becomes the k-means of the frames of latent [B, d, T] and `ready` 1. */
void codec_restart_first(const codec_restart *s, vt_ctx *ctx, vt_tensor *codebook,
                         vt_tensor *latent, vt_rng *rng);
/* After a training batch's quantisation into codes idx [B, T]: every code's age grows by one,
 * the chosen ones' drop to 0, and a code at dead_batches is re-seeded with a frame of latent
 * [B, d, T] (its age 0). Returns the codes re-seeded (0 when off), or -1 with the ctx failed. */
int codec_restart_update(const codec_restart *s, vt_ctx *ctx, vt_tensor *codebook,
                         vt_tensor *latent, vt_tensor *idx, vt_rng *rng);

#endif
