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

/* `vita features audio FILE`: the entry in cmd_features.c's table of kinds, with the audio
 * options of that command's shared option table. */
int cli_features_audio_run(const cli_args *a, const char *file);

#endif
