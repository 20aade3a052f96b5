/* data_seterr; see data_err.h. */
#include "data/data_err.h"

#include <stdarg.h>
#include <stdio.h>

void data_seterr(char *err, size_t len, const char *fmt, ...) {
  if (!err || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, len, fmt, ap);
  va_end(ap);
}
