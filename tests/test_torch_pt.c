// ctest-labels: unit
/* The torch.save reader (checkpoints/torch_pt.h) against checkpoints torch itself wrote
 * (tests/reference/gen_torch_pt_fixtures.py): every tensor of a state dict (f32, bf16, f16,
 * int64, a Parameter, transposed, offset and shared-storage views, weight norm both ways) and
 * of a nested codec dict comes out bit-identical to what torch gives, as safetensors written by
 * torch_pt_write_safetensors; the legacy format and a pickle calling os.system are refused.
 * Then hostile input: hand-made pickles (missing storage, storage too short, absurd sizes,
 * negative strides, bad opcodes, disallowed globals and callables, cycles, bad memo reads),
 * the fixture truncated at many lengths and with bytes flipped, and mutated pickles wrapped in
 * valid archives: each refused with a message naming the file, or read within bounds. */
#include <stdint.h>

#include "checkpoints/safetensors.h"
#include "checkpoints/torch_pt.h"
#include "tests/fuzz/torch_pt_fuzz_one.h"
#include "tests/test_safetensors_util.h"
#include "tests/testutil.h"

/* tests/fixtures/torch_pt/name */
static const char *fx(const char *name) {
  char rel[256];
  snprintf(rel, sizeof rel, "../torch_pt/%s", name);
  return st_fixture(rel);
}

/* pt read and written as safetensors must equal the expected file byte for byte per tensor. */
static void check_against(const char *pt, const char *want, const char *prefix, int n_want) {
  torch_pt_file f;
  char err[1024] = "";
  int rc = torch_pt_open(&f, fx(pt), err, sizeof err);
  CHECK_MSG(rc == 0, "%s: %s", pt, err);
  if (rc) return;
  CHECK_MSG(!strcmp(f.sd_prefix, prefix), "%s: state dict under \"%s\"", pt, f.sd_prefix);
  const char *out = st_tmp(pt);
  int n = 0;
  rc = torch_pt_write_safetensors(&f, out, NULL, NULL, &n, NULL, err, sizeof err);
  CHECK_MSG(rc == 0 && n == n_want, "%s: %d tensors written (want %d): %s", pt, n, n_want, err);
  torch_pt_close(&f);
  st_file a, b;
  if (rc || st_file_open(&a, out, err, sizeof err)) return;
  if (st_file_open(&b, fx(want), err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    st_file_close(&a);
    return;
  }
  CHECK_MSG(a.n == b.n, "%s: %d tensors, expected %d", pt, a.n, b.n);
  for (int i = 0; i < b.n; i++) {
    const st_tensor *w = &b.tensors[i], *g = st_find(&a, w->name);
    CHECK_MSG(g != NULL, "%s: %s missing", pt, w->name);
    if (!g) continue;
    bool same = g->dtype == w->dtype && g->ndim == w->ndim && g->nbytes == w->nbytes &&
                !memcmp(g->shape, w->shape, sizeof(int64_t) * (size_t)w->ndim) &&
                !memcmp(g->data, w->data, w->nbytes);
    CHECK_MSG(same, "%s: %s differs from torch's values", pt, w->name);
  }
  st_file_close(&a);
  st_file_close(&b);
}

static void test_fixtures(void) {
  check_against("state.pt", "state.safetensors", "model.", 16);
  check_against("codec.pt", "codec.safetensors", "", 14);
  /* direct reads: the transposed view and the shared storage */
  torch_pt_file f;
  char err[1024] = "";
  CHECK_MSG(torch_pt_open(&f, fx("state.pt"), err, sizeof err) == 0, "%s", err);
  const torch_pt_tensor *t = torch_pt_find(&f, "model.view_t");
  const torch_pt_tensor *a = torch_pt_find(&f, "model.shared_a"),
                        *b = torch_pt_find(&f, "model.shared_b");
  CHECK(t && t->ndim == 2 && t->shape[0] == 4 && t->stride[0] == 1 && t->stride[1] == 4);
  CHECK(a && b && a->storage == b->storage && b->offset == 4);
  CHECK(torch_pt_find(&f, "opt") == NULL && torch_pt_find(&f, "epoch") == NULL);
  if (t) {
    float v[12];
    CHECK(torch_pt_read(&f, t, VT_F32, v, err, sizeof err) == 0);
    for (int i = 0; i < 12; i++) CHECK(v[i] == (float)((i % 3) * 4 + i / 3));
    int64_t iv[12];
    CHECK(torch_pt_read(&f, t, VT_I64, iv, err, sizeof err) != 0 && strstr(err, "view_t"));
  }
  torch_pt_close(&f);
  CHECK(torch_pt_open(&f, fx("legacy.pt"), err, sizeof err) != 0 && strstr(err, "legacy"));
  CHECK(f.n == 0 && f.zip == NULL);
  CHECK_MSG(torch_pt_open(&f, fx("evil.pt"), err, sizeof err) != 0 && strstr(err, "system") &&
                strstr(err, "not allowed") && strstr(err, "evil.pt"),
            "%s", err);
  CHECK(torch_pt_open(&f, fx("missing.pt"), err, sizeof err) != 0 && strstr(err, "missing.pt"));
  CHECK(torch_pt_open(&f, fx("codec.safetensors"), err, sizeof err) != 0 &&
        strstr(err, "not a torch.save zip"));
}

/* ---- hand-made pickles ---- */

typedef struct {
  unsigned char b[4096];
  size_t n;
} pk;

static void put(pk *p, const void *s, size_t n) {
  memcpy(p->b + p->n, s, n);
  p->n += n;
}
static void put_str(pk *p, const char *s) {
  unsigned char h[5] = {'X', 0, 0, 0, 0};
  size_t n = strlen(s);
  for (int i = 0; i < 4; i++) h[1 + i] = (unsigned char)(n >> (8 * i));
  put(p, h, 5);
  put(p, s, n);
}
static void put_int(pk *p, int64_t v) { /* LONG1 with 8 bytes */
  unsigned char h[10] = {0x8a, 8};
  for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)((uint64_t)v >> (8 * i));
  put(p, h, 10);
}
static void put_ints(pk *p, const int64_t *v, int n) {
  put(p, "(", 1);
  for (int i = 0; i < n; i++) put_int(p, v[i]);
  put(p, "t", 1);
}

/* {"w": _rebuild_tensor_v2(storage(type, key, numel), offset, size, stride, False, {})}. */
static void tensor_pickle(pk *p, const char *type, const char *key, int64_t numel, int64_t off,
                          const int64_t *size, const int64_t *stride, int nd) {
  p->n = 0;
  put(p, "\x80\x02}", 3);
  put_str(p, "w");
  const char *g = "ctorch._utils\n_rebuild_tensor_v2\n";
  put(p, g, strlen(g));
  put(p, "((", 2);
  put_str(p, "storage");
  char t[64];
  snprintf(t, sizeof t, "ctorch\n%s\n", type);
  put(p, t, strlen(t));
  put_str(p, key);
  put_str(p, "cpu");
  put_int(p, numel);
  put(p, "tQ", 2);
  put_int(p, off);
  put_ints(p, size, nd);
  put_ints(p, stride, nd);
  put(p, "\x89}tRs.", 6);
}

/* Opens the pickle wrapped like a fuzz input; returns the message ("" when accepted). */
static const char *try_pickle(const unsigned char *b, size_t n) {
  static char err[1024];
  err[0] = 0;
  CHECK_MSG(torch_pt_fuzz_one(b, n) == 0, "a pickle misbehaved");
  static unsigned char storage[TP_FUZZ_STORAGE_BYTES];
  const char *names[] = {"fz/data.pkl", "fz/data/0"};
  const void *bufs[] = {b, storage};
  size_t lens[] = {n, sizeof storage}, len = 0;
  unsigned char *z = tp_fuzz_zip(names, bufs, lens, 2, &len);
  torch_pt_file f;
  if (z && torch_pt_open_mem(&f, z, len, "hostile.pt", err, sizeof err) == 0) {
    torch_pt_close(&f);
    err[0] = 0;
  } else if (z)
    CHECK_MSG(strstr(err, "hostile.pt") != NULL, "message without the file: %s", err);
  free(z);
  return err;
}

static void expect(const unsigned char *b, size_t n, const char *what) {
  const char *e = try_pickle(b, n);
  CHECK_MSG(strstr(e, what) != NULL, "expected \"%s\", got \"%s\"", what, e);
}

static void test_hostile_pickles(void) {
  pk p;
  int64_t s1[] = {4}, st1[] = {1}, s2[] = {2, 3}, st2[] = {3, 1};
  tensor_pickle(&p, "FloatStorage", "0", 64, 0, s1, st1, 1);
  CHECK_MSG(try_pickle(p.b, p.n)[0] == 0, "a good pickle refused: %s", try_pickle(p.b, p.n));
  /* a training snapshot's state dict under "state_dict": found there, named without it */
  pk nest = {.n = 0};
  put(&nest, "\x80\x02}", 3);
  put_str(&nest, "state_dict");
  put(&nest, p.b + 2, p.n - 3); /* the inner dict: without PROTO and STOP */
  put(&nest, "s.", 2);
  static unsigned char storage[TP_FUZZ_STORAGE_BYTES];
  const char *names[] = {"fz/data.pkl", "fz/data/0"};
  const void *bufs[] = {nest.b, storage};
  size_t lens[] = {nest.n, sizeof storage}, zl = 0;
  unsigned char *z = tp_fuzz_zip(names, bufs, lens, 2, &zl);
  torch_pt_file f;
  char err[1024] = "";
  CHECK_MSG(z && torch_pt_open_mem(&f, z, zl, "nested.pt", err, sizeof err) == 0, "%s", err);
  if (z && !err[0]) {
    CHECK(!strcmp(f.sd_prefix, "state_dict.") && f.n == 1 &&
          !strcmp(f.tensors[0].name, "state_dict.w"));
    torch_pt_close(&f);
  }
  free(z);
  tensor_pickle(&p, "FloatStorage", "7", 4, 0, s1, st1, 1);
  expect(p.b, p.n, "no such entry");
  tensor_pickle(&p, "FloatStorage", "0", 65, 0, s1, st1, 1); /* 260 bytes of a 256-byte entry */
  expect(p.b, p.n, "claims 65 F32 elements");
  tensor_pickle(&p, "FloatStorage", "0", 6, 1, s2, st2, 2); /* last element 1 + 3 + 2 = 6 */
  expect(p.b, p.n, "too short");
  int64_t big[] = {INT64_C(1) << 62, 4}, bst[] = {4, 1};
  tensor_pickle(&p, "FloatStorage", "0", 64, 0, big, bst, 2);
  expect(p.b, p.n, "too short");
  int64_t neg[] = {-1};
  tensor_pickle(&p, "FloatStorage", "0", 64, 8, s1, neg, 1);
  expect(p.b, p.n, "too short");
  tensor_pickle(&p, "FloatStorage", "0", INT64_C(1) << 62, 0, s1, st1, 1);
  expect(p.b, p.n, "bad key or element count");
  tensor_pickle(&p, "FloatStorage", "../x", 4, 0, s1, st1, 1);
  expect(p.b, p.n, "bad key");
  tensor_pickle(&p, "UntypedThing", "0", 4, 0, s1, st1, 1);
  expect(p.b, p.n, "torch.UntypedThing: not allowed");
  tensor_pickle(&p, "FloatStorage", "0", 64, 0, s1, st1, 1);
  p.b[p.n - 2] = 0xff; /* SETITEM -> an unknown opcode */
  expect(p.b, p.n, "opcode 0xff");
  expect(p.b, p.n - 20, "truncated");
  /* a storage type called with REDUCE, NEWOBJ, a dict that holds itself, an unset memo slot,
   * not a dict, a stack underflow, an unknown protocol, a huge memo index, a 72-bit integer */
  static const struct {
    const char *pkl;
    size_t n;
    const char *what;
  } bad[] = {
#define BAD(s, what) {s, sizeof s - 1, what}
      BAD("\x80\x02}X\x01\x00\x00\x00wctorch\nFloatStorage\n)Rs.", "REDUCE of torch.FloatStorage"),
      BAD("\x80\x02}X\x01\x00\x00\x00wccollections\nOrderedDict\n)\x81s.", "NEWOBJ"),
      BAD("\x80\x02}q\x00X\x01\x00\x00\x00"
          "a"
          "h\x00s.",
          "deeper than 64"),
      BAD("\x80\x02}h\x05.", "memo entry read before"),
      BAD("\x80\x02].", "not a dict"),
      BAD("\x80\x02s.", "underflow"),
      BAD("\x80\x09}.", "protocol"),
      BAD("\x80\x02}r\xff\xff\xff\xff.", "memo index"),
      BAD("\x80\x02}X\x01\x00\x00\x00"
          "a"
          "\x8a\x09\x01\x01\x01\x01\x01\x01\x01\x01\x01s.",
          "wider than 64 bits"),
#undef BAD
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect((const unsigned char *)bad[i].pkl, bad[i].n, bad[i].what);
}

/* ---- mutations of the fixtures ---- */

static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint32_t next_u32(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng >> 11);
}

static void test_mutations(void) {
  size_t len = 0;
  unsigned char *orig = st_read_all(fx("state.pt"), &len);
  CHECK(orig != NULL && len > 1000);
  if (!orig) return;
  char err[1024];
  int refused = 0, accepted = 0;
  /* truncated archives: the central directory is at the end, so every cut is refused */
  for (size_t n = 0; n < len; n += n < 64 ? 1 : 37) {
    unsigned char *b = malloc(n ? n : 1);
    memcpy(b, orig, n);
    torch_pt_file f;
    err[0] = 0;
    int rc = torch_pt_open_mem(&f, b, n, "cut.pt", err, sizeof err);
    CHECK_MSG(rc != 0 && strstr(err, "cut.pt"), "cut at %zu: %s", n, rc ? err : "accepted");
    if (!rc) torch_pt_close(&f);
    free(b);
  }
  /* flipped bytes anywhere in the archive: refused with a message, or read within bounds */
  for (int it = 0; it < 400; it++) {
    unsigned char *b = malloc(len);
    memcpy(b, orig, len);
    for (int k = 0; k < 1 + (int)(next_u32() % 3); k++)
      b[next_u32() % len] ^= (unsigned char)(1 + next_u32() % 255);
    torch_pt_file f;
    err[0] = 0;
    if (torch_pt_open_mem(&f, b, len, "flip.pt", err, sizeof err)) {
      CHECK_MSG(strstr(err, "flip.pt") != NULL, "%s", err);
      refused++;
    } else {
      CHECK(torch_pt_fuzz_check(&f, false) == 0); /* a flipped storage fails its CRC on read */
      torch_pt_close(&f);
      accepted++;
    }
    free(b);
  }
  free(orig);
  printf("archive flips: %d refused, %d read\n", refused, accepted);
  /* mutated pickles in valid archives: the unpickler itself */
  size_t pl = 0;
  char seed[1024];
  const char *src = getenv("VT_SOURCE_DIR");
  snprintf(seed, sizeof seed, "%s/tests/fuzz/corpus/torch_pt/seed-state", src ? src : ".");
  unsigned char *pkl = st_read_all(seed, &pl);
  CHECK_MSG(pkl != NULL, "cannot read %s", seed);
  if (!pkl) return;
  int bad = 0;
  for (int it = 0; it < 1500; it++) {
    unsigned char *b = malloc(pl + 16);
    memcpy(b, pkl, pl);
    size_t n = pl;
    switch (next_u32() % 3) {
    case 0: b[next_u32() % n] ^= (unsigned char)(1 + next_u32() % 255); break;
    case 1: n = next_u32() % n; break;
    default: { /* overwrite a byte with an opcode torch emits */
      static const unsigned char ops[] = "()tRQqhsu}]ab.K\x85\x86\x87\x88\x89\x8a";
      b[next_u32() % n] = ops[next_u32() % (sizeof ops - 1)];
    }
    }
    bad += torch_pt_fuzz_one(b, n) != 0;
    free(b);
  }
  CHECK_MSG(bad == 0, "%d mutated pickles misbehaved", bad);
  free(pkl);
}

int main(void) {
  test_fixtures();
  test_hostile_pickles();
  test_mutations();
  return vt_test_finish("test_torch_pt");
}
