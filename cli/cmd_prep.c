/* `vita prep`: VITA JSON -> HDF5 shards (data/prep.h), and `vita prep --verify` to check
 * existing shards (version, shapes, checksum). */
#include "cli/cli.h"
#include "cli/cli_codec.h"
#include "data/prep.h"
#include "data/shard.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const cli_opt opts[] = {
    {"config", CLI_OPT_STR, NULL, "data config YAML (sets and folders, prompts, max_len, inputs)"},
    {"out", CLI_OPT_STR, NULL, "output directory for the shards"},
    {"tokenizer", CLI_OPT_STR, NULL, "tokenizer directory (overrides the config's tokenizer)"},
    {"max-len", CLI_OPT_INT, NULL, "skip samples longer than this many tokens (default 6200)"},
    {"shard-samples", CLI_OPT_INT, NULL, "samples per shard (default 8192)"},
    {"prefix", CLI_OPT_STR, "shard", "shard file names: OUT/PREFIX-00000.h5"},
    {"progress", CLI_OPT_FLAG, NULL, "show the progress bar even when stderr is not a terminal"},
    {"quiet", CLI_OPT_FLAG, NULL, "no progress bar"},
    {"skipped", CLI_OPT_STR, NULL, "write every skipped sample (reason, id, message) to this file"},
    {"verify", CLI_OPT_FLAG, NULL, "check the shards (files or directories) given as arguments"},
    {"audio-features", CLI_OPT_FLAG, NULL,
     "store each <audio> clip's fbank (f16) for the encoder stages; bad audio skips the sample"},
    {"wave-rate", CLI_OPT_INT, "0", "with --audio-features: also store waveforms at this rate"},
    {"audio-channel", CLI_OPT_STR, "first", "audio: first (channel 0) or mix"},
    {"audio-max-seconds", CLI_OPT_FLOAT, "600", "audio clips longer than this skip the sample"},
    {"ctc-chars", CLI_OPT_STR, NULL,
     "CTC targets (stage 2.1a): the transcripts as ids of this character vocabulary (JSON); "
     "derived from the transcripts and written when the file does not exist"},
    {"codec", CLI_OPT_STR, NULL,
     "codec weights directory: speech samples given as audio become its codec tokens"},
    {NULL, 0, NULL, NULL},
};

static int verify(const cli_args *a) {
  int bad = 0, n = 0;
  char err[1024];
  for (int i = 0; i < a->n_positional; i++) {
    struct stat st;
    char pat[4200];
    const char *p = a->positional[i];
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
      snprintf(pat, sizeof pat, "%s/*.h5", p);
    else
      snprintf(pat, sizeof pat, "%s", p);
    glob_t g;
    if (glob(pat, GLOB_NOCHECK, NULL, &g) != 0) continue;
    for (size_t k = 0; k < g.gl_pathc; k++) {
      shard *s;
      n++;
      if (shard_open(&s, g.gl_pathv[k], true, err, sizeof err)) {
        fprintf(stderr, "vita prep: %s\n", err);
        bad++;
        continue;
      }
      printf("ok %s: %lld samples, %lld tokens\n", g.gl_pathv[k], (long long)shard_n_samples(s),
             (long long)shard_n_tokens(s));
      shard_close(s);
    }
    globfree(&g);
  }
  if (n == 0) {
    fprintf(stderr, "vita prep --verify: no shards given\n");
    return CLI_EXIT_USAGE;
  }
  return bad ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* Shards with this prefix that this run did not write come from an earlier run; a mixture
 * over the directory would read them too, so say so (never delete the user's files). */
static void warn_stale(const char *out, const char *prefix, int64_t n_written) {
  char pat[4200];
  snprintf(pat, sizeof pat, "%s/%s-*.h5", out, prefix);
  glob_t g;
  if (glob(pat, 0, NULL, &g) != 0) return;
  for (size_t k = 0; k < g.gl_pathc; k++) {
    const char *base = strrchr(g.gl_pathv[k], '/');
    base = base ? base + 1 : g.gl_pathv[k];
    long long idx = -1;
    if (sscanf(base + strlen(prefix), "-%lld.h5", &idx) == 1 && idx >= n_written)
      fprintf(stderr, "vita prep: warning: %s is from an earlier run; remove it before training\n",
              g.gl_pathv[k]);
  }
  globfree(&g);
}

static int run(const cli_args *a) {
  if (cli_args_flag(a, "verify")) return verify(a);
  const char *out = cli_args_str(a, "out");
  if (!out) {
    fprintf(stderr, "vita prep: --out DIR is required (see vita prep --help)\n");
    return CLI_EXIT_USAGE;
  }
  char err[1024];
  sample_config cfg;
  sample_config_default(&cfg);
  const char *cfg_path = cli_args_str(a, "config");
  if (cfg_path && sample_config_load(&cfg, cfg_path, err, sizeof err)) {
    fprintf(stderr, "vita prep: %s\n", err);
    sample_config_free(&cfg);
    return CLI_EXIT_FAIL;
  }
  if (cli_args_given(a, "max-len")) cfg.max_len = cli_args_int(a, "max-len");
  if (cli_args_given(a, "shard-samples")) cfg.shard_samples = cli_args_int(a, "shard-samples");
  if (cfg.max_len < 1 || cfg.max_len > SAMPLE_MAX_LEN || cfg.shard_samples < 1 ||
      cfg.shard_samples > SAMPLE_MAX_SHARD_SAMPLES) {
    fprintf(stderr, "vita prep: --max-len and --shard-samples must be in [1, %lld]\n",
            (long long)SAMPLE_MAX_LEN);
    sample_config_free(&cfg);
    return CLI_EXIT_USAGE;
  }
  const char *tok_dir = cli_args_str(a, "tokenizer");
  if (!tok_dir) tok_dir = cfg.tokenizer;
  const char **inputs = NULL;
  size_t n_inputs = 0;
  int rc = CLI_EXIT_USAGE;
  if (cfg.max_len < 1 || cfg.shard_samples < 1) {
    fprintf(stderr, "vita prep: --max-len and --shard-samples must be positive\n");
    goto done;
  }
  if (!tok_dir) {
    fprintf(stderr, "vita prep: no tokenizer (--tokenizer DIR or `tokenizer:` in the config)\n");
    goto done;
  }
  inputs = calloc(cfg.n_inputs + (size_t)a->n_positional + 1, sizeof *inputs);
  for (size_t i = 0; i < cfg.n_inputs; i++) inputs[n_inputs++] = cfg.inputs[i];
  for (int i = 0; i < a->n_positional; i++) inputs[n_inputs++] = a->positional[i];
  if (n_inputs == 0) {
    fprintf(stderr, "vita prep: no input JSON files (arguments or `inputs:` in the config)\n");
    goto done;
  }
  tok_tokenizer *tok;
  if (tok_init(&tok, tok_dir, err, sizeof err)) {
    fprintf(stderr, "vita prep: %s\n", err);
    rc = CLI_EXIT_FAIL;
    goto done;
  }
  /* the skip log is opened before the run: an unwritable path fails now, not after it */
  const char *log = cli_args_str(a, "skipped");
  FILE *logf = log ? fopen(log, "w") : NULL;
  if (log && !logf) {
    fprintf(stderr, "vita prep: --skipped %s: cannot write: %s\n", log, strerror(errno));
    tok_free(tok);
    rc = CLI_EXIT_FAIL;
    goto done;
  }
  aud_prep_opts ao = aud_prep_opts_default();
  ao.wave_rate = (int)cli_args_int(a, "wave-rate");
  ao.load.max_seconds = cli_args_float(a, "audio-max-seconds");
  const char *ch = cli_args_str(a, "audio-channel");
  if (strcmp(ch, "mix") == 0) {
    ao.load.channel = AUD_CHANNEL_MIX;
  } else if (strcmp(ch, "first") != 0 || ao.wave_rate < 0 || ao.wave_rate > 384000) {
    fprintf(stderr, "vita prep: --audio-channel first|mix and 0 <= --wave-rate <= 384000\n");
    if (logf) fclose(logf);
    tok_free(tok);
    goto done;
  }
  aud_chars chars = {0};
  const char *cpath = cli_args_str(a, "ctc-chars");
  if (cpath) {
    struct stat cs;
    bool have = stat(cpath, &cs) == 0;
    int crc = have ? aud_chars_load(&chars, cpath, err, sizeof err)
                   : aud_chars_from_inputs(&chars, inputs, n_inputs, &cfg, err, sizeof err);
    if (crc == 0 && !have) crc = aud_chars_save(&chars, cpath, err, sizeof err);
    if (crc) {
      fprintf(stderr, "vita prep: --ctc-chars: %s\n", err);
      if (logf) fclose(logf);
      tok_free(tok);
      rc = CLI_EXIT_FAIL;
      goto done;
    }
    printf("prep: CTC vocabulary %s %s: %zu characters + blank 0 (ctc_vocab %zu, space id %d)\n",
           cpath, have ? "read" : "derived from the transcripts and written", chars.n, chars.n + 1,
           aud_chars_id(&chars, ' '));
  }
  prep_codec pc = {0};
  const char *codec_dir = cli_args_str(a, "codec");
  if (codec_dir && cli_codec_prep_open(codec_dir, &pc, err, sizeof err)) {
    fprintf(stderr, "vita prep: --codec %s: %s\n", codec_dir, err);
    cli_codec_prep_close(&pc);
    aud_chars_free(&chars);
    if (logf) fclose(logf);
    tok_free(tok);
    rc = CLI_EXIT_FAIL;
    goto done;
  }
  prep_opts o = {.cfg = &cfg,
                 .ctc_chars = cpath ? &chars : NULL,
                 .codec = codec_dir ? &pc : NULL,
                 .audio = cli_args_flag(a, "audio-features") ? &ao : NULL,
                 .tok = tok,
                 .inputs = inputs,
                 .n_inputs = n_inputs,
                 .out_dir = out,
                 .prefix = cli_args_str(a, "prefix"),
                 .progress = !cli_args_flag(a, "quiet") &&
                             (cli_args_flag(a, "progress") || isatty(STDERR_FILENO))};
  prep_stats st;
  int prc = prep_run(&o, &st, err, sizeof err);
  aud_chars_free(&chars);
  prep_print_summary(stdout, &st, out, 20);
  bool log_failed = false;
  if (logf) {
    for (size_t i = 0; i < st.n_skips; i++) {
      /* one line per skip: tabs and newlines inside an id or a message would split it */
      fprintf(logf, "%s\t", sample_reason_name(st.skips[i].reason));
      for (int f = 0; f < 2; f++) {
        const char *v = f ? st.skips[i].message : st.skips[i].id;
        for (; v && *v; v++) fputc(*v == '\t' || *v == '\n' || *v == '\r' ? ' ' : *v, logf);
        fputc(f ? '\n' : '\t', logf);
      }
    }
    log_failed = ferror(logf) != 0;
    if (fclose(logf) != 0) log_failed = true;
    if (log_failed)
      fprintf(stderr, "vita prep: --skipped %s: cannot write: %s\n", log, strerror(errno));
  }
  if (prc) fprintf(stderr, "vita prep: %s\n", err);
  warn_stale(out, o.prefix ? o.prefix : "shard", st.n_shards);
  rc = prc || log_failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
  prep_stats_free(&st);
  cli_codec_prep_close(&pc);
  tok_free(tok);
done:
  free(inputs);
  sample_config_free(&cfg);
  return rc;
}

const cli_cmd cli_cmd_prep = {"prep", "tokenize VITA JSON samples into checksummed HDF5 shards",
                              "[input.json|input.jsonl ...] (with --verify: shards or dirs)", opts,
                              run};
