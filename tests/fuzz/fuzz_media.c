/* libFuzzer target for the image, audio and video decoders (clang, -DVT_FUZZ=ON):
 *   build-fuzz/fuzz_media -max_total_time=600 tests/fuzz/corpus/media */
#include <stdlib.h>

#include "tests/fuzz/media_fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (media_fuzz_one(data, size)) abort(); /* an invariant broke: report it as a crash */
  return 0;
}
