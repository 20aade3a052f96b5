// ctest-labels: unit
/* tokenizer.json validation on small generated files (no shared tokenizer needed): ids that
 * are negative, at or past 2^31, or leave a mostly empty table are refused with the field
 * named; an added token may not take another's id or a vocabulary id with other bytes; a
 * consistent file loads and round-trips text. */
#include "data/tokenizer.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A byte-level BPE tokenizer.json: the 256 byte tokens (ids 0..255), the merge "h e" -> id
 * 256, then extra vocab entries (",\"key\": id" text) and added tokens (list items). */
static char *tok_json(const char *extra_vocab, const char *added) {
  size_t cap = 1 << 16, n = 0;
  char *s = malloc(cap);
  n += (size_t)snprintf(s + n, cap - n, "{\"model\":{\"type\":\"BPE\",\"vocab\":{");
  int extra = 0;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    int cp = keep ? b : 256 + extra++;
    n += (size_t)snprintf(s + n, cap - n, "%s\"\\u%04x\":%d", b ? "," : "", cp, b);
  }
  n += (size_t)snprintf(s + n, cap - n,
                        ",\"he\":256%s},\"merges\":[\"h e\"]},\"normalizer\":null,"
                        "\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":"
                        "\"\\\\s?\\\\w+|\\\\s+|[^\\\\s\\\\w]+\"}},\"added_tokens\":[%s]}",
                        extra_vocab, added);
  return s;
}

static int load(const char *extra_vocab, const char *added, tok_tokenizer **t, char *err,
                size_t n) {
  char *js = tok_json(extra_vocab, added);
  int rc = tok_init_mem(t, "tok.json", js, strlen(js), err, n);
  free(js);
  return rc;
}

static void refused(const char *extra_vocab, const char *added, const char *want) {
  tok_tokenizer *t = NULL;
  char err[512] = "";
  CHECK_MSG(load(extra_vocab, added, &t, err, sizeof err) == -1, "accepted: %s %s", extra_vocab,
            added);
  CHECK_MSG(strstr(err, want) != NULL, "message \"%s\" lacks \"%s\"", err, want);
  tok_free(t);
}

int main(void) {
  tok_tokenizer *t = NULL;
  char err[512] = "";
  CHECK_MSG(
      load("", "{\"id\":257,\"content\":\"<|end|>\",\"special\":true}", &t, err, sizeof err) == 0,
      "%s", err);
  if (t) {
    CHECK(tok_vocab_size(t) == 258);
    CHECK(tok_token_id(t, "<|end|>") == 257);
    tok_ids ids = {0};
    tok_bytes back = {0};
    const char *text = "hehe<|end|>ha";
    CHECK(tok_encode(t, text, strlen(text), &ids, err, sizeof err) == 0);
    CHECK(ids.n == 5 && ids.v[0] == 256 && ids.v[2] == 257);
    CHECK(tok_decode(t, ids.v, ids.n, false, &back, err, sizeof err) == 0);
    CHECK(back.n == strlen(text) && memcmp(back.p, text, back.n) == 0);
    int32_t out_of_range[1] = {258};
    CHECK(tok_decode(t, out_of_range, 1, false, &back, err, sizeof err) == -1);
    tok_ids_free(&ids);
    tok_bytes_free(&back);
    tok_free(t);
  }
  refused(",\"zz\":-1", "", "model.vocab[\"zz\"]: expected an id in [0, 2147483647), found -1");
  refused(",\"zz\":2147483648", "", "found 2147483648");
  refused(",\"zz\":4294967296", "", "found 4294967296"); /* not wrapped to 0 */
  refused(",\"zz\":1.5", "", "found a non-integer");
  refused(",\"zz\":100000", "", "largest id 100000 for only 258 tokens");
  refused(",\"zz\":5", "", "id 5 is already another token's");
  refused("", "{\"id\":-3,\"content\":\"<a>\"}", "added_tokens[0].id: expected an id");
  refused("", "{\"id\":4294967296,\"content\":\"<a>\"}", "added_tokens[0].id");
  refused("", "{\"id\":300,\"content\":\"<a>\"},{\"id\":300,\"content\":\"<b>\"}",
          "added_tokens[1].id: 300 is already added token \"<a>\"");
  refused("", "{\"id\":256,\"content\":\"<a>\"}", "256 is a vocabulary token with other bytes");
  refused("", "{\"id\":300,\"content\":\"<a>\",\"special\":1}", "a boolean special");
  refused(",\"he\":257", "", "duplicate object key"); /* jansson's JSON_REJECT_DUPLICATES */
  /* a vocabulary id that is also an added token with the same bytes is fine (Llama's <s>) */
  CHECK_MSG(load(",\"<s>\":257", "{\"id\":257,\"content\":\"<s>\",\"special\":true}", &t, err,
                 sizeof err) == 0,
            "%s", err);
  tok_free(t);
  return vt_test_finish("test_tokenizer_ids");
}
