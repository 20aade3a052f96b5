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

int trainer_next_batch(trainer *t, mix *m, char *err, size_t err_len) {
  const vt_train_cfg *c = t->cfg;
  int64_t b = c->batch_size, max_len = c->max_len;
  t->batch_t = 0;
  t->batch_tokens = 0;
  for (int64_t i = 0; i < b; i++) {
    const char *why;
    for (int tries = 0;; tries++) {
      mix_ref ref;
      if (mix_next(m, &t->sample, &ref, err, err_len)) return -1;
      why = unusable(t, &t->sample);
      if (!why) break;
      t->skipped_samples++;
      if (t->skipped_samples <= 10)
        fprintf(stderr, "warning: skipping sample %s: %s\n", t->sample.id ? t->sample.id : "?",
                why);
      if (tries > 1000) {
        snprintf(err, err_len, "1000 samples in a row could not be used; last: %s", why);
        return -1;
      }
    }
    int64_t n = (int64_t)t->sample.ids.n;
    if (n > max_len) {
      n = max_len;
      t->truncated_samples++;
    }
    int32_t *ids = t->ids + i * max_len, *labels = t->labels + i * max_len;
    memcpy(ids, t->sample.ids.v, sizeof(int32_t) * (size_t)n);
    memcpy(labels, t->sample.labels.v, sizeof(int32_t) * (size_t)n);
    t->lengths[i] = (int32_t)n;
    for (int64_t k = 1; k < n; k++) t->batch_tokens += labels[k] != IGNORE_LABEL;
    if (n > t->batch_t) t->batch_t = n;
  }
  /* pad to the longest sample and repack rows to a stride of batch_t */
  int64_t T = t->batch_t;
  for (int64_t i = 0; i < b; i++) {
    int32_t *src_ids = t->ids + i * max_len, *src_lab = t->labels + i * max_len;
    int32_t *dst_ids = t->ids + i * T, *dst_lab = t->labels + i * T;
    int64_t n = t->lengths[i];
    memmove(dst_ids, src_ids, sizeof(int32_t) * (size_t)n);
    memmove(dst_lab, src_lab, sizeof(int32_t) * (size_t)n);
    for (int64_t k = n; k < T; k++) {
      dst_ids[k] = 0;
      dst_lab[k] = IGNORE_LABEL;
    }
  }
  return 0;
}
