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
static void write_shard(void) {
  shard_writer *w = pack_fx_shard_open(T);
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
    pack_fx_shard_add(w, &in);
  }
  pack_fx_shard_close(w);
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

static const pack_fx_data data = {"img", 63, "", 6};

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
  write_shard();
  pack_fx_write_file(T, "model.json", model_json);
  double lp = pack_fx_step(T, &data, "packed", true, 2),
         lu = pack_fx_step(T, &data, "unpacked", false, 6);
  printf("step-1 loss: packed %.7f, unpacked %.7f\n", lp, lu);
  CHECK_MSG(fabs(lp - lu) <= 1e-5 * fabs(lu) && lu > 1, "loss packed %.9g vs unpacked %.9g", lp,
            lu);
  int vision_moved;
  double worst;
  int compared = pack_fx_grads_agree(T, (const char *const[]){"model.vision_tower.", NULL},
                                     &vision_moved, &worst);
  if (!compared) return vt_test_finish("test_pack_images");
  CHECK_MSG(vision_moved > 10, "only %d vision tower tensors have a gradient", vision_moved);
  printf("gradients of %d tensors agree (largest difference beyond the update's rounding: %.2g "
         "of the tensor's largest gradient); %d vision tower tensors have one\n",
         compared, worst, vision_moved);
  too_long();
  vision_curriculum();
  if (!vt_test_failures) ckpt_remove_tree(T, p, sizeof p);
  return vt_test_finish("test_pack_images");
}
