/* libFuzzer target for the VITA JSON / JSON-lines sample reader (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_jsonl -max_total_time=300 tests/fuzz/corpus/jsonl */
#include <stdlib.h>

#include "tests/fuzz/jsonl_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (jsonl_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
