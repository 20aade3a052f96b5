/* The one translation unit that compiles stb_image (Debian libstb-dev): JPEG, PNG, BMP and GIF
 * only, memory input only (image.c reads and checks the file first). Its own warnings are not
 * ours to fix, so they are silenced here alone; the build also compiles this file without
 * UBSan (cmake/data_deps.cmake), since stb shifts negative values by design. */
#include "data/image_impl.h"

#include <stdlib.h>
#include <string.h>

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_ASSERT(x) ((void)0) /* bad bytes are statuses, never aborts */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wmisleading-indentation"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#pragma GCC diagnostic ignored "-Wshadow"
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

int img_stb_info(const uint8_t *buf, size_t n, int *w, int *h, const char **why) {
  int comp;
  if (n > (size_t)0x7fffffff) {
    *why = "file larger than 2 GiB";
    return -1;
  }
  if (!stbi_info_from_memory(buf, (int)n, w, h, &comp)) {
    *why = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
    return -1;
  }
  return 0;
}

int img_stb_rgb(const uint8_t *buf, size_t n, int *w, int *h, uint8_t **px, const char **why) {
  int comp;
  *px = NULL;
  if (n > (size_t)0x7fffffff) {
    *why = "file larger than 2 GiB";
    return -1;
  }
  stbi_uc *p = stbi_load_from_memory(buf, (int)n, w, h, &comp, 3);
  if (!p) {
    *why = stbi_failure_reason() ? stbi_failure_reason() : "unknown error";
    return -1;
  }
  /* stb allocates with malloc (STBI_MALLOC default), so the caller's free() is right */
  *px = p;
  return 0;
}
