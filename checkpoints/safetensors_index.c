/* Sharded safetensors sets: parses model.safetensors.index.json with jansson, keeps the names
 * sorted for lookup, and opens each shard the first time one of its tensors is asked for. */
#include "checkpoints/safetensors_index.h"
#include "autograd/regfile.h"

#include <errno.h>
#include <jansson.h>
#include <sys/stat.h>

#include "autograd/fmt.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_INDEX_NAME "model.safetensors.index.json"

void st_index_close(st_index *ix) {
  if (!ix) return;
  for (int i = 0; i < ix->n_files; i++) {
    if (ix->opened && ix->opened[i]) st_file_close(&ix->shards[i]);
    if (ix->files) free(ix->files[i]);
  }
  for (int i = 0; i < ix->n; i++) free(ix->names[i]);
  free(ix->files);
  free(ix->shards);
  free(ix->opened);
  free(ix->names);
  free(ix->file_of);
  free(ix->path);
  free(ix->dir);
  memset(ix, 0, sizeof *ix);
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = (char *)malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  char *d = (char *)malloc((size_t)(slash - path) + 1);
  if (d) {
    memcpy(d, path, (size_t)(slash - path));
    d[slash - path] = '\0';
  }
  return d;
}

static int alloc_arrays(st_index *ix, int n_files, int n, char *err, size_t err_len) {
  ix->files = (char **)calloc((size_t)n_files + 1, sizeof *ix->files);
  ix->shards = (st_file *)calloc((size_t)n_files + 1, sizeof *ix->shards);
  ix->opened = (bool *)calloc((size_t)n_files + 1, sizeof *ix->opened);
  ix->names = (char **)calloc((size_t)n + 1, sizeof *ix->names);
  ix->file_of = (int *)calloc((size_t)n + 1, sizeof *ix->file_of);
  if (!ix->files || !ix->shards || !ix->opened || !ix->names || !ix->file_of) {
    vt_seterr(err, err_len, "%s: out of memory", ix->path);
    return -1;
  }
  return 0;
}

static _Thread_local const st_index *sort_ix; /* qsort context */
static int cmp_name(const void *a, const void *b) {
  return strcmp(sort_ix->names[*(const int *)a], sort_ix->names[*(const int *)b]);
}

/* Sorts names (and file_of with them). */
static int sort_names(st_index *ix, char *err, size_t err_len) {
  int *ord = (int *)malloc(((size_t)ix->n + 1) * sizeof *ord);
  char **names = (char **)malloc(((size_t)ix->n + 1) * sizeof *names);
  int *file_of = (int *)malloc(((size_t)ix->n + 1) * sizeof *file_of);
  if (!ord || !names || !file_of) {
    free(ord);
    free(names);
    free(file_of);
    vt_seterr(err, err_len, "%s: out of memory", ix->path);
    return -1;
  }
  for (int i = 0; i < ix->n; i++) ord[i] = i;
  sort_ix = ix;
  qsort(ord, (size_t)ix->n, sizeof *ord, cmp_name);
  for (int i = 0; i < ix->n; i++) {
    names[i] = ix->names[ord[i]];
    file_of[i] = ix->file_of[ord[i]];
  }
  free(ix->names);
  free(ix->file_of);
  free(ord);
  ix->names = names;
  ix->file_of = file_of;
  return 0;
}

static int open_single(st_index *ix, const char *path, char *err, size_t err_len) {
  ix->path = strdup(path);
  ix->dir = dir_of(path);
  if (!ix->path || !ix->dir) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  st_file f;
  if (st_file_open(&f, path, err, err_len)) return -1;
  if (alloc_arrays(ix, 1, f.n, err, err_len)) {
    st_file_close(&f);
    return -1;
  }
  ix->n_files = 1;
  ix->files[0] = strdup(base);
  ix->shards[0] = f;
  ix->opened[0] = true;
  ix->total_size = (int64_t)f.data_len;
  if (!ix->files[0]) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  for (int i = 0; i < f.n; i++) {
    ix->names[i] = strdup(f.tensors[i].name);
    if (!ix->names[i]) {
      vt_seterr(err, err_len, "%s: out of memory", path);
      return -1;
    }
    ix->n++;
  }
  return sort_names(ix, err, err_len);
}

/* A shard name must stay inside the index's directory. */
static bool safe_shard_name(const char *s) {
  if (!s[0] || s[0] == '/') return false;
  for (const char *p = s; *p;) {
    const char *q = strchr(p, '/');
    size_t len = q ? (size_t)(q - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') return false;
    p += len;
    if (*p == '/') p++;
  }
  return true;
}

/* An index names every tensor once: 64 MiB is far beyond any real model's. */
#define ST_INDEX_MAX_BYTES (64u << 20)

static int open_index(st_index *ix, const char *path, char *err, size_t err_len) {
  ix->path = strdup(path);
  ix->dir = dir_of(path);
  if (!ix->path || !ix->dir) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  json_error_t je;
  size_t len;
  char *text = vt_read_regular(path, ST_INDEX_MAX_BYTES, &len, err, err_len);
  if (!text) return -1;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  free(text);
  if (!root) {
    vt_seterr(err, err_len, "%s: not a valid JSON index: %s (line %d, column %d)", path, je.text,
              je.line, je.column);
    return -1;
  }
  int rc = -1;
  json_t *wm = json_object_get(root, "weight_map");
  json_t *md = json_object_get(root, "metadata");
  ix->total_size = -1;
  if (!json_is_object(root) || !json_is_object(wm)) {
    vt_seterr(err, err_len, "%s: expected an object with a \"weight_map\" object", path);
    goto done;
  }
  if (md && !json_is_null(md)) {
    json_t *ts = json_object_get(md, "total_size");
    if (!json_is_object(md) || (ts && !json_is_integer(ts) && !json_is_real(ts))) {
      vt_seterr(err, err_len, "%s: \"metadata\": expected an object with a numeric total_size",
                path);
      goto done;
    }
    if (ts) ix->total_size = (int64_t)json_number_value(ts);
  }
  size_t n = json_object_size(wm);
  if (n > (size_t)INT32_MAX / 2 || alloc_arrays(ix, (int)n, (int)n, err, err_len)) goto done;
  const char *key;
  json_t *v;
  json_object_foreach(wm, key, v) {
    if (!json_is_string(v) || !safe_shard_name(json_string_value(v))) {
      vt_seterr(err, err_len,
                "%s: \"weight_map\": tensor \"%s\": expected a relative shard file name, found "
                "%s%s%s",
                path, key,
                json_is_string(v) ? "\""
                : json_is_null(v) ? "null"
                                  : "a non-string",
                json_is_string(v) ? json_string_value(v) : "", json_is_string(v) ? "\"" : "");
      goto done;
    }
    const char *file = json_string_value(v);
    int fi = -1;
    for (int k = ix->n_files - 1; k >= 0 && fi < 0; k--)
      if (strcmp(ix->files[k], file) == 0) fi = k;
    if (fi < 0) {
      ix->files[ix->n_files] = strdup(file);
      if (!ix->files[ix->n_files]) {
        vt_seterr(err, err_len, "%s: out of memory", path);
        goto done;
      }
      fi = ix->n_files++;
    }
    ix->names[ix->n] = strdup(key);
    if (!ix->names[ix->n]) {
      vt_seterr(err, err_len, "%s: out of memory", path);
      goto done;
    }
    ix->file_of[ix->n++] = fi;
  }
  rc = sort_names(ix, err, err_len);
done:
  json_decref(root);
  return rc;
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

int st_index_open(st_index *ix, const char *path, char *err, size_t err_len) {
  memset(ix, 0, sizeof *ix);
  int rc;
  if (is_dir(path)) {
    char *idx = join(path, ST_INDEX_NAME), *single = join(path, "model.safetensors");
    if (!idx || !single) {
      vt_seterr(err, err_len, "%s: out of memory", path);
      rc = -1;
    } else if (exists(idx)) {
      rc = open_index(ix, idx, err, err_len);
    } else if (exists(single)) {
      rc = open_single(ix, single, err, err_len);
    } else {
      vt_seterr(err, err_len, "%s: directory has neither %s nor model.safetensors", path,
                ST_INDEX_NAME);
      rc = -1;
    }
    free(idx);
    free(single);
  } else if (ends_with(path, ".json")) {
    rc = open_index(ix, path, err, err_len);
  } else {
    rc = open_single(ix, path, err, err_len);
  }
  if (rc) st_index_close(ix);
  return rc;
}

static int find_name(const st_index *ix, const char *name) {
  int lo = 0, hi = ix->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(name, ix->names[mid]);
    if (c == 0) return mid;
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return -1;
}

bool st_index_has(const st_index *ix, const char *name) { return find_name(ix, name) >= 0; }

int st_index_get(st_index *ix, const char *name, const st_tensor **out, char *err, size_t err_len) {
  *out = NULL;
  int i = find_name(ix, name);
  if (i < 0) return 0;
  int fi = ix->file_of[i];
  if (!ix->opened[fi]) {
    char *p = join(ix->dir, ix->files[fi]);
    if (!p) {
      vt_seterr(err, err_len, "%s: out of memory", ix->path);
      return -1;
    }
    int rc = st_file_open(&ix->shards[fi], p, err, err_len);
    free(p);
    if (rc) return -1;
    ix->opened[fi] = true;
  }
  *out = st_find(&ix->shards[fi], name);
  if (!*out) {
    vt_seterr(err, err_len, "%s: maps tensor \"%s\" to %s, which has no such tensor", ix->path,
              name, ix->files[fi]);
    return -1;
  }
  return 0;
}
