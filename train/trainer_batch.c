/* Micro-batches from the data mixture; see trainer_impl.h. */
#include <stdio.h>
#include <string.h>

#include "train/trainer_impl.h"

#define IGNORE_LABEL (-100)

/* Why a sample cannot be trained on by this (text-only) stage, or NULL. */
static const char *unusable(const trainer *t, const shard_sample *s) {
  if (s->n_media) return "it has image/video/audio placeholders (media stages come later)";
  if (s->ids.n < 2) return "it has fewer than 2 tokens";
  for (size_t i = 0; i < s->ids.n; i++)
    if (s->ids.v[i] < 0 || s->ids.v[i] >= t->mcfg.vocab_size)
      return "a token id is outside the model's vocabulary";
  return NULL;
}

/* Why a pack cannot be trained on, or NULL. */
static const char *unusable_pack(const trainer *t, const mix_pack *p) {
  if (p->n_media) return "a packed sample has image/video/audio placeholders";
  if (p->ids.n < 2) return "it has fewer than 2 tokens";
  for (size_t i = 0; i < p->ids.n; i++)
    if (p->ids.v[i] < 0 || p->ids.v[i] >= t->mcfg.vocab_size)
      return "a token id is outside the model's vocabulary";
  return NULL;
}

static int skip(trainer *t, const char *id, const char *why, int tries, char *err, size_t err_len) {
  t->skipped_samples++;
  if (t->skipped_samples <= 10) fprintf(stderr, "warning: skipping %s: %s\n", id, why);
  if (tries > 1000) {
    snprintf(err, err_len, "1000 samples in a row could not be used; last: %s", why);
    return -1;
  }
  return 0;
}

/* Row i of the batch (stride max_len) from the next usable sample; returns its length. */
static int64_t next_row(trainer *t, mix *m, int64_t i, char *err, size_t err_len) {
  int64_t max_len = t->cfg->max_len;
  int32_t *ids = t->ids + i * max_len, *labels = t->labels + i * max_len;
  for (int tries = 0;; tries++) {
    if (t->mixcfg.pack) {
      if (mix_next_packed(m, max_len, &t->pack, err, err_len)) return -1;
      const char *why = unusable_pack(t, &t->pack);
      if (why) {
        if (skip(t, "a packed row", why, tries, err, err_len)) return -1;
        continue;
      }
      int64_t n = (int64_t)t->pack.ids.n;
      memcpy(ids, t->pack.ids.v, sizeof(int32_t) * (size_t)n);
      memcpy(labels, t->pack.labels.v, sizeof(int32_t) * (size_t)n);
      /* no sample predicts the first token of the next one */
      for (size_t k = 0; k < t->pack.n_seq; k++) labels[t->pack.starts[k]] = IGNORE_LABEL;
      mix_pack_segments(&t->pack, (size_t)max_len, t->segments + i * max_len, t->pos + i * max_len);
      t->truncated_samples += t->pack.n_truncated;
      return n;
    }
    mix_ref ref;
    if (mix_next(m, &t->sample, &ref, err, err_len)) return -1;
    const char *why = unusable(t, &t->sample);
    if (why) {
      if (skip(t, t->sample.id ? t->sample.id : "?", why, tries, err, err_len)) return -1;
      continue;
    }
    int64_t n = (int64_t)t->sample.ids.n;
    if (n > max_len) {
      n = max_len;
      t->truncated_samples++;
    }
    memcpy(ids, t->sample.ids.v, sizeof(int32_t) * (size_t)n);
    memcpy(labels, t->sample.labels.v, sizeof(int32_t) * (size_t)n);
    return n;
  }
}

/* Moves row i from stride max_len to stride T (T <= max_len: never overwrites a later row). */
static void repack(int32_t *buf, int64_t i, int64_t max_len, int64_t T) {
  memmove(buf + i * T, buf + i * max_len, sizeof(int32_t) * (size_t)T);
}

int trainer_next_batch(trainer *t, mix *m, char *err, size_t err_len) {
  int64_t b = t->cfg->batch_size, max_len = t->cfg->max_len;
  t->batch_t = 0;
  t->batch_tokens = 0;
  for (int64_t i = 0; i < b; i++) {
    int64_t n = next_row(t, m, i, err, err_len);
    if (n < 0) return -1;
    int32_t *labels = t->labels + i * max_len;
    t->lengths[i] = (int32_t)n;
    for (int64_t k = 1; k < n; k++) t->batch_tokens += labels[k] != IGNORE_LABEL;
    if (n > t->batch_t) t->batch_t = n;
  }
  /* pad to the longest row and repack rows to a stride of batch_t */
  int64_t T = t->batch_t;
  for (int64_t i = 0; i < b; i++) {
    int64_t n = t->lengths[i];
    int32_t *ids = t->ids + i * max_len, *labels = t->labels + i * max_len;
    for (int64_t k = n; k < T; k++) {
      ids[k] = 0;
      labels[k] = IGNORE_LABEL;
    }
    repack(t->ids, i, max_len, T);
    repack(t->labels, i, max_len, T);
    if (t->mixcfg.pack) {
      repack(t->pos, i, max_len, T);
      repack(t->segments, i, max_len, T);
    }
  }
  return 0;
}
