/* nn_fwd: the per-forward state of the model/ building blocks: how the sequences of a batch
 * are laid out and masked, positions, optional attention terms, train or eval mode and the
 * generator of dropout seeds. It travels in arguments (never in model fields), so one model
 * can run several forwards with different layouts. Zero-initialised means: bidirectional,
 * no padding, no positions, eval mode. */
#ifndef VT_NN_FWD_H
#define VT_NN_FWD_H

#include "autograd/vt.h"

typedef struct {
  vt_attn_mask_kind mask;    /* VT_ATTN_BIDIRECTIONAL (0), CAUSAL, CHUNK, PREFIX */
  int64_t chunk_size;        /* CHUNK: c > 0 */
  int64_t left_chunks;       /* CHUNK: L; < 0 means every earlier chunk */
  int64_t prefix;            /* PREFIX: the bidirectional prefix length */
  vt_tensor *prefix_lengths; /* PREFIX: i32 [B] per-sample prefix (overrides prefix) */
  vt_tensor *lengths;        /* i32 [B]: keys at positions >= lengths[b] are padding */
  vt_tensor *segments;       /* i32 [B, T]: packed samples attend within their run of ids */
  vt_tensor *pos;            /* i32 [T] or [B, T]: RoPE positions (blocks with RoPE need it) */
  vt_tensor *bias;           /* f32 additive score bias [Hb, T, T] or [Bb, Hb, T, T] */
  vt_tensor *pos_emb;        /* f32 [T, hidden]: relative-position table (rel_pos blocks) */
  bool training;             /* dropout and drop path active */
  vt_rng *rng;               /* seeds for dropout / drop path (needed when training) */
} nn_fwd;

/* Dropout state inside one block call: one seed drawn per call, so activation recompute
 * replays the same masks. Each dropout site uses its own stream of the seed. */
typedef struct {
  bool training;
  uint64_t seed;
} nn_drop;

#endif
