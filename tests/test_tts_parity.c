// ctest-labels: unit grad
/* Parity of model/tts.c with a PyTorch reference built from HF transformers' LLaMA layers
 * (tests/reference/gen_tts_fixtures.py: Freeze-Omni's masks and loss on a padded batch of
 * three rows): the codec logits, the summed loss and the gradient of every decoder
 * parameter agree, with and without activation recompute; the frozen LLM table gets no
 * gradient; bad batches and configs fail with messages that name what is wrong. */
#include <stdlib.h>
#include <string.h>

#include "model/tts.h"
#include "tests/parity.h"
#include "tests/testutil.h"

#define FX "tts_tiny"

/* f32 through four layers of dot products of length <= 48 and a 1028-class softmax: errors of
 * sqrt(K) ulps per product compound over the layers; 256 ulps of the largest value covers
 * that, and a wrong mask or position moves values by far more (checked by breaking them). */
#define REL (256 * 1.1920929e-7)

/* The tiny config of the fixture (tests/fixtures/tts_tiny/config.json). */
static tts_cfg tiny(void) {
  tts_cfg c = tts_cfg_full();
  c.hidden_size = 32;
  c.num_attention_heads = 4;
  c.intermediate_size = 48;
  c.nar_layers = 2;
  c.ar_layers = 2;
  c.llm_vocab_size = 40;
  c.llm_hidden_size = 64;
  return c;
}

static void run(bool recompute) {
  tts_cfg cfg = tiny();
  cfg.recompute = recompute;
  char err[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  tts m;
  CHECK_MSG(tts_init(&m, &ps, &cfg, err, sizeof err) == 0, "%s", err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_params_set_trainable(&ps, "model.embed_tokens.weight", false) == 1);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  CHECK((int64_t)vt_params_count(&ps, true) == tts_param_count(&cfg));
  CHECK((int64_t)vt_params_count(&ps, false) == tts_param_count(&cfg) + tts_llm_embed_count(&cfg));
  int tensors = parity_load_weights(
      &ps, FX, (const char *[]){"model.safetensors", "llm_embed.safetensors", NULL});
  CHECK_MSG(tensors == ps.n, "%d tensors in the files, %d parameters", tensors, ps.n);

  st_file ref;
  CHECK(parity_open(&ref, FX, "reference.safetensors"));
  const st_tensor *tt = st_find(&ref, "text"), *tc = st_find(&ref, "codec");
  int64_t B = tt->shape[0], n_logits;
  int32_t *text = parity_read(&ref, "text", VT_I32, NULL);
  int32_t *text_lens = parity_read(&ref, "text_lens", VT_I32, NULL);
  int32_t *codec = parity_read(&ref, "codec", VT_I32, NULL);
  int32_t *codec_lens = parity_read(&ref, "codec_lens", VT_I32, NULL);
  int32_t *want_tgt = parity_read(&ref, "target", VT_I32, NULL);
  float *want_logits = parity_read(&ref, "logits", VT_F32, &n_logits);
  float *want_loss = parity_read(&ref, "loss", VT_F32, NULL);
  const st_tensor *tl = st_find(&ref, "logits");
  int64_t ty1 = tl->shape[1], classes = tl->shape[2];
  tts_batch batch = {.batch = B,
                     .text = text,
                     .text_lens = text_lens,
                     .text_stride = tt->shape[1],
                     .codec = codec,
                     .codec_lens = codec_lens,
                     .codec_stride = tc->shape[1]};

  vt_ctx *ctx = vt_test_cpu_ctx();
  tts_out o = tts_forward(&m, ctx, &batch);
  vt_tensor *logits = tts_logits(&m, ctx, o.hidden);
  vt_tensor *loss = vt_speech_token_ce(ctx, logits, o.targets, TTS_PAD(&cfg));
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  /* rows come packed (b, j) for j <= codec_lens[b]; the reference's are padded to ty1 */
  float *got = malloc(sizeof(float) * (size_t)(o.rows * classes));
  int32_t *tgt = malloc(sizeof(int32_t) * (size_t)o.rows);
  vt_to_host(ctx, logits, got);
  vt_to_host(ctx, o.targets, tgt);
  int64_t r = 0;
  bool tgt_ok = true;
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j <= codec_lens[b]; j++, r++) {
      char what[64];
      snprintf(what, sizeof what, "logits row %lld.%lld", (long long)b, (long long)j);
      const float *w = want_logits + (b * ty1 + j) * classes;
      CHECK_CLOSE(what, got + r * classes, w, (long)classes,
                  REL * parity_max_abs(want_logits, n_logits), REL);
      tgt_ok &= tgt[r] == want_tgt[b * ty1 + j];
    }
  CHECK_MSG(tgt_ok && r == o.rows, "targets (y then EOS) differ from the reference");
  float l = vt_item(ctx, loss);
  CHECK_MSG(fabs(l - want_loss[0]) <= REL * fabs(want_loss[0]), "loss %.8g, torch %.8g", l,
            want_loss[0]);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  for (int i = 0; i < ps.n; i++)
    CHECK_MSG(ps.items[i]->trainable || !strcmp(ps.items[i]->name, "model.embed_tokens.weight"),
              "%s frozen", ps.items[i]->name);
  int checked = parity_check_grads(ctx, &ps, &ref, "grad.", REL);
  CHECK_MSG(checked == ps.n - 1, "%d gradients checked of %d parameters", checked, ps.n);
  vt_ctx_free(ctx);
  free(got);
  free(tgt);
  free(text);
  free(text_lens);
  free(codec);
  free(codec_lens);
  free(want_tgt);
  free(want_logits);
  free(want_loss);
  st_file_close(&ref);
  tts_free(&m);
  vt_params_free(&ps);
}

/* Bad configs and batches: a status and a message naming the field or row. */
static void errors(void) {
  char err[512];
  tts_cfg c = tiny();
  c.llm_hidden_size = 3500;
  c.hidden_size = 896;
  c.num_attention_heads = 14;
  CHECK(tts_cfg_check(&c, err, sizeof err) == -1 && strstr(err, "3500") && strstr(err, "896"));
  c = tiny();
  c.ar_layers = 0;
  CHECK(tts_cfg_check(&c, err, sizeof err) == -1 && strstr(err, "ar_layers"));
  c = tiny();
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  tts m;
  CHECK(tts_init(&m, &ps, &c, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 3);
  tts_init_weights(&m, &ps, &rng, true);
  int32_t text[4] = {1, 2, 3, 40}, lens[2] = {2, 2}, codec[4] = {5, 6, 7, 1024};
  int32_t clens[2] = {2, 1};
  tts_batch b = {2, text, lens, 2, codec, clens, 2};
  struct {
    const char *want;
    int32_t *arr;
    int at;
    int32_t value;
  } cases[] = {{"row 1: text id 40", text, 3, 40},
               {"row 1: codec id 1024 at 0", codec, 2, 1024},
               {"row 0: 3 text ids", lens, 0, 3},
               {"row 1: 2 text ids (1 to 2 expected) and -1 codec ids", clens, 1, -1}};
  int32_t clean_text[4] = {1, 2, 3, 4}, clean_codec[4] = {5, 6, 7, 8};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    memcpy(text, clean_text, sizeof text);
    memcpy(codec, clean_codec, sizeof codec);
    lens[0] = lens[1] = 2;
    clens[0] = 2, clens[1] = 1;
    cases[k].arr[cases[k].at] = cases[k].value;
    vt_ctx *ctx = vt_test_cpu_ctx();
    tts_loss(&m, ctx, &b);
    CHECK_MSG(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), cases[k].want), "want '%s', got '%s'",
              cases[k].want, vt_ctx_failed(ctx) ? vt_ctx_error(ctx) : "no error");
    vt_ctx_free(ctx);
  }
  /* the clean batch runs; the PAD row of the embedding starts at zero */
  memcpy(text, clean_text, sizeof text);
  memcpy(codec, clean_codec, sizeof codec);
  clens[0] = 2, clens[1] = 1;
  vt_ctx *ctx = vt_test_cpu_ctx();
  float l = vt_item(ctx, tts_loss(&m, ctx, &b));
  CHECK_MSG(!vt_ctx_failed(ctx) && l > 0 && isfinite(l), "%s", vt_ctx_error(ctx));
  const float *pad = (const float *)m.embedding.w->data + TTS_PAD(&c) * c.hidden_size;
  CHECK(parity_max_abs(pad, c.hidden_size) == 0 &&
        parity_max_abs(pad - c.hidden_size, c.hidden_size) > 0);
  vt_ctx_free(ctx);
  tts_free(&m);
  vt_params_free(&ps);
}

int main(void) {
  run(false);
  run(true);
  errors();
  return vt_test_finish("test_tts_parity");
}
