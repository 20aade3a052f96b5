// ctest-labels: unit
/* The committed VITA-1.5 release fixture (tests/fixtures/vita_release: the bf16 export of a
 * tiny seeded vita model with vision and audio, and sample.safetensors: one row with an image
 * tile and an audio clip, and the logits, vision tokens and audio tokens our side computed).
 * CI imports the export with `vita import`'s code and recomputes the three: they must match the
 * committed values (to 1e-5 of their scale: the same code, maybe other compiler flags).
 * tests/reference/check_vita_export.py loads the same export in PyTorch (strict=True) and
 * checks the same logits there (not in CI).
 * `test_release_vita --write DIR` writes the fixture afresh (DIR must not exist). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_write.h"
#include "stages/stage_release.h"
#include "tests/release_fx.h"

static const char *config =
    RELEASE_FX_CONFIG(", \"tie_word_embeddings\": false, \"image_newline_token_id\": 5}");

/* one row: 3 text tokens, the tile's 4 positions, "\n" (5), 2 tokens, the clip's 5, 2 tokens */
enum { T = 17, PER = 4, V = 64, H = 24, FRAMES = 40, MELS = 80, AUD = 5, PX = 3 * 56 * 56 };
static const int32_t img_span[3] = {0, 3, PER}, aud_span[3] = {0, 10, AUD};
static const int32_t tokens[T] = {1, 2, 3, 0, 0, 0, 0, 5, 6, 7, 0, 0, 0, 0, 0, 8, 9};

typedef struct {
  float logits[T * V], vis[PER * H], aud[AUD * H];
} outputs;

static float px[PX], fbank[FRAMES * MELS];
static outputs got;

static void run(vt_model *m, outputs *o) {
  release_fx_sample s = {.rows = 1,
                         .len = T,
                         .tiles = 1,
                         .frames = FRAMES,
                         .aud = AUD,
                         .tokens = tokens,
                         .tile_spans = img_span,
                         .clip_span = aud_span,
                         .px = px,
                         .fbank = fbank};
  release_fx_run(m, &s, o->logits, o->vis, o->aud);
}

/* Imports the release at dir into a temporary directory and runs the sample there. */
static int import_and_run(const char *dir, const char *tmp, outputs *o, char *err, size_t len) {
  char imp[4200];
  snprintf(imp, sizeof imp, "%s/import", tmp);
  hf_io_opts io = {.dtype = VT_F32};
  stage_release_stats st;
  if (stage_release_import(dir, imp, &io, &st, err, len)) return -1;
  vt_params ps;
  vt_model *m = release_fx_open_model(imp, &ps, err, len);
  if (!m) return -1;
  run(m, o);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return 0;
}

static int write_fixture(const char *dir, const char *tmp) {
  char err[8192], p[4400];
  json_t *cj = json_loads(config, 0, NULL);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = vt_model_create(NULL, cj, "fixture", &mo, &ps, err, sizeof err);
  if (!m || vt_params_alloc(&ps, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
  vt_rng rng;
  vt_rng_seed(&rng, 2026);
  m->ops->init_weights(m, &ps, &rng, err, sizeof err);
  for (int i = 0; i < ps.n; i++) { /* every weight away from its default, so each one matters */
    float *x = ps.items[i]->t.data;
    bool cmvn = strstr(ps.items[i]->name, "global_cmvn") != NULL;
    for (int64_t k = 0; k < vt_numel(&ps.items[i]->t); k++)
      x[k] = cmvn && strstr(ps.items[i]->name, "istd") ? 0.3f + 0.2f * vt_rng_uniform(&rng)
             : cmvn                                    ? 6.0f * vt_rng_uniform(&rng)
                    : x[k] + 0.2f * (vt_rng_uniform(&rng) - 0.5f);
  }
  char src[4200];
  snprintf(src, sizeof src, "%s/src", tmp);
  int rc = release_fx_write_dir(m, &ps, src, err, sizeof err);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cj);
  stage_release_opts o = {.io = {.dtype = VT_BF16, .max_shard_bytes = 5000000000u}};
  stage_release_stats st;
  if (!rc) rc = stage_release_export(src, dir, &o, &st, err, sizeof err);
  if (rc) return fprintf(stderr, "%s\n", err), 1;
  /* the side directories by their names inside the fixture (the export writes absolute
   * paths, which would name this machine) */
  snprintf(p, sizeof p, "%s/config.json", dir);
  json_t *c = release_read_json(p, err, sizeof err);
  json_object_set_new(c, "mm_vision_tower", json_string(STAGE_RELEASE_VISION_DIR));
  json_object_set_new(c, "mm_audio_encoder", json_string(STAGE_RELEASE_AUDIO_DIR));
  rc = release_write_json(p, c, err, sizeof err);
  json_decref(c);
  outputs o2;
  if (rc || import_and_run(dir, tmp, &o2, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
  st_entry es[] = {
      {"tokens", VT_I32, 2, {1, T}, tokens},
      {"image_span", VT_I32, 2, {1, 3}, img_span},
      {"audio_span", VT_I32, 2, {1, 3}, aud_span},
      {"pixel_values", VT_F32, 4, {1, 3, 56, 56}, px},
      {"fbank", VT_F32, 3, {1, FRAMES, MELS}, fbank},
      {"logits", VT_F32, 3, {1, T, V}, o2.logits},
      {"vision_tokens", VT_F32, 3, {1, PER, H}, o2.vis},
      {"audio_tokens", VT_F32, 3, {1, AUD, H}, o2.aud},
  };
  snprintf(p, sizeof p, "%s/sample.safetensors", dir);
  if (st_write(p, es, 8, NULL, 0, err, sizeof err)) return fprintf(stderr, "%s\n", err), 1;
  printf("wrote %s (logit[0] %.7g)\n", dir, (double)o2.logits[0]);
  return 0;
}

/* max |a - b| over n, and the scale max |b| */
static double max_diff(const float *a, const float *b, long n, double *scale) {
  double d = 0, s = 0;
  for (long i = 0; i < n; i++) {
    d = fmax(d, fabs((double)a[i] - b[i]));
    s = fmax(s, fabs((double)b[i]));
  }
  *scale = s;
  return d;
}

int main(int argc, char **argv) {
  char tmpl[] = "/tmp/vt_release_vita_XXXXXX", err[8192], p[4400];
  const char *tmp = mkdtemp(tmpl);
  if (!tmp) return 1;
  vt_rng rng;
  vt_rng_seed(&rng, 5);
  vt_test_fill_uniform(&rng, px, PX, -2, 2);
  vt_test_fill_uniform(&rng, fbank, FRAMES * MELS, 0, 12);
  if (argc == 3 && !strcmp(argv[1], "--write")) {
    int rc = write_fixture(argv[2], tmp);
    ckpt_remove_tree(tmp, err, sizeof err);
    return rc;
  }
  const char *fx = getenv("VT_FIXTURES");
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/vita_release", fx ? fx : "tests/fixtures");
  snprintf(p, sizeof p, "%s/sample.safetensors", dir);
  st_file f;
  CHECK_MSG(st_file_open(&f, p, err, sizeof err) == 0, "%s", err);
  if (!f.n) return vt_test_finish("test_release_vita");
  /* the committed inputs are the ones generated here (same seed) */
  const st_tensor *tp = st_find(&f, "pixel_values"), *tf = st_find(&f, "fbank");
  CHECK(tp && tf && !memcmp(st_tensor_data(tp, VT_F32), px, sizeof px) &&
        !memcmp(st_tensor_data(tf, VT_F32), fbank, sizeof fbank));
  int rc = import_and_run(dir, tmp, &got, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  const char *names[3] = {"logits", "vision_tokens", "audio_tokens"};
  const float *mine[3] = {got.logits, got.vis, got.aud};
  const long n[3] = {T * V, PER * H, AUD * H};
  for (int k = 0; k < 3 && !rc; k++) {
    const st_tensor *t = st_find(&f, names[k]);
    CHECK(t && t->numel == n[k]);
    if (!t || t->numel != n[k]) continue;
    double scale, d = max_diff(mine[k], st_tensor_data(t, VT_F32), n[k], &scale);
    printf("%s: max |ours - committed| %.3g (scale %.3g)\n", names[k], d, scale);
    CHECK(scale > 0.1 && d <= 1e-5 * scale);
  }
  st_file_close(&f);
  ckpt_remove_tree(tmp, err, sizeof err);
  return vt_test_finish("test_release_vita");
}
