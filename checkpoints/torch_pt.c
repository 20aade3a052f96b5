/* torch.save checkpoints: the zip container through libzip, the pickle through a restricted
 * unpickler that builds plain values and tensor records only; see torch_pt.h. */
#include "checkpoints/torch_pt.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "autograd/checked.h"
#include "autograd/fmt.h"
#include "checkpoints/safetensors_write.h"
#include "checkpoints/torch_pickle.h"

/* ---- the archive ---- */

/* Reads a whole entry (at most max bytes) into a new buffer. */
static int read_entry(torch_pt_file *f, int64_t idx, size_t max, unsigned char **out, size_t *len,
                      char *err, size_t err_len) {
  zip_stat_t st;
  const char *nm = zip_get_name(f->zip, (zip_uint64_t)idx, 0);
  if (zip_stat_index(f->zip, (zip_uint64_t)idx, 0, &st) || !(st.valid & ZIP_STAT_SIZE)) {
    vt_seterr(err, err_len, "%s: %s: cannot stat: %s", f->path, nm ? nm : "?",
              zip_strerror(f->zip));
    return -1;
  }
  /* deflate expands at most ~1032:1: a larger claim is a corrupt (or hostile) header */
  bool deflated = (st.valid & ZIP_STAT_COMP_SIZE) && st.comp_size != st.size;
  if (st.size > max || (deflated && st.size / 1032 > st.comp_size + 64)) {
    vt_seterr(err, err_len, "%s: %s: claims %llu bytes (at most %zu expected): corrupt", f->path,
              nm ? nm : "?", (unsigned long long)st.size, max);
    return -1;
  }
  unsigned char *buf = malloc(st.size ? st.size : 1);
  zip_file_t *zf = buf ? zip_fopen_index(f->zip, (zip_uint64_t)idx, 0) : NULL;
  zip_int64_t got = zf ? zip_fread(zf, buf, st.size) : -1;
  /* one more read sees the end, where libzip checks the CRC */
  char extra;
  zip_int64_t more = got == (zip_int64_t)st.size ? zip_fread(zf, &extra, 1) : -1;
  if (!buf || !zf || got != (zip_int64_t)st.size || more != 0) {
    vt_seterr(err, err_len, "%s: %s: %s", f->path, nm ? nm : "?",
              !buf ? "out of memory"
              : zf ? zip_file_strerror(zf)
                   : zip_strerror(f->zip));
    if (zf) zip_fclose(zf);
    free(buf);
    return -1;
  }
  zip_fclose(zf);
  *out = buf, *len = st.size;
  return 0;
}

/* data.pkl is small (~100 bytes per tensor): a larger claim is corrupt */
#define MAX_PKL_BYTES (256u << 20)

static int open_archive(torch_pt_file *f, zip_t *z, const char *label, char *err, size_t err_len) {
  f->zip = z;
  f->cache_storage = -1;
  if (!(f->path = strdup(label))) {
    vt_seterr(err, err_len, "%s: out of memory", label);
    return -1;
  }
  /* the archive's one top-level folder holding data.pkl */
  zip_int64_t n = zip_get_num_entries(z, 0), pkl = -1;
  for (zip_int64_t i = 0; i < n && pkl < 0; i++) {
    const char *nm = zip_get_name(z, (zip_uint64_t)i, 0);
    const char *sl = nm ? strchr(nm, '/') : NULL;
    if (sl && sl > nm && !strcmp(sl, "/data.pkl")) {
      pkl = i;
      if (!(f->prefix = strndup(nm, (size_t)(sl - nm)))) {
        vt_seterr(err, err_len, "%s: out of memory", label);
        return -1;
      }
    }
  }
  if (pkl < 0) {
    vt_seterr(err, err_len,
              "%s: no NAME/data.pkl entry: a zip archive, but not one torch.save wrote", label);
    return -1;
  }
  char e[1024];
  snprintf(e, sizeof e, "%s/byteorder", f->prefix);
  zip_int64_t bo = zip_name_locate(z, e, 0);
  if (bo >= 0) {
    unsigned char *b = NULL;
    size_t bl = 0;
    if (read_entry(f, bo, 16, &b, &bl, err, err_len)) return -1;
    bool little = bl == 6 && !memcmp(b, "little", 6);
    free(b);
    if (!little) {
      vt_seterr(err, err_len, "%s: %s: expected \"little\" (big-endian checkpoints are not read)",
                label, e);
      return -1;
    }
  }
  unsigned char *p = NULL;
  size_t pl = 0;
  if (read_entry(f, pkl, MAX_PKL_BYTES, &p, &pl, err, err_len)) return -1;
  char where[1200];
  snprintf(where, sizeof where, "%s: %s/data.pkl", label, f->prefix);
  int rc = torch_pickle_load(f, p, pl, where, err, err_len);
  free(p);
  return rc;
}

static bool magic_ok(const unsigned char *b, size_t n, const char *label, char *err,
                     size_t err_len) {
  if (n >= 4 && !memcmp(b, "PK\x03\x04", 4)) return true;
  if (n >= 1 && b[0] == 0x80)
    vt_seterr(err, err_len,
              "%s: a torch checkpoint in the legacy format (a pickle stream: before PyTorch 1.6, "
              "or _use_new_zipfile_serialization=False): not read; re-save it with torch.save in "
              "PyTorch >= 1.6",
              label);
  else if (n >= 262 && !memcmp(b + 257, "ustar", 5))
    vt_seterr(err, err_len,
              "%s: a torch checkpoint in the legacy tar format (PyTorch < 0.4): not read; re-save "
              "it with torch.save in PyTorch >= 1.6",
              label);
  else
    vt_seterr(err, err_len, "%s: not a torch.save zip archive (no PK header)", label);
  return false;
}

int torch_pt_open_mem(torch_pt_file *f, const void *buf, size_t len, const char *label, char *err,
                      size_t err_len) {
  memset(f, 0, sizeof *f);
  if (!magic_ok(buf, len, label, err, err_len)) return -1;
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(buf, len, 0, &ze);
  zip_t *z = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze) : NULL;
  if (!z) {
    vt_seterr(err, err_len, "%s: not a readable zip archive: %s", label, zip_error_strerror(&ze));
    if (src) zip_source_free(src);
    zip_error_fini(&ze);
    return -1;
  }
  zip_error_fini(&ze);
  if (open_archive(f, z, label, err, err_len)) {
    torch_pt_close(f);
    return -1;
  }
  return 0;
}

int torch_pt_open(torch_pt_file *f, const char *path, char *err, size_t err_len) {
  memset(f, 0, sizeof *f);
  unsigned char head[300];
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    vt_seterr(err, err_len, "%s: cannot open", path);
    return -1;
  }
  size_t n = fread(head, 1, sizeof head, fp);
  fclose(fp);
  if (!magic_ok(head, n, path, err, err_len)) return -1;
  int ze = 0;
  zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
  if (!z) {
    zip_error_t e;
    zip_error_init_with_code(&e, ze);
    vt_seterr(err, err_len, "%s: not a readable zip archive: %s", path, zip_error_strerror(&e));
    zip_error_fini(&e);
    return -1;
  }
  if (open_archive(f, z, path, err, err_len)) {
    torch_pt_close(f);
    return -1;
  }
  return 0;
}

void torch_pt_close(torch_pt_file *f) {
  if (f->zip) zip_discard(f->zip);
  for (int i = 0; i < f->n_storages; i++) free(f->storages[i].key);
  for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
  free(f->storages), free(f->tensors), free(f->path), free(f->prefix), free(f->sd_prefix);
  free(f->cache);
  memset(f, 0, sizeof *f);
}

const torch_pt_tensor *torch_pt_find(const torch_pt_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

/* ---- tensor data ---- */

static float get_f32(const unsigned char *p, torch_pt_dtype t) {
  switch (t) {
  case TORCH_PT_F32: return vt_bits_f32((uint32_t)torch_pt_le(p, 4));
  case TORCH_PT_F64: {
    uint64_t b = torch_pt_le(p, 8);
    double d;
    memcpy(&d, &b, 8);
    return (float)d;
  }
  case TORCH_PT_F16: return vt_f16_to_f32((uint16_t)torch_pt_le(p, 2));
  default: return vt_bf16_to_f32((uint16_t)torch_pt_le(p, 2));
  }
}

static int64_t get_i64(const unsigned char *p, torch_pt_dtype t) {
  switch (t) {
  case TORCH_PT_I64: return (int64_t)torch_pt_le(p, 8);
  case TORCH_PT_I32: return (int32_t)(uint32_t)torch_pt_le(p, 4);
  case TORCH_PT_I16: return (int16_t)(uint16_t)torch_pt_le(p, 2);
  case TORCH_PT_I8: return (int8_t)p[0];
  default: return p[0];
  }
}

int torch_pt_read(torch_pt_file *f, const torch_pt_tensor *t, vt_dtype to, void *dst, char *err,
                  size_t err_len) {
  const torch_pt_storage *s = &f->storages[t->storage];
  if ((to != VT_F32 && to != VT_I64) || (to == VT_F32) != torch_pt_is_float(s->dtype)) {
    vt_seterr(err, err_len, "%s: tensor %s: a %s tensor cannot be read as %s", f->path, t->name,
              torch_pt_dtype_name(s->dtype), vt_dtype_name(to));
    return -1;
  }
  size_t es = torch_pt_dtype_size(s->dtype);
  if (f->cache_storage != t->storage) {
    free(f->cache);
    f->cache = NULL;
    f->cache_storage = -1;
    size_t len = 0; /* at least numel elements: checked when the record was read */
    if (read_entry(f, s->entry, SIZE_MAX, &f->cache, &len, err, err_len)) {
      if (err && strlen(err) + 1 < err_len)
        vt_seterr(err + strlen(err), err_len - strlen(err), " (tensor %s)", t->name);
      return -1;
    }
    f->cache_storage = t->storage;
  }
  /* a row-major view of a storage safetensors has a dtype for: converted in one go */
  if (t->numel == 0) return 0;
  bool contiguous = true;
  int64_t run = 1; /* products of trailing sizes: at most numel, which did not overflow */
  for (int d = t->ndim - 1; d >= 0; d--) {
    contiguous &= t->shape[d] == 1 || t->stride[d] == run;
    run *= t->shape[d];
  }
  int vt = s->dtype == TORCH_PT_F32    ? VT_F32
           : s->dtype == TORCH_PT_BF16 ? VT_BF16
           : s->dtype == TORCH_PT_F16  ? VT_F16
           : s->dtype == TORCH_PT_I64  ? VT_I64
           : s->dtype == TORCH_PT_I32  ? VT_I32
                                       : -1;
  if (contiguous && vt >= 0)
    return st_convert((vt_dtype)vt, f->cache + (size_t)t->offset * es, to, dst, (size_t)t->numel,
                      err, err_len);
  int64_t idx[TORCH_PT_MAX_DIMS] = {0};
  for (int64_t e = 0; e < t->numel; e++) {
    int64_t off = t->offset;
    for (int d = 0; d < t->ndim; d++) off += idx[d] * t->stride[d];
    const unsigned char *p = f->cache + (size_t)off * es;
    if (to == VT_F32)
      ((float *)dst)[e] = get_f32(p, s->dtype);
    else
      ((int64_t *)dst)[e] = get_i64(p, s->dtype);
    for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) idx[d] = 0;
  }
  return 0;
}

/* ---- to safetensors ---- */

typedef struct {
  torch_pt_file *f;
  const st_entry *ts;
} write_ctx;

static const void *produce(void *ctx, int i, void *scratch, char *err, size_t err_len) {
  write_ctx *c = ctx;
  const torch_pt_tensor *t = c->ts[i].data;
  return torch_pt_read(c->f, t, c->ts[i].dtype, scratch, err, err_len) ? NULL : scratch;
}

#define PARAM_G ".parametrizations.weight.original0"
#define PARAM_V ".parametrizations.weight.original1"

int torch_pt_write_safetensors(torch_pt_file *f, const char *out, torch_pt_select_fn select,
                               void *arg, int *n_out, int *n_skipped, char *err, size_t err_len) {
  size_t pl = strlen(f->sd_prefix);
  st_entry *ts = calloc((size_t)f->n + 1, sizeof *ts);
  char **names = calloc((size_t)f->n + 1, sizeof *names);
  int n = 0, rc = -1;
  if (n_skipped) *n_skipped = 0;
  if (!ts || !names) {
    vt_seterr(err, err_len, "%s: out of memory", f->path);
    goto done;
  }
  for (int i = 0; i < f->n; i++) {
    const torch_pt_tensor *t = &f->tensors[i];
    if (strncmp(t->name, f->sd_prefix, pl)) continue;
    const char *nm = t->name + pl;
    size_t l = strlen(nm), sl = strlen(PARAM_G);
    if (!(names[n] = malloc(l + 1))) {
      vt_seterr(err, err_len, "%s: out of memory", f->path);
      goto done;
    }
    memcpy(names[n], nm, l + 1);
    bool g = l > sl && !strcmp(nm + l - sl, PARAM_G), v = l > sl && !strcmp(nm + l - sl, PARAM_V);
    if (g || v) snprintf(names[n] + l - sl, sl + 1, ".weight_%c", g ? 'g' : 'v');
    if (select && !select(names[n], arg)) {
      free(names[n]);
      names[n] = NULL;
      if (n_skipped) ++*n_skipped;
      continue;
    }
    st_entry *e = &ts[n];
    e->name = names[n++];
    e->dtype = torch_pt_is_float(f->storages[t->storage].dtype) ? VT_F32 : VT_I64;
    e->ndim = t->ndim;
    memcpy(e->shape, t->shape, sizeof t->shape);
    e->data = t; /* st_write_fn ignores data: produce() finds the tensor through it */
  }
  if (!n) {
    vt_seterr(err, err_len, "%s: no tensors%s%s", f->path, pl ? " under " : "",
              pl ? f->sd_prefix : "");
    goto done;
  }
  st_sort_entries(ts, n);
  write_ctx c = {f, ts};
  static const st_kv meta[] = {{"format", "pt"}};
  rc = st_write_fn(out, ts, n, meta, 1, produce, &c, err, err_len);
  if (!rc && n_out) *n_out = n;
done:
  for (int i = 0; names && i < n; i++) free(names[i]);
  free(names), free(ts);
  return rc;
}
