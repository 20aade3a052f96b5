/* libFuzzer target for the safetensors header parser (build with clang and -DVT_FUZZ=ON):
 *   build/tests/fuzz_safetensors -max_total_time=300 tests/fuzz/corpus/safetensors
 * A behaving input is refused with a message or accepted with every tensor in bounds. */
#include <stdlib.h>

#include "tests/fuzz/st_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (st_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
