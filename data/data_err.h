/* Error messages of the data layer: every function that can fail on bad input fills a
 * caller's buffer (err, err_len) with a message naming the file, the field and what was
 * expected. data_seterr is the one printf-style writer of such a buffer (NULL is allowed). */
#ifndef VT_DATA_ERR_H
#define VT_DATA_ERR_H

#include <stddef.h>

void data_seterr(char *err, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
