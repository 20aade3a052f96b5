/* The character vocabulary of CTC targets (stage 2.1a): id 0 is the blank, then one id per
 * character (a Unicode code point) in code-point order. Transcripts are normalised first: ASCII
 * letters lowercased, every run of whitespace one space, none at either end. The file is JSON,
 * {"blank": 0, "lowercase": true, "chars": [" ", "a", "b", ...]}: chars[i] has id i + 1, so a CTC
 * head needs ctc_vocab = n + 1, and the space's id is the word separator for WER. `vita prep
 * --ctc-chars FILE` reads FILE, or derives it from the transcripts (the last answer of each
 * sample) and writes it when it does not exist. */
#ifndef VT_DATA_AUDIO_CHARS_H
#define VT_DATA_AUDIO_CHARS_H

#include <stddef.h>
#include <stdint.h>

#include "data/sample.h"

typedef struct {
  uint32_t *cp; /* sorted code points; cp[i] has id i + 1 */
  size_t n, cap;
} aud_chars;

void aud_chars_free(aud_chars *v);
/* Adds the characters of a (normalised) UTF-8 text. Returns 0, or -1 (not UTF-8 or out of
 * memory) with err. */
int aud_chars_add_text(aud_chars *v, const char *utf8, char *err, size_t err_len);
/* The id of a code point, or -1. */
int32_t aud_chars_id(const aud_chars *v, uint32_t cp);
/* The normalised transcript as ids into *out (grown as needed, *cap its room); returns the
 * count, or -1 with err naming a character outside the vocabulary (U+XXXX) or bad UTF-8. */
int64_t aud_chars_encode(const aud_chars *v, const char *utf8, int32_t **out, size_t *cap,
                         char *err, size_t err_len);
/* Ids back to UTF-8 (for printing hypotheses); writes at most len - 1 bytes and a NUL. */
void aud_chars_decode(const aud_chars *v, const int32_t *ids, size_t n, char *buf, size_t len);

int aud_chars_load(aud_chars *v, const char *path, char *err, size_t err_len);
int aud_chars_save(const aud_chars *v, const char *path, char *err, size_t err_len);
/* The vocabulary of the last answer of every sample in the inputs (samples that do not parse
 * are passed over: prep reports them). Returns 0 or -1 with err. */
int aud_chars_from_inputs(aud_chars *v, const char *const *inputs, size_t n_inputs,
                          const sample_config *cfg, char *err, size_t err_len);
/* The transcript of a sample: its last answer's text (NULL when it has none). */
const char *aud_chars_transcript(const sample *s);

#endif
