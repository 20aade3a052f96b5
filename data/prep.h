/* The `vita prep` pipeline: VITA JSON files -> chat template -> HDF5 shards. Bad samples are
 * skipped and counted by reason with their ids; shards appear only when complete. prep_run
 * does the work, prep_print_summary reports it. */
#ifndef VT_DATA_PREP_H
#define VT_DATA_PREP_H

#include "data/audio_chars.h"
#include "data/audio_prep.h"
#include "data/sample.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
  sample_reason reason;
  char *id;
  char *message;
} prep_skip;

typedef struct {
  int64_t n_read, n_written, n_tokens, n_trained, n_shards;
  int64_t n_codec;                 /* codec tokens of speech samples (stage 3.2) */
  int64_t n_audio, n_audio_frames; /* stored audio clips and their fbank frames */
  int64_t n_skipped[SAMPLE_N_REASONS];
  prep_skip *skips; /* every skipped sample, in input order */
  size_t n_skips, cap_skips;
} prep_stats;

typedef struct {
  const sample_config *cfg; /* max_len, shard_samples, prompts, sets */
  tok_tokenizer *tok;
  const char *const *inputs; /* JSON array or JSON-lines files */
  size_t n_inputs;
  const char *out_dir; /* created if missing */
  const char *prefix;  /* shard names: OUT/PREFIX-00000.h5; NULL: "shard" */
  bool progress;       /* progress bar on stderr */
  /* audio clips: NULL keeps only their paths; else each <audio> clip's fbank (and waveform
   * when audio->wave_rate > 0) goes into the shard, and a bad clip skips the sample */
  const aud_prep_opts *audio;
  /* CTC targets (stage 2.1a): each sample becomes [<audio>, its transcript's character ids]
   * with the characters trained, one <audio> and no other media; NULL: chat tokens */
  const aud_chars *ctc_chars;
} prep_opts;

/* Runs the pipeline. Returns 0 when every input was read (bad samples are not failures), or
 * -1 for what stops the run: an input that cannot be read, an output that cannot be written
 * (err says which). stats are filled either way; prep_stats_free releases them. */
int prep_run(const prep_opts *o, prep_stats *stats, char *err, size_t err_len);
/* Samples written, shards, tokens, and skipped samples by reason with their ids (at most
 * max_ids ids per reason). */
void prep_print_summary(FILE *f, const prep_stats *stats, const char *out_dir, int max_ids);
void prep_stats_free(prep_stats *stats);

#endif
