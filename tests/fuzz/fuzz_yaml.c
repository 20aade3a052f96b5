/* libFuzzer target for the shared YAML reader and the data config (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_yaml -max_total_time=300 tests/fuzz/corpus/yaml */
#include <stdlib.h>

#include "tests/fuzz/yaml_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (yaml_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
