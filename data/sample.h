/* VITA / LLaVA JSON samples and the data config (sample_config_load: sets and folders,
 * prompts, limits). A sample_reader walks a JSON array or JSON-lines file one sample at a
 * time and turns a bad item into a skip reason with its id instead of stopping. */
#ifndef VT_DATA_SAMPLE_H
#define VT_DATA_SAMPLE_H

#include "data/chat.h"
#include "data/media.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *name;
  char *folder[3]; /* per chat_media_kind, resolved; NULL: the set's `folder`, else JSON dir */
} sample_set;

/* The data (prep) config. Keys: tokenizer, max_len, shard_samples, codec_vocab, check_media,
 * system_prompts {image, video, language}, sets {NAME: {folder, image_folder, video_folder,
 * audio_folder}}, inputs [JSON files]. Relative paths are taken from the file's directory. */
typedef struct {
  char *tokenizer;         /* NULL: none given */
  long long max_len;       /* longest sample in tokens (placeholders count 1); default 6200 */
  long long shard_samples; /* samples per shard; default 8192 */
  long long codec_vocab;   /* speech samples: codec ids must be below this; default 1024 */
  bool check_media;        /* stat every medium; default true */
  media_cfg media;         /* `media:` decoding, tiling and frame rule (data/media.h) */
  chat_prompts prompts;    /* NULL fields: chat_default_prompts */
  sample_set *sets;
  size_t n_sets;
  char **inputs;
  size_t n_inputs;
} sample_config;

/* Upper bounds of the config's integers: a sample length in tokens, samples per shard. */
#define SAMPLE_MAX_LEN (1LL << 24)
#define SAMPLE_MAX_SHARD_SAMPLES (1LL << 24)

void sample_config_default(sample_config *c);
/* Loads path over the defaults. Unknown keys are an error naming the key and the file.
 * Returns 0, or -1 with err. sample_config_free releases (also after a failed load). */
int sample_config_load(sample_config *c, const char *path, char *err, size_t err_len);
void sample_config_free(sample_config *c);

/* Why a sample was skipped. */
typedef enum {
  SAMPLE_OK = 0,
  SAMPLE_BAD_JSON,             /* the item is not valid JSON (or not an object) */
  SAMPLE_NOT_UTF8,             /* text bytes that are not UTF-8 */
  SAMPLE_BAD_FIELD,            /* a field is missing or has the wrong type */
  SAMPLE_UNKNOWN_ROLE,         /* conversations[i].from is not human/gpt (user/assistant) */
  SAMPLE_UNKNOWN_SET,          /* `set` not in the data config */
  SAMPLE_MISSING_MEDIA,        /* a medium file does not exist */
  SAMPLE_PLACEHOLDER_MISMATCH, /* <image>/<video>/<audio> count != listed media */
  SAMPLE_BAD_TEMPLATE,         /* roles out of order, bad inserted_id */
  SAMPLE_TOO_LONG,             /* more tokens than max_len */
  SAMPLE_BAD_MEDIA,            /* an image, video or audio clip that does not decode (prep) */
  SAMPLE_N_REASONS
} sample_reason;

const char *sample_reason_name(sample_reason r);

typedef struct {
  char id[512];     /* the sample's id, or FILE:LINE when it has none */
  char where[512];  /* FILE:LINE of the item */
  const char *set;  /* NULL when absent */
  chat_turn *turns; /* values point into the parsed JSON, valid until sample_free */
  size_t n_turns;
  char **media[3]; /* resolved paths per chat_media_kind, in order */
  size_t n_media[3];
  int inserted_id; /* -1 when absent */
  bool end_tag;    /* default true */
  /* a speech sample (data/tts_data.h): its text (no turns then) and codec ids, else NULL */
  const char *text;
  int32_t *codec; /* owned */
  size_t n_codec;
  void *json_; /* owned parsed item */
} sample;

void sample_free(sample *s);

typedef struct sample_reader sample_reader;

/* Opens a JSON array or JSON-lines file (the first non-space byte decides). Returns 0, or
 * -1 when the file cannot be read (err names it). */
int sample_reader_open(sample_reader **r, const char *path, char *err, size_t err_len);
/* The same over len bytes of memory (copied); name stands for the file in messages. */
int sample_reader_open_mem(sample_reader **r, const char *name, const char *data, size_t len,
                           char *err, size_t err_len);
/* Next item: returns 1 with *out filled (caller frees with sample_free), 0 at the end, or 2
 * when the item is skipped: *why says why, out->id names it, err says what was wrong
 * (out needs no free then). Reading always continues after a skip. */
int sample_reader_next(sample_reader *r, const sample_config *cfg, sample *out, sample_reason *why,
                       char *err, size_t err_len);
void sample_reader_close(sample_reader *r);
/* Bytes of the file consumed so far and in total (for progress bars). */
void sample_reader_progress(const sample_reader *r, size_t *done, size_t *total);

#endif
