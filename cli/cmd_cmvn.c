/* `vita cmvn`: global CMVN stats of the encoder's fbank over a dataset, written as the public
 * `global_cmvn` JSON ({"mean_stat", "var_stat", "frame_num"}). Inputs are VITA JSON files (their
 * `audio` media, folders from --config), audio files, or --list files of audio paths. A file
 * that cannot be used is skipped and counted by reason; no usable audio at all is a failure. */
#include "cli/cli.h"
#include "data/audio_feat.h"
#include "data/cmvn.h"
#include "data/sample.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt opts[] = {
    {"out", CLI_OPT_STR, "global_cmvn", "output JSON stats file"},
    {"config", CLI_OPT_STR, NULL, "data config YAML (sets and audio folders) for JSON inputs"},
    {"list", CLI_OPT_STR, NULL, "a text file of audio paths, one per line (more inputs)"},
    {"channel", CLI_OPT_STR, "first", "first (channel 0) or mix"},
    {"dither", CLI_OPT_FLOAT, "0", "dither as in training (0: none)"},
    {"seed", CLI_OPT_INT, "0", "dither noise seed"},
    {"max-seconds", CLI_OPT_FLOAT, "600", "skip longer files"},
    {"quiet", CLI_OPT_FLAG, NULL, "print only the summary"},
    {NULL, 0, NULL, NULL},
};

typedef struct {
  const aud_load_opts *lo;
  const fbank_plan *plan;
  vt_rng rng;
  cmvn_stats st;
  int64_t n_files, n_skipped[AUD_N_REASONS], n_samples_skipped;
  bool quiet;
} cmvn_run;

static void add_file(cmvn_run *r, const char *path) {
  char err[1024];
  float *f;
  size_t T;
  aud_reason why = aud_fbank_file(path, r->lo, r->plan, &r->rng, 1, &f, &T, NULL, err, sizeof err);
  if (why != AUD_OK) {
    r->n_skipped[why]++;
    if (!r->quiet) fprintf(stderr, "vita cmvn: skipped: %s (%s)\n", err, aud_reason_name(why));
    return;
  }
  cmvn_stats_add(&r->st, f, T);
  r->n_files++;
  free(f);
}

static bool has_suffix(const char *s, const char *suf) {
  size_t n = strlen(s), m = strlen(suf);
  return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Returns -1 when the file cannot be read at all (a usage error: the user named it). */
static int add_json(cmvn_run *r, const char *path, const sample_config *cfg) {
  char err[1024];
  sample_reader *rd;
  if (sample_reader_open(&rd, path, err, sizeof err)) {
    fprintf(stderr, "vita cmvn: %s\n", err);
    return -1;
  }
  for (;;) {
    sample s;
    sample_reason why;
    int k = sample_reader_next(rd, cfg, &s, &why, err, sizeof err);
    if (k == 0) break;
    if (k == 2) {
      r->n_samples_skipped++;
      if (!r->quiet)
        fprintf(stderr, "vita cmvn: skipped sample %s (%s): %s\n", s.id, sample_reason_name(why),
                err);
      continue;
    }
    for (size_t i = 0; i < s.n_media[CHAT_MEDIA_AUDIO]; i++)
      add_file(r, s.media[CHAT_MEDIA_AUDIO][i]);
    sample_free(&s);
  }
  sample_reader_close(rd);
  return 0;
}

static int add_list(cmvn_run *r, const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "vita cmvn: --list %s: cannot read\n", path);
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, f)) >= 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
      line[--n] = 0;
    if (n == 0 || line[0] == '#') continue;
    add_file(r, line);
  }
  free(line);
  fclose(f);
  return 0;
}

static int run(const cli_args *a) {
  const char *out = cli_args_str(a, "out"), *list = cli_args_str(a, "list");
  if (a->n_positional == 0 && !list) {
    fprintf(stderr, "vita cmvn: no inputs (JSON files, audio files, or --list FILE)\n");
    return CLI_EXIT_USAGE;
  }
  aud_load_opts lo = aud_load_opts_default();
  lo.max_seconds = cli_args_float(a, "max-seconds");
  const char *ch = cli_args_str(a, "channel");
  if (strcmp(ch, "mix") == 0) {
    lo.channel = AUD_CHANNEL_MIX;
  } else if (strcmp(ch, "first") != 0) {
    fprintf(stderr, "vita cmvn: --channel: expected first or mix, found '%s'\n", ch);
    return CLI_EXIT_USAGE;
  }
  char err[1024];
  fbank_opts fo = fbank_opts_default();
  fo.dither = cli_args_float(a, "dither");
  fbank_plan *plan;
  if (fbank_plan_init(&plan, &fo, err, sizeof err)) {
    fprintf(stderr, "vita cmvn: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  sample_config cfg;
  sample_config_default(&cfg);
  const char *cfg_path = cli_args_str(a, "config");
  int rc = CLI_EXIT_FAIL;
  cmvn_run r = {.lo = &lo, .plan = plan, .quiet = cli_args_flag(a, "quiet")};
  vt_rng_seed(&r.rng, (uint64_t)cli_args_int(a, "seed"));
  if (cmvn_stats_init(&r.st, fo.num_mel_bins)) goto done;
  if (cfg_path && sample_config_load(&cfg, cfg_path, err, sizeof err)) {
    fprintf(stderr, "vita cmvn: %s\n", err);
    goto done;
  }
  for (int i = 0; i < a->n_positional; i++) {
    const char *p = a->positional[i];
    if (has_suffix(p, ".json") || has_suffix(p, ".jsonl")) {
      if (add_json(&r, p, &cfg)) goto done;
    } else {
      add_file(&r, p);
    }
  }
  if (list && add_list(&r, list)) goto done;
  int64_t skipped = 0;
  for (int k = 1; k < AUD_N_REASONS; k++) skipped += r.n_skipped[k];
  printf("cmvn: %lld audio files, %lld frames (%.1f h)", (long long)r.n_files,
         (long long)r.st.frames, (double)r.st.frames / 100.0 / 3600.0);
  if (skipped || r.n_samples_skipped) {
    printf("; skipped %lld file%s", (long long)skipped, skipped == 1 ? "" : "s");
    for (int k = 1; k < AUD_N_REASONS; k++)
      if (r.n_skipped[k])
        printf(" %s=%lld", aud_reason_name((aud_reason)k), (long long)r.n_skipped[k]);
    if (r.n_samples_skipped)
      printf(", %lld sample%s", (long long)r.n_samples_skipped,
             r.n_samples_skipped == 1 ? "" : "s");
  }
  printf("\n");
  if (r.st.frames == 0) {
    fprintf(stderr, "vita cmvn: no usable audio: nothing written\n");
    goto done;
  }
  if (cmvn_stats_save(&r.st, out, err, sizeof err)) {
    fprintf(stderr, "vita cmvn: %s\n", err);
    goto done;
  }
  printf("wrote %s\n", out);
  rc = CLI_EXIT_OK;
done:
  cmvn_stats_free(&r.st);
  sample_config_free(&cfg);
  fbank_plan_free(plan);
  return rc;
}

const cli_cmd cli_cmd_cmvn = {"cmvn",
                              "global CMVN stats (global_cmvn JSON) of fbank over a dataset",
                              "[data.json|data.jsonl|audio files ...]", opts, run};
