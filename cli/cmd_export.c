/* `vita export`: a trained or imported model directory (config.json + f32 weights), a run or a
 * curriculum run into a HF-loadable checkpoint: bf16 shards + index, config.json, tokenizer
 * files, written atomically (stages/stage_hf.h); for the vita model the VITA-1.5 release
 * layout with its side directories and the speech decoder (stages/stage_release.h). */
#include <stdio.h>

#include "cli/cli.h"
#include "stages/stage_hf.h"
#include "stages/stage_release.h"

static const cli_opt opts[] = {
    {"from", CLI_OPT_STR, NULL,
     "model directory (config.json + safetensors), checkpoint, run (its newest checkpoint) or "
     "curriculum run (each stage's newest)"},
    {"out", CLI_OPT_STR, NULL, "output directory (must not exist, or be empty)"},
    {"tokenizer", CLI_OPT_STR, NULL,
     "copy tokenizer files from here (default: the --from directory)"},
    {"max-shard-gb", CLI_OPT_FLOAT, "5", "largest shard in GB; one model.safetensors when it fits"},
    {"dtype", CLI_OPT_STR, "bf16", "dtype of the exported weights: bf16, f16 or f32"},
    {"parts", CLI_OPT_STR, NULL,
     "vita: also export these parts when no stage trained them: audio, tts, codec"},
    {"all", CLI_OPT_FLAG, NULL, "vita: export every part the source has, trained or not"},
    {"tts", CLI_OPT_STR, NULL,
     "vita: the speech decoder's run, checkpoint or model directory (default: the source's)"},
    {"codec", CLI_OPT_STR, NULL,
     "vita: the codec's run, checkpoint or model directory (default: the source's)"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  const char *from = cli_args_str(a, "from"), *out = cli_args_str(a, "out");
  int dtype = hf_dtype_parse(cli_args_str(a, "dtype"));
  double gb = cli_args_float(a, "max-shard-gb");
  if (!from || !out || a->n_positional) {
    fprintf(stderr, "vita export: give --from DIR and --out DIR (see vita export --help)\n");
    return CLI_EXIT_USAGE;
  }
  if (dtype < 0) {
    fprintf(stderr, "vita export: --dtype %s: expected bf16, f16 or f32\n",
            cli_args_str(a, "dtype"));
    return CLI_EXIT_USAGE;
  }
  if (!(gb > 0) || gb > 1e6) {
    fprintf(stderr, "vita export: --max-shard-gb %g: expected a size in GB > 0\n", gb);
    return CLI_EXIT_USAGE;
  }
  hf_io_opts o = {.dtype = (vt_dtype)dtype,
                  .max_shard_bytes = (size_t)(gb * 1e9),
                  .tokenizer_dir = cli_args_str(a, "tokenizer")};
  if (o.max_shard_bytes == 0) o.max_shard_bytes = 1;
  stage_release_opts ro = {.io = o,
                           .parts = cli_args_str(a, "parts"),
                           .all = cli_args_flag(a, "all"),
                           .tts = cli_args_str(a, "tts"),
                           .codec = cli_args_str(a, "codec")};
  stage_release_stats s;
  static char err[1 << 16];
  if (stage_release_export(from, out, &ro, &s, err, sizeof err)) {
    fprintf(stderr, "vita export: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  char line[512];
  hf_io_describe(&s.main, o.dtype, line, sizeof line);
  printf("exported %s -> %s: %s\n", s.main.source, out, line);
  if (s.release) {
    printf("  VITA-1.5 layout: LLM + vision tower + projector%s; side directories %s%s%s\n",
           s.audio ? " + audio encoder + adapter" : "", STAGE_RELEASE_VISION_DIR,
           s.audio ? ", " STAGE_RELEASE_AUDIO_DIR : "",
           s.tts_done ? ", " STAGE_RELEASE_TTS_DIR : "");
    if (s.tts_done) {
      hf_io_describe(&s.tts, o.dtype, line, sizeof line);
      printf("  speech decoder %s: %s\n", s.tts.source, line);
    }
    if (s.codec_done) {
      hf_io_describe(&s.codec, o.dtype, line, sizeof line);
      printf("  codec %s -> %s: %s\n", s.codec.source, STAGE_RELEASE_CODEC_DIR, line);
    }
  }
  if (s.notes[0]) fprintf(stderr, "%s", s.notes);
  if (!s.main.has_tokenizer)
    fprintf(stderr, "vita export: note: no tokenizer.json or vocab.json copied; give --tokenizer "
                    "DIR for a checkpoint HF can tokenize with\n");
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_export = {
    "export", "model, run or curriculum -> HF Qwen2 / VITA-1.5 release layout (bf16)", NULL, opts,
    run};
