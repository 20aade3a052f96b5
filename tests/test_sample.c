// ctest-labels: unit
/* Sample reader and data config on tests/fixtures/data (tests/reference/gen_data_fixtures.py):
 * JSON array and JSON lines, every bad kind skipped with its reason and id while the good
 * samples around it still come through, media paths resolved per set, unknown config keys. */
#include "data/sample.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fx[4096];

static void path_of(char *out, size_t n, const char *name) {
  snprintf(out, n, "%s/data/%s", fx, name);
}

typedef struct {
  const char *id; /* expected id (prefix match for FILE:LINE ids) */
  sample_reason why;
} expect;

static void check_file(const char *name, const sample_config *cfg, const expect *want, int n) {
  char path[4200], err[512];
  path_of(path, sizeof path, name);
  sample_reader *r;
  CHECK_MSG(sample_reader_open(&r, path, err, sizeof err) == 0, "%s", err);
  if (!r) return;
  sample s;
  sample_reason why;
  int k = 0, rc;
  while ((rc = sample_reader_next(r, cfg, &s, &why, err, sizeof err)) != 0) {
    CHECK_MSG(k < n, "%s: more items than expected: %s", name, s.id);
    if (k >= n) break;
    CHECK_MSG(why == want[k].why, "%s item %d (%s): reason '%s', want '%s' (%s)", name, k, s.id,
              sample_reason_name(why), sample_reason_name(want[k].why), rc == 2 ? err : "");
    CHECK_MSG(strstr(s.id, want[k].id) != NULL, "%s item %d: id %s, want %s", name, k, s.id,
              want[k].id);
    CHECK_MSG((rc == 1) == (why == SAMPLE_OK), "rc %d", rc);
    if (rc == 1) sample_free(&s);
    k++;
  }
  CHECK_MSG(k == n, "%s: %d items, want %d", name, k, n);
  sample_reader_close(r);
}

static void test_config(sample_config *cfg) {
  char path[4200], err[512];
  path_of(path, sizeof path, "data.yaml");
  sample_config_default(cfg);
  CHECK_MSG(sample_config_load(cfg, path, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(cfg->max_len == 400 && cfg->shard_samples == 4 && cfg->check_media, "scalars");
  CHECK_MSG(cfg->n_sets == 1 && !strcmp(cfg->sets[0].name, "demo"), "sets");
  char want[4300];
  path_of(want, sizeof want, "media");
  CHECK_MSG(cfg->n_sets == 1 && !strcmp(cfg->sets[0].folder[CHAT_MEDIA_AUDIO], want), "folder %s",
            cfg->n_sets ? cfg->sets[0].folder[2] : "-");
  CHECK_MSG(cfg->prompts.language && !strcmp(cfg->prompts.language, "You are a helpful assistant."),
            "prompt");
  CHECK_MSG(cfg->prompts.image == NULL, "image prompt stays default");

  sample_config bad;
  sample_config_default(&bad);
  path_of(path, sizeof path, "bad_key.yaml");
  CHECK_MSG(sample_config_load(&bad, path, err, sizeof err) == -1, "unknown key accepted");
  CHECK_MSG(strstr(err, "image_dir") && strstr(err, "bad_key.yaml") && strstr(err, "sets.demo"),
            "message should name key, file and place: %s", err);
  sample_config_free(&bad);

  /* the shipped example stays loadable */
  const char *src = getenv("VT_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/configs/data/prep_example.yaml", src ? src : ".");
  sample_config_default(&bad);
  CHECK_MSG(sample_config_load(&bad, path, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(bad.n_sets == 2 && bad.max_len == 6200 && bad.tokenizer, "example config");
  sample_config_free(&bad);
}

static void test_good(const sample_config *cfg) {
  char path[4200], err[512];
  path_of(path, sizeof path, "good.json");
  sample_reader *r;
  CHECK_MSG(sample_reader_open(&r, path, err, sizeof err) == 0, "%s", err);
  if (!r) return;
  sample s[6];
  sample_reason why;
  for (int i = 0; i < 6; i++) {
    int rc = sample_reader_next(r, cfg, &s[i], &why, err, sizeof err);
    CHECK_MSG(rc == 1, "good.json item %d: %s", i, err);
    if (rc != 1) return;
  }
  sample extra;
  CHECK_MSG(sample_reader_next(r, cfg, &extra, &why, err, sizeof err) == 0, "end of array");
  CHECK_MSG(!strcmp(s[0].id, "text-1") && s[0].n_turns == 2 && s[0].turns[1].from == CHAT_FROM_GPT,
            "text-1");
  char want[4300];
  path_of(want, sizeof want, "media/img/cat.jpg");
  CHECK_MSG(s[1].n_media[CHAT_MEDIA_IMAGE] == 1 && !strcmp(s[1].media[0][0], want), "image path %s",
            s[1].n_media[0] ? s[1].media[0][0] : "-");
  CHECK_MSG(s[2].n_media[CHAT_MEDIA_AUDIO] == 2, "audio list");
  CHECK_MSG(s[3].n_media[CHAT_MEDIA_VIDEO] == 1, "video");
  CHECK_MSG(!strcmp(s[4].id, "5") && s[4].inserted_id == 2 && s[4].n_media[0] == 2, "numeric id");
  CHECK_MSG(s[5].end_tag == false && s[0].end_tag == true, "end_tag");
  CHECK_MSG(!strcmp(s[5].turns[0].value, "你好"), "UTF-8 text");
  for (int i = 0; i < 6; i++) sample_free(&s[i]);
  sample_reader_close(r);
}

int main(void) {
  const char *f = getenv("VT_FIXTURES");
  snprintf(fx, sizeof fx, "%s", f ? f : "tests/fixtures");
  sample_config cfg;
  test_config(&cfg);
  test_good(&cfg);
  const expect mixed[] = {
      {"text-1", SAMPLE_OK},
      {"mixed.jsonl:2", SAMPLE_BAD_JSON},
      {"bad-role", SAMPLE_UNKNOWN_ROLE},
      {"bad-media", SAMPLE_MISSING_MEDIA},
      {"bad-count", SAMPLE_PLACEHOLDER_MISMATCH},
      {"bad-utf8", SAMPLE_NOT_UTF8},
      {"bad-long", SAMPLE_OK}, /* too long is decided after tokenizing (prep) */
      {"bad-field", SAMPLE_BAD_FIELD},
      {"bad-set", SAMPLE_UNKNOWN_SET},
      {"bad-order", SAMPLE_OK}, /* role order is checked by the template */
      {"image-1", SAMPLE_OK},
      {"audio-1", SAMPLE_OK},
  };
  check_file("mixed.jsonl", &cfg, mixed, 12);
  const expect arr[] = {
      {"text-1", SAMPLE_OK},
      {"bad_array.json:3", SAMPLE_BAD_JSON},
      {"latin1", SAMPLE_NOT_UTF8},
      {"video-1", SAMPLE_OK},
  };
  check_file("bad_array.json", &cfg, arr, 4);
  /* without a config: media resolve against the JSON's directory, so set demo's files are
   * missing there */
  const expect nocfg[] = {{"text-1", SAMPLE_OK},
                          {"image-1", SAMPLE_MISSING_MEDIA},
                          {"audio-1", SAMPLE_MISSING_MEDIA},
                          {"video-1", SAMPLE_MISSING_MEDIA},
                          {"5", SAMPLE_MISSING_MEDIA},
                          {"noend-1", SAMPLE_OK}};
  check_file("good.json", NULL, nocfg, 6);
  sample_config_free(&cfg);
  return vt_test_finish("test_sample");
}
