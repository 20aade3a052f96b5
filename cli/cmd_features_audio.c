/* `vita features audio FILE [--out F.safetensors]`: the fbank the audio encoder sees (before
 * CMVN), written as `fbank` [frames, 80] f32, and the lengths that follow from it: fbank frames,
 * encoder frames ((T-1)//2-1)//2 and LLM tokens. cli_cmd_features_audio is the "audio" entry of
 * `vita features` (cli/cmd_features.c dispatches to it); cli_features_audio does the work. */
#include "cli/cmd_features_audio.h"
#include "checkpoints/safetensors_write.h"
#include "cli/cli.h"
#include "data/audio_feat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_features_audio(const char *file, const char *out, const cli_features_audio_opts *o,
                       FILE *report) {
  char err[1024];
  fbank_opts fo = fbank_opts_default();
  fo.dither = o->dither;
  fo.num_mel_bins = o->num_mel_bins;
  fbank_plan *plan;
  if (fbank_plan_init(&plan, &fo, err, sizeof err)) {
    fprintf(stderr, "vita features audio: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  aud_load_opts lo = aud_load_opts_default();
  lo.channel = o->channel;
  lo.max_seconds = o->max_seconds;
  vt_rng rng;
  vt_rng_seed(&rng, o->seed);
  float *feats;
  size_t T;
  aud_wave w;
  aud_reason r = aud_fbank_file(file, &lo, plan, &rng, 1, &feats, &T, &w, err, sizeof err);
  fbank_plan_free(plan);
  if (r != AUD_OK) {
    fprintf(stderr, "vita features audio: %s (%s)\n", err, aud_reason_name(r));
    return CLI_EXIT_FAIL;
  }
  size_t enc = fbank_encoder_frames(T), tok = fbank_llm_tokens(T, (size_t)o->prompts);
  fprintf(report, "%s: %.3f s, ", file, (double)w.n / w.rate);
  if (w.channels_in == 1)
    fprintf(report, "mono");
  else
    fprintf(report, "%d channels (%s)", w.channels_in,
            o->channel == AUD_CHANNEL_MIX ? "mixed to mono" : "channel 0");
  fprintf(report, ", %d Hz", w.rate);
  if (w.rate_in != w.rate) fprintf(report, " (resampled from %d Hz)", w.rate_in);
  fprintf(report, "\n");
  fprintf(report, "fbank frames:   %zu x %d (25 ms window, 10 ms shift)\n", T, fo.num_mel_bins);
  fprintf(report, "encoder frames: %zu (x4 subsampling, 25 Hz)\n", enc);
  fprintf(report, "LLM tokens:     %zu (adapter stride 2, 12.5 Hz", tok);
  if (o->prompts) fprintf(report, ", + %d prompt embeddings", o->prompts);
  fprintf(report, ")\n");
  if (enc == 0)
    fprintf(report, "warning: fewer than %d frames: the encoder gives no output\n", AUD_MIN_FRAMES);
  aud_wave_free(&w);
  int rc = CLI_EXIT_OK;
  if (out) {
    st_entry e = {.name = "fbank",
                  .dtype = VT_F32,
                  .ndim = 2,
                  .shape = {(int64_t)T, fo.num_mel_bins},
                  .data = feats};
    st_kv meta[] = {{"format", "pt"}, {"source", file}};
    if (st_write(out, &e, 1, meta, 2, err, sizeof err)) {
      fprintf(stderr, "vita features audio: %s\n", err);
      rc = CLI_EXIT_FAIL;
    } else {
      fprintf(report, "wrote %s (fbank [%zu, %d] f32)\n", out, T, fo.num_mel_bins);
    }
  }
  free(feats);
  return rc;
}

int cli_features_audio_run(const cli_args *a, const char *file) {
  if (cli_args_int(a, "mel-bins") < 1 || cli_args_int(a, "mel-bins") > 1024 ||
      cli_args_int(a, "prompts") > 65536) {
    fprintf(stderr, "vita features audio: --mel-bins must be in [1, 1024], --prompts at most "
                    "65536\n");
    return CLI_EXIT_USAGE;
  }
  cli_features_audio_opts o = {.channel = AUD_CHANNEL_FIRST,
                               .dither = cli_args_float(a, "dither"),
                               .seed = (uint64_t)cli_args_int(a, "seed"),
                               .num_mel_bins = (int)cli_args_int(a, "mel-bins"),
                               .prompts = (int)cli_args_int(a, "prompts"),
                               .max_seconds = cli_args_float(a, "max-seconds")};
  const char *ch = cli_args_str(a, "channel");
  if (strcmp(ch, "mix") == 0) {
    o.channel = AUD_CHANNEL_MIX;
  } else if (strcmp(ch, "first") != 0) {
    fprintf(stderr, "vita features audio: --channel: expected first or mix, found '%s'\n", ch);
    return CLI_EXIT_USAGE;
  }
  if (o.prompts < 0 || o.prompts > 4096) {
    fprintf(stderr, "vita features audio: --prompts: expected 0..4096, found %d\n", o.prompts);
    return CLI_EXIT_USAGE;
  }
  return cli_features_audio(file, cli_args_str(a, "out"), &o, stdout);
}
