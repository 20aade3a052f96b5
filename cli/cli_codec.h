/* The speech codec as the commands use it (`vita codec`, `vita prep --codec`, `vita speak`):
 * a codec weights directory (config.json, the codec's model.json, and model.safetensors; a
 * `vita train` checkpoint of stage 3.1 is one) opened on the CPU, a waveform encoded to frame
 * and global tokens, tokens decoded to a waveform. */
#ifndef VT_CLI_CODEC_H
#define VT_CLI_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/params.h"
#include "data/prep.h"
#include "model/codec_model.h"

typedef struct {
  vt_params ps;
  vt_model *m;
  const codec *c;
  bool ps_ready;
} cli_codec;

/* Opens dir's config.json (a ticodec model) and, when load, its model.safetensors. Returns 0,
 * or -1 with err (cli_codec_close releases what was opened either way). */
int cli_codec_open(cli_codec *d, const char *dir, bool load, char *err, size_t err_len);
void cli_codec_close(cli_codec *d);

/* Encodes n samples at the codec's rate (zero-padded to whole frames): *tokens malloc'd, *T of
 * them, and the n_global global tokens into global (NULL: not wanted). Returns 0 or -1. */
int cli_codec_encode(const cli_codec *d, const float *x, int64_t n, int32_t **tokens, int64_t *T,
                     int32_t *global, char *err, size_t err_len);
/* Decodes T frame tokens with n_global global tokens (NULL: VITA-1.5's fixed ones, which need
 * 8 global codebooks of more than 975 codes) into *n = T * hop samples (malloc'd). */
float *cli_codec_decode(const cli_codec *d, const int32_t *tokens, int64_t T, const int32_t *global,
                        int64_t *n, char *err, size_t err_len);

/* A prep_codec (data/prep.h) over the codec of dir, opened with its weights: `vita prep
 * --codec` and a curriculum's prep steps encode speech samples with it. Returns 0, or -1 with
 * err; cli_codec_prep_close releases it (also after a failed open). */
int cli_codec_prep_open(const char *dir, prep_codec *pc, char *err, size_t err_len);
void cli_codec_prep_close(prep_codec *pc);

/* `vita speak`'s text chunks, cut as VITA-1.5's web demo feeds its TTS: after a mark of
 * , . ? ! (and the full-width ， 。 ？ ！ 、) or a newline once the chunk holds at least 5
 * characters (code points), the first chunk at the first mark (the demo's 23-character
 * first-sentence marker counts toward its 5); what remains is the last chunk. Each chunk is
 * lowercased (ASCII), whitespace-only chunks are dropped, and the first chunk's commas become full
 * stops (the demo's first sentence). *chunks (malloc'd strings) gets *n of them;
 * cli_speak_chunks_free releases them. Returns 0, or -1 with err (invalid UTF-8, no memory). */
int cli_speak_chunks(const char *text, char ***chunks, int *n, char *err, size_t err_len);
void cli_speak_chunks_free(char **chunks, int n);

#endif
