/* The audio encoder + adapter JSON config shared by the "audio_ctc" model (its whole config) and
 * the "vita" model (its "audio_config" object): n_mels, hidden_size, num_attention_heads,
 * intermediate_size, num_hidden_layers, max_positions, chunk_mode (full | static | dynamic),
 * chunk_size, left_chunks, dropout, norm_eps, ctc_vocab, llm_hidden_size, audio_prompt_num,
 * word_sep_id, over the full-size VITA-1.5 defaults. */
#ifndef VT_AUDIO_CFG_H
#define VT_AUDIO_CFG_H

#include <jansson.h>

#include "model/audio_adapter.h"
#include "model/audio_enc.h"

/* Reads o into c and a (a->llm_dim 0 unless llm_hidden_size is given); *word_sep -1 unless
 * word_sep_id is given. An unknown field, a wrong type or an out-of-range value is -1 with err
 * naming `where` and the field. */
int audio_enc_cfg_from_json(const json_t *o, const char *where, audio_enc_cfg *c,
                            audio_adapter_cfg *a, int64_t *word_sep, char *err, size_t err_len);
/* The fields of c (and of a when a is not NULL; word_sep when >= 0) as a new JSON object. */
json_t *audio_enc_cfg_to_json(const audio_enc_cfg *c, const audio_adapter_cfg *a, int64_t word_sep);

#endif
