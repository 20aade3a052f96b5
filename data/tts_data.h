/* Stage 3.2 (speech decoder) samples: a text and the codec token ids of its speech, one JSON
 * object per line, `{"id": "a1", "text": "Hello.", "codec": [12, 873, ...]}` (optionally with
 * "set"), or the speech itself instead of its ids, `{"id": "a1", "text": "Hello.", "audio":
 * "a1.wav"}`, which `vita prep --codec DIR` encodes to codec ids. The sample reader hands such
 * objects here; `vita prep` tokenizes the text without a chat template and writes the codec
 * ids beside it in the shard. */
#ifndef VT_DATA_TTS_DATA_H
#define VT_DATA_TTS_DATA_H

#include "data/chat.h"
#include "data/sample.h"

#include <stdbool.h>

#define TTS_DATA_CODEC_VOCAB 1024 /* default codebook size (TiCodec: one codebook of 1024) */

/* True when a parsed object is a speech sample (it has "text" or "codec"). */
bool tts_sample_is_speech(const void *json_object);
/* Fills s->text and s->codec from the object (an "audio" sample: s->text only; the caller
 * resolves its path). Returns SAMPLE_OK, or SAMPLE_BAD_FIELD with err naming s->where and the
 * field (text missing or empty, codec not a non-empty list of ids in [0, codec_vocab), both
 * codec and audio or neither, audio not one path, conversations or other media given). */
sample_reason tts_sample_from_json(const void *json_object, int64_t codec_vocab, sample *s,
                                   char *err, size_t err_len);
/* The shard form of a speech sample: the text's token ids, labels all VT_IGNORE_INDEX (the LLM
 * is not trained on them), no media. Returns 0, or -1 with err. */
int tts_sample_encode(tok_tokenizer *t, const sample *s, chat_sample *out, char *err,
                      size_t err_len);

#endif
