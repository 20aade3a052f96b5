/* Small helpers shared by the checkpoints files and train/hf_io.c: error formatting into a
 * caller's buffer and a growing string for lists of problems. Not a public API. */
#ifndef VT_ST_INTERNAL_H
#define VT_ST_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define ST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ST_PRINTF(a, b)
#endif

static inline ST_PRINTF(3, 4) void st_seterr(char *err, size_t len, const char *fmt, ...) {
  if (!err || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

/* A growing NUL-terminated string; on allocation failure it stops growing (oom set). */
typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} st_str;

static inline ST_PRINTF(2, 3) void st_str_addf(st_str *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + (size_t)n + 1) cap *= 2;
    char *s = (char *)realloc(b->s, cap);
    if (!s) {
      b->oom = 1;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* Copies b into err, cutting it to fit with a note saying so. */
static inline void st_str_give(const st_str *b, char *err, size_t err_len) {
  if (!err || !err_len) return;
  if (b->oom || !b->s) {
    st_seterr(err, err_len, "out of memory building the error message");
    return;
  }
  if (b->len < err_len) {
    memcpy(err, b->s, b->len + 1);
    return;
  }
  const char *tail = " ... (truncated)";
  size_t keep = err_len > strlen(tail) + 1 ? err_len - strlen(tail) - 1 : 0;
  memcpy(err, b->s, keep);
  snprintf(err + keep, err_len - keep, "%s", tail);
}

#endif
