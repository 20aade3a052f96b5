// ctest-labels: unit grad
/* Frozen parts off the tape keep only their layers' outputs (autograd vt_transient, used by
 * nn_layer_forward): a step through a frozen vision tower into a trainable adapter gives
 * bit-identical hidden states, loss and adapter gradients whether the tower's values are kept
 * (its input made to need a gradient, which puts the tower on the tape) or freed layer by
 * layer, with and without recompute, and the arena's high-water mark falls to about one
 * layer's values plus the layers' outputs. vt_transient itself: bit-identical outputs when the
 * arena grows a block inside the segment (the output's new place overlaps the stage), and
 * nothing freed when the segment records on the tape. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/recompute.h"
#include "model/model_cost.h"
#include "model/vit.h"
#include "tests/check.h"
#include "tests/testutil.h"

enum { N = 4, SIDE = 56, LAYERS = 4, HID = 32, LLM = 24 };

typedef struct {
  float loss;
  float *hid, *grad;
  size_t high_water;
  int64_t n_hid;
  size_t n_grad, tower_high_water;
  vit_cfg cfg;
} result;

/* One step; tape: the pixels need a gradient, so the frozen tower is recorded (the old
 * behaviour, every forward value kept until the step ends). */
static result step(bool tape, bool recompute) {
  char err[512];
  vit_cfg cfg = {.image_size = SIDE,
                 .patch_size = 14,
                 .hidden_size = HID,
                 .intermediate_size = 4 * HID,
                 .num_hidden_layers = LAYERS,
                 .num_attention_heads = 2,
                 .layer_norm_eps = 1e-6,
                 .initializer_range = 0.02,
                 .initializer_factor = 0.1,
                 .downsample = 2,
                 .feature_scale = 0.5f,
                 .recompute = recompute};
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vit m;
  vit_adapter ad;
  CHECK_MSG(vit_init(&m, &ps, &cfg, "tower", err, sizeof err) == 0, "%s", err);
  CHECK_MSG(vit_adapter_init(&ad, &ps, "adapter", 4 * HID, LLM, err, sizeof err) == 0, "%s", err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_params_set_trainable(&ps, "tower.*", false) > 0);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 7);
  vit_init_weights(&m, &rng);
  vit_adapter_init_weights(&ad, &rng, 0.05f);
  float *px = malloc(sizeof(float) * N * 3 * SIDE * SIDE);
  for (int i = 0; i < N * 3 * SIDE * SIDE; i++) px[i] = vt_rng_normal(&rng);

  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *tp = vt_from_host(ctx, VT_F32, 4, (int64_t[]){N, 3, SIDE, SIDE}, px);
  if (tape) vt_requires_grad(ctx, tp);
  size_t pixels_hw = vt_ctx_arena_high_water(ctx); /* the batch's input: no part's values */
  vt_tensor *hid = vit_hidden(&m, ctx, tp, NULL);
  int64_t g = SIDE / 14;
  size_t tower_hw = vt_ctx_arena_high_water(ctx) - pixels_hw;
  vt_tensor *tok = vit_adapter_forward(&ad, ctx, vit_features(&m, ctx, hid, g, g));
  vt_tensor *loss = vt_mean(ctx, vt_mul(ctx, tok, tok), VT_ALL_AXES, false);
  result r = {.n_hid = vt_numel(hid)};
  r.tower_high_water = tower_hw; /* the tower's forward alone */
  r.hid = malloc(sizeof(float) * (size_t)r.n_hid);
  vt_to_host(ctx, hid, r.hid);
  r.loss = vt_item(ctx, loss);
  r.high_water = vt_ctx_arena_high_water(ctx); /* the forward's: backward differs (tape) */
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  r.grad = malloc(sizeof(float) * ps.grad_numel);
  vt_params_grad_to_host(&ps, r.grad);
  CHECK(vt_params_count(&ps, true) == (size_t)vit_adapter_param_count(4 * HID, LLM));
  r.n_grad = ps.grad_numel;
  r.cfg = cfg;
  vt_ctx_free(ctx);
  vit_free(&m);
  vt_params_free(&ps);
  free(px);
  return r;
}

static void same(const char *what, const result *a, const result *b) {
  CHECK_MSG(a->loss == b->loss, "%s: loss %.9g vs %.9g", what, a->loss, b->loss);
  CHECK_MSG(!memcmp(a->hid, b->hid, sizeof(float) * (size_t)a->n_hid), "%s: hidden states differ",
            what);
  CHECK_MSG(a->n_grad == b->n_grad && !memcmp(a->grad, b->grad, sizeof(float) * a->n_grad),
            "%s: adapter gradients differ", what);
}

static void release(result *r) {
  free(r->hid);
  free(r->grad);
}

static vt_tensor *seg(vt_ctx *ctx, vt_tensor *const *in, int n_in, void *user) {
  (void)n_in, (void)user;
  vt_tensor *h = in[0];
  for (int i = 0; i < 3; i++) h = vt_add(ctx, vt_gelu_erf(ctx, vt_mul(ctx, h, h)), in[0]);
  return h;
}

/* vt_transient on a ctx whose first block is small, so the segment grows the arena. */
static void transient_blocks(void) {
  enum { R = 64, C = 256 };
  const char *e = NULL;
  float *x = malloc(sizeof(float) * R * C), *y0 = malloc(sizeof(float) * R * C),
        *y1 = malloc(sizeof(float) * R * C);
  for (int i = 0; i < R * C; i++) x[i] = (float)(i % 97) / 97.0f - 0.5f;
  for (int pass = 0; pass < 2; pass++) {
    vt_ctx *ctx =
        vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}, .arena_bytes = 80 << 10}, &e);
    CHECK(ctx != NULL);
    vt_tensor *t = vt_from_host(ctx, VT_F32, 2, (int64_t[]){R, C}, x);
    vt_tensor *y = pass ? vt_transient(ctx, seg, NULL, 1, &t) : seg(ctx, &t, 1, NULL);
    CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
    /* later allocations (zero-filled) must not land on the kept output */
    vt_zeros(ctx, VT_F32, 2, (int64_t[]){R, C});
    vt_zeros(ctx, VT_F32, 2, (int64_t[]){R, C});
    vt_to_host(ctx, y, pass ? y1 : y0);
    vt_ctx_free(ctx);
  }
  CHECK(!memcmp(y0, y1, sizeof(float) * R * C));
  /* on the tape: nothing is freed, and the gradient flows */
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *t = vt_from_host(ctx, VT_F32, 2, (int64_t[]){R, C}, x);
  vt_requires_grad(ctx, t);
  vt_tensor *y = vt_transient(ctx, seg, NULL, 1, &t);
  CHECK(y->requires_grad);
  CHECK(vt_backward(ctx, vt_mean(ctx, y, VT_ALL_AXES, false)));
  vt_ctx_free(ctx);
  free(x), free(y0), free(y1);
}

int main(void) {
  result kept = step(true, false), freed = step(false, false);
  result kept_rc = step(true, true), freed_rc = step(false, true);
  same("frozen tower, freed vs kept", &freed, &kept);
  same("frozen tower under recompute, freed vs kept", &freed_rc, &kept);
  same("recompute, kept", &kept_rc, &kept);
  /* kept, every value of the 4 layers stays (each layer makes about 20 hidden-state-sized
   * values and its attention scores); freed, the stem's values (the patch permutes), the
   * layers' outputs and one layer's values */
  double out_bytes = 4.0 * N * (1 + (SIDE / 14) * (SIDE / 14)) * HID;
  printf("arena high-water after the forward: tower kept %zu B, freed %zu B (%.2f); under "
         "recompute %zu B; "
         "one hidden state %.0f B\n",
         kept.high_water, freed.high_water, (double)freed.high_water / (double)kept.high_water,
         freed_rc.high_water, out_bytes);
  CHECK_MSG(freed.high_water < kept.high_water * 0.6, "freed %zu vs kept %zu", freed.high_water,
            kept.high_water);
  CHECK_MSG(freed_rc.high_water <= freed.high_water, "recompute %zu vs %zu", freed_rc.high_water,
            freed.high_water);
  /* the plan's count of a frozen tower (model_cost_vit: what `vita plan` adds for it) */
  vt_model_cost vis, ad;
  model_cost_vit(&freed.cfg, LLM, &(vt_model_shape){.batch = 1, .tiles = N}, "tower.*", "adapter.*",
                 &vis, &ad);
  printf("frozen tower forward: plan %.0f B, measured %zu B (%.3f); kept %zu B\n",
         vis.act_bytes_frozen, freed.tower_high_water,
         vis.act_bytes_frozen / (double)freed.tower_high_water, kept.tower_high_water);
  CHECK_MSG(fabs(vis.act_bytes_frozen / (double)freed.tower_high_water - 1) < 0.2,
            "plan %.0f vs measured %zu", vis.act_bytes_frozen, freed.tower_high_water);
  release(&kept), release(&freed), release(&kept_rc), release(&freed_rc);
  transient_blocks();
  return vt_test_finish("test_frozen_rewind");
}
