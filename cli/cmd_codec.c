/* `vita codec init|encode|decode`: the speech codec's tools.
 *   vita codec init --config model.json --out DIR [--seed N]   a freshly initialised codec
 *   vita codec encode IN.wav --weights DIR [--out tokens.txt]  waveform -> codec tokens
 *   vita codec decode tokens.txt --weights DIR --out OUT.wav   codec tokens -> waveform
 *   vita codec export --weights DIR --out RELEASE_DIR          the release layout (model.json +
 *                                                              encoder/quantizer/generator)
 *   vita codec import RELEASE_DIR --out DIR [--seed N]         back to a checkpoint directory
 *                                                              (ours: model.json + safetensors;
 *                                                              the public one: + final.pt; or
 *                                                              the weights file itself)
 * A weights directory holds config.json (the codec's model.json) and model.safetensors. The
 * tokens file: '#' comments, a line "global G1 ... Gn" (the global tokens; absent: VITA-1.5's
 * fixed ones, as its inference uses), then the frame tokens, whitespace-separated. WAV files
 * are mono 16-bit PCM or 32-bit float at the codec's rate (a multi-channel file: channel 0). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/safetensors_params.h"
#include "cli/cli.h"
#include "cli/cli_codec.h"
#include "data/audio.h"
#include "stages/stage_codec.h"

static const cli_opt opts[] = {
    {"config", CLI_OPT_STR, NULL, "init: the codec's model.json"},
    {"weights", CLI_OPT_STR, NULL,
     "encode / decode: directory with config.json + model.safetensors"},
    {"out", CLI_OPT_STR, NULL,
     "init: directory; encode: tokens file (default stdout); decode: wav"},
    {"seed", CLI_OPT_INT, "1234", "init, import: initialisation seed (import: discriminators)"},
    {"resample", CLI_OPT_FLAG, NULL,
     "encode: any audio file libsndfile reads, channel 0 resampled to the codec's rate (libsoxr,"
     " as vita prep does)"},
    {NULL, 0, NULL, NULL},
};

/* ---- WAV (RIFF) input: the small subset the codec needs (output: libsndfile) ---- */

static uint32_t le32(const unsigned char *p) {
  return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Reads channel 0 of a PCM16 or float32 WAV. Returns the samples (caller frees) or NULL with
 * err naming the file and what was wrong. */
static float *wav_read(const char *path, int *rate, int64_t *n, char *err, size_t len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, len, "%s: %s", path, strerror(errno));
    return NULL;
  }
  unsigned char h[12], ch[8];
  int fmt = 0, channels = 0, bits = 0;
  float *out = NULL;
  if (fread(h, 1, 12, f) != 12 || memcmp(h, "RIFF", 4) || memcmp(h + 8, "WAVE", 4)) {
    snprintf(err, len, "%s: offset 0: expected a RIFF/WAVE header", path);
    goto done;
  }
  while (fread(ch, 1, 8, f) == 8) {
    uint32_t size = le32(ch + 4);
    long at = ftell(f);
    if (!memcmp(ch, "fmt ", 4)) {
      unsigned char b[16];
      if (size < 16 || fread(b, 1, 16, f) != 16) break;
      fmt = b[0] | b[1] << 8;
      channels = b[2] | b[3] << 8;
      *rate = (int)le32(b + 4);
      bits = b[14] | b[15] << 8;
      if (fmt == 0xFFFE && size >= 40) { /* WAVE_FORMAT_EXTENSIBLE: the subformat's tag */
        unsigned char x[24];
        if (fread(x, 1, 24, f) != 24) break;
        fmt = x[8] | x[9] << 8;
      }
    } else if (!memcmp(ch, "data", 4)) {
      if (!((fmt == 1 && bits == 16) || (fmt == 3 && bits == 32)) || channels < 1) {
        snprintf(err, len,
                 "%s: fmt chunk: expected 16-bit PCM or 32-bit float, found format %d with %d "
                 "bits, %d channels",
                 path, fmt, bits, channels);
        goto done;
      }
      int64_t frame = (int64_t)channels * bits / 8, frames = size / frame;
      unsigned char *raw = malloc((size_t)(frames * frame) + 1);
      out = malloc(sizeof(float) * (size_t)(frames > 0 ? frames : 1));
      if (!raw || !out || fread(raw, 1, (size_t)(frames * frame), f) != (size_t)(frames * frame)) {
        snprintf(err, len, "%s: data chunk: %lld frames announced, fewer present", path,
                 (long long)frames);
        free(raw), free(out);
        out = NULL;
        goto done;
      }
      for (int64_t i = 0; i < frames; i++) {
        const unsigned char *p = raw + i * frame;
        if (fmt == 1) {
          out[i] = (float)(int16_t)(p[0] | p[1] << 8) / 32768.0f;
        } else {
          uint32_t u = le32(p);
          memcpy(&out[i], &u, 4);
        }
      }
      free(raw);
      *n = frames;
      goto done;
    }
    if (fseek(f, at + (long)size + (long)(size & 1), SEEK_SET)) break;
  }
  snprintf(err, len, "%s: no fmt and data chunks found", path);
done:
  fclose(f);
  return out;
}

static int cmd_init(const cli_args *a, char *err, size_t len) {
  const char *cfg = cli_args_str(a, "config"), *out = cli_args_str(a, "out");
  if (!cfg || !out) {
    fprintf(stderr, "vita codec init: --config model.json and --out DIR are required\n");
    return CLI_EXIT_USAGE;
  }
  cli_codec d;
  int rc = CLI_EXIT_FAIL;
  if (cli_codec_open(&d, cfg, false, err, len)) goto done;
  vt_rng rng;
  vt_rng_seed(&rng, (uint64_t)cli_args_int(a, "seed"));
  if (d.m->ops->init_weights(d.m, &d.ps, &rng, err, len)) goto done;
  if (mkdir(out, 0755) && errno != EEXIST) {
    snprintf(err, len, "%s: %s", out, strerror(errno));
    goto done;
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", out);
  json_t *j = d.m->ops->config_json(d.m);
  int jr = json_dump_file(j, path, JSON_INDENT(2));
  json_decref(j);
  if (jr) {
    snprintf(err, len, "%s: cannot write", path);
    goto done;
  }
  snprintf(path, sizeof path, "%s/model.safetensors", out);
  if (st_save_params(&d.ps, path, NULL, err, len)) goto done;
  printf("codec: %zu parameters (%s) -> %s\n", vt_params_count(&d.ps, false), cfg, out);
  rc = CLI_EXIT_OK;
done:
  cli_codec_close(&d);
  return rc;
}

static int cmd_encode(const cli_args *a, const char *in, char *err, size_t len) {
  const char *w = cli_args_str(a, "weights"), *out = cli_args_str(a, "out");
  cli_codec d;
  int rc = CLI_EXIT_FAIL, rate = 0;
  int64_t n = 0;
  float *x = NULL;
  FILE *f = NULL;
  if (cli_codec_open(&d, w, true, err, len)) goto done;
  const codec_cfg *c = &d.c->cfg;
  int hop = codec_hop(c);
  if (cli_args_flag(a, "resample")) {
    aud_load_opts lo = aud_load_opts_default();
    lo.rate = c->sample_rate;
    aud_wave aw = {0};
    if (aud_load(in, &lo, &aw, err, len) != AUD_OK) goto done;
    x = aw.data, n = (int64_t)aw.n, rate = aw.rate;
  } else if (!(x = wav_read(in, &rate, &n, err, len)))
    goto done;
  if (rate != c->sample_rate) {
    snprintf(err, len, "%s: sample rate: expected %d Hz (the codec's), found %d (resample first)",
             in, c->sample_rate, rate);
    goto done;
  }
  int64_t T;
  int32_t *tok, gt[16];
  if (cli_codec_encode(&d, x, n, &tok, &T, gt, err, len)) goto done;
  f = out ? fopen(out, "w") : stdout;
  if (!f) {
    snprintf(err, len, "%s: %s", out, strerror(errno));
    free(tok);
    goto done;
  }
  fprintf(f, "# ticodec tokens of %s: %lld frames of %d samples at %d Hz\nglobal", in, (long long)T,
          hop, rate);
  for (int j = 0; j < c->n_global; j++) fprintf(f, " %d", gt[j]);
  fprintf(f, "\n");
  for (int64_t t = 0; t < T; t++)
    fprintf(f, "%d%c", tok[t], t + 1 == T || t % 20 == 19 ? '\n' : ' ');
  free(tok);
  rc = CLI_EXIT_OK;
done:
  if (f && f != stdout && fclose(f)) rc = CLI_EXIT_FAIL;
  free(x);
  cli_codec_close(&d);
  return rc;
}

/* Reads a tokens file: the global line (if any) into g (*has_g), the frame tokens into a
 * malloc'd array. Every id must lie in [0, n_codes). */
static int32_t *read_tokens(const char *path, int n_codes, int n_global, int32_t *g, bool *has_g,
                            int64_t *n, char *err, size_t len) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, len, "%s: %s", path, strerror(errno));
    return NULL;
  }
  int64_t cap = 1024;
  int32_t *t = malloc(sizeof(int32_t) * (size_t)cap);
  char line[8192];
  *n = 0;
  *has_g = false;
  for (int ln = 1; t && fgets(line, sizeof line, f); ln++) {
    if (line[0] == '#') continue;
    char *p = line, *e;
    bool global = !strncmp(p, "global", 6);
    if (global) p += 6;
    int k = 0;
    for (;;) {
      while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
      if (!*p) break;
      long v = strtol(p, &e, 10);
      if (e == p || v < 0 || v >= n_codes) {
        snprintf(err, len, "%s:%d: expected a token id in [0, %d), found \"%.20s\"", path, ln,
                 n_codes, p);
        free(t), fclose(f);
        return NULL;
      }
      p = e;
      if (global) {
        if (k < n_global) g[k] = (int32_t)v;
        k++;
        continue;
      }
      if (*n == cap) {
        int32_t *nt = realloc(t, sizeof(int32_t) * (size_t)(cap *= 2));
        if (!nt) {
          free(t), fclose(f);
          snprintf(err, len, "out of memory");
          return NULL;
        }
        t = nt;
      }
      t[(*n)++] = (int32_t)v;
    }
    if (global && k != n_global) {
      snprintf(err, len, "%s:%d: global: expected %d tokens (the codec's codebooks), found %d",
               path, ln, n_global, k);
      free(t), fclose(f);
      return NULL;
    }
    *has_g |= global;
  }
  fclose(f);
  if (t && *n == 0) {
    snprintf(err, len, "%s: no frame tokens", path);
    free(t);
    return NULL;
  }
  return t;
}

static int cmd_decode(const cli_args *a, const char *in, char *err, size_t len) {
  const char *w = cli_args_str(a, "weights"), *out = cli_args_str(a, "out");
  if (!out) {
    fprintf(stderr, "vita codec decode: --out OUT.wav is required\n");
    return CLI_EXIT_USAGE;
  }
  cli_codec d;
  int rc = CLI_EXIT_FAIL;
  int32_t *tok = NULL, gt[16];
  float *y = NULL;
  bool has_g;
  int64_t T;
  if (cli_codec_open(&d, w, true, err, len)) goto done;
  const codec_cfg *c = &d.c->cfg;
  if (!(tok = read_tokens(in, c->n_codes, c->n_global, gt, &has_g, &T, err, len))) goto done;
  int64_t n;
  if (!(y = cli_codec_decode(&d, tok, T, has_g ? gt : NULL, &n, err, len))) goto done;
  if (aud_write_wav16(out, y, (size_t)n, c->sample_rate, err, len)) goto done;
  printf("%lld tokens -> %s (%.3f s at %d Hz)\n", (long long)T, out, (double)n / c->sample_rate,
         c->sample_rate);
  rc = CLI_EXIT_OK;
done:
  free(tok);
  free(y);
  cli_codec_close(&d);
  return rc;
}

static int run(const cli_args *a) {
  const char *sub = a->n_positional > 0 ? a->positional[0] : NULL;
  char err[2048] = "";
  int rc;
  const char *out = cli_args_str(a, "out"), *w = cli_args_str(a, "weights");
  int n = 0;
  if (sub && !strcmp(sub, "init") && a->n_positional == 1) {
    rc = cmd_init(a, err, sizeof err);
  } else if (sub && !strcmp(sub, "export") && a->n_positional == 1) {
    if (!w || !out) {
      fprintf(stderr, "vita codec export: --weights DIR and --out RELEASE_DIR are required\n");
      return CLI_EXIT_USAGE;
    }
    rc = stage_codec_export(w, out, &n, err, sizeof err) ? CLI_EXIT_FAIL : CLI_EXIT_OK;
    if (!rc) printf("codec export: %d tensors (encoder, quantizer, generator) -> %s\n", n, out);
  } else if (sub && !strcmp(sub, "import") && a->n_positional == 2) {
    if (!out) {
      fprintf(stderr, "vita codec import: --out DIR is required\n");
      return CLI_EXIT_USAGE;
    }
    stage_codec_import_stats st;
    rc = stage_codec_import(a->positional[1], out, (uint64_t)cli_args_int(a, "seed"), &st, err,
                            sizeof err)
             ? CLI_EXIT_FAIL
             : CLI_EXIT_OK;
    if (!rc && st.torch && st.n_skipped)
      fprintf(stderr,
              "codec import: %s: %d tensors skipped (outside generator, quantizer and encoder, or "
              "BatchNorm's num_batches_tracked)\n",
              st.src, st.n_skipped);
    if (!rc)
      printf("codec import: %d tensors from %s%s -> %s\n", st.n_tensors, st.src,
             st.torch ? " (torch pickle)" : "", out);
  } else if (sub && (!strcmp(sub, "encode") || !strcmp(sub, "decode")) && a->n_positional == 2) {
    if (!cli_args_str(a, "weights")) {
      fprintf(stderr, "vita codec %s: --weights DIR is required\n", sub);
      return CLI_EXIT_USAGE;
    }
    rc = !strcmp(sub, "encode") ? cmd_encode(a, a->positional[1], err, sizeof err)
                                : cmd_decode(a, a->positional[1], err, sizeof err);
  } else {
    fprintf(stderr, "vita codec: expected init, encode IN.wav, decode TOKENS, export or import "
                    "RELEASE_DIR_OR_FILE (see --help)\n");
    return CLI_EXIT_USAGE;
  }
  if (rc == CLI_EXIT_FAIL) fprintf(stderr, "vita codec %s: %s\n", sub, err);
  return rc;
}

const cli_cmd cli_cmd_codec = {
    "codec", "speech codec: init a model, encode wav -> tokens, decode",
    "init | encode IN.wav | decode TOKENS.txt | export | import DIR_OR_FILE", opts, run};
