/* Dynamic tiling; see tiling.h. Grids are tried by tile count, then by column count: within
 * one count the public code's order is a Python set's, and tests/reference/gen_image_fixtures.py
 * checks that no order within a count changes the choice. */
#include "data/tiling.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const float tile_mean[3] = {0.485f, 0.456f, 0.406f};
static const float tile_std[3] = {0.229f, 0.224f, 0.225f};
const uint8_t tile_pad_colour[3] = {123, 116, 103}; /* int(255 * mean) */

tile_cfg tile_cfg_default(void) {
  return (tile_cfg){.size = 448, .min_tiles = 1, .max_tiles = 12, .thumbnail = true, .pad = false};
}

void tile_choose_grid(int w, int h, const tile_cfg *c, int *cols, int *rows) {
  double aspect = (double)w / h, best = INFINITY, area = (double)w * h;
  int bc = 1, br = 1;
  for (int n = c->min_tiles; n <= c->max_tiles; n++) {
    for (int i = 1; i <= n; i++) {
      if (n % i) continue;
      int j = n / i;
      double diff = fabs(aspect - (double)i / j);
      if (diff < best) {
        best = diff;
        bc = i, br = j;
      } else if (diff == best && area > 0.5 * c->size * c->size * i * j) {
        bc = i, br = j;
      }
    }
  }
  *cols = bc;
  *rows = br;
}

void tile_set_free(tile_set *t) {
  free(t->px);
  memset(t, 0, sizeof *t);
}

/* The CLIP processor's resize and crop: shortest edge to s (the long edge truncated, as
 * transformers' get_resize_output_image_size), then the centred s x s box. */
static int short_edge_crop(const img_rgb *im, int s, uint8_t *out) {
  int w, h;
  if (im->w <= im->h)
    w = s, h = (int)((double)s * im->h / im->w);
  else
    h = s, w = (int)((double)s * im->w / im->h);
  img_rgb r, cr;
  if (img_resize_bicubic(im, w, h, &r)) return -1;
  int rc = img_crop(&r, (w - s) / 2, (h - s) / 2, s, s, &cr);
  img_free(&r);
  if (rc) return -1;
  memcpy(out, cr.px, (size_t)s * s * 3);
  img_free(&cr);
  return 0;
}

int tile_frame(const img_rgb *im, const tile_cfg *c, uint8_t *out) {
  if (!c->pad || im->w == im->h) return short_edge_crop(im, c->size, out);
  img_rgb sq;
  if (img_pad_square(im, tile_pad_colour, &sq)) return -1;
  int rc = short_edge_crop(&sq, c->size, out);
  img_free(&sq);
  return rc;
}

int tile_image(const img_rgb *src, const tile_cfg *c, tile_set *t) {
  memset(t, 0, sizeof *t);
  img_rgb sq = {0};
  const img_rgb *im = src;
  if (c->pad && src->w != src->h) {
    if (img_pad_square(src, tile_pad_colour, &sq)) return -1;
    im = &sq;
  }
  int cols, rows, s = c->size;
  tile_choose_grid(im->w, im->h, c, &cols, &rows);
  int n = cols * rows + (c->thumbnail && cols * rows != 1);
  size_t tb = (size_t)s * s * 3;
  img_rgb big = {0}, part = {0};
  t->px = malloc((size_t)n * tb);
  if (!t->px || img_resize_bicubic(im, s * cols, s * rows, &big)) goto oom;
  for (int k = 0; k < cols * rows; k++) {
    if (img_crop(&big, (k % cols) * s, (k / cols) * s, s, s, &part)) goto oom;
    int rc = short_edge_crop(&part, s, t->px + (size_t)k * tb);
    img_free(&part);
    if (rc) goto oom;
  }
  img_free(&big);
  if (n > cols * rows) {
    img_rgb th;
    if (img_resize_bicubic(im, s, s, &th)) goto oom;
    int rc = short_edge_crop(&th, s, t->px + (size_t)(n - 1) * tb);
    img_free(&th);
    if (rc) goto oom;
  }
  img_free(&sq);
  t->n = n, t->size = s, t->cols = cols, t->rows = rows;
  return 0;
oom:
  img_free(&big);
  img_free(&sq);
  tile_set_free(t);
  return -1;
}

void tile_normalize(const uint8_t *tile, int size, float *out) {
  size_t plane = (size_t)size * size;
  for (int ch = 0; ch < 3; ch++) {
    float m = tile_mean[ch], inv = 1.0f / tile_std[ch];
    float *o = out + (size_t)ch * plane;
    for (size_t p = 0; p < plane; p++) o[p] = ((float)tile[p * 3 + ch] / 255.0f - m) * inv;
  }
}
