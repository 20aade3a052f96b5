// ctest-labels: unit
/* Chat template: ids and labels of a hand-checked image+speech conversation against the
 * fixture from tests/reference/gen_tokenizer_fixtures.py, label mask positions, state markers
 * (☞ ☜ ☟), end_tag, system prompt by modality, placeholders, role order errors. */
#include "data/chat.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void read_ids(FILE *f, tok_ids *out) {
  char *line = NULL, *s, *end;
  size_t cap = 0;
  if (getline(&line, &cap, f) < 0) return;
  for (s = line;; s = end) {
    long v = strtol(s, &end, 10);
    if (end == s) break;
    tok_ids_push(out, (int32_t)v);
  }
  free(line);
}

static const chat_prompts helpful = {"You are a helpful assistant.", "You are a helpful assistant.",
                                     "You are a helpful assistant."};

static const chat_turn conv[] = {
    {CHAT_FROM_HUMAN, "<image>\nWhat is in the picture?"},
    {CHAT_FROM_GPT, "A cat on a mat."},
    {CHAT_FROM_HUMAN, "<audio>"},
    {CHAT_FROM_GPT, "It is grey."},
};

static void test_fixture(tok_tokenizer *t) {
  const char *fx = getenv("VT_FIXTURES");
  char path[4096], err[256];
  snprintf(path, sizeof path, "%s/tokenizer/chat_cases.txt", fx ? fx : "tests/fixtures");
  FILE *f = fopen(path, "r");
  CHECK_MSG(f, "cannot open %s", path);
  if (!f) return;
  char name[256];
  CHECK_MSG(fgets(name, sizeof name, f) != NULL, "empty fixture");
  tok_ids want_ids = {0}, want_labels = {0};
  read_ids(f, &want_ids);
  read_ids(f, &want_labels);
  fclose(f);

  chat_sample s = {0};
  CHECK_MSG(chat_encode(t, &helpful, conv, 4, -1, true, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.ids.n == want_ids.n && s.labels.n == s.ids.n, "%zu ids, want %zu", s.ids.n,
            want_ids.n);
  for (size_t i = 0; i < s.ids.n && i < want_ids.n; i++) {
    CHECK_MSG(s.ids.v[i] == want_ids.v[i], "id %zu: %d want %d", i, s.ids.v[i], want_ids.v[i]);
    CHECK_MSG(s.labels.v[i] == want_labels.v[i], "label %zu: %d want %d", i, s.labels.v[i],
              want_labels.v[i]);
  }
  /* hand-checked: 51 tokens, trained = ☜ answer + <|im_end|> (27..34), ☞ answer (45..50) */
  CHECK_MSG(s.ids.n == 51, "n = %zu", s.ids.n);
  for (size_t i = 0; i < s.labels.n; i++) {
    bool trained = (i >= 27 && i <= 34) || (i >= 45 && i <= 50);
    CHECK_MSG((s.labels.v[i] != VT_IGNORE_INDEX) == trained, "label mask wrong at %zu", i);
  }
  CHECK_MSG(s.ids.v[27] == CHAT_MARK_TEXT && s.ids.v[45] == CHAT_MARK_SPEECH, "markers");
  CHECK_MSG(s.ids.v[50] == CHAT_IM_END, "last token %d", s.ids.v[50]);
  CHECK_MSG(s.n_media == 2, "n_media %zu", s.n_media);
  CHECK_MSG(s.media[0].pos == 14 && s.media[0].kind == CHAT_MEDIA_IMAGE && s.media[0].item == 0,
            "image at %lld", (long long)s.media[0].pos);
  CHECK_MSG(s.media[1].pos == 39 && s.media[1].kind == CHAT_MEDIA_AUDIO && s.media[1].item == 0,
            "audio at %lld", (long long)s.media[1].pos);
  CHECK_MSG(s.ids.v[14] == CHAT_IMAGE_ID && s.ids.v[39] == CHAT_AUDIO_ID, "placeholder ids");
  CHECK_MSG(s.n_per_kind[0] == 1 && s.n_per_kind[1] == 0 && s.n_per_kind[2] == 1, "per kind");

  /* end_tag false: the final <|im_end|> goes, nothing else changes */
  CHECK_MSG(chat_encode(t, &helpful, conv, 4, -1, false, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.ids.n == 50 && s.ids.v[49] == want_ids.v[49], "end_tag false: n = %zu", s.ids.n);

  /* inserted_id: the second question (turn 2) is answered with ☟ */
  CHECK_MSG(chat_encode(t, &helpful, conv, 4, 2, true, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.ids.v[45] == CHAT_MARK_SKIP && s.labels.v[45] == CHAT_MARK_SKIP, "☟ at 45: %d",
            s.ids.v[45]);
  CHECK_MSG(s.ids.v[27] == CHAT_MARK_TEXT, "turn 1 keeps ☜");
  chat_sample_free(&s);
  tok_ids_free(&want_ids);
  tok_ids_free(&want_labels);
}

/* The system prompt follows the modality; decode the system piece to see which one. */
static void test_prompts(tok_tokenizer *t) {
  chat_prompts p = {"IMG", "VID", "LANG"};
  struct {
    const char *q, *want;
  } cases[] = {{"<image> hi", "IMG"}, {"<video> hi", "VID"}, {"<audio>", "LANG"}, {"hi", "LANG"}};
  char err[256];
  chat_sample s = {0};
  for (int k = 0; k < 4; k++) {
    chat_turn turns[2] = {{CHAT_FROM_HUMAN, cases[k].q}, {CHAT_FROM_GPT, "ok"}};
    CHECK_MSG(chat_encode(t, &p, turns, 2, -1, true, &s, err, sizeof err) == 0, "%s", err);
    tok_bytes b = {0};
    size_t end = 1;
    while (end < s.ids.n && s.ids.v[end] != CHAT_IM_END) end++;
    tok_decode(t, s.ids.v + 1, end - 1, false, &b, err, sizeof err);
    char want[64];
    snprintf(want, sizeof want, "system\n%s", cases[k].want);
    CHECK_MSG(b.p && strcmp(b.p, want) == 0, "%s: system piece '%s'", cases[k].q, b.p);
    tok_bytes_free(&b);
  }
  /* default prompts when none given */
  chat_turn turns[2] = {{CHAT_FROM_HUMAN, "hi"}, {CHAT_FROM_GPT, "ok"}};
  CHECK_MSG(chat_encode(t, NULL, turns, 2, -1, true, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.ids.n > 40, "default language prompt is long: %zu", s.ids.n);

  /* roles must alternate human, gpt */
  chat_turn bad[2] = {{CHAT_FROM_HUMAN, "hi"}, {CHAT_FROM_HUMAN, "again"}};
  CHECK_MSG(chat_encode(t, NULL, bad, 2, -1, true, &s, err, sizeof err) == -1,
            "bad order accepted");
  CHECK_MSG(strstr(err, "conversations[1].from") != NULL, "message: %s", err);
  CHECK_MSG(chat_encode(t, NULL, turns, 2, 7, true, &s, err, sizeof err) == -1, "bad inserted_id");
  CHECK_MSG(strstr(err, "inserted_id") != NULL, "message: %s", err);
  chat_turn two_images[2] = {{CHAT_FROM_HUMAN, "<image><image>x<audio>"}, {CHAT_FROM_GPT, "ok"}};
  CHECK_MSG(chat_encode(t, NULL, two_images, 2, -1, true, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.n_media == 3 && s.media[1].item == 1 && s.media[1].pos == s.media[0].pos + 1 &&
                s.media[2].kind == CHAT_MEDIA_AUDIO,
            "placeholder order");
  chat_sample_free(&s);
}

/* DESIGN.md §7: <image> tags ending a human turn move to its start, the rest stripped; tags
 * elsewhere stay where they are. */
static void test_images_first(tok_tokenizer *t) {
  struct {
    const char *q, *same_as;
  } cases[] = {{"Describe this.\n<image><image>", "<image><image>Describe this."},
               {" What is it? <image>", "<image>What is it?"},
               {"<image>", "<image>"},
               {"a<image>b", "a<image>b"}};
  char err[256];
  chat_sample s = {0}, w = {0};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    chat_turn a[2] = {{CHAT_FROM_HUMAN, cases[k].q}, {CHAT_FROM_GPT, "ok"}};
    chat_turn b[2] = {{CHAT_FROM_HUMAN, cases[k].same_as}, {CHAT_FROM_GPT, "ok"}};
    CHECK_MSG(chat_encode(t, NULL, a, 2, -1, true, &s, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(chat_encode(t, NULL, b, 2, -1, true, &w, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(s.ids.n == w.ids.n && !memcmp(s.ids.v, w.ids.v, s.ids.n * sizeof *s.ids.v) &&
                  !memcmp(s.labels.v, w.labels.v, s.ids.n * sizeof *s.labels.v) &&
                  s.n_media == w.n_media,
              "\"%s\" is not encoded as \"%s\"", cases[k].q, cases[k].same_as);
    for (size_t i = 0; i < s.n_media && i < w.n_media; i++)
      CHECK_MSG(s.media[i].pos == w.media[i].pos, "\"%s\": medium %zu at %lld", cases[k].q, i,
                (long long)s.media[i].pos);
  }
  /* the image moved: its placeholder now comes right after "user\n", before the text */
  chat_turn a[2] = {{CHAT_FROM_HUMAN, "Describe this.\n<image>"}, {CHAT_FROM_GPT, "ok"}};
  CHECK_MSG(chat_encode(t, NULL, a, 2, -1, true, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.n_media == 1 && s.media[0].pos + 1 < (int64_t)s.ids.n &&
                s.ids.v[s.media[0].pos - 1] != CHAT_IM_START,
            "image placeholder position");
  bool text_after = false;
  for (size_t i = (size_t)s.media[0].pos + 1; i < s.ids.n && s.ids.v[i] != CHAT_IM_END; i++)
    text_after = true;
  CHECK_MSG(text_after, "the question's text does not follow the moved image");
  chat_sample_free(&s);
  chat_sample_free(&w);
}

int main(void) {
  const char *shared = getenv("VT_SHARED_DIR");
  char dir[4096], err[512];
  snprintf(dir, sizeof dir, "%s/data/qwen-tokenizer", shared ? shared : "../shared");
  tok_tokenizer *t;
  if (tok_init(&t, dir, err, sizeof err) != 0) {
    fprintf(stderr, "skip: %s\n", err);
    return 77;
  }
  test_fixture(t);
  test_prompts(t);
  test_images_first(t);
  tok_free(t);
  return vt_test_finish("test_chat");
}
