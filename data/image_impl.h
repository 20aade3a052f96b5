/* Private to data/: the stb_image entry points that image.c calls (image_stb.c is the one
 * translation unit that compiles stb_image, with its warnings and sanitizers kept out). */
#ifndef VT_DATA_IMAGE_IMPL_H
#define VT_DATA_IMAGE_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* Width and height from the header, without decoding. Returns 0, or -1 with *why. */
int img_stb_info(const uint8_t *buf, size_t n, int *w, int *h, const char **why);
/* Decodes to 8-bit RGB (the first frame of a GIF); *px from malloc. Returns 0 or -1 + *why. */
int img_stb_rgb(const uint8_t *buf, size_t n, int *w, int *h, uint8_t **px, const char **why);

#endif
