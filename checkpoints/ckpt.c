/* Checkpoint directories with a CRC32 manifest; see ckpt.h. */
/* nftw is an X/Open interface */
#define _XOPEN_SOURCE 700
#include "checkpoints/ckpt.h"
#include "autograd/regfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define MANIFEST "COMPLETE"
#define MANIFEST_HEAD "vita-train checkpoint v1"

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

int ckpt_remove_tree(const char *path, char *err, size_t err_len) {
  struct stat st;
  if (lstat(path, &st) != 0) return 0;
  if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
    snprintf(err, err_len, "%s: cannot remove: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

int ckpt_mkdirs(const char *path, char *err, size_t err_len) {
  char buf[CKPT_PATH_MAX];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) && errno != EEXIST) goto fail;
    *p = '/';
  }
  if (mkdir(buf, 0755) && errno != EEXIST) goto fail;
  return 0;
fail:
  snprintf(err, err_len, "%s: cannot create directory: %s", buf, strerror(errno));
  return -1;
}

/* Best-effort removal of a checkpoint directory (a stale .tmp, an old step). */
static void remove_dir(const char *path) {
  char ignored[8];
  ckpt_remove_tree(path, ignored, sizeof ignored);
}

static int fsync_path(const char *path, int flags) {
  int fd = open(path, flags);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

/* Size and CRC32 of a regular file; -1 with why (naming it) otherwise. */
static int file_crc(const char *path, uint64_t *size, uint32_t *crc, char *why, size_t why_len) {
  FILE *f = vt_fopen_regular(path, NULL, why, why_len);
  if (!f) return -1;
  static const size_t chunk = 1 << 20;
  unsigned char *buf = malloc(chunk);
  if (!buf) {
    snprintf(why, why_len, "%s: out of memory", path);
    fclose(f);
    return -1;
  }
  uLong c = crc32(0L, Z_NULL, 0);
  uint64_t n = 0;
  size_t got;
  while ((got = fread(buf, 1, chunk, f)) > 0) {
    c = crc32(c, buf, (uInt)got);
    n += got;
  }
  int rc = 0;
  if (ferror(f)) {
    snprintf(why, why_len, "%s: cannot read: %s", path, strerror(errno));
    rc = -1;
  }
  free(buf);
  fclose(f);
  *size = n;
  *crc = (uint32_t)c;
  return rc;
}

int ckpt_begin(ckpt_writer *w, const char *root, int64_t step, char *err, size_t err_len) {
  memset(w, 0, sizeof *w);
  if (step < 0) {
    snprintf(err, err_len, "checkpoint step %lld is negative", (long long)step);
    return -1;
  }
  if (strlen(root) + 64 > CKPT_PATH_MAX) {
    snprintf(err, err_len, "checkpoint directory path too long (%zu bytes)", strlen(root));
    return -1;
  }
  snprintf(w->root, sizeof w->root, "%s", root);
  snprintf(w->final, sizeof w->final, "%s/step-%08lld", root, (long long)step);
  snprintf(w->tmp, sizeof w->tmp, "%s.tmp", w->final);
  w->step = step;
  if (ckpt_mkdirs(root, err, err_len)) return -1;
  remove_dir(w->tmp);
  if (mkdir(w->tmp, 0755)) {
    snprintf(err, err_len, "%s: cannot create: %s", w->tmp, strerror(errno));
    return -1;
  }
  return 0;
}

void ckpt_abort(ckpt_writer *w) { remove_dir(w->tmp); }

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of the entries of dir (files or dirs), excluding . and ..; caller frees. */
static char **list_dir(const char *dir, int *n) {
  DIR *d = opendir(dir);
  *n = 0;
  if (!d) return NULL;
  char **names = NULL;
  int cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      char **nn = realloc(names, sizeof *names * (size_t)cap);
      if (!nn) break;
      names = nn;
    }
    names[(*n)++] = strdup(e->d_name);
  }
  closedir(d);
  if (*n) qsort(names, (size_t)*n, sizeof *names, cmp_str);
  return names;
}

static void free_list(char **names, int n) {
  for (int i = 0; i < n; i++) free(names[i]);
  free(names);
}

static int prune(const char *root, int keep_last) {
  if (keep_last <= 0) return 0;
  int n;
  char **names = list_dir(root, &n);
  int complete = 0;
  /* newest first: names are zero-padded, so reverse lexical order is newest first */
  for (int i = n - 1; i >= 0; i--) {
    size_t len = strlen(names[i]);
    if (strncmp(names[i], "step-", 5) != 0 || (len > 4 && !strcmp(names[i] + len - 4, ".tmp")))
      continue;
    char dir[CKPT_PATH_MAX], mpath[CKPT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
    snprintf(mpath, sizeof mpath, "%s/%s", dir, MANIFEST);
    if (access(mpath, F_OK) != 0) continue; /* never complete: leave it for a human */
    if (++complete > keep_last) remove_dir(dir);
  }
  free_list(names, n);
  return 0;
}

int ckpt_commit(ckpt_writer *w, int keep_last, char *err, size_t err_len) {
  int n;
  char **names = list_dir(w->tmp, &n);
  size_t cap = 256 + (size_t)n * 320, len = 0;
  char *manifest = malloc(cap);
  if (!manifest) {
    free_list(names, n);
    snprintf(err, err_len, "%s: out of memory", w->tmp);
    return -1;
  }
  len += (size_t)snprintf(manifest, cap, "%s\nstep %lld\n", MANIFEST_HEAD, (long long)w->step);
  for (int i = 0; i < n; i++) {
    char p[CKPT_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", w->tmp, names[i]);
    uint64_t size;
    uint32_t crc;
    char why[CKPT_PATH_MAX + 64] = "";
    if (!strcmp(names[i], MANIFEST) || strchr(names[i], ' ') || fsync_path(p, O_RDONLY) ||
        file_crc(p, &size, &crc, why, sizeof why)) {
      snprintf(err, err_len, "%s: cannot sync or read it back (or a name with a space): %s", p,
               why[0] ? why : strerror(errno));
      free(manifest);
      free_list(names, n);
      return -1;
    }
    len += (size_t)snprintf(manifest + len, cap - len, "file %s %llu %08x\n", names[i],
                            (unsigned long long)size, crc);
  }
  free_list(names, n);
  char mpath[CKPT_PATH_MAX];
  snprintf(mpath, sizeof mpath, "%s/%s", w->tmp, MANIFEST);
  int rc = ckpt_write_text(mpath, manifest, err, err_len);
  free(manifest);
  if (rc) return -1;
  if (fsync_path(w->tmp, O_RDONLY | O_DIRECTORY)) {
    snprintf(err, err_len, "%s: cannot sync: %s", w->tmp, strerror(errno));
    return -1;
  }
  remove_dir(w->final); /* an older checkpoint of the same step (a resumed run) */
  if (rename(w->tmp, w->final)) {
    snprintf(err, err_len, "%s: cannot rename to %s: %s", w->tmp, w->final, strerror(errno));
    return -1;
  }
  fsync_path(w->root, O_RDONLY | O_DIRECTORY);
  return prune(w->root, keep_last);
}

void ckpt_manifest_free(ckpt_manifest *m) {
  free(m->files);
  memset(m, 0, sizeof *m);
}

/* Digits only (no sign, no spaces: sscanf's %llu would take "-1" as 2^64 - 1). */
static bool parse_u64(const char *s, size_t n, uint64_t *out) {
  if (n == 0 || n > 20) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
      return false;
  }
  *out = v;
  return true;
}

static bool parse_crc(const char *s, size_t n, uint32_t *out) {
  if (n != 8) return false;
  uint32_t v = 0;
  for (size_t i = 0; i < 8; i++) {
    char c = s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return true;
}

static int cmp_entry(const void *a, const void *b) {
  return strcmp(((const ckpt_entry *)a)->name, ((const ckpt_entry *)b)->name);
}

int ckpt_manifest_parse(const char *text, size_t len, const char *where, ckpt_manifest *m,
                        char *err, size_t err_len) {
  memset(m, 0, sizeof *m);
  m->step = -1;
  size_t cap = 0;
  int lineno = 0;
  const char *p = text, *end = text + len;
  if (memchr(text, 0, len)) {
    snprintf(err, err_len, "%s: a NUL byte: not a manifest", where);
    return -1;
  }
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    size_t n = (size_t)(le - p);
    lineno++;
    char shown[96];
    snprintf(shown, sizeof shown, "%.*s", (int)(n < 80 ? n : 80), p);
    if (lineno == 1) {
      if (n != strlen(MANIFEST_HEAD) || memcmp(p, MANIFEST_HEAD, n) != 0) {
        snprintf(err, err_len, "%s: line 1: expected \"%s\", found \"%s\"", where, MANIFEST_HEAD,
                 shown);
        goto fail;
      }
    } else if (n > 5 && memcmp(p, "step ", 5) == 0) {
      uint64_t v;
      if (m->step >= 0 || !parse_u64(p + 5, n - 5, &v) || v > INT64_MAX) {
        snprintf(err, err_len,
                 "%s: line %d: expected one \"step N\" with 0 <= N < 2^63, found "
                 "\"%s\"",
                 where, lineno, shown);
        goto fail;
      }
      m->step = (int64_t)v;
    } else if (n > 5 && memcmp(p, "file ", 5) == 0) {
      /* file NAME SIZE CRC32: split at the last two spaces (names never hold one) */
      const char *a = p + 5, *s2 = le, *s1;
      while (s2 > a && s2[-1] != ' ') s2--;
      s1 = s2 > a ? s2 - 1 : a;
      while (s1 > a && s1[-1] != ' ') s1--;
      size_t name_len = s1 > a ? (size_t)(s1 - 1 - a) : 0;
      ckpt_entry e = {0};
      bool ok = s1 > a && s2 > s1 && name_len > 0 && name_len < sizeof e.name &&
                parse_u64(s1, (size_t)(s2 - 1 - s1), &e.size) &&
                parse_crc(s2, (size_t)(le - s2), &e.crc);
      if (ok) {
        memcpy(e.name, a, name_len);
        e.name[name_len] = 0;
        ok = !strchr(e.name, '/') && !strchr(e.name, ' ') && strcmp(e.name, ".") &&
             strcmp(e.name, "..") && strcmp(e.name, MANIFEST);
      }
      if (!ok) {
        snprintf(err, err_len,
                 "%s: line %d: expected \"file NAME SIZE CRC32\" (a plain name, decimal size, 8 "
                 "hex digits), found \"%s\"",
                 where, lineno, shown);
        goto fail;
      }
      if (m->n_files == cap) {
        cap = cap ? cap * 2 : 8;
        ckpt_entry *nf = realloc(m->files, cap * sizeof *nf);
        if (!nf) {
          snprintf(err, err_len, "%s: out of memory", where);
          goto fail;
        }
        m->files = nf;
      }
      m->files[m->n_files++] = e;
    } else if (!(n == 0 && !nl)) { /* only the end of the last line may be empty */
      snprintf(err, err_len,
               "%s: line %d: expected \"step N\" or \"file NAME SIZE CRC32\", found "
               "\"%s\"",
               where, lineno, shown);
      goto fail;
    }
    p = nl ? nl + 1 : end;
  }
  if (lineno == 0) {
    snprintf(err, err_len, "%s: empty manifest", where);
    goto fail;
  }
  if (m->step < 0) {
    snprintf(err, err_len, "%s: no \"step N\" line", where);
    goto fail;
  }
  if (!m->n_files) {
    snprintf(err, err_len, "%s: the manifest lists no files", where);
    goto fail;
  }
  qsort(m->files, m->n_files, sizeof *m->files, cmp_entry);
  for (size_t i = 1; i < m->n_files; i++)
    if (!strcmp(m->files[i].name, m->files[i - 1].name)) {
      snprintf(err, err_len, "%s: %s is listed twice", where, m->files[i].name);
      goto fail;
    }
  return 0;
fail:
  ckpt_manifest_free(m);
  m->step = -1;
  return -1;
}

int ckpt_manifest_read(const char *dir, ckpt_manifest *m, char *err, size_t err_len) {
  char mpath[CKPT_PATH_MAX];
  snprintf(mpath, sizeof mpath, "%s/%s", dir, MANIFEST);
  memset(m, 0, sizeof *m);
  struct stat st;
  if (stat(mpath, &st) != 0) {
    snprintf(err, err_len, "%s: no %s manifest: the checkpoint was never completed", dir, MANIFEST);
    return -1;
  }
  size_t len;
  char *text = vt_read_regular(mpath, CKPT_MANIFEST_MAX, &len, err, err_len);
  if (!text) return -1;
  int rc = ckpt_manifest_parse(text, len, mpath, m, err, err_len);
  free(text);
  return rc;
}

/* The step a directory name says: step-NNNNNNNN (digits only); -1 for any other name. */
static int64_t dir_step(const char *dir) {
  const char *b = strrchr(dir, '/');
  b = b ? b + 1 : dir;
  uint64_t v;
  if (strncmp(b, "step-", 5) != 0 || !parse_u64(b + 5, strlen(b + 5), &v) || v > INT64_MAX)
    return -1;
  return (int64_t)v;
}

int ckpt_verify(const char *dir, char *err, size_t err_len) {
  ckpt_manifest m;
  if (ckpt_manifest_read(dir, &m, err, err_len)) return -1;
  int rc = -1, n_names = 0;
  char **names = NULL;
  int64_t ds = dir_step(dir);
  if (ds >= 0 && ds != m.step) {
    snprintf(err, err_len, "%s/%s: says step %lld, the directory is step %lld", dir, MANIFEST,
             (long long)m.step, (long long)ds);
    goto done;
  }
  /* every file of the directory is listed: an unlisted one would be trusted unchecked */
  names = list_dir(dir, &n_names);
  for (int i = 0; i < n_names; i++) {
    if (!strcmp(names[i], MANIFEST)) continue;
    ckpt_entry key = {0};
    snprintf(key.name, sizeof key.name, "%s", names[i]);
    if (!bsearch(&key, m.files, m.n_files, sizeof key, cmp_entry)) {
      snprintf(err, err_len, "%s/%s: not listed in the manifest: the checkpoint is corrupt", dir,
               names[i]);
      goto done;
    }
  }
  for (size_t i = 0; i < m.n_files; i++) {
    const ckpt_entry *e = &m.files[i];
    char p[CKPT_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, e->name);
    uint64_t got_size;
    uint32_t got_crc;
    struct stat st;
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size != e->size) {
      snprintf(err, err_len, "%s: %llu bytes, the manifest says %llu: the checkpoint is corrupt", p,
               (unsigned long long)st.st_size, (unsigned long long)e->size);
      goto done;
    }
    char why[CKPT_PATH_MAX + 64];
    if (file_crc(p, &got_size, &got_crc, why, sizeof why)) {
      snprintf(err, err_len, "listed in the manifest but unreadable: %s", why);
      goto done;
    }
    if (got_size != e->size || got_crc != e->crc) {
      snprintf(err, err_len,
               "%s: %llu bytes with CRC32 %08x, the manifest says %llu bytes "
               "with %08x: the checkpoint is corrupt",
               p, (unsigned long long)got_size, got_crc, (unsigned long long)e->size, e->crc);
      goto done;
    }
  }
  rc = 0;
done:
  free_list(names, n_names);
  ckpt_manifest_free(&m);
  return rc;
}

int ckpt_find_before(const char *root, int64_t before, char *dir, size_t dir_len, int64_t *step,
                     char *err, size_t err_len) {
  struct stat st;
  if (stat(root, &st) != 0) return 0; /* no checkpoints yet */
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, err_len, "%s: not a directory", root);
    return -1;
  }
  int n, found = 0;
  char **names = list_dir(root, &n);
  for (int i = n - 1; i >= 0 && !found; i--) {
    long long s;
    char tail[8];
    if (sscanf(names[i], "step-%lld%7s", &s, tail) != 1) continue; /* .tmp and strangers */
    if (s >= before) continue;
    char p[CKPT_PATH_MAX], why[1024];
    snprintf(p, sizeof p, "%s/%s", root, names[i]);
    if (ckpt_verify(p, why, sizeof why)) {
      fprintf(stderr, "warning: skipping checkpoint %s: %s\n", p, why);
      continue;
    }
    snprintf(dir, dir_len, "%s", p);
    *step = s;
    found = 1;
  }
  free_list(names, n);
  return found;
}

int ckpt_find_latest(const char *root, char *dir, size_t dir_len, int64_t *step, char *err,
                     size_t err_len) {
  return ckpt_find_before(root, INT64_MAX, dir, dir_len, step, err, err_len);
}

char *ckpt_read_text(const char *path, char *err, size_t err_len) {
  return vt_read_regular(path, CKPT_TEXT_MAX, NULL, err, err_len);
}

int ckpt_write_text(const char *path, const char *text, char *err, size_t err_len) {
  char tmp[CKPT_PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "wb");
  size_t len = strlen(text);
  if (!f || fwrite(text, 1, len, f) != len || fflush(f) || fsync(fileno(f))) {
    snprintf(err, err_len, "%s: cannot write: %s", tmp, strerror(errno));
    if (f) fclose(f);
    unlink(tmp);
    return -1;
  }
  fclose(f);
  if (rename(tmp, path)) {
    snprintf(err, err_len, "%s: cannot rename into place: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}
