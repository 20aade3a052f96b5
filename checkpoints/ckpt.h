/* Training checkpoints on disk: ROOT/step-00000123/ holds whatever files the trainer writes
 * (weights, optimizer moments, trainer state) plus a COMPLETE manifest listing every file with
 * its size and CRC32. A checkpoint is built in step-00000123.tmp/, each file fsync'd, the
 * manifest written last, then the directory renamed, so a crash never leaves a directory
 * that looks complete. Loading verifies the manifest and refuses a broken checkpoint. */
#ifndef VT_CKPT_H
#define VT_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CKPT_PATH_MAX 4096

typedef struct {
  char root[CKPT_PATH_MAX];
  char tmp[CKPT_PATH_MAX];   /* the directory being written */
  char final[CKPT_PATH_MAX]; /* where it goes on commit */
  int64_t step;
} ckpt_writer;

/* Creates ROOT (if needed) and a fresh ROOT/step-NNNNNNNN.tmp/ (removing a stale one). The
 * caller writes its files into w->tmp. Returns 0 or -1 with err. */
int ckpt_begin(ckpt_writer *w, const char *root, int64_t step, char *err, size_t err_len);
/* fsyncs every file in w->tmp, writes the manifest, renames the directory to w->final
 * (replacing an older checkpoint of the same step), fsyncs ROOT, then removes all but the
 * newest keep_last complete checkpoints (keep_last <= 0 keeps all). Returns 0 or -1. */
int ckpt_commit(ckpt_writer *w, int keep_last, char *err, size_t err_len);
/* Removes w->tmp after a failed write. */
void ckpt_abort(ckpt_writer *w);

/* The newest complete checkpoint under root (directories without a valid manifest, and .tmp
 * ones, are skipped with a warning on stderr). Returns 1 and fills dir/step when found, 0
 * when there is none, -1 on an error reading root. */
int ckpt_find_latest(const char *root, char *dir, size_t dir_len, int64_t *step, char *err,
                     size_t err_len);
/* The same among the checkpoints of steps below `before` (the fallback when the newest one
 * turns out unusable). */
int ckpt_find_before(const char *root, int64_t before, char *dir, size_t dir_len, int64_t *step,
                     char *err, size_t err_len);
/* Checks dir's manifest: its step is the directory's (step-N), every file of the directory
 * is listed, every listed file is a regular file with the listed size and CRC32. Returns 0,
 * or -1 naming the file and what differs. */
int ckpt_verify(const char *dir, char *err, size_t err_len);

/* The manifest (COMPLETE) as parsed: "vita-train checkpoint v1", one "step N", and lines
 * "file NAME SIZE CRC32" (plain names, no duplicates; sorted by name here). */
typedef struct {
  char name[256];
  uint64_t size;
  uint32_t crc;
} ckpt_entry;

typedef struct {
  int64_t step;
  ckpt_entry *files;
  size_t n_files;
} ckpt_manifest;

#define CKPT_MANIFEST_MAX (16u << 20) /* bytes a manifest may have */
#define CKPT_TEXT_MAX (64u << 20)     /* bytes ckpt_read_text reads at most */

/* Parses len bytes of manifest text (where names it in messages). Returns 0, or -1 with err
 * naming the line; ckpt_manifest_free releases m either way. */
int ckpt_manifest_parse(const char *text, size_t len, const char *where, ckpt_manifest *m,
                        char *err, size_t err_len);
/* Reads and parses dir/COMPLETE (a regular file of at most CKPT_MANIFEST_MAX bytes). */
int ckpt_manifest_read(const char *dir, ckpt_manifest *m, char *err, size_t err_len);
void ckpt_manifest_free(ckpt_manifest *m);

/* rm -r (files, links and directories, depth first, never following links). Returns 0, or
 * -1 with err naming what could not be removed; a missing path is not an error. */
int ckpt_remove_tree(const char *path, char *err, size_t err_len);
/* mkdir -p. Returns 0 or -1 with err. */
int ckpt_mkdirs(const char *path, char *err, size_t err_len);

/* Whole small files (trainer state JSON): read into a malloc'd NUL-terminated buffer the
 * caller frees (a regular file of at most CKPT_TEXT_MAX bytes), and written atomically (tmp,
 * fsync, rename). */
char *ckpt_read_text(const char *path, char *err, size_t err_len);
int ckpt_write_text(const char *path, const char *text, char *err, size_t err_len);

#endif
