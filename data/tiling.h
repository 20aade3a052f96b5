/* Dynamic tiling of images for InternViT (DESIGN.md §4, as the public loader does it): choose
 * the grid (cols x rows, min_tiles <= cols*rows <= max_tiles) whose aspect ratio is closest to
 * the image's (ties go to the larger grid only if the image area > 0.5 * S^2 * cols * rows),
 * resize to (S*cols, S*rows) bicubic, cut row-major, append an S x S thumbnail when there is
 * more than one tile. Each tile then gets the CLIP processor's steps: shortest edge to S
 * (bicubic), centre crop S x S, and when loaded x/255 and (x - mean) / std. */
#ifndef VT_DATA_TILING_H
#define VT_DATA_TILING_H

#include "data/image.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
  int size;      /* tile side S; 448 */
  int min_tiles; /* 1 */
  int max_tiles; /* 12 (the data config's max_tiles) */
  bool thumbnail;
  bool pad; /* image_aspect_ratio "pad": centre on a square of the mean colour first */
} tile_cfg;

tile_cfg tile_cfg_default(void);

/* The grid for a w x h image. */
void tile_choose_grid(int w, int h, const tile_cfg *c, int *cols, int *rows);

/* uint8 tiles, n of them, each size x size x 3 (HWC): what shards store. */
typedef struct {
  int n, size, cols, rows; /* rows x cols grid tiles, then the thumbnail if n > cols*rows */
  uint8_t *px;             /* n * size * size * 3 bytes, malloc'd */
} tile_set;

void tile_set_free(tile_set *t);

/* Tiles an image as the loader does. Returns 0, or -1 out of memory (t is then empty). */
int tile_image(const img_rgb *im, const tile_cfg *c, tile_set *t);
/* One tile of a frame (no tiling): pad to a square first if c->pad, shortest edge to size,
 * centre crop. Writes size*size*3 bytes to out. Returns 0 or -1 (out of memory). */
int tile_frame(const img_rgb *im, const tile_cfg *c, uint8_t *out);

/* The mean colour the pad mode fills with: int(255 * mean) per channel, as the loader. */
extern const uint8_t tile_pad_colour[3];

/* One uint8 tile (HWC) -> f32 CHW: x / 255, then (x - mean) / std (ImageNet mean/std). */
void tile_normalize(const uint8_t *tile, int size, float *out);

#endif
