// ctest-labels: unit
/* The CTC character vocabulary (data/audio_chars.h): transcripts normalised (ASCII lowercased,
 * whitespace runs one space, trimmed), ids in code-point order after the blank 0, UTF-8 beyond
 * ASCII, a character outside the vocabulary refused naming it, the JSON file round trip and its
 * bad forms refused naming the field; and greedy CTC decoding with the CER of its output (the
 * empty hypothesis scores 1.0, the chance baseline the docs quote). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/audio_chars.h"
#include "model/audio_enc_ctc.h"
#include "tests/check.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (f) fputs(text, f), fclose(f);
}

int main(void) {
  char err[512];
  aud_chars v = {0};
  CHECK(aud_chars_add_text(&v, "  Two  BIG\tdogs ", err, sizeof err) == 0);
  CHECK(aud_chars_add_text(&v, "caf\xc3\xa9", err, sizeof err) == 0); /* café */
  /* " " a b c d f g i o s t w é */
  CHECK(v.n == 13 && v.cp[0] == 0x20 && v.cp[1] == 0x61 && v.cp[12] == 0xe9);
  CHECK(aud_chars_id(&v, ' ') == 1 && aud_chars_id(&v, 'a') == 2 && aud_chars_id(&v, 'z') == -1);
  int32_t *ids = NULL;
  size_t cap = 0;
  int64_t n = aud_chars_encode(&v, "  TWO dogs\n", &ids, &cap, err, sizeof err);
  CHECK(n == 8);
  const int32_t want[8] = {
      aud_chars_id(&v, 't'), aud_chars_id(&v, 'w'), aud_chars_id(&v, 'o'), 1,
      aud_chars_id(&v, 'd'), aud_chars_id(&v, 'o'), aud_chars_id(&v, 'g'), aud_chars_id(&v, 's')};
  CHECK(n == 8 && memcmp(ids, want, sizeof want) == 0);
  char back[64];
  aud_chars_decode(&v, ids, (size_t)n, back, sizeof back);
  CHECK(!strcmp(back, "two dogs"));
  CHECK(aud_chars_encode(&v, "two zebras", &ids, &cap, err, sizeof err) == -1 &&
        strstr(err, "U+007A"));
  CHECK(aud_chars_encode(&v, "bad \xff", &ids, &cap, err, sizeof err) == -1 &&
        strstr(err, "not UTF-8"));
  CHECK(aud_chars_add_text(&v, "\xc3", err, sizeof err) == -1);

  /* the file round trip */
  char dir[] = "/tmp/vt_test_chars_XXXXXX", path[128];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/chars.json", dir);
  CHECK(aud_chars_save(&v, path, err, sizeof err) == 0);
  aud_chars w;
  CHECK_MSG(aud_chars_load(&w, path, err, sizeof err) == 0, "%s", err);
  CHECK(w.n == v.n && memcmp(w.cp, v.cp, v.n * sizeof *v.cp) == 0);
  aud_chars_free(&w);
  const char *bad[][2] = {{"{\"chars\": []}", "\"chars\""},
                          {"{\"blank\": 3, \"chars\": [\"a\"]}", "\"blank\""},
                          {"{\"chars\": [\"b\", \"a\"]}", "increasing"},
                          {"{\"chars\": [\"ab\"]}", "one character"},
                          {"{\"chars\": [\"a\"", "chars.json"}};
  for (int i = 0; i < 5; i++) {
    write_file(path, bad[i][0]);
    CHECK_MSG(aud_chars_load(&w, path, err, sizeof err) == -1 && strstr(err, bad[i][1]),
              "case %d: %s", i, err);
  }
  remove(path);
  rmdir(dir);

  /* greedy decoding merges repeats and drops blanks; CER against the reference */
  enum { T = 7, V = 4 };
  float lp[T * V];
  const int best[T] = {0, 2, 2, 0, 2, 3, 3}; /* -> 2 2 3 */
  for (int t = 0; t < T; t++)
    for (int k = 0; k < V; k++) lp[t * V + k] = k == best[t] ? -0.1f : -3.0f;
  int32_t hyp[T];
  int64_t nh = audio_ctc_greedy(lp, T, V, 0, hyp);
  CHECK(nh == 3 && hyp[0] == 2 && hyp[1] == 2 && hyp[2] == 3);
  const int32_t ref[4] = {2, 1, 2, 3};
  CHECK(audio_edit_distance(hyp, nh, ref, 4) == 1); /* CER 1/4 */
  CHECK(audio_edit_distance(hyp, 0, ref, 4) == 4);  /* nothing predicted: CER 1.0 */
  free(ids);
  aud_chars_free(&v);
  return vt_test_finish("test_audio_chars");
}
