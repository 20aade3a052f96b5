// ctest-labels: unit
/* The shared YAML reader (data/yamlcfg.h) and the regular-file helper (autograd/regfile.h):
 * duplicate keys name both lines, nesting is bounded, numbers are plain and finite, integers
 * stay in range, and a FIFO or directory is refused before it is read. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/checked.h"
#include "autograd/regfile.h"
#include "data/yamlcfg.h"
#include "tests/testutil.h"

static int load(ycfg *y, const char *text, char *err, size_t n) {
  return ycfg_load_mem(y, "cfg.yaml", text, strlen(text), err, n);
}

/* Loads text and reads key of the root with kind 'i' (int), 'f' (float) or 'b' (bool). */
static int read_one(const char *text, const char *key, char kind, char *err, size_t n) {
  ycfg y;
  if (load(&y, text, err, n)) return -1;
  yaml_node_t *v = ycfg_get(&y, ycfg_root(&y), key);
  long long i;
  double f;
  bool b;
  int rc = kind == 'i'   ? ycfg_int(&y, v, key, &i, err, n)
           : kind == 'f' ? ycfg_float(&y, v, key, &f, err, n)
                         : ycfg_bool(&y, v, key, &b, err, n);
  ycfg_free(&y);
  return rc;
}

static void test_duplicates(void) {
  char err[512] = "";
  ycfg y;
  CHECK(load(&y, "lr: 1\nsteps: 3\nlr: 2\n", err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "cfg.yaml:3: duplicate key 'lr' (first given at line 1)"), "%s", err);
  CHECK(load(&y, "train:\n  a: 1\nother: 2\ntrain:\n  b: 2\n", err, sizeof err) == -1);
  CHECK_MSG(strstr(err, ":4: duplicate key 'train' (first given at line 1)"), "%s", err);
  CHECK(load(&y, "datasets:\n  - {name: a, ratio: 1, ratio: 2}\n", err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "duplicate key 'ratio'"), "%s", err);
  /* the same key in two different mappings is fine */
  CHECK_MSG(load(&y, "a: {x: 1}\nb: {x: 2}\n", err, sizeof err) == 0, "%s", err);
  ycfg_free(&y);
}

static void test_depth(void) {
  char err[512] = "", text[4096];
  ycfg y;
  size_t n = 0;
  for (int i = 0; i < 64; i++) text[n++] = '[';
  for (int i = 0; i < 64; i++) text[n++] = ']';
  text[n] = 0;
  CHECK_MSG(load(&y, text, err, sizeof err) == 0, "64 levels: %s", err);
  ycfg_free(&y);
  n = 0;
  for (int i = 0; i < 2000; i++) text[n++] = '[';
  text[n] = 0;
  CHECK(load(&y, text, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "nesting deeper than 64 levels"), "%s", err);
  const char nul[] = "a: 1\0b: 2\n";
  CHECK(ycfg_load_mem(&y, "cfg.yaml", nul, sizeof nul - 1, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "NUL byte at offset 4"), "%s", err);
}

static void test_types(void) {
  char err[512] = "";
  CHECK_MSG(read_one("lr: 1e-4\n", "lr", 'f', err, sizeof err) == 0, "%s", err);
  CHECK(read_one("lr: inf\n", "lr", 'f', err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "cfg.yaml:1: lr: expected a finite number, found inf"), "%s", err);
  CHECK(read_one("lr: 1e400\n", "lr", 'f', err, sizeof err) == -1);
  CHECK(read_one("lr: nan\n", "lr", 'f', err, sizeof err) == -1);
  CHECK(read_one("lr: \"1e-4\"\n", "lr", 'f', err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "found the quoted string \"1e-4\""), "%s", err);
  CHECK(read_one("steps: '3'\n", "steps", 'i', err, sizeof err) == -1);
  CHECK(read_one("steps: 99999999999999999999\n", "steps", 'i', err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "outside the 64-bit integer range"), "%s", err);
  CHECK(read_one("steps: [1]\n", "steps", 'i', err, sizeof err) == -1);
  CHECK(read_one("pack: \"true\"\n", "pack", 'b', err, sizeof err) == -1);
  CHECK_MSG(read_one("pack: true\n", "pack", 'b', err, sizeof err) == 0, "%s", err);
  ycfg y;
  CHECK(load(&y, "max_len: -1\n", err, sizeof err) == 0);
  long long v = 7;
  CHECK(ycfg_int_range(&y, ycfg_get(&y, ycfg_root(&y), "max_len"), "max_len", 1, 1 << 20, &v, err,
                       sizeof err) == -1);
  CHECK_MSG(strstr(err, "max_len: expected an integer in [1, 1048576], found -1"), "%s", err);
  CHECK(v == 7);
  ycfg_free(&y);
}

static void test_regular_files(void) {
  char dir[] = "/tmp/vt_yamlcfg_XXXXXX", path[256], err[512] = "";
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/fifo.yaml", dir);
  CHECK(mkfifo(path, 0600) == 0);
  ycfg y;
  CHECK(ycfg_load(&y, path, err, sizeof err) == -1); /* returns at once, no writer needed */
  CHECK_MSG(strstr(err, "fifo.yaml: cannot open: not a regular file"), "%s", err);
  unlink(path);
  CHECK(ycfg_load(&y, dir, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "not a regular file (a directory)"), "%s", err);
  CHECK(vt_open_regular("/dev/null", NULL, err, sizeof err) == -1);
  snprintf(path, sizeof path, "%s/big.txt", dir);
  FILE *f = fopen(path, "wb");
  for (int i = 0; i < 100; i++) fputs("0123456789", f);
  fclose(f);
  size_t len = 0;
  char *buf = vt_read_regular(path, 1000, &len, err, sizeof err);
  CHECK(buf && len == 1000 && buf[1000] == 0);
  free(buf);
  CHECK(vt_read_regular(path, 999, &len, err, sizeof err) == NULL);
  CHECK_MSG(strstr(err, "1000 bytes, more than the 999"), "%s", err);
  unlink(path);
  rmdir(dir);
}

static void test_checked(void) {
  int64_t r = 5;
  CHECK(vt_mul_i64_overflows(INT64_C(1) << 62, 2, &r) && r == 5);
  CHECK(!vt_mul_i64_overflows(INT64_C(1) << 31, INT64_C(1) << 31, &r) && r == INT64_C(1) << 62);
  CHECK(vt_add_i64_overflows(INT64_MAX, 1, &r));
  size_t s = 0;
  CHECK(vt_bytes_overflows(-1, 4, &s));
  CHECK(vt_bytes_overflows(INT64_C(1) << 62, 8, &s));
  CHECK(!vt_bytes_overflows(1000, 8, &s) && s == 8000);
  int64_t shape[3] = {INT64_C(1) << 32, INT64_C(1) << 31, 2}, p = 0;
  CHECK(vt_prod_i64_overflows(shape, 3, &p));
  shape[0] = 3;
  CHECK(!vt_prod_i64_overflows(shape, 3, &p) && p == INT64_C(3) << 32);
  shape[1] = -1;
  CHECK(vt_prod_i64_overflows(shape, 2, &p));
}

int main(void) {
  test_duplicates();
  test_depth();
  test_types();
  test_regular_files();
  test_checked();
  return vt_test_finish("test_yamlcfg");
}
