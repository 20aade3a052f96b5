/* The speech codec for the commands; see cli_codec.h. */
#include "cli/cli_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors_params.h"
#include "stages/stage_model.h"

void cli_codec_close(cli_codec *d) {
  if (d->m) vt_model_destroy(d->m);
  if (d->ps_ready) vt_params_free(&d->ps);
  memset(d, 0, sizeof *d);
}

static bool release_part(const vt_param *p, void *arg) {
  (void)arg;
  return codec_model_release_param(p->name);
}

int cli_codec_open(cli_codec *d, const char *dir, bool load, char *err, size_t len) {
  memset(d, 0, sizeof *d);
  if (vt_params_init(&d->ps, (vt_device){VT_DEV_CPU, 0})) {
    snprintf(err, len, "no CPU backend");
    return -1;
  }
  d->ps_ready = true;
  d->m = stage_model_open("ticodec", dir, NULL, &d->ps, err, len);
  if (!d->m || vt_params_alloc(&d->ps, err, len)) return -1;
  d->c = codec_model_codec(d->m);
  if (!load) return 0;
  /* encode and decode need the release's part only: a release's (or an import's) codec has no
   * discriminators, a training checkpoint's are not read */
  st_index ix;
  if (st_index_open(&ix, dir, err, len)) return -1;
  st_load_sel sel = {.select = release_part};
  int rc = st_load_params_sel(&d->ps, &ix, &sel, 0, err, len);
  st_index_close(&ix);
  return rc;
}

static vt_ctx *cpu_ctx(char *err, size_t len) {
  const char *why = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &why);
  if (!ctx) snprintf(err, len, "%s", why ? why : "no context");
  if (ctx) vt_set_grad_enabled(ctx, false);
  return ctx;
}

int cli_codec_encode(const cli_codec *d, const float *x, int64_t n, int32_t **tokens, int64_t *T,
                     int32_t *global, char *err, size_t len) {
  const codec_cfg *c = &d->c->cfg;
  int hop = codec_hop(c);
  int64_t padded = n > 0 ? (n + hop - 1) / hop * hop : hop;
  float *xp = calloc((size_t)padded, sizeof(float));
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)(padded / hop));
  vt_ctx *ctx = xp && tok ? cpu_ctx(err, len) : NULL;
  int rc = -1;
  if (!xp || !tok) snprintf(err, len, "out of memory for %lld samples", (long long)n);
  if (!ctx) goto done;
  if (n > 0) memcpy(xp, x, sizeof(float) * (size_t)n);
  vt_tensor *y = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, 1, padded}, xp), *g;
  vt_tensor *lat = codec_encode(d->c, ctx, y, CODEC_EVAL, &g);
  codec_vq q = codec_quantize(d->c, ctx, lat, g);
  if (vt_ctx_failed(ctx)) {
    snprintf(err, len, "%s", vt_ctx_error(ctx));
    goto done;
  }
  vt_to_host(ctx, q.idx, tok);
  if (global) vt_to_host(ctx, q.gidx, global);
  *tokens = tok;
  *T = padded / hop;
  tok = NULL;
  rc = 0;
done:
  free(xp);
  free(tok);
  if (ctx) vt_ctx_free(ctx);
  return rc;
}

float *cli_codec_decode(const cli_codec *d, const int32_t *tokens, int64_t T, const int32_t *global,
                        int64_t *n, char *err, size_t len) {
  const codec_cfg *c = &d->c->cfg;
  if (!global) { /* VITA-1.5 decodes with fixed global tokens */
    if (c->n_global != 8 || c->n_codes <= 975) {
      snprintf(err, len,
               "no global tokens, and this codec (%d global codebooks of %d codes) cannot use "
               "VITA-1.5's fixed global tokens",
               c->n_global, c->n_codes);
      return NULL;
    }
    global = CODEC_VITA_GLOBAL_TOKENS;
  }
  for (int64_t t = 0; t < T; t++)
    if (tokens[t] < 0 || tokens[t] >= c->n_codes) {
      snprintf(err, len, "token %lld: %d is not a codec id (0 to %d)", (long long)t, tokens[t],
               c->n_codes - 1);
      return NULL;
    }
  vt_ctx *ctx = cpu_ctx(err, len);
  if (!ctx) return NULL;
  vt_tensor *q, *gq;
  codec_embed(d->c, ctx, vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, T}, tokens),
              vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, c->n_global}, global), &q, &gq);
  vt_tensor *wav = codec_decode(d->c, ctx, q, gq);
  float *y = NULL;
  if (vt_ctx_failed(ctx))
    snprintf(err, len, "%s", vt_ctx_error(ctx));
  else if (!(y = malloc(sizeof(float) * (size_t)vt_numel(wav))))
    snprintf(err, len, "out of memory for %lld samples", (long long)vt_numel(wav));
  else {
    vt_to_host(ctx, wav, y);
    *n = vt_numel(wav);
  }
  vt_ctx_free(ctx);
  return y;
}

/* prep_codec_fn over an opened codec. */
static int prep_encode(void *ctx, const float *wave, int64_t n, int32_t **ids, size_t *n_ids,
                       char *msg, size_t msg_len) {
  int64_t T = 0;
  if (cli_codec_encode(ctx, wave, n, ids, &T, NULL, msg, msg_len)) return -1;
  *n_ids = (size_t)T;
  return 0;
}

int cli_codec_prep_open(const char *dir, prep_codec *pc, char *err, size_t len) {
  memset(pc, 0, sizeof *pc);
  cli_codec *d = calloc(1, sizeof *d);
  if (!d) {
    snprintf(err, len, "out of memory");
    return -1;
  }
  pc->ctx = d;
  pc->encode = prep_encode;
  if (cli_codec_open(d, dir, true, err, len)) return -1;
  pc->rate = d->c->cfg.sample_rate;
  return 0;
}

void cli_codec_prep_close(prep_codec *pc) {
  if (pc->ctx) cli_codec_close(pc->ctx);
  free(pc->ctx);
  memset(pc, 0, sizeof *pc);
}

/* Bytes of the UTF-8 sequence starting with c (0: not a lead byte). */
static int utf8_len(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

static bool is_cut_mark(const char *p, int len) {
  static const char *const marks[] = {",", ".", "?", "!", "\n", "，", "。", "？", "！", "、"};
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
    if ((int)strlen(marks[i]) == len && !memcmp(p, marks[i], (size_t)len)) return true;
  return false;
}

/* Appends text[0, len) as a chunk (lowercased; the first one's commas as full stops) unless
 * it is only whitespace. */
static int add_chunk(const char *text, size_t len, char ***chunks, int *n, int *cap) {
  bool blank = true;
  for (size_t i = 0; i < len; i++) blank &= text[i] == ' ' || text[i] == '\t' || text[i] == '\n';
  if (blank) return 0;
  if (*n == *cap) {
    int nc = *cap ? *cap * 2 : 8;
    char **g = realloc(*chunks, sizeof(char *) * (size_t)nc);
    if (!g) return -1;
    *chunks = g;
    *cap = nc;
  }
  /* a full-width comma (3 bytes) becomes "。" (3 bytes), an ASCII one "。" too: room for 3x */
  char *c = malloc(len * 3 + 1);
  if (!c) return -1;
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    if (*n == 0 && text[i] == ',') {
      memcpy(c + o, "。", 3);
      o += 3;
    } else if (*n == 0 && i + 3 <= len && !memcmp(text + i, "，", 3)) {
      memcpy(c + o, "。", 3);
      o += 3;
      i += 2;
    } else {
      char ch = text[i];
      c[o++] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
  }
  c[o] = '\0';
  (*chunks)[(*n)++] = c;
  return 0;
}

void cli_speak_chunks_free(char **chunks, int n) {
  for (int i = 0; i < n; i++) free(chunks[i]);
  free(chunks);
}

int cli_speak_chunks(const char *text, char ***chunks, int *n, char *err, size_t len) {
  *chunks = NULL;
  *n = 0;
  int cap = 0;
  size_t start = 0, i = 0, chars = 0;
  while (text[i]) {
    int l = utf8_len((unsigned char)text[i]);
    for (int j = 1; l && j < l; j++)
      if (((unsigned char)text[i + j] & 0xC0) != 0x80) l = 0;
    if (!l) {
      snprintf(err, len, "--text: invalid UTF-8 at byte %zu", i);
      cli_speak_chunks_free(*chunks, *n);
      *chunks = NULL;
      *n = 0;
      return -1;
    }
    chars++;
    /* the demo prefixes its first chunk with a 23-character marker, so that one is cut at
     * the first mark whatever its length */
    bool cut = (chars >= 5 || *n == 0) && is_cut_mark(text + i, l);
    i += (size_t)l;
    if (cut) {
      if (add_chunk(text + start, i - start, chunks, n, &cap)) goto oom;
      start = i;
      chars = 0;
    }
  }
  if (add_chunk(text + start, i - start, chunks, n, &cap)) goto oom;
  return 0;
oom:
  snprintf(err, len, "no memory for the text's chunks");
  cli_speak_chunks_free(*chunks, *n);
  *chunks = NULL;
  *n = 0;
  return -1;
}
