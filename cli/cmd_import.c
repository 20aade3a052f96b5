/* `vita import`: a HF Qwen2 / Qwen2.5 checkpoint directory, or a VITA-1.5 release directory,
 * into a directory the trainer loads as initial weights (model.safetensors in f32 under the
 * HF / release names, config.json, tokenizer files; a release's speech decoder beside them),
 * after checking every tensor against the config (stages/stage_hf.h, stages/stage_release.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "stages/stage_hf.h"
#include "stages/stage_release.h"

static const cli_opt opts[] = {
    {"from", CLI_OPT_STR, NULL,
     "HF model or VITA-1.5 release directory: config.json + model.safetensors or shards"},
    {"out", CLI_OPT_STR, NULL, "output directory (must not exist, or be empty)"},
    {"dtype", CLI_OPT_STR, "f32", "dtype of the weights written: f32, bf16 or f16"},
    {"max-shard-gb", CLI_OPT_FLOAT, "0",
     "split the weights into shards of this many GB (0: one file)"},
    {"tokenizer", CLI_OPT_STR, NULL,
     "copy tokenizer files from here (default: the --from directory)"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  const char *from = cli_args_str(a, "from"), *out = cli_args_str(a, "out");
  int dtype = hf_dtype_parse(cli_args_str(a, "dtype"));
  double gb = cli_args_float(a, "max-shard-gb");
  if (!from || !out || a->n_positional) {
    fprintf(stderr, "vita import: give --from HF_DIR and --out DIR (see vita import --help)\n");
    return CLI_EXIT_USAGE;
  }
  if (dtype < 0) {
    fprintf(stderr, "vita import: --dtype %s: expected f32, bf16 or f16\n",
            cli_args_str(a, "dtype"));
    return CLI_EXIT_USAGE;
  }
  if (!(gb >= 0) || gb > 1e6) {
    fprintf(stderr, "vita import: --max-shard-gb %g: expected a size in GB >= 0\n", gb);
    return CLI_EXIT_USAGE;
  }
  hf_io_opts o = {.dtype = (vt_dtype)dtype,
                  .max_shard_bytes = (size_t)(gb * 1e9),
                  .tokenizer_dir = cli_args_str(a, "tokenizer")};
  stage_release_stats s;
  static char err[1 << 16]; /* room to list every problem of a wrong checkpoint */
  if (stage_release_import(from, out, &o, &s, err, sizeof err)) {
    fprintf(stderr, "vita import: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  char line[512];
  hf_io_describe(&s.main, o.dtype, line, sizeof line);
  printf("imported %s -> %s: %s\n", from, out, line);
  if (s.tts_done) {
    hf_io_describe(&s.tts, o.dtype, line, sizeof line);
    printf("  speech decoder -> %s/%s: %s\n", out, STAGE_RELEASE_TTS_DIR, line);
  }
  if (s.codec_done) {
    hf_io_describe(&s.codec, o.dtype, line, sizeof line);
    printf("  codec -> %s/%s: %s\n", out, STAGE_RELEASE_CODEC_DIR, line);
  }
  if (s.notes[0]) fprintf(stderr, "%s", s.notes);
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_import = {
    "import", "HF Qwen2/Qwen2.5 or VITA-1.5 release -> weights the trainer loads (checked)", NULL,
    opts, run};
