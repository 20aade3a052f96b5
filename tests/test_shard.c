// ctest-labels: unit
/* HDF5 shards: write, reopen with checksum, read samples back by offset exactly; no temporary
 * file left behind; a truncated shard and a shard with flipped bytes are refused with a
 * message naming the file. */
#include "data/shard.h"
#include "tests/check.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef VT_SANITIZE
/* HDF5 itself leaks when it refuses a file with corrupted metadata (the flip test below);
 * no identifiers of ours stay open. Keep LeakSanitizer quiet about allocations inside it. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libhdf5"; }
#endif

static void copy_file(const char *from, const char *to, long keep) {
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  char buf[4096];
  size_t n;
  long total = 0;
  while ((n = fread(buf, 1, sizeof buf, a)) > 0) {
    if (keep >= 0 && total + (long)n > keep) n = (size_t)(keep - total);
    fwrite(buf, 1, n, b);
    total += (long)n;
    if (keep >= 0 && total >= keep) break;
  }
  fclose(a);
  fclose(b);
}

static long file_size(const char *p) {
  FILE *f = fopen(p, "rb");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

int main(void) {
  char dir[] = "/tmp/vt_test_shard_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char path[256], err[512], cmd[700];
  snprintf(path, sizeof path, "%s/shard-00000.h5", dir);

  /* three samples: 5 tokens with one image, 0 media; 3 tokens; 7 tokens with 2 media */
  int32_t ids[3][7], labels[3][7];
  size_t lens[3] = {5, 3, 7};
  for (int s = 0; s < 3; s++)
    for (int i = 0; i < 7; i++) {
      ids[s][i] = 1000 * s + i;
      labels[s][i] = i % 2 ? ids[s][i] : VT_IGNORE_INDEX;
    }
  ids[0][2] = CHAT_IMAGE_ID;
  chat_media m0[1] = {{2, CHAT_MEDIA_IMAGE, 0}};
  chat_media m2[2] = {{1, CHAT_MEDIA_AUDIO, 0}, {4, CHAT_MEDIA_AUDIO, 1}};
  const char *p0[1] = {"/data/img/cat.jpg"};
  const char *p2[2] = {"/data/a.wav", "/data/b.wav"};
  /* the image of the first sample has 3 tiles of 5 x 5 pixels; the audio of the third none */
  uint8_t tiles[3 * 5 * 5 * 3];
  for (size_t i = 0; i < sizeof tiles; i++) tiles[i] = (uint8_t)(i * 7 + 1);
  const int32_t nt0[1] = {3}, nt2[2] = {0, 0};
  shard_sample_in in[3] = {
      {.id = "first",
       .ids = ids[0],
       .labels = labels[0],
       .n = 5,
       .media = m0,
       .media_path = p0,
       .n_media = 1,
       .n_tiles = nt0,
       .tiles = tiles,
       .tile_size = 5},
      {.id = "second", .ids = ids[1], .labels = labels[1], .n = 3},
      {.id = "third-中",
       .ids = ids[2],
       .labels = labels[2],
       .n = 7,
       .media = m2,
       .media_path = p2,
       .n_media = 2,
       .n_tiles = nt2},
  };
  shard_writer *w;
  CHECK_MSG(shard_writer_open(&w, path, err, sizeof err) == 0, "%s", err);
  for (int s = 0; s < 3; s++)
    CHECK_MSG(shard_write_sample(w, &in[s], err, sizeof err) == 0, "%s", err);
  CHECK_MSG(shard_writer_samples(w) == 3 && shard_writer_tokens(w) == 15, "counts");
  CHECK_MSG(access(path, F_OK) != 0, "shard visible before close");
  CHECK_MSG(shard_writer_close(w, err, sizeof err) == 0, "%s", err);
  char tmp[300];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  CHECK_MSG(access(path, F_OK) == 0 && access(tmp, F_OK) != 0, "renamed, no temporary left");

  shard *sh;
  CHECK_MSG(shard_open(&sh, path, true, err, sizeof err) == 0, "%s", err);
  if (sh) {
    CHECK_MSG(shard_n_samples(sh) == 3 && shard_n_tokens(sh) == 15, "n");
    shard_sample out = {0};
    for (int s = 2; s >= 0; s--) { /* any order: read by offset */
      CHECK_MSG(shard_sample_len(sh, s) == (int64_t)lens[s], "len %d", s);
      CHECK_MSG(shard_read_sample(sh, s, &out, err, sizeof err) == 0, "%s", err);
      CHECK_MSG(!strcmp(out.id, in[s].id), "id %s", out.id);
      CHECK_MSG(out.ids.n == lens[s] && !memcmp(out.ids.v, ids[s], lens[s] * 4), "ids %d", s);
      CHECK_MSG(!memcmp(out.labels.v, labels[s], lens[s] * 4), "labels %d", s);
      CHECK_MSG(out.n_media == in[s].n_media, "n_media %d", s);
      for (size_t k = 0; k < out.n_media && k < in[s].n_media; k++) {
        CHECK_MSG(out.media[k].pos == in[s].media[k].pos &&
                      out.media[k].kind == in[s].media[k].kind &&
                      out.media[k].item == in[s].media[k].item,
                  "media %d.%zu", s, k);
        CHECK_MSG(!strcmp(out.media_path[k], in[s].media_path[k]), "path %s", out.media_path[k]);
        CHECK_MSG(out.n_tiles[k] == (in[s].n_tiles ? in[s].n_tiles[k] : 0), "tiles %d.%zu", s, k);
      }
      CHECK_MSG(out.n_tiles_total == (s == 0 ? 3 : 0) && out.tile_size == 5, "tiles of %d", s);
      if (s == 0) CHECK(out.n_tiles_total == 3 && !memcmp(out.tiles, tiles, sizeof tiles));
    }
    CHECK_MSG(shard_read_sample(sh, 3, &out, err, sizeof err) == -1, "out of range read");
    shard_sample_free(&out);
    shard_close(sh);
  }

  /* truncated: refused, and the message names the file */
  char bad[300];
  snprintf(bad, sizeof bad, "%s/truncated.h5", dir);
  copy_file(path, bad, file_size(path) - 40);
  CHECK_MSG(shard_open(&sh, bad, true, err, sizeof err) == -1, "truncated shard opened");
  CHECK_MSG(strstr(err, "truncated.h5") != NULL, "message: %s", err);

  /* flipped bytes inside the token data: the checksum catches it */
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t ds = H5Dopen2(f, "tokens", H5P_DEFAULT);
  haddr_t off = H5Dget_offset(ds);
  H5Dclose(ds);
  H5Fclose(f);
  snprintf(bad, sizeof bad, "%s/flipped.h5", dir);
  copy_file(path, bad, -1);
  FILE *fp = fopen(bad, "r+b");
  fseek(fp, (long)off + 9, SEEK_SET);
  int c = fgetc(fp);
  fseek(fp, (long)off + 9, SEEK_SET);
  fputc(c ^ 0x5a, fp);
  fclose(fp);
  CHECK_MSG(shard_open(&sh, bad, true, err, sizeof err) == -1, "flipped shard opened");
  CHECK_MSG(strstr(err, "flipped.h5") && strstr(err, "checksum"), "message: %s", err);
  /* a flipped byte anywhere before the tokens (HDF5 metadata) is refused naming the file, or
   * sits in unused space and the samples still read back exactly: never silent corruption */
  int refused = 0;
  for (long at = 0; at < (long)off; at += 13) {
    copy_file(path, bad, -1);
    fp = fopen(bad, "r+b");
    fseek(fp, at, SEEK_SET);
    c = fgetc(fp);
    fseek(fp, at, SEEK_SET);
    fputc(c ^ 0xff, fp);
    fclose(fp);
    if (shard_open(&sh, bad, true, err, sizeof err) != 0) {
      CHECK_MSG(strstr(err, "flipped.h5") != NULL, "message: %s", err);
      refused++;
      continue;
    }
    shard_sample out = {0};
    for (int s = 0; s < 3; s++) {
      bool same = shard_read_sample(sh, s, &out, err, sizeof err) == 0 && out.ids.n == lens[s] &&
                  !memcmp(out.ids.v, ids[s], lens[s] * 4) &&
                  !memcmp(out.labels.v, labels[s], lens[s] * 4) && !strcmp(out.id, in[s].id);
      CHECK_MSG(same, "byte %ld flipped: sample %d reads back different", at, s);
    }
    shard_sample_free(&out);
    shard_close(sh);
  }
  CHECK_MSG(refused > 20, "only %d metadata flips refused", refused);
  CHECK_MSG(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) == 0, "HDF5 ids left open after refusals");
  copy_file(path, bad, -1);
  fp = fopen(bad, "r+b");
  fseek(fp, (long)off + 9, SEEK_SET);
  fputc(c ^ 0x5a, fp);
  fclose(fp);
  /* without verification the same file opens (the check is what refuses it) */
  CHECK_MSG(shard_open(&sh, bad, false, err, sizeof err) == 0, "%s", err);
  shard_close(sh);
  CHECK_MSG(shard_open(&sh, "/nonexistent/x.h5", true, err, sizeof err) == -1, "missing opened");

  /* the same samples give the same bytes (no timestamps in the file) */
  char again[300];
  snprintf(again, sizeof again, "%s/again.h5", dir);
  CHECK_MSG(shard_writer_open(&w, again, err, sizeof err) == 0, "%s", err);
  for (int s = 0; s < 3; s++) shard_write_sample(w, &in[s], err, sizeof err);
  CHECK_MSG(shard_writer_close(w, err, sizeof err) == 0, "%s", err);
  snprintf(cmd, sizeof cmd, "cmp -s %s %s", path, again);
  CHECK_MSG(system(cmd) == 0, "two writes of the same samples differ");

  /* an empty shard is valid */
  snprintf(bad, sizeof bad, "%s/empty.h5", dir);
  CHECK_MSG(shard_writer_open(&w, bad, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(shard_writer_close(w, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(shard_open(&sh, bad, true, err, sizeof err) == 0, "%s", err);
  if (sh) CHECK_MSG(shard_n_samples(sh) == 0, "empty");
  shard_close(sh);

  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return vt_test_finish("test_shard");
}
