/* libFuzzer target for the torch.save reader's unpickler (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_torch_pt -max_total_time=300 tests/fuzz/corpus/torch_pt */
#include <stdlib.h>

#include "tests/fuzz/torch_pt_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (torch_pt_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
