/* See qwen2_config.h. */
#include "tests/qwen2_config.h"

#include <stdio.h>

int hf_qwen2_config_read(const char *path, qwen2_cfg *cfg, char *err, size_t err_len) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  if (!j) {
    snprintf(err, err_len, "%s: line %d: %s", path, je.line, je.text);
    return -1;
  }
  int rc = qwen2_cfg_from_json(j, path, cfg, err, err_len);
  json_decref(j);
  return rc;
}
