/* Typed fields of a model's JSON config; see model_cfg.h. */
#include "model/model_cfg.h"

#include <math.h>
#include <string.h>

#include "autograd/fmt.h"

const char *model_cfg_type_name(const json_t *v) {
  switch (v ? json_typeof(v) : JSON_NULL) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "a list";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a fractional number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

/* The field, or NULL: *rc 0 when it may be absent, -1 (err filled) when it was required. */
static json_t *field(const json_t *o, const char *where, const char *key, bool required,
                     const char *expected, int *rc, char *err, size_t err_len) {
  json_t *v = json_object_get(o, key);
  *rc = 0;
  if (!v && required) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected %s, missing", where, key, expected);
    *rc = -1;
  }
  return v;
}

int model_cfg_int(const json_t *o, const char *where, const char *key, bool required, int64_t lo,
                  int64_t hi, int64_t *out, char *err, size_t err_len) {
  int rc;
  json_t *v = field(o, where, key, required, "an integer", &rc, err, err_len);
  if (!v) return rc;
  if (!json_is_integer(v)) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected an integer, found %s", where, key,
              model_cfg_type_name(v));
    return -1;
  }
  json_int_t x = json_integer_value(v);
  if (x < lo || x > hi) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected an integer in [%lld, %lld], found %lld",
              where, key, (long long)lo, (long long)hi, (long long)x);
    return -1;
  }
  *out = (int64_t)x;
  return 0;
}

int model_cfg_num(const json_t *o, const char *where, const char *key, bool required, double *out,
                  char *err, size_t err_len) {
  int rc;
  json_t *v = field(o, where, key, required, "a number", &rc, err, err_len);
  if (!v) return rc;
  if (!json_is_number(v)) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected a number, found %s", where, key,
              model_cfg_type_name(v));
    return -1;
  }
  double x = json_number_value(v);
  if (!isfinite(x)) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected a finite number, found %g", where, key, x);
    return -1;
  }
  *out = x;
  return 0;
}

int model_cfg_bool(const json_t *o, const char *where, const char *key, bool required, bool *out,
                   char *err, size_t err_len) {
  int rc;
  json_t *v = field(o, where, key, required, "true or false", &rc, err, err_len);
  if (!v) return rc;
  if (!json_is_boolean(v)) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected true or false, found %s", where, key,
              model_cfg_type_name(v));
    return -1;
  }
  *out = json_is_true(v);
  return 0;
}

int model_cfg_ints(const json_t *o, const char *where, const char *key, bool required, int64_t lo,
                   int64_t hi, int *out, int max, int *n, char *err, size_t err_len) {
  int rc;
  json_t *v = field(o, where, key, required, "a list of integers", &rc, err, err_len);
  if (!v) return rc;
  if (!json_is_array(v) || json_array_size(v) > (size_t)max) {
    vt_seterr(err, err_len, "%s: field \"%s\": expected a list of at most %d integers, found %s",
              where, key, max, json_is_array(v) ? "a longer list" : model_cfg_type_name(v));
    return -1;
  }
  size_t i;
  json_t *e;
  json_array_foreach(v, i, e) {
    if (!json_is_integer(e) || json_integer_value(e) < lo || json_integer_value(e) > hi) {
      vt_seterr(err, err_len, "%s: field \"%s\": element %zu: expected an integer in [%lld, %lld]",
                where, key, i, (long long)lo, (long long)hi);
      return -1;
    }
    out[i] = (int)json_integer_value(e);
  }
  *n = (int)json_array_size(v);
  return 0;
}

int model_cfg_type(const json_t *o, const char *where, const char *const *types, char *err,
                   size_t err_len) {
  const char *type = json_string_value(json_object_get(o, "model_type"));
  for (int i = 0; type && types[i]; i++)
    if (!strcmp(type, types[i])) return 0;
  vt_strbuf want = {0};
  for (int i = 0; types[i]; i++) vt_strbuf_addf(&want, "%s\"%s\"", i ? " or " : "", types[i]);
  vt_seterr(err, err_len, "%s: field \"model_type\": expected %s, found %s%s%s", where,
            want.s ? want.s : "?", type ? "\"" : "", type ? type : "none", type ? "\"" : "");
  vt_strbuf_free(&want);
  return -1;
}
