// ctest-labels: unit
/* The shard reader on hostile files, written from the named seeds of the shard fuzz corpus
 * (tests/fuzz/gen_seeds.py): attributes of the wrong type or shape, counts the datasets do
 * not match, lengths the file cannot hold and media out of range are refused with the
 * shard, the field and the values named; a FIFO is refused before it is opened. */
#include "tests/fuzz/shard_fuzz_one.h"
#include "tests/test_safetensors_util.h"
#include "tests/testutil.h"

#include <sys/stat.h>

static void expect(const char *seed, const char *want) {
  const char *src = getenv("VT_SOURCE_DIR");
  char path[1024], err[1024] = "";
  snprintf(path, sizeof path, "%s/tests/fuzz/corpus/shard/seed-%s", src ? src : ".", seed);
  size_t len = 0;
  unsigned char *buf = st_read_all(path, &len);
  CHECK_MSG(buf != NULL, "cannot read %s", path);
  if (!buf) return;
  char h5[64];
  snprintf(h5, sizeof h5, "/tmp/vt_shard_hostile_%d.h5", (int)getpid());
  shard_fz_in in = {buf, len};
  CHECK(shard_fz_write(&in, h5) == 0);
  shard *s = NULL;
  int rc = shard_open(&s, h5, true, err, sizeof err);
  if (!want) {
    CHECK_MSG(rc == 0, "%s: %s", seed, err);
  } else {
    CHECK_MSG(rc == -1, "%s accepted", seed);
    CHECK_MSG(strstr(err, want) && strstr(err, h5), "%s: \"%s\" lacks \"%s\"", seed, err, want);
  }
  shard_close(s);
  unlink(h5);
  free(buf);
}

int main(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  expect("good", NULL);
  expect("good2", NULL);
  expect("bad_crc", "checksum mismatch");
  expect("version2", "format version 2, this build reads version 3");
  expect("version4", "format version 4, this build reads version 3");
  expect("version_string", "attribute format_version: expected an integer");
  expect("n_samples_array", "attribute n_samples: expected a scalar, found 2 values");
  expect("n_samples_max", "attributes say 9223372036854775807 samples");
  expect("tokens_not_stored", "dataset tokens declares 33554432 elements, more than the file");
  expect("media_kind_7", "sample 0: medium 0 has kind 7");
  expect("media_pos_2", "position 2 (the sample has 2 tokens)");
  char fifo[64], err[512] = "";
  snprintf(fifo, sizeof fifo, "/tmp/vt_shard_fifo_%d.h5", (int)getpid());
  CHECK(mkfifo(fifo, 0600) == 0);
  shard *s = NULL;
  CHECK(shard_open(&s, fifo, true, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "not a regular file"), "%s", err);
  unlink(fifo);
  return vt_test_finish("test_shard_hostile");
}
