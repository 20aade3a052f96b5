/* Qwen2 behind the model interface (registered as "qwen2"): the HF config.json fields it
 * reads and writes, public for tools and tests that build a qwen2 directly. */
#ifndef VT_QWEN2_MODEL_H
#define VT_QWEN2_MODEL_H

#include <jansson.h>

#include "model/model.h"
#include "model/qwen2.h"

/* HF transformers' Qwen2Config fields of config (model_type "qwen2" or VITA's "vita-Qwen2";
 * rope_theta at the top level or inside rope_parameters) into cfg. Returns 0, or -1 with a
 * message naming `where` (the file) and the field. */
int qwen2_cfg_from_json(const json_t *config, const char *where, qwen2_cfg *cfg, char *err,
                        size_t err_len);
/* A config.json that HF transformers loads as Qwen2ForCausalLM. New reference. */
json_t *qwen2_cfg_to_json(const qwen2_cfg *cfg);

/* Source tensors of a HF checkpoint that HF's Qwen2ForCausalLM ignores on load (the rotary
 * inv_freq buffers, a tied model's lm_head): the hf_ignored of every model around Qwen2. */
bool qwen2_hf_ignored(const qwen2_cfg *cfg, const char *tensor_name);

extern const vt_model_ops qwen2_model_ops;

#endif
