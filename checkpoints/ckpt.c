/* Checkpoint directories with a CRC32 manifest; see ckpt.h. */
/* nftw is an X/Open interface */
#define _XOPEN_SOURCE 700
#include "checkpoints/ckpt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

/* Size and CRC32 of a file. */
static int file_crc(const char *path, uint64_t *size, uint32_t *crc) {
  FILE *f = fopen(path, "rb");
  if (!f) return -1;
  static const size_t chunk = 1 << 20;
  unsigned char *buf = malloc(chunk);
  if (!buf) {
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
  int rc = ferror(f) ? -1 : 0;
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
    if (!strcmp(names[i], MANIFEST) || fsync_path(p, O_RDONLY) || file_crc(p, &size, &crc)) {
      snprintf(err, err_len, "%s: cannot sync or read it back: %s", p, strerror(errno));
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

int ckpt_verify(const char *dir, char *err, size_t err_len) {
  char mpath[CKPT_PATH_MAX];
  snprintf(mpath, sizeof mpath, "%s/%s", dir, MANIFEST);
  char *text = ckpt_read_text(mpath, err, err_len);
  if (!text) {
    snprintf(err, err_len, "%s: no %s manifest: the checkpoint was never completed", dir, MANIFEST);
    return -1;
  }
  int rc = -1, files = 0;
  char *save = NULL;
  char *line = strtok_r(text, "\n", &save);
  if (!line || strcmp(line, MANIFEST_HEAD) != 0) {
    snprintf(err, err_len, "%s: line 1: expected \"%s\"", mpath, MANIFEST_HEAD);
    goto done;
  }
  int lineno = 1;
  while ((line = strtok_r(NULL, "\n", &save))) {
    lineno++;
    char name[1024];
    unsigned long long size;
    unsigned crc;
    long long step;
    if (sscanf(line, "step %lld", &step) == 1) continue;
    if (sscanf(line, "file %1023s %llu %x", name, &size, &crc) != 3 || strchr(name, '/')) {
      snprintf(err, err_len, "%s: line %d: expected \"file NAME SIZE CRC32\", found \"%.80s\"",
               mpath, lineno, line);
      goto done;
    }
    char p[CKPT_PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    uint64_t got_size;
    uint32_t got_crc;
    if (file_crc(p, &got_size, &got_crc)) {
      snprintf(err, err_len, "%s: listed in the manifest but cannot be read: %s", p,
               strerror(errno));
      goto done;
    }
    if (got_size != size || got_crc != crc) {
      snprintf(err, err_len,
               "%s: %llu bytes with CRC32 %08x, the manifest says %llu bytes "
               "with %08x: the checkpoint is corrupt",
               p, (unsigned long long)got_size, got_crc, size, crc);
      goto done;
    }
    files++;
  }
  if (!files) {
    snprintf(err, err_len, "%s: the manifest lists no files", mpath);
    goto done;
  }
  rc = 0;
done:
  free(text);
  return rc;
}

int ckpt_find_latest(const char *root, char *dir, size_t dir_len, int64_t *step, char *err,
                     size_t err_len) {
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

char *ckpt_read_text(const char *path, char *err, size_t err_len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += got;
    if (n + 1 == cap) {
      char *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(f);
  if (!buf) {
    snprintf(err, err_len, "%s: out of memory", path);
    return NULL;
  }
  buf[n] = '\0';
  return buf;
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
