/* CTC decoding and the error rates of stage 2.1a: greedy decoding of the CTC head's frames
 * (best class per frame, repeats merged, blanks dropped) and Levenshtein distances over ids for
 * CER (characters) and WER (words, split at a separator id). Host arrays; no tape. */
#ifndef VT_AUDIO_ENC_CTC_H
#define VT_AUDIO_ENC_CTC_H

#include <stdint.h>

/* Greedy path of log_probs [T, V] (row-major host floats) into out (room for T ids); returns
 * how many ids it wrote. */
int64_t audio_ctc_greedy(const float *log_probs, int64_t T, int64_t V, int32_t blank, int32_t *out);

/* Edits (substitutions, insertions, deletions) turning hyp into ref. Needs min(na, nb) + 1
 * int64 of scratch internally (malloc); -1 when out of memory. */
int64_t audio_edit_distance(const int32_t *hyp, int64_t nh, const int32_t *ref, int64_t nr);

/* Word edits of hyp against ref, words being runs of ids other than sep; *ref_words receives
 * ref's word count. -1 when out of memory. */
int64_t audio_word_errors(const int32_t *hyp, int64_t nh, const int32_t *ref, int64_t nr,
                          int32_t sep, int64_t *ref_words);

#endif
