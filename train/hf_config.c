/* HF config.json for Qwen2; see hf_config.h. */
#include "train/hf_config.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int get_int(json_t *root, const char *path, const char *key, int64_t *out, char *err,
                   size_t err_len) {
  json_t *v = json_object_get(root, key);
  if (!json_is_integer(v)) {
    snprintf(err, err_len, "%s: field \"%s\": expected an integer, %s", path, key,
             v ? "found another type" : "missing");
    return -1;
  }
  *out = json_integer_value(v);
  return 0;
}

static int get_num(json_t *root, const char *path, const char *key, double *out, bool required,
                   char *err, size_t err_len) {
  json_t *v = json_object_get(root, key);
  if (!v && !required) return 0;
  if (!json_is_number(v)) {
    snprintf(err, err_len, "%s: field \"%s\": expected a number, %s", path, key,
             v ? "found another type" : "missing");
    return -1;
  }
  *out = json_number_value(v);
  return 0;
}

int hf_qwen2_config_read(const char *path, qwen2_cfg *cfg, char *err, size_t err_len) {
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root) {
    snprintf(err, err_len, "%s: line %d: %s", path, je.line, je.text);
    return -1;
  }
  int rc = -1;
  memset(cfg, 0, sizeof *cfg);
  *cfg = qwen2_cfg_7b(); /* defaults for optional fields */
  if (!json_is_object(root)) {
    snprintf(err, err_len, "%s: expected a JSON object", path);
    goto done;
  }
  const char *type = json_string_value(json_object_get(root, "model_type"));
  if (!type || (strcmp(type, "qwen2") != 0 && strcmp(type, "vita-Qwen2") != 0)) {
    snprintf(err, err_len, "%s: field \"model_type\": expected \"qwen2\", found %s%s%s", path,
             type ? "\"" : "", type ? type : "none", type ? "\"" : "");
    goto done;
  }
  if (get_int(root, path, "vocab_size", &cfg->vocab_size, err, err_len) ||
      get_int(root, path, "hidden_size", &cfg->hidden_size, err, err_len) ||
      get_int(root, path, "intermediate_size", &cfg->intermediate_size, err, err_len) ||
      get_int(root, path, "num_hidden_layers", &cfg->num_hidden_layers, err, err_len) ||
      get_int(root, path, "num_attention_heads", &cfg->num_attention_heads, err, err_len))
    goto done;
  cfg->num_key_value_heads = cfg->num_attention_heads;
  if (json_object_get(root, "num_key_value_heads") &&
      get_int(root, path, "num_key_value_heads", &cfg->num_key_value_heads, err, err_len))
    goto done;
  if (json_object_get(root, "max_position_embeddings") &&
      get_int(root, path, "max_position_embeddings", &cfg->max_position_embeddings, err, err_len))
    goto done;
  if (get_num(root, path, "rms_norm_eps", &cfg->rms_norm_eps, true, err, err_len) ||
      get_num(root, path, "initializer_range", &cfg->initializer_range, false, err, err_len))
    goto done;
  json_t *rope = json_object_get(root, "rope_parameters");
  if (json_object_get(root, "rope_theta")) {
    if (get_num(root, path, "rope_theta", &cfg->rope_theta, true, err, err_len)) goto done;
  } else if (json_is_object(rope)) {
    if (get_num(rope, path, "rope_theta", &cfg->rope_theta, true, err, err_len)) goto done;
    const char *rt = json_string_value(json_object_get(rope, "rope_type"));
    if (rt && strcmp(rt, "default") != 0) {
      snprintf(err, err_len,
               "%s: field \"rope_parameters.rope_type\": only \"default\" is "
               "supported, found \"%s\"",
               path, rt);
      goto done;
    }
  }
  json_t *tie = json_object_get(root, "tie_word_embeddings");
  cfg->tie_word_embeddings = json_is_true(tie);
  const char *act = json_string_value(json_object_get(root, "hidden_act"));
  if (act && strcmp(act, "silu") != 0) {
    snprintf(err, err_len, "%s: field \"hidden_act\": expected \"silu\", found \"%s\"", path, act);
    goto done;
  }
  if (json_is_true(json_object_get(root, "use_sliding_window"))) {
    snprintf(err, err_len,
             "%s: field \"use_sliding_window\": sliding-window attention is not "
             "supported",
             path);
    goto done;
  }
  char why[256];
  if (qwen2_cfg_check(cfg, why, sizeof why)) {
    snprintf(err, err_len, "%s: %s", path, why);
    goto done;
  }
  rc = 0;
done:
  json_decref(root);
  return rc;
}

int hf_qwen2_config_write(const char *path, const qwen2_cfg *c, char *err, size_t err_len) {
  json_t *root = json_pack(
      "{s:[s], s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:b, s:f, s:b, s:s, "
      "s:b, s:n}",
      "architectures", "Qwen2ForCausalLM", "model_type", "qwen2", "hidden_act", "silu",
      "vocab_size", (json_int_t)c->vocab_size, "hidden_size", (json_int_t)c->hidden_size,
      "intermediate_size", (json_int_t)c->intermediate_size, "num_hidden_layers",
      (json_int_t)c->num_hidden_layers, "num_attention_heads", (json_int_t)c->num_attention_heads,
      "num_key_value_heads", (json_int_t)c->num_key_value_heads, "max_position_embeddings",
      (json_int_t)c->max_position_embeddings, "rope_theta", c->rope_theta, "rms_norm_eps",
      c->rms_norm_eps, "initializer_range", c->initializer_range, "tie_word_embeddings",
      (int)c->tie_word_embeddings, "attention_dropout", 0.0, "use_sliding_window", 0, "torch_dtype",
      "bfloat16", "use_cache", 1, "sliding_window");
  if (!root) {
    snprintf(err, err_len, "%s: cannot build the config JSON", path);
    return -1;
  }
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(root);
  if (rc || rename(tmp, path)) {
    snprintf(err, err_len, "%s: cannot write the config", path);
    unlink(tmp);
    return -1;
  }
  return 0;
}
