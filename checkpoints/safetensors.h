/* safetensors reader: st_file maps a .safetensors file (8-byte little-endian header length,
 * JSON header, raw little-endian data), validates the whole header before handing out any
 * pointer, and gives zero-copy views of tensors or converts them into the caller's buffer.
 * Writing is in safetensors_write.h, sharded sets in safetensors_index.h. */
#ifndef VT_ST_SAFETENSORS_H
#define VT_ST_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/dtype.h"

#define ST_MAX_DIMS 8
/* Headers longer than this are refused (the Python library uses the same limit). */
#define ST_MAX_HEADER_BYTES 100000000u

typedef struct {
  const char *name; /* owned by the st_file */
  vt_dtype dtype;
  int ndim; /* 0 for a scalar */
  int64_t shape[ST_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end; /* "data_offsets": bytes into the data section */
  const void *data;    /* points into the mapping; may be unaligned (see st_tensor_data) */
  size_t nbytes;
} st_tensor;

typedef struct {
  char *path;
  void *map; /* the whole file, mapped read-only (NULL for st_file_open_mem) */
  size_t map_len;
  const unsigned char *data; /* the data section, after the header */
  size_t data_len;
  size_t header_len;
  st_tensor *tensors; /* in header order */
  int n;
  int *by_name;      /* indices into tensors sorted by name, for st_find */
  char *names;       /* storage of tensor names and metadata strings */
  const char **meta; /* "__metadata__": key/value pairs meta[2i], meta[2i+1] */
  int n_meta;
} st_file;

/* Maps and validates path. Returns 0, or -1 with err naming the file, the tensor, the field,
 * what was expected and what was found; f is then empty and st_file_close is a no-op.
 * The file must not be truncated by someone else while it is open (mmap semantics). */
int st_file_open(st_file *f, const char *path, char *err, size_t err_len);
/* The same on a buffer in memory (not copied: it must outlive f); label names it in errors. */
int st_file_open_mem(st_file *f, const void *buf, size_t len, const char *label, char *err,
                     size_t err_len);
void st_file_close(st_file *f);

/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);
/* A "__metadata__" value, or NULL. */
const char *st_metadata(const st_file *f, const char *key);

/* Zero-copy view: the tensor's bytes when they are already in dtype want and aligned for it,
 * else NULL (then use st_tensor_read). Valid until st_file_close. */
const void *st_tensor_data(const st_tensor *t, vt_dtype want);
/* Copies the tensor into dst as dtype to, converting f32/bf16/f16 among themselves (round to
 * nearest even) and i32/i64 (refusing values that do not fit). dst_bytes must be exactly
 * numel * vt_dtype_size(to). Returns 0 or -1 with err. */
int st_tensor_read(const st_tensor *t, vt_dtype to, void *dst, size_t dst_bytes, char *err,
                   size_t err_len);
/* Converts n elements from src (dtype from, any alignment) into dst (dtype to). Returns 0, or
 * -1 with err when the kinds differ (float vs int) or an i64 value does not fit in i32. */
int st_convert(vt_dtype from, const void *src, vt_dtype to, void *dst, size_t n, char *err,
               size_t err_len);

/* safetensors dtype names: "F32", "BF16", "F16", "I32", "I64". */
const char *st_dtype_name(vt_dtype t);
/* Returns the vt_dtype for a safetensors name, or -1. */
int st_dtype_from_name(const char *name);
/* "[2, 3, 4]" into buf; returns buf. */
char *st_shape_str(int ndim, const int64_t *shape, char *buf, size_t len);

/* Index of the first NaN or Inf element of a float tensor (f32, bf16, f16; little-endian
 * bit patterns, no conversion), or -1 when all are finite or the tensor holds integers. */
int64_t st_first_nonfinite(const st_tensor *t);
/* The same over elements [first, first + n) of it (clamped to the tensor): the index, from
 * the tensor's start, of the first one that is not finite, or -1. */
int64_t st_first_nonfinite_range(const st_tensor *t, int64_t first, int64_t n);

#endif
