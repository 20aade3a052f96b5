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

/* For a `vita features` dispatcher with one shared option table (cli/cmd_features.c): these
 * entries go into that table (beside its "out"), and its "audio" kind calls
 * cli_features_audio_sub(args, file). */
#define CLI_FEATURES_AUDIO_OPTS                                                                    \
  {"channel", CLI_OPT_STR, "first", "audio: first (channel 0, as the public code) or mix"},        \
      {"dither", CLI_OPT_FLOAT, "0", "audio: Gaussian dither std on the 32768-scaled samples"},    \
      {"seed", CLI_OPT_INT, "0", "audio: dither noise seed"},                                      \
      {"mel-bins", CLI_OPT_INT, "80", "audio: mel bins"},                                          \
      {"prompts", CLI_OPT_INT, "0", "audio: prompt embeddings per clip (counted in tokens)"}, {    \
    "max-seconds", CLI_OPT_FLOAT, "600", "audio: refuse longer files (0: no limit)"                \
  }
int cli_features_audio_sub(const cli_args *a, const char *file);

#endif
