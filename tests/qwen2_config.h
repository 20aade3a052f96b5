/* Tests that build a Qwen2 directly read its HF config.json with this (the library's model
 * layer reads no files; the model interface takes a JSON object). */
#ifndef VT_TESTS_QWEN2_CONFIG_H
#define VT_TESTS_QWEN2_CONFIG_H

#include "model/qwen2_model.h"

/* Returns 0, or -1 with a message naming the file and the field. */
int hf_qwen2_config_read(const char *path, qwen2_cfg *cfg, char *err, size_t err_len);

#endif
