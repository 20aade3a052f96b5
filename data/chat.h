/* The Qwen2.5 chat template with VITA state markers: chat_encode turns a conversation into
 * token ids, labels (-100 outside assistant answers) and placeholder ids recording where each
 * image / video / audio item goes; chat_prompts holds the system prompt per modality. */
#ifndef VT_DATA_CHAT_H
#define VT_DATA_CHAT_H

#include "autograd/ignore.h"
#include "data/tokenizer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Placeholder ids in the token stream (negative, never valid vocabulary ids; the model
 * splices the medium's embeddings there). Labels at placeholders are VT_IGNORE_INDEX. */
enum {
  CHAT_IMAGE_ID = -200,
  CHAT_VIDEO_ID = -300,
  CHAT_AUDIO_ID = -500,
};

/* Token ids of the template in Qwen2.5's vocabulary. chat_encode looks each up by its text in
 * the tokenizer it is given (a smaller tokenizer has them elsewhere) and uses these when the
 * tokenizer lacks one. */
enum {
  CHAT_ENDOFTEXT = 151643,
  CHAT_IM_START = 151644,
  CHAT_IM_END = 151645,
  CHAT_MARK_SPEECH = 144766, /* ☞ answer to a speech question */
  CHAT_MARK_TEXT = 145789,   /* ☜ answer to a text question */
  CHAT_MARK_SKIP = 146164,   /* ☟ turn that must not be answered (inserted_id) */
};

typedef enum { CHAT_MEDIA_IMAGE = 0, CHAT_MEDIA_VIDEO = 1, CHAT_MEDIA_AUDIO = 2 } chat_media_kind;

/* System prompts by modality; NULL fields take the defaults (chat_default_prompts). */
typedef struct {
  const char *image;    /* the sample has an <image> */
  const char *video;    /* the sample has a <video> (and no image) */
  const char *language; /* text or audio only */
} chat_prompts;

extern const chat_prompts chat_default_prompts;

typedef enum { CHAT_FROM_HUMAN, CHAT_FROM_GPT } chat_role;

typedef struct {
  chat_role from;
  const char *value; /* UTF-8 text; may hold <image>, <video>, <audio> (human turns) */
} chat_turn;

/* Where one medium goes: token position of its placeholder, its kind, and which item of
 * that kind in the sample's list (0-based, in order of appearance). */
typedef struct {
  int64_t pos;
  int32_t kind;
  int32_t item;
} chat_media;

typedef struct {
  tok_ids ids;    /* token ids with placeholder ids */
  tok_ids labels; /* same length; VT_IGNORE_INDEX where not trained */
  chat_media *media;
  size_t n_media, cap_media;
  int32_t n_per_kind[3]; /* placeholders found per chat_media_kind */
} chat_sample;

/* Empties s for reuse (keeps its buffers). */
void chat_sample_reset(chat_sample *s);
void chat_sample_free(chat_sample *s);

/* Encodes turns (alternating human, gpt, starting with human) into out (reset first).
 * inserted_id: index in turns of the human turn (or its answer) answered with ☟, -1 none.
 * end_tag false drops the final <|im_end|>. Returns 0, or -1 with err saying which turn
 * and what was wrong (order of roles, text not UTF-8, out of memory). */
int chat_encode(tok_tokenizer *t, const chat_prompts *prompts, const chat_turn *turns,
                size_t n_turns, int inserted_id, bool end_tag, chat_sample *out, char *err,
                size_t err_len);

#endif
