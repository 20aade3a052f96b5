/* safetensors reader: mmap, header validation (every size, offset and name checked before any
 * pointer into the data is formed), lookup by name and dtype conversion. */
#include "checkpoints/safetensors.h"
#include "autograd/regfile.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/fmt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

static const char *const st_names[VT_DTYPE_COUNT] = {"F32", "BF16", "F16", "I32", "I64"};

/* safetensors dtypes that exist but that this framework does not handle. */
static const char *const st_unsupported[] = {"BOOL",    "U8",      "I8",      "I16",     "U16",
                                             "U32",     "U64",     "F64",     "C64",     "F8_E4M3",
                                             "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4"};

const char *st_dtype_name(vt_dtype t) { return (unsigned)t < VT_DTYPE_COUNT ? st_names[t] : "?"; }

int st_dtype_from_name(const char *name) {
  for (int i = 0; i < VT_DTYPE_COUNT; i++)
    if (strcmp(st_names[i], name) == 0) return i;
  return -1;
}

char *st_shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
  size_t at = 0;
  if (!len) return buf;
  buf[0] = '\0';
  at += (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < ndim && at < len; i++)
    at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (at < len) snprintf(buf + at, len - at, "]");
  return buf;
}

static const char *json_kind(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a real number";
  case JSON_TRUE: return "true";
  case JSON_FALSE: return "false";
  case JSON_NULL: return "null";
  }
  return "?";
}

void st_file_close(st_file *f) {
  if (!f) return;
  if (f->map) munmap(f->map, f->map_len);
  free(f->path);
  free(f->tensors);
  free(f->by_name);
  free(f->names);
  free(f->meta);
  memset(f, 0, sizeof *f);
}

/* ---- header validation ---------------------------------------------------------------- */

/* qsort has no context argument in C11; thread-local so files can be opened in parallel */
static _Thread_local const st_file *sort_file;

static int cmp_by_name(const void *a, const void *b) {
  return strcmp(sort_file->tensors[*(const int *)a].name, sort_file->tensors[*(const int *)b].name);
}

static int cmp_by_offset(const void *a, const void *b) {
  const st_tensor *x = &sort_file->tensors[*(const int *)a];
  const st_tensor *y = &sort_file->tensors[*(const int *)b];
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}

/* Copies s (with its NUL) into the name pool at *at. */
static const char *pool_add(st_file *f, size_t *at, const char *s) {
  size_t n = strlen(s) + 1;
  char *dst = f->names + *at;
  memcpy(dst, s, n);
  *at += n;
  return dst;
}

static int parse_metadata(st_file *f, const json_t *m, size_t *at, char *err, size_t err_len) {
  if (!json_is_object(m)) {
    vt_seterr(err, err_len, "%s: \"__metadata__\": expected an object of strings, found %s",
              f->path, json_kind(m));
    return -1;
  }
  f->meta = (const char **)calloc(2 * json_object_size(m) + 1, sizeof *f->meta);
  if (!f->meta) {
    vt_seterr(err, err_len, "%s: out of memory", f->path);
    return -1;
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)m, key, v) {
    if (!json_is_string(v)) {
      vt_seterr(err, err_len, "%s: \"__metadata__\": key \"%s\": expected a string, found %s",
                f->path, key, json_kind(v));
      return -1;
    }
    f->meta[2 * f->n_meta] = pool_add(f, at, key);
    f->meta[2 * f->n_meta + 1] = pool_add(f, at, json_string_value(v));
    f->n_meta++;
  }
  return 0;
}

static int parse_dtype(st_file *f, const char *name, const json_t *d, st_tensor *t, char *err,
                       size_t err_len) {
  if (!json_is_string(d)) {
    vt_seterr(err, err_len, "%s: tensor \"%s\": \"dtype\": expected a string, found %s", f->path,
              name, d ? json_kind(d) : "nothing");
    return -1;
  }
  const char *s = json_string_value(d);
  int dt = st_dtype_from_name(s);
  if (dt >= 0) {
    t->dtype = (vt_dtype)dt;
    return 0;
  }
  for (size_t i = 0; i < sizeof st_unsupported / sizeof *st_unsupported; i++)
    if (strcmp(s, st_unsupported[i]) == 0) {
      vt_seterr(err, err_len,
                "%s: tensor \"%s\": \"dtype\": %s is not supported (expected F32, BF16, F16, "
                "I32 or I64)",
                f->path, name, s);
      return -1;
    }
  vt_seterr(err, err_len,
            "%s: tensor \"%s\": \"dtype\": unknown dtype \"%.40s\" (expected F32, BF16, F16, "
            "I32 or I64)",
            f->path, name, s);
  return -1;
}

static int parse_shape(st_file *f, const char *name, const json_t *s, st_tensor *t, char *err,
                       size_t err_len) {
  if (!json_is_array(s)) {
    vt_seterr(err, err_len, "%s: tensor \"%s\": \"shape\": expected an array, found %s", f->path,
              name, s ? json_kind(s) : "nothing");
    return -1;
  }
  size_t nd = json_array_size(s);
  if (nd > ST_MAX_DIMS) {
    vt_seterr(err, err_len, "%s: tensor \"%s\": \"shape\": %zu dimensions, at most %d supported",
              f->path, name, nd, ST_MAX_DIMS);
    return -1;
  }
  t->ndim = (int)nd;
  int64_t numel = 1;
  for (size_t i = 0; i < nd; i++) {
    const json_t *d = json_array_get(s, i);
    if (!json_is_integer(d)) {
      vt_seterr(err, err_len,
                "%s: tensor \"%s\": \"shape\"[%zu]: expected a non-negative integer, found %s",
                f->path, name, i, json_kind(d));
      return -1;
    }
    json_int_t v = json_integer_value(d);
    if (v < 0) {
      vt_seterr(err, err_len,
                "%s: tensor \"%s\": \"shape\"[%zu]: expected a non-negative integer, found %lld",
                f->path, name, i, (long long)v);
      return -1;
    }
    t->shape[i] = (int64_t)v;
    if (v != 0 && numel > INT64_MAX / (int64_t)v) {
      vt_seterr(err, err_len,
                "%s: tensor \"%s\": \"shape\": the element count overflows 64 bits at "
                "dimension %zu",
                f->path, name, i);
      return -1;
    }
    numel *= (int64_t)v;
  }
  t->numel = numel;
  return 0;
}

static int parse_offsets(st_file *f, const char *name, const json_t *o, st_tensor *t, char *err,
                         size_t err_len) {
  if (!json_is_array(o) || json_array_size(o) != 2 || !json_is_integer(json_array_get(o, 0)) ||
      !json_is_integer(json_array_get(o, 1))) {
    vt_seterr(err, err_len,
              "%s: tensor \"%s\": \"data_offsets\": expected [begin, end] (two integers), found "
              "%s%s",
              f->path, name, o ? json_kind(o) : "nothing",
              json_is_array(o)
                  ? (json_array_size(o) != 2 ? " of the wrong length" : " with a non-integer")
                  : "");
    return -1;
  }
  json_int_t b = json_integer_value(json_array_get(o, 0));
  json_int_t e = json_integer_value(json_array_get(o, 1));
  if (b < 0 || e < b) {
    vt_seterr(err, err_len,
              "%s: tensor \"%s\": \"data_offsets\": expected 0 <= begin <= end, found [%lld, "
              "%lld]",
              f->path, name, (long long)b, (long long)e);
    return -1;
  }
  if ((uint64_t)e > f->data_len) {
    vt_seterr(err, err_len,
              "%s: tensor \"%s\": \"data_offsets\": [%lld, %lld] runs past the end of the data "
              "section (%zu bytes)",
              f->path, name, (long long)b, (long long)e, f->data_len);
    return -1;
  }
  size_t es = vt_dtype_size(t->dtype);
  char sh[160];
  if (t->numel > (int64_t)(INT64_MAX / (int64_t)es)) {
    vt_seterr(err, err_len, "%s: tensor \"%s\": \"shape\": the byte count overflows 64 bits",
              f->path, name);
    return -1;
  }
  if ((uint64_t)(e - b) != (uint64_t)t->numel * es) {
    vt_seterr(err, err_len,
              "%s: tensor \"%s\": \"data_offsets\": [%lld, %lld] holds %lld bytes, expected "
              "%llu for shape %s of %s",
              f->path, name, (long long)b, (long long)e, (long long)(e - b),
              (unsigned long long)((uint64_t)t->numel * es),
              st_shape_str(t->ndim, t->shape, sh, sizeof sh), st_names[t->dtype]);
    return -1;
  }
  t->begin = (uint64_t)b;
  t->end = (uint64_t)e;
  t->nbytes = (size_t)(e - b);
  t->data = f->data + b;
  return 0;
}

static int parse_tensor(st_file *f, const char *name, const json_t *info, st_tensor *t, char *err,
                        size_t err_len) {
  if (!json_is_object(info)) {
    vt_seterr(err, err_len,
              "%s: tensor \"%s\": expected an object with \"dtype\", \"shape\" and "
              "\"data_offsets\", found %s",
              f->path, name, json_kind(info));
    return -1;
  }
  if (parse_dtype(f, name, json_object_get(info, "dtype"), t, err, err_len) ||
      parse_shape(f, name, json_object_get(info, "shape"), t, err, err_len) ||
      parse_offsets(f, name, json_object_get(info, "data_offsets"), t, err, err_len))
    return -1;
  return 0;
}

static int parse_header(st_file *f, const json_t *root, char *err, size_t err_len) {
  size_t pool = 0, count = 0;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)root, key, v) {
    pool += strlen(key) + 1;
    if (strcmp(key, "__metadata__") == 0) {
      const char *mk;
      json_t *mv;
      if (json_is_object(v)) json_object_foreach(v, mk, mv) {
          pool += strlen(mk) + 1;
          if (json_is_string(mv)) pool += strlen(json_string_value(mv)) + 1;
        }
    } else {
      count++;
    }
  }
  f->names = (char *)malloc(pool + 1);
  f->tensors = (st_tensor *)calloc(count + 1, sizeof *f->tensors);
  f->by_name = (int *)malloc((count + 1) * sizeof *f->by_name);
  if (!f->names || !f->tensors || !f->by_name) {
    vt_seterr(err, err_len, "%s: out of memory for a header of %zu tensors", f->path, count);
    return -1;
  }
  size_t at = 0;
  json_object_foreach((json_t *)root, key, v) {
    if (strcmp(key, "__metadata__") == 0) {
      if (parse_metadata(f, v, &at, err, err_len)) return -1;
      continue;
    }
    st_tensor *t = &f->tensors[f->n];
    if (parse_tensor(f, key, v, t, err, err_len)) return -1;
    t->name = pool_add(f, &at, key);
    f->by_name[f->n] = f->n;
    f->n++;
  }

  /* names: sorted for lookup; a repeat is refused (JSON_REJECT_DUPLICATES catches it first) */
  sort_file = f;
  qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, cmp_by_name);
  for (int i = 1; i < f->n; i++)
    if (strcmp(f->tensors[f->by_name[i - 1]].name, f->tensors[f->by_name[i]].name) == 0) {
      vt_seterr(err, err_len, "%s: tensor \"%s\" appears twice in the header", f->path,
                f->tensors[f->by_name[i]].name);
      return -1;
    }

  /* data: no two non-empty tensors may share a byte */
  int *ord = (int *)malloc(((size_t)f->n + 1) * sizeof *ord);
  if (!ord) {
    vt_seterr(err, err_len, "%s: out of memory", f->path);
    return -1;
  }
  int m = 0;
  for (int i = 0; i < f->n; i++)
    if (f->tensors[i].nbytes) ord[m++] = i;
  qsort(ord, (size_t)m, sizeof *ord, cmp_by_offset);
  for (int i = 1; i < m; i++) {
    const st_tensor *a = &f->tensors[ord[i - 1]], *b = &f->tensors[ord[i]];
    if (b->begin < a->end) {
      vt_seterr(err, err_len,
                "%s: tensors \"%s\" and \"%s\" overlap: \"data_offsets\" [%llu, %llu] and "
                "[%llu, %llu]",
                f->path, a->name, b->name, (unsigned long long)a->begin, (unsigned long long)a->end,
                (unsigned long long)b->begin, (unsigned long long)b->end);
      free(ord);
      return -1;
    }
  }
  free(ord);
  return 0;
}

static int parse_file(st_file *f, const unsigned char *buf, size_t len, char *err, size_t err_len) {
  if (len < 8) {
    vt_seterr(err, err_len, "%s: file is %zu bytes, shorter than the 8-byte header length", f->path,
              len);
    return -1;
  }
  uint64_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | buf[i];
  if (hl > ST_MAX_HEADER_BYTES) {
    vt_seterr(err, err_len, "%s: header length %llu is larger than the limit of %u bytes", f->path,
              (unsigned long long)hl, ST_MAX_HEADER_BYTES);
    return -1;
  }
  if (hl > len - 8) {
    vt_seterr(err, err_len,
              "%s: header length %llu runs past the end of the file (%zu bytes follow the "
              "length)",
              f->path, (unsigned long long)hl, len - 8);
    return -1;
  }
  f->header_len = (size_t)hl;
  f->data = buf + 8 + hl;
  f->data_len = len - 8 - (size_t)hl;

  json_error_t je;
  json_t *root = json_loadb((const char *)buf + 8, (size_t)hl, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    if (json_error_code(&je) == json_error_duplicate_key)
      vt_seterr(err, err_len, "%s: header: duplicate tensor name (%s)", f->path, je.text);
    else
      vt_seterr(err, err_len, "%s: header is not valid JSON: %s at byte %d of %llu", f->path,
                je.text, je.position, (unsigned long long)hl);
    return -1;
  }
  int rc = 0;
  if (!json_is_object(root)) {
    vt_seterr(err, err_len, "%s: header: expected a JSON object, found %s", f->path,
              json_kind(root));
    rc = -1;
  } else {
    rc = parse_header(f, root, err, err_len);
  }
  json_decref(root);
  return rc;
}

int st_file_open_mem(st_file *f, const void *buf, size_t len, const char *label, char *err,
                     size_t err_len) {
  memset(f, 0, sizeof *f);
  f->path = strdup(label ? label : "(memory)");
  if (!f->path) {
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  if (parse_file(f, (const unsigned char *)buf, len, err, err_len)) {
    st_file_close(f);
    return -1;
  }
  return 0;
}

int st_file_open(st_file *f, const char *path, char *err, size_t err_len) {
  memset(f, 0, sizeof *f);
  int fd = vt_open_regular(path, NULL, err, err_len); /* a FIFO would block open() */
  if (fd < 0) return -1;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    vt_seterr(err, err_len, "%s: cannot stat: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  f->path = strdup(path);
  if (!f->path) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    close(fd);
    return -1;
  }
  size_t len = (size_t)st.st_size;
  if (len < 8) {
    close(fd);
    parse_file(f, (const unsigned char *)"", len, err, err_len); /* reports the short file */
    st_file_close(f);
    return -1;
  }
  void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) {
    vt_seterr(err, err_len, "%s: cannot mmap %zu bytes: %s", path, len, strerror(errno));
    st_file_close(f);
    return -1;
  }
  f->map = map;
  f->map_len = len;
  if (parse_file(f, (const unsigned char *)map, len, err, err_len)) {
    st_file_close(f);
    return -1;
  }
  return 0;
}

const st_tensor *st_find(const st_file *f, const char *name) {
  int lo = 0, hi = f->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    const st_tensor *t = &f->tensors[f->by_name[mid]];
    int c = strcmp(name, t->name);
    if (c == 0) return t;
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
  return NULL;
}

/* ---- data ------------------------------------------------------------------------------ */

const void *st_tensor_data(const st_tensor *t, vt_dtype want) {
  if (t->dtype != want) return NULL;
  if ((uintptr_t)t->data % vt_dtype_size(want)) return NULL;
  return t->data;
}

static bool is_float(vt_dtype t) { return t == VT_F32 || t == VT_BF16 || t == VT_F16; }

static float load_float(vt_dtype t, const unsigned char *p) {
  if (t == VT_F32) {
    float v;
    memcpy(&v, p, 4);
    return v;
  }
  uint16_t h;
  memcpy(&h, p, 2);
  return t == VT_BF16 ? vt_bf16_to_f32(h) : vt_f16_to_f32(h);
}

static void store_float(vt_dtype t, unsigned char *p, float v) {
  if (t == VT_F32) {
    memcpy(p, &v, 4);
    return;
  }
  uint16_t h = t == VT_BF16 ? vt_f32_to_bf16(v) : vt_f32_to_f16(v);
  memcpy(p, &h, 2);
}

int st_convert(vt_dtype from, const void *src, vt_dtype to, void *dst, size_t n, char *err,
               size_t err_len) {
  const unsigned char *s = (const unsigned char *)src;
  unsigned char *d = (unsigned char *)dst;
  if ((unsigned)from >= VT_DTYPE_COUNT || (unsigned)to >= VT_DTYPE_COUNT) {
    vt_seterr(err, err_len, "invalid dtype");
    return -1;
  }
  size_t fs = vt_dtype_size(from), ts = vt_dtype_size(to);
  if (from == to) {
    if (n) memcpy(dst, src, n * fs);
    return 0;
  }
  if (is_float(from) && is_float(to)) {
    for (size_t i = 0; i < n; i++) store_float(to, d + i * ts, load_float(from, s + i * fs));
    return 0;
  }
  if (from == VT_I32 && to == VT_I64) {
    for (size_t i = 0; i < n; i++) {
      int32_t v;
      memcpy(&v, s + 4 * i, 4);
      int64_t w = v;
      memcpy(d + 8 * i, &w, 8);
    }
    return 0;
  }
  if (from == VT_I64 && to == VT_I32) {
    for (size_t i = 0; i < n; i++) {
      int64_t v;
      memcpy(&v, s + 8 * i, 8);
      if (v < INT32_MIN || v > INT32_MAX) {
        vt_seterr(err, err_len, "element %zu: I64 value %lld does not fit in I32", i, (long long)v);
        return -1;
      }
      int32_t w = (int32_t)v;
      memcpy(d + 4 * i, &w, 4);
    }
    return 0;
  }
  vt_seterr(err, err_len, "cannot convert %s to %s (float and integer dtypes do not mix)",
            st_names[from], st_names[to]);
  return -1;
}

int st_tensor_read(const st_tensor *t, vt_dtype to, void *dst, size_t dst_bytes, char *err,
                   size_t err_len) {
  size_t want = (size_t)t->numel * vt_dtype_size(to);
  if (dst_bytes != want) {
    vt_seterr(err, err_len, "tensor \"%s\": destination holds %zu bytes, expected %zu (%lld %s)",
              t->name, dst_bytes, want, (long long)t->numel, st_dtype_name(to));
    return -1;
  }
  char e[256];
  if (st_convert(t->dtype, t->data, to, dst, (size_t)t->numel, e, sizeof e)) {
    vt_seterr(err, err_len, "tensor \"%s\": %s", t->name, e);
    return -1;
  }
  return 0;
}

int64_t st_first_nonfinite(const st_tensor *t) { return st_first_nonfinite_range(t, 0, t->numel); }

int64_t st_first_nonfinite_range(const st_tensor *t, int64_t first, int64_t n) {
  const unsigned char *p = (const unsigned char *)t->data;
  int64_t lo = first < 0 ? 0 : first, hi = n > t->numel - lo ? t->numel : lo + n;
  if (t->dtype == VT_F32) {
    for (int64_t i = lo; i < hi; i++) { /* exponent all ones: Inf or NaN */
      uint32_t b;
      memcpy(&b, p + 4 * i, 4);
      if ((b & 0x7f800000u) == 0x7f800000u) return i;
    }
  } else if (t->dtype == VT_BF16 || t->dtype == VT_F16) {
    uint16_t mask = t->dtype == VT_BF16 ? 0x7f80u : 0x7c00u;
    for (int64_t i = lo; i < hi; i++) {
      uint16_t b;
      memcpy(&b, p + 2 * i, 2);
      if ((b & mask) == mask) return i;
    }
  }
  return -1;
}
