// ctest-labels: unit
/* safetensors I/O: the reference files written by the Python library (one per dtype, a mixed
 * file, a 2-shard set) read exactly and rewritten byte for byte; round trips of every dtype in
 * any order; dtype conversions; sharded sets and bad indexes; vt_params load/save with every
 * missing, unexpected and mismatched name listed. Corrupt files: test_safetensors_corrupt.c. */
#include <math.h>

#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_index.h"
#include "checkpoints/safetensors_params.h"
#include "checkpoints/safetensors_write.h"
#include "tests/test_safetensors_util.h"
#include "tests/testutil.h"

static float ramp(long i, long offset, double step) { return (float)((double)(i - offset) * step); }

static const uint16_t bf16_special[6] = {0x7F80, 0xFF80, 0x8000, 0x0001, 0x3F80, 0x7FC0};
static const uint16_t f16_special[6] = {0x7C00, 0xFC00, 0x8000, 0x0001, 0x3C00, 0x7E00};

static bool has(const char *s, const char *frag) { return s && strstr(s, frag) != NULL; }

static bool shape_is(const st_tensor *t, int ndim, int64_t a, int64_t b, int64_t c) {
  int64_t want[3] = {a, b, c};
  if (!t || t->ndim != ndim) return false;
  for (int d = 0; d < ndim; d++)
    if (t->shape[d] != want[d]) return false;
  return true;
}

/* ---- the Python library's files, read exactly ---------------------------------------- */

static void test_fixture_reads(void) {
  char err[512];
  st_file f;
  float fbuf[64];
  uint16_t hbuf[64];

  CHECK_MSG(st_file_open(&f, st_fixture("f32.safetensors"), err, sizeof err) == 0, "%s", err);
  CHECK(f.n == 4);
  CHECK(st_metadata(&f, "format") && strcmp(st_metadata(&f, "format"), "pt") == 0);
  CHECK(st_metadata(&f, "nope") == NULL);
  const st_tensor *a = st_find(&f, "a"), *b = st_find(&f, "b");
  const st_tensor *sc = st_find(&f, "scalar"), *em = st_find(&f, "empty");
  CHECK(a && b && sc && em && !st_find(&f, "c") && !st_find(&f, ""));
  if (a && b && sc && em) {
    CHECK(a->dtype == VT_F32 && shape_is(a, 2, 2, 3, 0) && a->numel == 6 && a->nbytes == 24);
    const float *pa = (const float *)st_tensor_data(a, VT_F32);
    CHECK(pa != NULL && st_tensor_data(a, VT_BF16) == NULL); /* zero-copy only in its dtype */
    for (int i = 0; pa && i < 6; i++) CHECK(pa[i] == ramp(i, 5, 0.25));
    CHECK(st_tensor_read(b, VT_F32, fbuf, 16, err, sizeof err) == 0);
    for (int i = 0; i < 4; i++) CHECK(fbuf[i] == (float)(i * 0.1));
    CHECK(sc->ndim == 0 && sc->numel == 1);
    CHECK(st_tensor_read(sc, VT_F32, fbuf, 4, err, sizeof err) == 0 && fbuf[0] == 3.5f);
    CHECK(shape_is(em, 2, 0, 4, 0) && em->numel == 0 && em->nbytes == 0);
    CHECK(st_tensor_read(em, VT_BF16, hbuf, 0, err, sizeof err) == 0);
    /* f32 -> bf16 rounds as autograd/dtype.h does */
    CHECK(st_tensor_read(b, VT_BF16, hbuf, 8, err, sizeof err) == 0);
    for (int i = 0; i < 4; i++) CHECK(hbuf[i] == vt_f32_to_bf16((float)(i * 0.1)));
    CHECK(st_tensor_read(b, VT_BF16, hbuf, 6, err, sizeof err) != 0 && has(err, "expected 8"));
  }
  st_file_close(&f);
  st_file_close(&f); /* closing twice is harmless */

  CHECK_MSG(st_file_open(&f, st_fixture("bf16.safetensors"), err, sizeof err) == 0, "%s", err);
  const st_tensor *w = st_find(&f, "w"), *sp = st_find(&f, "special");
  CHECK(w && sp && w->dtype == VT_BF16 && shape_is(w, 2, 3, 4, 0));
  if (w && sp) {
    const uint16_t *pw = (const uint16_t *)st_tensor_data(w, VT_BF16);
    CHECK(pw != NULL);
    for (int i = 0; pw && i < 12; i++) CHECK(pw[i] == vt_f32_to_bf16(ramp(i, 6, 0.125)));
    CHECK(st_tensor_read(w, VT_F32, fbuf, 48, err, sizeof err) == 0);
    for (int i = 0; i < 12; i++) CHECK(fbuf[i] == ramp(i, 6, 0.125));
    CHECK(st_tensor_read(sp, VT_BF16, hbuf, 12, err, sizeof err) == 0);
    CHECK(memcmp(hbuf, bf16_special, 12) == 0);
    CHECK(st_tensor_read(sp, VT_F32, fbuf, 24, err, sizeof err) == 0);
    CHECK(isinf(fbuf[0]) && fbuf[0] > 0 && isinf(fbuf[1]) && fbuf[1] < 0);
    CHECK(fbuf[2] == 0 && signbit(fbuf[2]) && fbuf[3] == ldexpf(1, -133) && fbuf[4] == 1);
    CHECK(isnan(fbuf[5]));
  }
  st_file_close(&f);

  CHECK_MSG(st_file_open(&f, st_fixture("f16.safetensors"), err, sizeof err) == 0, "%s", err);
  const st_tensor *h = st_find(&f, "h");
  sp = st_find(&f, "special");
  CHECK(h && sp && h->dtype == VT_F16 && shape_is(h, 3, 2, 2, 2));
  if (h && sp) {
    CHECK(st_tensor_read(h, VT_F32, fbuf, 32, err, sizeof err) == 0);
    for (int i = 0; i < 8; i++) CHECK(fbuf[i] == ramp(i, 4, 0.5));
    CHECK(st_tensor_read(h, VT_BF16, hbuf, 16, err, sizeof err) == 0); /* f16 -> bf16 */
    for (int i = 0; i < 8; i++) CHECK(hbuf[i] == vt_f32_to_bf16(ramp(i, 4, 0.5)));
    CHECK(st_tensor_read(sp, VT_F16, hbuf, 12, err, sizeof err) == 0);
    CHECK(memcmp(hbuf, f16_special, 12) == 0);
    CHECK(st_tensor_read(sp, VT_F32, fbuf, 24, err, sizeof err) == 0);
    CHECK(isinf(fbuf[0]) && isinf(fbuf[1]) && signbit(fbuf[2]) && fbuf[3] == ldexpf(1, -24));
    CHECK(isnan(fbuf[5]));
  }
  st_file_close(&f);

  int32_t ibuf[8];
  int64_t lbuf[8];
  const int64_t ids[5] = {INT32_MIN, -1, 0, 1, INT32_MAX};
  CHECK_MSG(st_file_open(&f, st_fixture("i32.safetensors"), err, sizeof err) == 0, "%s", err);
  const st_tensor *t = st_find(&f, "ids");
  CHECK(t && t->dtype == VT_I32 && shape_is(t, 1, 5, 0, 0));
  if (t) {
    const int32_t *p = (const int32_t *)st_tensor_data(t, VT_I32);
    for (int i = 0; p && i < 5; i++) CHECK(p[i] == ids[i]);
    CHECK(st_tensor_read(t, VT_I64, lbuf, 40, err, sizeof err) == 0);
    CHECK(memcmp(lbuf, ids, 40) == 0);
    CHECK(st_tensor_read(t, VT_F32, fbuf, 20, err, sizeof err) != 0 &&
          has(err, "cannot convert I32 to F32") && has(err, "\"ids\""));
  }
  st_file_close(&f);

  CHECK_MSG(st_file_open(&f, st_fixture("i64.safetensors"), err, sizeof err) == 0, "%s", err);
  const st_tensor *pos = st_find(&f, "pos"), *small = st_find(&f, "small");
  CHECK(pos && small && pos->dtype == VT_I64 && shape_is(pos, 2, 2, 3, 0));
  if (pos && small) {
    CHECK(st_tensor_read(pos, VT_I64, lbuf, 48, err, sizeof err) == 0);
    for (int i = 0; i < 6; i++) CHECK(lbuf[i] == (int64_t)i * 1000000000000LL - 3);
    CHECK(st_tensor_read(pos, VT_I32, ibuf, 24, err, sizeof err) != 0 && has(err, "element 1") &&
          has(err, "does not fit"));
    CHECK(st_tensor_read(small, VT_I32, ibuf, 12, err, sizeof err) == 0);
    CHECK(ibuf[0] == -7 && ibuf[1] == 0 && ibuf[2] == 7);
  }
  st_file_close(&f);
}

/* ---- writing: byte-identical to the Python library ----------------------------------- */

/* Opens a reference file, hands its tensors (shuffled) to st_sort_entries + st_write with
 * its metadata, and compares the bytes. */
static void check_rewrite(const char *name) {
  char err[512];
  st_file f;
  const char *src = st_fixture(name);
  if (st_file_open(&f, src, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return;
  }
  st_entry es[16];
  st_kv kv[4];
  int n = f.n < 16 ? f.n : 16;
  for (int i = 0; i < n; i++) {
    const st_tensor *t = &f.tensors[n - 1 - i]; /* reversed: the sort must restore it */
    es[i] = (st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
    memcpy(es[i].shape, t->shape, sizeof t->shape);
  }
  for (int i = 0; i < f.n_meta && i < 4; i++) kv[i] = (st_kv){f.meta[2 * i], f.meta[2 * i + 1]};
  st_sort_entries(es, n);
  const char *out = st_tmp("rewrite.safetensors");
  CHECK_MSG(st_write(out, es, n, kv, f.n_meta, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(st_same_file(out, src), "rewriting %s", name);
  CHECK(access(st_tmp("rewrite.safetensors.tmp"), F_OK) != 0); /* no temporary left */
  st_file_close(&f);
}

static void test_byte_identical(void) {
  const char *names[] = {"f32.safetensors",
                         "bf16.safetensors",
                         "f16.safetensors",
                         "i32.safetensors",
                         "i64.safetensors",
                         "mixed.safetensors",
                         "sharded/model-00001-of-00002.safetensors",
                         "sharded/model-00002-of-00002.safetensors"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) check_rewrite(names[i]);
}

/* ---- round trips in any order --------------------------------------------------------- */

static void test_round_trip(void) {
  char err[512];
  uint16_t b3[3] = {0x3F80, 0xC000, 0x7F80}, h5[5] = {1, 2, 3, 0x7C00, 0x8000};
  float f6[6] = {1, -2, 3.5f, 1e-30f, -0.0f, 65504}, s1 = 42;
  int64_t l2[2] = {INT64_MIN, INT64_MAX};
  int32_t i3[3] = {7, -8, 9};
  st_entry es[] = {
      {.name = "b.bf16", .dtype = VT_BF16, .ndim = 1, .shape = {3}, .data = b3},
      {.name = "f.f32", .dtype = VT_F32, .ndim = 2, .shape = {2, 3}, .data = f6},
      {.name = "l.i64", .dtype = VT_I64, .ndim = 1, .shape = {2}, .data = l2},
      {.name = "h.f16", .dtype = VT_F16, .ndim = 5, .shape = {1, 1, 5, 1, 1}, .data = h5},
      {.name = "i.i32", .dtype = VT_I32, .ndim = 1, .shape = {3}, .data = i3},
      {.name = "s.scalar", .dtype = VT_F32, .ndim = 0, .data = &s1},
      {.name = "e.empty", .dtype = VT_BF16, .ndim = 2, .shape = {0, 7}, .data = NULL},
      {.name = "unicode.\xc3\xa9\xe2\x82\xac \"q\"\\",
       .dtype = VT_I32,
       .ndim = 1,
       .shape = {1},
       .data = i3}};
  int n = (int)(sizeof es / sizeof *es);
  for (int pass = 0; pass < 2; pass++) {
    if (pass == 1) st_sort_entries(es, n); /* aligned order: every view is zero-copy */
    const char *path = st_tmp("round.safetensors");
    st_kv kv[2] = {{"format", "pt"}, {"note", "x\ny"}};
    CHECK_MSG(st_write(path, es, n, kv, 2, err, sizeof err) == 0, "%s", err);
    st_file f;
    if (st_file_open(&f, path, err, sizeof err)) {
      CHECK_MSG(0, "%s", err);
      continue;
    }
    CHECK(f.n == n && f.header_len % 8 == 0);
    CHECK(st_metadata(&f, "note") && strcmp(st_metadata(&f, "note"), "x\ny") == 0);
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
      const st_tensor *t = st_find(&f, es[i].name);
      CHECK_MSG(t != NULL, "%s", es[i].name);
      if (!t) continue;
      CHECK(t == &f.tensors[i] && t->begin == at); /* in the order given, back to back */
      at = t->end;
      CHECK(t->dtype == es[i].dtype && t->ndim == es[i].ndim);
      CHECK(memcmp(t->shape, es[i].shape, sizeof(int64_t) * (size_t)t->ndim) == 0);
      CHECK(t->nbytes == 0 || memcmp(t->data, es[i].data, t->nbytes) == 0);
      const void *view = st_tensor_data(t, t->dtype);
      CHECK(!view || (uintptr_t)view % vt_dtype_size(t->dtype) == 0);
      if (pass == 1) CHECK_MSG(view != NULL, "%s not zero-copy in sorted order", t->name);
    }
    CHECK(at == f.data_len);
    st_file_close(&f);
  }

  /* a file in the order given, committed so the Python library is checked to read it */
  uint16_t q[3], o[6];
  float p[4];
  int64_t nn[2] = {5, -6};
  for (int i = 0; i < 3; i++) q[i] = vt_f32_to_f16(ramp(i, 1, 0.5));
  for (int i = 0; i < 4; i++) p[i] = ramp(i, 1, 1.5);
  for (int i = 0; i < 6; i++) o[i] = vt_f32_to_bf16(ramp(i, 2, 0.25));
  st_entry ours[] = {{.name = "q.f16", .dtype = VT_F16, .ndim = 1, .shape = {3}, .data = q},
                     {.name = "p.f32", .dtype = VT_F32, .ndim = 2, .shape = {2, 2}, .data = p},
                     {.name = "o.bf16", .dtype = VT_BF16, .ndim = 2, .shape = {2, 3}, .data = o},
                     {.name = "n.i64", .dtype = VT_I64, .ndim = 1, .shape = {2}, .data = nn}};
  st_kv kv = {"writer", "vita-train"};
  const char *path = st_tmp("ours_given_order.safetensors");
  CHECK_MSG(st_write(path, ours, 4, &kv, 1, err, sizeof err) == 0, "%s", err);
  CHECK(st_same_file(path, st_fixture("ours_given_order.safetensors")));
  st_file f;
  CHECK(st_file_open(&f, path, err, sizeof err) == 0);
  const st_tensor *tp = st_find(&f, "p.f32");
  float back[4];
  CHECK(tp && st_tensor_data(tp, VT_F32) == NULL); /* at byte 6: misaligned, so a copy */
  CHECK(tp && st_tensor_read(tp, VT_F32, back, sizeof back, err, sizeof err) == 0 &&
        memcmp(back, p, sizeof p) == 0);
  st_file_close(&f);

  /* the writer refuses bad entries and leaves nothing behind */
  const char *bad = st_tmp("bad.safetensors");
  st_entry dup[2] = {es[0], es[0]};
  CHECK(st_write(bad, dup, 2, NULL, 0, err, sizeof err) != 0 && has(err, "given twice"));
  st_entry noname = es[0];
  noname.name = "";
  CHECK(st_write(bad, &noname, 1, NULL, 0, err, sizeof err) != 0 && has(err, "not allowed"));
  noname.name = "__metadata__";
  CHECK(st_write(bad, &noname, 1, NULL, 0, err, sizeof err) != 0 && has(err, "not allowed"));
  st_entry negative = es[0];
  negative.shape[0] = -3;
  CHECK(st_write(bad, &negative, 1, NULL, 0, err, sizeof err) != 0 && has(err, "bad shape"));
  st_entry nodata = es[0];
  nodata.data = NULL;
  CHECK(st_write(bad, &nodata, 1, NULL, 0, err, sizeof err) != 0 && has(err, "data is NULL"));
  st_entry notutf8 = es[0];
  notutf8.name = "bad\xff";
  CHECK(st_write(bad, &notutf8, 1, NULL, 0, err, sizeof err) != 0 && has(err, "not UTF-8"));
  CHECK(access(bad, F_OK) != 0 && access(st_tmp("bad.safetensors.tmp"), F_OK) != 0);
  CHECK(st_write("/nonexistent-dir/x.safetensors", es, 1, NULL, 0, err, sizeof err) != 0 &&
        has(err, "cannot create"));
  /* no tensors at all is a valid file */
  CHECK(st_write(bad, NULL, 0, NULL, 0, err, sizeof err) == 0);
  CHECK(st_file_open(&f, bad, err, sizeof err) == 0 && f.n == 0);
  st_file_close(&f);
}

/* ---- conversions ---------------------------------------------------------------------- */

static void test_conversions(void) {
  char err[256];
  /* every bf16 / f16 pattern to the other 16-bit type goes through f32 with one rounding */
  static uint16_t src[65536], dst[65536];
  for (uint32_t i = 0; i < 65536; i++) src[i] = (uint16_t)i;
  CHECK(st_convert(VT_BF16, src, VT_F16, dst, 65536, err, sizeof err) == 0);
  int bad = 0;
  for (uint32_t i = 0; i < 65536; i++) {
    float f = vt_bf16_to_f32(src[i]);
    if (!isnan(f) && dst[i] != vt_f32_to_f16(f)) bad++;
    if (isnan(f) && (dst[i] & 0x7c00u) != 0x7c00u) bad++;
  }
  CHECK_MSG(bad == 0, "%d bf16 -> f16 conversions differ", bad);
  CHECK(st_convert(VT_F16, src, VT_BF16, dst, 65536, err, sizeof err) == 0);
  bad = 0;
  for (uint32_t i = 0; i < 65536; i++) {
    float f = vt_f16_to_f32(src[i]);
    if (!isnan(f) && dst[i] != vt_f32_to_bf16(f)) bad++;
  }
  CHECK_MSG(bad == 0, "%d f16 -> bf16 conversions differ", bad);

  /* f32 -> bf16 / f16 ties to even, from an unaligned source */
  float vals[5] = {1.00390625f, 1.01171875f, 1.00048828125f, 65520.0f, -3.0e-8f};
  unsigned char raw[1 + sizeof vals];
  memcpy(raw + 1, vals, sizeof vals);
  uint16_t out[5];
  CHECK(st_convert(VT_F32, raw + 1, VT_BF16, out, 5, err, sizeof err) == 0);
  CHECK(out[0] == 0x3F80 && out[1] == 0x3F82); /* ties: down to even, up to even */
  for (int i = 0; i < 5; i++) CHECK(out[i] == vt_f32_to_bf16(vals[i]));
  CHECK(st_convert(VT_F32, raw + 1, VT_F16, out, 5, err, sizeof err) == 0);
  CHECK(out[2] == 0x3C00 && out[3] == 0x7C00);
  for (int i = 0; i < 5; i++) CHECK(out[i] == vt_f32_to_f16(vals[i]));
  float back[5];
  CHECK(st_convert(VT_F16, out, VT_F32, back, 5, err, sizeof err) == 0 && back[2] == 1.0f);

  int32_t i32[3] = {INT32_MIN, 0, INT32_MAX}, i32b[3];
  int64_t i64[3];
  CHECK(st_convert(VT_I32, i32, VT_I64, i64, 3, err, sizeof err) == 0);
  CHECK(i64[0] == INT32_MIN && i64[2] == INT32_MAX);
  CHECK(st_convert(VT_I64, i64, VT_I32, i32b, 3, err, sizeof err) == 0);
  CHECK(memcmp(i32, i32b, sizeof i32) == 0);
  i64[1] = (int64_t)INT32_MAX + 1;
  CHECK(st_convert(VT_I64, i64, VT_I32, i32b, 3, err, sizeof err) != 0 && has(err, "element 1") &&
        has(err, "2147483648"));
  CHECK(st_convert(VT_F32, vals, VT_I64, i64, 1, err, sizeof err) != 0 &&
        has(err, "cannot convert F32 to I64"));
  CHECK(st_convert(VT_I64, i64, VT_BF16, out, 1, err, sizeof err) != 0);

  CHECK(strcmp(st_dtype_name(VT_BF16), "BF16") == 0 && st_dtype_from_name("I64") == VT_I64);
  CHECK(st_dtype_from_name("F64") == -1 && st_dtype_from_name("bf16") == -1);
}

/* ---- sharded sets --------------------------------------------------------------------- */

static const char *const shard_names[5] = {
    "model.embed_tokens.weight", "model.layers.0.mlp.up_proj.weight",
    "model.layers.0.mlp.down_proj.weight", "model.norm.weight", "lm_head.weight"};
static const int64_t shard_shapes[5][2] = {{8, 4}, {4, 4}, {4, 4}, {8, 0}, {8, 4}};

static void check_shard_values(st_index *ix) {
  char err[512];
  for (int k = 0; k < 5; k++) {
    const st_tensor *t = NULL;
    CHECK_MSG(st_index_get(ix, shard_names[k], &t, err, sizeof err) == 0, "%s", err);
    if (!t) {
      CHECK_MSG(0, "%s missing", shard_names[k]);
      continue;
    }
    CHECK(t->dtype == VT_BF16 && t->shape[0] == shard_shapes[k][0]);
    float v[32];
    CHECK(st_tensor_read(t, VT_F32, v, (size_t)t->numel * 4, err, sizeof err) == 0);
    for (int i = 0; i < t->numel; i++) CHECK(v[i] == ramp(i, 3 * k, 0.125));
  }
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

static void test_sharded(void) {
  char err[512];
  st_index ix;
  CHECK_MSG(st_index_open(&ix, st_fixture("sharded"), err, sizeof err) == 0, "%s", err);
  CHECK(ix.n == 5 && ix.n_files == 2 && ix.total_size == 208);
  CHECK(st_index_has(&ix, "lm_head.weight") && !st_index_has(&ix, "lm_head"));
  CHECK(!ix.opened[0] && !ix.opened[1]); /* lazily */
  const st_tensor *t = (const st_tensor *)1;
  CHECK(st_index_get(&ix, "nope", &t, err, sizeof err) == 0 && t == NULL);
  check_shard_values(&ix);
  CHECK(ix.opened[0] && ix.opened[1]);

  /* rewrite the same state dict: same split, same shards, same index, byte for byte */
  st_entry es[5];
  for (int k = 0; k < 5; k++) {
    st_index_get(&ix, shard_names[k], &t, err, sizeof err);
    es[k] = (st_entry){.name = shard_names[k], .dtype = VT_BF16, .ndim = t->ndim, .data = t->data};
    memcpy(es[k].shape, t->shape, sizeof t->shape);
  }
  st_kv pt = {"format", "pt"};
  int ns = 0;
  const char *dir = st_tmp("sharded");
  CHECK_MSG(st_write_sharded(dir, es, 5, 120, &pt, 1, &ns, err, sizeof err) == 0, "%s", err);
  CHECK(ns == 2);
  const char *files[3] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                          "model.safetensors.index.json"};
  char a[1024], b[256];
  for (int i = 0; i < 3; i++) {
    snprintf(a, sizeof a, "%s/%s", dir, files[i]);
    snprintf(b, sizeof b, "sharded/%s", files[i]);
    CHECK(st_same_file(a, st_fixture(b)));
  }

  /* everything fits: one model.safetensors and no index, as transformers does */
  const char *one = st_tmp("one");
  CHECK(st_write_sharded(one, es, 5, 1 << 20, &pt, 1, &ns, err, sizeof err) == 0 && ns == 1);
  snprintf(a, sizeof a, "%s/model.safetensors.index.json", one);
  CHECK(access(a, F_OK) != 0);
  st_index ix1;
  CHECK_MSG(st_index_open(&ix1, one, err, sizeof err) == 0, "%s", err);
  CHECK(ix1.n == 5 && ix1.n_files == 1);
  check_shard_values(&ix1);
  st_index_close(&ix1);

  /* tensors over the limit get their own shard, numbered when met (huggingface_hub) */
  const char *many = st_tmp("many");
  CHECK(st_write_sharded(many, es, 5, 40, NULL, 0, &ns, err, sizeof err) == 0 && ns == 5);
  snprintf(a, sizeof a, "%s/model.safetensors.index.json", many);
  CHECK_MSG(st_index_open(&ix1, a, err, sizeof err) == 0, "%s", err);
  const int want_shard[5] = {1, 2, 3, 5, 4}; /* embed, up, down, norm, lm_head */
  for (int k = 0; k < 5; k++) {
    int i = 0;
    while (i < ix1.n && strcmp(ix1.names[i], shard_names[k])) i++;
    snprintf(b, sizeof b, "model-%05d-of-00005.safetensors", want_shard[k]);
    CHECK_MSG(i < ix1.n && strcmp(ix1.files[ix1.file_of[i]], b) == 0, "%s", shard_names[k]);
  }
  CHECK(ix1.total_size == 208);
  check_shard_values(&ix1);
  st_index_close(&ix1);
  st_index_close(&ix);

  /* single files through st_index too */
  CHECK(st_index_open(&ix1, st_fixture("f32.safetensors"), err, sizeof err) == 0 && ix1.n == 4 &&
        st_index_has(&ix1, "scalar"));
  st_index_close(&ix1);

  /* bad indexes */
  const char *bad = st_tmp("badidx");
  mkdir(bad, 0755);
  snprintf(a, sizeof a, "%s/model.safetensors.index.json", bad);
  struct {
    const char *json, *frag;
  } cases[] = {
      {"{\"metadata\": {}}", "\"weight_map\""},
      {"{\"weight_map\": [1]}", "\"weight_map\""},
      {"{\"weight_map\": {\"a\": \"../x.safetensors\"}}", "relative shard file name"},
      {"{\"weight_map\": {\"a\": \"/etc/x\"}}", "relative shard file name"},
      {"{\"weight_map\": {\"a\": 7}}", "tensor \"a\""},
      {"{\"weight_map\": {\"a\": \"x\"}, \"metadata\": {\"total_size\": \"9\"}}", "total_size"},
      {"{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}", "not a valid JSON index"},
      {"{\"weight_map\": {", "not a valid JSON index"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    write_text(a, cases[i].json);
    err[0] = '\0';
    CHECK_MSG(st_index_open(&ix1, bad, err, sizeof err) != 0 && has(err, cases[i].frag) &&
                  has(err, "model.safetensors.index.json"),
              "index %s: got \"%s\"", cases[i].json, err);
  }
  /* a shard that is missing, and one without the tensor the index promises */
  size_t flen;
  unsigned char *fbytes = st_read_all(st_fixture("f32.safetensors"), &flen);
  snprintf(a, sizeof a, "%s/real.safetensors", bad);
  FILE *fp = fopen(a, "wb");
  CHECK(fbytes && fp && fwrite(fbytes, 1, flen, fp) == flen);
  if (fp) fclose(fp);
  free(fbytes);
  snprintf(a, sizeof a, "%s/model.safetensors.index.json", bad);
  write_text(a, "{\"weight_map\": {\"a\": \"real.safetensors\", \"ghost\": \"real.safetensors\","
                " \"gone\": \"missing.safetensors\"}}");
  CHECK(st_index_open(&ix1, bad, err, sizeof err) == 0);
  CHECK(st_index_get(&ix1, "a", &t, err, sizeof err) == 0 && t && t->numel == 6);
  CHECK(st_index_get(&ix1, "ghost", &t, err, sizeof err) != 0 && has(err, "\"ghost\"") &&
        has(err, "no such tensor"));
  CHECK(st_index_get(&ix1, "gone", &t, err, sizeof err) != 0 && has(err, "missing.safetensors") &&
        has(err, "cannot open"));
  st_index_close(&ix1);
  CHECK(st_index_open(&ix1, st_tmp("nothing-here"), err, sizeof err) != 0 &&
        has(err, "cannot open"));
  const char *empty = st_tmp("emptydir");
  mkdir(empty, 0755);
  CHECK(st_index_open(&ix1, empty, err, sizeof err) != 0 && has(err, "neither"));
}

/* ---- parameter stores ----------------------------------------------------------------- */

typedef struct {
  const char *name;
  vt_dtype dtype;
  int ndim;
  int64_t shape[2];
} pspec;

static void make_store(vt_params *ps, const pspec *sp, int n, bool fill) {
  char err[256];
  vt_params_init(ps, (vt_device){VT_DEV_CPU, 0});
  for (int i = 0; i < n; i++)
    CHECK(vt_params_add(ps, sp[i].name, sp[i].dtype, sp[i].ndim, sp[i].shape, err, sizeof err));
  CHECK_MSG(vt_params_alloc(ps, err, sizeof err) == 0, "%s", err);
  for (int i = 0; fill && i < ps->n; i++) {
    vt_tensor *t = &ps->items[i]->t;
    for (int64_t j = 0; j < vt_numel(t); j++) {
      float v = ramp(j, 2 * i, 0.37) + 0.001f * (float)i;
      if (t->dtype == VT_F32) ((float *)t->data)[j] = v;
      if (t->dtype == VT_BF16) ((uint16_t *)t->data)[j] = vt_f32_to_bf16(v);
      if (t->dtype == VT_I32) ((int32_t *)t->data)[j] = (int32_t)(j * 1000 - i);
    }
  }
}

static bool same_store(const vt_params *a, const vt_params *b) {
  if (a->n != b->n) return false;
  for (int i = 0; i < a->n; i++) {
    const vt_param *p = a->items[i], *q = vt_params_find(b, p->name);
    if (!q || q->t.dtype != p->t.dtype || memcmp(p->t.data, q->t.data, vt_nbytes(&p->t)))
      return false;
  }
  return true;
}

static void test_params(void) {
  char err[2048];
  const pspec base[] = {{"model.embed_tokens.weight", VT_F32, 2, {4, 3}},
                        {"model.norm.weight", VT_BF16, 1, {3}},
                        {"model.layers.0.ids", VT_I32, 1, {2}},
                        {"lm_head.weight", VT_F32, 2, {2, 3}}};
  vt_params src, dst;
  make_store(&src, base, 4, true);

  /* one file, own dtypes: bit-exact round trip */
  const char *file = st_tmp("params.safetensors");
  CHECK_MSG(st_save_params(&src, file, NULL, err, sizeof err) == 0, "%s", err);
  make_store(&dst, base, 4, false);
  CHECK_MSG(st_load_params_path(&dst, file, 0, err, sizeof err) == 0, "%s", err);
  CHECK(same_store(&src, &dst));
  vt_params_free(&dst);

  /* sharded bf16 export (floats only), loaded back into f32/bf16/i32 parameters */
  st_kv pt = {"format", "pt"};
  st_save_opts o = {.dtype = VT_BF16, .max_shard_bytes = 16, .meta = &pt, .n_meta = 1};
  const char *dir = st_tmp("params_bf16");
  CHECK_MSG(st_save_params(&src, dir, &o, err, sizeof err) == 0, "%s", err);
  st_index ix;
  CHECK_MSG(st_index_open(&ix, dir, err, sizeof err) == 0, "%s", err);
  CHECK(ix.n == 4 && ix.n_files >= 2);
  const st_tensor *t;
  CHECK(st_index_get(&ix, "lm_head.weight", &t, err, sizeof err) == 0 && t->dtype == VT_BF16);
  CHECK(st_index_get(&ix, "model.layers.0.ids", &t, err, sizeof err) == 0 && t->dtype == VT_I32);
  make_store(&dst, base, 4, false);
  CHECK_MSG(st_load_params(&dst, &ix, 0, err, sizeof err) == 0, "%s", err);
  st_index_close(&ix);
  for (int i = 0; i < src.n; i++) {
    vt_tensor *a = &src.items[i]->t, *b = &vt_params_find(&dst, src.items[i]->name)->t;
    if (a->dtype != VT_F32) {
      CHECK(memcmp(a->data, b->data, vt_nbytes(a)) == 0);
      continue;
    }
    for (int64_t j = 0; j < vt_numel(a); j++) {
      float want = vt_bf16_to_f32(vt_f32_to_bf16(((float *)a->data)[j]));
      CHECK(((float *)b->data)[j] == want);
    }
  }
  vt_params_free(&dst);

  /* a NaN or an Inf in the file: refused by tensor and element, nothing loaded */
  for (int k = 0; k < 2; k++) {
    vt_param *e = (vt_param *)vt_params_find(&src, k ? "model.norm.weight" : "lm_head.weight");
    uint16_t keep16 = k ? ((uint16_t *)e->t.data)[2] : 0;
    float keep32 = k ? 0.0f : ((float *)e->t.data)[4];
    if (k)
      ((uint16_t *)e->t.data)[2] = 0x7f80; /* bf16 +Inf */
    else
      ((float *)e->t.data)[4] = NAN;
    const char *bad = st_tmp("nonfinite.safetensors");
    CHECK_MSG(st_save_params(&src, bad, NULL, err, sizeof err) == 0, "%s", err);
    make_store(&dst, base, 4, false);
    CHECK(st_load_params_path(&dst, bad, 0, err, sizeof err) == -1);
    CHECK_MSG(has(err, k ? "model.norm.weight: element 2 is not finite"
                         : "lm_head.weight: element 4 is not finite"),
              "%s", err);
    CHECK(((float *)vt_params_find(&dst, "model.embed_tokens.weight")->t.data)[0] == 0);
    vt_params_free(&dst);
    if (k)
      ((uint16_t *)e->t.data)[2] = keep16;
    else
      ((float *)e->t.data)[4] = keep32;
  }

  /* everything wrong at once: all of it listed, nothing loaded */
  const pspec other[] = {{"model.embed_tokens.weight", VT_F32, 2, {3, 4}},
                         {"model.norm.weight", VT_BF16, 1, {3}},
                         {"extra.a", VT_F32, 1, {2}},
                         {"extra.b", VT_BF16, 1, {2}},
                         {"lm_head.weight", VT_I32, 2, {2, 3}}};
  make_store(&dst, other, 5, false);
  CHECK(st_load_params_path(&dst, file, 0, err, sizeof err) != 0);
  const char *frags[] = {"params.safetensors",
                         "2 missing: extra.a, extra.b",
                         "1 unexpected: model.layers.0.ids",
                         "2 mismatched",
                         "model.embed_tokens.weight (file [4, 3] F32, parameter [3, 4] F32)",
                         "lm_head.weight (file [2, 3] F32, parameter [2, 3] I32)"};
  for (size_t i = 0; i < sizeof frags / sizeof *frags; i++)
    CHECK_MSG(has(err, frags[i]), "missing \"%s\" in: %s", frags[i], err);
  CHECK(((uint16_t *)vt_params_find(&dst, "model.norm.weight")->t.data)[0] == 0); /* untouched */
  /* a short buffer says it was cut */
  char small[64];
  CHECK(st_load_params_path(&dst, file, 0, small, sizeof small) != 0 && has(small, "(truncated)") &&
        strlen(small) == sizeof small - 1);
  vt_params_free(&dst);

  /* missing / unexpected allowed by flags */
  const pspec part[] = {{"model.norm.weight", VT_BF16, 1, {3}},
                        {"extra.a", VT_F32, 1, {2}},
                        {"lm_head.weight", VT_F32, 2, {2, 3}}};
  make_store(&dst, part, 3, false);
  CHECK(st_load_params_path(&dst, file, ST_LOAD_ALLOW_MISSING, err, sizeof err) != 0 &&
        has(err, "2 unexpected: lm_head") == false && has(err, "unexpected") &&
        has(err, "model.embed_tokens.weight") && !has(err, "missing"));
  CHECK_MSG(st_load_params_path(&dst, file, ST_LOAD_ALLOW_MISSING | ST_LOAD_ALLOW_UNEXPECTED, err,
                                sizeof err) == 0,
            "%s", err);
  CHECK(memcmp(vt_params_find(&dst, "lm_head.weight")->t.data,
               vt_params_find(&src, "lm_head.weight")->t.data, 24) == 0);
  CHECK(((float *)vt_params_find(&dst, "extra.a")->t.data)[1] == 0);
  vt_params_free(&dst);

  /* parameters on a GPU: loaded through a staging buffer, saved back to the same bytes */
  if (vt_cuda_device_count() > 0) {
    vt_params gpu;
    CHECK(vt_params_init(&gpu, (vt_device){VT_DEV_CUDA, 0}) == 0);
    for (int i = 0; i < 4; i++)
      CHECK(vt_params_add(&gpu, base[i].name, base[i].dtype, base[i].ndim, base[i].shape, err,
                          sizeof err));
    CHECK_MSG(vt_params_alloc(&gpu, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(st_load_params_path(&gpu, file, 0, err, sizeof err) == 0, "%s", err);
    const char *again = st_tmp("params_gpu.safetensors");
    CHECK_MSG(st_save_params(&gpu, again, NULL, err, sizeof err) == 0, "%s", err);
    CHECK(st_same_file(again, file));
    const char *gdir = st_tmp("params_gpu_bf16");
    CHECK_MSG(st_save_params(&gpu, gdir, &o, err, sizeof err) == 0, "%s", err);
    char x[1024], y[1024];
    snprintf(x, sizeof x, "%s/model.safetensors.index.json", gdir);
    snprintf(y, sizeof y, "%s/model.safetensors.index.json", dir);
    CHECK(st_same_file(x, y));
    st_index gix;
    CHECK(st_index_open(&gix, dir, err, sizeof err) == 0);
    for (int i = 0; i < gix.n_files; i++) {
      snprintf(x, sizeof x, "%s/%s", gdir, gix.files[i]);
      snprintf(y, sizeof y, "%s/%s", dir, gix.files[i]);
      CHECK(st_same_file(x, y));
    }
    st_index_close(&gix);
    vt_params_free(&gpu);
  } else {
    printf("no CUDA device: GPU parameter round trip skipped\n");
  }

  /* a store that was never allocated */
  vt_params_init(&dst, (vt_device){VT_DEV_CPU, 0});
  CHECK(st_load_params_path(&dst, file, 0, err, sizeof err) != 0 && has(err, "not allocated"));
  CHECK(st_save_params(&dst, file, NULL, err, sizeof err) != 0 && has(err, "not allocated"));
  vt_params_free(&dst);
  vt_params_free(&src);
}

int main(void) {
  test_fixture_reads();
  test_byte_identical();
  test_round_trip();
  test_conversions();
  test_sharded();
  test_params();
  return vt_test_finish("test_safetensors");
}
