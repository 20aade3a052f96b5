/* The speech decoder; see tts.h.
 *
 * Layout. The reference pads the conditioning to the batch's longest and puts the codec
 * tokens after the padding, so a codec row sees two key ranges (the valid conditioning and
 * the codec tokens so far). Here each AR row is packed instead: [BOS, NAR output of the valid
 * conditioning, SOS, y, padding], so one prefix mask (the conditioning bidirectional, the
 * rest causal) and one key length per row give the same attention, and the RoPE positions of
 * the codec tokens still continue after the batch-padded conditioning length, as in the
 * reference. The gather that builds the rows is one index_select over
 * [NAR output rows; the embedding table]. */
#include "model/tts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tts_cfg tts_cfg_full(void) {
  return (tts_cfg){.hidden_size = 896,
                   .num_attention_heads = 14,
                   .intermediate_size = 4864,
                   .nar_layers = 4,
                   .ar_layers = 4,
                   .codec_vocab = 1024,
                   .llm_vocab_size = 152064,
                   .llm_hidden_size = 3584,
                   .rope_theta = 1e4,
                   .rms_norm_eps = 1e-6,
                   .initializer_range = 0.02};
}

int tts_cfg_check(const tts_cfg *c, char *err, size_t err_len) {
  const struct {
    const char *name;
    int64_t v, min;
  } f[] = {{"hidden_size", c->hidden_size, 1},
           {"num_attention_heads", c->num_attention_heads, 1},
           {"intermediate_size", c->intermediate_size, 1},
           {"nar_layers", c->nar_layers, 0},
           {"ar_layers", c->ar_layers, 1},
           {"codec_vocab", c->codec_vocab, 1},
           {"llm_vocab_size", c->llm_vocab_size, 1},
           {"llm_hidden_size", c->llm_hidden_size, 1}};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
    if (f[i].v < f[i].min) {
      snprintf(err, err_len, "tts config: %s must be at least %lld, got %lld", f[i].name,
               (long long)f[i].min, (long long)f[i].v);
      return -1;
    }
  if (c->hidden_size % c->num_attention_heads || (c->hidden_size / c->num_attention_heads) % 2) {
    snprintf(err, err_len,
             "tts config: hidden_size %lld must be num_attention_heads %lld times an even head "
             "dim (RoPE)",
             (long long)c->hidden_size, (long long)c->num_attention_heads);
    return -1;
  }
  if (c->llm_hidden_size % c->hidden_size) {
    snprintf(err, err_len,
             "tts config: the LLM's hidden size %lld is not a multiple of the decoder's "
             "hidden_size %lld (each text embedding is cut into hidden_size vectors)",
             (long long)c->llm_hidden_size, (long long)c->hidden_size);
    return -1;
  }
  if (c->codec_vocab > INT32_MAX - 4 || c->llm_vocab_size > INT32_MAX) {
    snprintf(err, err_len, "tts config: codec_vocab and llm_vocab_size must fit in i32");
    return -1;
  }
  if (!(c->rope_theta > 0) || !(c->rms_norm_eps > 0) || !(c->initializer_range >= 0)) {
    snprintf(err, err_len,
             "tts config: rope_theta and rms_norm_eps must be positive, initializer_range >= 0");
    return -1;
  }
  return 0;
}

static int64_t layer_params(const tts_cfg *c) {
  int64_t h = c->hidden_size;
  return 2 * h + 4 * h * h + 3 * h * c->intermediate_size;
}

int64_t tts_param_count(const tts_cfg *c) {
  int64_t classes = c->codec_vocab + 4, h = c->hidden_size;
  return classes * h + (c->nar_layers + c->ar_layers) * layer_params(c) + h + classes * h + classes;
}

int64_t tts_llm_embed_count(const tts_cfg *c) { return c->llm_vocab_size * c->llm_hidden_size; }

static nn_layer_cfg layer_cfg(const tts_cfg *c) {
  /* LLaMA: no biases, MHA (no GQA) */
  nn_layer_cfg l =
      nn_layer_cfg_llama(c->hidden_size, c->num_attention_heads, c->num_attention_heads,
                         c->intermediate_size, c->rope_theta, c->rms_norm_eps, false);
  l.recompute = c->recompute;
  return l;
}

int tts_init(tts *m, vt_params *ps, const tts_cfg *cfg, char *err, size_t err_len) {
  memset(m, 0, sizeof *m);
  if (tts_cfg_check(cfg, err, err_len)) return -1;
  m->cfg = *cfg;
  int64_t h = cfg->hidden_size, classes = cfg->codec_vocab + 4;
  m->nar = calloc((size_t)(cfg->nar_layers ? cfg->nar_layers : 1), sizeof *m->nar);
  m->ar = calloc((size_t)cfg->ar_layers, sizeof *m->ar);
  if (!m->nar || !m->ar) {
    tts_free(m);
    snprintf(err, err_len, "tts: out of memory");
    return -1;
  }
  nn_reg r = nn_reg_make(ps, err, err_len);
  /* the release's order: embedding, layers_pre_nn, layers, norm, out_fnn */
  nn_embedding_init(&m->embedding, &r, "", "embedding", classes, h);
  nn_layer_cfg lc = layer_cfg(cfg);
  char prefix[64];
  for (int64_t l = 0; l < cfg->nar_layers; l++) {
    snprintf(prefix, sizeof prefix, "layers_pre_nn.%lld", (long long)l);
    nn_layer_init(&m->nar[l], &r, prefix, &lc);
  }
  for (int64_t l = 0; l < cfg->ar_layers; l++) {
    snprintf(prefix, sizeof prefix, "layers.%lld", (long long)l);
    nn_layer_init(&m->ar[l], &r, prefix, &lc);
  }
  nn_norm_init(&m->norm, &r, "", "norm", NN_NORM_RMS, h, cfg->rms_norm_eps, false);
  nn_linear_init(&m->out_fnn, &r, "", "out_fnn", h, classes, true);
  m->llm_embed = nn_param(&r, "model", "embed_tokens", "weight", 2,
                          (int64_t[]){cfg->llm_vocab_size, cfg->llm_hidden_size});
  if (nn_reg_failed(&r)) {
    tts_free(m);
    return -1;
  }
  return 0;
}

void tts_free(tts *m) {
  free(m->nar);
  free(m->ar);
  m->nar = m->ar = NULL;
}

static void init_layer(const nn_layer *l, const vt_params *ps, vt_rng *rng, float std) {
  vt_tensor *w[] = {l->attn.q.w,  l->attn.k.w, l->attn.v.w, l->attn.o.w,
                    l->mlp.fc1.w, l->mlp.up.w, l->mlp.fc2.w};
  for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) nn_init_normal(ps, w[i], rng, 0, std);
  nn_norm_init_weights(&l->norm1, ps);
  nn_norm_init_weights(&l->norm2, ps);
}

void tts_init_weights(tts *m, const vt_params *ps, vt_rng *rng, bool with_llm) {
  const tts_cfg *c = &m->cfg;
  float std = (float)c->initializer_range;
  nn_init_normal(ps, m->embedding.w, rng, 0, std);
  nn_init_const(ps, m->out_fnn.b, 0);
  int64_t h = c->hidden_size;
  float zero[1024] = {0};
  for (int64_t i = 0; i < h; i += 1024) /* PAD's row is zero, like torch's padding_idx */
    nn_write(ps, m->embedding.w, TTS_PAD(c) * h + i, zero, h - i < 1024 ? h - i : 1024);
  for (int64_t l = 0; l < c->nar_layers; l++) init_layer(&m->nar[l], ps, rng, std);
  for (int64_t l = 0; l < c->ar_layers; l++) init_layer(&m->ar[l], ps, rng, std);
  nn_norm_init_weights(&m->norm, ps);
  nn_init_normal(ps, m->out_fnn.w, rng, 0, std);
  if (with_llm) nn_init_normal(ps, m->llm_embed, rng, 0, std);
}

/* ---- batch layout ---------------------------------------------------------------------- */

typedef struct {
  int64_t B, k;    /* rows; vectors per text token */
  int64_t Tt, Tx;  /* padded text length, padded conditioning (NAR) length */
  int64_t T, rows; /* AR row length; codec rows predicted over the batch */
  int32_t cl[TTS_MAX_ROWS], len[TTS_MAX_ROWS]; /* conditioning incl. BOS; whole AR row */
} layout;

/* Checks the batch and computes its layout; fails the ctx naming the bad row. */
static bool make_layout(vt_ctx *ctx, const tts_cfg *c, const tts_batch *b, layout *L) {
  static const char *op = "tts_forward";
  if (b->batch < 1 || b->batch > TTS_MAX_ROWS) {
    vt_ctx_fail(ctx, op, "a batch has 1 to %d rows, got %lld", TTS_MAX_ROWS, (long long)b->batch);
    return false;
  }
  L->B = b->batch;
  L->k = c->llm_hidden_size / c->hidden_size;
  L->Tt = L->T = L->rows = 0;
  for (int64_t i = 0; i < b->batch; i++) {
    int64_t tl = b->text_lens[i], yl = b->codec_lens[i];
    if (tl < 1 || tl > b->text_stride || yl < 0 || yl > b->codec_stride) {
      vt_ctx_fail(ctx, op,
                  "row %lld: %lld text ids (1 to %lld expected) and %lld codec ids (0 to %lld)",
                  (long long)i, (long long)tl, (long long)b->text_stride, (long long)yl,
                  (long long)b->codec_stride);
      return false;
    }
    for (int64_t j = 0; j < tl; j++) {
      int32_t t = b->text[i * b->text_stride + j];
      if (t < 0 || t >= c->llm_vocab_size) {
        vt_ctx_fail(ctx, op, "row %lld: text id %d at %lld is outside the LLM's vocabulary of %lld",
                    (long long)i, t, (long long)j, (long long)c->llm_vocab_size);
        return false;
      }
    }
    for (int64_t j = 0; j < yl; j++) {
      int32_t y = b->codec[i * b->codec_stride + j];
      if (y < 0 || y >= c->codec_vocab) {
        vt_ctx_fail(ctx, op, "row %lld: codec id %d at %lld is outside the codebook of %lld",
                    (long long)i, y, (long long)j, (long long)c->codec_vocab);
        return false;
      }
    }
    if (tl > L->Tt) L->Tt = tl;
    L->cl[i] = (int32_t)(tl * L->k + 1);
    L->len[i] = (int32_t)(L->cl[i] + yl + 1);
    if (L->len[i] > L->T) L->T = L->len[i];
    L->rows += yl + 1;
  }
  L->Tx = L->Tt * L->k;
  return true;
}

/* Writes i32 values into a device tensor through a stack buffer (no heap, no direct writes). */
typedef struct {
  const vt_backend *be;
  int32_t *dst;
  int64_t done;
  int n;
  int32_t buf[1024];
} i32_writer;

static void w_begin(i32_writer *w, vt_ctx *ctx, vt_tensor *t) {
  w->be = vt_ctx_backend(ctx);
  w->dst = vt_ctx_failed(ctx) ? NULL : t->data;
  w->done = 0;
  w->n = 0;
}
static void w_flush(i32_writer *w) {
  if (w->dst && w->n)
    w->be->copy(w->be, w->dst + w->done, w->buf, sizeof(int32_t) * (size_t)w->n, VT_COPY_H2D);
  w->done += w->n;
  w->n = 0;
}
static void w_put(i32_writer *w, int32_t v) {
  w->buf[w->n++] = v;
  if (w->n == 1024) w_flush(w);
}

static vt_tensor *i32_tensor(vt_ctx *ctx, int ndim, const int64_t *shape) {
  return vt_new(ctx, VT_I32, ndim, shape);
}

tts_out tts_forward(tts *m, vt_ctx *ctx, const tts_batch *b) {
  tts_out out = {0};
  const tts_cfg *c = &m->cfg;
  layout L;
  if (vt_ctx_failed(ctx) || !make_layout(ctx, c, b, &L)) {
    out.hidden = out.targets = vt_ctx_fail(ctx, "tts_forward", "not run");
    return out;
  }
  int64_t B = L.B, h = c->hidden_size, T = L.T, Bx = B * L.Tx;
  i32_writer w;
  /* text ids [B, Tt] (padding 0: its vectors are masked as keys and never predicted from) */
  vt_tensor *text = i32_tensor(ctx, 2, (int64_t[]){B, L.Tt});
  w_begin(&w, ctx, text);
  for (int64_t i = 0; i < B; i++)
    for (int64_t j = 0; j < L.Tt; j++)
      w_put(&w, j < b->text_lens[i] ? b->text[i * b->text_stride + j] : 0);
  w_flush(&w);
  vt_tensor *nar_len = i32_tensor(ctx, 1, (int64_t[]){B});
  w_begin(&w, ctx, nar_len);
  for (int64_t i = 0; i < B; i++) w_put(&w, (int32_t)(b->text_lens[i] * L.k));
  w_flush(&w);
  vt_tensor *nar_pos = i32_tensor(ctx, 1, (int64_t[]){L.Tx});
  w_begin(&w, ctx, nar_pos);
  for (int64_t j = 0; j < L.Tx; j++) w_put(&w, (int32_t)j);
  w_flush(&w);

  /* NAR: the text embeddings cut into hidden-size vectors, bidirectional over each row */
  vt_tensor *x = vt_embedding(ctx, m->llm_embed, text);
  x = vt_reshape(ctx, x, 3, (int64_t[]){B, L.Tx, h});
  nn_fwd fn = {.mask = VT_ATTN_BIDIRECTIONAL, .lengths = nar_len, .pos = nar_pos};
  for (int64_t l = 0; l < c->nar_layers; l++) x = nn_layer_forward(&m->nar[l], ctx, x, &fn);

  /* AR rows gathered from [NAR rows; embedding table] */
  vt_tensor *idx = i32_tensor(ctx, 1, (int64_t[]){B * T});
  vt_tensor *pos = i32_tensor(ctx, 2, (int64_t[]){B, T});
  vt_tensor *pre = i32_tensor(ctx, 1, (int64_t[]){B}), *len = i32_tensor(ctx, 1, (int64_t[]){B});
  w_begin(&w, ctx, idx);
  for (int64_t i = 0; i < B; i++)
    for (int64_t j = 0; j < T; j++) {
      int64_t cl = L.cl[i], v;
      if (j == 0)
        v = Bx + TTS_BOS(c);
      else if (j < cl)
        v = i * L.Tx + j - 1;
      else if (j == cl)
        v = Bx + TTS_SOS(c);
      else if (j < L.len[i])
        v = Bx + b->codec[i * b->codec_stride + j - cl - 1];
      else
        v = Bx + TTS_PAD(c);
      w_put(&w, (int32_t)v);
    }
  w_flush(&w);
  w_begin(&w, ctx, pos);
  for (int64_t i = 0; i < B; i++)
    for (int64_t j = 0; j < T; j++) /* codec tokens continue after the padded conditioning */
      w_put(&w, (int32_t)(j < L.cl[i] ? j : L.Tx + 1 + j - L.cl[i]));
  w_flush(&w);
  w_begin(&w, ctx, pre);
  for (int64_t i = 0; i < B; i++) w_put(&w, L.cl[i]);
  w_flush(&w);
  w_begin(&w, ctx, len);
  for (int64_t i = 0; i < B; i++) w_put(&w, L.len[i]);
  w_flush(&w);

  vt_tensor *parts[2] = {vt_reshape(ctx, x, 2, (int64_t[]){Bx, h}), m->embedding.w};
  x = vt_index_select(ctx, vt_concat(ctx, parts, 2, 0), 0, idx);
  x = vt_reshape(ctx, x, 3, (int64_t[]){B, T, h});
  nn_fwd fa = {.mask = VT_ATTN_PREFIX, .prefix_lengths = pre, .lengths = len, .pos = pos};
  for (int64_t l = 0; l < c->ar_layers; l++) x = nn_layer_forward(&m->ar[l], ctx, x, &fa);

  /* the codec rows (SOS, y...) and their targets (y, EOS) */
  vt_tensor *sel = i32_tensor(ctx, 1, (int64_t[]){L.rows});
  out.targets = i32_tensor(ctx, 1, (int64_t[]){L.rows});
  w_begin(&w, ctx, sel);
  for (int64_t i = 0; i < B; i++)
    for (int64_t j = L.cl[i]; j < L.len[i]; j++) w_put(&w, (int32_t)(i * T + j));
  w_flush(&w);
  w_begin(&w, ctx, out.targets);
  for (int64_t i = 0; i < B; i++) {
    for (int64_t j = 0; j < b->codec_lens[i]; j++) w_put(&w, b->codec[i * b->codec_stride + j]);
    w_put(&w, TTS_EOS(c));
  }
  w_flush(&w);
  x = vt_index_select(ctx, vt_reshape(ctx, x, 2, (int64_t[]){B * T, h}), 0, sel);
  out.hidden = nn_norm_forward(&m->norm, ctx, x);
  out.rows = L.rows;
  return out;
}

vt_tensor *tts_logits(tts *m, vt_ctx *ctx, vt_tensor *hidden) {
  return nn_linear_forward(&m->out_fnn, ctx, hidden);
}

vt_tensor *tts_loss(tts *m, vt_ctx *ctx, const tts_batch *batch) {
  tts_out o = tts_forward(m, ctx, batch);
  return vt_speech_token_ce(ctx, tts_logits(m, ctx, o.hidden), o.targets, TTS_PAD(&m->cfg));
}
