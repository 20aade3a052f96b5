/* Named parameters in flat per-dtype buffers; see params.h. */
#define _DEFAULT_SOURCE /* mincore */
#include "autograd/params.h"
#include "autograd/checked.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "autograd/ctx_impl.h"
#include "autograd/kernels_optim.h"

int vt_params_init(vt_params *ps, vt_device device) {
  memset(ps, 0, sizeof *ps);
  ps->device = device;
  ps->be = vt_backend_for(device, NULL);
  ps->owns_be = ps->be && ps->be != vt_backend_cpu();
  return ps->be ? 0 : -1;
}

void vt_params_init_backend(vt_params *ps, const vt_backend *be) {
  memset(ps, 0, sizeof *ps);
  ps->device = be->device;
  ps->be = be;
}

void vt_params_free(vt_params *ps) {
  for (int i = 0; i < ps->n; i++) {
    free(ps->items[i]->name);
    free(ps->items[i]);
  }
  free(ps->items);
  free(ps->index);
  free(ps->reads);
  free(ps->keep_lo);
  free(ps->keep_hi);
  free(ps->spans);
  if (ps->be) {
    for (int d = 0; d < VT_DTYPE_COUNT; d++)
      if (ps->data[d]) ps->be->free(ps->be, ps->data[d]);
    if (ps->grad) ps->be->free(ps->be, ps->grad);
    if (ps->lowp) ps->be->free(ps->be, ps->lowp);
    if (ps->owns_be) vt_backend_free(ps->be);
  }
  memset(ps, 0, sizeof *ps);
}

static size_t name_hash(const char *s) { /* FNV-1a */
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return (size_t)h;
}

/* Rebuilds the name index with room for twice the items (a registration with 100,000 names
 * must not compare each new name with every earlier one). Returns 0 or -1 out of memory. */
static int index_grow(vt_params *ps, size_t want) {
  size_t cap = 64;
  while (cap < want * 2) cap *= 2;
  int *ix = malloc(cap * sizeof *ix);
  if (!ix) return -1;
  for (size_t i = 0; i < cap; i++) ix[i] = -1;
  for (int i = 0; i < ps->n; i++) {
    size_t j = name_hash(ps->items[i]->name) & (cap - 1);
    while (ix[j] >= 0) j = (j + 1) & (cap - 1);
    ix[j] = i;
  }
  free(ps->index);
  ps->index = ix;
  ps->index_cap = cap;
  return 0;
}

int vt_params_index(const vt_params *ps, const char *name) {
  if (!ps->index) return -1;
  for (size_t j = name_hash(name) & (ps->index_cap - 1); ps->index[j] >= 0;
       j = (j + 1) & (ps->index_cap - 1))
    if (strcmp(ps->items[ps->index[j]]->name, name) == 0) return ps->index[j];
  return -1;
}

vt_param *vt_params_find(const vt_params *ps, const char *name) {
  int i = vt_params_index(ps, name);
  return i < 0 ? NULL : ps->items[i];
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
  /* the element count, its padded total in the store and the store's bytes all fit */
  int64_t numel;
  size_t es = vt_dtype_size(dtype), align = 64 / es, padded, total, bytes;
  if (vt_prod_i64_overflows(shape, ndim, &numel) ||
      vt_add_size_overflows((size_t)numel, align - 1, &padded) ||
      vt_add_size_overflows(ps->numel[dtype], padded / align * align, &total) ||
      vt_mul_size_overflows(total, es, &bytes) || bytes > (size_t)INT64_MAX) {
    snprintf(err, err_len, "parameter %s: its size (or the store's total) overflows", name);
    return NULL;
  }
  if ((size_t)ps->n + 1 > ps->index_cap / 2 && index_grow(ps, (size_t)ps->n + 1)) goto oom;
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
  ps->numel[dtype] = total;
  size_t j = name_hash(name) & (ps->index_cap - 1);
  while (ps->index[j] >= 0) j = (j + 1) & (ps->index_cap - 1);
  ps->index[j] = ps->n;
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
    /* the f32 values may be sharded masters later: memory the backend can give back */
    bool rel = d == VT_F32 && ps->be->alloc_releasable;
    ps->data[d] = rel ? ps->be->alloc_releasable(ps->be, bytes) : ps->be->alloc(ps->be, bytes);
    if (!ps->data[d]) {
      snprintf(err, err_len, "out of %s memory allocating %zu bytes of %s parameters", ps->be->name,
               bytes, vt_dtype_name((vt_dtype)d));
      return -1;
    }
    ps->be->fill(ps->be, ps->data[d], (int64_t)((bytes + 3) / 4), 0.0f);
  }
  ps->reads = calloc((size_t)ps->n + 1, 1);
  if (!ps->reads) {
    snprintf(err, err_len, "out of host memory for the read marks of %d parameters", ps->n);
    return -1;
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    p->t.data = (char *)ps->data[p->t.dtype] + p->offset * vt_dtype_size(p->t.dtype);
    p->t.reads = &ps->reads[i];
  }
  ps->allocated = true;
  return vt_params_alloc_grads(ps, err, err_len);
}

int vt_params_set_trainable(vt_params *ps, const char *glob, bool trainable) {
  int matched = 0;
  for (int i = 0; i < ps->n; i++)
    if (fnmatch(glob, ps->items[i]->name, 0) == 0) {
      ps->items[i]->trainable =
          trainable && ps->items[i]->t.dtype == VT_F32 && !ps->items[i]->buffer;
      matched++;
    }
  return matched;
}

int vt_params_set_buffer(vt_params *ps, const char *glob) {
  int matched = 0;
  for (int i = 0; i < ps->n; i++)
    if (fnmatch(glob, ps->items[i]->name, 0) == 0) {
      ps->items[i]->buffer = true;
      ps->items[i]->trainable = false;
      matched++;
    }
  return matched;
}

int vt_params_alloc_grads(vt_params *ps, char *err, size_t err_len) {
  if (ps->grad) ps->be->free(ps->be, ps->grad);
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
    ps->grad = ps->be->alloc(ps->be, total * sizeof(float));
    if (!ps->grad) {
      snprintf(err, err_len, "out of %s memory allocating %zu gradient values", ps->be->name,
               total);
      return -1;
    }
    ps->be->fill(ps->be, ps->grad, (int64_t)total, 0.0f);
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    p->t.grad = p->trainable ? ps->grad + p->grad_offset : NULL;
    p->t.requires_grad = p->trainable;
  }
  return 0;
}

void vt_params_zero_grad(vt_params *ps) {
  if (ps->grad) ps->be->fill(ps->be, ps->grad, (int64_t)ps->grad_numel, 0.0f);
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
  /* the view is a GEMM operand: each part is read as one (the view has no read marks; a
   * sharded part the GEMM cannot read is refused by vt_gemm_operand) */
  v->reads = NULL;
  for (int i = 0; i < n; i++) vt_mark_param_read(ctx, "concat_view", ts[i], VT_IN_GEMM);
  return v;
}

int vt_params_enable_lowp(vt_params *ps, vt_dtype dtype, char *err, size_t err_len) {
  if (dtype != VT_BF16) {
    snprintf(err, err_len, "parameter copies: dtype %s is not supported (expected bf16)",
             vt_dtype_name(dtype));
    return -1;
  }
  if (!ps->allocated) {
    snprintf(err, err_len, "parameter copies: the store is not allocated yet");
    return -1;
  }
  if (!ps->lowp && ps->numel[VT_F32]) {
    ps->lowp = ps->be->alloc(ps->be, ps->numel[VT_F32] * sizeof(uint16_t));
    if (!ps->lowp) {
      snprintf(err, err_len, "out of %s memory allocating bf16 copies of %zu parameters",
               ps->be->name, ps->numel[VT_F32]);
      return -1;
    }
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (p->t.dtype == VT_F32) p->t.lowp = p->no_copy ? NULL : (uint16_t *)ps->lowp + p->offset;
  }
  vt_params_sync_lowp(ps);
  return 0;
}

void vt_params_set_copy(vt_params *ps, const vt_tensor *t, bool copy) {
  vt_param *p = t && t->name ? vt_params_find(ps, t->name) : NULL;
  if (p) p->no_copy = !copy;
}

/* n f32 values at src into their bf16 copies at dst, flat index index0 onwards: rounded to
 * nearest, or stochastically under the store's current key. */
static void to_lowp(const vt_params *ps, int64_t n, const float *src, uint16_t *dst,
                    size_t index0) {
  if (ps->sr && ps->be->convert_sr)
    ps->be->convert_sr(ps->be, n, src, dst, vt_sr_key(ps->sr_seed, ps->sr_step), index0);
  else
    ps->be->convert(ps->be, VT_F32, VT_BF16, n, src, dst);
}

/* The copies of store offsets [lo, hi): all of them, or under sharded masters only the values
 * that exist (the spans are sorted). */
static void sync_lowp_run(vt_params *ps, size_t lo, size_t hi) {
  if (!ps->spans) {
    to_lowp(ps, (int64_t)(hi - lo), (const float *)ps->data[VT_F32] + lo, (uint16_t *)ps->lowp + lo,
            lo);
    return;
  }
  for (int k = 0; k < ps->n_spans; k++) {
    size_t a = ps->spans[k][0] > lo ? ps->spans[k][0] : lo;
    size_t b = ps->spans[k][1] < hi ? ps->spans[k][1] : hi;
    if (b > a)
      to_lowp(ps, (int64_t)(b - a), (const float *)ps->data[VT_F32] + a, (uint16_t *)ps->lowp + a,
              a);
  }
}

void vt_params_sync_lowp(vt_params *ps) {
  if (!ps->lowp) return;
  /* runs of consecutive f32 parameters with copies, the alignment padding between them
   * included (none without a copy: the whole buffer in one run); a parameter without a copy
   * ends the run */
  size_t lo = 0, hi = 0;
  for (int i = 0; i <= ps->n; i++) {
    const vt_param *p = i < ps->n ? ps->items[i] : NULL;
    if (p && p->t.dtype != VT_F32) continue;
    if (p && p->t.lowp) {
      if (hi == lo) lo = p->offset;
      hi = p->offset + (size_t)vt_numel(&p->t);
      continue;
    }
    if (hi > lo) sync_lowp_run(ps, lo, hi);
    lo = hi = 0;
  }
}

int vt_params_set_rounding(vt_params *ps, bool stochastic, uint64_t seed, char *err,
                           size_t err_len) {
  if (stochastic && !ps->be->convert_sr) {
    snprintf(err, err_len, "stochastic rounding: the %s backend has no convert_sr kernel",
             ps->be->name);
    return -1;
  }
  ps->sr = stochastic;
  ps->sr_seed = seed;
  return 0;
}

void vt_params_sync_lowp_step(vt_params *ps, int64_t step) {
  ps->sr_step = step;
  vt_params_sync_lowp(ps);
}

void vt_params_disable_lowp(vt_params *ps) {
  for (int i = 0; i < ps->n; i++) ps->items[i]->t.lowp = NULL;
  if (ps->lowp) ps->be->free(ps->be, ps->lowp);
  ps->lowp = NULL;
}

/* After a write into one parameter: its bf16 copy follows. */
static void sync_one(const vt_params *ps, const vt_tensor *t) {
  if (ps->lowp && t->lowp && t->dtype == VT_F32)
    to_lowp(ps, vt_numel(t), t->data, t->lowp,
            (size_t)((uint16_t *)t->lowp - (uint16_t *)ps->lowp));
}

/* t must point into the store's buffer of its dtype: a tensor of another store (or a step
 * tensor) would be copied through the wrong backend. */
static bool param_check(const vt_params *ps, const vt_tensor *t, char *err, size_t err_len) {
  const char *name = t && t->name ? t->name : "(unnamed)";
  if (!t || !t->is_param || (unsigned)t->dtype >= VT_DTYPE_COUNT || !ps->allocated ||
      !ps->data[t->dtype]) {
    snprintf(err, err_len, "parameter %s: not a parameter of this allocated store", name);
    return false;
  }
  const char *base = ps->data[t->dtype], *p = t->data;
  size_t es = vt_dtype_size(t->dtype);
  if (p < base || p + vt_nbytes(t) > base + ps->numel[t->dtype] * es) {
    snprintf(err, err_len, "parameter %s: its data lies outside this store's %s buffer", name,
             vt_dtype_name(t->dtype));
    return false;
  }
  return true;
}

int vt_param_write(const vt_params *ps, vt_tensor *t, const void *host, char *err, size_t err_len) {
  if (!param_check(ps, t, err, err_len)) return -1;
  vt_buf_from_host(ps->be, t->data, host, vt_nbytes(t));
  sync_one(ps, t);
  return 0;
}

/* A read needs every f32 value: sharded masters must be gathered first. */
static bool masters_check(const vt_params *ps, const vt_tensor *t, char *err, size_t err_len) {
  if (vt_param_has_masters(ps, t)) return true;
  snprintf(err, err_len,
           "parameter %s: this rank holds only a shard of its f32 master values (ZeRO under "
           "bf16); gather them before reading it",
           t->name ? t->name : "(unnamed)");
  return false;
}

int vt_param_read(const vt_params *ps, const vt_tensor *t, void *host, char *err, size_t err_len) {
  if (!param_check(ps, t, err, err_len) || !masters_check(ps, t, err, err_len)) return -1;
  vt_buf_to_host(ps->be, host, t->data, vt_nbytes(t));
  return 0;
}

/* Conversions go through a stack buffer in chunks: no heap, any size. */
enum { PARAM_CHUNK = 2048 };

static void to_dtype(vt_dtype dt, const float *src, int64_t n, void *dst) {
  for (int64_t i = 0; i < n; i++) switch (dt) {
    case VT_F32: ((float *)dst)[i] = src[i]; break;
    case VT_BF16: ((uint16_t *)dst)[i] = vt_f32_to_bf16(src[i]); break;
    case VT_F16: ((uint16_t *)dst)[i] = vt_f32_to_f16(src[i]); break;
    case VT_I32: ((int32_t *)dst)[i] = (int32_t)src[i]; break;
    default: ((int64_t *)dst)[i] = (int64_t)src[i]; break;
    }
}

static void from_dtype(vt_dtype dt, const void *src, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; i++) switch (dt) {
    case VT_F32: dst[i] = ((const float *)src)[i]; break;
    case VT_BF16: dst[i] = vt_bf16_to_f32(((const uint16_t *)src)[i]); break;
    case VT_F16: dst[i] = vt_f16_to_f32(((const uint16_t *)src)[i]); break;
    case VT_I32: dst[i] = (float)((const int32_t *)src)[i]; break;
    default: dst[i] = (float)((const int64_t *)src)[i]; break;
    }
}

/* Writes n f32 values (all equal to *fill when host is NULL) into t, converted. */
static void write_converted(const vt_params *ps, vt_tensor *t, const float *host, float fill) {
  int64_t n = vt_numel(t);
  size_t es = vt_dtype_size(t->dtype);
  float vals[PARAM_CHUNK];
  int64_t words[PARAM_CHUNK]; /* the widest dtype is 8 bytes */
  if (!host)
    for (int i = 0; i < PARAM_CHUNK; i++) vals[i] = fill;
  for (int64_t i0 = 0; i0 < n; i0 += PARAM_CHUNK) {
    int64_t m = n - i0 < PARAM_CHUNK ? n - i0 : PARAM_CHUNK;
    to_dtype(t->dtype, host ? host + i0 : vals, m, words);
    vt_buf_from_host(ps->be, (char *)t->data + (size_t)i0 * es, words, (size_t)m * es);
  }
}

int vt_param_write_f32(const vt_params *ps, vt_tensor *t, const float *host, char *err,
                       size_t err_len) {
  if (!param_check(ps, t, err, err_len)) return -1;
  if (t->dtype == VT_F32)
    vt_buf_from_host(ps->be, t->data, host, vt_nbytes(t));
  else
    write_converted(ps, t, host, 0.0f);
  sync_one(ps, t);
  return 0;
}

int vt_param_read_f32(const vt_params *ps, const vt_tensor *t, float *host, char *err,
                      size_t err_len) {
  if (!param_check(ps, t, err, err_len) || !masters_check(ps, t, err, err_len)) return -1;
  if (t->dtype == VT_F32) {
    vt_buf_to_host(ps->be, host, t->data, vt_nbytes(t));
    return 0;
  }
  int64_t n = vt_numel(t), words[PARAM_CHUNK];
  size_t es = vt_dtype_size(t->dtype);
  for (int64_t i0 = 0; i0 < n; i0 += PARAM_CHUNK) {
    int64_t m = n - i0 < PARAM_CHUNK ? n - i0 : PARAM_CHUNK;
    vt_buf_to_host(ps->be, words, (const char *)t->data + (size_t)i0 * es, (size_t)m * es);
    from_dtype(t->dtype, words, m, host + i0);
  }
  return 0;
}

int vt_param_fill(const vt_params *ps, vt_tensor *t, float value, char *err, size_t err_len) {
  if (!param_check(ps, t, err, err_len)) return -1;
  if (t->dtype == VT_F32)
    vt_buf_fill_f32(ps->be, t->data, vt_numel(t), value);
  else
    write_converted(ps, t, NULL, value);
  sync_one(ps, t);
  return 0;
}

int vt_param_grad_read(const vt_params *ps, const vt_tensor *t, float *host, char *err,
                       size_t err_len) {
  if (!param_check(ps, t, err, err_len)) return -1;
  size_t bytes = (size_t)vt_numel(t) * sizeof(float);
  if (t->grad)
    vt_buf_to_host(ps->be, host, t->grad, bytes);
  else
    memset(host, 0, bytes);
  return 0;
}

void vt_params_grad_to_host(const vt_params *ps, float *host) {
  if (ps->grad) vt_buf_to_host(ps->be, host, ps->grad, ps->grad_numel * sizeof(float));
}

void vt_params_grad_from_host(vt_params *ps, const float *host) {
  if (ps->grad) vt_buf_from_host(ps->be, ps->grad, host, ps->grad_numel * sizeof(float));
}

void vt_params_scale_grad(vt_params *ps, float alpha) {
  /* the core vtable's unary scale works in place on every backend */
  if (ps->grad && alpha != 1.0f)
    ps->be->unary(ps->be, VT_UN_SCALE, (int64_t)ps->grad_numel, alpha, ps->grad, ps->grad);
}

bool vt_param_has_masters(const vt_params *ps, const vt_tensor *t) {
  return !t->reads || !ps->keep_lo || !(*t->reads & VT_READ_SHARDED);
}

/* Forgets the shards (every value counts as held again) without touching memory. */
static void forget_shards(vt_params *ps) {
  free(ps->spans);
  ps->spans = NULL;
  ps->n_spans = 0;
  for (int i = 0; ps->reads && i < ps->n; i++) ps->reads[i] &= (uint8_t)~VT_READ_SHARDED;
}

int vt_params_unshard_masters(vt_params *ps, char *err, size_t err_len) {
  size_t bytes = ps->numel[VT_F32] * sizeof(float);
  if (ps->spans && ps->be->commit_range &&
      !ps->be->commit_range(ps->be, ps->data[VT_F32], 0, bytes)) {
    snprintf(err, err_len,
             "sharded masters: out of %s memory taking back the released f32 values (%zu bytes "
             "in all)",
             ps->be->name, bytes);
    return -1;
  }
  forget_shards(ps);
  return 0;
}

int64_t vt_params_released_resident(const vt_params *ps, int64_t *pages) {
  *pages = 0;
  if (!ps->spans || ps->device.type != VT_DEV_CPU) return 0;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  const float *base = ps->data[VT_F32];
  int64_t resident = 0;
  for (int k = 0; k <= ps->n_spans; k++) { /* the gaps between the spans of held values */
    uintptr_t a = (uintptr_t)(base + (k ? ps->spans[k - 1][1] : 0));
    uintptr_t b = (uintptr_t)(base + (k < ps->n_spans ? ps->spans[k][0] : ps->numel[VT_F32]));
    a = (a + page - 1) / page * page;
    b = b / page * page;
    for (; a < b; a += page, (*pages)++) {
      unsigned char v = 0;
      if (mincore((void *)a, (size_t)page, &v)) return -1;
      resident += v & 1;
    }
  }
  return resident;
}

/* f32 values [lo, hi) of the store (offsets, padding between parameters included) are no
 * longer needed: the backend gives back the memory of the whole granules inside (CPU pages,
 * CUDA chunks). Where it cannot, the values of the parameters in there become NaN instead, so
 * a reader that was missed shows at once (the padding keeps its zeros). */
static void release_f32(vt_params *ps, size_t lo, size_t hi) {
  if (hi <= lo) return;
  const vt_backend *be = ps->be;
  if (be->release_range &&
      be->release_range(be, ps->data[VT_F32], lo * sizeof(float), (hi - lo) * sizeof(float)))
    return;
  for (int i = 0; i < ps->n; i++) {
    const vt_param *p = ps->items[i];
    if (p->t.dtype != VT_F32) continue;
    size_t a = p->offset > lo ? p->offset : lo, n = (size_t)vt_numel(&p->t);
    size_t b = p->offset + n < hi ? p->offset + n : hi;
    if (b > a) be->fill(be, (float *)ps->data[VT_F32] + a, (int64_t)(b - a), NAN);
  }
}

int vt_params_shard_masters(vt_params *ps, const int64_t *keep_lo, const int64_t *keep_hi,
                            char *err, size_t err_len) {
  if (!ps->allocated || !ps->lowp) {
    snprintf(err, err_len, "sharded masters: the store has no bf16 copies (precision bf16)");
    return -1;
  }
  size_t n = (size_t)ps->n + 1;
  int64_t *lo = malloc(n * sizeof *lo), *hi = malloc(n * sizeof *hi);
  size_t(*spans)[2] = malloc(n * sizeof *spans);
  if (!lo || !hi || !spans) {
    free(lo), free(hi), free(spans);
    snprintf(err, err_len, "sharded masters: out of host memory");
    return -1;
  }
  int ns = 0;
  for (int i = 0; i < ps->n; i++) {
    const vt_param *p = ps->items[i];
    int64_t numel = vt_numel(&p->t);
    lo[i] = keep_lo[i], hi[i] = keep_hi[i];
    bool whole = lo[i] == 0 && hi[i] == numel;
    if (!(0 <= lo[i] && lo[i] <= hi[i] && hi[i] <= numel) ||
        (!whole && (p->t.dtype != VT_F32 || !p->trainable))) {
      snprintf(err, err_len,
               "sharded masters: parameter %s: keeps [%lld, %lld) of %lld values (only a "
               "trainable f32 parameter may keep a part)",
               p->name, (long long)lo[i], (long long)hi[i], (long long)numel);
      free(lo), free(hi), free(spans);
      return -1;
    }
    if (p->t.dtype != VT_F32 || hi[i] == lo[i]) continue;
    size_t a = p->offset + (size_t)lo[i], b = p->offset + (size_t)hi[i];
    if (ns > 0 && a - spans[ns - 1][1] < 64 / sizeof(float)) /* only padding between */
      spans[ns - 1][1] = b;
    else
      spans[ns][0] = a, spans[ns][1] = b, ns++;
  }
  /* a value kept now may lie in memory released before */
  if (vt_params_unshard_masters(ps, err, err_len)) {
    free(lo), free(hi), free(spans);
    return -1;
  }
  free(ps->keep_lo);
  free(ps->keep_hi);
  ps->keep_lo = lo, ps->keep_hi = hi;
  ps->spans = spans, ps->n_spans = ns;
  for (int i = 0; i < ps->n; i++)
    if (lo[i] != 0 || hi[i] != vt_numel(&ps->items[i]->t)) ps->reads[i] |= VT_READ_SHARDED;
  size_t at = 0;
  for (int k = 0; k < ns; at = spans[k][1], k++) release_f32(ps, at, spans[k][0]);
  release_f32(ps, at, ps->numel[VT_F32]);
  return 0;
}
