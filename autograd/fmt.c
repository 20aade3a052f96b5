/* Text formatting; see fmt.h. */
#include "autograd/fmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vt_seterr(char *err, size_t len, const char *fmt, ...) {
  if (!err || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}

void vt_strbuf_addf(vt_strbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + (size_t)n + 1) cap *= 2;
    char *s = realloc(b->s, cap);
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

void vt_strbuf_give(const vt_strbuf *b, char *err, size_t err_len) {
  if (!err || !err_len) return;
  if (b->oom || !b->s) {
    vt_seterr(err, err_len, "out of memory building the error message");
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

void vt_strbuf_free(vt_strbuf *b) {
  free(b->s);
  *b = (vt_strbuf){0};
}

const char *vt_group_digits(int64_t v, char *buf, size_t len) {
  char digits[32];
  int n = snprintf(digits, sizeof digits, "%lld", (long long)v), o = 0;
  for (int i = 0; i < n && (size_t)o + 2 < len; i++) {
    if (i && (n - i) % 3 == 0 && digits[i - 1] != '-') buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}
