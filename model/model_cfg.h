/* Typed fields of a model's JSON config: one set of getters for every model behind the
 * interface, so each reports a wrong type, a missing field or an out-of-range value the same
 * way ("WHERE: field "KEY": expected ..., found ..."). model/ reads no files: the caller hands
 * over the parsed object and says where it came from. */
#ifndef VT_MODEL_CFG_H
#define VT_MODEL_CFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Each returns 0 (an absent optional field leaves *out as it was), or -1 with err filled. */
int model_cfg_int(const json_t *o, const char *where, const char *key, bool required, int64_t lo,
                  int64_t hi, int64_t *out, char *err, size_t err_len);
/* A finite number (an integer is a number too). */
int model_cfg_num(const json_t *o, const char *where, const char *key, bool required, double *out,
                  char *err, size_t err_len);
/* true or false only: 1 and "true" are type errors, not silently false. */
int model_cfg_bool(const json_t *o, const char *where, const char *key, bool required, bool *out,
                   char *err, size_t err_len);
/* A list of at most max integers in [lo, hi]; *n gets the count. */
int model_cfg_ints(const json_t *o, const char *where, const char *key, bool required, int64_t lo,
                   int64_t hi, int *out, int max, int *n, char *err, size_t err_len);

/* The config's model_type is one of types (NULL-terminated), or -1 naming what was found. */
int model_cfg_type(const json_t *o, const char *where, const char *const *types, char *err,
                   size_t err_len);

/* "a string", "an integer", ... for messages. */
const char *model_cfg_type_name(const json_t *v);

#endif
