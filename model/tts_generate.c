/* Speech decoder inference; see tts_generate.h. */
#include "model/tts_generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The next class from logits over codec_vocab + 4 classes: BOS, SOS and PAD are never
 * produced; EOS is. Greedy is the argmax (the lowest class on ties); top-k samples among the k
 * largest after the temperature, in a softmax over them only. */
static int32_t pick(const float *logits, int64_t V, const tts_gen_opts *o) {
  int32_t eos = (int32_t)V + 2;
  int64_t n = V + 4;
  int k = o->top_k > 1 ? o->top_k : 1;
  if (k > V + 1) k = (int)(V + 1);
  int32_t best[64];
  float bv[64];
  if (k > 64) k = 64;
  int got = 0;
  for (int64_t c = 0; c < n; c++) {
    if (c >= V && c != eos) continue;
    float v = logits[c];
    if (got == k && v <= bv[k - 1]) continue;
    int j = got < k ? got++ : k - 1;
    while (j > 0 && bv[j - 1] < v) bv[j] = bv[j - 1], best[j] = best[j - 1], j--;
    bv[j] = v, best[j] = (int32_t)c;
  }
  if (got == 1 || o->top_k <= 1 || !o->rng) return best[0];
  double p[64], z = 0;
  for (int j = 0; j < got; j++) z += p[j] = exp(((double)bv[j] - bv[0]) / o->temperature);
  double u = (double)vt_rng_uniform(o->rng) * z;
  for (int j = 0; j < got; j++)
    if ((u -= p[j]) < 0) return best[j];
  return best[got - 1];
}

int tts_generate(tts *m, vt_ctx *ctx, const int32_t *text, int64_t n_text, const tts_gen_opts *o,
                 int32_t **ids, int64_t *n, bool *eos, char *err, size_t err_len) {
  const tts_cfg *c = &m->cfg;
  int64_t V = c->codec_vocab, cap = o->max_tokens > 0 ? o->max_tokens : 1;
  if (n_text < 1 || !(o->temperature > 0)) {
    snprintf(err, err_len, "tts_generate: %s", n_text < 1 ? "no text ids" : "temperature <= 0");
    return -1;
  }
  for (int64_t i = 0; i < n_text; i++)
    if (text[i] < 0 || text[i] >= c->llm_vocab_size) {
      snprintf(err, err_len, "text id %d at %lld is outside the LLM vocabulary (0 to %lld)",
               text[i], (long long)i, (long long)c->llm_vocab_size - 1);
      return -1;
    }
  int32_t *y = malloc(sizeof(int32_t) * (size_t)cap);
  float *logits = malloc(sizeof(float) * (size_t)(V + 4));
  if (!y || !logits) {
    free(y), free(logits);
    snprintf(err, err_len, "out of memory for %lld codec ids", (long long)cap);
    return -1;
  }
  bool was = vt_set_grad_enabled(ctx, false);
  int64_t t = 0;
  *eos = false;
  int rc = 0;
  while (t < cap) {
    int32_t tl = (int32_t)n_text, cl = (int32_t)t;
    tts_batch b = {.batch = 1,
                   .text = text,
                   .text_lens = &tl,
                   .text_stride = n_text,
                   .codec = y,
                   .codec_lens = &cl,
                   .codec_stride = t > 0 ? t : 1};
    tts_out out = tts_forward(m, ctx, &b);
    vt_tensor *last = vt_slice(ctx, out.hidden, 0, out.rows - 1, out.rows);
    vt_tensor *lg = tts_logits(m, ctx, last);
    if (vt_ctx_failed(ctx)) {
      snprintf(err, err_len, "%s", vt_ctx_error(ctx));
      rc = -1;
      break;
    }
    vt_to_host(ctx, lg, logits);
    vt_ctx_reset(ctx);
    int32_t next = pick(logits, V, o);
    if (next == (int32_t)V + 2) {
      *eos = true;
      break;
    }
    y[t++] = next;
  }
  vt_set_grad_enabled(ctx, was);
  free(logits);
  if (rc) {
    free(y);
    return -1;
  }
  *ids = y;
  *n = t;
  return 0;
}
