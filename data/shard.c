/* HDF5 shard writer and reader (HDF5 C API, CRC32 from zlib). Layout, all 1-D contiguous
 * datasets, little-endian, in checksum order:
 *   tokens i32[T], labels i32[T], sample_offsets i64[N+1] (into tokens),
 *   sample_id_offsets i64[N+1], sample_ids u8[..] (UTF-8 ids, not NUL-terminated),
 *   media_offsets i64[N+1] (into the media_* arrays), media_kind i32[M] (chat_media_kind),
 *   media_pos i64[M] (token position inside the sample), media_item i32[M],
 *   media_path_offsets i64[M+1], media_paths u8[..],
 *   codec_offsets i64[N+1] (into codec_tokens), codec_tokens i32[C] (speech codec ids),
 *   media_tile_offsets i64[M+1] (into tiles, in tiles), tiles u8[K * S * S * 3] (each medium's
 *   image tiles or video frames after resize, HWC, normalised only when loaded),
 *   audio_offsets i64[N+1] (clips of each sample), fbank_offsets i64[A+1] (frames),
 *   fbank u16[F * fbank_bins] (f16 bits, [frames, bins] per clip, before CMVN),
 *   wave_offsets i64[A+1] (samples; all 0 when no waveforms are kept), wave i16[W] (PCM)
 * Root attributes: format_version i32, n_samples i64, n_tokens i64, tile_size i32 (S, 0 without
 * tiles), fbank_bins i32, wave_rate i32 (0 without audio / waveforms), checksum u32 (CRC32 of
 * the datasets' bytes in the order above). A shard of another format version is refused. */
#include "data/shard.h"
#include "autograd/checked.h"
#include "autograd/fmt.h"
#include "autograd/regfile.h"

#include <errno.h>
#include <hdf5.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* ---- growable byte vectors --------------------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap; /* in bytes */
} vec;

static int vec_add(vec *v, const void *x, size_t bytes) {
  if (v->n + bytes > v->cap) {
    size_t cap = v->cap ? v->cap : 1024;
    while (cap < v->n + bytes) cap *= 2;
    char *p = realloc(v->p, cap);
    if (!p) return -1;
    v->p = p;
    v->cap = cap;
  }
  if (bytes) memcpy(v->p + v->n, x, bytes);
  v->n += bytes;
  return 0;
}

static int vec_i64(vec *v, int64_t x) { return vec_add(v, &x, sizeof x); }
static int vec_i32(vec *v, int32_t x) { return vec_add(v, &x, sizeof x); }

enum {
  DS_TOKENS,
  DS_LABELS,
  DS_SAMPLE_OFFSETS,
  DS_ID_OFFSETS,
  DS_IDS,
  DS_MEDIA_OFFSETS,
  DS_MEDIA_KIND,
  DS_MEDIA_POS,
  DS_MEDIA_ITEM,
  DS_PATH_OFFSETS,
  DS_PATHS,
  DS_CODEC_OFFSETS,
  DS_CODEC_TOKENS,
  DS_TILE_OFFSETS,
  DS_TILES,
  DS_AUDIO_OFFSETS,
  DS_FBANK_OFFSETS,
  DS_FBANK,
  DS_WAVE_OFFSETS,
  DS_WAVE,
  DS_COUNT
};

static const char *const ds_name[DS_COUNT] = {
    "tokens",        "labels",        "sample_offsets", "sample_id_offsets",  "sample_ids",
    "media_offsets", "media_kind",    "media_pos",      "media_item",         "media_path_offsets",
    "media_paths",   "codec_offsets", "codec_tokens",   "media_tile_offsets", "tiles",
    "audio_offsets", "fbank_offsets", "fbank",          "wave_offsets",       "wave"};
static const size_t ds_elem[DS_COUNT] = {4, 4, 8, 8, 1, 8, 4, 8, 4, 8,
                                         1, 8, 4, 8, 1, 8, 8, 2, 8, 2};

static hid_t ds_mem_type(int d) {
  if (d == DS_WAVE) return H5T_NATIVE_INT16;
  return ds_elem[d] == 8   ? H5T_NATIVE_INT64
         : ds_elem[d] == 4 ? H5T_NATIVE_INT32
         : ds_elem[d] == 2 ? H5T_NATIVE_UINT16
                           : H5T_NATIVE_UINT8;
}
static hid_t ds_file_type(int d) {
  if (d == DS_WAVE) return H5T_STD_I16LE;
  return ds_elem[d] == 8   ? H5T_STD_I64LE
         : ds_elem[d] == 4 ? H5T_STD_I32LE
         : ds_elem[d] == 2 ? H5T_STD_U16LE
                           : H5T_STD_U8LE;
}
/* The datasets read by range when a sample is read, never whole. */
static bool ds_big(int d) {
  return d == DS_TOKENS || d == DS_LABELS || d == DS_CODEC_TOKENS || d == DS_TILES ||
         d == DS_FBANK || d == DS_WAVE;
}

/* ---- writer ---------------------------------------------------------------------------- */

struct shard_writer {
  char path[4096];
  vec ds[DS_COUNT];
  int64_t n_samples, n_tiles;
  int32_t tile_size;
  int32_t fbank_bins, wave_rate; /* of the audio written so far (0: none yet) */
};

int shard_writer_open(shard_writer **out, const char *path, char *err, size_t err_len) {
  shard_writer *w = calloc(1, sizeof *w);
  if (!w || strlen(path) + 5 >= sizeof w->path) {
    free(w);
    vt_seterr(err, err_len, "%s: path too long or out of memory", path);
    return -1;
  }
  snprintf(w->path, sizeof w->path, "%s", path);
  int rc = vec_i64(&w->ds[DS_SAMPLE_OFFSETS], 0) | vec_i64(&w->ds[DS_ID_OFFSETS], 0) |
           vec_i64(&w->ds[DS_MEDIA_OFFSETS], 0) | vec_i64(&w->ds[DS_PATH_OFFSETS], 0) |
           vec_i64(&w->ds[DS_CODEC_OFFSETS], 0) | vec_i64(&w->ds[DS_TILE_OFFSETS], 0) |
           vec_i64(&w->ds[DS_AUDIO_OFFSETS], 0) | vec_i64(&w->ds[DS_FBANK_OFFSETS], 0) |
           vec_i64(&w->ds[DS_WAVE_OFFSETS], 0);
  if (rc) {
    shard_writer_abort(w);
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  *out = w;
  return 0;
}

void shard_writer_abort(shard_writer *w) {
  if (!w) return;
  for (int d = 0; d < DS_COUNT; d++) free(w->ds[d].p);
  free(w);
}

int64_t shard_writer_samples(const shard_writer *w) { return w->n_samples; }
int64_t shard_writer_tokens(const shard_writer *w) {
  return (int64_t)(w->ds[DS_TOKENS].n / sizeof(int32_t));
}

int shard_write_sample(shard_writer *w, const shard_sample_in *s, char *err, size_t err_len) {
  vec *v = w->ds;
  int64_t tiles = 0;
  for (size_t i = 0; s->n_tiles && i < s->n_media; i++) tiles += s->n_tiles[i];
  if (tiles && w->tile_size && s->tile_size != w->tile_size) {
    vt_seterr(err, err_len, "%s: sample %s: tiles of %d pixels, the shard holds %d", w->path, s->id,
              s->tile_size, w->tile_size);
    return -1;
  }
  /* checked before anything is appended: a refused sample leaves the writer as it was */
  if (s->n_audio &&
      ((w->fbank_bins && s->fbank_bins != w->fbank_bins) ||
       (w->wave_rate && s->wave && s->wave_rate != w->wave_rate) || s->fbank_bins < 1)) {
    vt_seterr(err, err_len,
              "%s: sample %s: fbank bins %d / wave rate %d differ from the shard's %d / %d",
              w->path, s->id, s->fbank_bins, s->wave_rate, w->fbank_bins, w->wave_rate);
    return -1;
  }
  if (tiles) w->tile_size = s->tile_size;
  size_t tile_bytes = (size_t)s->tile_size * (size_t)s->tile_size * 3;
  int rc = vec_add(&v[DS_TOKENS], s->ids, s->n * 4) | vec_add(&v[DS_LABELS], s->labels, s->n * 4);
  rc |= vec_i64(&v[DS_SAMPLE_OFFSETS], (int64_t)(v[DS_TOKENS].n / 4));
  rc |= vec_add(&v[DS_IDS], s->id, strlen(s->id));
  rc |= vec_i64(&v[DS_ID_OFFSETS], (int64_t)v[DS_IDS].n);
  for (size_t i = 0; i < s->n_media; i++) {
    rc |= vec_i32(&v[DS_MEDIA_KIND], s->media[i].kind);
    rc |= vec_i64(&v[DS_MEDIA_POS], s->media[i].pos);
    rc |= vec_i32(&v[DS_MEDIA_ITEM], s->media[i].item);
    const char *p = s->media_path ? s->media_path[i] : "";
    rc |= vec_add(&v[DS_PATHS], p, strlen(p));
    rc |= vec_i64(&v[DS_PATH_OFFSETS], (int64_t)v[DS_PATHS].n);
    w->n_tiles += s->n_tiles ? s->n_tiles[i] : 0;
    rc |= vec_i64(&v[DS_TILE_OFFSETS], w->n_tiles);
  }
  if (tiles) rc |= vec_add(&v[DS_TILES], s->tiles, (size_t)tiles * tile_bytes);
  rc |= vec_i64(&v[DS_MEDIA_OFFSETS], (int64_t)(v[DS_MEDIA_KIND].n / 4));
  rc |= vec_add(&v[DS_CODEC_TOKENS], s->codec, s->n_codec * 4);
  rc |= vec_i64(&v[DS_CODEC_OFFSETS], (int64_t)(v[DS_CODEC_TOKENS].n / 4));
  int64_t frame_end = s->n_audio ? (int64_t)(v[DS_FBANK].n / 2 / (size_t)s->fbank_bins) : 0;
  for (size_t k = 0; k < s->n_audio; k++) {
    frame_end += s->fbank_frames[k];
    rc |= vec_i64(&v[DS_FBANK_OFFSETS], frame_end);
    if (s->wave) rc |= vec_add(&v[DS_WAVE], s->wave[k], (size_t)s->wave_len[k] * 2);
    rc |= vec_i64(&v[DS_WAVE_OFFSETS], (int64_t)(v[DS_WAVE].n / 2));
  }
  if (s->n_audio) {
    size_t frames = 0;
    for (size_t k = 0; k < s->n_audio; k++) frames += (size_t)s->fbank_frames[k];
    rc |= vec_add(&v[DS_FBANK], s->fbank, frames * (size_t)s->fbank_bins * 2);
    w->fbank_bins = s->fbank_bins;
    if (s->wave) w->wave_rate = s->wave_rate;
  }
  rc |= vec_i64(&v[DS_AUDIO_OFFSETS], (int64_t)(v[DS_FBANK_OFFSETS].n / 8) - 1);
  if (rc) {
    vt_seterr(err, err_len, "%s: out of memory", w->path);
    return -1;
  }
  w->n_samples++;
  return 0;
}

static int write_attr(hid_t f, const char *name, hid_t ftype, hid_t mtype, const void *x) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t r = a < 0 ? -1 : H5Awrite(a, mtype, x);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  return r < 0 ? -1 : 0;
}

int shard_writer_close(shard_writer *w, char *err, size_t err_len) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", w->path);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  /* 1.8 file format: superblock v2 and object headers carry checksums, so HDF5 itself
   * refuses corrupted metadata; our CRC32 covers the data */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
  hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
  H5Pset_obj_track_times(fcpl, 0); /* no timestamps: the same samples give the same bytes */
  hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
  H5Pclose(fapl);
  H5Pclose(fcpl);
  int rc = 0;
  if (f < 0) {
    vt_seterr(err, err_len, "%s: cannot create", tmp);
    shard_writer_abort(w);
    return -1;
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_obj_track_times(dcpl, 0);
  for (int d = 0; d < DS_COUNT && rc == 0; d++) {
    hsize_t n = w->ds[d].n / ds_elem[d];
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t ds = H5Dcreate2(f, ds_name[d], ds_file_type(d), sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (ds < 0 ||
        (n && H5Dwrite(ds, ds_mem_type(d), H5S_ALL, H5S_ALL, H5P_DEFAULT, w->ds[d].p) < 0)) {
      vt_seterr(err, err_len, "%s: cannot write dataset %s", tmp, ds_name[d]);
      rc = -1;
    }
    for (size_t off = 0; off < w->ds[d].n; off += 1u << 30) {
      size_t len = w->ds[d].n - off < (1u << 30) ? w->ds[d].n - off : (1u << 30);
      crc = crc32(crc, (const Bytef *)w->ds[d].p + off, (uInt)len);
    }
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
  }
  H5Pclose(dcpl);
  int32_t version = SHARD_FORMAT_VERSION;
  int64_t n_tokens = shard_writer_tokens(w);
  uint32_t sum = (uint32_t)crc;
  if (rc == 0 && (write_attr(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT32, &version) ||
                  write_attr(f, "n_samples", H5T_STD_I64LE, H5T_NATIVE_INT64, &w->n_samples) ||
                  write_attr(f, "n_tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, &n_tokens) ||
                  write_attr(f, "tile_size", H5T_STD_I32LE, H5T_NATIVE_INT32, &w->tile_size) ||
                  write_attr(f, "fbank_bins", H5T_STD_I32LE, H5T_NATIVE_INT32, &w->fbank_bins) ||
                  write_attr(f, "wave_rate", H5T_STD_I32LE, H5T_NATIVE_INT32, &w->wave_rate) ||
                  write_attr(f, "checksum", H5T_STD_U32LE, H5T_NATIVE_UINT32, &sum))) {
    vt_seterr(err, err_len, "%s: cannot write attributes", tmp);
    rc = -1;
  }
  if (H5Fclose(f) < 0 && rc == 0) {
    vt_seterr(err, err_len, "%s: cannot close (disk full?)", tmp);
    rc = -1;
  }
  if (rc == 0 && rename(tmp, w->path) != 0) {
    vt_seterr(err, err_len, "%s: cannot rename to %s: %s", tmp, w->path, strerror(errno));
    rc = -1;
  }
  if (rc != 0) unlink(tmp);
  shard_writer_abort(w);
  return rc;
}

/* ---- reader ---------------------------------------------------------------------------- */

struct shard {
  char path[4096];
  hid_t file, tokens, labels, codec, tiles, fbank, wave;
  int64_t n_samples, n_tokens, n_codec;
  int32_t tile_size, fbank_bins, wave_rate;
  vec small[DS_COUNT]; /* every dataset but the ds_big ones, read whole */
};

static const int64_t *I64(const shard *s, int d) { return (const int64_t *)s->small[d].p; }

const char *shard_path(const shard *s) { return s->path; }
int64_t shard_n_samples(const shard *s) { return s->n_samples; }
int64_t shard_n_tokens(const shard *s) { return s->n_tokens; }
int64_t shard_sample_len(const shard *s, int64_t i) {
  return I64(s, DS_SAMPLE_OFFSETS)[i + 1] - I64(s, DS_SAMPLE_OFFSETS)[i];
}

void shard_close(shard *s) {
  if (!s) return;
  if (s->tokens > 0) H5Dclose(s->tokens);
  if (s->labels > 0) H5Dclose(s->labels);
  if (s->codec > 0) H5Dclose(s->codec);
  if (s->tiles > 0) H5Dclose(s->tiles);
  if (s->fbank > 0) H5Dclose(s->fbank);
  if (s->wave > 0) H5Dclose(s->wave);
  if (s->file > 0) H5Fclose(s->file);
  for (int d = 0; d < DS_COUNT; d++) free(s->small[d].p);
  free(s);
}

static int64_t ds_len(hid_t ds) {
  hid_t sp = H5Dget_space(ds);
  if (sp < 0) return -1;
  hsize_t n = 0;
  int nd = H5Sget_simple_extent_ndims(sp);
  if (nd == 1) H5Sget_simple_extent_dims(sp, &n, NULL);
  H5Sclose(sp);
  return nd == 1 ? (int64_t)n : -1;
}

static int read_range(hid_t ds, hid_t mtype, int64_t off, int64_t n, void *buf) {
  if (n == 0) return 0;
  hid_t fs = H5Dget_space(ds);
  hsize_t start = (hsize_t)off, count = (hsize_t)n;
  hid_t ms = H5Screate_simple(1, &count, NULL);
  herr_t r = H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL);
  if (r >= 0) r = H5Dread(ds, mtype, ms, fs, H5P_DEFAULT, buf);
  H5Sclose(ms);
  H5Sclose(fs);
  return r < 0 ? -1 : 0;
}

/* Reads a root attribute that must be one integer of at most 8 bytes: its type and shape are
 * checked before the read, so an array or a string where a scalar belongs is an error (not a
 * write past x). Returns 0, or -1 with err naming the attribute. */
static int read_attr(const char *path, hid_t f, const char *name, hid_t mtype, void *x, char *err,
                     size_t err_len) {
  if (H5Aexists(f, name) <= 0) {
    vt_seterr(err, err_len, "shard %s: attribute %s is missing", path, name);
    return -1;
  }
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  hid_t sp = a < 0 ? -1 : H5Aget_space(a), ty = a < 0 ? -1 : H5Aget_type(a);
  H5S_class_t sc = sp < 0 ? H5S_NO_CLASS : H5Sget_simple_extent_type(sp);
  hssize_t npts = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
  H5T_class_t tc = ty < 0 ? H5T_NO_CLASS : H5Tget_class(ty);
  size_t tsize = ty < 0 ? 0 : H5Tget_size(ty);
  int rc = -1;
  if (a < 0 || sp < 0 || ty < 0)
    vt_seterr(err, err_len, "shard %s: attribute %s is unreadable (corrupt?)", path, name);
  else if ((sc != H5S_SCALAR && sc != H5S_SIMPLE) || npts != 1)
    vt_seterr(err, err_len, "shard %s: attribute %s: expected a scalar, found %lld values", path,
              name, (long long)npts);
  else if (tc != H5T_INTEGER || tsize > 8)
    vt_seterr(err, err_len,
              "shard %s: attribute %s: expected an integer, found HDF5 type class %d "
              "of %zu bytes",
              path, name, (int)tc, tsize);
  else if (H5Aread(a, mtype, x) < 0)
    vt_seterr(err, err_len, "shard %s: attribute %s: cannot read (out of range?)", path, name);
  else
    rc = 0;
  if (ty >= 0) H5Tclose(ty);
  if (sp >= 0) H5Sclose(sp);
  if (a >= 0) H5Aclose(a);
  return rc;
}

/* A dataset must be 1-D integers of the element size of its kind, with all its bytes stored:
 * a length the file cannot hold (a 2 KB shard declaring 2^36 tokens) is refused here, before
 * anything is allocated or checksummed by it. Returns its length, or -1 with err. */
static int64_t check_dataset(const char *path, hid_t ds, int d, int64_t file_size, char *err,
                             size_t err_len) {
  int64_t n = ds_len(ds);
  hid_t ty = H5Dget_type(ds);
  H5T_class_t tc = ty < 0 ? H5T_NO_CLASS : H5Tget_class(ty);
  size_t tsize = ty < 0 ? 0 : H5Tget_size(ty);
  if (ty >= 0) H5Tclose(ty);
  size_t bytes;
  if (n < 0) {
    vt_seterr(err, err_len, "shard %s: dataset %s: expected one dimension", path, ds_name[d]);
    return -1;
  }
  if (tc != H5T_INTEGER || tsize != ds_elem[d]) {
    vt_seterr(err, err_len,
              "shard %s: dataset %s: expected %zu-byte integers, found HDF5 type "
              "class %d of %zu bytes",
              path, ds_name[d], ds_elem[d], (int)tc, tsize);
    return -1;
  }
  if (vt_bytes_overflows(n, ds_elem[d], &bytes) || (int64_t)bytes > file_size ||
      (bytes && H5Dget_storage_size(ds) < (hsize_t)bytes)) {
    vt_seterr(err, err_len,
              "shard %s: dataset %s declares %lld elements, more than the file (%lld bytes) "
              "holds: truncated or corrupt",
              path, ds_name[d], (long long)n, (long long)file_size);
    return -1;
  }
  return n;
}

/* offsets must start at 0, never decrease, and end at `end` */
static bool offsets_ok(const int64_t *o, int64_t n, int64_t end) {
  if (n < 1 || o[0] != 0 || o[n - 1] != end) return false;
  for (int64_t i = 1; i < n; i++)
    if (o[i] < o[i - 1]) return false;
  return true;
}

/* The audio datasets agree with each other and with the fbank and wave lengths. */
static bool audio_ok(const shard *s, const int64_t *len) {
  int64_t n = s->n_samples, a = len[DS_FBANK_OFFSETS] - 1;
  if (len[DS_AUDIO_OFFSETS] != n + 1 || a < 0 || len[DS_WAVE_OFFSETS] != a + 1 ||
      !offsets_ok(I64(s, DS_AUDIO_OFFSETS), n + 1, a))
    return false;
  int64_t bins = s->fbank_bins, frames = a ? I64(s, DS_FBANK_OFFSETS)[a] : 0;
  if ((a && bins < 1) || (bins && len[DS_FBANK] % bins) ||
      !offsets_ok(I64(s, DS_FBANK_OFFSETS), a + 1, bins ? len[DS_FBANK] / bins : 0) ||
      (a && frames * bins != len[DS_FBANK]))
    return false;
  return offsets_ok(I64(s, DS_WAVE_OFFSETS), a + 1, len[DS_WAVE]);
}

int shard_open(shard **out, const char *path, bool verify, char *err, size_t err_len) {
  *out = NULL;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  shard *s = calloc(1, sizeof *s);
  if (!s) {
    vt_seterr(err, err_len, "shard %s: out of memory", path);
    return -1;
  }
  snprintf(s->path, sizeof s->path, "%s", path);
  s->file = s->tokens = s->labels = s->codec = s->tiles = s->fbank = s->wave = -1;
  int64_t file_size = 0;
  char why[512];
  int fd = vt_open_regular(path, &file_size, why, sizeof why);
  if (fd < 0) {
    vt_seterr(err, err_len, "shard %s", why);
    goto fail;
  }
  close(fd);
  s->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (s->file < 0) {
    vt_seterr(err, err_len, "shard %s: not a readable HDF5 file (truncated or corrupt)", path);
    goto fail;
  }
  int32_t version = 0;
  uint32_t sum = 0;
  int64_t n_tokens_attr = 0;
  if (read_attr(path, s->file, "format_version", H5T_NATIVE_INT32, &version, err, err_len) ||
      read_attr(path, s->file, "checksum", H5T_NATIVE_UINT32, &sum, err, err_len) ||
      read_attr(path, s->file, "n_samples", H5T_NATIVE_INT64, &s->n_samples, err, err_len) ||
      read_attr(path, s->file, "n_tokens", H5T_NATIVE_INT64, &n_tokens_attr, err, err_len))
    goto fail;
  if (version != SHARD_FORMAT_VERSION) {
    vt_seterr(err, err_len, "shard %s: format version %d, this build reads version %d", path,
              version, SHARD_FORMAT_VERSION);
    goto fail;
  }
  if (read_attr(path, s->file, "tile_size", H5T_NATIVE_INT32, &s->tile_size, err, err_len) ||
      read_attr(path, s->file, "fbank_bins", H5T_NATIVE_INT32, &s->fbank_bins, err, err_len) ||
      read_attr(path, s->file, "wave_rate", H5T_NATIVE_INT32, &s->wave_rate, err, err_len))
    goto fail;
  if (s->fbank_bins < 0 || s->fbank_bins > 1024 || s->wave_rate < 0 || s->wave_rate > 384000) {
    vt_seterr(err, err_len, "shard %s: attributes fbank_bins %d / wave_rate %d out of range", path,
              s->fbank_bins, s->wave_rate);
    goto fail;
  }
  int64_t len[DS_COUNT] = {0};
  for (int d = 0; d < DS_COUNT; d++) {
    hid_t ds = H5Dopen2(s->file, ds_name[d], H5P_DEFAULT);
    if (ds < 0) {
      vt_seterr(err, err_len, "shard %s: dataset %s missing or unreadable", path, ds_name[d]);
      goto fail;
    }
    len[d] = check_dataset(path, ds, d, file_size, err, err_len);
    if (len[d] < 0) {
      H5Dclose(ds);
      goto fail;
    }
    if (d == DS_TOKENS)
      s->tokens = ds;
    else if (d == DS_LABELS)
      s->labels = ds;
    else if (d == DS_CODEC_TOKENS)
      s->codec = ds;
    else if (d == DS_TILES)
      s->tiles = ds;
    else if (d == DS_FBANK)
      s->fbank = ds;
    else if (d == DS_WAVE)
      s->wave = ds;
    else {
      vec *v = &s->small[d];
      size_t bytes = (size_t)len[d] * ds_elem[d]; /* bounded by the file size above */
      v->p = malloc(bytes + 8);
      v->n = bytes;
      int r = v->p ? read_range(ds, ds_mem_type(d), 0, len[d], v->p) : -1;
      H5Dclose(ds);
      if (r) {
        vt_seterr(err, err_len, "shard %s: cannot read dataset %s (corrupt?)", path, ds_name[d]);
        goto fail;
      }
    }
  }
  s->n_tokens = len[DS_TOKENS];
  s->n_codec = len[DS_CODEC_TOKENS];
  int64_t n = s->n_samples, m = len[DS_MEDIA_KIND];
  if (n < 0 || n != len[DS_SAMPLE_OFFSETS] - 1 || n_tokens_attr != s->n_tokens) {
    vt_seterr(err, err_len,
              "shard %s: attributes say %lld samples and %lld tokens, the datasets hold %lld "
              "and %lld (corrupt)",
              path, (long long)n, (long long)n_tokens_attr, (long long)len[DS_SAMPLE_OFFSETS] - 1,
              (long long)s->n_tokens);
    goto fail;
  }
  if (len[DS_LABELS] != s->n_tokens || len[DS_ID_OFFSETS] != n + 1 ||
      len[DS_MEDIA_OFFSETS] != n + 1 || len[DS_MEDIA_POS] != m || len[DS_MEDIA_ITEM] != m ||
      len[DS_PATH_OFFSETS] != m + 1 || !offsets_ok(I64(s, DS_SAMPLE_OFFSETS), n + 1, s->n_tokens) ||
      !offsets_ok(I64(s, DS_ID_OFFSETS), n + 1, len[DS_IDS]) ||
      !offsets_ok(I64(s, DS_MEDIA_OFFSETS), n + 1, m) ||
      !offsets_ok(I64(s, DS_PATH_OFFSETS), m + 1, len[DS_PATHS]) ||
      len[DS_CODEC_OFFSETS] != n + 1 || !offsets_ok(I64(s, DS_CODEC_OFFSETS), n + 1, s->n_codec) ||
      len[DS_TILE_OFFSETS] != m + 1 || s->tile_size < 0 || s->tile_size > 8192 ||
      !offsets_ok(I64(s, DS_TILE_OFFSETS), m + 1,
                  s->tile_size ? len[DS_TILES] / ((int64_t)s->tile_size * s->tile_size * 3) : 0) ||
      (s->tile_size && len[DS_TILES] % ((int64_t)s->tile_size * s->tile_size * 3)) ||
      (!s->tile_size && len[DS_TILES]) || !audio_ok(s, len)) {
    vt_seterr(err, err_len, "shard %s: dataset sizes or offsets are inconsistent (corrupt)", path);
    goto fail;
  }
  /* every medium: a known kind, an item >= 0, a position inside its sample */
  const int32_t *kind = (const int32_t *)s->small[DS_MEDIA_KIND].p;
  const int32_t *item = (const int32_t *)s->small[DS_MEDIA_ITEM].p;
  for (int64_t i = 0; i < n; i++) {
    int64_t sl = shard_sample_len(s, i);
    for (int64_t j = I64(s, DS_MEDIA_OFFSETS)[i]; j < I64(s, DS_MEDIA_OFFSETS)[i + 1]; j++) {
      int64_t pos = I64(s, DS_MEDIA_POS)[j];
      if (kind[j] < 0 || kind[j] > CHAT_MEDIA_AUDIO || item[j] < 0 || pos < 0 || pos >= sl) {
        vt_seterr(err, err_len,
                  "shard %s: sample %lld: medium %lld has kind %d, item %d, position %lld "
                  "(the sample has %lld tokens): corrupt",
                  path, (long long)i, (long long)j, kind[j], item[j], (long long)pos,
                  (long long)sl);
        goto fail;
      }
    }
  }
  if (verify) {
    uLong crc = crc32(0L, Z_NULL, 0);
    const int64_t chunk = 1 << 20;
    int32_t *buf = malloc((size_t)chunk * sizeof *buf);
    for (int d = 0; d < DS_COUNT && buf; d++) {
      if (ds_big(d)) {
        hid_t ds = d == DS_TOKENS         ? s->tokens
                   : d == DS_LABELS       ? s->labels
                   : d == DS_CODEC_TOKENS ? s->codec
                   : d == DS_TILES        ? s->tiles
                   : d == DS_FBANK        ? s->fbank
                                          : s->wave;
        int64_t el = (int64_t)ds_elem[d], per = chunk * 4 / el; /* elements a chunk */
        for (int64_t off = 0; off < len[d]; off += per) {
          int64_t k = len[d] - off < per ? len[d] - off : per;
          if (read_range(ds, ds_mem_type(d), off, k, buf)) {
            free(buf);
            vt_seterr(err, err_len, "shard %s: cannot read %s (truncated or corrupt)", path,
                      ds_name[d]);
            goto fail;
          }
          crc = crc32(crc, (const Bytef *)buf, (uInt)(k * el));
        }
      } else if (s->small[d].n) {
        crc = crc32(crc, (const Bytef *)s->small[d].p, (uInt)s->small[d].n);
      }
    }
    free(buf);
    if ((uint32_t)crc != sum) {
      vt_seterr(err, err_len, "shard %s: checksum mismatch (stored %08x, computed %08x): corrupt",
                path, sum, (uint32_t)crc);
      goto fail;
    }
  }
  *out = s;
  return 0;
fail:
  shard_close(s);
  return -1;
}

void shard_sample_free(shard_sample *s) {
  free(s->id);
  tok_ids_free(&s->ids);
  tok_ids_free(&s->labels);
  tok_ids_free(&s->codec);
  free(s->n_tiles);
  free(s->tiles);
  free(s->fbank_frames);
  free(s->fbank);
  free(s->wave_len);
  free(s->wave);
  for (size_t i = 0; i < s->n_media; i++) free(s->media_path[i]);
  free(s->media_path);
  free(s->media);
  memset(s, 0, sizeof *s);
}

static char *substr(const vec *bytes, const int64_t *off, int64_t i) {
  size_t a = (size_t)off[i], b = (size_t)off[i + 1];
  char *r = malloc(b - a + 1);
  if (r) {
    memcpy(r, bytes->p + a, b - a);
    r[b - a] = 0;
  }
  return r;
}

static int grow_ids(tok_ids *a, size_t n) {
  if (n > a->cap) {
    int32_t *v = realloc(a->v, n * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = n;
  }
  a->n = n;
  return 0;
}

/* Grows *p to hold n elements of size bytes (n may be 0). */
static int grow(void **p, size_t *cap, size_t n, size_t size) {
  if (n <= *cap) return 0;
  void *q = realloc(*p, n * size);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

/* The stored fbank and waveforms of sample i's audio clips. */
static int read_audio(shard *s, int64_t i, shard_sample *out, char *err, size_t err_len) {
  const int64_t *ao = I64(s, DS_AUDIO_OFFSETS), *fo = I64(s, DS_FBANK_OFFSETS);
  const int64_t *wo = I64(s, DS_WAVE_OFFSETS);
  int64_t a0 = ao[i], na = ao[i + 1] - a0;
  int64_t f0 = fo[a0], nf = fo[a0 + na] - f0, w0 = wo[a0], nw = wo[a0 + na] - w0;
  size_t bins = (size_t)s->fbank_bins;
  out->n_audio = (size_t)na;
  out->fbank_bins = s->fbank_bins;
  out->wave_rate = s->wave_rate;
  if (grow((void **)&out->fbank_frames, &out->cap_audio, (size_t)na, sizeof(int64_t)) ||
      grow((void **)&out->wave_len, &out->cap_wave_len, (size_t)na, sizeof(int64_t)) ||
      grow((void **)&out->fbank, &out->cap_fbank, (size_t)nf * bins, sizeof(uint16_t)) ||
      grow((void **)&out->wave, &out->cap_wave, (size_t)nw, sizeof(int16_t))) {
    vt_seterr(err, err_len, "out of memory for the audio of sample %lld", (long long)i);
    return -1;
  }
  for (int64_t k = 0; k < na; k++) {
    out->fbank_frames[k] = fo[a0 + k + 1] - fo[a0 + k];
    out->wave_len[k] = wo[a0 + k + 1] - wo[a0 + k];
  }
  if ((nf && read_range(s->fbank, H5T_NATIVE_UINT16, f0 * (int64_t)bins, nf * (int64_t)bins,
                        out->fbank)) ||
      (nw && read_range(s->wave, H5T_NATIVE_INT16, w0, nw, out->wave))) {
    vt_seterr(err, err_len, "shard %s: cannot read the audio of sample %lld", s->path,
              (long long)i);
    return -1;
  }
  return 0;
}

int shard_read_sample(shard *s, int64_t i, shard_sample *out, char *err, size_t err_len) {
  if (i < 0 || i >= s->n_samples) {
    vt_seterr(err, err_len, "shard %s: sample %lld out of range (%lld samples)", s->path,
              (long long)i, (long long)s->n_samples);
    return -1;
  }
  int64_t a = I64(s, DS_SAMPLE_OFFSETS)[i], n = shard_sample_len(s, i);
  for (size_t k = 0; k < out->n_media; k++) free(out->media_path[k]);
  out->n_media = 0;
  free(out->id);
  out->id = substr(&s->small[DS_IDS], I64(s, DS_ID_OFFSETS), i);
  if (!out->id || grow_ids(&out->ids, (size_t)n) || grow_ids(&out->labels, (size_t)n)) {
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  if (read_range(s->tokens, H5T_NATIVE_INT32, a, n, out->ids.v) ||
      read_range(s->labels, H5T_NATIVE_INT32, a, n, out->labels.v)) {
    vt_seterr(err, err_len, "shard %s: cannot read sample %lld (corrupt?)", s->path, (long long)i);
    return -1;
  }
  int64_t m0 = I64(s, DS_MEDIA_OFFSETS)[i], m1 = I64(s, DS_MEDIA_OFFSETS)[i + 1];
  size_t m = (size_t)(m1 - m0);
  if (m > out->cap_media) {
    chat_media *cm = realloc(out->media, m * sizeof *cm);
    char **mp = cm ? realloc(out->media_path, m * sizeof *mp) : NULL;
    if (cm) out->media = cm;
    if (mp) out->media_path = mp;
    int32_t *nt = mp ? realloc(out->n_tiles, m * sizeof *nt) : NULL;
    if (!cm || !mp || !nt) {
      vt_seterr(err, err_len, "out of memory");
      return -1;
    }
    out->n_tiles = nt;
    out->cap_media = m;
  }
  const int32_t *kind = (const int32_t *)s->small[DS_MEDIA_KIND].p;
  const int32_t *item = (const int32_t *)s->small[DS_MEDIA_ITEM].p;
  for (size_t k = 0; k < m; k++) {
    int64_t j = m0 + (int64_t)k;
    out->media[k] = (chat_media){I64(s, DS_MEDIA_POS)[j], kind[j], item[j]};
    out->media_path[k] = substr(&s->small[DS_PATHS], I64(s, DS_PATH_OFFSETS), j);
    out->n_tiles[k] = (int32_t)(I64(s, DS_TILE_OFFSETS)[j + 1] - I64(s, DS_TILE_OFFSETS)[j]);
    out->n_media = k + 1;
  }
  int64_t c0 = I64(s, DS_CODEC_OFFSETS)[i], nc = I64(s, DS_CODEC_OFFSETS)[i + 1] - c0;
  if (grow_ids(&out->codec, (size_t)nc) ||
      (nc && read_range(s->codec, H5T_NATIVE_INT32, c0, nc, out->codec.v))) {
    vt_seterr(err, err_len, "shard %s: cannot read the codec tokens of sample %lld", s->path,
              (long long)i);
    return -1;
  }
  /* the sample's tiles: one hyperslab, as uint8 */
  out->tile_size = s->tile_size;
  size_t tb = (size_t)s->tile_size * (size_t)s->tile_size * 3;
  int64_t t0 = I64(s, DS_TILE_OFFSETS)[m0], t1 = I64(s, DS_TILE_OFFSETS)[m1];
  out->n_tiles_total = t1 - t0;
  size_t bytes = (size_t)(t1 - t0) * tb;
  if (bytes > out->tiles_cap) {
    uint8_t *t = realloc(out->tiles, bytes);
    if (!t) {
      vt_seterr(err, err_len, "out of memory for %lld tiles", (long long)(t1 - t0));
      return -1;
    }
    out->tiles = t;
    out->tiles_cap = bytes;
  }
  if (bytes &&
      read_range(s->tiles, H5T_NATIVE_UINT8, t0 * (int64_t)tb, (int64_t)bytes, out->tiles)) {
    vt_seterr(err, err_len, "shard %s: cannot read the tiles of sample %lld (corrupt?)", s->path,
              (long long)i);
    return -1;
  }
  return read_audio(s, i, out, err, err_len);
}
