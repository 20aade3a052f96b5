/* Data mixtures: datasets of shards with sampling ratios (<1 subsample, >1 repeat), a seeded
 * shuffle per epoch of which rank r of N takes slots r, r+N, ... (disjoint equal slices), and
 * a cursor that saves and restores the stream exactly. Packing is in data/pack.h. */
#ifndef VT_DATA_MIXTURE_H
#define VT_DATA_MIXTURE_H

#include "data/shard.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *name;
  double ratio;
  char **shards; /* resolved shard files, sorted */
  size_t n_shards;
} mix_dataset;

/* Limits on what a config or a cursor may say: a ratio repeats a dataset at most this often,
 * a packed length, an epoch or a position beyond these is an error (so no product of them
 * overflows). */
#define MIX_MAX_RATIO 1000.0
#define MIX_MAX_LEN (INT64_C(1) << 26)
#define MIX_MAX_EPOCH (INT64_C(1) << 62)

/* Keys: seed, verify, pack, max_len, datasets [{name, shards (dir, glob or list), ratio}]. */
typedef struct {
  uint64_t seed;
  bool verify;     /* check each shard's checksum on open; default true */
  bool pack;       /* the loader packs short samples (data/pack.h); default false */
  int64_t max_len; /* packed sequence length; 0: the trainer's */
  mix_dataset *datasets;
  size_t n_datasets;
} mix_config;

/* Loads path; unknown keys, a dataset without shards, a ratio outside [0, MIX_MAX_RATIO], a
 * seed outside [0, 2^63) are errors naming the key and the file. Returns 0 or -1. mix_config_free
 * releases (also after failure). */
int mix_config_load(mix_config *c, const char *path, char *err, size_t err_len);
/* Adds a dataset programmatically (shard paths are copied). Returns 0 or -1. */
int mix_config_add(mix_config *c, const char *name, double ratio, const char *const *shards,
                   size_t n_shards);
void mix_config_free(mix_config *c);

/* Where the stream stands: the next sample of this rank is slot rank + world * pos of the
 * shuffled order of `epoch`. */
typedef struct {
  uint64_t seed;
  int64_t epoch, pos;
  int32_t rank, world;
} mix_cursor;

#define MIX_CURSOR_LEN 160
/* "mix-cursor v1 seed=S epoch=E pos=P rank=R world=W" */
void mix_cursor_format(const mix_cursor *c, char buf[MIX_CURSOR_LEN]);
int mix_cursor_parse(mix_cursor *c, const char *s, char *err, size_t err_len);

typedef struct mix mix;

/* Opens every shard of cfg for rank `rank` of `world`. Returns 0 or -1 (err names the shard
 * or the dataset). */
int mix_open(mix **m, const mix_config *cfg, int rank, int world, char *err, size_t err_len);
void mix_close(mix *m);
int64_t mix_epoch_len(const mix *m);   /* samples per epoch for this rank */
int64_t mix_epoch_total(const mix *m); /* slots per epoch over all ranks (before splitting) */

/* Where a sample came from. */
typedef struct {
  int32_t dataset;
  int64_t index; /* sample index within the dataset (over its shards in order) */
  int64_t epoch, slot;
} mix_ref;

/* Length in tokens of the next sample, without reading or advancing. */
int64_t mix_peek_len(mix *m);
/* Reads the next sample of this rank and advances (a new epoch starts after the last).
 * ref may be NULL. Returns 0 or -1. */
int mix_next(mix *m, shard_sample *out, mix_ref *ref, char *err, size_t err_len);
/* Reads the next sample without advancing; mix_skip advances past it without reading. */
int mix_peek(mix *m, shard_sample *out, char *err, size_t err_len);
void mix_skip(mix *m);
mix_cursor mix_get_cursor(const mix *m);
/* Restores a cursor saved with the same config and seed. The world size may differ: the
 * first pos * world slots of the epoch count as consumed and this rank continues after them
 * (exact when that number divides by the new world size; otherwise fewer than world samples
 * are seen twice). Returns 0 or -1. */
int mix_set_cursor(mix *m, const mix_cursor *c, char *err, size_t err_len);

/* The datasets as opened: how many, the samples of dataset d, and its slots per epoch (the
 * ratio's whole repeats plus its rounded fraction, a fresh seeded subset each epoch). */
size_t mix_n_datasets(const mix *m);
int64_t mix_dataset_size(const mix *m, size_t d);
int64_t mix_dataset_per_epoch(const mix *m, size_t d);
/* Samples drawn from each dataset by all ranks together from the start of the stream up to
 * cursor c (a cursor of this mixture's seed and world): counts[d] for d < mix_n_datasets(m).
 * Derived from the epoch orders, so it is exact after any resume; epochs drawn whole count in
 * closed form, a partial one rebuilds its order. Returns 0 or -1. */
int mix_drawn(mix *m, const mix_cursor *c, int64_t *counts, char *err, size_t err_len);

#endif
