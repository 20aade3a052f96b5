/* Inference of the speech decoder (model/tts.h): codec ids for a text, token by token (the AR
 * stack rerun over the growing prefix; no KV cache, which VITA-1.5's decoder does not need at
 * these lengths), greedy or top-k sampling with a temperature, stopped at EOS or a length cap.
 * tts_model_decoder gives the decoder inside a "tts_decoder" model made by the registry. */
#ifndef VT_TTS_GENERATE_H
#define VT_TTS_GENERATE_H

#include <stdbool.h>

#include "model/model.h"
#include "model/tts.h"

typedef struct {
  int top_k;          /* 0 or 1: greedy (argmax); k > 1: sample among the k likeliest */
  float temperature;  /* > 0; logits are divided by it before sampling */
  int64_t max_tokens; /* stop after this many codec ids when no EOS came */
  vt_rng *rng;        /* draws of top-k sampling (unused when greedy) */
} tts_gen_opts;

/* The decoder of a model made by the "tts_decoder" ops, or NULL for another model. */
tts *tts_model_decoder(vt_model *m);

/* Codec ids for n_text text ids (the LLM's vocabulary) into *ids (malloc'd, *n of them; only
 * codec ids, never a special class); *eos: whether EOS ended them (false: max_tokens did).
 * Returns 0, or -1 with err (ids out of range, the ctx's error). */
int tts_generate(tts *m, vt_ctx *ctx, const int32_t *text, int64_t n_text, const tts_gen_opts *o,
                 int32_t **ids, int64_t *n, bool *eos, char *err, size_t err_len);

#endif
