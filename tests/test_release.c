// ctest-labels: unit
/* The VITA-1.5 release layout, export then import: a tiny seeded vita model written as a model
 * directory is exported (f32 in several shards, and bf16), checked for the release's files and
 * config keys and side directories, imported back, and run on a batch with image tiles: an f32
 * round trip gives bit-identical logits and vision tokens (the adapter outputs), a bf16 one
 * gives exactly those of the original with every weight rounded to bf16; the same for the audio
 * tokens (the audio adapter's outputs) of a clip, whose global_cmvn and train.yaml sit in the
 * audio-encoder directory. The modality head is left out (the release has none). Refusals: an
 * output that is not empty, an unknown part, a speech decoder asked for but absent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "stages/stage_release.h"
#include "tests/release_fx.h"

static const char *config =
    RELEASE_FX_CONFIG(", \"modality_head\": {\"state_token_ids\": [61, 62, 63]}}");

enum { B = 2, T = 20, PER = 4, N_TILES = 3, V = 64, H = 24, FRAMES = 40, MELS = 80, AUD = 5 };
static const int32_t spans[N_TILES * 3] = {0, 3, PER, 1, 2, PER, 1, 8, PER};

typedef struct {
  float logits[B * T * V];
  float vis[N_TILES * PER * H];
  float aud[AUD * H]; /* the clip's adapter outputs */
} outputs;

static int32_t tokens[B * T];
static float px[N_TILES * 3 * 56 * 56], fbank[FRAMES * MELS];
static const int32_t clip_span[3] = {0, 10, AUD};

static bool file_exists(const char *dir, const char *name) {
  char p[4400];
  struct stat st;
  snprintf(p, sizeof p, "%s/%s", dir, name);
  return stat(p, &st) == 0;
}

static void run(vt_model *m, outputs *o) {
  release_fx_sample s = {.rows = B,
                         .len = T,
                         .tiles = N_TILES,
                         .frames = FRAMES,
                         .aud = AUD,
                         .tokens = tokens,
                         .tile_spans = spans,
                         .clip_span = clip_span,
                         .px = px,
                         .fbank = fbank};
  release_fx_run(m, &s, o->logits, o->vis, o->aud);
}

static int64_t n_diff(const float *a, const float *b, size_t n) {
  int64_t d = 0;
  for (size_t i = 0; i < n; i++) d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return d;
}

static outputs ref, ref_bf16, got;
static float cmvn_mean[MELS], cmvn_istd[MELS];

int main(void) {
  char err[8192], tmpl[] = "/tmp/vt_release_XXXXXX", p[4400];
  const char *T0 = mkdtemp(tmpl);
  CHECK(T0 != NULL);
  if (!T0) return vt_test_finish("test_release");
  /* a seeded tiny model as a model directory */
  json_t *cj = json_loads(config, 0, NULL);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = vt_model_create(NULL, cj, "test", &mo, &ps, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return vt_test_finish("test_release");
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 11);
  CHECK(m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0);
  for (int i = 0; i < ps.n; i++) { /* scale, so that tiles and tokens differ visibly */
    float *x = ps.items[i]->t.data;
    for (int64_t k = 0; k < vt_numel(&ps.items[i]->t); k++)
      x[k] += 0.2f * (vt_rng_uniform(&rng) - 0.5f);
  }
  for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)((i * 7 + 3) % V);
  vt_test_fill_uniform(&rng, px, N_TILES * 3 * 56 * 56, -2, 2);
  vt_test_fill_uniform(&rng, fbank, FRAMES * MELS, 0, 12);
  char src[4200];
  snprintf(src, sizeof src, "%s/src", T0);
  CHECK_MSG(release_fx_write_dir(m, &ps, src, err, sizeof err) == 0, "%s", err);
  run(m, &ref);
  memcpy(cmvn_mean, vt_params_find(&ps, "model.audio_encoder.encoder.global_cmvn.mean")->t.data,
         sizeof cmvn_mean);
  memcpy(cmvn_istd, vt_params_find(&ps, "model.audio_encoder.encoder.global_cmvn.istd")->t.data,
         sizeof cmvn_istd);
  /* the reference of a bf16 export: every weight rounded to bf16 */
  for (int i = 0; i < ps.n; i++) {
    vt_tensor *t = &ps.items[i]->t;
    size_t n = (size_t)vt_numel(t);
    uint16_t *h = malloc(2 * n);
    st_convert(VT_F32, t->data, VT_BF16, h, n, err, sizeof err);
    st_convert(VT_BF16, h, VT_F32, t->data, n, err, sizeof err);
    free(h);
  }
  run(m, &ref_bf16);
  CHECK(n_diff(ref.logits, ref_bf16.logits, B * T * V) > 0); /* the rounding shows */
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cj);

  /* f32 in shards of 20 kB, and bf16 in one file */
  const char *kinds[2] = {"f32", "bf16"};
  for (int k = 0; k < 2; k++) {
    char exp[4200], imp[4200];
    snprintf(exp, sizeof exp, "%s/export_%s", T0, kinds[k]);
    snprintf(imp, sizeof imp, "%s/import_%s", T0, kinds[k]);
    stage_release_opts o = {
        .io = {.dtype = k ? VT_BF16 : VT_F32, .max_shard_bytes = k ? 5000000000u : 20000u}};
    stage_release_stats st;
    int rc = stage_release_export(src, exp, &o, &st, err, sizeof err);
    CHECK_MSG(rc == 0, "export %s: %s", kinds[k], err);
    if (rc) continue;
    CHECK(st.release && st.audio && !st.tts_done);
    CHECK_MSG(strstr(st.notes, "modality head not exported"), "%s", st.notes);
    CHECK(file_exists(exp, "audio-encoder/train.yaml") &&
          file_exists(exp, "audio-encoder/global_cmvn"));
    CHECK(k ? st.main.n_shards == 1 : st.main.n_shards > 2);
    CHECK(file_exists(exp, k ? "model.safetensors" : "model.safetensors.index.json"));
    CHECK(file_exists(exp, "InternViT-300M-448px/config.json"));
    CHECK(file_exists(exp, "InternViT-300M-448px/preprocessor_config.json"));
    CHECK(!file_exists(exp, ".vita-release-partial"));
    snprintf(p, sizeof p, "%s/config.json", exp);
    json_t *c = release_read_json(p, err, sizeof err);
    CHECK_MSG(c != NULL, "%s", err);
    const char *tower = json_string_value(json_object_get(c, "mm_vision_tower"));
    CHECK(!strcmp(json_string_value(json_object_get(c, "model_type")), "vita-Qwen2"));
    CHECK(!strcmp(json_string_value(json_array_get(json_object_get(c, "architectures"), 0)),
                  "VITAQwen2ForCausalLM"));
    CHECK(!strcmp(json_string_value(json_object_get(c, "mm_projector_type")), "mlp2x_gelu"));
    CHECK(json_integer_value(json_object_get(c, "mm_hidden_size")) == 128);
    CHECK(!strcmp(json_string_value(json_object_get(c, "image_aspect_ratio")), "square"));
    CHECK_MSG(tower && tower[0] == '/' && strstr(tower, "InternViT-300M-448px"), "tower %s",
              tower ? tower : "(none)");
    CHECK(
        !strcmp(json_string_value(json_object_get(c, "torch_dtype")), k ? "bfloat16" : "float32"));
    const char *aenc = json_string_value(json_object_get(c, "mm_audio_encoder"));
    CHECK(aenc && aenc[0] == '/' && strstr(aenc, "audio-encoder"));
    CHECK(json_object_get(c, "audio_config") && !json_object_get(c, "modality_head"));
    json_decref(c);
    /* global_cmvn gives back the encoder's mean and istd as the release's loader computes them */
    snprintf(p, sizeof p, "%s/audio-encoder/global_cmvn", exp);
    json_t *cm = release_read_json(p, err, sizeof err);
    CHECK_MSG(cm && json_array_size(json_object_get(cm, "mean_stat")) == MELS, "%s", err);
    for (int i = 0; cm && i < MELS; i++) {
      double n = json_number_value(json_object_get(cm, "frame_num"));
      double mu = json_number_value(json_array_get(json_object_get(cm, "mean_stat"), i)) / n;
      double var = json_number_value(json_array_get(json_object_get(cm, "var_stat"), i)) / n;
      CHECK(fabs(mu - cmvn_mean[i]) < 1e-6 && fabs(1 / sqrt(var - mu * mu) - cmvn_istd[i]) < 1e-5);
    }
    json_decref(cm);
    /* the tower directory holds the tower's weights under InternVisionModel's names */
    st_file f;
    snprintf(p, sizeof p, "%s/InternViT-300M-448px/model.safetensors", exp);
    CHECK_MSG(st_file_open(&f, p, err, sizeof err) == 0, "%s", err);
    const st_tensor *qkv = st_find(&f, "encoder.layers.1.attn.qkv.weight");
    CHECK(qkv && qkv->shape[0] == 96 && qkv->dtype == (k ? VT_BF16 : VT_F32));
    CHECK(st_find(&f, "embeddings.class_embedding") && !st_find(&f, "model.mm_projector.0.weight"));
    st_file_close(&f);
    /* the audio directory: the encoder + adapter under audioEncoder's names, no head */
    snprintf(p, sizeof p, "%s/audio-encoder/model.safetensors", exp);
    CHECK_MSG(st_file_open(&f, p, err, sizeof err) == 0, "%s", err);
    CHECK(st_find(&f, "encoder.enc.1.encoders.1.self_attn.pos_bias_u") &&
          st_find(&f, "adpter.conv1d2.weight") && st_find(&f, "encoder.global_cmvn.istd"));
    st_file_close(&f);
    /* import back; the outputs */
    hf_io_opts io = {.dtype = VT_F32};
    rc = stage_release_import(exp, imp, &io, &st, err, sizeof err);
    CHECK_MSG(rc == 0, "import %s: %s", kinds[k], err);
    if (rc) continue;
    vt_params ps2;
    vt_model *m2 = release_fx_open_model(imp, &ps2, err, sizeof err);
    CHECK_MSG(m2 != NULL, "%s", err);
    if (!m2) continue;
    memset(&got, 0, sizeof got);
    run(m2, &got);
    const outputs *want = k ? &ref_bf16 : &ref;
    int64_t dl = n_diff(got.logits, want->logits, B * T * V);
    int64_t dv = n_diff(got.vis, want->vis, N_TILES * PER * H);
    int64_t da = n_diff(got.aud, want->aud, AUD * H);
    printf("%s export -> import: %lld of %d logits, %lld of %d vision tokens, %lld of %d audio "
           "tokens differ (logit[0] %.7g vs %.7g)\n",
           kinds[k], (long long)dl, B * T * V, (long long)dv, N_TILES * PER * H, (long long)da,
           AUD * H, (double)got.logits[0], (double)want->logits[0]);
    CHECK(dl == 0 && dv == 0 && da == 0);
    vt_model_destroy(m2);
    vt_params_free(&ps2);
    if (k) continue;
    /* the public release's config: no vision_config or audio_config, the side directories
     * named by paths of another machine; the sizes come from the directories inside */
    snprintf(p, sizeof p, "%s/config.json", exp);
    json_t *pc = release_read_json(p, err, sizeof err);
    json_object_del(pc, "vision_config");
    json_object_del(pc, "audio_config");
    json_object_set_new(pc, "mm_vision_tower", json_string("/mnt/vita/InternViT-300M-448px"));
    json_object_set_new(pc, "mm_audio_encoder", json_string("/mnt/vita/audio-encoder"));
    CHECK(release_write_json(p, pc, err, sizeof err) == 0);
    json_decref(pc);
    snprintf(imp, sizeof imp, "%s/import_public", T0);
    rc = stage_release_import(exp, imp, &io, &st, err, sizeof err);
    CHECK_MSG(rc == 0, "import of the public-style config: %s", err);
    m2 = rc ? NULL : release_fx_open_model(imp, &ps2, err, sizeof err);
    CHECK_MSG(rc || m2 != NULL, "%s", err);
    if (!m2) continue;
    run(m2, &got);
    dl = n_diff(got.logits, ref.logits, B * T * V), da = n_diff(got.aud, ref.aud, AUD * H);
    printf("public-style config (sizes from InternViT-300M-448px/config.json and "
           "audio-encoder/train.yaml): %lld logits, %lld audio tokens differ\n",
           (long long)dl, (long long)da);
    CHECK(dl == 0 && da == 0);
    vt_model_destroy(m2);
    vt_params_free(&ps2);
  }

  /* refusals: a non-empty output, an unknown part, a speech decoder that is not there */
  stage_release_opts o = {.io = {.dtype = VT_BF16}};
  stage_release_stats st;
  snprintf(p, sizeof p, "%s/export_f32", T0);
  CHECK(stage_release_export(src, p, &o, &st, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "not an empty directory"), "%s", err);
  snprintf(p, sizeof p, "%s/x", T0);
  o.parts = "audio,speech";
  CHECK(stage_release_export(src, p, &o, &st, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "unknown part \"speech\""), "%s", err);
  o.parts = "tts";
  CHECK(stage_release_export(src, p, &o, &st, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "--tts DIR"), "%s", err);
  CHECK(!file_exists(T0, "x") && !file_exists(T0, "x.part"));
  ckpt_remove_tree(T0, err, sizeof err);
  return vt_test_finish("test_release");
}
