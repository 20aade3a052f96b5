// ctest-labels: unit
/* prep_run in-process on tests/fixtures/data/good.json: every shard sample equals what the chat
 * template makes of the JSON sample (ids, labels, media positions and kinds), and each
 * placeholder's media path is the right file of the right kind. Skips (77) without the
 * shared tokenizer. */
#include "data/prep.h"
#include "data/shard.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  const char *shared = getenv("VT_SHARED_DIR"), *fx = getenv("VT_FIXTURES");
  char tokdir[4096], err[1024];
  snprintf(tokdir, sizeof tokdir, "%s/data/qwen-tokenizer", shared ? shared : "../shared");
  tok_tokenizer *t;
  if (tok_init(&t, tokdir, err, sizeof err)) {
    fprintf(stderr, "skip: %s\n", err);
    return 77;
  }
  char cfg_path[4200], input[4200];
  snprintf(cfg_path, sizeof cfg_path, "%s/data/data.yaml", fx ? fx : "tests/fixtures");
  snprintf(input, sizeof input, "%s/data/good.json", fx ? fx : "tests/fixtures");
  sample_config cfg;
  sample_config_default(&cfg);
  CHECK_MSG(sample_config_load(&cfg, cfg_path, err, sizeof err) == 0, "%s", err);
  cfg.shard_samples = 4;
  char dir[] = "/tmp/vt_test_shard_prep_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  const char *inputs[1] = {input};
  prep_opts o = {.cfg = &cfg, .tok = t, .inputs = inputs, .n_inputs = 1, .out_dir = dir};
  prep_stats st;
  CHECK_MSG(prep_run(&o, &st, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(st.n_written == 6 && st.n_shards == 2 && st.n_skips == 0, "written %lld shards %lld",
            (long long)st.n_written, (long long)st.n_shards);

  /* read the JSON again and compare sample by sample with the shards */
  sample_reader *r;
  CHECK_MSG(sample_reader_open(&r, input, err, sizeof err) == 0, "%s", err);
  shard *sh[2] = {NULL, NULL};
  for (int k = 0; k < 2; k++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/shard-%05d.h5", dir, k);
    CHECK_MSG(shard_open(&sh[k], path, true, err, sizeof err) == 0, "%s", err);
  }
  chat_sample cs = {0};
  shard_sample out = {0};
  sample s;
  sample_reason why;
  int64_t tokens = 0;
  for (int i = 0;
       r && sh[0] && sh[1] && sample_reader_next(r, &cfg, &s, &why, err, sizeof err) == 1; i++) {
    CHECK_MSG(chat_encode(t, &cfg.prompts, s.turns, s.n_turns, s.inserted_id, s.end_tag, &cs, err,
                          sizeof err) == 0,
              "%s", err);
    CHECK_MSG(shard_read_sample(sh[i / 4], i % 4, &out, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(!strcmp(out.id, s.id), "id %s vs %s", out.id, s.id);
    CHECK_MSG(out.ids.n == cs.ids.n && !memcmp(out.ids.v, cs.ids.v, cs.ids.n * 4), "%s: ids", s.id);
    CHECK_MSG(!memcmp(out.labels.v, cs.labels.v, cs.ids.n * 4), "%s: labels", s.id);
    CHECK_MSG(out.n_media == cs.n_media, "%s: %zu media", s.id, out.n_media);
    for (size_t k = 0; k < out.n_media && k < cs.n_media; k++) {
      chat_media m = out.media[k];
      CHECK_MSG(m.pos == cs.media[k].pos && m.kind == cs.media[k].kind, "%s: media %zu", s.id, k);
      CHECK_MSG(out.ids.v[m.pos] == (m.kind == CHAT_MEDIA_IMAGE   ? CHAT_IMAGE_ID
                                     : m.kind == CHAT_MEDIA_VIDEO ? CHAT_VIDEO_ID
                                                                  : CHAT_AUDIO_ID),
                "%s: placeholder id at %lld", s.id, (long long)m.pos);
      CHECK_MSG(!strcmp(out.media_path[k], s.media[m.kind][m.item]), "%s: path %s", s.id,
                out.media_path[k]);
    }
    tokens += (int64_t)cs.ids.n;
    sample_free(&s);
  }
  CHECK_MSG(tokens == st.n_tokens, "tokens %lld vs %lld", (long long)tokens,
            (long long)st.n_tokens);
  /* the two-image sample: items 0 and 1 are cat then dog, side by side */
  CHECK_MSG(shard_read_sample(sh[1], 0, &out, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(!strcmp(out.id, "5") && out.n_media == 2 && out.media[1].pos == out.media[0].pos + 1 &&
                strstr(out.media_path[0], "img/cat.jpg") &&
                strstr(out.media_path[1], "img/dog.jpg"),
            "two images in order");
  /* the inserted turn is answered with ☟, the first with ☜ */
  int marks[3] = {0, 0, 0};
  for (size_t k = 0; k < out.ids.n; k++) {
    marks[0] += out.ids.v[k] == CHAT_MARK_TEXT;
    marks[1] += out.ids.v[k] == CHAT_MARK_SKIP;
    marks[2] += out.ids.v[k] == CHAT_MARK_SPEECH;
  }
  CHECK_MSG(marks[0] == 1 && marks[1] == 1 && marks[2] == 0, "markers %d %d %d", marks[0], marks[1],
            marks[2]);

  shard_sample_free(&out);
  chat_sample_free(&cs);
  for (int k = 0; k < 2; k++) shard_close(sh[k]);
  sample_reader_close(r);
  prep_stats_free(&st);
  sample_config_free(&cfg);
  tok_free(t);
  char cmd[200];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  return vt_test_finish("test_shard_prep");
}
