/* vt_open_regular and friends; see regfile.h. */
#include "autograd/regfile.h"

#include "autograd/fmt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* path and the system's reason, the form every open failure takes */
#define OPEN_FAIL(err, len, path, why) vt_seterr(err, len, "%s: cannot open: %s", path, why)

int vt_open_regular(const char *path, int64_t *size, char *err, size_t err_len) {
  /* O_NONBLOCK so that opening a FIFO without a writer returns at once; fstat then decides */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    OPEN_FAIL(err, err_len, path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    OPEN_FAIL(err, err_len, path, strerror(errno));
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode)) {
    OPEN_FAIL(err, err_len, path,
              S_ISDIR(st.st_mode) ? "not a regular file (a directory)" : "not a regular file");
    close(fd);
    return -1;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  if (size) *size = (int64_t)st.st_size;
  return fd;
}

FILE *vt_fopen_regular(const char *path, int64_t *size, char *err, size_t err_len) {
  int fd = vt_open_regular(path, size, err, err_len);
  if (fd < 0) return NULL;
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    OPEN_FAIL(err, err_len, path, strerror(errno));
    close(fd);
  }
  return f;
}

char *vt_read_regular(const char *path, size_t max_bytes, size_t *len, char *err, size_t err_len) {
  int64_t size = 0;
  int fd = vt_open_regular(path, &size, err, err_len);
  if (fd < 0) return NULL;
  if ((uint64_t)size > max_bytes) {
    if (err && err_len)
      snprintf(err, err_len, "%s: %lld bytes, more than the %zu this file may have", path,
               (long long)size, max_bytes);
    close(fd);
    return NULL;
  }
  /* read up to max_bytes + 1 whatever stat said: the file may grow between the two */
  size_t cap = (size_t)size + 1, n = 0;
  char *buf = malloc(cap + 1);
  while (buf) {
    if (n == cap) {
      if (cap > max_bytes) break;
      size_t nc = cap * 2 > max_bytes + 1 ? max_bytes + 1 : cap * 2;
      char *nb = realloc(buf, nc + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
      cap = nc;
    }
    ssize_t got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      if (err && err_len) snprintf(err, err_len, "%s: cannot read: %s", path, strerror(errno));
      free(buf);
      close(fd);
      return NULL;
    }
    if (got == 0) break;
    n += (size_t)got;
  }
  close(fd);
  if (!buf) {
    if (err && err_len)
      snprintf(err, err_len, "%s: out of memory for %lld bytes", path, (long long)size);
    return NULL;
  }
  if (n > max_bytes) {
    if (err && err_len)
      snprintf(err, err_len, "%s: more than the %zu bytes this file may have", path, max_bytes);
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}
