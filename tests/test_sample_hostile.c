// ctest-labels: unit
/* The sample reader on hostile input (from memory): a line of NUL bytes is a counted bad line,
 * a byte-order mark is dropped only when all three bytes are one, an array element missing its
 * closing brackets costs only itself, inserted_id is range-checked, a directory where a medium
 * belongs is a missing medium, and a FIFO is refused before it is read. */
#include "data/sample.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GOOD(ID)                                                                                   \
  "{\"id\":\"" ID "\",\"conversations\":[{\"from\":\"human\",\"value\":\"hi\"},{\"from\":"         \
  "\"gpt\",\"value\":\"yo\"}]}"

/* Reads every item of text; writes the reasons into why[] (at most n) and returns the count. */
static int reasons(const char *text, size_t len, const sample_config *cfg, sample_reason *why,
                   int n, char *last_err, size_t err_len) {
  sample_reader *r;
  char err[512];
  if (sample_reader_open_mem(&r, "in.json", text, len, err, sizeof err)) return -1;
  sample s;
  sample_reason w;
  int k = 0, rc;
  while ((rc = sample_reader_next(r, cfg, &s, &w, err, sizeof err)) != 0) {
    if (k < n) why[k] = w;
    if (rc == 1) sample_free(&s);
    if (rc == 2 && last_err) snprintf(last_err, err_len, "%s", err);
    k++;
  }
  sample_reader_close(r);
  return k;
}

static int count(const sample_reason *why, int n, sample_reason r) {
  int c = 0;
  for (int i = 0; i < n; i++) c += why[i] == r;
  return c;
}

static void test_nul_line(void) {
  const char text[] = GOOD("a") "\n\0\0\0\0\n" GOOD("b") "\n";
  sample_reason why[8];
  int n = reasons(text, sizeof text - 1, NULL, why, 8, NULL, 0);
  CHECK_MSG(n == 3, "%d items", n);
  CHECK(n == 3 && why[0] == SAMPLE_OK && why[1] == SAMPLE_BAD_JSON && why[2] == SAMPLE_OK);
}

static void test_bom(void) {
  sample_reason why[8];
  const char bom[] = "\xEF\xBB\xBF[" GOOD("a") "]";
  CHECK(reasons(bom, sizeof bom - 1, NULL, why, 8, NULL, 0) == 1 && why[0] == SAMPLE_OK);
  /* U+FF3B (EF BC BB) is a character, not a byte-order mark: the line is not JSON */
  const char fake[] = "\xEF\xBC\xBB[" GOOD("a") "]";
  int n = reasons(fake, sizeof fake - 1, NULL, why, 8, NULL, 0);
  CHECK_MSG(n == 1 && why[0] == SAMPLE_BAD_JSON, "%d items, first %s", n,
            n > 0 ? sample_reason_name(why[0]) : "-");
}

static void test_unclosed_element(void) {
  char text[8192];
  size_t n = (size_t)snprintf(text, sizeof text, "[\n  " GOOD("first") ",\n  %s",
                              "{\"id\":\"broken\",\"conversations\":[{\"from\":\"human\","
                              "\"value\":\"x\"}");
  for (int i = 0; i < 10; i++)
    n += (size_t)snprintf(text + n, sizeof text - n,
                          ",\n  {\"id\":\"g%d\",\"conversations\":["
                          "{\"from\":\"human\",\"value\":\"hi\"},{\"from\":\"gpt\",\"value\":"
                          "\"yo\"}]}",
                          i);
  n += (size_t)snprintf(text + n, sizeof text - n, "\n]\n");
  sample_reason why[32];
  int k = reasons(text, n, NULL, why, 32, NULL, 0);
  CHECK_MSG(k == 12, "%d items, want 12", k);
  CHECK_MSG(count(why, k < 32 ? k : 32, SAMPLE_OK) == 11, "%d good of 11",
            count(why, k < 32 ? k : 32, SAMPLE_OK));
  CHECK(k >= 2 && why[1] == SAMPLE_BAD_JSON);
}

static void test_inserted_id(void) {
  static const char *const bad[] = {"4294967296", "-5", "2", "1.5"};
  char text[1024], err[512];
  sample_reason why[2];
  for (int i = 0; i < 4; i++) {
    size_t n = (size_t)snprintf(text, sizeof text,
                                "{\"id\":\"x\",\"inserted_id\":%s,\"conversations\":[{\"from\":"
                                "\"human\",\"value\":\"hi\"},{\"from\":\"gpt\",\"value\":\"yo\"}]}",
                                bad[i]);
    CHECK(reasons(text, n, NULL, why, 2, err, sizeof err) == 1);
    CHECK_MSG(why[0] == SAMPLE_BAD_FIELD && strstr(err, "inserted_id"), "%s: %s", bad[i], err);
  }
}

static void test_media_dir(void) {
  char dir[] = "/tmp/vt_sample_XXXXXX", text[1024], err[512] = "";
  CHECK(mkdtemp(dir) != NULL);
  sample_config cfg;
  sample_config_default(&cfg);
  size_t n = (size_t)snprintf(text, sizeof text,
                              "{\"id\":\"m\",\"image\":\"%s\",\"conversations\":[{\"from\":"
                              "\"human\",\"value\":\"<image>hi\"},{\"from\":\"gpt\",\"value\":"
                              "\"yo\"}]}",
                              dir);
  sample_reason why[2];
  CHECK(reasons(text, n, &cfg, why, 2, err, sizeof err) == 1);
  CHECK_MSG(why[0] == SAMPLE_MISSING_MEDIA, "%s: %s", sample_reason_name(why[0]), err);
  char fifo[256];
  snprintf(fifo, sizeof fifo, "%s/in.jsonl", dir);
  CHECK(mkfifo(fifo, 0600) == 0);
  sample_reader *r;
  CHECK(sample_reader_open(&r, fifo, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "not a regular file"), "%s", err);
  unlink(fifo);
  rmdir(dir);
}

static void test_config_ranges(void) {
  static const struct {
    const char *text, *want;
  } cases[] = {
      {"max_len: 0\n", "max_len: expected an integer in [1, 16777216], found 0"},
      {"max_len: 4611686018427387904\n", "max_len: expected an integer in [1, 16777216]"},
      {"shard_samples: -1\n", "shard_samples: expected an integer in [1, 16777216], found -1"},
      {"max_len: 10\nmax_len: 20\n", "duplicate key 'max_len' (first given at line 1)"},
      {"check_media: \"false\"\n", "check_media: expected true or false, found the quoted"},
  };
  char path[] = "/tmp/vt_sample_cfg_XXXXXX", err[512];
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  close(fd);
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    FILE *f = fopen(path, "w");
    fputs(cases[i].text, f);
    fclose(f);
    sample_config c;
    sample_config_default(&c);
    err[0] = 0;
    CHECK_MSG(sample_config_load(&c, path, err, sizeof err) == -1 && strstr(err, cases[i].want) &&
                  strstr(err, path),
              "case %zu: %s", i, err);
    sample_config_free(&c);
  }
  unlink(path);
}

int main(void) {
  test_config_ranges();
  test_nul_line();
  test_bom();
  test_unclosed_element();
  test_inserted_id();
  test_media_dir();
  return vt_test_finish("test_sample_hostile");
}
