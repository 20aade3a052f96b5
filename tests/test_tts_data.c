// ctest-labels: unit
/* Stage 3.2 data: codec tokens per sample in shards (format 3; a version-1 shard is refused
 * by name), speech JSON lines read by the sample reader (good lines kept, each
 * kind of bad line refused with its reason and field), and the generated (text, codec) pairs
 * follow their rule, are reproducible and keep the held-out set apart. */
#include "data/mixture.h"
#include "data/sample.h"
#include "data/shard.h"
#include "data/tts_data.h"
#include "data/tts_synth.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shard_codec(const char *dir) {
  char path[300], err[512];
  snprintf(path, sizeof path, "%s/codec.h5", dir);
  int32_t ids[3][4] = {{1, 2, 3, 4}, {5, 6, 0, 0}, {7, 8, 9, 0}};
  int32_t lab[4] = {-100, -100, -100, -100};
  int32_t codec0[5] = {10, 1023, 0, 512, 7}, codec2[2] = {44, 45};
  shard_sample_in in[3] = {
      {.id = "a", .ids = ids[0], .labels = lab, .n = 4, .codec = codec0, .n_codec = 5},
      {.id = "b", .ids = ids[1], .labels = lab, .n = 2},
      {.id = "c", .ids = ids[2], .labels = lab, .n = 3, .codec = codec2, .n_codec = 2},
  };
  shard_writer *w;
  CHECK_MSG(shard_writer_open(&w, path, err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < 3; i++) CHECK(shard_write_sample(w, &in[i], err, sizeof err) == 0);
  CHECK_MSG(shard_writer_close(w, err, sizeof err) == 0, "%s", err);
  shard *s;
  CHECK_MSG(shard_open(&s, path, true, err, sizeof err) == 0, "%s", err);
  shard_sample out = {0};
  for (int i = 0; s && i < 3; i++) {
    CHECK_MSG(shard_read_sample(s, i, &out, err, sizeof err) == 0, "%s", err);
    CHECK(out.ids.n == in[i].n && !memcmp(out.ids.v, in[i].ids, in[i].n * 4));
    CHECK_MSG(out.codec.n == in[i].n_codec, "sample %d: %zu codec tokens, wrote %zu", i,
              out.codec.n, in[i].n_codec);
    CHECK(out.codec.n == in[i].n_codec &&
          (!out.codec.n || !memcmp(out.codec.v, in[i].codec, out.codec.n * 4)));
  }
  /* read out of order too: the codec range is per sample, not a running cursor */
  if (s) CHECK(shard_read_sample(s, 0, &out, err, sizeof err) == 0 && out.codec.n == 5);
  shard_close(s);

  /* version 1 (written by an earlier build): refused, naming the file and both versions */
  const char *fx = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/data/shard_v1.h5", fx ? fx : "tests/fixtures");
  CHECK(shard_open(&s, path, true, err, sizeof err) != 0);
  CHECK_MSG(strstr(err, "shard_v1.h5") && strstr(err, "format version 1") &&
                strstr(err, "reads version 3"),
            "%s", err);
  shard_sample_free(&out);
}

static void reader(const char *dir) {
  char path[300], err[512];
  snprintf(path, sizeof path, "%s/speech.jsonl", dir);
  FILE *f = fopen(path, "w");
  fputs("{\"id\": \"ok1\", \"text\": \"Hello there.\", \"codec\": [1, 2, 1023]}\n"
        "{\"id\": \"no-text\", \"codec\": [1, 2]}\n"
        "{\"id\": \"empty-text\", \"text\": \"\", \"codec\": [1]}\n"
        "{\"id\": \"no-codec\", \"text\": \"hi\"}\n"
        "{\"id\": \"empty-codec\", \"text\": \"hi\", \"codec\": []}\n"
        "{\"id\": \"big-codec\", \"text\": \"hi\", \"codec\": [3, 1024]}\n"
        "{\"id\": \"neg-codec\", \"text\": \"hi\", \"codec\": [-1]}\n"
        "{\"id\": \"str-codec\", \"text\": \"hi\", \"codec\": [\"7\"]}\n"
        "{\"id\": \"with-conv\", \"text\": \"hi\", \"codec\": [7], \"conversations\": []}\n"
        "{\"id\": \"ok2\", \"set\": \"tts\", \"text\": \"Two\", \"codec\": [9]}\n"
        "{\"id\": \"bad-set\", \"set\": \"nope\", \"text\": \"Two\", \"codec\": [9]}\n",
        f);
  fclose(f);
  static const struct {
    const char *id;
    int got;
    sample_reason why;
    const char *field;
  } want[] = {{"ok1", 1, SAMPLE_OK, NULL},
              {"no-text", 2, SAMPLE_BAD_FIELD, "text:"},
              {"empty-text", 2, SAMPLE_BAD_FIELD, "text:"},
              {"no-codec", 2, SAMPLE_BAD_FIELD, "codec:"},
              {"empty-codec", 2, SAMPLE_BAD_FIELD, "codec:"},
              {"big-codec", 2, SAMPLE_BAD_FIELD, "codec[1]: 1024 is not a codec id"},
              {"neg-codec", 2, SAMPLE_BAD_FIELD, "codec[0]: -1"},
              {"str-codec", 2, SAMPLE_BAD_FIELD, "codec[0]: expected an integer"},
              {"with-conv", 2, SAMPLE_BAD_FIELD, "conversations:"},
              {"ok2", 1, SAMPLE_OK, NULL},
              {"bad-set", 2, SAMPLE_UNKNOWN_SET, "nope"}};
  sample_config cfg;
  sample_config_default(&cfg);
  CHECK(cfg.codec_vocab == TTS_DATA_CODEC_VOCAB);
  sample_set set = {.name = "tts"};
  cfg.sets = &set;
  cfg.n_sets = 1;
  sample_reader *r;
  CHECK_MSG(sample_reader_open(&r, path, err, sizeof err) == 0, "%s", err);
  sample s;
  sample_reason why;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    err[0] = 0;
    int got = sample_reader_next(r, &cfg, &s, &why, err, sizeof err);
    CHECK_MSG(got == want[i].got && why == want[i].why, "%s: got %d reason %d (%s)", want[i].id,
              got, why, err);
    CHECK_MSG(!strcmp(s.id, want[i].id), "id %s, want %s", s.id, want[i].id);
    if (want[i].field)
      CHECK_MSG(strstr(err, want[i].field) && strstr(err, "speech.jsonl:"),
                "%s: message '%s' should name '%s' and the line", want[i].id, err, want[i].field);
    if (got == 1) {
      CHECK(s.text && s.n_turns == 0 && s.n_codec >= 1 && s.inserted_id == -1 && s.end_tag);
      if (!strcmp(s.id, "ok1"))
        CHECK(s.n_codec == 3 && s.codec[2] == 1023 && !strcmp(s.text, "Hello there."));
      sample_free(&s);
    }
  }
  CHECK(sample_reader_next(r, &cfg, &s, &why, err, sizeof err) == 0);
  sample_reader_close(r);

  /* a smaller codebook from the config refuses ids past it */
  sample_reader_open(&r, path, err, sizeof err);
  cfg.codec_vocab = 1000;
  CHECK(sample_reader_next(r, &cfg, &s, &why, err, sizeof err) == 2 && why == SAMPLE_BAD_FIELD &&
        strstr(err, "expected 0 to 999"));
  sample_reader_close(r);
}

/* Reads every sample of a mixture's shards: text ids and codec ids. */
static int64_t read_all(const char *mixture, int32_t *text_max, int64_t *codec_total,
                        int64_t *frames_min, int64_t *frames_max, uint32_t *hash) {
  /* every sample has min_frames..max_frames codec frames per text token on average */
  mix_config mc = {0};
  char err[512];
  if (mix_config_load(&mc, mixture, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return -1;
  }
  int64_t n = 0;
  *text_max = -1, *codec_total = 0, *frames_min = 1 << 30, *frames_max = 0, *hash = 2166136261u;
  shard_sample ss = {0};
  for (size_t d = 0; d < mc.n_datasets; d++)
    for (size_t k = 0; k < mc.datasets[d].n_shards; k++) {
      shard *s;
      if (shard_open(&s, mc.datasets[d].shards[k], true, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        continue;
      }
      for (int64_t i = 0; i < shard_n_samples(s); i++, n++) {
        shard_read_sample(s, i, &ss, err, sizeof err);
        for (size_t j = 0; j < ss.ids.n; j++) {
          if (ss.ids.v[j] > *text_max) *text_max = ss.ids.v[j];
          *hash = (*hash ^ (uint32_t)ss.ids.v[j]) * 16777619u;
        }
        for (size_t j = 0; j < ss.codec.n; j++)
          *hash = (*hash ^ (uint32_t)ss.codec.v[j]) * 16777619u;
        /* frames per text token, rounded down and up over the sample */
        int64_t nt = (int64_t)(ss.ids.n ? ss.ids.n : 1), nc = (int64_t)ss.codec.n;
        if (nc / nt < *frames_min) *frames_min = nc / nt;
        if ((nc + nt - 1) / nt > *frames_max) *frames_max = (nc + nt - 1) / nt;
        *codec_total += (int64_t)ss.codec.n;
      }
      shard_close(s);
    }
  shard_sample_free(&ss);
  mix_config_free(&mc);
  return n;
}

static void synth(const char *dir) {
  tts_synth_cfg c = tts_synth_defaults();
  c.samples = 40;
  c.eval_samples = 10;
  c.n_shards = 2;
  c.noise = 0;
  char out[300], mix[340], err[512];
  snprintf(out, sizeof out, "%s/gen", dir);
  CHECK_MSG(tts_synth_write(out, &c, err, sizeof err) == 0, "%s", err);
  int32_t tmax;
  int64_t total, fmin, fmax;
  uint32_t h_train, h_eval, h_again;
  snprintf(mix, sizeof mix, "%s/train/mixture.yaml", out);
  CHECK(read_all(mix, &tmax, &total, &fmin, &fmax, &h_train) == 40);
  CHECK(tmax < c.text_vocab && fmin >= c.min_frames && fmax <= c.max_frames);
  snprintf(mix, sizeof mix, "%s/eval/mixture.yaml", out);
  CHECK(read_all(mix, &tmax, &total, &fmin, &fmax, &h_eval) == 10);
  CHECK(h_eval != h_train);

  /* the rule: without noise, a text token is always spoken with the same frames, so the
   * same text gives the same codec sequence */
  snprintf(mix, sizeof mix, "%s/train/mixture.yaml", out);
  mix_config mc = {0};
  CHECK(mix_config_load(&mc, mix, err, sizeof err) == 0);
  int32_t seen[32][8];
  int nseen[32];
  memset(nseen, -1, sizeof nseen);
  int consistent = 1, checked = 0;
  shard_sample ss = {0};
  for (size_t k = 0; k < mc.datasets[0].n_shards; k++) {
    shard *s;
    if (shard_open(&s, mc.datasets[0].shards[k], false, err, sizeof err)) continue;
    for (int64_t i = 0; i < shard_n_samples(s); i++) {
      shard_read_sample(s, i, &ss, err, sizeof err);
      /* the first text token's frames: the first dur codec ids, dur unknown, so compare
       * prefixes of what was seen for that token */
      int32_t t = ss.ids.v[0];
      if (nseen[t] < 0) {
        nseen[t] = (int)(ss.codec.n < 8 ? ss.codec.n : 8);
        memcpy(seen[t], ss.codec.v, sizeof(int32_t) * (size_t)nseen[t]);
      } else {
        checked++;
        consistent &= ss.codec.v[0] == seen[t][0] && ss.codec.v[1] == seen[t][1];
      }
    }
    shard_close(s);
  }
  CHECK_MSG(checked > 5 && consistent, "first frames follow the first text token (%d checked)",
            checked);
  shard_sample_free(&ss);
  mix_config_free(&mc);

  /* the same seed gives the same data */
  snprintf(out, sizeof out, "%s/gen2", dir);
  CHECK(tts_synth_write(out, &c, err, sizeof err) == 0);
  snprintf(mix, sizeof mix, "%s/train/mixture.yaml", out);
  CHECK(read_all(mix, &tmax, &total, &fmin, &fmax, &h_again) == 40 && h_again == h_train);

  c.max_frames = 0;
  CHECK(tts_synth_write(out, &c, err, sizeof err) == -1 && strstr(err, "max_frames"));
}

int main(void) {
  char dir[] = "/tmp/vt_test_tts_data_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  shard_codec(dir);
  reader(dir);
  synth(dir);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
  return vt_test_finish("test_tts_data");
}
