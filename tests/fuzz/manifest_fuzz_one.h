/* One fuzz input through the checkpoint manifest parser (checkpoints/ckpt.h): refused with a
 * message naming a line, or accepted with a step >= 0, at least one file, plain unique names.
 * Shared by the libFuzzer target and the corpus replay; returns 0 when it behaved. */
#ifndef VT_MANIFEST_FUZZ_ONE_H
#define VT_MANIFEST_FUZZ_ONE_H

#include <stdint.h>
#include <string.h>

#include "checkpoints/ckpt.h"

static inline int manifest_fuzz_one(const uint8_t *data, size_t size) {
  ckpt_manifest m;
  char err[512] = "";
  if (ckpt_manifest_parse((const char *)data, size, "fuzz/COMPLETE", &m, err, sizeof err)) {
    ckpt_manifest_free(&m);
    return err[0] ? 0 : 1;
  }
  int bad = m.step < 0 || m.n_files == 0;
  for (size_t i = 0; i < m.n_files; i++) {
    const char *n = m.files[i].name;
    if (!n[0] || strchr(n, '/') || strchr(n, ' ') || !strcmp(n, "..") || !strcmp(n, "COMPLETE"))
      bad = 1;
    if (i && strcmp(m.files[i - 1].name, n) >= 0) bad = 1; /* sorted and unique */
  }
  ckpt_manifest_free(&m);
  return bad;
}

#endif
