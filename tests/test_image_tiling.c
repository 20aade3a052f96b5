// ctest-labels: unit
/* Dynamic tiling against the public loader's Python (dynamic_preprocess + transformers'
 * CLIPImageProcessor, in tests/reference/gen_image_fixtures.py): the grid choice with its tie
 * rule over many sizes and tile limits, and the normalised tiles (per-tile sums and sampled
 * values) for plain, padded and limited tilings and for single video frames. */
#include "data/tiling.h"
#include "tests/check.h"
#include "tests/fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char fx_dir[4096];

static const char *fx(const char *name) {
  static char p[8192];
  snprintf(p, sizeof p, "%s/image/%s", fx_dir, name);
  return p;
}

static void test_grids(const vt_fixture *ref) {
  const vt_fixture_tensor *g = vt_fixture_get(ref, "grids");
  tile_cfg c = tile_cfg_default();
  long bad = 0;
  for (int64_t k = 0; k < g->shape[0]; k++) {
    const int32_t *r = g->i + k * 5;
    c.max_tiles = r[2];
    int cols, rows;
    tile_choose_grid(r[0], r[1], &c, &cols, &rows);
    if (cols != r[3] || rows != r[4]) {
      if (bad++ < 5)
        fprintf(stderr, "%dx%d max %d: grid %dx%d, the loader picks %dx%d\n", r[0], r[1], r[2],
                cols, rows, r[3], r[4]);
    }
  }
  CHECK_MSG(bad == 0, "%ld of %lld grid choices differ", bad, (long long)g->shape[0]);
  /* the tie rule by hand: a square image gets 1x1, 2x2 or 3x3 by its area */
  c.max_tiles = 12;
  int cols, rows;
  tile_choose_grid(448, 448, &c, &cols, &rows);
  CHECK(cols == 1 && rows == 1);
  tile_choose_grid(634, 634, &c, &cols, &rows); /* 634^2 > 0.5 * 448^2 * 4 */
  CHECK(cols == 2 && rows == 2);
  tile_choose_grid(633, 633, &c, &cols, &rows);
  CHECK(cols == 1 && rows == 1);
  tile_choose_grid(1000, 250, &c, &cols, &rows); /* 4:1 is a grid of its own */
  CHECK(cols == 4 && rows == 1);
}

/* The tiles' normalised values against the reference: sums per tile and channel (f64 sums of
 * 448^2 values, tolerance 2e-3 absolute: a few f32 roundings each) and sampled values at
 * 1e-5 + 1e-5 relative (uint8 tiles equal, so only the normalisation's rounding differs). */
static void compare_tiles(const char *what, const float *px, int n, const vt_fixture *ref,
                          const char *key) {
  char k[64];
  snprintf(k, sizeof k, "%s_sums", key);
  const vt_fixture_tensor *sums = vt_fixture_get(ref, k);
  snprintf(k, sizeof k, "%s_idx", key);
  const vt_fixture_tensor *idx = vt_fixture_get(ref, k);
  snprintf(k, sizeof k, "%s_vals", key);
  const vt_fixture_tensor *vals = vt_fixture_get(ref, k);
  CHECK_MSG(sums->shape[0] == n, "%s: %d tiles, reference %lld", what, n,
            (long long)sums->shape[0]);
  if (sums->shape[0] != n) return;
  size_t plane = 448 * 448;
  float got[64 * 3];
  for (int t = 0; t < n; t++)
    for (int c = 0; c < 3; c++) {
      double s = 0;
      for (size_t p = 0; p < plane; p++) s += px[((size_t)t * 3 + c) * plane + p];
      got[t * 3 + c] = (float)s;
    }
  CHECK_CLOSE(what, got, sums->f, n * 3, 2e-3, 1e-6);
  float *sampled = malloc(sizeof(float) * (size_t)vals->n);
  for (long i = 0; i < vals->n; i++) {
    const int32_t *q = idx->i + i * 4;
    sampled[i] = px[(((size_t)q[0] * 3 + q[1]) * 448 + q[2]) * 448 + q[3]];
  }
  CHECK_CLOSE(what, sampled, vals->f, vals->n, 1e-5, 1e-5);
  free(sampled);
}

static void test_tiling(const vt_fixture *ref) {
  static const struct {
    const char *file;
    int max;
    bool pad;
  } cases[] = {{"photo_a.png", 12, false},
               {"photo_b.png", 12, true},
               {"photo_b.png", 3, false},
               {"synth_rgb.png", 12, false}};
  char err[1024];
  for (int k = 0; k < 4; k++) {
    img_rgb im;
    CHECK(img_decode_file(fx(cases[k].file), 0, &im, err, sizeof err) == IMG_OK);
    tile_cfg c = tile_cfg_default();
    c.max_tiles = cases[k].max;
    c.pad = cases[k].pad;
    tile_set ts;
    CHECK(tile_image(&im, &c, &ts) == 0);
    char key[32], what[96];
    snprintf(key, sizeof key, "tiling%d_grid", k);
    const vt_fixture_tensor *g = vt_fixture_get(ref, key);
    CHECK_MSG(ts.cols == g->i[0] && ts.rows == g->i[1] && ts.n == g->i[2],
              "%s: grid %dx%d + %d, the loader %dx%d, %d tiles", cases[k].file, ts.cols, ts.rows,
              ts.n, g->i[0], g->i[1], g->i[2]);
    float *px = malloc(sizeof(float) * (size_t)ts.n * 3 * 448 * 448);
    for (int t = 0; t < ts.n; t++)
      tile_normalize(ts.px + (size_t)t * 448 * 448 * 3, 448, px + (size_t)t * 3 * 448 * 448);
    snprintf(key, sizeof key, "tiling%d", k);
    snprintf(what, sizeof what, "%s max %d%s", cases[k].file, cases[k].max,
             cases[k].pad ? " pad" : "");
    compare_tiles(what, px, ts.n, ref, key);
    free(px);
    tile_set_free(&ts);
    img_free(&im);
  }
  /* a video frame: one tile, shortest edge to 448 and centre crop */
  static const char *const frames[] = {"photo_b.png", "synth_rgb.png"};
  for (int k = 0; k < 2; k++) {
    img_rgb im;
    CHECK(img_decode_file(fx(frames[k]), 0, &im, err, sizeof err) == IMG_OK);
    tile_cfg c = tile_cfg_default();
    uint8_t *u8 = malloc(448 * 448 * 3);
    float *px = malloc(sizeof(float) * 3 * 448 * 448);
    CHECK(tile_frame(&im, &c, u8) == 0);
    tile_normalize(u8, 448, px);
    char key[32];
    snprintf(key, sizeof key, "frame%d", k);
    compare_tiles(frames[k], px, 1, ref, key);
    free(u8);
    free(px);
    img_free(&im);
  }
}

static void test_normalize(void) {
  uint8_t t[2 * 2 * 3] = {0, 128, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90};
  float o[12];
  tile_normalize(t, 2, o);
  CHECK(fabsf(o[0] - (0.0f - 0.485f) / 0.229f) < 1e-6f);               /* R of pixel 0 */
  CHECK(fabsf(o[4] - (128.0f / 255.0f - 0.456f) / 0.224f) < 1e-6f);    /* G plane, pixel 0 */
  CHECK(fabsf(o[8 + 3] - (90.0f / 255.0f - 0.406f) / 0.225f) < 1e-6f); /* B plane, pixel 3 */
}

int main(void) {
  const char *f = getenv("VT_FIXTURES");
  snprintf(fx_dir, sizeof fx_dir, "%s", f ? f : "tests/fixtures");
  vt_fixture *ref = vt_fixture_load("image/image_ref.txt");
  test_grids(ref);
  test_tiling(ref);
  test_normalize();
  vt_fixture_free(ref);
  return vt_test_finish("test_image_tiling");
}
