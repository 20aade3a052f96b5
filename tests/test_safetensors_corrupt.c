// ctest-labels: unit
/* Corrupt safetensors files are refused with a message naming the file, the tensor and the
 * field, and never read out of bounds (every input sits in a buffer of exactly its size, so
 * the ASan build catches any overread): a table of hand-made headers, a valid file truncated
 * at every length (in memory and on disk), lying header lengths, and byte mutations. */
#include "checkpoints/safetensors.h"
#include "tests/test_safetensors_util.h"
#include "tests/testutil.h"

#define LABEL "corrupt.safetensors"

/* 8-byte length (hl, or the real header length when hl < 0) + header + data_len bytes. */
static unsigned char *make_file(const char *header, size_t data_len, long long hl, size_t *len) {
  size_t h = strlen(header);
  *len = 8 + h + data_len;
  unsigned char *b = (unsigned char *)malloc(*len);
  uint64_t v = hl < 0 ? (uint64_t)h : (uint64_t)hl;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
  memcpy(b + 8, header, h);
  for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)(i * 7 + 1);
  return b;
}

/* Opens buf from memory; returns the error ("" when accepted). */
static const char *try_open(const unsigned char *buf, size_t len, st_file *out) {
  static char err[1024];
  st_file f;
  err[0] = '\0';
  if (st_file_open_mem(&f, buf, len, LABEL, err, sizeof err) == 0) {
    if (out)
      *out = f;
    else
      st_file_close(&f);
    return "";
  }
  CHECK_MSG(err[0] != '\0', "refused without a message");
  CHECK_MSG(f.n == 0 && f.tensors == NULL, "refused but not emptied");
  return err;
}

typedef struct {
  const char *what, *header;
  size_t data_len;
  long long hl; /* -1: the true header length */
  const char *frag[3];
} corrupt_case;

#define T(dt, shape, b, e)                                                                         \
  "{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":[" b "," e "]}"

static const corrupt_case cases[] = {
    {"empty file", "", 0, -2, {"8-byte header length", "0 bytes"}},
    {"header length past the end", "{}", 0, 3, {"header length 3", "past the end of the file"}},
    {"absurd header length", "{}", 0, 1LL << 40, {"larger than the limit"}},
    {"header length 2^62", "{}", 0, 1LL << 62, {"larger than the limit"}},
    {"header length 0", "{}", 0, 0, {"not valid JSON"}},
    {"header cut short", "{\"a\":" T("F32", "[1]", "0", "4") "}", 4, 10, {"not valid JSON"}},
    {"not JSON", "hello!!!", 0, -1, {"not valid JSON"}},
    {"trailing garbage", "{} x", 0, -1, {"not valid JSON"}},
    {"array header", "[1,2,3]", 0, -1, {"expected a JSON object", "an array"}},
    {"string header", "\"abc\"", 0, -1, {"not valid JSON", "'[' or '{' expected"}},
    {"NUL in a name", "{\"a\\u0000b\":" T("F32", "[1]", "0", "4") "}", 4, -1, {"not valid JSON"}},
    {"invalid UTF-8", "{\"a\xff\":" T("F32", "[1]", "0", "4") "}", 4, -1, {"not valid JSON"}},
    {"duplicate names",
     "{\"w\":" T("F32", "[1]", "0", "4") ",\"w\":" T("F32", "[1]", "4", "8") "}",
     8,
     -1,
     {"duplicate tensor name", "w"}},
    {"tensor not an object", "{\"w\":3}", 0, -1, {"tensor \"w\"", "expected an object", "integer"}},
    {"dtype missing",
     "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
     4,
     -1,
     {"tensor \"w\"", "\"dtype\"", "found nothing"}},
    {"dtype not a string",
     "{\"w\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,4]}}",
     4,
     -1,
     {"tensor \"w\"", "\"dtype\"", "found an integer"}},
    {"unknown dtype",
     "{\"w\":" T("Q7", "[1]", "0", "4") "}",
     4,
     -1,
     {"tensor \"w\"", "unknown dtype \"Q7\"", "expected F32, BF16, F16, I32 or I64"}},
    {"unsupported F8_E4M3",
     "{\"w\":" T("F8_E4M3", "[4]", "0", "4") "}",
     4,
     -1,
     {"tensor \"w\"", "F8_E4M3 is not supported"}},
    {"unsupported F64", "{\"w\":" T("F64", "[1]", "0", "8") "}", 8, -1, {"F64 is not supported"}},
    {"lowercase dtype", "{\"w\":" T("f32", "[1]", "0", "4") "}", 4, -1, {"unknown dtype \"f32\""}},
    {"shape missing",
     "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
     4,
     -1,
     {"tensor \"w\"", "\"shape\"", "expected an array, found nothing"}},
    {"negative shape",
     "{\"w\":" T("F32", "[2,-1]", "0", "4") "}",
     4,
     -1,
     {"tensor \"w\"", "\"shape\"[1]", "non-negative integer, found -1"}},
    {"real shape",
     "{\"w\":" T("F32", "[2.5]", "0", "4") "}",
     4,
     -1,
     {"\"shape\"[0]", "a real number"}},
    {"string shape",
     "{\"w\":" T("F32", "[\"2\"]", "0", "4") "}",
     4,
     -1,
     {"\"shape\"[0]", "a string"}},
    {"shape too big for JSON",
     "{\"w\":" T("F32", "[99999999999999999999]", "0", "4") "}",
     4,
     -1,
     {"not valid JSON"}},
    {"element count overflows",
     "{\"w\":" T("F32", "[4294967296,4294967296]", "0", "4") "}",
     4,
     -1,
     {"tensor \"w\"", "overflows 64 bits"}},
    {"byte count overflows",
     "{\"w\":" T("I64", "[4611686018427387904]", "0", "4") "}",
     4,
     -1,
     {"tensor \"w\"", "\"shape\"", "byte count overflows 64 bits"}},
    {"too many dims",
     "{\"w\":" T("F32", "[1,1,1,1,1,1,1,1,1]", "0", "4") "}",
     4,
     -1,
     {"9 dimensions, at most 8"}},
    {"offsets missing",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}",
     4,
     -1,
     {"tensor \"w\"", "\"data_offsets\"", "expected [begin, end]"}},
    {"offsets of length 1",
     "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
     4,
     -1,
     {"\"data_offsets\"", "the wrong length"}},
    {"offsets not integers",
     "{\"w\":" T("F32", "[1]", "0", "4.0") "}",
     4,
     -1,
     {"\"data_offsets\"", "non-integer"}},
    {"begin after end",
     "{\"w\":" T("F32", "[1]", "8", "4") "}",
     8,
     -1,
     {"tensor \"w\"", "0 <= begin <= end", "[8, 4]"}},
    {"negative begin", "{\"w\":" T("F32", "[1]", "-4", "0") "}", 8, -1, {"0 <= begin <= end"}},
    {"offsets past the data",
     "{\"w\":" T("F32", "[4]", "0", "16") "}",
     12,
     -1,
     {"tensor \"w\"", "runs past the end of the data section (12 bytes)"}},
    {"huge end offset",
     "{\"w\":" T("F32", "[1]", "0", "9223372036854775807") "}",
     4,
     -1,
     {"runs past the end of the data section"}},
    {"wrong byte count",
     "{\"w\":" T("F32", "[3]", "0", "8") "}",
     12,
     -1,
     {"tensor \"w\"", "holds 8 bytes, expected 12 for shape [3] of F32"}},
    {"wrong byte count bf16",
     "{\"w\":" T("BF16", "[2,2]", "0", "16") "}",
     16,
     -1,
     {"holds 16 bytes, expected 8 for shape [2, 2] of BF16"}},
    {"empty tensor with bytes",
     "{\"w\":" T("F32", "[0]", "0", "4") "}",
     4,
     -1,
     {"holds 4 bytes, expected 0"}},
    {"overlap",
     "{\"a\":" T("F32", "[2]", "0", "8") ",\"b\":" T("F32", "[2]", "4", "12") "}",
     12,
     -1,
     {"\"a\" and \"b\" overlap", "[0, 8] and [4, 12]"}},
    {"overlap, listed backwards",
     "{\"b\":" T("I32", "[3]", "4", "16") ",\"a\":" T("F32", "[2]", "0", "8") "}",
     16,
     -1,
     {"\"a\" and \"b\" overlap"}},
    {"same range twice",
     "{\"a\":" T("F32", "[1]", "0", "4") ",\"b\":" T("I32", "[1]", "0", "4") "}",
     4,
     -1,
     {"overlap"}},
    {"metadata not an object",
     "{\"__metadata__\":[1]}",
     0,
     -1,
     {"\"__metadata__\"", "expected an object of strings"}},
    {"metadata value not a string",
     "{\"__metadata__\":{\"k\":1}}",
     0,
     -1,
     {"\"__metadata__\"", "key \"k\"", "expected a string, found an integer"}},
};

static void test_table(void) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    const corrupt_case *c = &cases[i];
    size_t len;
    unsigned char *b = make_file(c->header, c->data_len, c->hl < -1 ? 0 : c->hl, &len);
    if (c->hl == -2) len = 0; /* the empty file */
    const char *e = try_open(b, len, NULL);
    CHECK_MSG(e[0] != '\0', "%s: accepted", c->what);
    CHECK_MSG(strstr(e, LABEL) != NULL, "%s: no file name in \"%s\"", c->what, e);
    for (int k = 0; k < 3 && c->frag[k]; k++)
      CHECK_MSG(strstr(e, c->frag[k]) != NULL, "%s: \"%s\" lacks \"%s\"", c->what, e, c->frag[k]);
    free(b);
  }
}

/* Things that look odd but are valid, as the Python library writes or accepts them. */
static void test_accepted(void) {
  const char *ok[] = {
      "{}",
      "{}      ",
      " {\"__metadata__\":{}} ",
      "{\"w\":" T("F32", "[]", "0", "4") "}",
      "{\"w\":" T("F32", "[0,5]", "0", "0") ",\"v\":" T("F32", "[1]", "0", "4") "}",
      "{\"w\":" T("BF16", "[1]", "6", "8") ",\"extra\":{\"dtype\":\"I32\",\"shape\":[1],"
                                           "\"data_offsets\":[0,4],\"unknown\":true}}",
  };
  for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
    size_t len;
    unsigned char *b = make_file(ok[i], 8, -1, &len);
    st_file f;
    const char *e = try_open(b, len, &f);
    CHECK_MSG(e[0] == '\0', "%s refused: %s", ok[i], e);
    if (!e[0]) st_file_close(&f);
    free(b);
  }
}

/* The bytes of a valid file cut at every length, in memory; a few on disk (mmap path). */
static void test_truncation(void) {
  size_t full;
  unsigned char *src = st_read_all(st_fixture("mixed.safetensors"), &full);
  CHECK(src != NULL);
  if (!src) return;
  size_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | src[i];
  st_file f;
  CHECK(try_open(src, full, &f)[0] == '\0');
  int n = f.n;
  st_file_close(&f);
  CHECK(n == 6);
  int bad = 0;
  for (size_t len = 0; len < full; len++) {
    unsigned char *b = (unsigned char *)malloc(len ? len : 1);
    memcpy(b, src, len);
    const char *e = try_open(b, len, NULL);
    const char *want = len < 8        ? "shorter than the 8-byte header length"
                       : len < 8 + hl ? "runs past the end of the file"
                                      : "runs past the end of the data section";
    if (!strstr(e, want)) {
      if (bad++ < 5) fprintf(stderr, "  cut at %zu: \"%s\", expected \"%s\"\n", len, e, want);
    }
    free(b);
  }
  CHECK_MSG(bad == 0, "%d truncations misreported", bad);

  size_t cuts[] = {0, 3, 8, 9, hl + 7, hl + 8, hl + 9, full - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
    const char *path = st_tmp("cut.safetensors");
    FILE *fp = fopen(path, "wb");
    fwrite(src, 1, cuts[i], fp);
    fclose(fp);
    char err[512] = "";
    CHECK_MSG(st_file_open(&f, path, err, sizeof err) != 0 && strstr(err, path),
              "cut at %zu on disk: \"%s\"", cuts[i], err);
  }
  char err[512];
  CHECK(st_file_open(&f, st_tmp("no-such-file"), err, sizeof err) != 0 &&
        strstr(err, "cannot open"));
  CHECK(st_file_open(&f, st_tmp(""), err, sizeof err) != 0 && strstr(err, "not a regular file"));
  free(src);
}

/* Lying header lengths around the true one, and every header byte replaced by a few values:
 * refused with a message or accepted with every tensor inside the buffer. */
static void test_mutations(void) {
  size_t full;
  unsigned char *src = st_read_all(st_fixture("mixed.safetensors"), &full);
  if (!src) return;
  size_t hl = 0;
  for (int i = 7; i >= 0; i--) hl = (hl << 8) | src[i];
  unsigned char *b = (unsigned char *)malloc(full);
  for (long long d = -16; d <= 16; d++) {
    memcpy(b, src, full);
    uint64_t v = (uint64_t)((long long)hl + d);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
    st_file f;
    const char *e = try_open(b, full, &f);
    if (!e[0]) {
      /* only trailing spaces dropped from the header can still parse */
      CHECK_MSG(d <= 0, "header length %+lld accepted", d);
      st_file_close(&f);
    }
  }
  const unsigned char vals[] = {0, '"', '}', '9', '-', 0xff};
  int accepted = 0, checked = 0;
  for (size_t pos = 0; pos < 8 + hl; pos++)
    for (size_t k = 0; k < sizeof vals; k++) {
      memcpy(b, src, full);
      b[pos] = vals[k];
      st_file f;
      const char *e = try_open(b, full, &f);
      if (e[0]) continue;
      accepted++;
      for (int i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        checked++;
        CHECK((const unsigned char *)t->data >= b + 8 + f.header_len &&
              (const unsigned char *)t->data + t->nbytes <= b + full);
      }
      st_file_close(&f);
    }
  CHECK(accepted > 0 && checked > 0); /* e.g. digits inside values, bytes in padding */
  free(b);
  free(src);
}

/* A header nested a million levels deep stops at jansson's depth limit, not the stack's. */
static void test_deep(void) {
  size_t n = 1000000, len;
  char *h = (char *)malloc(2 * n + 7);
  memcpy(h, "{\"a\":", 5);
  memset(h + 5, '[', n);
  memset(h + 5 + n, ']', n);
  memcpy(h + 5 + 2 * n, "}", 2);
  unsigned char *b = make_file(h, 0, -1, &len);
  const char *e = try_open(b, len, NULL);
  CHECK_MSG(strstr(e, "not valid JSON") && strstr(e, "depth"), "deep header: \"%s\"", e);
  free(b);
  free(h);
}

int main(void) {
  test_table();
  test_deep();
  test_accepted();
  test_truncation();
  test_mutations();
  return vt_test_finish("test_safetensors_corrupt");
}
