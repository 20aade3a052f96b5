// ctest-labels: unit
/* Mixtures over small generated shards: each of N ranks gets a disjoint 1/N of every epoch,
 * ratios subsample and repeat, seeded shuffles, cursor save/restore gives the same stream,
 * packing keeps per-sample labels and boundaries, the YAML config and its errors. */
#include "data/pack.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char dir[64];
static char a0[128], a1[128], b0[128];

static int len_of(int tag) { return 2 + (tag * 3) % 9; }

/* Sample `tag` of a dataset: ids all equal tag, labels tag on odd positions; sample 1001 has
 * an image at position 1. */
static void write_shard(const char *path, int first_tag, int n) {
  char err[256];
  shard_writer *w;
  if (shard_writer_open(&w, path, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  for (int i = 0; i < n; i++) {
    int tag = first_tag + i, L = len_of(tag);
    int32_t ids[16], labels[16];
    for (int k = 0; k < L; k++) ids[k] = tag, labels[k] = k % 2 ? tag : VT_IGNORE_INDEX;
    chat_media m = {1, CHAT_MEDIA_IMAGE, 0};
    const char *p = "img.jpg";
    char id[32];
    snprintf(id, sizeof id, "s%d", tag);
    bool img = tag == 1001;
    if (img) ids[1] = CHAT_IMAGE_ID, labels[1] = VT_IGNORE_INDEX;
    shard_sample_in in = {.id = id,
                          .ids = ids,
                          .labels = labels,
                          .n = (size_t)L,
                          .media = img ? &m : NULL,
                          .media_path = img ? &p : NULL,
                          .n_media = img};
    shard_write_sample(w, &in, err, sizeof err);
  }
  if (shard_writer_close(w, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
}

static mix *open_mix(double ra, double rb, uint64_t seed, int rank, int world) {
  mix_config c = {.seed = seed, .verify = true};
  const char *as[2] = {a0, a1}, *bs[1] = {b0};
  if (ra > 0) mix_config_add(&c, "a", ra, as, 2);
  if (rb > 0) mix_config_add(&c, "b", rb, bs, 1);
  mix *m;
  char err[256];
  int rc = mix_open(&m, &c, rank, world, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  mix_config_free(&c);
  return rc ? NULL : m;
}

static int next_tag(mix *m, shard_sample *s) {
  char err[256];
  if (mix_next(m, s, NULL, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    vt_test_failures++;
    return -1;
  }
  return s->ids.v[0];
}

static void test_ranks(void) {
  shard_sample s = {0};
  int first_epoch[12];
  for (int epoch = 0; epoch < 2; epoch++) {
    int seen[12] = {0}, order[12];
    for (int r = 0; r < 4; r++) {
      mix *m = open_mix(1.0, 0, 42, r, 4);
      if (!m) return;
      CHECK_MSG(mix_epoch_len(m) == 3, "epoch len %lld", (long long)mix_epoch_len(m));
      for (int k = 0; k < 3 * epoch; k++) next_tag(m, &s); /* skip to this epoch */
      for (int k = 0; k < 3; k++) {
        int tag = next_tag(m, &s);
        CHECK_MSG(tag >= 1000 && tag < 1012, "tag %d", tag);
        if (tag >= 1000 && tag < 1012) seen[tag - 1000]++;
        order[r + 4 * k] = tag;
      }
      CHECK_MSG(mix_get_cursor(m).epoch == epoch, "epoch %lld", (long long)mix_get_cursor(m).epoch);
      mix_close(m);
    }
    for (int i = 0; i < 12; i++)
      CHECK_MSG(seen[i] == 1, "epoch %d: sample %d seen %d times", epoch, i, seen[i]);
    if (epoch == 0)
      memcpy(first_epoch, order, sizeof order);
    else
      CHECK_MSG(memcmp(first_epoch, order, sizeof order) != 0, "epoch 1 has epoch 0's order");
  }
  shard_sample_free(&s);
}

static void test_ratios_and_seeds(void) {
  shard_sample s = {0};
  mix *m = open_mix(0.5, 2.5, 7, 0, 1);
  if (!m) return;
  CHECK_MSG(mix_epoch_total(m) == 6 + 10, "total %lld", (long long)mix_epoch_total(m));
  int count[2][12] = {{0}};
  for (int k = 0; k < 16; k++) {
    int tag = next_tag(m, &s);
    if (tag >= 1000 && tag < 1012)
      count[0][tag - 1000]++;
    else if (tag >= 2000 && tag < 2004)
      count[1][tag - 2000]++;
    else
      CHECK_MSG(0, "tag %d", tag);
  }
  int na = 0, nb = 0;
  for (int i = 0; i < 12; i++) {
    CHECK_MSG(count[0][i] <= 1, "subsample repeats %d", i);
    na += count[0][i];
  }
  for (int i = 0; i < 4; i++) {
    CHECK_MSG(count[1][i] >= 2 && count[1][i] <= 3, "repeat count %d", count[1][i]);
    nb += count[1][i];
  }
  CHECK_MSG(na == 6 && nb == 10, "a %d b %d", na, nb);
  mix_close(m);

  /* same seed, same stream; another seed, another stream */
  mix *x = open_mix(1.0, 1.0, 99, 0, 1), *y = open_mix(1.0, 1.0, 99, 0, 1),
      *z = open_mix(1.0, 1.0, 100, 0, 1);
  int same = 1, differ = 0;
  for (int k = 0; k < 30; k++) {
    int tx = next_tag(x, &s), ty = next_tag(y, &s), tz = next_tag(z, &s);
    same &= tx == ty;
    differ |= tx != tz;
  }
  CHECK_MSG(same && differ, "seeded order: same %d differ %d", same, differ);
  mix_close(x), mix_close(y), mix_close(z);
  shard_sample_free(&s);
}

static void test_cursor(void) {
  shard_sample s = {0};
  char err[256], saved[MIX_CURSOR_LEN];
  mix *m = open_mix(1.0, 1.5, 5, 1, 2);
  if (!m) return;
  CHECK_MSG(mix_epoch_len(m) == 9, "epoch len %lld", (long long)mix_epoch_len(m));
  for (int k = 0; k < 7; k++) next_tag(m, &s);
  mix_cursor c = mix_get_cursor(m);
  mix_cursor_format(&c, saved);
  int want[15];
  for (int k = 0; k < 15; k++) want[k] = next_tag(m, &s); /* crosses into epoch 2 */
  CHECK_MSG(mix_get_cursor(m).epoch == 2, "epoch %lld", (long long)mix_get_cursor(m).epoch);
  mix_close(m);

  mix *r = open_mix(1.0, 1.5, 5, 1, 2);
  mix_cursor back;
  CHECK_MSG(mix_cursor_parse(&back, saved, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(mix_set_cursor(r, &back, err, sizeof err) == 0, "%s", err);
  for (int k = 0; k < 15; k++) {
    int t = next_tag(r, &s);
    CHECK_MSG(t == want[k], "resumed stream differs at %d: %d vs %d", k, t, want[k]);
  }
  mix_close(r);
  CHECK_MSG(strstr(saved, "epoch=0 pos=7 rank=1 world=2") != NULL, "cursor text %s", saved);
  mix *other = open_mix(1.0, 1.5, 7, 1, 2);
  CHECK_MSG(mix_set_cursor(other, &back, err, sizeof err) == -1,
            "cursor for another seed accepted");
  mix_close(other);

  /* resume on another world size: 2 ranks take 3 each (slots 0..5), then 3 ranks finish the
   * epoch (slots 6..11): every sample exactly once */
  int seen[12] = {0};
  for (int rank = 0; rank < 2; rank++) {
    mix *w2 = open_mix(1.0, 0, 11, rank, 2);
    for (int k = 0; k < 3; k++) {
      int t = next_tag(w2, &s);
      if (t >= 1000 && t < 1012) seen[t - 1000]++;
    }
    c = mix_get_cursor(w2);
    mix_close(w2);
  }
  for (int rank = 0; rank < 3; rank++) {
    mix *w3 = open_mix(1.0, 0, 11, rank, 3);
    CHECK_MSG(mix_set_cursor(w3, &c, err, sizeof err) == 0, "%s", err);
    for (int k = 0; k < 2; k++) {
      int t = next_tag(w3, &s);
      if (t >= 1000 && t < 1012) seen[t - 1000]++;
    }
    CHECK_MSG(mix_get_cursor(w3).pos == 4 && mix_get_cursor(w3).epoch == 0, "end of epoch 0");
    mix_close(w3);
  }
  for (int i = 0; i < 12; i++)
    CHECK_MSG(seen[i] == 1, "world 2 -> 3: sample %d seen %d times", i, seen[i]);
  CHECK_MSG(mix_cursor_parse(&back, "mix-cursor v1 seed=1 epoch=x", err, sizeof err) == -1,
            "parse");
  shard_sample_free(&s);
}

static void test_packing(void) {
  mix *m = open_mix(1.0, 1.0, 3, 0, 1);
  if (!m) return;
  mix_pack p = {0};
  char err[256];
  int64_t samples = 0, packs = 0;
  bool saw_image = false;
  while (mix_get_cursor(m).epoch == 0 && samples < 16) {
    CHECK_MSG(mix_next_packed(m, 16, &p, err, sizeof err) == 0, "%s", err);
    packs++;
    CHECK_MSG(p.n_seq >= 1 && p.ids.n <= 16 && p.labels.n == p.ids.n, "pack of %zu", p.ids.n);
    CHECK_MSG(p.starts[0] == 0 && p.starts[p.n_seq] == (int64_t)p.ids.n, "bounds");
    for (size_t k = 0; k < p.n_seq; k++) {
      int64_t a = p.starts[k], b = p.starts[k + 1];
      int tag = p.ids.v[a];
      CHECK_MSG(b - a == len_of(tag), "sample %d has %lld tokens", tag, (long long)(b - a));
      for (int64_t i = a; i < b; i++) {
        int32_t want_label = (i - a) % 2 ? tag : VT_IGNORE_INDEX;
        if (tag == 1001 && i - a == 1) want_label = VT_IGNORE_INDEX;
        CHECK_MSG(p.ids.v[i] == tag || (tag == 1001 && i - a == 1), "id at %lld", (long long)i);
        CHECK_MSG(p.labels.v[i] == want_label, "label at %lld", (long long)i);
      }
    }
    int32_t seg[20], pos[20];
    mix_pack_segments(&p, 20, seg, pos);
    for (size_t k = 0; k < p.n_seq; k++)
      for (int64_t i = p.starts[k]; i < p.starts[k + 1]; i++)
        CHECK_MSG(seg[i] == (int32_t)k && pos[i] == i - p.starts[k], "segment/position at %lld",
                  (long long)i);
    for (size_t i = p.ids.n; i < 20; i++)
      CHECK_MSG(seg[i] == (int32_t)p.n_seq && pos[i] == (int32_t)(i - p.ids.n), "padding at %zu",
                i);
    for (size_t k = 0; k < p.n_media; k++) {
      saw_image = true;
      CHECK_MSG(p.ids.v[p.media[k].pos] == CHAT_IMAGE_ID, "media position in pack");
      CHECK_MSG(p.starts[p.media_seq[k]] + 1 == p.media[k].pos, "media sequence");
      CHECK_MSG(!strcmp(p.media_path[k], "img.jpg"), "media path");
    }
    samples += (int64_t)p.n_seq;
  }
  CHECK_MSG(samples == 16, "one epoch packs all 16 samples: %lld", (long long)samples);
  CHECK_MSG(packs < 16, "packing packed nothing together: %lld packs", (long long)packs);
  CHECK_MSG(saw_image, "the sample with an image was packed");
  /* a sample longer than max_len is cut and packed alone */
  CHECK_MSG(mix_next_packed(m, 3, &p, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(p.ids.n <= 3 && p.n_seq >= 1, "max_len 3: %zu tokens", p.ids.n);
  mix_pack_free(&p);
  mix_close(m);
}

static void test_config(void) {
  char path[128], err[512];
  snprintf(path, sizeof path, "%s/mix.yaml", dir);
  FILE *f = fopen(path, "w");
  fprintf(
      f,
      "seed: 7\npack: true\nmax_len: 2048\ndatasets:\n  - name: a\n    shards: a\n    ratio: 0.2\n"
      "  - name: b\n    shards: [\"b/*.h5\"]\n    ratio: 2\n");
  fclose(f);
  mix_config c = {0};
  CHECK_MSG(mix_config_load(&c, path, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(c.seed == 7 && c.verify && c.pack && c.max_len == 2048 && c.n_datasets == 2, "config");
  if (c.n_datasets == 2) {
    CHECK_MSG(c.datasets[0].n_shards == 2 && c.datasets[0].ratio == 0.2, "dataset a");
    CHECK_MSG(c.datasets[1].n_shards == 1 && c.datasets[1].ratio == 2.0, "dataset b");
    CHECK_MSG(c.datasets[0].n_shards == 2 && !strcmp(c.datasets[0].shards[1], a1), "sorted %s",
              c.datasets[0].shards[1]);
  }
  mix_config_free(&c);
  f = fopen(path, "w");
  fprintf(f, "seed: 7\ndatasets:\n  - name: a\n    shards: a\n    weight: 0.2\n");
  fclose(f);
  CHECK_MSG(mix_config_load(&c, path, err, sizeof err) == -1, "unknown key accepted");
  CHECK_MSG(strstr(err, "weight") && strstr(err, "mix.yaml"), "message: %s", err);
  f = fopen(path, "w");
  fprintf(f, "datasets:\n  - name: a\n    shards: nowhere/*.h5\n");
  fclose(f);
  CHECK_MSG(mix_config_load(&c, path, err, sizeof err) == -1, "empty glob accepted");
  CHECK_MSG(strstr(err, "no shard files"), "message: %s", err);
  mix_config_free(&c);
}

/* Loads text as a mixture config; returns the status with the message in err. */
static int load_text(const char *text, char *err, size_t n) {
  char path[128];
  snprintf(path, sizeof path, "%s/hostile.yaml", dir);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  mix_config c = {0};
  int rc = mix_config_load(&c, path, err, n);
  mix_config_free(&c);
  return rc;
}

static void test_hostile(void) {
  char err[512] = "";
  CHECK(load_text("datasets:\n  - {name: a, shards: a, ratio: 1e300}\n", err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "a.ratio: expected a number in [0, 1000], found 1e+300"), "%s", err);
  CHECK(load_text("datasets:\n  - {name: a, shards: a, ratio: 1, ratio: 2}\n", err, sizeof err) ==
        -1);
  CHECK_MSG(strstr(err, "duplicate key 'ratio'"), "%s", err);
  CHECK(load_text("seed: -1\ndatasets:\n  - {name: a, shards: a}\n", err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "seed: expected an integer in [0, 9223372036854775807]"), "%s", err);
  CHECK(load_text("max_len: 4611686018427387904\ndatasets:\n  - {name: a, shards: a}\n", err,
                  sizeof err) == -1);
  CHECK_MSG(strstr(err, "max_len: expected an integer in [0, 67108864]"), "%s", err);
  /* a cursor at an epoch near INT64_MAX, or whose pos times world overflows, is refused */
  mix_cursor c;
  CHECK(mix_cursor_parse(&c, "mix-cursor v1 seed=5 epoch=9223372036854775807 pos=0 rank=0 world=1",
                         err, sizeof err) == -1);
  mix *m = open_mix(1.0, 1.0, 5, 0, 1);
  if (!m) return;
  c = (mix_cursor){.seed = 5, .epoch = INT64_MAX, .pos = 0, .rank = 0, .world = 1};
  CHECK(mix_set_cursor(m, &c, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "out of range"), "%s", err);
  c = (mix_cursor){.seed = 5, .epoch = 0, .pos = INT64_MAX / 2, .rank = 0, .world = 4};
  CHECK(mix_set_cursor(m, &c, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "beyond the epoch length"), "%s", err);
  mix_close(m);
  /* ratios whose epoch would overflow are refused by mix_open, not wrapped */
  mix_config big = {.seed = 1, .verify = false};
  const char *as[2] = {a0, a1};
  for (int i = 0; i < 3; i++) mix_config_add(&big, "a", 1000.0, as, 2);
  CHECK(mix_open(&m, &big, 0, 1, err, sizeof err) == 0); /* 36000 slots: fine */
  mix_close(m);
  mix_config_free(&big);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/vt_test_mix_XXXXXX");
  if (!mkdtemp(dir)) return 1;
  char sub[128];
  snprintf(sub, sizeof sub, "%s/a", dir), mkdir(sub, 0755);
  snprintf(sub, sizeof sub, "%s/b", dir), mkdir(sub, 0755);
  snprintf(a0, sizeof a0, "%s/a/shard-00000.h5", dir);
  snprintf(a1, sizeof a1, "%s/a/shard-00001.h5", dir);
  snprintf(b0, sizeof b0, "%s/b/shard-00000.h5", dir);
  write_shard(a0, 1000, 5);
  write_shard(a1, 1005, 7);
  write_shard(b0, 2000, 4);
  test_ranks();
  test_ratios_and_seeds();
  test_cursor();
  test_packing();
  test_config();
  test_hostile();
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return vt_test_finish("test_mixture");
}
