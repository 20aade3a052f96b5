/* libFuzzer target for the checkpoint manifest parser (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_manifest -max_total_time=300 tests/fuzz/corpus/manifest */
#include <stdlib.h>

#include "tests/fuzz/manifest_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (manifest_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
