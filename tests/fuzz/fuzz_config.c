/* libFuzzer target for the stage YAML and the model config.json readers (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_config -max_total_time=600 tests/fuzz/corpus/config */
#include <stdlib.h>

#include "tests/fuzz/config_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (config_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
