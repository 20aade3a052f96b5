/* libFuzzer target for the CLI argument parser (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_cli -max_total_time=300 tests/fuzz/corpus/cli */
#include <stdlib.h>

#include "tests/fuzz/cli_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (cli_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
