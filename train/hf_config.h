/* Reading a HF transformers config.json into a qwen2_cfg (and writing one back for export).
 * Accepts model_type "qwen2" and VITA's "vita-Qwen2"; rope_theta may sit at the top level or
 * inside rope_parameters (transformers 5). */
#ifndef VT_HF_CONFIG_H
#define VT_HF_CONFIG_H

#include <stddef.h>

#include "model/qwen2.h"

/* Returns 0, or -1 with a message naming the file and the field. */
int hf_qwen2_config_read(const char *path, qwen2_cfg *cfg, char *err, size_t err_len);
/* Writes a config.json that HF transformers loads as Qwen2ForCausalLM (atomically). */
int hf_qwen2_config_write(const char *path, const qwen2_cfg *cfg, char *err, size_t err_len);

#endif
