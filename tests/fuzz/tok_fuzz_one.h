/* One fuzz input through the tokenizer.json loader: load it from memory, and when accepted
 * encode a few texts and check that decoding gives the bytes back, and decode every id.
 * Shared by the libFuzzer target and the corpus replay test; returns 0 when it behaved. */
#ifndef VT_TOK_FUZZ_ONE_H
#define VT_TOK_FUZZ_ONE_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/tokenizer.h"

static int tok_fuzz_one(const uint8_t *data, size_t size) {
  tok_tokenizer *t;
  char err[512] = "";
  if (tok_init_mem(&t, "fuzz.json", (const char *)data, size, err, sizeof err))
    return err[0] ? 0 : 1;
  static const char *const texts[] = {
      "hello world",     " world  hello\n\n", "<|im_end|>hello<s>x", "a", "",
      "12345 !!?? hell", "<|x|><|x|>"};
  int bad = 0;
  for (size_t k = 0; k < sizeof texts / sizeof *texts; k++) {
    tok_ids ids = {0};
    tok_bytes back = {0};
    size_t n = strlen(texts[k]);
    if (tok_encode(t, texts[k], n, &ids, err, sizeof err) == 0) {
      /* ASCII text is its own NFC, so the ids must decode to exactly the text */
      if (tok_decode(t, ids.v, ids.n, false, &back, err, sizeof err) != 0 || back.n != n ||
          memcmp(back.p, texts[k], n) != 0)
        bad = 1;
      for (size_t i = 0; i < ids.n; i++)
        if (ids.v[i] < 0 || ids.v[i] >= tok_vocab_size(t)) bad = 1;
    } else if (!err[0]) {
      bad = 1;
    }
    tok_ids_free(&ids);
    tok_bytes_free(&back);
  }
  int32_t probe[4] = {-1, tok_vocab_size(t), INT32_MAX, 0};
  tok_bytes b = {0};
  for (int i = 0; i < 3; i++)
    if (tok_decode(t, probe + i, 1, false, &b, err, sizeof err) == 0) bad = 1;
  for (int32_t id = 0; id < tok_vocab_size(t) && id < 4096; id++)
    (void)tok_decode(t, &id, 1, true, &b, err, sizeof err);
  tok_bytes_free(&b);
  tok_free(t);
  return bad;
}

#endif
