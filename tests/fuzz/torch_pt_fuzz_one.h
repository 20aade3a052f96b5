/* One fuzz input through the torch.save reader (checkpoints/torch_pt.h). The input is a pickle:
 * it is wrapped with libzip into an archive "fz/data.pkl" beside 32 storages fz/data/0..31 of
 * 256 bytes each (so what is fuzzed is our unpickler, not the zip CRCs that stop most flips of
 * a whole archive), then opened. It must be refused with a message naming the archive, or
 * accepted with every tensor named, unique, inside its storage and readable as its kind.
 * Shared by the libFuzzer target, the corpus replay and test_torch_pt; returns 0 when it
 * behaved. */
#ifndef VT_TORCH_PT_FUZZ_ONE_H
#define VT_TORCH_PT_FUZZ_ONE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "checkpoints/torch_pt.h"

#define TP_FUZZ_STORAGES 32
#define TP_FUZZ_STORAGE_BYTES 256

/* A stored (uncompressed) zip of the n named buffers, in memory; NULL on failure. */
static inline unsigned char *tp_fuzz_zip(const char *const *names, const void *const *bufs,
                                         const size_t *lens, int n, size_t *out_len) {
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
  zip_t *z = NULL;
  unsigned char *out = NULL;
  if (src) zip_source_keep(src);
  if (src) z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
  bool ok = z != NULL;
  for (int i = 0; ok && i < n; i++) {
    zip_source_t *s = zip_source_buffer(z, lens[i] ? bufs[i] : "", lens[i], 0);
    zip_int64_t idx = s ? zip_file_add(z, names[i], s, ZIP_FL_OVERWRITE) : -1;
    if (idx < 0 && s) zip_source_free(s);
    ok = idx >= 0 && !zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
  }
  if (z && (ok ? zip_close(z) : (zip_discard(z), -1))) ok = false;
  zip_stat_t st;
  if (ok && !zip_source_open(src)) {
    if (!zip_source_stat(src, &st) && (out = malloc(st.size ? st.size : 1)) &&
        zip_source_read(src, out, st.size) != (zip_int64_t)st.size) {
      free(out);
      out = NULL;
    }
    zip_source_close(src);
    if (out) *out_len = st.size;
  }
  if (src) zip_source_free(src);
  zip_error_fini(&ze);
  return out;
}

/* The invariants of an opened file; 0 when they hold. must_read: the storages are intact, so
 * every tensor reads (else a read may be refused, with a message naming the file). */
static inline int torch_pt_fuzz_check(torch_pt_file *f, bool must_read) {
  for (int i = 0; i < f->n; i++) {
    const torch_pt_tensor *t = &f->tensors[i];
    if (!t->name[0] || torch_pt_find(f, t->name) != t || t->storage < 0 ||
        t->storage >= f->n_storages || t->numel < 0)
      return 1;
    /* a view may repeat elements (stride 0) but never reaches past its storage */
    int64_t last = t->offset;
    for (int d = 0; d < t->ndim; d++)
      if (t->shape[d] > 0) last += (t->shape[d] - 1) * t->stride[d];
    if (t->numel > 0 && (t->offset < 0 || last >= f->storages[t->storage].numel)) return 1;
    torch_pt_dtype dt = f->storages[t->storage].dtype;
    bool fl = torch_pt_is_float(dt);
    if (t->numel > (1 << 20)) continue; /* a large broadcast view: its bounds were checked */
    void *buf = malloc((size_t)(t->numel ? t->numel : 1) * 8);
    char err[512] = "";
    int rc = buf ? torch_pt_read(f, t, fl ? VT_F32 : VT_I64, buf, err, sizeof err) : 0;
    free(buf);
    if (rc && (must_read || !strstr(err, f->path))) return 1;
  }
  return 0;
}

static inline int torch_pt_fuzz_one(const uint8_t *data, size_t size) {
  static unsigned char storage[TP_FUZZ_STORAGE_BYTES];
  static char names[TP_FUZZ_STORAGES + 2][32];
  const char *np[TP_FUZZ_STORAGES + 2];
  const void *bp[TP_FUZZ_STORAGES + 2];
  size_t lp[TP_FUZZ_STORAGES + 2];
  for (int i = 0; i < TP_FUZZ_STORAGE_BYTES; i++) storage[i] = (unsigned char)(i * 37 + 11);
  snprintf(names[0], sizeof names[0], "fz/data.pkl");
  snprintf(names[1], sizeof names[1], "fz/byteorder");
  np[0] = names[0], bp[0] = data, lp[0] = size;
  np[1] = names[1], bp[1] = "little", lp[1] = 6;
  for (int i = 0; i < TP_FUZZ_STORAGES; i++) {
    snprintf(names[i + 2], sizeof names[0], "fz/data/%d", i);
    np[i + 2] = names[i + 2], bp[i + 2] = storage, lp[i + 2] = sizeof storage;
  }
  size_t len = 0;
  unsigned char *zipbuf = tp_fuzz_zip(np, bp, lp, TP_FUZZ_STORAGES + 2, &len);
  if (!zipbuf) return 0; /* the harness could not build an archive: nothing was tested */
  torch_pt_file f;
  char err[1024] = "";
  int bad;
  if (torch_pt_open_mem(&f, zipbuf, len, "fuzz.pt", err, sizeof err))
    bad = !strstr(err, "fuzz.pt");
  else {
    bad = torch_pt_fuzz_check(&f, true);
    torch_pt_close(&f);
  }
  free(zipbuf);
  return bad;
}

#endif
