// ctest-labels: unit
/* Speech decoder inference (model/tts_generate.h) on a tiny random decoder whose head bias
 * decides: a dominant EOS ends at once (no tokens, eos set); a dominant code gives max_tokens
 * of it, greedily (no EOS); BOS, SOS and PAD are never produced even when they dominate;
 * top-k among two codes tied on top samples only those two, both, and the same ones for the
 * same seed; bad text ids and temperatures are refused with a message. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/tts_generate.h"
#include "tests/testutil.h"

static const char *cfg_json =
    "{\"model_type\": \"tts_decoder\", \"hidden_size\": 8, \"num_attention_heads\": 2,"
    " \"intermediate_size\": 16, \"nar_layers\": 1, \"ar_layers\": 1, \"codec_vocab\": 16,"
    " \"llm_vocab_size\": 10, \"llm_hidden_size\": 16}";

/* Sets the head's bias to 0 except +big at class c (and at c2 when >= 0). */
static void bias(vt_params *ps, int c, int c2, float big) {
  vt_param *b = vt_params_find(ps, "out_fnn.bias");
  float *v = (float *)b->t.data;
  for (int64_t i = 0; i < vt_numel(&b->t); i++) v[i] = 0;
  v[c] = big;
  if (c2 >= 0) v[c2] = big;
}

int main(void) {
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  char err[512];
  json_error_t je;
  json_t *cfg = json_loads(cfg_json, 0, &je);
  vt_model *m = vt_model_create(NULL, cfg, "cfg", &(vt_model_opts){0}, &ps, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 5);
  CHECK(m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0);
  tts *t = tts_model_decoder(m);
  CHECK(t != NULL);
  const char *why = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &why);
  int32_t text[3] = {1, 7, 3}, *ids = NULL;
  int64_t n = -1;
  bool eos = false;
  tts_gen_opts greedy = {.top_k = 0, .temperature = 1, .max_tokens = 9, .rng = NULL};

  bias(&ps, 16 + 2, -1, 50); /* EOS */
  CHECK(tts_generate(t, ctx, text, 3, &greedy, &ids, &n, &eos, err, sizeof err) == 0);
  CHECK_MSG(n == 0 && eos, "EOS first: %lld tokens, eos %d", (long long)n, eos);
  free(ids);

  bias(&ps, 11, -1, 50); /* a code */
  CHECK(tts_generate(t, ctx, text, 3, &greedy, &ids, &n, &eos, err, sizeof err) == 0);
  CHECK_MSG(n == 9 && !eos, "code 11: %lld tokens, eos %d", (long long)n, eos);
  for (int64_t i = 0; i < n; i++) CHECK(ids[i] == 11);
  free(ids);

  for (int c = 16; c <= 19; c++) { /* BOS, SOS, PAD never; EOS (18) ends */
    if (c == 18) continue;
    bias(&ps, c, -1, 50);
    CHECK(tts_generate(t, ctx, text, 3, &greedy, &ids, &n, &eos, err, sizeof err) == 0);
    for (int64_t i = 0; i < n; i++) CHECK_MSG(ids[i] >= 0 && ids[i] < 16, "class %d", ids[i]);
    free(ids);
  }

  bias(&ps, 4, 9, 50); /* top-k: two codes tied on top */
  tts_gen_opts topk = {.top_k = 5, .temperature = 1, .max_tokens = 40, .rng = &rng};
  vt_rng_seed(&rng, 11);
  CHECK(tts_generate(t, ctx, text, 3, &topk, &ids, &n, &eos, err, sizeof err) == 0);
  int seen4 = 0, seen9 = 0;
  for (int64_t i = 0; i < n; i++) {
    CHECK_MSG(ids[i] == 4 || ids[i] == 9, "top-k drew %d", ids[i]);
    seen4 += ids[i] == 4, seen9 += ids[i] == 9;
  }
  CHECK_MSG(n == 40 && seen4 > 5 && seen9 > 5, "%lld tokens: %d x 4, %d x 9", (long long)n, seen4,
            seen9);
  int32_t *again = NULL;
  int64_t n2 = 0;
  vt_rng_seed(&rng, 11);
  CHECK(tts_generate(t, ctx, text, 3, &topk, &again, &n2, &eos, err, sizeof err) == 0);
  CHECK(n2 == n && again && memcmp(again, ids, sizeof(int32_t) * (size_t)n) == 0);
  free(ids);
  free(again);

  int32_t bad[2] = {1, 10};
  CHECK(tts_generate(t, ctx, bad, 2, &greedy, &ids, &n, &eos, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "text id 10 at 1 is outside the LLM vocabulary (0 to 9)"), "%s", err);
  tts_gen_opts cold = greedy;
  cold.temperature = 0;
  CHECK(tts_generate(t, ctx, text, 3, &cold, &ids, &n, &eos, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "temperature"), "%s", err);

  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cfg);
  return vt_test_finish("test_tts_generate");
}
