/* `vita speak`: text to speech with a trained speech decoder and codec (stage 3.2 and 3.1).
 *   vita speak --weights DIR --text "..." --out OUT.wav [--tokenizer DIR] [--top-k K]
 * DIR holds decoder/ (a tts_decoder checkpoint, with the LLM's input-embedding table it is
 * conditioned on) and codec/ (a ticodec checkpoint), as VITA-1.5's vita_tts_ckpt/ does;
 * --decoder and --codec name them one by one instead. The text is tokenized with the LLM's
 * tokenizer (--tokenizer, else DIR/tokenizer.json), its ids select rows of the frozen LLM
 * table, the decoder (NAR + AR) produces codec ids until EOS (greedy, or top-k sampling with
 * a temperature), and the codec's generator decodes them with VITA-1.5's fixed global tokens
 * to a 16-bit WAV at the codec's rate (24 kHz). Long texts are chunked as VITA-1.5's web demo
 * does (cli_speak_chunks: at punctuation once a chunk has 5 characters): each chunk goes
 * through the decoder (with its own --max-tokens) and the codec on its own and the waveforms
 * are joined, so the WAV stays codec tokens x hop samples (the demo also trims the first
 * chunk's leading |x| <= 0.03 for streaming playback; this does not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/safetensors_params.h"
#include "cli/cli.h"
#include "cli/cli_codec.h"
#include "data/audio.h"
#include "data/tokenizer.h"
#include "model/tts_generate.h"
#include "stages/stage_model.h"

static const cli_opt opts[] = {
    {"weights", CLI_OPT_STR, NULL, "directory with decoder/ and codec/ (vita_tts_ckpt layout)"},
    {"decoder", CLI_OPT_STR, NULL, "speech decoder checkpoint (default WEIGHTS/decoder)"},
    {"codec", CLI_OPT_STR, NULL, "codec checkpoint (default WEIGHTS/codec)"},
    {"tokenizer", CLI_OPT_STR, NULL, "the LLM's tokenizer (default WEIGHTS/tokenizer.json's dir)"},
    {"text", CLI_OPT_STR, NULL, "what to say"},
    {"out", CLI_OPT_STR, NULL, "output WAV (16-bit PCM at the codec's rate)"},
    {"top-k", CLI_OPT_INT, "0", "0 or 1: greedy; K > 1: sample among the K likeliest (<= 64)"},
    {"temperature", CLI_OPT_FLOAT, "1.0", "top-k sampling temperature (> 0)"},
    {"max-tokens", CLI_OPT_INT, "1200", "stop after this many codec tokens (1200 = 30 s)"},
    {"seed", CLI_OPT_INT, "1234", "seed of the sampling"},
    {"tokens", CLI_OPT_STR, NULL, "also write the codec tokens (vita codec decode reads them)"},
    {NULL, 0, NULL, NULL},
};

static const char *path_or(char *buf, size_t len, const char *given, const char *dir,
                           const char *sub) {
  if (given) return given;
  if (!dir) return NULL;
  snprintf(buf, len, "%s/%s", dir, sub);
  return buf;
}

/* The tokens file of `vita codec`: a comment, the fixed global tokens, the frame tokens. */
static int write_tokens(const char *path, const char *text, const int32_t *t, int64_t n, char *err,
                        size_t len) {
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, len, "--tokens %s: cannot write", path);
    return -1;
  }
  fprintf(f, "# vita speak: %lld codec tokens of \"%.200s\"\nglobal", (long long)n, text);
  for (int j = 0; j < 8; j++) fprintf(f, " %d", CODEC_VITA_GLOBAL_TOKENS[j]);
  fprintf(f, "\n");
  for (int64_t i = 0; i < n; i++) fprintf(f, "%d%c", t[i], i + 1 == n || i % 20 == 19 ? '\n' : ' ');
  if (fclose(f)) {
    snprintf(err, len, "--tokens %s: write failed", path);
    return -1;
  }
  return 0;
}

static int run(const cli_args *a) {
  const char *w = cli_args_str(a, "weights"), *text = cli_args_str(a, "text"),
             *out = cli_args_str(a, "out");
  char dec_b[4096], codec_b[4096], tok_b[4096], err[2048] = "";
  const char *dec = path_or(dec_b, sizeof dec_b, cli_args_str(a, "decoder"), w, "decoder");
  const char *cdir = path_or(codec_b, sizeof codec_b, cli_args_str(a, "codec"), w, "codec");
  const char *tdir = cli_args_str(a, "tokenizer");
  struct stat sb;
  if (!tdir && w) {
    snprintf(tok_b, sizeof tok_b, "%s/tokenizer.json", w);
    if (stat(tok_b, &sb) == 0) tdir = w;
  }
  int64_t k = cli_args_int(a, "top-k"), cap = cli_args_int(a, "max-tokens");
  double temp = cli_args_float(a, "temperature");
  if (!dec || !cdir || !tdir || !text || !text[0] || !out || k < 0 || k > 64 || cap < 1 ||
      !(temp > 0)) {
    fprintf(stderr, "vita speak: needs --weights DIR (or --decoder and --codec), a tokenizer "
                    "(--tokenizer or DIR/tokenizer.json), --text \"...\" and --out OUT.wav; "
                    "0 <= --top-k <= 64, --max-tokens >= 1, --temperature > 0\n");
    return CLI_EXIT_USAGE;
  }
  int rc = CLI_EXIT_FAIL;
  tok_tokenizer *tok = NULL;
  tok_ids ids = {0};
  vt_params ps;
  bool ps_ready = false;
  vt_model *m = NULL;
  cli_codec cd = {0};
  vt_ctx *ctx = NULL;
  int32_t *codes = NULL;
  float *wav = NULL;
  char **chunks = NULL;
  int n_chunks = 0;
  if (tok_init(&tok, tdir, err, sizeof err)) goto done;
  if (cli_speak_chunks(text, &chunks, &n_chunks, err, sizeof err)) goto done;
  if (n_chunks == 0) {
    snprintf(err, sizeof err, "--text: nothing to say (only whitespace)");
    goto done;
  }
  if (vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, sizeof err, "no CPU backend");
    goto done;
  }
  ps_ready = true;
  vt_model_opts mo = {0};
  if (!(m = stage_model_open("tts_decoder", dec, &mo, &ps, err, sizeof err)) ||
      vt_params_alloc(&ps, err, sizeof err) || st_load_params_path(&ps, dec, 0, err, sizeof err))
    goto done;
  if (cli_codec_open(&cd, cdir, true, err, sizeof err)) goto done;
  tts *t = tts_model_decoder(m);
  if (t->cfg.codec_vocab != cd.c->cfg.n_codes) {
    snprintf(err, sizeof err, "%s: codec_vocab %lld, but the codec %s has %d codes", dec,
             (long long)t->cfg.codec_vocab, cdir, cd.c->cfg.n_codes);
    goto done;
  }
  const char *why = NULL;
  if (!(ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &why))) {
    snprintf(err, sizeof err, "%s", why ? why : "no context");
    goto done;
  }
  vt_rng rng;
  vt_rng_seed(&rng, (uint64_t)cli_args_int(a, "seed"));
  tts_gen_opts go = {.top_k = (int)k, .temperature = (float)temp, .max_tokens = cap, .rng = &rng};
  int64_t n_codes = 0, n = 0, n_text = 0;
  int n_eos = 0;
  /* each chunk through the decoder and the codec on its own, the waveforms end to end */
  for (int ci = 0; ci < n_chunks; ci++) {
    char msg[1024];
    tok_ids_free(&ids);
    if (tok_encode(tok, chunks[ci], strlen(chunks[ci]), &ids, msg, sizeof msg)) {
      snprintf(err, sizeof err, "--text chunk %d \"%.100s\": %s", ci + 1, chunks[ci], msg);
      goto done;
    }
    int32_t *cc = NULL;
    int64_t nc = 0, nw = 0;
    bool eos = false;
    if (tts_generate(t, ctx, ids.v, (int64_t)ids.n, &go, &cc, &nc, &eos, err, sizeof err))
      goto done;
    vt_ctx_reset(ctx);
    n_text += (int64_t)ids.n;
    n_eos += eos;
    printf("speak: chunk %d/%d \"%s\": %zu text tokens, %lld codec tokens, %s\n", ci + 1, n_chunks,
           chunks[ci], ids.n, (long long)nc, eos ? "EOS" : "--max-tokens reached");
    if (nc == 0) {
      free(cc);
      continue;
    }
    float *cw = cli_codec_decode(&cd, cc, nc, NULL, &nw, err, sizeof err);
    int32_t *gc = cw ? realloc(codes, sizeof(int32_t) * (size_t)(n_codes + nc)) : NULL;
    float *gw = gc ? realloc(wav, sizeof(float) * (size_t)(n + nw)) : NULL;
    if (gc) codes = gc;
    if (gw) wav = gw;
    if (!gw) {
      if (cw) snprintf(err, sizeof err, "no memory for %lld samples", (long long)(n + nw));
      free(cc);
      free(cw);
      goto done;
    }
    memcpy(codes + n_codes, cc, sizeof(int32_t) * (size_t)nc);
    memcpy(wav + n, cw, sizeof(float) * (size_t)nw);
    n_codes += nc;
    n += nw;
    free(cc);
    free(cw);
  }
  if (n_codes == 0) {
    snprintf(err, sizeof err, "the decoder ended (EOS) before any codec token");
    goto done;
  }
  const char *tok_out = cli_args_str(a, "tokens");
  if (tok_out && write_tokens(tok_out, text, codes, n_codes, err, sizeof err)) goto done;
  int rate = cd.c->cfg.sample_rate;
  if (aud_write_wav16(out, wav, (size_t)n, rate, err, sizeof err)) goto done;
  printf("speak: %d chunks, %lld text tokens -> %lld codec tokens (%d of %d ended by EOS) -> %s: "
         "%lld samples, %.3f s at %d Hz\n",
         n_chunks, (long long)n_text, (long long)n_codes, n_eos, n_chunks, out, (long long)n,
         (double)n / rate, rate);
  rc = CLI_EXIT_OK;
done:
  if (rc != CLI_EXIT_OK) fprintf(stderr, "vita speak: %s\n", err);
  free(codes);
  free(wav);
  if (ctx) vt_ctx_free(ctx);
  cli_codec_close(&cd);
  if (m) vt_model_destroy(m);
  if (ps_ready) vt_params_free(&ps);
  tok_ids_free(&ids);
  cli_speak_chunks_free(chunks, n_chunks);
  if (tok) tok_free(tok);
  return rc;
}

const cli_cmd cli_cmd_speak = {"speak", "text -> speech decoder -> codec -> 24 kHz WAV", NULL, opts,
                               run};
