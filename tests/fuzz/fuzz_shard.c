/* libFuzzer target for the shard reader (HDF5 attributes and datasets) (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_shard -max_total_time=300 tests/fuzz/corpus/shard */
#include <stdlib.h>

#include "tests/fuzz/shard_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (shard_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
