// ctest-labels: unit
/* Replays the libFuzzer corpus of the safetensors parser (tests/fuzz/corpus/safetensors, kept
 * by tests/fuzz/fuzz_safetensors.c) through the same checks as the fuzzer, with any compiler:
 * every input is refused with a message or accepted with every tensor in bounds. */
#include <dirent.h>

#include "tests/fuzz/st_fuzz_one.h"
#include "tests/test_safetensors_util.h"
#include "tests/testutil.h"

int main(void) {
  const char *src = getenv("VT_SOURCE_DIR");
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/safetensors", src ? src : ".");
  DIR *d = opendir(dir);
  CHECK_MSG(d != NULL, "cannot open %s", dir);
  int files = 0;
  struct dirent *e;
  while (d && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t n = strlen(dir) + strlen(e->d_name) + 2, len = 0;
    char *path = (char *)malloc(n);
    if (!path) break;
    snprintf(path, n, "%s/%s", dir, e->d_name);
    unsigned char *buf = st_read_all(path, &len);
    CHECK_MSG(buf != NULL, "cannot read %s", path);
    if (buf) CHECK_MSG(st_fuzz_one(buf, len) == 0, "%s misbehaved", path);
    files++;
    free(buf);
    free(path);
  }
  if (d) closedir(d);
  CHECK_MSG(files >= 10, "only %d corpus files in %s", files, dir);
  printf("replayed %d corpus files\n", files);
  return vt_test_finish("test_safetensors_corpus");
}
