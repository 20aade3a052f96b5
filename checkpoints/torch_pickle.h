/* The unpickler behind torch_pt.h (internal to checkpoints/): runs torch.save's data.pkl with
 * the opcodes, the dicts, lists, tuples and scalars it holds and only the allow-listed globals,
 * looks every persistent_load storage up in the archive (present, long enough for its element
 * count) and every tensor record up in its storage (size, stride, offset inside it), and names
 * the tensors by their dict paths. Nothing in the pickle is ever called. */
#ifndef VT_TORCH_PICKLE_H
#define VT_TORCH_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoints/torch_pt.h"

/* Reads the pickle p (pl bytes; where names it in errors) into f's storages, tensors and
 * sd_prefix (f->zip and f->prefix set). Returns 0, or -1 with err naming where and the byte. */
int torch_pickle_load(torch_pt_file *f, const unsigned char *p, size_t pl, const char *where,
                      char *err, size_t err_len);

/* n little-endian bytes at p as a number. */
static inline uint64_t torch_pt_le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

#endif
