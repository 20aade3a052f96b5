// ctest-labels: unit
/* Replays the libFuzzer corpora of the data and checkpoint parsers (tests/fuzz/corpus/NAME,
 * kept by tests/fuzz/fuzz_NAME.c) through the same checks as the fuzzers, with any compiler:
 * every input is refused with a message or accepted with its invariants holding. The
 * safetensors corpus has its own replay (test_safetensors_corpus). */
#include <dirent.h>

#include "tests/fuzz/cli_fuzz_one.h"
#include "tests/fuzz/config_fuzz_one.h"
#include "tests/fuzz/jsonl_fuzz_one.h"
#include "tests/fuzz/manifest_fuzz_one.h"
#include "tests/fuzz/media_fuzz_one.h"
#include "tests/fuzz/shard_fuzz_one.h"
#include "tests/fuzz/tok_fuzz_one.h"
#include "tests/fuzz/torch_pt_fuzz_one.h"
#include "tests/fuzz/trainer_state_fuzz_one.h"
#include "tests/fuzz/yaml_fuzz_one.h"
#include "tests/test_safetensors_util.h"
#include "tests/testutil.h"

typedef int (*fuzz_one_fn)(const uint8_t *data, size_t size);

static void replay(const char *name, fuzz_one_fn one, int min_files) {
  const char *src = getenv("VT_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : ".", name);
  DIR *d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  int files = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char path[2048];
    size_t len = 0;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unsigned char *buf = st_read_all(path, &len);
    CHECK_MSG(buf != NULL, "cannot read %s", path);
    if (buf) CHECK_MSG(one(buf, len) == 0, "%s misbehaved", path);
    files++;
    free(buf);
  }
  if (d) closedir(d);
  CHECK_MSG(files >= min_files, "only %d corpus files in %s", files, dir);
  printf("%s: replayed %d corpus files\n", name, files);
}

int main(void) {
  replay("tokenizer", tok_fuzz_one, 5);
  replay("jsonl", jsonl_fuzz_one, 5);
  replay("yaml", yaml_fuzz_one, 5);
  replay("shard", shard_fuzz_one, 5);
  replay("manifest", manifest_fuzz_one, 5);
  replay("cli", cli_fuzz_one, 5);
  replay("media", media_fuzz_one, 5);
  replay("config", config_fuzz_one, 5);
  replay("trainer_state", trainer_state_fuzz_one, 5);
  replay("torch_pt", torch_pt_fuzz_one, 5);
  return vt_test_finish("test_fuzz_corpus");
}
