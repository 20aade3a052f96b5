/* vt_batch: one micro-batch as every model sees it, whatever its modality: token rows with
 * their labels and layout (lengths, RoPE positions, packed segments), plus media tensors with
 * where each item's outputs go in the sequence. The trainer fills it on the ctx's device from
 * the data loader; a model reads what it needs and ignores the rest, so a new medium adds a
 * kind here and a loader case, never a change to the training loop. */
#ifndef VT_MODEL_BATCH_H
#define VT_MODEL_BATCH_H

#include <stdint.h>

#include "autograd/ops_loss.h" /* VT_IGNORE_INDEX: the label no loss counts */
#include "autograd/tensor.h"

typedef enum {
  VT_MEDIA_IMAGE, /* f32 [n, 3, H, W]: image tiles (tiles + thumbnail of each image) */
  VT_MEDIA_FBANK, /* f32 [n, frames, mel]: log-mel filterbank features, lengths in frames */
  VT_MEDIA_WAVE,  /* f32 [n, samples]: waveforms, lengths in samples */
  VT_MEDIA_CODEC, /* i32 [n, len]: codec token ids, lengths in tokens */
  VT_MEDIA_KINDS
} vt_media_kind;

/* The bit of a kind in vt_model.media (the kinds a model consumes). */
#define VT_MEDIA_BIT(kind) (1u << (unsigned)(kind))

/* Items of one kind. Item i's encoder outputs replace the positions
 * [spans[i, 1], spans[i, 1] + spans[i, 2]) of batch row spans[i, 0]; a medium that is a
 * target rather than an input (codec tokens of a speech decoder) has spans[i, 1..2] = 0 and
 * only names its row. */
typedef struct {
  vt_media_kind kind;
  int64_t n;          /* items */
  vt_tensor *data;    /* [n, ...] as the kind says */
  vt_tensor *lengths; /* i32 [n]: valid frames / samples / tokens of each item; NULL: all */
  vt_tensor *spans;   /* i32 [n, 3]: (row, start, count) in the token sequence */
} vt_media;

#define VT_BATCH_MAX_MEDIA 4

typedef struct {
  int64_t rows, len;    /* B sequences of T positions */
  vt_tensor *tokens;    /* i32 [B, T]: token ids, right-padded (padding id 0) */
  vt_tensor *labels;    /* i32 [B, T]: targets, VT_IGNORE_INDEX where nothing is trained;
                         * position t predicts labels[t + 1] (HF's shift) */
  vt_tensor *lengths;   /* i32 [B]: tokens in each row before the padding; NULL: all T */
  vt_tensor *positions; /* i32 [B, T]: RoPE positions (packed samples restart at 0); NULL:
                         * 0..T-1 in every row */
  vt_tensor *segments;  /* i32 [B, T]: packed rows, tokens attend within their segment; NULL */
  vt_media media[VT_BATCH_MAX_MEDIA];
  int n_media;
  int64_t label_tokens; /* labels a loss counts in this batch (on the host) */
  int64_t samples;      /* samples in the batch (a packed row holds several) */
} vt_batch;

/* The items of `kind` in b, or NULL. */
static inline const vt_media *vt_batch_media(const vt_batch *b, vt_media_kind kind) {
  for (int i = 0; i < b->n_media; i++)
    if (b->media[i].kind == kind) return &b->media[i];
  return (const vt_media *)0;
}

#endif
