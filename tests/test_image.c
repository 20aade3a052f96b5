// ctest-labels: unit
/* Images: decoding of every kind (against Pillow's convert("RGB")), the bicubic resize (against
 * Pillow's BICUBIC on real photographs and synthetic images), and bad input (corrupt,
 * truncated, zero-size, unknown, decompression bomb, CMYK) turned into statuses, never crashes.
 * References: tests/fixtures/image, from tests/reference/gen_image_fixtures.py. */
#include "data/image.h"
#include "tests/check.h"
#include "tests/fixture.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fx_dir[4096];

static const char *fx(const char *name) {
  static char p[8192];
  snprintf(p, sizeof p, "%s/image/%s", fx_dir, name);
  return p;
}

static uint8_t *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)len + 1);
  *n = fread(b, 1, (size_t)len, f);
  fclose(f);
  return b;
}

/* Largest difference between an image and a fixture tensor [h, w, 3] sampled with stride. */
static int max_diff(const img_rgb *im, const vt_fixture_tensor *t, int stride, double *mean) {
  int worst = 0;
  double sum = 0;
  long n = 0;
  for (int64_t y = 0; y < t->shape[0]; y++)
    for (int64_t x = 0; x < t->shape[1]; x++)
      for (int c = 0; c < 3; c++) {
        int a = im->px[((y * stride) * im->w + x * stride) * 3 + c];
        int b = t->i[(y * t->shape[1] + x) * 3 + c];
        int d = abs(a - b);
        if (d > worst) worst = d;
        sum += d;
        n++;
      }
  if (mean) *mean = sum / (double)n;
  return worst;
}

static void test_decode_kinds(const vt_fixture *ref) {
  /* lossless formats: exactly what Pillow's convert("RGB") gives */
  static const char *const lossless[][2] = {
      {"synth_rgb.png", "synth_rgb_png"},     {"synth.bmp", "synth_bmp"},
      {"synth_gray.png", "synth_gray_png"},   {"synth_la.png", "synth_la_png"},
      {"synth_rgba.png", "synth_rgba_png"},   {"synth_pal.png", "synth_pal_png"},
      {"synth_rgb16.png", "synth_rgb16_png"}, {"synth.gif", "synth_gif"},
      {"synth_rgb16.png", "synth_rgb16_high"}};
  char err[1024];
  for (size_t k = 0; k < sizeof lossless / sizeof lossless[0]; k++) {
    img_rgb im;
    img_status st = img_decode_file(fx(lossless[k][0]), 0, &im, err, sizeof err);
    CHECK_MSG(st == IMG_OK, "%s: %s", lossless[k][0], err);
    if (st) continue;
    const vt_fixture_tensor *t = vt_fixture_get(ref, lossless[k][1]);
    CHECK_MSG(im.w == t->shape[1] && im.h == t->shape[0], "%s: %dx%d", lossless[k][0], im.w, im.h);
    if (im.w == t->shape[1] && im.h == t->shape[0]) {
      int d = max_diff(&im, t, 1, NULL);
      CHECK_MSG(d == 0, "%s: max difference %d from Pillow", lossless[k][0], d);
    }
    img_free(&im);
  }
  /* JPEG: decoders may differ in IDCT rounding and chroma upsampling (the standard allows it:
   * stb_image vs libjpeg-turbo; measured: mean 0.01-0.03 levels, max 2). Tolerance: mean
   * |diff| <= 0.25 levels, max <= 6 levels. */
  static const char *const jpegs[][2] = {{"photo_baseline.jpg", "photo_baseline"},
                                         {"photo_progressive.jpg", "photo_progressive"}};
  for (int k = 0; k < 2; k++) {
    img_rgb im;
    img_status st = img_decode_file(fx(jpegs[k][0]), 0, &im, err, sizeof err);
    CHECK_MSG(st == IMG_OK, "%s: %s", jpegs[k][0], err);
    if (st) continue;
    char key[64];
    snprintf(key, sizeof key, "%s_size", jpegs[k][1]);
    const vt_fixture_tensor *sz = vt_fixture_get(ref, key);
    CHECK(im.w == sz->i[0] && im.h == sz->i[1]);
    snprintf(key, sizeof key, "%s_grid", jpegs[k][1]);
    double mean;
    int d = max_diff(&im, vt_fixture_get(ref, key), 8, &mean);
    printf("%s: %dx%d, vs Pillow: mean |diff| %.3f, max %d\n", jpegs[k][0], im.w, im.h, mean, d);
    CHECK_MSG(mean <= 0.25 && d <= 6, "%s: mean %.3f max %d", jpegs[k][0], mean, d);
    img_free(&im);
  }
}

static void test_resize(const vt_fixture *ref) {
  static const char *const src[] = {
      "photo_a.png",   "photo_a.png",   "photo_b.png",   "photo_b.png",   "photo_b.png",
      "synth_rgb.png", "synth_rgb.png", "synth_rgb.png", "synth_rgb.png", "synth_rgb.png"};
  const vt_fixture_tensor *sizes = vt_fixture_get(ref, "resize_sizes");
  char err[1024], name[64];
  for (int k = 0; k < 10; k++) {
    img_rgb in, want, got;
    snprintf(name, sizeof name, "resize_%d.png", k);
    CHECK(img_decode_file(fx(src[k]), 0, &in, err, sizeof err) == IMG_OK);
    CHECK(img_decode_file(fx(name), 0, &want, err, sizeof err) == IMG_OK);
    int w = sizes->i[k * 2], h = sizes->i[k * 2 + 1];
    CHECK(img_resize_bicubic(&in, w, h, &got) == 0);
    /* Pillow's fixed-point arithmetic is reproduced step by step: tolerance 0 levels */
    long bad = 0;
    int worst = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
      int d = abs(got.px[i] - want.px[i]);
      bad += d != 0;
      if (d > worst) worst = d;
    }
    CHECK_MSG(bad == 0, "%s %dx%d -> %dx%d: %ld bytes differ from Pillow, max %d", src[k], in.w,
              in.h, w, h, bad, worst);
    img_free(&in);
    img_free(&want);
    img_free(&got);
  }
}

/* Writes len bytes of buf to a temporary file, with byte at flip (if >= 0) xor 0x5A. */
static void write_variant(const char *path, const uint8_t *buf, size_t len, long flip) {
  FILE *f = fopen(path, "wb");
  for (size_t i = 0; i < len; i++) fputc((long)i == flip ? buf[i] ^ 0x5A : buf[i], f);
  fclose(f);
}

static void test_bad_input(void) {
  char err[1024], tmp[] = "/tmp/vt_test_image_XXXXXX";
  CHECK(mkdtemp(tmp) != NULL);
  char path[4200];
  snprintf(path, sizeof path, "%s/x", tmp);
  img_rgb im;
  img_status st;

  st = img_decode_file("/nonexistent/a.jpg", 0, &im, err, sizeof err);
  CHECK(st == IMG_UNREADABLE && strstr(err, "/nonexistent/a.jpg"));
  st = img_decode_file(tmp, 0, &im, err, sizeof err);
  CHECK_MSG(st == IMG_UNREADABLE, "a directory: %d %s", st, err);
  write_variant(path, (const uint8_t *)"", 0, -1);
  st = img_decode_file(path, 0, &im, err, sizeof err);
  CHECK_MSG(st == IMG_EMPTY && strstr(err, "0 bytes"), "%d %s", st, err);
  write_variant(path, (const uint8_t *)"hello world, not an image", 25, -1);
  st = img_decode_file(path, 0, &im, err, sizeof err);
  CHECK_MSG(st == IMG_UNKNOWN, "%d %s", st, err);

  st = img_decode_file(fx("bomb.png"), 0, &im, err, sizeof err);
  CHECK_MSG(st == IMG_TOO_LARGE && strstr(err, "10000 x 10000") && strstr(err, "89478485"), "%d %s",
            st, err);
  st = img_decode_file(fx("synth_rgb.png"), 29 * 19 - 1, &im, err, sizeof err);
  CHECK_MSG(st == IMG_TOO_LARGE, "limit below the size: %d %s", st, err);
  st = img_decode_file(fx("cmyk.jpg"), 0, &im, err, sizeof err);
  CHECK_MSG(st == IMG_CMYK && strstr(err, "CMYK"), "%d %s", st, err);

  /* every format, truncated at several points and with flipped bytes: a status, never a
   * crash, and truncation named as such where the structure shows it */
  static const char *const files[] = {"photo_baseline.jpg", "photo_progressive.jpg",
                                      "synth_rgb.png",      "synth_pal.png",
                                      "synth.bmp",          "synth.gif"};
  for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
    size_t n;
    uint8_t *b = slurp(fx(files[k]), &n);
    CHECK(b != NULL);
    if (!b) continue;
    /* the GIF holds two frames; only the first is decoded, so cut inside it */
    bool gif = strstr(files[k], ".gif") != NULL;
    static const double cuts[] = {0.02, 0.3, 0.6, 0.95}, gif_cuts[] = {0.02, 0.1, 0.2, 0.3};
    for (int c = 0; c < 4; c++) {
      size_t len = (size_t)((gif ? gif_cuts : cuts)[c] * (double)n);
      if (len < 1) len = 1;
      write_variant(path, b, len, -1);
      st = img_decode_file(path, 0, &im, err, sizeof err);
      CHECK_MSG(st == IMG_TRUNCATED || st == IMG_CORRUPT || st == IMG_UNKNOWN,
                "%s cut to %zu of %zu bytes: status %d", files[k], len, n, st);
      if (c >= 1)
        CHECK_MSG(st == IMG_TRUNCATED, "%s cut to %zu bytes: %s (%s)", files[k], len,
                  img_status_name(st), err);
      if (st == IMG_OK) img_free(&im);
    }
    if (gif) { /* cut inside the second frame: the first still decodes */
      write_variant(path, b, n - 20, -1);
      st = img_decode_file(path, 0, &im, err, sizeof err);
      CHECK_MSG(st == IMG_OK, "GIF cut in its second frame: %s", err);
      if (st == IMG_OK) img_free(&im);
    }
    for (int f = 1; f < 40; f++) { /* flips anywhere: decoded or refused, both are fine */
      write_variant(path, b, n, (long)((double)n * f / 40.0));
      st = img_decode_file(path, 0, &im, err, sizeof err);
      CHECK(st >= IMG_OK && st < IMG_N_STATUS);
      if (st == IMG_OK) img_free(&im);
    }
    free(b);
  }
  /* a flipped byte inside a PNG chunk is caught by its CRC */
  size_t n;
  uint8_t *b = slurp(fx("synth_rgb.png"), &n);
  write_variant(path, b, n, (long)n / 2);
  st = img_decode_file(path, 0, &im, err, sizeof err);
  CHECK_MSG(st == IMG_CORRUPT && strstr(err, "CRC"), "%d %s", st, err);
  free(b);
  unlink(path);
  rmdir(tmp);
}

static void test_crop_pad(void) {
  img_rgb a, c, p;
  CHECK(img_alloc(&a, 5, 3) == 0);
  for (int i = 0; i < 45; i++) a.px[i] = (uint8_t)i;
  CHECK(img_crop(&a, 1, 1, 3, 2, &c) == 0);
  CHECK(c.px[0] == (1 * 5 + 1) * 3 && c.px[3 * 3 + 2] == (2 * 5 + 1) * 3 + 2);
  CHECK(img_crop(&a, 3, 0, 3, 1, &p) == -1); /* outside */
  const uint8_t bg[3] = {9, 8, 7};
  CHECK(img_pad_square(&a, bg, &p) == 0);
  CHECK(p.w == 5 && p.h == 5);
  CHECK(p.px[0] == 9 && p.px[2] == 7); /* row 0 is background: offset (5-3)/2 = 1 */
  CHECK(p.px[(1 * 5) * 3] == 0);       /* row 1 holds the image's row 0 */
  CHECK(p.px[(4 * 5) * 3 + 1] == 8);   /* row 4 is background */
  img_free(&a);
  img_free(&c);
  img_free(&p);
}

int main(void) {
  const char *f = getenv("VT_FIXTURES");
  snprintf(fx_dir, sizeof fx_dir, "%s", f ? f : "tests/fixtures");
  vt_fixture *ref = vt_fixture_load("image/image_ref.txt");
  test_decode_kinds(ref);
  test_resize(ref);
  test_bad_input();
  test_crop_pad();
  vt_fixture_free(ref);
  return vt_test_finish("test_image");
}
