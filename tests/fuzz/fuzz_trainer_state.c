/* libFuzzer target for trainer.json's reader (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_trainer_state -max_total_time=600 tests/fuzz/corpus/trainer_state */
#include <stdlib.h>

#include "tests/fuzz/trainer_state_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (trainer_state_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
