// ctest-labels: unit grad
/* Parity of model/vit.c with a PyTorch InternViT-shaped tower and mlp2x_gelu adapter
 * (tests/reference/gen_vit_fixtures.py, weights under the HF InternViT names): the last hidden
 * state, the adapter output and the gradient of every parameter of sum(out * w), at the
 * position table's grid and at a larger grid (positions resized bicubically), with and without
 * recompute; and the pixel-shuffle order on its own against DESIGN.md's formula. */
#include <stdlib.h>
#include <string.h>

#include "model/vit.h"
#include "tests/parity.h"
#include "tests/testutil.h"

#define FX "vit_tiny"

/* f32 through two layers of dot products of length <= 588 (the patch GEMM): errors of
 * sqrt(K) ulps compound over the layers; 256 ulps of the largest value has room for that, and
 * a wrong formula or order is off by far more. */
#define REL (256 * 1.1920929e-7)

static void run(const char *tag, bool recompute) {
  char err[512];
  vit_cfg cfg = {.image_size = 56,
                 .patch_size = 14,
                 .hidden_size = 32,
                 .intermediate_size = 64,
                 .num_hidden_layers = 2,
                 .num_attention_heads = 2,
                 .layer_norm_eps = 1e-6,
                 .drop_path_rate = 0.1, /* eval mode below: no effect */
                 .initializer_range = 0.02,
                 .initializer_factor = 0.1,
                 .downsample = 2,
                 .feature_scale = 0.5f,
                 .recompute = recompute};
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vit m;
  vit_adapter ad;
  CHECK_MSG(vit_init(&m, &ps, &cfg, "", err, sizeof err) == 0, "%s", err);
  CHECK_MSG(vit_adapter_init(&ad, &ps, "mm_projector", 128, 24, err, sizeof err) == 0, "%s", err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK((int64_t)vt_params_count(&ps, false) ==
        vit_param_count(&cfg) + vit_adapter_param_count(128, 24));
  int tensors = parity_load_weights(&ps, FX, (const char *[]){"model.safetensors", NULL});
  st_file ref;
  CHECK(parity_open(&ref, FX, "reference.safetensors"));
  CHECK_MSG(tensors == ps.n, "the file has %d tensors, the model %d", tensors, ps.n);

  char key[256];
  int64_t n_px, n_w, n_h, n_out;
  const st_tensor *tpx;
  snprintf(key, sizeof key, "%s.pixel_values", tag);
  float *px = parity_read(&ref, key, VT_F32, &n_px);
  tpx = st_find(&ref, key);
  snprintf(key, sizeof key, "%s.w", tag);
  float *wt = parity_read(&ref, key, VT_F32, &n_w);
  snprintf(key, sizeof key, "%s.vision_hidden", tag);
  float *want_h = parity_read(&ref, key, VT_F32, &n_h);
  snprintf(key, sizeof key, "%s.vision_tokens", tag);
  float *want_out = parity_read(&ref, key, VT_F32, &n_out);
  int64_t n = tpx->shape[0], side = tpx->shape[2], g = side / 14;

  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_params_zero_grad(&ps);
  vt_tensor *tp = vt_from_host(ctx, VT_F32, 4, (int64_t[]){n, 3, side, side}, px);
  vt_tensor *hid = vit_hidden(&m, ctx, tp, NULL);
  vt_tensor *out = vit_adapter_forward(&ad, ctx, vit_features(&m, ctx, hid, g, g));
  vt_tensor *loss = vt_sum(ctx, vt_mul(ctx, out, vt_from_host(ctx, VT_F32, 3, out->shape, wt)),
                           VT_ALL_AXES, false);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  CHECK(vt_numel(hid) == n_h && vt_numel(out) == n_out);
  float *got = malloc(sizeof(float) * (size_t)(n_h > n_out ? n_h : n_out));
  char what[64];
  vt_to_host(ctx, hid, got);
  snprintf(what, sizeof what, "%s vision_hidden", tag);
  CHECK_CLOSE(what, got, want_h, (long)n_h, REL * parity_max_abs(want_h, n_h), REL);
  vt_to_host(ctx, out, got);
  snprintf(what, sizeof what, "%s vision_tokens", tag);
  CHECK_CLOSE(what, got, want_out, (long)n_out, REL * parity_max_abs(want_out, n_out), REL);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  snprintf(key, sizeof key, "%s.grad.", tag);
  int compared = parity_check_grads(ctx, &ps, &ref, key, REL);
  CHECK_MSG(compared == (!strcmp(tag, "native") ? ps.n : 1), "%s: %d gradients compared", tag,
            compared);
  vt_ctx_free(ctx);
  free(px), free(wt), free(want_h), free(want_out), free(got);
  st_file_close(&ref);
  vit_free(&m);
  vt_params_free(&ps);
}

/* DESIGN.md §4: token Y * 16 + X, channel (y % 2) * 2C + (x % 2) * C + c for patch (y, x). */
static void test_pixel_shuffle(void) {
  const int64_t n = 2, gh = 4, gw = 6, c = 3;
  float *x = malloc(sizeof(float) * (size_t)(n * gh * gw * c));
  for (int64_t b = 0; b < n; b++)
    for (int64_t t = 0; t < gh * gw; t++)
      for (int64_t k = 0; k < c; k++)
        x[(b * gh * gw + t) * c + k] = (float)(b * 100000 + t * 100 + k);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *y =
      vit_pixel_shuffle(ctx, vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, gh * gw, c}, x), gh, gw);
  CHECK(y->ndim == 3 && y->shape[1] == (gh / 2) * (gw / 2) && y->shape[2] == 4 * c);
  float *o = malloc(sizeof(float) * (size_t)vt_numel(y));
  vt_to_host(ctx, y, o);
  long bad = 0;
  for (int64_t b = 0; b < n; b++)
    for (int64_t py = 0; py < gh; py++)
      for (int64_t pxx = 0; pxx < gw; pxx++)
        for (int64_t k = 0; k < c; k++) {
          int64_t tok = (py / 2) * (gw / 2) + pxx / 2;
          int64_t ch = (py % 2) * 2 * c + (pxx % 2) * c + k;
          float want = (float)(b * 100000 + (py * gw + pxx) * 100 + k);
          bad += o[(b * (gh / 2) * (gw / 2) + tok) * 4 * c + ch] != want;
        }
  CHECK_MSG(bad == 0, "%ld values out of place", bad);
  /* an odd grid is an error, not a crash */
  vt_tensor *e = vit_pixel_shuffle(ctx, vt_zeros(ctx, VT_F32, 3, (int64_t[]){1, 9, 2}), 3, 3);
  (void)e;
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "vit_pixel_shuffle"));
  vt_ctx_free(ctx);
  free(x);
  free(o);
}

static void test_counts(void) {
  /* the full-size parts (DESIGN.md: about 0.30B tower, 27.5M adapter) */
  vit_cfg c = vit_cfg_300m();
  int64_t t = vit_param_count(&c), a = vit_adapter_param_count(4096, 3584);
  printf("InternViT-300M: %lld parameters, mlp2x_gelu adapter: %lld\n", (long long)t, (long long)a);
  CHECK(t > 300000000 && t < 310000000);
  CHECK(a == 4096LL * 3584 + 3584 + 3584LL * 3584 + 3584);
  char err[256];
  c.image_size = 450;
  CHECK(vit_cfg_check(&c, err, sizeof err) == -1 && strstr(err, "image_size 450"));
}

int main(void) {
  run("native", false);
  run("native", true);
  run("resized", false);
  test_pixel_shuffle();
  test_counts();
  return vt_test_finish("test_vit_parity");
}
