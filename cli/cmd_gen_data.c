/* `vita gen-data --out DIR`: writes generated token shards and a mixture config, the data of
 * the built-in job and the end-to-end tests. `--kind tts` writes (text, codec) pairs for the
 * speech decoder instead (DIR/train, DIR/eval) and the embedding table of a random LLM
 * (DIR/llm/model.safetensors, model.embed_tokens.weight) to condition on. `--kind vita` writes
 * the tiny curriculum's multimodal dataset (data/vita_synth.h): images, speech, JSON, a tiny
 * tokenizer, shards, mixtures and chance levels. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "autograd/rng.h"
#include "checkpoints/safetensors_write.h"
#include "cli/cli.h"
#include "data/synth.h"
#include "data/tts_synth.h"
#include "data/vita_synth.h"

static const cli_opt opts[] = {
    {"out", CLI_OPT_STR, NULL, "output directory"},
    {"kind", CLI_OPT_STR, "lm",
     "lm (token sequences), tts ((text, codec) pairs) or vita (images, speech, JSON, shards)"},
    {"size", CLI_OPT_STR, "small", "vita: small (the demo's) or tiny (tests)"},
    {"samples", CLI_OPT_INT, "2048", "number of (training) samples"},
    {"eval-samples", CLI_OPT_INT, "128", "tts: held-out pairs"},
    {"shards", CLI_OPT_INT, "2", "number of shards"},
    {"vocab", CLI_OPT_INT, NULL, "token ids are below this (lm 256, tts 32)"},
    {"min-len", CLI_OPT_INT, NULL, "shortest sample in tokens (lm 48, tts 2 text tokens)"},
    {"max-len", CLI_OPT_INT, NULL, "longest sample in tokens (lm 128, tts 6 text tokens)"},
    {"codec-vocab", CLI_OPT_INT, "1024", "tts: codec ids are below this"},
    {"min-frames", CLI_OPT_INT, "2", "tts: fewest codec frames per text token"},
    {"max-frames", CLI_OPT_INT, "4", "tts: most codec frames per text token"},
    {"llm-hidden", CLI_OPT_INT, "128", "tts: width of the LLM embedding table written"},
    {"noise", CLI_OPT_FLOAT, NULL, "probability of a random token (lm 0.1, tts 0.05)"},
    {"seed", CLI_OPT_INT, "1", "seed"},
    {NULL, 0, NULL, NULL},
};

static int64_t int_or(const cli_args *a, const char *name, int64_t def) {
  return cli_args_given(a, name) ? cli_args_int(a, name) : def;
}
static double float_or(const cli_args *a, const char *name, double def) {
  return cli_args_given(a, name) ? cli_args_float(a, name) : def;
}

/* A random table standing in for an LLM's input embeddings: normal(0, 0.5), seeded. */
static int write_llm(const char *out, int64_t vocab, int64_t hidden, uint64_t seed, char *err,
                     size_t err_len) {
  char dir[4200], path[4300];
  snprintf(dir, sizeof dir, "%s/llm", out);
  if (mkdir(dir, 0755) && errno != EEXIST) {
    snprintf(err, err_len, "%s: cannot create: %s", dir, strerror(errno));
    return -1;
  }
  if (hidden < 1 || vocab * hidden > (int64_t)1 << 28) {
    snprintf(err, err_len, "--llm-hidden must be positive and the table small (%lld x %lld)",
             (long long)vocab, (long long)hidden);
    return -1;
  }
  float *w = malloc(sizeof(float) * (size_t)(vocab * hidden));
  if (!w) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  vt_rng r;
  vt_rng_seed(&r, seed ^ 0x11111111ull);
  for (int64_t i = 0; i < vocab * hidden; i++) w[i] = 0.5f * vt_rng_normal(&r);
  st_entry e = {.name = "model.embed_tokens.weight",
                .dtype = VT_F32,
                .ndim = 2,
                .shape = {vocab, hidden},
                .data = w};
  st_kv meta = {"format", "pt"};
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  int rc = st_write(path, &e, 1, &meta, 1, err, err_len);
  free(w);
  return rc;
}

static int run_tts(const cli_args *a, const char *out) {
  tts_synth_cfg c = tts_synth_defaults();
  c.samples = cli_args_int(a, "samples");
  c.eval_samples = cli_args_int(a, "eval-samples");
  c.n_shards = cli_args_int(a, "shards");
  c.text_vocab = (int32_t)int_or(a, "vocab", c.text_vocab);
  c.min_text = int_or(a, "min-len", c.min_text);
  c.max_text = int_or(a, "max-len", c.max_text);
  c.codec_vocab = (int32_t)cli_args_int(a, "codec-vocab");
  c.min_frames = (int32_t)cli_args_int(a, "min-frames");
  c.max_frames = (int32_t)cli_args_int(a, "max-frames");
  c.noise = float_or(a, "noise", c.noise);
  c.seed = (uint64_t)cli_args_int(a, "seed");
  char err[1024];
  if (tts_synth_write(out, &c, err, sizeof err) ||
      write_llm(out, c.text_vocab, cli_args_int(a, "llm-hidden"), c.seed, err, sizeof err)) {
    fprintf(stderr, "vita gen-data: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  printf("wrote %lld + %lld held-out (text, codec) pairs to %s/train and %s/eval, and a random "
         "LLM embedding table %d x %lld to %s/llm\n",
         (long long)c.samples, (long long)c.eval_samples, out, out, c.text_vocab,
         (long long)cli_args_int(a, "llm-hidden"), out);
  return CLI_EXIT_OK;
}

static int run_vita(const cli_args *a, const char *out) {
  vsynth_cfg c;
  const char *size = cli_args_str(a, "size");
  if (vsynth_defaults(size, &c)) {
    fprintf(stderr, "vita gen-data: --size: expected small or tiny, got '%s'\n", size);
    return CLI_EXIT_USAGE;
  }
  c.seed = (uint64_t)cli_args_int(a, "seed");
  vsynth_stats st;
  char err[2048];
  if (vsynth_write(out, &c, &st, err, sizeof err)) {
    fprintf(stderr, "vita gen-data: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  printf("wrote %lld images and %lld speech clips (%lld espeak-ng runs) to %s, a tokenizer of "
         "%d tokens, shards and mixtures:\n",
         (long long)st.images, (long long)st.clips, (long long)st.espeak_runs, out, st.vocab_size);
  for (int t = 0; t < VSYNTH_TASKS; t++)
    printf("  %-8s %5lld train, %4lld held-out samples\n", vsynth_tasks[t],
           (long long)st.samples[t][0], (long long)st.samples[t][1]);
  printf("chance levels in %s/chance.json\n", out);
  return CLI_EXIT_OK;
}

static int run(const cli_args *a) {
  const char *out = cli_args_str(a, "out"), *kind = cli_args_str(a, "kind");
  if (!out) {
    fprintf(stderr, "vita gen-data: --out DIR is required\n");
    return CLI_EXIT_USAGE;
  }
  if (cli_args_given(a, "vocab") && cli_args_int(a, "vocab") > INT32_MAX) {
    /* ids are int32: not wrapped into another */
    fprintf(stderr, "vita gen-data: --vocab must be at most %d\n", INT32_MAX);
    return CLI_EXIT_USAGE;
  }
  if (!strcmp(kind, "tts")) return run_tts(a, out);
  if (!strcmp(kind, "vita")) return run_vita(a, out);
  if (strcmp(kind, "lm") != 0) {
    fprintf(stderr, "vita gen-data: --kind: expected lm, tts or vita, got '%s'\n", kind);
    return CLI_EXIT_USAGE;
  }
  synth_cfg c = synth_defaults();
  c.samples = cli_args_int(a, "samples");
  c.n_shards = cli_args_int(a, "shards");
  c.vocab = (int32_t)int_or(a, "vocab", c.vocab);
  c.min_len = int_or(a, "min-len", c.min_len);
  c.max_len = int_or(a, "max-len", c.max_len);
  c.noise = float_or(a, "noise", c.noise);
  c.seed = (uint64_t)cli_args_int(a, "seed");
  char err[1024];
  if (synth_write(out, &c, err, sizeof err)) {
    fprintf(stderr, "vita gen-data: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  printf("wrote %lld samples in %lld shards to %s (mixture: %s/mixture.yaml); best reachable "
         "loss %.4f\n",
         (long long)c.samples, (long long)c.n_shards, out, out, synth_entropy(&c));
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_gen_data = {"gen-data", "write generated token shards for tests and demos",
                                  NULL, opts, run};
