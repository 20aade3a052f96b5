// ctest-labels: e2e grad
/* Packed rows with images: a tiny VITA model (InternViT-shaped tower, mlp2x_gelu, Qwen2) trains
 * one SGD step (lr 1, no momentum, no decay, no clipping: the update is the mean gradient) on
 * the same six samples, packed three to a row into two rows, and unpacked one to a row. The
 * samples carry images (one or two tiles), two images, a two-frame video, or none; each packed
 * row carries its samples' tiles in order, segments keep the samples apart and positions
 * restart per sample. The step's loss and every parameter's gradient agree to f32 reduction
 * tolerance, the vision tower's gradients are not zero, and both runs drew the six samples.
 * With max_len below a sample's expanded length, samples with tiles are skipped and counted,
 * not cut through their tiles.
 * Then a vision curriculum on the same data (train/curriculum.h): a stage 1.1-shaped stage
 * (the adapter alone, unpacked) and a 1.2-shaped one (everything, packed) from its weights;
 * the first changes the adapter's tensors only, the second starts from them and changes all. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "data/chat.h"
#include "data/shard.h"
#include "tests/check.h"
#include "tests/pack_fx.h"
#include "train/curriculum.h"
#include "train/trainer.h"

static char T[] = "/tmp/vt_pack_img_XXXXXX";

enum { TILE = 56, SPAN = 5 }; /* 56 px / 14 = 4 x 4 patches -> 2 x 2 = 4 tokens + "\n" */

/* Six samples of 21 positions each once every tile is 5: text only; one image of one tile;
 * one image of two tiles; two images; a video of two frames; an image at the very start. */
static void write_shard(const char *path) {
  char err[512];
  shard_writer *w;
  if (shard_writer_open(&w, path, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  static const struct {
    int n_media, kind, tiles[2], at[2];
  } kinds[6] = {{0, 0, {0, 0}, {0, 0}},
                {1, CHAT_MEDIA_IMAGE, {1, 0}, {3, 0}},
                {1, CHAT_MEDIA_IMAGE, {2, 0}, {2, 0}},
                {2, CHAT_MEDIA_IMAGE, {1, 1}, {2, 6}},
                {1, CHAT_MEDIA_VIDEO, {2, 0}, {4, 0}},
                {1, CHAT_MEDIA_IMAGE, {1, 0}, {0, 0}}};
  uint32_t rng = 7;
  static uint8_t tiles[4 * TILE * TILE * 3];
  for (int s = 0; s < 6; s++) {
    int n_tiles = 0, n = 21;
    for (int k = 0; k < kinds[s].n_media; k++)
      n_tiles += kinds[s].tiles[k], n -= SPAN * kinds[s].tiles[k] - 1;
    int32_t ids[32], labels[32];
    for (int i = 0; i < n; i++) {
      rng = rng * 1664525u + 1013904223u;
      ids[i] = 11 + (int32_t)(rng >> 8) % 240;
      labels[i] = i < n / 3 ? VT_IGNORE_INDEX : ids[i]; /* a prompt, then the answer */
    }
    chat_media media[2];
    const char *paths[2] = {"a.png", "b.png"};
    int32_t nt[2];
    for (int k = 0; k < kinds[s].n_media; k++) {
      int at = kinds[s].at[k];
      ids[at] = kinds[s].kind == CHAT_MEDIA_VIDEO ? CHAT_VIDEO_ID : CHAT_IMAGE_ID;
      labels[at] = VT_IGNORE_INDEX;
      media[k] = (chat_media){at, kinds[s].kind, k};
      nt[k] = kinds[s].tiles[k];
    }
    for (size_t b = 0; b < (size_t)n_tiles * TILE * TILE * 3; b++) {
      rng = rng * 1664525u + 1013904223u;
      tiles[b] = (uint8_t)(rng >> 24);
    }
    char id[16];
    snprintf(id, sizeof id, "s%d", s);
    shard_sample_in in = {.id = id,
                          .ids = ids,
                          .labels = labels,
                          .n = (size_t)n,
                          .media = kinds[s].n_media ? media : NULL,
                          .media_path = kinds[s].n_media ? paths : NULL,
                          .n_media = (size_t)kinds[s].n_media,
                          .n_tiles = kinds[s].n_media ? nt : NULL,
                          .tiles = n_tiles ? tiles : NULL,
                          .tile_size = n_tiles ? TILE : 0};
    if (shard_write_sample(w, &in, err, sizeof err)) {
      fprintf(stderr, "%s\n", err);
      exit(1);
    }
  }
  if (shard_writer_close(w, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
}

static const char *model_json =
    "{\"model_type\": \"vita-Qwen2\", \"vocab_size\": 256, \"hidden_size\": 32,\n"
    " \"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,\n"
    " \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0,\n"
    " \"tie_word_embeddings\": false, \"image_newline_token_id\": 10,\n"
    " \"mm_projector_type\": \"mlp2x_gelu\", \"mm_hidden_size\": 128,\n"
    " \"vision_config\": {\"image_size\": 56, \"patch_size\": 14, \"hidden_size\": 32,\n"
    "   \"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,\n"
    "   \"drop_path_rate\": 0.0}}\n";

/* One SGD step; returns the step's loss (NAN on failure). */
static double run(const char *name, bool pack, int64_t batch) {
  char text[2048], path[600], err[2048];
  snprintf(text, sizeof text, "seed: 3\npack: %s\ndatasets:\n  - {name: img, shards: data}\n",
           pack ? "true" : "false");
  snprintf(path, sizeof path, "%s-mix.yaml", name);
  pack_fx_write_file(T, path, text);
  snprintf(text, sizeof text,
           "model: {config: model.json}\n"
           "data: {mixture: %s-mix.yaml, max_len: 63}\n"
           "train: {steps: 1, batch_size: %lld, seed: 5, optimizer: sgd, lr: 1.0, momentum: 0.0,\n"
           "        weight_decay: 0.0, max_grad_norm: 0.0}\n"
           "schedule: {kind: constant}\n"
           "output: {dir: %s, log_every: 0}\n",
           name, (long long)batch, name);
  snprintf(path, sizeof path, "%s.yaml", name);
  pack_fx_write_file(T, path, text);
  static stage_cfg cfg;
  snprintf(path, sizeof path, "%s/%s.yaml", T, name);
  if (stage_config_load(&cfg, path, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return NAN;
  }
  char init[600];
  snprintf(init, sizeof init, "%s/%s-initial.safetensors", T, name);
  vt_trainer_opts o = {.cfg = &cfg, .save_initial = init};
  vt_train_result r;
  if (vt_train(&o, &r, err, sizeof err)) {
    CHECK_MSG(0, "%s: %s", name, err);
    return NAN;
  }
  CHECK_MSG(r.skipped_samples == 0 && r.truncated_samples == 0, "%s: %lld skipped, %lld cut", name,
            (long long)r.skipped_samples, (long long)r.truncated_samples);
  /* both runs drew the six samples of the epoch */
  snprintf(path, sizeof path, "%s/%s/samples.json", T, name);
  char *s = ckpt_read_text(path, err, sizeof err);
  json_t *j = s ? json_loads(s, 0, NULL) : NULL;
  json_t *d = json_array_get(json_object_get(j, "datasets"), 0);
  CHECK_MSG(json_integer_value(json_object_get(d, "drawn")) == 6, "%s drew %lld samples", name,
            (long long)json_integer_value(json_object_get(d, "drawn")));
  json_decref(j);
  free(s);
  return r.first_loss;
}

static int open_pair(const char *name, st_file *w0, st_file *w1) {
  char a[600], b[600], err[512];
  snprintf(a, sizeof a, "%s/%s-initial.safetensors", T, name);
  snprintf(b, sizeof b, "%s/%s/checkpoints/step-00000001/model.safetensors", T, name);
  if (st_file_open(w0, a, err, sizeof err) || st_file_open(w1, b, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return -1;
  }
  return 0;
}

/* The gradient of tensor name: initial minus updated weights (SGD, lr 1); the initial weights'
 * magnitudes into mag (the update is rounded at them) when not NULL. */
static float *grad_of(const st_file *w0, const st_file *w1, const char *name, int64_t *n,
                      float **mag) {
  const st_tensor *a = st_find(w0, name), *b = st_find(w1, name);
  if (!a || !b || a->numel != b->numel || a->dtype != VT_F32) return NULL;
  float *g = malloc(sizeof(float) * (size_t)a->numel),
        *x = malloc(sizeof(float) * (size_t)a->numel);
  char err[256];
  st_tensor_read(a, VT_F32, g, sizeof(float) * (size_t)a->numel, err, sizeof err);
  st_tensor_read(b, VT_F32, x, sizeof(float) * (size_t)a->numel, err, sizeof err);
  for (int64_t i = 0; i < a->numel; i++) {
    float w = g[i];
    g[i] -= x[i];
    x[i] = fabsf(w) + fabsf(x[i]);
  }
  if (mag)
    *mag = x;
  else
    free(x);
  *n = a->numel;
  return g;
}

/* Tensors of stage dir's initial weights against its final ones: how many are byte-identical
 * and how many changed, each must-change tensor (matching globs; NULL: all) counted in bad when
 * it did not and every other one when it did. */
static void compare_stage(const char *dir, const char *globs, int *same, int *changed, int *bad) {
  char a[700], b[700], err[512], ck[600], root[620];
  int64_t step;
  snprintf(a, sizeof a, "%s/initial.safetensors", dir);
  snprintf(root, sizeof root, "%s/checkpoints", dir);
  *same = *changed = 0, *bad = 1;
  if (ckpt_find_latest(root, ck, sizeof ck, &step, err, sizeof err) != 1) return;
  snprintf(b, sizeof b, "%s/model.safetensors", ck);
  st_file x, y;
  if (st_file_open(&x, a, err, sizeof err)) return;
  if (st_file_open(&y, b, err, sizeof err)) {
    st_file_close(&x);
    return;
  }
  *bad = 0;
  for (int k = 0; k < x.n; k++) {
    const st_tensor *u = &x.tensors[k], *v = st_find(&y, u->name);
    bool eq = v && u->nbytes == v->nbytes && !memcmp(u->data, v->data, u->nbytes);
    bool want_change = !globs || !strncmp(u->name, globs, strlen(globs));
    if (eq == want_change) {
      (*bad)++;
      fprintf(stderr, "%s: %s %s\n", dir, u->name, eq ? "did not change" : "changed");
    }
    *same += eq, *changed += !eq;
  }
  st_file_close(&x);
  st_file_close(&y);
}

/* Whether every tensor of stage dir b's initial weights equals stage a's final one. */
static bool chained(const char *a_dir, const char *b_dir) {
  char a[700], b[700], err[512], ck[600], root[620];
  int64_t step;
  snprintf(root, sizeof root, "%s/checkpoints", a_dir);
  if (ckpt_find_latest(root, ck, sizeof ck, &step, err, sizeof err) != 1) return false;
  snprintf(a, sizeof a, "%s/model.safetensors", ck);
  snprintf(b, sizeof b, "%s/initial.safetensors", b_dir);
  st_file x, y;
  if (st_file_open(&x, a, err, sizeof err)) return false;
  if (st_file_open(&y, b, err, sizeof err)) {
    st_file_close(&x);
    return false;
  }
  bool ok = x.n == y.n;
  for (int k = 0; ok && k < x.n; k++) {
    const st_tensor *u = &x.tensors[k], *v = st_find(&y, u->name);
    ok = v && u->nbytes == v->nbytes && !memcmp(u->data, v->data, u->nbytes);
  }
  st_file_close(&x);
  st_file_close(&y);
  return ok;
}

/* Packing with max_len 16: every sample with tiles is 21 positions once expanded, so it is
 * skipped and counted, never cut through its tiles; the text-only sample (21 tokens) is cut
 * to 16 and packed alone. One step of one row draws until that sample. */
static void too_long(void) { pack_fx_too_long(T, 16, "image"); }

static void vision_curriculum(void) {
  char text[2048], path[600], err[2048];
  snprintf(text, sizeof text,
           "model:\n  config: model.json\n  parts: {vision: model.vision_tower.*, adapter: "
           "model.mm_projector.*, llm: [model.embed_tokens.*, model.layers.*, model.norm.*, "
           "lm_head.*]}\n"
           "data: {mixture: unpacked-mix.yaml, max_len: 63}\n"
           "train: {steps: 3, batch_size: 2, seed: 5, lr: 1.0e-2, weight_decay: 0.0,\n"
           "        trainable: [adapter]}\n"
           "schedule: {kind: constant}\n"
           "output: {dir: unused, log_every: 0}\n");
  pack_fx_write_file(T, "s11.yaml", text);
  pack_fx_write_file(T, "cur.yaml",
                     "output: {dir: cur}\nsave_initial: true\nstages:\n"
                     "  - s11.yaml\n"
                     "  - {config: s11.yaml, stage: s12, data.mixture: packed-mix.yaml,\n"
                     "     train.trainable: [vision, adapter, llm]}\n");
  snprintf(path, sizeof path, "%s/cur.yaml", T);
  curriculum cur;
  if (curriculum_load(&cur, path, NULL, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return;
  }
  curriculum_opts o = {.cur = &cur};
  curriculum_result r;
  if (curriculum_run(&o, &r, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    curriculum_free(&cur);
    return;
  }
  CHECK(r.done == 2 && r.ran == 2 && !r.interrupted);
  int same, changed, bad;
  compare_stage(cur.stages[0].dir, "model.mm_projector.", &same, &changed, &bad);
  CHECK_MSG(bad == 0 && changed == 4 && same > 30, "stage 1.1: %d same, %d changed, %d wrong", same,
            changed, bad);
  printf("vision stage 1.1 (adapter, unpacked): %d tensors byte-identical, the adapter's %d "
         "changed\n",
         same, changed);
  CHECK_MSG(chained(cur.stages[0].dir, cur.stages[1].dir), "stage 1.2 does not start from 1.1");
  compare_stage(cur.stages[1].dir, NULL, &same, &changed, &bad);
  CHECK_MSG(bad == 0 && same == 0 && changed > 30, "stage 1.2: %d same, %d changed, %d wrong", same,
            changed, bad);
  printf("vision stage 1.2 (everything, packed) from 1.1's weights: all %d tensors changed\n",
         changed);
  curriculum_free(&cur);
}

int main(void) {
  if (!mkdtemp(T)) return 1;
  char p[600];
  snprintf(p, sizeof p, "%s/data", T);
  char e[256];
  if (ckpt_mkdirs(p, e, sizeof e)) return 1;
  snprintf(p, sizeof p, "%s/data/shard-00000.h5", T);
  write_shard(p);
  pack_fx_write_file(T, "model.json", model_json);
  double lp = run("packed", true, 2), lu = run("unpacked", false, 6);
  printf("step-1 loss: packed %.7f, unpacked %.7f\n", lp, lu);
  CHECK_MSG(fabs(lp - lu) <= 1e-5 * fabs(lu) && lu > 1, "loss packed %.9g vs unpacked %.9g", lp,
            lu);
  st_file p0, p1, u0, u1;
  if (open_pair("packed", &p0, &p1) || open_pair("unpacked", &u0, &u1))
    return vt_test_finish("test_pack_images");
  int compared = 0, bad = 0, vision_moved = 0;
  double worst = 0;
  for (int k = 0; k < u0.n; k++) {
    const char *name = u0.tensors[k].name;
    CHECK_MSG(st_find(&p0, name) && u0.tensors[k].nbytes == st_find(&p0, name)->nbytes &&
                  !memcmp(u0.tensors[k].data, st_find(&p0, name)->data, u0.tensors[k].nbytes),
              "%s: the two runs start from different weights", name);
    int64_t n = 0, m = 0;
    float *mag = NULL;
    float *gu = grad_of(&u0, &u1, name, &n, &mag), *gp = grad_of(&p0, &p1, name, &m, NULL);
    if (!gu || !gp || n != m) {
      CHECK_MSG(0, "%s: not comparable", name);
      free(gu), free(gp), free(mag);
      continue;
    }
    double scale = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(gu[i]));
    /* f32 sums in another order (one row of three samples against three rows): 1e-5 of the
     * tensor's largest gradient; and w - g rounded at the weights' magnitude in each run (half
     * an ulp each, 2^-24 relative) */
    for (int64_t i = 0; i < n; i++) {
      double d = fabs(gp[i] - gu[i]), tol = 1e-5 * scale + 1.2e-7 * mag[i] + 1e-12;
      if (d > tol) {
        if (bad++ < 5)
          fprintf(stderr, "%s[%lld]: packed %g, unpacked %g\n", name, (long long)i, gp[i], gu[i]);
      }
      if (scale > 0) worst = fmax(worst, fmax(d - 1.2e-7 * mag[i], 0) / scale);
    }
    if (!strncmp(name, "model.vision_tower.", 19) && scale > 1e-6) vision_moved++;
    compared++;
    free(gu), free(gp), free(mag);
  }
  CHECK_MSG(bad == 0, "%d gradient elements differ", bad);
  CHECK_MSG(compared == u0.n && compared > 30, "%d of %d tensors compared", compared, u0.n);
  CHECK_MSG(vision_moved > 10, "only %d vision tower tensors have a gradient", vision_moved);
  printf("gradients of %d tensors agree (largest difference beyond the update's rounding: %.2g "
         "of the tensor's largest gradient); %d vision tower tensors have one\n",
         compared, worst, vision_moved);
  st_file_close(&p0), st_file_close(&p1), st_file_close(&u0), st_file_close(&u1);
  too_long();
  vision_curriculum();
  if (!vt_test_failures) ckpt_remove_tree(T, p, sizeof p);
  return vt_test_finish("test_pack_images");
}
