/* Chat template: <|im_start|>system\n{S}<|im_end|>\n then per turn
 * <|im_start|>user\n{q}<|im_end|>\n and <|im_start|>assistant\n{mark}{a}<|im_end|>\n, the last
 * <|im_end|> without the newline (dropped entirely when end_tag is false). Text between special
 * tokens, markers and placeholders is tokenized as one piece, as HF would tokenize it. <image>
 * tags ending a human turn move to its start first (images_first). */
#include "data/chat.h"
#include "autograd/fmt.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const chat_prompts chat_default_prompts = {
    .image = "You are an AI robot and your name is VITA. \n"
             "- You are a multimodal large language model developed by the open source "
             "community. Your aim is to be helpful, honest and harmless. \n"
             "- You support the ability to communicate fluently and answer user questions in "
             "multiple languages of the user's choice. \n"
             "- If the user corrects the wrong answer you generated, you will apologize and "
             "discuss the correct answer with the user. \n"
             "- You must answer the question strictly according to the content of the image "
             "given by the user, and it is strictly forbidden to answer the question without "
             "the content of the image. Please note that you are seeing the image, not the "
             "video.",
    .video = "You are an AI robot and your name is VITA. \n"
             "- You are a multimodal large language model developed by the open source "
             "community. Your aim is to be helpful, honest and harmless. \n"
             "- You support the ability to communicate fluently and answer user questions in "
             "multiple languages of the user's choice. \n"
             "- If the user corrects the wrong answer you generated, you will apologize and "
             "discuss the correct answer with the user. \n"
             "- You must answer the question strictly according to the content of the video "
             "given by the user, and it is strictly forbidden to answer the question without "
             "the content of the video. Please note that you are seeing the video, not the "
             "image.",
    .language = "You are an AI robot and your name is VITA. \n"
                "- You are a multimodal large language model developed by the open source "
                "community. Your aim is to be helpful, honest and harmless. \n"
                "- You support the ability to communicate fluently and answer user questions "
                "in multiple languages of the user's choice. \n"
                "- If the user corrects the wrong answer you generated, you will apologize and "
                "discuss the correct answer with the user.",
};

void chat_sample_reset(chat_sample *s) {
  s->ids.n = s->labels.n = 0;
  s->n_media = 0;
  memset(s->n_per_kind, 0, sizeof s->n_per_kind);
}

void chat_sample_free(chat_sample *s) {
  tok_ids_free(&s->ids);
  tok_ids_free(&s->labels);
  free(s->media);
  *s = (chat_sample){0};
}

/* Builder state: ids and labels grow together. */
typedef struct {
  tok_tokenizer *t;
  chat_sample *s;
  char *err;
  size_t err_len;
} builder;

/* A template token's id in t: Qwen's tokenizer has it at the fixed id, a smaller one (the
 * generated dataset's) elsewhere; a tokenizer without it keeps Qwen's id. */
static int32_t template_id(const tok_tokenizer *t, const char *text, int32_t qwen) {
  int32_t id = tok_token_id(t, text);
  return id >= 0 ? id : qwen;
}

static int push_id(builder *b, int32_t id, bool trained) {
  if (tok_ids_push(&b->s->ids, id) || tok_ids_push(&b->s->labels, trained ? id : VT_IGNORE_INDEX)) {
    vt_seterr(b->err, b->err_len, "out of memory");
    return -1;
  }
  return 0;
}

static int push_text(builder *b, const char *text, size_t len, bool trained) {
  size_t n0 = b->s->ids.n;
  if (tok_encode(b->t, text, len, &b->s->ids, b->err, b->err_len) != 0) return -1;
  for (size_t i = n0; i < b->s->ids.n; i++)
    if (tok_ids_push(&b->s->labels, trained ? b->s->ids.v[i] : VT_IGNORE_INDEX)) {
      vt_seterr(b->err, b->err_len, "out of memory");
      return -1;
    }
  return 0;
}

static int push_media(builder *b, chat_media_kind kind) {
  static const int32_t ids[3] = {CHAT_IMAGE_ID, CHAT_VIDEO_ID, CHAT_AUDIO_ID};
  chat_sample *s = b->s;
  if (s->n_media == s->cap_media) {
    size_t cap = s->cap_media ? s->cap_media * 2 : 8;
    chat_media *m = realloc(s->media, cap * sizeof *m);
    if (!m) {
      vt_seterr(b->err, b->err_len, "out of memory");
      return -1;
    }
    s->media = m;
    s->cap_media = cap;
  }
  s->media[s->n_media++] =
      (chat_media){.pos = (int64_t)s->ids.n, .kind = kind, .item = s->n_per_kind[kind]++};
  return push_id(b, ids[kind], false);
}

static const struct {
  const char *tag;
  size_t len;
  chat_media_kind kind;
} placeholders[] = {
    {"<image>", 7, CHAT_MEDIA_IMAGE},
    {"<video>", 7, CHAT_MEDIA_VIDEO},
    {"<audio>", 7, CHAT_MEDIA_AUDIO},
};

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* DESIGN.md §7 (the public preprocess_multimodal): a human turn that ends with <image> tags
 * has that trailing run moved to its start, the rest stripped of surrounding white space
 * ("Describe this.\n<image>" -> "<image>Describe this."). Writes the turn as encoded to out
 * (strlen(q) + 1 bytes). */
static void images_first(const char *q, char *out) {
  size_t n = strlen(q), k = 0, end = n;
  while (end >= 7 && !memcmp(q + end - 7, "<image>", 7)) end -= 7, k++;
  if (k == 0) {
    memcpy(out, q, n + 1);
    return;
  }
  size_t a = 0;
  while (a < end && is_space(q[a])) a++;
  while (end > a && is_space(q[end - 1])) end--;
  size_t o = 0;
  for (size_t i = 0; i < k; i++) memcpy(out + o, "<image>", 7), o += 7;
  memcpy(out + o, q + a, end - a);
  out[o + end - a] = '\0';
}

/* Text of a human turn after prefix: split at placeholders. */
static int push_question(builder *b, const char *prefix, const char *q) {
  size_t plen = strlen(prefix), qlen = strlen(q);
  char *buf = malloc(plen + qlen + 1);
  if (!buf) {
    vt_seterr(b->err, b->err_len, "out of memory");
    return -1;
  }
  memcpy(buf, prefix, plen);
  images_first(q, buf + plen);
  const char *seg = buf, *p = buf + plen;
  int rc = 0;
  while (rc == 0 && (p = strchr(p, '<'))) {
    int hit = -1;
    for (int k = 0; k < 3; k++)
      if (strncmp(p, placeholders[k].tag, placeholders[k].len) == 0) hit = k;
    if (hit < 0) {
      p++;
      continue;
    }
    rc = push_text(b, seg, (size_t)(p - seg), false);
    if (rc == 0) rc = push_media(b, placeholders[hit].kind);
    p += placeholders[hit].len;
    seg = p;
  }
  if (rc == 0) rc = push_text(b, seg, strlen(seg), false);
  free(buf);
  return rc;
}

static bool has_tag(const chat_turn *turns, size_t n, const char *tag) {
  for (size_t i = 0; i < n; i++)
    if (turns[i].from == CHAT_FROM_HUMAN && turns[i].value && strstr(turns[i].value, tag))
      return true;
  return false;
}

int chat_encode(tok_tokenizer *t, const chat_prompts *prompts, const chat_turn *turns,
                size_t n_turns, int inserted_id, bool end_tag, chat_sample *out, char *err,
                size_t err_len) {
  chat_sample_reset(out);
  builder b = {t, out, err, err_len};
  const int32_t im_start = template_id(t, "<|im_start|>", CHAT_IM_START),
                im_end = template_id(t, "<|im_end|>", CHAT_IM_END),
                mark_speech = template_id(t, "\xe2\x98\x9e", CHAT_MARK_SPEECH),
                mark_text = template_id(t, "\xe2\x98\x9c", CHAT_MARK_TEXT),
                mark_skip = template_id(t, "\xe2\x98\x9f", CHAT_MARK_SKIP);
  const chat_prompts *d = &chat_default_prompts;
  const char *sys;
  if (has_tag(turns, n_turns, "<image>"))
    sys = prompts && prompts->image ? prompts->image : d->image;
  else if (has_tag(turns, n_turns, "<video>"))
    sys = prompts && prompts->video ? prompts->video : d->video;
  else
    sys = prompts && prompts->language ? prompts->language : d->language;
  if (n_turns == 0) {
    vt_seterr(err, err_len, "conversations: empty");
    return -1;
  }
  /* which answer is the inserted (unanswered) turn */
  int skip_answer = -1;
  if (inserted_id >= 0 && (size_t)inserted_id < n_turns)
    skip_answer = turns[inserted_id].from == CHAT_FROM_HUMAN ? inserted_id + 1 : inserted_id;
  else if (inserted_id >= 0) {
    vt_seterr(err, err_len, "inserted_id: %d is not a turn index (0..%zu)", inserted_id,
              n_turns - 1);
    return -1;
  }

  char head[64 * 1024];
  size_t slen = strlen(sys);
  char *sysbuf = slen + 8 < sizeof head ? head : malloc(slen + 8);
  if (!sysbuf) {
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  memcpy(sysbuf, "system\n", 7);
  memcpy(sysbuf + 7, sys, slen);
  int rc = push_id(&b, im_start, false);
  if (rc == 0) rc = push_text(&b, sysbuf, slen + 7, false);
  if (sysbuf != head) free(sysbuf);
  if (rc == 0) rc = push_id(&b, im_end, false);
  if (rc == 0) rc = push_text(&b, "\n", 1, false);

  bool last_question_speech = false;
  for (size_t i = 0; i < n_turns && rc == 0; i++) {
    const chat_turn *turn = &turns[i];
    chat_role want = i % 2 == 0 ? CHAT_FROM_HUMAN : CHAT_FROM_GPT;
    if (turn->from != want) {
      vt_seterr(err, err_len, "conversations[%zu].from: expected %s, found %s", i,
                want == CHAT_FROM_HUMAN ? "human" : "gpt",
                turn->from == CHAT_FROM_HUMAN ? "human" : "gpt");
      return -1;
    }
    const char *v = turn->value ? turn->value : "";
    bool last = i + 1 == n_turns;
    rc = push_id(&b, im_start, false);
    if (turn->from == CHAT_FROM_HUMAN) {
      last_question_speech = strstr(v, "<audio>") != NULL;
      if (rc == 0) rc = push_question(&b, "user\n", v);
      if (rc == 0 && (!last || end_tag)) rc = push_id(&b, im_end, false);
    } else {
      int32_t mark = (int)i == skip_answer  ? mark_skip
                     : last_question_speech ? mark_speech
                                            : mark_text;
      if (rc == 0) rc = push_text(&b, "assistant\n", 10, false);
      if (rc == 0) rc = push_id(&b, mark, true);
      if (rc == 0) rc = push_text(&b, v, strlen(v), true);
      if (rc == 0 && (!last || end_tag)) rc = push_id(&b, im_end, true);
    }
    if (rc == 0 && !last) rc = push_text(&b, "\n", 1, false);
    if (rc != 0) {
      char inner[256];
      snprintf(inner, sizeof inner, "%s", err ? err : "");
      vt_seterr(err, err_len, "conversations[%zu].value: %s", i, inner);
    }
  }
  return rc;
}
