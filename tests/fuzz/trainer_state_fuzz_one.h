/* One fuzz input through trainer.json's reader (train/trainer_state.h). The first byte picks
 * the checkpoint it is checked against: bit 0 the model's phases (one "main", or "disc" then
 * "gen"), the rest the manifest's step (0..127); the rest is the file. It must be refused with
 * a message naming the file, or accepted with what resume relies on: the manifest's step, a
 * step within the total, per-phase optimizer counts within the step, a non-zero generator
 * state and a cursor of a valid rank. Shared by the libFuzzer target and the corpus replay;
 * returns 0 when it behaved. */
#ifndef VT_TRAINER_STATE_FUZZ_ONE_H
#define VT_TRAINER_STATE_FUZZ_ONE_H

#include <stdint.h>
#include <string.h>

#include "train/trainer_state.h"

static inline int trainer_state_fuzz_one(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  static const char *const one[] = {"main"}, *const two[] = {"disc", "gen"};
  int n = data[0] & 1 ? 2 : 1;
  int64_t man_step = data[0] >> 1;
  trainer_state s;
  char err[1024] = "";
  if (trainer_state_parse((const char *)data + 1, size - 1, "fuzz/trainer.json", man_step, "fuzz",
                          n == 2 ? two : one, n, &s, err, sizeof err))
    return strstr(err, "fuzz/trainer.json") ? 0 : 1;
  int bad = s.step != man_step || s.step < 0 || s.step > s.total_steps || s.total_steps < 1 ||
            s.tokens_seen < 0 || s.skipped_samples < 0 ||
            !(s.rng[0] | s.rng[1] | s.rng[2] | s.rng[3]) || s.cursor.world < 1 ||
            s.cursor.rank < 0 || s.cursor.rank >= s.cursor.world || s.cursor.epoch < 0 ||
            s.cursor.pos < 0;
  for (int k = 0; !bad && k < n; k++)
    bad = s.optim_t[k] < 0 || s.optim_skipped[k] < 0 || s.optim_t[k] + s.optim_skipped[k] > s.step;
  return bad;
}

#endif
