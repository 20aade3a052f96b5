/* Shape helpers for vt_tensor. */
#include "autograd/tensor.h"
#include "autograd/checked.h"

#include <stdio.h>

int64_t vt_shape_numel(int ndim, const int64_t *shape) {
  int64_t n;
  return vt_prod_i64_overflows(shape, ndim, &n) ? -1 : n; /* checked: sizes may come from files */
}

int64_t vt_numel(const vt_tensor *t) { return vt_shape_numel(t->ndim, t->shape); }

size_t vt_nbytes(const vt_tensor *t) { return (size_t)vt_numel(t) * vt_dtype_size(t->dtype); }

bool vt_same_shape(const vt_tensor *a, const vt_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

char *vt_shape_str(const vt_tensor *t, char *buf, size_t len) {
  size_t n = 0;
  n += (size_t)snprintf(buf + n, len - n, "[");
  for (int i = 0; i < t->ndim && n < len; i++)
    n += (size_t)snprintf(buf + n, len - n, i ? ", %lld" : "%lld", (long long)t->shape[i]);
  if (n < len) snprintf(buf + n, len - n, "] %s", vt_dtype_name(t->dtype));
  return buf;
}
