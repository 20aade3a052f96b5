/* Greedy CTC decoding and edit distances; see audio_enc_ctc.h. */
#include "model/audio_enc_ctc.h"

#include <stdlib.h>
#include <string.h>

int64_t audio_ctc_greedy(const float *lp, int64_t T, int64_t V, int32_t blank, int32_t *out) {
  int64_t n = 0;
  int32_t prev = -1;
  for (int64_t t = 0; t < T; t++) {
    const float *r = lp + t * V;
    int32_t best = 0;
    for (int64_t v = 1; v < V; v++)
      if (r[v] > r[best]) best = (int32_t)v;
    if (best != prev && best != blank) out[n++] = best;
    prev = best;
  }
  return n;
}

int64_t audio_edit_distance(const int32_t *a, int64_t na, const int32_t *b, int64_t nb) {
  if (na < nb) { /* the shorter one indexes the row */
    const int32_t *t = a;
    a = b;
    b = t;
    int64_t k = na;
    na = nb;
    nb = k;
  }
  int64_t *row = malloc(sizeof(int64_t) * (size_t)(nb + 1));
  if (!row) return -1;
  for (int64_t j = 0; j <= nb; j++) row[j] = j;
  for (int64_t i = 1; i <= na; i++) {
    int64_t diag = row[0];
    row[0] = i;
    for (int64_t j = 1; j <= nb; j++) {
      int64_t up = row[j];
      int64_t best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  int64_t d = row[nb];
  free(row);
  return d;
}

/* Each word becomes one id, an FNV-1a hash of its ids: equal words compare equal, and two
 * different words collide with probability about 2^-31. */
static int64_t words(const int32_t *x, int64_t n, int32_t sep, int32_t *out) {
  int64_t m = 0;
  uint32_t h = 2166136261u;
  int in = 0;
  for (int64_t i = 0; i <= n; i++) {
    if (i == n || x[i] == sep) {
      if (in) out[m++] = (int32_t)(h & 0x7fffffff);
      h = 2166136261u;
      in = 0;
    } else {
      h = (h ^ (uint32_t)x[i]) * 16777619u;
      in = 1;
    }
  }
  return m;
}

int64_t audio_word_errors(const int32_t *hyp, int64_t nh, const int32_t *ref, int64_t nr,
                          int32_t sep, int64_t *ref_words) {
  int32_t *wh = malloc(sizeof(int32_t) * (size_t)(nh + 1)),
          *wr = malloc(sizeof(int32_t) * (size_t)(nr + 1));
  int64_t d = -1;
  if (wh && wr) {
    int64_t mh = words(hyp, nh, sep, wh), mr = words(ref, nr, sep, wr);
    *ref_words = mr;
    d = audio_edit_distance(wh, mh, wr, mr);
  }
  free(wh);
  free(wr);
  return d;
}
