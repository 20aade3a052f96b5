// ctest-labels: unit
/* The vita model's greedy-decoding eval metrics (gen_wer, gen_exact: stage 2.1b's transcripts
 * decoded by the LLM itself, not teacher-forced). A tiny seeded vita model; the test decodes
 * each row's answer on its own through vita_model_logits (one full forward per token, its own
 * argmax and edit distance) and the eval must agree: a row whose reference is the model's own
 * greedy answer counts as exact with no error, a row with one word changed as one error, and
 * a row with two answers is left out. */
#include <stdlib.h>
#include <string.h>

#include "model/vita_model.h"
#include "tests/testutil.h"

static const char *config =
    "{\"model_type\": \"vita-Qwen2\", \"vocab_size\": 64, \"hidden_size\": 24, "
    "\"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
    "\"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, "
    "\"tie_word_embeddings\": false, \"image_newline_token_id\": 5, "
    "\"mm_projector_type\": \"mlp2x_gelu\", \"mm_hidden_size\": 128, "
    "\"vision_config\": {\"image_size\": 56, \"patch_size\": 14, \"hidden_size\": 32, "
    "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2}}";

enum { B = 3, T = 16, A0 = 6, LEN = 5, V = 64 }; /* answer run: marker, 3 words, end */

/* The argmax of the logits at position p of row r (1-row forward of tokens). */
static int32_t next_token(vt_model *m, const int32_t *tokens, int64_t p) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  int32_t len = T;
  vt_batch b = {.rows = 1, .len = T, .samples = 1};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, T}, tokens);
  b.labels = b.tokens;
  b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){1}, &len);
  vt_tensor *lg = vita_model_logits(m, ctx, &b);
  static float l[T * V];
  int32_t best = 0;
  if (!vt_ctx_failed(ctx)) {
    vt_to_host(ctx, lg, l);
    for (int v = 1; v < V; v++)
      if (l[p * V + v] > l[p * V + best]) best = v;
  }
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  vt_ctx_free(ctx);
  return best;
}

static int64_t min3(int64_t a, int64_t b, int64_t c) {
  return a < b ? (a < c ? a : c) : (b < c ? b : c);
}

static int64_t dist(const int32_t *a, int na, const int32_t *b, int nb) {
  int64_t d[16][16];
  for (int i = 0; i <= na; i++)
    for (int j = 0; j <= nb; j++)
      d[i][j] =
          !i   ? j
          : !j ? i
               : min3(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]));
  return d[na][nb];
}

/* The test's own greedy decode of a row (prompt tokens[0..A0)), stopping at stop or after
 * LEN + 4 tokens; returns how many were written to out. */
static int decode(vt_model *m, const int32_t *prompt, int32_t stop, int32_t *out) {
  int32_t t[T];
  memcpy(t, prompt, sizeof t);
  int n = 0;
  while (n < LEN + 4 && A0 + n < T) {
    int32_t x = next_token(m, t, A0 + n - 1);
    out[n++] = x;
    t[A0 + n - 1] = x;
    if (x == stop) break;
  }
  return n;
}

int main(void) {
  char err[2048];
  json_t *cj = json_loads(config, 0, NULL);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = vt_model_create(NULL, cj, "test", &mo, &ps, err, sizeof err);
  json_decref(cj);
  CHECK_MSG(m && vt_params_alloc(&ps, err, sizeof err) == 0, "%s", err);
  if (!m) return vt_test_finish("test_vita_greedy");
  int32_t tokens[B][T], labels[B][T];
  for (int r = 0; r < B; r++)
    for (int i = 0; i < T; i++) tokens[r][i] = (3 + 7 * r + 5 * i) % V, labels[r][i] = -100;
  /* row 0: the reference is the model's own greedy answer; the first seed whose answer's
   * last token (the stop token) does not come earlier in it, so the decode stops there */
  int32_t g[LEN + 4];
  bool distinct = false;
  for (uint64_t seed = 1; seed < 64 && !distinct; seed++) {
    vt_rng rng;
    vt_rng_seed(&rng, seed);
    m->ops->init_weights(m, &ps, &rng, err, sizeof err);
    for (int i = 0; i < ps.n; i++) { /* larger weights: answers that depend on the prompt */
      float *x = ps.items[i]->t.data;
      for (int64_t k = 0; k < vt_numel(&ps.items[i]->t); k++)
        x[k] += 0.5f * (vt_rng_uniform(&rng) - 0.5f);
    }
    decode(m, tokens[0], -1, g); /* LEN + 4 tokens, no stop */
    distinct = true;
    for (int k = 0; k < LEN - 1; k++) distinct &= g[k] != g[LEN - 1];
  }
  CHECK_MSG(distinct, "no seed gives a greedy answer that ends in a new token");
  for (int k = 0; k < LEN; k++) labels[0][A0 + k] = tokens[0][A0 + k] = g[k];
  /* row 1: the model's answer with its second word replaced */
  int32_t h[LEN + 4];
  decode(m, tokens[1], -1, h);
  for (int k = 0; k < LEN; k++) labels[1][A0 + k] = tokens[1][A0 + k] = h[k];
  labels[1][A0 + 2] = tokens[1][A0 + 2] = (h[2] + 1) % V;
  /* row 2: two answers (a conversation): left out */
  labels[2][4] = tokens[2][4], labels[2][5] = tokens[2][5];
  labels[2][9] = tokens[2][9], labels[2][10] = tokens[2][10];

  /* expected: each row decoded by the test, stopping at its reference's last token */
  int64_t errs = 0, words = 0, exact = 0, rows = 0;
  for (int r = 0; r < 2; r++) {
    int32_t out[LEN + 4];
    int32_t stop = labels[r][A0 + LEN - 1];
    int n = decode(m, tokens[r], stop, out);
    int nh = n - 1 - (out[n - 1] == stop);
    int64_t d = dist(out + 1, nh < 0 ? 0 : nh, &labels[r][A0 + 1], LEN - 2);
    errs += d, words += LEN - 2, exact += d == 0 && nh == LEN - 2, rows++;
  }
  printf("greedy: %lld errors over %lld words, %lld of %lld exact\n", (long long)errs,
         (long long)words, (long long)exact, (long long)rows);
  CHECK_MSG(exact >= 1, "row 0 (the model's own answer) is not exact");

  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  int32_t lens[B] = {T, T, T};
  vt_batch b = {.rows = B, .len = T, .samples = B};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, tokens);
  b.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, labels);
  b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, lens);
  b.label_tokens = 2 * LEN + 4;
  vt_metric met[VT_MODEL_MAX_METRICS];
  int n = 0;
  CHECK_MSG(m->ops->eval(m, ctx, &b, met, &n) == 0, "%s", vt_ctx_error(ctx));
  const vt_metric *wer = NULL, *ex = NULL;
  for (int k = 0; k < n; k++) {
    if (!strcmp(met[k].name, "gen_wer")) wer = &met[k];
    if (!strcmp(met[k].name, "gen_exact")) ex = &met[k];
  }
  CHECK_MSG(wer && ex, "no gen_wer / gen_exact among %d metrics", n);
  if (wer && ex) {
    CHECK_MSG(wer->sum == (double)errs && wer->count == (double)words,
              "gen_wer %g / %g, the test's decode %lld / %lld", wer->sum, wer->count,
              (long long)errs, (long long)words);
    CHECK_MSG(ex->sum == (double)exact && ex->count == (double)rows,
              "gen_exact %g / %g, the test's decode %lld / %lld", ex->sum, ex->count,
              (long long)exact, (long long)rows);
    CHECK_MSG(errs >= 1, "row 1's changed word is no error");
  }
  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return vt_test_finish("test_vita_greedy");
}
