// ctest-labels: unit grad
/* The VITA model with both media against a PyTorch reference (tests/reference/
 * gen_vita_audio_fixtures.py, float64: transformers' Qwen2, the InternViT tower and adapter, the
 * audio encoder and adapter with prompts, the modality head): one image tile and two audio clips
 * of different lengths spliced at their spans, the logits, the LM and modality losses and the
 * gradient of every trainable parameter. Then: with the audio parts frozen a batch's audio
 * records no tape (only the splice into the trainable embeddings), a batch without audio runs
 * no audio work, and a span of the wrong size is an error naming the clip. */
#include <stdlib.h>
#include <string.h>

#include "model/audio_enc.h"
#include "model/vita_model.h"
#include "tests/fixture.h"
#include "tests/testutil.h"

static vt_fixture *FX;

static double max_abs(const float *x, long n) {
  double m = 0;
  for (long i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

/* f32 against float64 through two small transformers, a conv stack and the vision tower: 1e-5
 * of the largest value plus 1e-4 relative, as tests/test_audio_enc.c argues. */
static void close_to(const char *what, const float *got, const vt_fixture_tensor *want) {
  CHECK_CLOSE(what, got, want->f, want->n, 1e-5 * fmax(1.0, max_abs(want->f, want->n)), 1e-4);
}

static json_t *load_config(void) {
  char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/audio/vita_audio.json", dir ? dir : "tests/fixtures");
  json_error_t je;
  json_t *c = json_load_file(path, 0, &je);
  CHECK_MSG(c != NULL, "%s: %s", path, je.text);
  return c;
}

static vt_model *make(json_t *cj, vt_params *ps, bool freeze_audio) {
  char err[1024];
  vt_params_init(ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts opts = {0};
  vt_model *m = vt_model_create(NULL, cj, "vita_audio.json", &opts, ps, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return NULL;
  CHECK(vt_params_alloc(ps, err, sizeof err) == 0);
  vt_params_set_trainable(ps, AUDIO_ENC_CMVN_GLOB, false);
  if (freeze_audio) CHECK(vt_params_set_trainable(ps, "model.audio_encoder.*", false) > 0);
  CHECK(vt_params_alloc_grads(ps, err, sizeof err) == 0);
  return m;
}

static vt_batch batch(vt_ctx *ctx, bool audio) {
  const vt_fixture_tensor *tok = vt_fixture_get(FX, "tokens");
  int64_t B = tok->shape[0], T = tok->shape[1];
  vt_batch b = {.rows = B, .len = T, .samples = B};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, tok->i);
  b.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, vt_fixture_get(FX, "labels")->i);
  b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, vt_fixture_get(FX, "lengths")->i);
  b.label_tokens = vt_fixture_get(FX, "label_tokens")->i[0];
  const vt_fixture_tensor *px = vt_fixture_get(FX, "pixels"), *is = vt_fixture_get(FX, "img_spans");
  b.media[b.n_media++] =
      (vt_media){VT_MEDIA_IMAGE, 1, vt_from_host(ctx, VT_F32, 4, px->shape, px->f), NULL,
                 vt_from_host(ctx, VT_I32, 2, is->shape, is->i)};
  if (audio) {
    const vt_fixture_tensor *fb = vt_fixture_get(FX, "fbank"),
                            *fl = vt_fixture_get(FX, "fbank_lengths"),
                            *as = vt_fixture_get(FX, "audio_spans");
    b.media[b.n_media++] =
        (vt_media){VT_MEDIA_FBANK, fb->shape[0], vt_from_host(ctx, VT_F32, 3, fb->shape, fb->f),
                   vt_from_host(ctx, VT_I32, 1, fl->shape, fl->i),
                   vt_from_host(ctx, VT_I32, 2, as->shape, as->i)};
  }
  return b;
}

int main(void) {
  FX = vt_fixture_load("audio/vita_audio.txt");
  json_t *cj = load_config();
  char err[1024];
  vt_params ps;
  vt_model *m = make(cj, &ps, false);
  if (!m) return vt_test_finish("test_vita_audio");
  CHECK(m->n_terms == 2 && !strcmp(m->terms[1].name, "modality"));
  /* every parameter is the reference's, under the release names */
  int loaded = 0;
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    char key[300];
    snprintf(key, sizeof key, "param.%s", p->name);
    const vt_fixture_tensor *w = vt_fixture_get(FX, key);
    CHECK_MSG(w->n == vt_numel(&p->t), "%s: %ld values, the model has %lld", p->name, w->n,
              (long long)vt_numel(&p->t));
    if (w->n == vt_numel(&p->t))
      loaded += vt_param_write_f32(&ps, &p->t, w->f, err, sizeof err) == 0;
  }
  CHECK(loaded == ps.n);
  CHECK(vt_params_find(&ps, "model.audio_encoder.adpter.conv1d2.weight"));
  CHECK(vt_params_find(&ps, "model.audio_encoder.prompt_embeddings.weight"));
  CHECK(vt_params_find(&ps, "model.audio_encoder.encoder.enc.1.encoders.1.self_attn.pos_bias_u"));
  CHECK(vt_params_find(&ps, "model.predict_head.weight"));

  /* the config written into checkpoints reads back to the same model */
  json_t *back = m->ops->config_json(m);
  CHECK(json_object_get(back, "audio_config") && json_object_get(back, "modality_head"));
  vt_params ps_back;
  vt_params_init(&ps_back, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts o0 = {0};
  vt_model *mb = vt_model_create(NULL, back, "config_json", &o0, &ps_back, err, sizeof err);
  CHECK_MSG(mb && mb->n_terms == 2 && ps_back.n == ps.n &&
                vt_params_count(&ps_back, false) == vt_params_count(&ps, false),
            "%s", err);
  vt_model_destroy(mb);
  vt_params_free(&ps_back);
  json_decref(back);

  /* bad audio fields are refused naming the field */
  const char *badcfg[][3] = {
      {"audio_config", "{\"ctc_vocab\": 9}", "ctc_vocab"},
      {"audio_config", "{\"llm_hidden_size\": 7}", "llm_hidden_size"},
      {"audio_config", "{\"hidden_sise\": 16}", "hidden_sise"},
      {"modality_head", "{\"state_token_ids\": [1, 2]}", "state_token_ids"},
      {"modality_head", "{\"class_weights\": [1, -5, 1]}", "class_weights"},
      {"modality_head", "{\"num_classes\": 4, \"class_weights\": [1, 1, 1, 1]}", "state_token_ids"},
  };
  for (int i = 0; i < 6; i++) {
    json_t *bc = json_deep_copy(cj);
    json_t *part = json_object_get(bc, badcfg[i][0]), *over = json_loads(badcfg[i][1], 0, NULL);
    json_object_update(part, over);
    vt_params pb;
    vt_params_init(&pb, (vt_device){VT_DEV_CPU, 0});
    vt_model *mx = vt_model_create(NULL, bc, "bad.json", &o0, &pb, err, sizeof err);
    CHECK_MSG(!mx && strstr(err, badcfg[i][2]) && strstr(err, "bad.json"), "case %d: %s", i, err);
    vt_model_destroy(mx);
    vt_params_free(&pb);
    json_decref(over);
    json_decref(bc);
  }
  json_t *nohead = json_deep_copy(cj);
  json_object_del(nohead, "audio_config");
  vt_params pn;
  vt_params_init(&pn, (vt_device){VT_DEV_CPU, 0});
  CHECK(!vt_model_create(NULL, nohead, "x", &o0, &pn, err, sizeof err) &&
        strstr(err, "modality_head"));
  vt_params_free(&pn);
  json_decref(nohead);

  vt_ctx *ctx = vt_test_cpu_ctx();
  /* logits at the valid positions of both rows */
  vt_set_grad_enabled(ctx, false);
  vt_batch b = batch(ctx, true);
  vt_tensor *lg = vita_model_logits(m, ctx, &b);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  const vt_fixture_tensor *want = vt_fixture_get(FX, "logits");
  const int32_t *len = vt_fixture_get(FX, "lengths")->i;
  int64_t T = b.len, V = 64;
  float *all = malloc(sizeof(float) * (size_t)(b.rows * T * V)),
        *got = malloc(sizeof(float) * (size_t)want->n);
  vt_to_host(ctx, lg, all);
  long k = 0;
  for (int64_t r = 0; r < b.rows; r++)
    for (int64_t t = 0; t < len[r]; t++, k++)
      memcpy(got + k * V, all + (r * T + t) * V, sizeof(float) * V);
  close_to("logits", got, want);
  free(all), free(got);
  vt_ctx_reset(ctx);

  /* the losses and every gradient of lm / label_tokens + modality */
  vt_set_grad_enabled(ctx, true);
  vt_params_zero_grad(&ps);
  b = batch(ctx, true);
  vt_model_loss out = {0};
  vt_model_step st = {0};
  CHECK_MSG(m->ops->loss(m, ctx, &b, &st, &out) == 0, "%s", vt_ctx_error(ctx));
  float lm = vt_item(ctx, out.terms[0].sum),
        mod = vt_item(ctx, out.terms[1].sum) / (float)out.count;
  printf("lm sum %.6f (torch %.6f), modality %.6f (torch %.6f)\n", lm,
         vt_fixture_get(FX, "lm_sum")->f[0], mod, vt_fixture_get(FX, "modality")->f[0]);
  CHECK(fabsf(lm - vt_fixture_get(FX, "lm_sum")->f[0]) <= 1e-4f * fabsf(lm));
  CHECK(fabsf(mod - vt_fixture_get(FX, "modality")->f[0]) <= 1e-4f * fabsf(mod) + 1e-5f);
  vt_tensor *total =
      vt_scale(ctx, vt_add(ctx, out.terms[0].sum, out.terms[1].sum), 1.0f / (float)out.count);
  CHECK_MSG(vt_backward(ctx, total), "%s", vt_ctx_error(ctx));
  int checked = 0;
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    if (!p->trainable) continue;
    char key[300];
    snprintf(key, sizeof key, "grad.%s", p->name);
    const vt_fixture_tensor *gw = vt_fixture_get(FX, key);
    float *g = malloc(sizeof(float) * (size_t)gw->n);
    vt_grad_to_host(ctx, &p->t, g);
    close_to(p->name, g, gw);
    CHECK_MSG(max_abs(gw->f, gw->n) > 0, "%s: the reference gradient is zero", p->name);
    free(g);
    checked++;
  }
  printf("%d gradients checked against torch\n", checked);
  vt_ctx_reset(ctx);

  /* a span of the wrong size is refused, naming the clip */
  b = batch(ctx, true);
  int32_t bad[6];
  memcpy(bad, vt_fixture_get(FX, "audio_spans")->i, sizeof bad);
  bad[5] += 1;
  b.media[1].spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 3}, bad);
  CHECK(m->ops->loss(m, ctx, &b, &st, &out) == -1 && strstr(vt_ctx_error(ctx), "audio clip 1"));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);

  /* tape lengths: audio frozen (no head), with and without the clips; then audio trainable */
  json_t *nh = json_deep_copy(cj);
  json_object_del(nh, "modality_head");
  int64_t tape[2][2];
  for (int fr = 0; fr < 2; fr++) {
    vt_params ps2;
    vt_model *m2 = make(nh, &ps2, fr == 1);
    vt_rng rng;
    vt_rng_seed(&rng, 3);
    CHECK(m2 && m2->ops->init_weights(m2, &ps2, &rng, err, sizeof err) == 0);
    for (int au = 0; au < 2; au++) {
      b = batch(ctx, au == 1);
      int64_t before = vt_tape_len(ctx);
      CHECK_MSG(m2->ops->loss(m2, ctx, &b, &st, &out) == 0, "%s", vt_ctx_error(ctx));
      tape[fr][au] = vt_tape_len(ctx) - before;
      vt_ctx_reset(ctx);
    }
    vt_model_destroy(m2);
    vt_params_free(&ps2);
  }
  printf(
      "tape ops: audio trainable %lld with clips, %lld without; frozen %lld with, %lld without\n",
      (long long)tape[0][1], (long long)tape[0][0], (long long)tape[1][1], (long long)tape[1][0]);
  CHECK(tape[0][0] == tape[1][0]);     /* no clips: no audio work either way */
  CHECK(tape[1][1] - tape[1][0] <= 3); /* frozen: only the splice into the embeddings */
  CHECK(tape[0][1] - tape[0][0] > 30); /* trainable: the encoder and adapter record */
  json_decref(nh);

  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cj);
  vt_fixture_free(FX);
  return vt_test_finish("test_vita_audio");
}
