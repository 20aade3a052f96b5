/* Opening input files that must be regular files: a FIFO, a device or a directory where a
 * file is expected would hang or read forever, so it is refused with "not a regular file"
 * before any read. One helper for every layer's readers (configs, JSON, shards, manifests). */
#ifndef VT_REGFILE_H
#define VT_REGFILE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Opens path read-only. Returns a file descriptor (blocking mode), or -1 with err naming the
 * path and the reason ("not a regular file", or the system's). *size (may be NULL) gets the
 * file's size. Never blocks on a FIFO. */
int vt_open_regular(const char *path, int64_t *size, char *err, size_t err_len);
/* The same as a stdio stream ("rb"). */
FILE *vt_fopen_regular(const char *path, int64_t *size, char *err, size_t err_len);
/* Reads the whole file (at most max_bytes, else an error naming the limit) into a malloc'd
 * NUL-terminated buffer the caller frees; *len (may be NULL) gets its length. */
char *vt_read_regular(const char *path, size_t max_bytes, size_t *len, char *err, size_t err_len);

#endif
