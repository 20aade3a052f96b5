/* Text formatting shared by every layer: the one error-message formatter (library code fills a
 * caller's buffer, never prints or exits), a growing string for lists of problems, and numbers
 * shown to people. Lives at the bottom of the tree so every layer reports the same way. */
#ifndef VT_FMT_H
#define VT_FMT_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define VT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VT_PRINTF(a, b)
#endif

/* printf into err[len] (nothing when err is NULL or len 0). */
VT_PRINTF(3, 4) void vt_seterr(char *err, size_t len, const char *fmt, ...);

/* A growing NUL-terminated string; on allocation failure it stops growing (oom set). */
typedef struct {
  char *s;
  size_t len, cap;
  int oom;
} vt_strbuf;

VT_PRINTF(2, 3) void vt_strbuf_addf(vt_strbuf *b, const char *fmt, ...);
/* Copies b into err, cutting it to fit with a note saying so. */
void vt_strbuf_give(const vt_strbuf *b, char *err, size_t err_len);
void vt_strbuf_free(vt_strbuf *b);

/* 7615616512 -> "7,615,616,512" into buf; returns buf. For counts shown to people. */
const char *vt_group_digits(int64_t v, char *buf, size_t len);

#endif
