/* libFuzzer target for the tokenizer.json loader (build with clang and -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_tokenizer -max_total_time=300 tests/fuzz/corpus/tokenizer */
#include <stdlib.h>

#include "tests/fuzz/tok_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (tok_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
