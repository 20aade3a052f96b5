/* Packing: several short samples from a mixture concatenated into one sequence of at most
 * max_len tokens, each keeping its own labels, with the sample boundaries recorded (like
 * cu_seqlens) so attention can be masked per sample and positions restarted. */
#ifndef VT_DATA_PACK_H
#define VT_DATA_PACK_H

#include "data/mixture.h"

typedef struct {
  tok_ids ids, labels; /* concatenated samples */
  int64_t *starts;     /* n_seq + 1 offsets: sample k is [starts[k], starts[k+1]) */
  size_t n_seq, cap_seq;
  chat_media *media; /* pos is in pack coordinates */
  char **media_path;
  int32_t *media_seq; /* which packed sample each medium belongs to */
  int32_t *n_tiles;   /* tiles of each medium (0: none stored, or audio) */
  size_t n_media, cap_media;
  uint8_t *tiles; /* the media's tiles in media order, tile_size^2 * 3 bytes each (HWC) */
  int64_t n_tiles_total;
  size_t tiles_cap; /* bytes */
  int tile_size;
  int64_t n_truncated; /* samples cut to max_len because alone they were longer */
  int64_t n_dropped;   /* samples with tiles or clips longer than max_len once expanded */
  /* audio clips of the packed samples in <audio> order (packs from mix_next_packed_media
   * with audio_tokens only): fbank [fbank_frames[k], fbank_bins] f16 bits back to back */
  size_t n_audio, cap_audio, cap_fbank;
  int fbank_bins;
  int64_t *fbank_frames;
  uint16_t *fbank;
} mix_pack;

/* How a model expands media into positions, for mix_next_packed_media: each image/video tile
 * takes tile_tokens positions (0: placeholders count 1, no tiles are carried); each <audio>
 * takes audio_tokens(user, its clip's fbank frames) positions (NULL: counts 1, no clips are
 * carried). The callback keeps data/ free of any model. */
typedef struct {
  int64_t tile_tokens;
  int64_t (*audio_tokens)(void *user, int64_t frames);
  void *user;
} mix_pack_media;

/* Fills out (reset first) with the next samples of m while they fit in max_len; stops at the
 * end of an epoch. A sample longer than max_len is cut to max_len and packed alone (media
 * past the cut are dropped). Returns 0 or -1. */
int mix_next_packed(mix *m, int64_t max_len, mix_pack *out, char *err, size_t err_len);
/* The same for a model that expands each image/video tile into tile_tokens positions (0: as
 * mix_next_packed): a sample's length is its tokens with each such placeholder counted as its
 * tiles times tile_tokens, and the pack carries the tiles. A sample with tiles that alone is
 * longer than max_len is skipped and counted in n_dropped (a cut through its tiles would
 * leave a tile without its tokens). Tiles of two sizes in one pack are an error. */
int mix_next_packed_tiles(mix *m, int64_t max_len, int64_t tile_tokens, mix_pack *out, char *err,
                          size_t err_len);
/* The same with tiles and audio clips (how: see mix_pack_media): a sample's length counts each
 * <audio> as its clip's positions and the pack carries the clips; a sample with a clip that
 * alone is longer than max_len is skipped and counted in n_dropped like one with tiles. A
 * placeholder without its stored clip counts 1 (the trainer reports the sample). Clips of two
 * fbank widths in one pack are an error. */
int mix_next_packed_media(mix *m, int64_t max_len, const mix_pack_media *how, mix_pack *out,
                          char *err, size_t err_len);
void mix_pack_free(mix_pack *p);

/* Per-token views of the boundaries for a row of length T >= p->ids.n (padding after the
 * pack): segment[i] = index of the sample holding token i (padding: n_seq, one more run),
 * as autograd's segment_ids expect; position[i] = offset of token i within its sample (RoPE
 * positions restart per sample; padding continues from 0). Either pointer may be NULL. */
void mix_pack_segments(const mix_pack *p, size_t T, int32_t *segment, int32_t *position);

#endif
