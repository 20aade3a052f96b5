/* dtype sizes and names. */
#include "autograd/dtype.h"

static const char *const names[VT_DTYPE_COUNT] = {"f32", "bf16", "f16", "i32", "i64"};
static const size_t sizes[VT_DTYPE_COUNT] = {4, 2, 2, 4, 8};

size_t vt_dtype_size(vt_dtype t) { return (unsigned)t < VT_DTYPE_COUNT ? sizes[t] : 0; }

const char *vt_dtype_name(vt_dtype t) { return (unsigned)t < VT_DTYPE_COUNT ? names[t] : "?"; }

int vt_dtype_from_name(const char *name) {
  for (int i = 0; i < VT_DTYPE_COUNT; i++)
    if (strcmp(names[i], name) == 0) return i;
  return -1;
}
