/* trainer.json, the trainer's state in a checkpoint: its format tag and the reader that checks
 * it against the checkpoint it sits in before any of it is believed (the step against the
 * manifest's, the step within the total, each phase's optimizer counts within the step, the
 * RNG state, the data cursor). The reader sees only text, so it is fuzzed on its own
 * (tests/fuzz/fuzz_trainer_state.c). */
#ifndef VT_TRAINER_STATE_H
#define VT_TRAINER_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "data/mixture.h"
#include "model/model.h"

#define TRAINER_STATE_FORMAT "vita-train trainer state v2"

/* trainer.json as read, before any of it is applied. */
typedef struct {
  int64_t step, total_steps, tokens_seen, skipped_samples;
  int64_t optim_t[VT_MODEL_MAX_PHASES], optim_skipped[VT_MODEL_MAX_PHASES];
  uint64_t rng[4];
  mix_cursor cursor;
} trainer_state;

/* Parses text (len bytes; path names it in messages) as the state of a checkpoint whose
 * manifest says man_step, of a model called model_name with the phases phase_names[0..n).
 * Returns 0, or -1 with err naming the file and the field. */
int trainer_state_parse(const char *text, size_t len, const char *path, int64_t man_step,
                        const char *model_name, const char *const *phase_names, int n_phases,
                        trainer_state *s, char *err, size_t err_len);

#endif
