/* Qwen2-style byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json:
 * added/special tokens matched first, NFC (utf8proc), the pre-tokenizer regex (PCRE2),
 * byte-level alphabet, merges by rank. tok_init loads, tok_encode/tok_decode convert. */
#ifndef VT_DATA_TOKENIZER_H
#define VT_DATA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable array of token ids (or labels). Zero-initialise; tok_ids_free releases. */
typedef struct {
  int32_t *v;
  size_t n, cap;
} tok_ids;

int tok_ids_push(tok_ids *a, int32_t x);                    /* 0 ok, -1 out of memory */
int tok_ids_append(tok_ids *a, const int32_t *x, size_t n); /* 0 ok, -1 out of memory */
void tok_ids_free(tok_ids *a);

/* A growable byte buffer (decode output; always NUL-terminated after n bytes). */
typedef struct {
  char *p;
  size_t n, cap;
} tok_bytes;

void tok_bytes_free(tok_bytes *b);

typedef struct tok_tokenizer tok_tokenizer;

/* Loads `path`: a directory holding tokenizer.json (and optionally tokenizer_config.json),
 * or the tokenizer.json file itself. On success *out owns the tokenizer (tok_free).
 * Returns 0, or -1 with a message in err naming the file and field. */
int tok_init(tok_tokenizer **out, const char *path, char *err, size_t err_len);
/* The same from a tokenizer.json held in memory (name stands for the file in messages); no
 * tokenizer_config.json is read, so eos and pad are -1. */
int tok_init_mem(tok_tokenizer **out, const char *name, const char *json, size_t len, char *err,
                 size_t err_len);
void tok_free(tok_tokenizer *t);

/* Appends the ids of `len` bytes of UTF-8 text to out. Added/special tokens in the text are
 * matched first (leftmost-longest). Returns 0, or -1 (text not UTF-8, out of memory) with a
 * message in err giving the byte offset. Not thread-safe (uses a per-tokenizer cache). */
int tok_encode(tok_tokenizer *t, const char *text, size_t len, tok_ids *out, char *err,
               size_t err_len);

/* Appends the exact bytes of ids to out (byte tokens concatenated, so a character split over
 * several tokens comes back whole). skip_special drops special added tokens. Returns 0, or -1
 * for an id out of range (err names it). */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
               tok_bytes *out, char *err, size_t err_len);

/* Id of a vocabulary or added token given as its text (e.g. "<|im_end|>", "☞"); -1 if the
 * text is not one token. */
int32_t tok_token_id(const tok_tokenizer *t, const char *text);
int32_t tok_vocab_size(const tok_tokenizer *t); /* largest id + 1 */
int32_t tok_eos_id(const tok_tokenizer *t);     /* from tokenizer_config.json; -1 if none */
int32_t tok_pad_id(const tok_tokenizer *t);     /* from tokenizer_config.json; -1 if none */

/* True when the n bytes are valid UTF-8; *bad_at gets the first bad offset otherwise. */
bool tok_utf8_valid(const char *s, size_t n, size_t *bad_at);

#endif
