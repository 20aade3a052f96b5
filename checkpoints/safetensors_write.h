/* safetensors writer: st_write writes one file atomically (NAME.tmp, fsync, rename) with the
 * header padded by spaces to a multiple of 8 as the Python library does; st_write_sharded
 * splits a tensor list into model-0000k-of-0000n.safetensors shards plus
 * model.safetensors.index.json, the layout transformers' save_pretrained produces. */
#ifndef VT_ST_SAFETENSORS_WRITE_H
#define VT_ST_SAFETENSORS_WRITE_H

#include "checkpoints/safetensors.h"

/* One tensor to write: data holds numel * vt_dtype_size(dtype) little-endian bytes. */
typedef struct {
  const char *name;
  vt_dtype dtype;
  int ndim;
  int64_t shape[ST_MAX_DIMS];
  const void *data;
} st_entry;

/* One "__metadata__" entry (e.g. {"format", "pt"}, which transformers expects). */
typedef struct {
  const char *key, *value;
} st_kv;

/* Sorts entries as the Python library orders a file: by dtype (I64, F32, I32, BF16, F16),
 * then by name. In that order every tensor is aligned for its dtype, so readers get
 * zero-copy views, and the file is byte-identical to safetensors.save_file's. */
void st_sort_entries(st_entry *ts, int n);

/* Writes the n tensors to path in the order given, back to back (no gaps: the Python library
 * refuses them). Names must be unique, non-empty UTF-8 and not "__metadata__". Returns 0 or
 * -1 with err; on failure path is left untouched. */
int st_write(const char *path, const st_entry *ts, int n, const st_kv *meta, int n_meta, char *err,
             size_t err_len);

/* Writes the tensors into dir (created if missing) as shards of at most max_shard_bytes of
 * tensor data each, filled greedily in the order given (a larger tensor gets a shard of its
 * own), each shard in st_sort_entries order and carrying meta; then the index with
 * metadata (total_parameters, total_size) and the weight
 * map. One shard only: "model.safetensors" and no index,
 * as transformers does. Writes *n_shards when not NULL. */
int st_write_sharded(const char *dir, const st_entry *ts, int n, size_t max_shard_bytes,
                     const st_kv *meta, int n_meta, int *n_shards, char *err, size_t err_len);

/* The same with the tensor bytes produced on demand: produce(ctx, i, scratch) returns the bytes
 * of ts[i] (ts[i].data is ignored), using scratch (max_tensor_bytes long) if it needs to
 * convert or copy; NULL with err filled aborts the write. Lets a caller stream parameters
 * that live on a device or in another dtype without a second full copy. */
typedef const void *(*st_produce_fn)(void *ctx, int i, void *scratch, char *err, size_t err_len);
int st_write_sharded_fn(const char *dir, const st_entry *ts, int n, size_t max_shard_bytes,
                        const st_kv *meta, int n_meta, st_produce_fn produce, void *ctx,
                        int *n_shards, char *err, size_t err_len);
int st_write_fn(const char *path, const st_entry *ts, int n, const st_kv *meta, int n_meta,
                st_produce_fn produce, void *ctx, char *err, size_t err_len);

/* Writes len bytes to path atomically (path.tmp, fsync, rename, fsync of the directory). */
int st_write_file_atomic(const char *path, const void *buf, size_t len, char *err, size_t err_len);

#endif
