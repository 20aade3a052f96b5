/* Named parameters in flat per-dtype buffers; see params.h. */
#include "autograd/params.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/ctx_impl.h"

int vt_params_init(vt_params *ps, vt_device device) {
  memset(ps, 0, sizeof *ps);
  ps->device = device;
  ps->be = device.type == VT_DEV_CPU ? vt_backend_cpu() : vt_backend_cuda(device.index, NULL);
  return ps->be ? 0 : -1;
}

void vt_params_free(vt_params *ps) {
  for (int i = 0; i < ps->n; i++) {
    free(ps->items[i]->name);
    free(ps->items[i]);
  }
  free(ps->items);
  if (ps->be) {
    for (int d = 0; d < VT_DTYPE_COUNT; d++)
      if (ps->data[d]) ps->be->free(ps->data[d]);
    if (ps->grad) ps->be->free(ps->grad);
  }
  memset(ps, 0, sizeof *ps);
}

vt_param *vt_params_find(const vt_params *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (strcmp(ps->items[i]->name, name) == 0) return ps->items[i];
  return NULL;
}

vt_tensor *vt_params_add(vt_params *ps, const char *name, vt_dtype dtype, int ndim,
                         const int64_t *shape, char *err, size_t err_len) {
  if (ps->allocated) {
    snprintf(err, err_len, "parameter %s: added after the store was allocated", name);
    return NULL;
  }
  if (vt_params_find(ps, name)) {
    snprintf(err, err_len, "parameter %s: registered twice", name);
    return NULL;
  }
  if (ndim < 1 || ndim > VT_MAX_DIMS || (unsigned)dtype >= VT_DTYPE_COUNT) {
    snprintf(err, err_len, "parameter %s: invalid dtype or %d dims", name, ndim);
    return NULL;
  }
  for (int d = 0; d < ndim; d++)
    if (shape[d] <= 0) {
      snprintf(err, err_len, "parameter %s: size %lld in dim %d", name, (long long)shape[d], d);
      return NULL;
    }
  if (ps->n == ps->cap) {
    int cap = ps->cap ? ps->cap * 2 : 64;
    vt_param **items = realloc(ps->items, sizeof *items * (size_t)cap);
    if (!items) goto oom;
    ps->items = items;
    ps->cap = cap;
  }
  vt_param *p = calloc(1, sizeof *p);
  if (!p || !(p->name = strdup(name))) {
    free(p);
    goto oom;
  }
  p->t.dtype = dtype;
  p->t.ndim = ndim;
  memcpy(p->t.shape, shape, sizeof(int64_t) * (size_t)ndim);
  p->t.device = ps->device;
  p->t.is_param = true;
  p->t.name = p->name;
  p->offset = ps->numel[dtype];
  p->trainable = dtype == VT_F32;
  /* keep every parameter 64-byte aligned inside its buffer */
  size_t es = vt_dtype_size(dtype), align = 64 / es;
  size_t n = (size_t)vt_numel(&p->t);
  ps->numel[dtype] += (n + align - 1) / align * align;
  ps->items[ps->n++] = p;
  return &p->t;
oom:
  snprintf(err, err_len, "parameter %s: out of host memory", name);
  return NULL;
}

int vt_params_alloc(vt_params *ps, char *err, size_t err_len) {
  for (int d = 0; d < VT_DTYPE_COUNT; d++) {
    if (!ps->numel[d]) continue;
    size_t bytes = ps->numel[d] * vt_dtype_size((vt_dtype)d);
    ps->data[d] = ps->be->alloc(bytes);
    if (!ps->data[d]) {
      snprintf(err, err_len, "out of %s memory allocating %zu bytes of %s parameters", ps->be->name,
               bytes, vt_dtype_name((vt_dtype)d));
      return -1;
    }
    ps->be->fill(ps->data[d], (int64_t)((bytes + 3) / 4), 0.0f);
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    p->t.data = (char *)ps->data[p->t.dtype] + p->offset * vt_dtype_size(p->t.dtype);
  }
  ps->allocated = true;
  return vt_params_alloc_grads(ps, err, err_len);
}

int vt_params_set_trainable(vt_params *ps, const char *glob, bool trainable) {
  int matched = 0;
  for (int i = 0; i < ps->n; i++)
    if (fnmatch(glob, ps->items[i]->name, 0) == 0) {
      ps->items[i]->trainable = trainable && ps->items[i]->t.dtype == VT_F32;
      matched++;
    }
  return matched;
}

int vt_params_alloc_grads(vt_params *ps, char *err, size_t err_len) {
  if (ps->grad) ps->be->free(ps->grad);
  ps->grad = NULL;
  size_t total = 0;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (!p->trainable) continue;
    p->grad_offset = total;
    total += ((size_t)vt_numel(&p->t) + 15) / 16 * 16;
  }
  ps->grad_numel = total;
  if (total) {
    ps->grad = ps->be->alloc(total * sizeof(float));
    if (!ps->grad) {
      snprintf(err, err_len, "out of %s memory allocating %zu gradient values", ps->be->name,
               total);
      return -1;
    }
    ps->be->fill(ps->grad, (int64_t)total, 0.0f);
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    p->t.grad = p->trainable ? ps->grad + p->grad_offset : NULL;
    p->t.requires_grad = p->trainable;
  }
  return 0;
}

void vt_params_zero_grad(vt_params *ps) {
  if (ps->grad) ps->be->fill(ps->grad, (int64_t)ps->grad_numel, 0.0f);
}

size_t vt_params_count(const vt_params *ps, bool trainable_only) {
  size_t n = 0;
  for (int i = 0; i < ps->n; i++)
    if (!trainable_only || ps->items[i]->trainable) n += (size_t)vt_numel(&ps->items[i]->t);
  return n;
}

vt_tensor *vt_params_concat_view(vt_ctx *ctx, vt_tensor *const *ts, int n) {
  if (ctx->failed || n < 1) return NULL;
  const vt_tensor *a = ts[0];
  int64_t rows = 0;
  for (int i = 0; i < n; i++) {
    const vt_tensor *t = ts[i];
    if (!t || !t->is_param || t->dtype != a->dtype || t->ndim != a->ndim ||
        t->requires_grad != a->requires_grad || !t->grad != !a->grad ||
        t->device.type != a->device.type || t->device.index != a->device.index)
      return NULL;
    for (int d = 1; d < a->ndim; d++)
      if (t->shape[d] != a->shape[d]) return NULL;
    if (i > 0) {
      const vt_tensor *p = ts[i - 1];
      if ((char *)t->data != (char *)p->data + vt_nbytes(p)) return NULL;
      if (a->grad && t->grad != p->grad + vt_numel(p)) return NULL;
    }
    rows += t->shape[0];
  }
  vt_tensor *v = vt_arena_meta(ctx, "params_concat_view", sizeof *v);
  if (!v) return NULL;
  *v = *a;
  v->shape[0] = rows;
  v->name = NULL;
  return v;
}
