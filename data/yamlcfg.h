/* Small helpers over libyaml's document API for the data configs (prep and mixtures):
 * load a file, look up mapping keys, refuse unknown keys, read typed scalars. Every error
 * names the file, the line and the key. */
#ifndef VT_DATA_YAMLCFG_H
#define VT_DATA_YAMLCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

typedef struct {
  yaml_document_t doc;
  char path[4096];
  char dir[4096]; /* directory of the file, for resolving relative paths */
  bool loaded;
} ycfg;

/* Loads path (a regular file of at most 16 MiB). A key given twice in one mapping, nesting
 * deeper than 64 levels and NUL bytes are errors. Returns 0, or -1 with err naming the file
 * and line. */
int ycfg_load(ycfg *c, const char *path, char *err, size_t err_len);
/* The same from memory; name stands for the file in messages and relative paths. */
int ycfg_load_mem(ycfg *c, const char *name, const char *buf, size_t len, char *err,
                  size_t err_len);
void ycfg_free(ycfg *c);
yaml_node_t *ycfg_root(ycfg *c); /* NULL for an empty document */

/* Value of key in a mapping node, NULL when absent (or node is not a mapping). */
yaml_node_t *ycfg_get(ycfg *c, yaml_node_t *map, const char *key);
/* -1 unless node is a mapping whose keys are all in allowed (NULL-terminated); the message
 * names the unknown key, the file, its line and `where` (e.g. "sets.demo"). */
int ycfg_check_keys(ycfg *c, yaml_node_t *map, const char *const *allowed, const char *where,
                    char *err, size_t err_len);
/* Typed scalars; -1 with "file:line: key: expected ..., found ..." otherwise. Numbers and
 * booleans must be plain (unquoted) scalars; an integer outside int64, and a float that is not
 * finite (inf, nan, 1e400), are errors. */
int ycfg_str(ycfg *c, yaml_node_t *n, const char *key, const char **out, char *err, size_t err_len);
int ycfg_int(ycfg *c, yaml_node_t *n, const char *key, long long *out, char *err, size_t err_len);
/* ycfg_int limited to [lo, hi]; the message gives the range. */
int ycfg_int_range(ycfg *c, yaml_node_t *n, const char *key, long long lo, long long hi,
                   long long *out, char *err, size_t err_len);
int ycfg_float(ycfg *c, yaml_node_t *n, const char *key, double *out, char *err, size_t err_len);
int ycfg_bool(ycfg *c, yaml_node_t *n, const char *key, bool *out, char *err, size_t err_len);
/* Resolves a path from the config: absolute stays, relative is taken from the file's dir.
 * Writes into out (out_len bytes). */
void ycfg_resolve(const ycfg *c, const char *p, char *out, size_t out_len);

#endif
