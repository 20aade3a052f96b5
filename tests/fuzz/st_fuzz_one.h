/* One fuzz input through the safetensors parser: open it from memory, and when accepted look
 * up and read every tensor. Shared by the libFuzzer target and the corpus replay test; returns
 * 0 when the input behaved (refused with a message, or accepted with every tensor in bounds). */
#ifndef VT_ST_FUZZ_ONE_H
#define VT_ST_FUZZ_ONE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"

static int st_fuzz_one(const uint8_t *data, size_t size) {
  st_file f;
  char err[512] = "";
  if (st_file_open_mem(&f, data, size, "fuzz", err, sizeof err)) return err[0] ? 0 : 1;
  int bad = 0;
  const unsigned char *lo = data, *hi = data + size;
  for (int i = 0; i < f.n; i++) {
    const st_tensor *t = &f.tensors[i];
    const unsigned char *p = (const unsigned char *)t->data;
    if (t->begin > t->end || t->end > f.data_len || p < lo || p + t->nbytes > hi) bad = 1;
    if (st_find(&f, t->name) != t) bad = 1;
    vt_dtype to = (t->dtype == VT_I32 || t->dtype == VT_I64) ? VT_I64 : VT_F32;
    size_t nb = (size_t)t->numel * vt_dtype_size(to);
    if (nb > (64u << 20)) continue;
    void *buf = malloc(nb ? nb : 1);
    if (!buf) continue;
    char e[256];
    if (st_tensor_read(t, to, buf, nb, e, sizeof e)) bad = 1; /* widening never fails */
    (void)st_tensor_data(t, t->dtype);
    /* narrowing may refuse (i64 out of i32 range) but must not misbehave */
    vt_dtype narrow = to == VT_I64 ? VT_I32 : VT_BF16;
    (void)st_tensor_read(t, narrow, buf, (size_t)t->numel * vt_dtype_size(narrow), e, sizeof e);
    free(buf);
  }
  for (int i = 0; i < f.n_meta; i++)
    if (st_metadata(&f, f.meta[2 * i]) == NULL) bad = 1;
  st_file_close(&f);
  return bad;
}

#endif
