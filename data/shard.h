/* HDF5 shards of tokenized samples (ids, labels, offsets, media references, codec tokens, uint8
 * image tiles per medium, format version, CRC32). shard_writer writes a shard whole under a
 * temporary name and renames it; shard_open checks version and checksum, shard_read_sample reads
 * one sample by offset. */
#ifndef VT_DATA_SHARD_H
#define VT_DATA_SHARD_H

#include "data/chat.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2 added codec tokens, 3 the tiles and (optional within 3: fbank_bins attribute) the fbank and
 * waveforms of audio clips; another version is refused */
#define SHARD_FORMAT_VERSION 3

/* One sample as written: media[i] goes with media_path[i]. */
typedef struct {
  const char *id;
  const int32_t *ids, *labels;
  size_t n;
  const chat_media *media;
  const char *const *media_path;
  size_t n_media;
  const int32_t *codec; /* speech codec token ids (stage 3.2), n_codec of them */
  size_t n_codec;
  const int32_t *n_tiles; /* tiles of media[i] (NULL: none); a shard holds one tile size */
  const uint8_t *tiles;   /* all of them in media order, tile_size^2 * 3 bytes each (HWC) */
  int tile_size;
  /* audio clips (the sample's <audio> in order): fbank [frames[k], fbank_bins] as f16 bits,
   * back to back, and optionally each clip's waveform (int16 PCM at wave_rate); one shard
   * holds one fbank_bins and one wave_rate */
  size_t n_audio;
  int fbank_bins;
  const int64_t *fbank_frames;
  const uint16_t *fbank;
  const int16_t *const *wave; /* NULL: no waveforms kept */
  const int64_t *wave_len;
  int wave_rate;
} shard_sample_in;

typedef struct shard_writer shard_writer;

/* Starts a shard that will be `path` once shard_writer_close succeeds. Returns 0 or -1. */
int shard_writer_open(shard_writer **w, const char *path, char *err, size_t err_len);
/* Copies a sample into the writer (memory only). Returns 0, or -1 out of memory. */
int shard_write_sample(shard_writer *w, const shard_sample_in *s, char *err, size_t err_len);
int64_t shard_writer_samples(const shard_writer *w);
int64_t shard_writer_tokens(const shard_writer *w);
/* Writes PATH.tmp, closes it and renames it to PATH; on any failure removes the temporary
 * file, so a half shard never appears. Frees w in all cases. Returns 0 or -1. */
int shard_writer_close(shard_writer *w, char *err, size_t err_len);
/* Drops a writer without writing anything. */
void shard_writer_abort(shard_writer *w);

/* One sample as read; reuse it across reads, shard_sample_free releases. */
typedef struct {
  char *id;
  tok_ids ids, labels;
  tok_ids codec; /* speech codec token ids; empty when the sample has none */
  chat_media *media;
  char **media_path;
  size_t n_media, cap_media;
  int32_t *n_tiles;      /* per medium */
  uint8_t *tiles;        /* n_tiles_total tiles of tile_size^2 * 3 bytes, in media order */
  int64_t n_tiles_total; /* tile_normalize (data/tiling.h) gives the model's input */
  size_t tiles_cap;
  int tile_size;
  /* stored audio clips: fbank [fbank_frames[k], fbank_bins] f16 bits back to back, and the
   * waveforms (wave_len[k] int16 samples each at wave_rate; all 0 when none are kept) */
  size_t n_audio, cap_audio, cap_wave_len, cap_fbank, cap_wave;
  int fbank_bins, wave_rate;
  int64_t *fbank_frames, *wave_len;
  uint16_t *fbank;
  int16_t *wave;
} shard_sample;

void shard_sample_free(shard_sample *s);

typedef struct shard shard;

/* Opens a shard: checks the format version and the dataset shapes, and with verify the
 * CRC32 of all datasets (reads the whole file once). A truncated or corrupt shard is
 * refused with a message naming it. Returns 0 or -1. */
int shard_open(shard **s, const char *path, bool verify, char *err, size_t err_len);
void shard_close(shard *s);
int64_t shard_n_samples(const shard *s);
int64_t shard_n_tokens(const shard *s);
int64_t shard_sample_len(const shard *s, int64_t i); /* tokens of sample i */
const char *shard_path(const shard *s);
/* Reads sample i (hyperslab of tokens and labels only). Returns 0 or -1. */
int shard_read_sample(shard *s, int64_t i, shard_sample *out, char *err, size_t err_len);

#endif
