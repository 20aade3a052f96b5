/* `vita features audio`: the entry for the features dispatcher (cli/cmd_features.c) and the
 * function behind it, callable by other commands and tests. */
#ifndef VT_CLI_CMD_FEATURES_AUDIO_H
#define VT_CLI_CMD_FEATURES_AUDIO_H

#include "cli/cli.h"
#include "data/audio.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
  aud_channel_mode channel;
  double dither; /* 0 at inference */
  uint64_t seed;
  int num_mel_bins; /* 80 */
  int prompts;      /* prompt embeddings per clip, counted in the LLM tokens */
  double max_seconds;
} cli_features_audio_opts;

/* Computes file's fbank, prints the counts to report, and writes `fbank` to out (NULL: none).
 * Returns a CLI exit code; errors go to stderr as one line naming the file. */
int cli_features_audio(const char *file, const char *out, const cli_features_audio_opts *o,
                       FILE *report);

extern const cli_cmd cli_cmd_features_audio; /* named "audio": a subcommand of `features` */

#endif
