/* Private to data/vita_synth*.c: the generator's state shared by the sample writer
 * (vita_synth.c) and the finishing steps (vita_synth_out.c: tokenizer, prep, mixtures,
 * chance levels). */
#ifndef VT_DATA_VITA_SYNTH_IMPL_H
#define VT_DATA_VITA_SYNTH_IMPL_H

#include <jansson.h>
#include <stddef.h>

#include "autograd/rng.h"
#include "data/vita_synth.h"

typedef struct {
  char **v;
  size_t n, cap;
} vsynth_texts;

typedef struct {
  const char *dir;
  const vsynth_cfg *c;
  vsynth_stats *st;
  char *err;
  size_t err_len;
  vt_rng rng;
  json_t *samples[VSYNTH_TASKS][2]; /* per task, train / eval: JSON arrays of samples */
  json_t *scenes;                   /* image path -> its objects */
  json_t *qa_type[4];  /* held-out one-question samples per question type (per-type QA) */
  vsynth_texts texts;  /* every question and answer text (tokenizer training) */
  vsynth_texts spoken; /* "RATE|TEXT" of each clip, index = file number */
} vsynth_ctx;

int vsynth_texts_add(vsynth_texts *t, const char *s); /* 0, or -1 out of memory */
void vsynth_texts_free(vsynth_texts *t);
int vsynth_mkdir(const char *dir, char *err, size_t err_len); /* mkdir -p */

/* After the JSON files: the tokenizer, prep.yaml, the shards, the mixtures, chance.json. */
int vsynth_finish(vsynth_ctx *x);

#endif
