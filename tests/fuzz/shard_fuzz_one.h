/* One fuzz input through the shard reader, structure-aware: the bytes do not become the HDF5
 * file (libhdf5's own parser is not what is tested) but describe one, written with the HDF5
 * API: each root attribute with a type, shape and value, and each dataset with a type, a
 * length (possibly one the file does not hold) and contents. shard_open must refuse it with a
 * message or accept it with every sample readable and in bounds. Shared by the libFuzzer
 * target and the corpus replay; returns 0 when it behaved. */
#ifndef VT_SHARD_FUZZ_ONE_H
#define VT_SHARD_FUZZ_ONE_H

#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/shard.h"

typedef struct {
  const uint8_t *p;
  size_t n;
} shard_fz_in;

static inline uint64_t shard_fz_take(shard_fz_in *in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v |= (uint64_t)(in->n ? *in->p : 0) << (8 * i);
    if (in->n) in->p++, in->n--;
  }
  return v;
}

/* Type byte: 0 i32, 1 i64, 2 u8, 3 u32, 4 f64, 5 fixed string of 8 bytes. */
static inline hid_t shard_fz_type(int t) {
  static const hid_t *const types[4] = {&H5T_STD_I32LE_g, &H5T_STD_I64LE_g, &H5T_STD_U8LE_g,
                                        &H5T_STD_U32LE_g};
  if (t < 4) return H5Tcopy(*types[t]);
  if (t == 4) return H5Tcopy(H5T_IEEE_F64LE);
  hid_t s = H5Tcopy(H5T_C_S1);
  H5Tset_size(s, 8);
  return s;
}

/* Writes the shard the input describes; returns 0 when the file was written. */
static inline int shard_fz_write(shard_fz_in *in, const char *path) {
  static const char *const attrs[5] = {"format_version", "n_samples", "n_tokens", "checksum",
                                       "tile_size"};
  static const char *const dsets[15] = {"tokens",         "labels",
                                        "sample_offsets", "sample_id_offsets",
                                        "sample_ids",     "media_offsets",
                                        "media_kind",     "media_pos",
                                        "media_item",     "media_path_offsets",
                                        "media_paths",    "codec_offsets",
                                        "codec_tokens",   "media_tile_offsets",
                                        "tiles"};
  static const int ds_type[15] = {0, 0, 1, 1, 2, 1, 0, 1, 0, 1, 2, 1, 0, 1, 2};
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_V18);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  if (f < 0) return -1;
  for (int a = 0; a < 5; a++) {
    int flags = (int)shard_fz_take(in, 1);
    if (flags & 0x80) continue; /* attribute missing */
    hid_t ty = shard_fz_type((flags & 0x7) % 6);
    hsize_t dims[1] = {(hsize_t)((flags >> 4) & 0x3) + 1};
    hid_t sp = (flags & 0x8) ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_SCALAR);
    uint8_t val[32] = {0};
    for (int i = 0; i < 32; i++) val[i] = (uint8_t)shard_fz_take(in, 1);
    hid_t at = H5Acreate2(f, attrs[a], ty, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (at >= 0) {
      H5Awrite(at, ty, val);
      H5Aclose(at);
    }
    H5Sclose(sp);
    H5Tclose(ty);
  }
  for (int d = 0; d < 15; d++) {
    int flags = (int)shard_fz_take(in, 1);
    if (flags == 0xff) continue; /* dataset missing */
    int t = (flags & 0x40) ? (flags & 0x7) % 6 : ds_type[d];
    hid_t ty = shard_fz_type(t);
    size_t elem = H5Tget_size(ty);
    uint64_t n = shard_fz_take(in, 1);
    if (flags & 0x20) n = (uint64_t)1 << (20 + (n & 0x1f)); /* declared, never written */
    hsize_t dims[2] = {(hsize_t)n, 2};
    hid_t sp = H5Screate_simple((flags & 0x10) ? 2 : 1, dims, NULL);
    hid_t ds = H5Dcreate2(f, dsets[d], ty, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (ds >= 0 && !(flags & 0x20) && n) {
      size_t bytes = (size_t)n * elem * ((flags & 0x10) ? 2 : 1);
      uint8_t *buf = calloc(bytes, 1);
      for (size_t i = 0; buf && i < bytes; i++) {
        /* offsets count up from 0 unless the input says otherwise, so that deep paths are
         * reached: each element is the previous plus a small step */
        if (!(flags & 0x8) && t == 1 && elem == 8 && i % 8 == 0 && i >= 8) {
          int64_t prev;
          memcpy(&prev, buf + i - 8, 8);
          int64_t next = prev + (int64_t)(shard_fz_take(in, 1) & 0x7);
          memcpy(buf + i, &next, 8);
          i += 7;
        } else if (!(flags & 0x8) && t == 1 && elem == 8 && i < 8) {
          i += 7; /* the first offset is 0 */
        } else {
          buf[i] = (uint8_t)shard_fz_take(in, 1);
        }
      }
      if (buf) H5Dwrite(ds, ty, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      free(buf);
    }
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(sp);
    H5Tclose(ty);
  }
  return H5Fclose(f) < 0 ? -1 : 0;
}

static inline int shard_fuzz_one(const uint8_t *data, size_t size) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  char path[64];
  snprintf(path, sizeof path, "/tmp/vt_fuzz_shard_%d.h5", (int)getpid());
  shard_fz_in in = {data, size};
  if (shard_fz_write(&in, path)) {
    unlink(path);
    return 0;
  }
  int bad = 0;
  char err[1024] = "";
  for (int verify = 0; verify < 2; verify++) {
    shard *s;
    err[0] = 0;
    if (shard_open(&s, path, verify, err, sizeof err)) {
      if (!err[0]) bad = 1;
      continue;
    }
    int64_t total = 0;
    shard_sample out = {0};
    for (int64_t i = 0; i < shard_n_samples(s) && i < 4096; i++) {
      int64_t n = shard_sample_len(s, i);
      if (n < 0 || n > shard_n_tokens(s)) bad = 1;
      total += n;
      if (shard_read_sample(s, i, &out, err, sizeof err)) continue; /* refused is fine */
      if ((int64_t)out.ids.n != n || (int64_t)out.labels.n != n || !out.id) bad = 1;
      for (size_t k = 0; k < out.n_media; k++)
        if (out.media[k].kind < 0 || out.media[k].kind > 2 || out.media[k].pos < 0 ||
            out.media[k].pos >= n || !out.media_path[k])
          bad = 1;
    }
    if (shard_n_samples(s) <= 4096 && total != shard_n_tokens(s)) bad = 1;
    shard_sample_free(&out);
    shard_close(s);
  }
  unlink(path);
  return bad;
}

#endif
