/* A tiny byte-level BPE tokenizer trained over a closed vocabulary (the generated dataset's
 * texts): tok_train_write learns merges until every distinct pre-token of the texts is one
 * token and writes a Hugging Face tokenizer.json (+ tokenizer_config.json) that tok_init loads:
 * the Qwen2 pre-tokenizer regex, the 256 byte tokens with id = byte value, the merges, then
 * the added tokens (Qwen's specials, VITA's state markers, media tags). */
#ifndef VT_DATA_TOK_TRAIN_H
#define VT_DATA_TOK_TRAIN_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
  const char *content;
  bool special; /* dropped by tok_decode(skip_special) */
} tok_added;

/* Trains over texts[0..n) (UTF-8) and writes DIR/tokenizer.json and DIR/tokenizer_config.json
 * (eos and pad name added tokens; NULL: none). Returns the vocabulary size (largest id + 1),
 * or -1 with err (a text not UTF-8, a file that cannot be written, out of memory). */
int tok_train_write(const char *dir, const char *const *texts, size_t n, const tok_added *added,
                    size_t n_added, const char *eos, const char *pad, char *err, size_t err_len);

#endif
