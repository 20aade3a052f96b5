/* Images in: JPEG (baseline, progressive), PNG (8/16-bit, palette, grey, alpha), BMP and the
 * first frame of a GIF, decoded with stb_image to 8-bit RGB after format checks that turn a
 * corrupt, truncated, empty, oversized (decompression bomb) or CMYK file into a status and a
 * message; and the bicubic resize of Pillow (a = -0.5, support widened when shrinking), which
 * the public VITA loader runs through PIL and transformers' CLIP image processor. */
#ifndef VT_DATA_IMAGE_H
#define VT_DATA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* 8-bit RGB, row-major, 3 bytes a pixel; px is malloc'd (img_free releases). */
typedef struct {
  int w, h;
  uint8_t *px;
} img_rgb;

typedef enum {
  IMG_OK = 0,
  IMG_UNREADABLE, /* cannot open or read the file */
  IMG_EMPTY,      /* zero bytes */
  IMG_UNKNOWN,    /* not JPEG, PNG, BMP or GIF */
  IMG_CORRUPT,    /* the decoder or a structural check refused it */
  IMG_TRUNCATED,  /* the file ends before the image data does */
  IMG_TOO_LARGE,  /* more pixels than the limit (decompression bomb) */
  IMG_CMYK,       /* a 4-component (CMYK / YCCK) JPEG */
  IMG_N_STATUS
} img_status;

const char *img_status_name(img_status s);

/* Pillow's default limit (MAX_IMAGE_PIXELS): 1024^3 / 4 / 3 pixels. */
#define IMG_DEFAULT_MAX_PIXELS 89478485LL

/* Decodes a file (or a buffer; name labels it in messages). max_pixels <= 0 means the default.
 * Returns IMG_OK with *out filled (caller frees), else a status with err naming the file, what
 * was expected and what was found; *out is then empty. Never aborts on bad bytes. */
img_status img_decode_file(const char *path, long long max_pixels, img_rgb *out, char *err,
                           size_t err_len);
img_status img_decode_mem(const uint8_t *buf, size_t n, const char *name, long long max_pixels,
                          img_rgb *out, char *err, size_t err_len);

/* Allocates a w x h image (contents undefined). Returns 0 or -1 (out of memory, bad size). */
int img_alloc(img_rgb *im, int w, int h);
void img_free(img_rgb *im);

/* dst = src resized to w x h with Pillow's BICUBIC filter on 8-bit data (fixed-point
 * coefficients, horizontal pass then vertical, each rounded and clipped to 0..255), so the
 * result equals PIL's Image.resize((w, h), BICUBIC) byte for byte. Same size: a copy.
 * dst is allocated here. Returns 0 or -1 (out of memory). */
int img_resize_bicubic(const img_rgb *src, int w, int h, img_rgb *dst);
/* dst = the w x h box at (x, y) of src (which must lie inside src). Returns 0 or -1. */
int img_crop(const img_rgb *src, int x, int y, int w, int h, img_rgb *dst);
/* dst = src centred on a square canvas of colour bg, as the loader's expand2square (offset
 * (long - short) / 2, rounded down). Returns 0 or -1. */
int img_pad_square(const img_rgb *src, const uint8_t bg[3], img_rgb *dst);

#endif
