// ctest-labels: unit
/* HF config.json values of the wrong type or size (the tiny fixture's config, one field
 * changed at a time): booleans that are not JSON booleans, an activation that is not a
 * string, impossible lengths and sizes whose products would overflow are refused with the
 * field named; a key given twice, and a FIFO, are refused by the stage's JSON reader. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/qwen2_model.h"
#include "stages/stage_model.h"
#include "tests/testutil.h"

static json_t *base;

static void refused(const char *key, json_t *value, const char *want) {
  json_t *j = json_deep_copy(base);
  json_object_set_new(j, key, value);
  qwen2_cfg cfg;
  char err[512] = "";
  CHECK_MSG(qwen2_cfg_from_json(j, "config.json", &cfg, err, sizeof err) == -1, "%s accepted", key);
  CHECK_MSG(strstr(err, want), "%s: \"%s\" lacks \"%s\"", key, err, want);
  json_decref(j);
}

int main(void) {
  char path[1024], err[512];
  snprintf(path, sizeof path, "%s/qwen2_tiny/config.json", getenv("VT_FIXTURES"));
  base = json_load_file(path, 0, NULL);
  CHECK(base != NULL);
  if (!base) return vt_test_finish("test_hf_config_hostile");
  qwen2_cfg cfg;
  CHECK_MSG(qwen2_cfg_from_json(base, path, &cfg, err, sizeof err) == 0, "%s", err);
  refused("tie_word_embeddings", json_integer(1),
          "\"tie_word_embeddings\": expected true or false");
  refused("use_sliding_window", json_string("true"), "\"use_sliding_window\": expected true");
  refused("hidden_act", json_integer(5), "\"hidden_act\": expected a string");
  refused("max_position_embeddings", json_integer(0), "\"max_position_embeddings\": expected");
  refused("max_position_embeddings", json_integer(-1), "found -1");
  refused("vocab_size", json_integer(INT64_C(1) << 62), "vocab_size must be in [1, 2147483647]");
  refused("hidden_size", json_integer(INT64_C(1) << 32), "hidden_size must be in [1, 1048576]");
  /* the stage's reader: a duplicate key and a FIFO */
  char dir[] = "/tmp/vt_hfcfg_XXXXXX", p[256];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(p, sizeof p, "%s/config.json", dir);
  FILE *f = fopen(p, "w");
  fputs("{\"model_type\": \"qwen2\", \"vocab_size\": 96, \"vocab_size\": 97}", f);
  fclose(f);
  CHECK(stage_read_json(p, NULL, 0, err, sizeof err) == NULL);
  CHECK_MSG(strstr(err, "duplicate object key"), "%s", err);
  unlink(p);
  CHECK(mkfifo(p, 0600) == 0);
  CHECK(stage_read_json(dir, NULL, 0, err, sizeof err) == NULL);
  CHECK_MSG(strstr(err, "not a regular file"), "%s", err);
  unlink(p);
  rmdir(dir);
  json_decref(base);
  return vt_test_finish("test_hf_config_hostile");
}
