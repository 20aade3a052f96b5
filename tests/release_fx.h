/* Helpers of the VITA-1.5 release tests (tests/test_release.c, test_release_vita.c): a model
 * directory opened as the model of its config.json with its weights, a seeded model written
 * as one, and a sample (text rows, image tiles, one audio clip) run through a vita model for
 * its logits, vision tokens (the adapter outputs) and audio tokens (the audio adapter's). */
#ifndef VT_TESTS_RELEASE_FX_H
#define VT_TESTS_RELEASE_FX_H

#include <jansson.h>
#include <stdio.h>

#include "checkpoints/release.h"
#include "checkpoints/safetensors_params.h"
#include "model/vita_model.h"
#include "tests/testutil.h"

/* The tiny vita model both tests export: Qwen2 24 wide, a 56 px tower, the audio encoder;
 * extra: the config's last fields (each starting with ", ") and its closing brace. */
#define RELEASE_FX_CONFIG(extra)                                                                   \
  "{\"model_type\": \"vita-Qwen2\", \"vocab_size\": 64, \"hidden_size\": 24, "                     \
  "\"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "              \
  "\"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, "                  \
  "\"mm_projector_type\": \"mlp2x_gelu\", \"mm_hidden_size\": 128, "                               \
  "\"vision_config\": {\"image_size\": 56, \"patch_size\": 14, \"hidden_size\": 32, "              \
  "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2}, "             \
  "\"audio_config\": {\"hidden_size\": 32, \"num_attention_heads\": 2, "                           \
  "\"intermediate_size\": 48, \"num_hidden_layers\": 2, \"chunk_mode\": \"full\"}" extra

enum { RELEASE_FX_PX = 56, RELEASE_FX_MELS = 80 };

/* The model of dir's config.json with its weights, in a CPU store ps (initialised here), or
 * NULL with err. */
static vt_model *release_fx_open_model(const char *dir, vt_params *ps, char *err, size_t len) {
  char p[4400];
  snprintf(p, sizeof p, "%s/config.json", dir);
  json_t *cj = release_read_json(p, err, len);
  if (!cj) return NULL;
  vt_params_init(ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts opts = {0};
  vt_model *m = vt_model_create(NULL, cj, p, &opts, ps, err, len);
  json_decref(cj);
  if (m && (vt_params_alloc(ps, err, len) || st_load_params_path(ps, dir, 0, err, len))) {
    vt_model_destroy(m);
    vt_params_free(ps);
    return NULL;
  }
  return m;
}

/* m's config.json and model.safetensors into dir. Returns 0, or -1 with err. */
static int release_fx_write_dir(const vt_model *m, const vt_params *ps, const char *dir, char *err,
                                size_t len) {
  char p[4400];
  json_t *c = m->ops->config_json(m);
  snprintf(p, sizeof p, "%s/config.json", dir);
  int rc = release_write_json(p, c, err, len);
  json_decref(c);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  return rc ? rc : st_save_params(ps, p, NULL, err, len);
}

/* A batch of rows x len tokens (labels: the tokens) with tiles image tiles [tiles, 3, 56, 56]
 * at tile_spans [tiles, 3] and one clip fbank [1, frames, 80] at clip_span [1, 3], which fills
 * aud positions. */
typedef struct {
  int64_t rows, len, tiles, frames, aud;
  const int32_t *tokens, *tile_spans, *clip_span;
  const float *px, *fbank;
} release_fx_sample;

/* The logits [rows, len, V], the vision tokens of every tile and the clip's audio tokens
 * [aud, H] of m on s (grad off), into the callers' buffers. */
static void release_fx_run(vt_model *m, const release_fx_sample *s, float *logits, float *vis,
                           float *aud) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  vt_batch b = {.rows = s->rows, .len = s->len, .samples = s->rows};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){s->rows, s->len}, s->tokens);
  b.labels = b.tokens;
  vt_tensor *pt =
      vt_from_host(ctx, VT_F32, 4, (int64_t[]){s->tiles, 3, RELEASE_FX_PX, RELEASE_FX_PX}, s->px);
  vt_tensor *fb =
      vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, s->frames, RELEASE_FX_MELS}, s->fbank);
  b.media[0] = (vt_media){VT_MEDIA_IMAGE, s->tiles, pt, NULL,
                          vt_from_host(ctx, VT_I32, 2, (int64_t[]){s->tiles, 3}, s->tile_spans)};
  b.media[1] = (vt_media){VT_MEDIA_FBANK, 1, fb, NULL,
                          vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, 3}, s->clip_span)};
  b.n_media = 2;
  vt_tensor *lg = vita_model_logits(m, ctx, &b);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  if (!vt_ctx_failed(ctx)) vt_to_host(ctx, lg, logits);
  vita_vision v = vita_model_vision(m);
  int64_t g = RELEASE_FX_PX / 14;
  vt_tensor *tok = vit_adapter_forward(
      v.adapter, ctx, vit_features(v.tower, ctx, vit_hidden(v.tower, ctx, pt, NULL), g, g));
  if (!vt_ctx_failed(ctx)) vt_to_host(ctx, tok, vis);
  audio_llm *a = vita_model_audio(m);
  CHECK(a != NULL && audio_llm_positions(a, s->frames) == s->aud);
  if (a) {
    int32_t len = (int32_t)s->frames, el, al;
    audio_enc_fwd af = {0};
    vt_tensor *h = audio_enc_forward(&a->enc, ctx, fb, &len, &el, &af);
    vt_tensor *x = audio_adapter_forward(&a->ad, ctx, h, &el, &al);
    CHECK_MSG(!vt_ctx_failed(ctx) && al == s->aud, "%s", vt_ctx_error(ctx));
    if (!vt_ctx_failed(ctx)) vt_to_host(ctx, x, aud);
  }
  vt_ctx_free(ctx);
}

#endif
