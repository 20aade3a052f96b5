// ctest-labels: unit
/* Greedy CTC decoding (repeats merged, blanks dropped, a blank separating a true repeat) and the
 * edit distances behind CER and WER, on cases worked by hand. */
#include "model/audio_enc_ctc.h"
#include "tests/check.h"

#include <math.h>

int main(void) {
  /* frames' best classes: 0 3 3 0 3 5 5 0 0 2 -> 3 3 5 2 */
  const int best[10] = {0, 3, 3, 0, 3, 5, 5, 0, 0, 2};
  float lp[10 * 6];
  for (int t = 0; t < 10; t++)
    for (int v = 0; v < 6; v++) lp[t * 6 + v] = v == best[t] ? -0.1f : -3.0f - 0.1f * (float)v;
  int32_t out[10];
  int64_t n = audio_ctc_greedy(lp, 10, 6, 0, out);
  CHECK(n == 4 && out[0] == 3 && out[1] == 3 && out[2] == 5 && out[3] == 2);
  CHECK(audio_ctc_greedy(lp, 1, 6, 0, out) == 0);
  /* kitten -> sitting: 3 edits; empty against 4: 4; equal: 0 */
  const int32_t kitten[6] = {'k', 'i', 't', 't', 'e', 'n'};
  const int32_t sitting[7] = {'s', 'i', 't', 't', 'i', 'n', 'g'};
  CHECK(audio_edit_distance(kitten, 6, sitting, 7) == 3);
  CHECK(audio_edit_distance(sitting, 7, kitten, 6) == 3);
  CHECK(audio_edit_distance(kitten, 0, sitting, 4) == 4);
  CHECK(audio_edit_distance(kitten, 6, kitten, 6) == 0);
  /* words split at 0: "a bc d" vs "a bd d e": bc->bd substitution, e inserted: 2 of 4 */
  const int32_t h[6] = {1, 0, 2, 3, 0, 4}, r[9] = {1, 0, 2, 4, 0, 0, 4, 0, 5};
  int64_t words = 0;
  CHECK(audio_word_errors(h, 6, r, 9, 0, &words) == 2 && words == 4);
  return vt_test_finish("test_audio_ctc");
}
