// ctest-labels: unit
/* Tokenizer vs HF tokenizers fixtures (tests/reference/gen_tokenizer_fixtures.py): encode
 * token for token, decode back to exact bytes (also characters split over byte tokens),
 * marker and special ids, and the error paths. Skips (77) without the shared tokenizer. */
#include "data/tokenizer.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_line(FILE *f) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n = getline(&line, &cap, f);
  if (n < 0) {
    free(line);
    return NULL;
  }
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
  return line;
}

static size_t unhex(const char *h, char *out) {
  size_t n = 0;
  for (; h[0] && h[1]; h += 2) {
    unsigned v;
    sscanf(h, "%2x", &v);
    out[n++] = (char)v;
  }
  return n;
}

static void parse_ids(const char *s, tok_ids *out) {
  char *end;
  for (;;) {
    long v = strtol(s, &end, 10);
    if (end == s) break;
    tok_ids_push(out, (int32_t)v);
    s = end;
  }
}

static FILE *open_fixture(const char *name) {
  const char *fx = getenv("VT_FIXTURES");
  char path[4096];
  snprintf(path, sizeof path, "%s/tokenizer/%s", fx ? fx : "tests/fixtures", name);
  FILE *f = fopen(path, "r");
  if (!f) fprintf(stderr, "cannot open %s\n", path);
  return f;
}

static void test_encode_cases(tok_tokenizer *t) {
  FILE *f = open_fixture("encode_cases.txt");
  CHECK_MSG(f != NULL, "fixture missing");
  if (!f) return;
  char *name, err[256];
  int n_cases = 0;
  while ((name = read_line(f))) {
    char *hex = read_line(f), *ids_line = read_line(f);
    char *text = malloc(strlen(hex) / 2 + 1);
    size_t len = unhex(hex, text);
    tok_ids want = {0}, got = {0};
    parse_ids(ids_line, &want);
    int rc = tok_encode(t, text, len, &got, err, sizeof err);
    CHECK_MSG(rc == 0, "%s: %s", name, err);
    bool same = got.n == want.n && memcmp(got.v, want.v, got.n * sizeof *got.v) == 0;
    CHECK_MSG(same, "%s: %zu ids, want %zu", name, got.n, want.n);
    if (!same)
      for (size_t i = 0; i < got.n && i < want.n; i++)
        if (got.v[i] != want.v[i]) {
          fprintf(stderr, "  first difference at %zu: got %d want %d\n", i, got.v[i], want.v[i]);
          break;
        }
    /* decode gives the text back (the NFC case normalises, so it differs by design) */
    if (strncmp(name, "# nfc", 5) != 0) {
      tok_bytes back = {0};
      CHECK_MSG(tok_decode(t, want.v, want.n, false, &back, err, sizeof err) == 0, "%s", err);
      CHECK_MSG(back.n == len && memcmp(back.p, text, len) == 0, "%s: decode differs", name);
      tok_bytes_free(&back);
    }
    n_cases++;
    tok_ids_free(&want);
    tok_ids_free(&got);
    free(text), free(name), free(hex), free(ids_line);
  }
  fclose(f);
  CHECK_MSG(n_cases >= 60, "only %d cases", n_cases);
}

static void test_split_bytes(tok_tokenizer *t) {
  FILE *f = open_fixture("split_bytes.txt");
  CHECK_MSG(f != NULL, "fixture missing");
  if (!f) return;
  char *hex, err[256];
  while ((hex = read_line(f))) {
    char *ids_line = read_line(f), text[256];
    size_t len = unhex(hex, text);
    tok_ids ids = {0};
    parse_ids(ids_line, &ids);
    CHECK_MSG(ids.n > 1, "expected a character split over several tokens");
    /* token by token: each piece alone is not valid UTF-8, the concatenation is exact */
    tok_bytes all = {0};
    bool some_piece_invalid = false;
    for (size_t i = 0; i < ids.n; i++) {
      tok_bytes one = {0};
      CHECK_MSG(tok_decode(t, &ids.v[i], 1, false, &one, err, sizeof err) == 0, "%s", err);
      if (!tok_utf8_valid(one.p, one.n, NULL)) some_piece_invalid = true;
      tok_decode(t, &ids.v[i], 1, false, &all, err, sizeof err);
      tok_bytes_free(&one);
    }
    CHECK_MSG(some_piece_invalid, "no partial UTF-8 piece for %s", hex);
    CHECK_MSG(all.n == len && memcmp(all.p, text, len) == 0, "split decode differs for %s", hex);
    tok_bytes_free(&all);
    tok_ids_free(&ids);
    free(hex), free(ids_line);
  }
  fclose(f);
}

static void test_ids_and_errors(tok_tokenizer *t) {
  CHECK_MSG(tok_token_id(t, "☞") == 144766, "☞ = %d", tok_token_id(t, "☞"));
  CHECK_MSG(tok_token_id(t, "☜") == 145789, "☜ = %d", tok_token_id(t, "☜"));
  CHECK_MSG(tok_token_id(t, "☟") == 146164, "☟ = %d", tok_token_id(t, "☟"));
  CHECK_MSG(tok_token_id(t, "<|im_start|>") == 151644, "im_start");
  CHECK_MSG(tok_token_id(t, "<|im_end|>") == 151645, "im_end");
  CHECK_MSG(tok_eos_id(t) == 151645, "eos %d", tok_eos_id(t));
  CHECK_MSG(tok_pad_id(t) == 151643, "pad %d", tok_pad_id(t));
  CHECK_MSG(tok_vocab_size(t) == 151669, "vocab %d", tok_vocab_size(t));
  char err[256] = "";
  tok_ids ids = {0};
  const char bad[] = "ok \xff\xfe bad";
  CHECK_MSG(tok_encode(t, bad, sizeof bad - 1, &ids, err, sizeof err) == -1,
            "invalid UTF-8 accepted");
  CHECK_MSG(strstr(err, "byte 3") != NULL, "error should name the offset: %s", err);
  tok_bytes b = {0};
  int32_t out_of_range = 999999;
  CHECK_MSG(tok_decode(t, &out_of_range, 1, false, &b, err, sizeof err) == -1, "bad id decoded");
  int32_t with_special[] = {151644, 9707, 151645};
  CHECK_MSG(tok_decode(t, with_special, 3, true, &b, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(b.n == 5 && memcmp(b.p, "Hello", 5) == 0, "skip_special: '%s'", b.p);
  tok_bytes_free(&b);
  tok_ids_free(&ids);
  tok_tokenizer *none;
  CHECK_MSG(tok_init(&none, "/nonexistent/tok", err, sizeof err) == -1, "missing dir loaded");
  CHECK_MSG(strstr(err, "/nonexistent/tok") != NULL, "message names the path: %s", err);
}

int main(void) {
  const char *shared = getenv("VT_SHARED_DIR");
  char dir[4096], err[512];
  snprintf(dir, sizeof dir, "%s/data/qwen-tokenizer", shared ? shared : "../shared");
  tok_tokenizer *t;
  if (tok_init(&t, dir, err, sizeof err) != 0) {
    fprintf(stderr, "skip: %s\n", err);
    return 77;
  }
  test_encode_cases(t);
  test_split_bytes(t);
  test_ids_and_errors(t);
  tok_free(t);
  return vt_test_finish("test_tokenizer");
}
