/* Helpers shared by the safetensors tests: a scratch directory removed at exit, whole-file
 * reads into exactly-sized buffers (so ASan sees any overread), and fixture paths. */
#ifndef VT_TEST_SAFETENSORS_UTIL_H
#define VT_TEST_SAFETENSORS_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char st_test_dir[256];

static inline void st_test_rm_rf(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      size_t n = strlen(path) + strlen(e->d_name) + 2;
      char *sub = (char *)malloc(n);
      if (!sub) continue;
      snprintf(sub, n, "%s/%s", path, e->d_name);
      st_test_rm_rf(sub);
      free(sub);
    }
    if (d) closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* VT_ST_KEEP=1 keeps the directory (and prints it), e.g. to refresh
 * fixtures/safetensors/ours_given_order.safetensors from what the writer produces. */
static inline void st_test_cleanup(void) {
  if (!st_test_dir[0]) return;
  if (getenv("VT_ST_KEEP"))
    printf("kept %s\n", st_test_dir);
  else
    st_test_rm_rf(st_test_dir);
}

/* Creates the scratch directory once; returns "DIR/name" in a static rotating buffer. */
static inline const char *st_tmp(const char *name) {
  static char bufs[8][512];
  static int at;
  if (!st_test_dir[0]) {
    snprintf(st_test_dir, sizeof st_test_dir, "/tmp/vt_st_XXXXXX");
    if (!mkdtemp(st_test_dir)) {
      perror("mkdtemp");
      exit(1);
    }
    atexit(st_test_cleanup);
  }
  char *b = bufs[at++ % 8];
  snprintf(b, 512, "%s/%s", st_test_dir, name);
  return b;
}

/* "$VT_FIXTURES/safetensors/name" in a static rotating buffer. */
static inline const char *st_fixture(const char *name) {
  static char bufs[4][1024];
  static int at;
  const char *root = getenv("VT_FIXTURES");
  char *b = bufs[at++ % 4];
  snprintf(b, 1024, "%s/safetensors/%s", root ? root : "tests/fixtures", name);
  return b;
}

/* The whole file in a malloc'd buffer of exactly its size (1 byte for an empty file). */
static inline unsigned char *st_read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = (unsigned char *)malloc(n > 0 ? (size_t)n : 1);
  if (b && n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  *len = (size_t)n;
  return b;
}

static inline bool st_same_file(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  unsigned char *x = st_read_all(a, &la), *y = st_read_all(b, &lb);
  bool same = x && y && la == lb && memcmp(x, y, la) == 0;
  if (!same) fprintf(stderr, "  %s (%zu bytes) differs from %s (%zu bytes)\n", a, la, b, lb);
  free(x);
  free(y);
  return same;
}

#endif
