// ctest-labels: unit
/* The typed JSON config getters every model uses (model/model_cfg.h): wrong types, missing
 * required fields, ranges and lists are refused with the field named; absent optional fields
 * leave the value alone. */
#include <string.h>

#include "model/model_cfg.h"
#include "tests/check.h"

static json_t *obj(const char *text) {
  json_error_t je;
  json_t *o = json_loads(text, 0, &je);
  CHECK_MSG(o != NULL, "%s", je.text);
  return o;
}

int main(void) {
  char err[256];
  json_t *o = obj("{\"n\": 12, \"s\": \"12\", \"f\": 1.5, \"b\": true, \"one\": 1, "
                  "\"l\": [3, 1, 4], \"bad\": [1, \"x\"]}");
  int64_t i = -7;
  CHECK(model_cfg_int(o, "cfg.json", "n", true, 1, 100, &i, err, sizeof err) == 0 && i == 12);
  CHECK(model_cfg_int(o, "cfg.json", "absent", false, 1, 100, &i, err, sizeof err) == 0 && i == 12);
  CHECK(model_cfg_int(o, "cfg.json", "absent", true, 1, 100, &i, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "cfg.json: field \"absent\": expected an integer, missing"), "%s", err);
  CHECK(model_cfg_int(o, "cfg.json", "s", true, 1, 100, &i, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "\"s\": expected an integer, found a string"), "%s", err);
  CHECK(model_cfg_int(o, "cfg.json", "n", true, 13, 100, &i, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "expected an integer in [13, 100], found 12"), "%s", err);
  CHECK(model_cfg_int(o, "cfg.json", "f", true, 1, 100, &i, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "found a fractional number"), "%s", err);

  double d = 0;
  CHECK(model_cfg_num(o, "c", "f", true, &d, err, sizeof err) == 0 && d == 1.5);
  CHECK(model_cfg_num(o, "c", "n", true, &d, err, sizeof err) == 0 && d == 12);
  CHECK(model_cfg_num(o, "c", "s", true, &d, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "\"s\": expected a number, found a string"), "%s", err);

  bool b = false;
  CHECK(model_cfg_bool(o, "c", "b", true, &b, err, sizeof err) == 0 && b);
  /* HF would read 1 as true; we refuse it rather than guess */
  CHECK(model_cfg_bool(o, "c", "one", false, &b, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "\"one\": expected true or false, found an integer"), "%s", err);

  int v[4], n = 0;
  CHECK(model_cfg_ints(o, "c", "l", true, 0, 9, v, 4, &n, err, sizeof err) == 0 && n == 3 &&
        v[0] == 3 && v[2] == 4);
  CHECK(model_cfg_ints(o, "c", "l", true, 0, 9, v, 2, &n, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "at most 2 integers, found a longer list"), "%s", err);
  CHECK(model_cfg_ints(o, "c", "l", true, 0, 3, v, 4, &n, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "element 2: expected an integer in [0, 3]"), "%s", err);
  CHECK(model_cfg_ints(o, "c", "bad", true, 0, 9, v, 4, &n, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "element 1"), "%s", err);
  json_decref(o);

  static const char *const types[] = {"qwen2", "vita-Qwen2", NULL};
  o = obj("{\"model_type\": \"vita-Qwen2\"}");
  CHECK(model_cfg_type(o, "c", types, err, sizeof err) == 0);
  json_decref(o);
  o = obj("{\"model_type\": \"llama\"}");
  CHECK(model_cfg_type(o, "c", types, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "expected \"qwen2\" or \"vita-Qwen2\", found \"llama\""), "%s", err);
  json_decref(o);
  o = obj("{}");
  CHECK(model_cfg_type(o, "c", types, err, sizeof err) == -1 && strstr(err, "found none"));
  json_decref(o);
  return vt_test_finish("test_model_cfg");
}
