/* safetensors writer: header built with jansson (compact, insertion order, as serde_json
 * writes it), padded to 8 bytes, tensors back to back; atomic files; sharded sets. */
#include "checkpoints/safetensors_write.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/fmt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- files ------------------------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = (const char *)buf;
  while (len) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : len;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

static void fsync_parent(const char *path) {
  char *copy = strdup(path);
  if (!copy) return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd); /* best effort: some file systems refuse fsync on directories */
    close(fd);
  }
  free(copy);
}

/* Opens path.tmp for writing; fills *tmp (malloc'd, caller frees). */
static int open_tmp(const char *path, char **tmp, char *err, size_t err_len) {
  size_t n = strlen(path) + 5;
  *tmp = (char *)malloc(n);
  if (!*tmp) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  snprintf(*tmp, n, "%s.tmp", path);
  int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) vt_seterr(err, err_len, "%s: cannot create: %s", *tmp, strerror(errno));
  return fd;
}

/* fsync + close + rename; on any failure removes tmp. */
static int commit_tmp(int fd, const char *tmp, const char *path, char *err, size_t err_len) {
  if (fsync(fd) != 0) {
    vt_seterr(err, err_len, "%s: fsync failed: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    return -1;
  }
  if (close(fd) != 0) {
    vt_seterr(err, err_len, "%s: close failed: %s", tmp, strerror(errno));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    vt_seterr(err, err_len, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  fsync_parent(path);
  return 0;
}

int st_write_file_atomic(const char *path, const void *buf, size_t len, char *err, size_t err_len) {
  char *tmp = NULL;
  int fd = open_tmp(path, &tmp, err, err_len);
  if (fd < 0) {
    free(tmp);
    return -1;
  }
  if (write_all(fd, buf, len)) {
    vt_seterr(err, err_len, "%s: write failed: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    free(tmp);
    return -1;
  }
  int rc = commit_tmp(fd, tmp, path, err, err_len);
  free(tmp);
  return rc;
}

/* ---- entries ---------------------------------------------------------------------------- */

static int hf_rank(vt_dtype t) {
  switch (t) {
  case VT_I64: return 4;
  case VT_F32: return 3;
  case VT_I32: return 2;
  case VT_BF16: return 1;
  default: return 0; /* F16 */
  }
}

static int cmp_entries(const st_entry *a, const st_entry *b) {
  int ra = hf_rank(a->dtype), rb = hf_rank(b->dtype);
  if (ra != rb) return rb - ra;
  return strcmp(a->name, b->name);
}

static int cmp_entry(const void *a, const void *b) {
  return cmp_entries((const st_entry *)a, (const st_entry *)b);
}

void st_sort_entries(st_entry *ts, int n) {
  if (n > 1) qsort(ts, (size_t)n, sizeof *ts, cmp_entry);
}

static _Thread_local const st_entry *sort_base; /* qsort context */
static int cmp_index_hf(const void *a, const void *b) {
  return cmp_entries(&sort_base[*(const int *)a], &sort_base[*(const int *)b]);
}
static int cmp_index_name(const void *a, const void *b) {
  return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}

/* Checks every entry and writes its byte count into bytes[i]; refuses repeated names. */
static int check_entries(const char *path, const st_entry *ts, const int *idx, int m, size_t *bytes,
                         char *err, size_t err_len) {
  for (int k = 0; k < m; k++) {
    const st_entry *e = &ts[idx[k]];
    if (!e->name || !e->name[0] || strcmp(e->name, "__metadata__") == 0) {
      vt_seterr(err, err_len, "%s: tensor %d: name \"%s\" is not allowed", path, idx[k],
                e->name ? e->name : "(null)");
      return -1;
    }
    if ((unsigned)e->dtype >= VT_DTYPE_COUNT || e->ndim < 0 || e->ndim > ST_MAX_DIMS) {
      vt_seterr(err, err_len, "%s: tensor \"%s\": bad dtype %d or ndim %d", path, e->name,
                (int)e->dtype, e->ndim);
      return -1;
    }
    uint64_t numel = 1;
    for (int d = 0; d < e->ndim; d++) {
      if (e->shape[d] < 0 ||
          (e->shape[d] && numel > (uint64_t)INT64_MAX / (uint64_t)e->shape[d] / 8)) {
        vt_seterr(err, err_len, "%s: tensor \"%s\": bad shape dimension %d (%lld)", path, e->name,
                  d, (long long)e->shape[d]);
        return -1;
      }
      numel *= (uint64_t)e->shape[d];
    }
    bytes[idx[k]] = (size_t)(numel * vt_dtype_size(e->dtype));
  }
  int *by = (int *)malloc(((size_t)m + 1) * sizeof *by);
  if (!by) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  memcpy(by, idx, (size_t)m * sizeof *by);
  sort_base = ts;
  qsort(by, (size_t)m, sizeof *by, cmp_index_name);
  for (int k = 1; k < m; k++)
    if (strcmp(ts[by[k - 1]].name, ts[by[k]].name) == 0) {
      vt_seterr(err, err_len, "%s: tensor \"%s\" is given twice", path, ts[by[k]].name);
      free(by);
      return -1;
    }
  free(by);
  return 0;
}

/* The header JSON (padded to a multiple of 8); malloc'd, *len set. */
static char *build_header(const char *path, const st_entry *ts, const int *idx, int m,
                          const size_t *bytes, const st_kv *meta, int n_meta, size_t *len,
                          char *err, size_t err_len) {
  json_t *root = json_object();
  int bad = !root;
  if (!bad && n_meta > 0) {
    json_t *mo = json_object();
    bad = json_object_set_new(root, "__metadata__", mo);
    for (int i = 0; i < n_meta && !bad; i++)
      bad = !meta[i].key || !meta[i].value ||
            json_object_set_new(mo, meta[i].key, json_string(meta[i].value));
    if (bad) {
      vt_seterr(err, err_len, "%s: metadata key or value missing or not UTF-8", path);
      json_decref(root);
      return NULL;
    }
  }
  uint64_t off = 0;
  for (int k = 0; k < m && !bad; k++) {
    const st_entry *e = &ts[idx[k]];
    json_t *info = json_object(), *shape = json_array(), *offs = json_array();
    bad = !info || !shape || !offs;
    for (int d = 0; d < e->ndim && !bad; d++)
      bad = json_array_append_new(shape, json_integer(e->shape[d]));
    if (!bad)
      bad = json_array_append_new(offs, json_integer((json_int_t)off)) ||
            json_array_append_new(offs, json_integer((json_int_t)(off + bytes[idx[k]])));
    if (!bad)
      bad = json_object_set_new(info, "dtype", json_string(st_dtype_name(e->dtype))) ||
            json_object_set_new(info, "shape", shape) ||
            json_object_set_new(info, "data_offsets", offs);
    else {
      json_decref(shape);
      json_decref(offs);
    }
    if (!bad) {
      bad = json_object_set_new(root, e->name, info);
      if (bad) vt_seterr(err, err_len, "%s: tensor name \"%s\" is not UTF-8", path, e->name);
    } else {
      json_decref(info);
      vt_seterr(err, err_len, "%s: out of memory building the header", path);
    }
    off += bytes[idx[k]];
  }
  char *s = bad ? NULL : json_dumps(root, JSON_COMPACT);
  json_decref(root);
  if (!s) {
    if (!bad) vt_seterr(err, err_len, "%s: out of memory building the header", path);
    return NULL;
  }
  size_t n = strlen(s), padded = (n + 7) / 8 * 8;
  char *h = (char *)realloc(s, padded + 1);
  if (!h) {
    free(s);
    vt_seterr(err, err_len, "%s: out of memory", path);
    return NULL;
  }
  memset(h + n, ' ', padded - n);
  h[padded] = '\0';
  *len = padded;
  return h;
}

/* Writes ts[idx[0..m)] in that order. */
static int write_one(const char *path, const st_entry *ts, const int *idx, int m, const st_kv *meta,
                     int n_meta, st_produce_fn produce, void *ctx, char *err, size_t err_len) {
  int n_all = 0;
  for (int k = 0; k < m; k++)
    if (idx[k] + 1 > n_all) n_all = idx[k] + 1;
  size_t *bytes = (size_t *)calloc((size_t)n_all + 1, sizeof *bytes);
  if (!bytes) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  char *header = NULL, *tmp = NULL;
  void *scratch = NULL;
  int fd = -1, rc = -1;
  size_t hl = 0;
  if (check_entries(path, ts, idx, m, bytes, err, err_len)) goto done;
  header = build_header(path, ts, idx, m, bytes, meta, n_meta, &hl, err, err_len);
  if (!header) goto done;
  if (produce) {
    size_t max = 1;
    for (int k = 0; k < m; k++)
      if (bytes[idx[k]] > max) max = bytes[idx[k]];
    scratch = malloc(max);
    if (!scratch) {
      vt_seterr(err, err_len, "%s: out of memory (%zu bytes of scratch)", path, max);
      goto done;
    }
  }
  fd = open_tmp(path, &tmp, err, err_len);
  if (fd < 0) goto done;
  unsigned char len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hl >> (8 * i));
  if (write_all(fd, len8, 8) || write_all(fd, header, hl)) {
    vt_seterr(err, err_len, "%s: write failed: %s", tmp, strerror(errno));
    goto fail;
  }
  for (int k = 0; k < m; k++) {
    const st_entry *e = &ts[idx[k]];
    if (!bytes[idx[k]]) continue;
    const void *src = produce ? produce(ctx, idx[k], scratch, err, err_len) : e->data;
    if (!src) {
      if (!produce) vt_seterr(err, err_len, "%s: tensor \"%s\": data is NULL", path, e->name);
      goto fail;
    }
    if (write_all(fd, src, bytes[idx[k]])) {
      vt_seterr(err, err_len, "%s: write failed: %s", tmp, strerror(errno));
      goto fail;
    }
  }
  rc = commit_tmp(fd, tmp, path, err, err_len);
  fd = -1;
  goto done;
fail:
  close(fd);
  unlink(tmp);
done:
  free(tmp);
  free(scratch);
  free(header);
  free(bytes);
  return rc;
}

int st_write_fn(const char *path, const st_entry *ts, int n, const st_kv *meta, int n_meta,
                st_produce_fn produce, void *ctx, char *err, size_t err_len) {
  if (n < 0) n = 0;
  int *idx = (int *)malloc(((size_t)n + 1) * sizeof *idx);
  if (!idx) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  for (int i = 0; i < n; i++) idx[i] = i;
  int rc = write_one(path, ts, idx, n, meta, n_meta, produce, ctx, err, err_len);
  free(idx);
  return rc;
}

int st_write(const char *path, const st_entry *ts, int n, const st_kv *meta, int n_meta, char *err,
             size_t err_len) {
  return st_write_fn(path, ts, n, meta, n_meta, NULL, NULL, err, err_len);
}

/* ---- sharded sets ----------------------------------------------------------------------- */

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = (char *)malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static int write_index(const char *dir, const st_entry *ts, const int *shard_of, int n,
                       int n_shards, uint64_t total, uint64_t n_params, char *err, size_t err_len) {
  char *path = join(dir, "model.safetensors.index.json");
  json_t *root = json_object(), *md = json_object(), *wm = json_object();
  int bad = !path || !root || !md || !wm;
  if (!bad)
    bad = json_object_set_new(md, "total_parameters", json_integer((json_int_t)n_params)) ||
          json_object_set_new(md, "total_size", json_integer((json_int_t)total)) ||
          json_object_set_new(root, "metadata", md) || json_object_set_new(root, "weight_map", wm);
  else {
    json_decref(md);
    json_decref(wm);
  }
  char fname[64];
  for (int i = 0; i < n && !bad; i++) {
    snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", shard_of[i] + 1, n_shards);
    bad = json_object_set_new(wm, ts[i].name, json_string(fname));
  }
  char *s = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(root);
  int rc = -1;
  if (!s) {
    vt_seterr(err, err_len, "%s/model.safetensors.index.json: out of memory", dir);
  } else {
    size_t len = strlen(s);
    char *t = (char *)realloc(s, len + 2);
    if (t) {
      s = t;
      s[len] = '\n'; /* transformers ends the index with a newline */
      s[len + 1] = '\0';
      rc = st_write_file_atomic(path, s, len + 1, err, err_len);
    }
  }
  free(s);
  free(path);
  return rc;
}

int st_write_sharded_fn(const char *dir, const st_entry *ts, int n, size_t max_shard_bytes,
                        const st_kv *meta, int n_meta, st_produce_fn produce, void *ctx,
                        int *n_shards, char *err, size_t err_len) {
  if (n < 0) n = 0;
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    vt_seterr(err, err_len, "%s: cannot create directory: %s", dir, strerror(errno));
    return -1;
  }
  int *idx = (int *)malloc(((size_t)n + 1) * sizeof *idx);
  int *shard_of = (int *)malloc(((size_t)n + 1) * sizeof *shard_of);
  int *order = (int *)malloc(((size_t)n + 1) * sizeof *order);
  size_t *bytes = (size_t *)calloc((size_t)n + 1, sizeof *bytes);
  int rc = -1, ns = 0;
  if (!idx || !shard_of || !order || !bytes) {
    vt_seterr(err, err_len, "%s: out of memory", dir);
    goto done;
  }
  for (int i = 0; i < n; i++) idx[i] = i;
  if (check_entries(dir, ts, idx, n, bytes, err, err_len)) goto done;

  /* greedy split in the order given, as huggingface_hub's split_state_dict_into_shards:
   * a tensor over the limit gets its own shard, numbered before the one being filled */
  uint64_t total = 0, cur = 0, n_params = 0;
  int cur_shard = -1;
  for (int i = 0; i < n; i++) {
    total += bytes[i];
    n_params += bytes[i] / vt_dtype_size(ts[i].dtype);
    if (bytes[i] > max_shard_bytes) {
      shard_of[i] = -2 - i; /* placeholder: its own shard, numbered below */
      continue;
    }
    if (cur_shard < 0 || cur + bytes[i] > max_shard_bytes) {
      cur_shard = i; /* shards are identified by their first tensor for now */
      cur = 0;
    }
    shard_of[i] = cur_shard;
    cur += bytes[i];
  }
  /* number shards in the order HF appends them: an oversized tensor's shard is appended
   * when it is met, a normal shard when the next one starts (or at the end) */
  {
    int *num = (int *)malloc(((size_t)n + 1) * sizeof *num);
    if (!num) {
      vt_seterr(err, err_len, "%s: out of memory", dir);
      goto done;
    }
    for (int i = 0; i < n; i++) num[i] = -1;
    int open_id = -1;
    for (int i = 0; i < n; i++) {
      if (shard_of[i] <= -2) {
        num[i] = ns++;
        continue;
      }
      if (shard_of[i] != open_id) {
        if (open_id >= 0) num[open_id] = ns++;
        open_id = shard_of[i];
      }
    }
    if (open_id >= 0) num[open_id] = ns++;
    for (int i = 0; i < n; i++) shard_of[i] = shard_of[i] <= -2 ? num[i] : num[shard_of[i]];
    free(num);
  }
  if (ns == 0) ns = 1; /* no tensors: one empty file */

  if (ns == 1) {
    char *path = join(dir, "model.safetensors");
    if (!path) {
      vt_seterr(err, err_len, "%s: out of memory", dir);
      goto done;
    }
    sort_base = ts;
    qsort(idx, (size_t)n, sizeof *idx, cmp_index_hf);
    rc = write_one(path, ts, idx, n, meta, n_meta, produce, ctx, err, err_len);
    free(path);
    goto done;
  }
  for (int s = 0; s < ns; s++) {
    int m = 0;
    for (int i = 0; i < n; i++)
      if (shard_of[i] == s) order[m++] = i;
    sort_base = ts;
    qsort(order, (size_t)m, sizeof *order, cmp_index_hf);
    char fname[64];
    snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", s + 1, ns);
    char *path = join(dir, fname);
    if (!path) {
      vt_seterr(err, err_len, "%s: out of memory", dir);
      goto done;
    }
    int r = write_one(path, ts, order, m, meta, n_meta, produce, ctx, err, err_len);
    free(path);
    if (r) goto done;
  }
  rc = write_index(dir, ts, shard_of, n, ns, total, n_params, err, err_len);
done:
  if (n_shards) *n_shards = rc == 0 ? ns : 0;
  free(idx);
  free(shard_of);
  free(order);
  free(bytes);
  return rc;
}

int st_write_sharded(const char *dir, const st_entry *ts, int n, size_t max_shard_bytes,
                     const st_kv *meta, int n_meta, int *n_shards, char *err, size_t err_len) {
  return st_write_sharded_fn(dir, ts, n, max_shard_bytes, meta, n_meta, NULL, NULL, n_shards, err,
                             err_len);
}
