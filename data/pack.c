/* Greedy packing of mixture samples into sequences of at most max_len tokens. */
#include "data/pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mix_pack_free(mix_pack *p) {
  tok_ids_free(&p->ids);
  tok_ids_free(&p->labels);
  for (size_t i = 0; i < p->n_media; i++) free(p->media_path[i]);
  free(p->media_path);
  free(p->media);
  free(p->media_seq);
  free(p->starts);
  memset(p, 0, sizeof *p);
}

static void reset(mix_pack *p) {
  p->ids.n = p->labels.n = 0;
  for (size_t i = 0; i < p->n_media; i++) free(p->media_path[i]);
  p->n_media = 0;
  p->n_seq = 0;
  p->n_truncated = 0;
}

static int add_sample(mix_pack *p, const shard_sample *s, int64_t n) {
  int64_t at = (int64_t)p->ids.n;
  if (p->n_seq + 2 > p->cap_seq) {
    size_t cap = p->cap_seq ? p->cap_seq * 2 : 16;
    int64_t *st = realloc(p->starts, cap * sizeof *st);
    if (!st) return -1;
    p->starts = st;
    p->cap_seq = cap;
  }
  if (tok_ids_append(&p->ids, s->ids.v, (size_t)n) ||
      tok_ids_append(&p->labels, s->labels.v, (size_t)n))
    return -1;
  for (size_t k = 0; k < s->n_media; k++) {
    if (s->media[k].pos >= n) continue; /* cut off */
    if (p->n_media == p->cap_media) {
      size_t cap = p->cap_media ? p->cap_media * 2 : 16;
      chat_media *m = realloc(p->media, cap * sizeof *m);
      if (m) p->media = m;
      char **mp = m ? realloc(p->media_path, cap * sizeof *mp) : NULL;
      if (mp) p->media_path = mp;
      int32_t *ms = mp ? realloc(p->media_seq, cap * sizeof *ms) : NULL;
      if (!ms) return -1;
      p->media_seq = ms;
      p->cap_media = cap;
    }
    p->media[p->n_media] = s->media[k];
    p->media[p->n_media].pos += at;
    p->media_path[p->n_media] = strdup(s->media_path[k]);
    p->media_seq[p->n_media++] = (int32_t)p->n_seq;
  }
  p->starts[p->n_seq] = at;
  p->starts[++p->n_seq] = (int64_t)p->ids.n;
  return 0;
}

int mix_next_packed(mix *m, int64_t max_len, mix_pack *out, char *err, size_t err_len) {
  reset(out);
  shard_sample s = {0};
  int rc = 0;
  for (;;) {
    if (out->n_seq > 0 && mix_get_cursor(m).pos >= mix_epoch_len(m)) break; /* epoch end */
    int64_t len = mix_peek_len(m);
    if (out->n_seq > 0 && (int64_t)out->ids.n + len > max_len) break;
    if ((rc = mix_next(m, &s, NULL, err, err_len))) break;
    int64_t n = len;
    if (n > max_len) {
      n = max_len;
      out->n_truncated++;
    }
    if ((rc = add_sample(out, &s, n))) {
      snprintf(err, err_len, "packing: out of memory");
      break;
    }
    if ((int64_t)out->ids.n >= max_len) break;
  }
  if (out->n_seq == 0 && out->starts == NULL) { /* keep starts valid for an empty pack */
    out->starts = calloc(1, sizeof *out->starts);
    out->cap_seq = 1;
  }
  shard_sample_free(&s);
  return rc;
}

void mix_pack_segments(const mix_pack *p, size_t T, int32_t *segment, int32_t *position) {
  size_t k = 0;
  for (size_t i = 0; i < T; i++) {
    while (k < p->n_seq && (int64_t)i >= p->starts[k + 1]) k++;
    int64_t start = k < p->n_seq ? p->starts[k] : (int64_t)p->ids.n;
    if (segment) segment[i] = (int32_t)k;
    if (position) position[i] = (int32_t)((int64_t)i - start);
  }
}
