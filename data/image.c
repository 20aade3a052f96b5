/* Image decoding with format checks, and Pillow's bicubic resize; see image.h.
 * stb_image decodes; before it runs, a walk over the file's structure (JPEG markers, PNG chunks
 * with their CRCs, BMP pixel extent, GIF blocks) finds truncation and corruption that stb would
 * decode silently as grey or black pixels, refuses CMYK JPEGs (stb would guess a conversion),
 * and reads the size so that a decompression bomb is refused before any pixel is allocated. */
#include "data/image.h"
#include "autograd/fmt.h"
#include "data/image_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static const char *const status_names[IMG_N_STATUS] = {"ok",
                                                       "unreadable image",
                                                       "empty image",
                                                       "unknown image format",
                                                       "corrupt image",
                                                       "truncated image",
                                                       "image too large",
                                                       "CMYK JPEG"};

const char *img_status_name(img_status s) {
  return s >= 0 && s < IMG_N_STATUS ? status_names[s] : "?";
}

int img_alloc(img_rgb *im, int w, int h) {
  im->w = im->h = 0;
  im->px = NULL;
  if (w <= 0 || h <= 0 || (size_t)w > SIZE_MAX / 3 / (size_t)h) return -1;
  im->px = malloc((size_t)w * (size_t)h * 3);
  if (!im->px) return -1;
  im->w = w;
  im->h = h;
  return 0;
}

void img_free(img_rgb *im) {
  if (!im) return;
  free(im->px);
  im->px = NULL;
  im->w = im->h = 0;
}

/* ---- structural checks ---------------------------------------------------------------- */

static unsigned be16(const uint8_t *p) { return (unsigned)p[0] << 8 | p[1]; }
static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static unsigned le16(const uint8_t *p) { return (unsigned)p[1] << 8 | p[0]; }

typedef enum { FMT_UNKNOWN, FMT_JPEG, FMT_PNG, FMT_BMP, FMT_GIF } img_format;

static img_format sniff(const uint8_t *b, size_t n) {
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return FMT_JPEG;
  if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8)) return FMT_PNG;
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return FMT_BMP;
  if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6))) return FMT_GIF;
  return FMT_UNKNOWN;
}

#define FAIL(st, ...)                                                                              \
  do {                                                                                             \
    vt_seterr(err, err_len, __VA_ARGS__);                                                          \
    return st;                                                                                     \
  } while (0)

static img_status check_jpeg(const uint8_t *b, size_t n, const char *name, char *err,
                             size_t err_len) {
  size_t i = 2, sos = 0;
  int ncomp = -1;
  while (!sos) {
    if (i >= n) FAIL(IMG_TRUNCATED, "%s: JPEG ends at byte %zu inside its headers", name, n);
    if (b[i] != 0xFF)
      FAIL(IMG_CORRUPT, "%s: JPEG: expected a marker (FF) at byte %zu, found 0x%02X", name, i,
           b[i]);
    while (i < n && b[i] == 0xFF) i++; /* fill bytes */
    if (i >= n) FAIL(IMG_TRUNCATED, "%s: JPEG ends at byte %zu inside its headers", name, n);
    unsigned m = b[i++];
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length */
    if (m == 0xD9) FAIL(IMG_CORRUPT, "%s: JPEG: end-of-image marker before any scan", name);
    if (i + 2 > n)
      FAIL(IMG_TRUNCATED, "%s: JPEG ends at byte %zu inside marker FF%02X", name, n, m);
    size_t len = be16(b + i);
    if (len < 2) FAIL(IMG_CORRUPT, "%s: JPEG: marker FF%02X has length %zu", name, m, len);
    bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      if (len < 8 || i + 8 > n)
        FAIL(IMG_TRUNCATED, "%s: JPEG ends inside its frame header (byte %zu)", name, n);
      ncomp = b[i + 7];
    }
    if (m == 0xDA) sos = i + len;
    i += len;
    if (i > n) FAIL(IMG_TRUNCATED, "%s: JPEG ends at byte %zu inside marker FF%02X", name, n, m);
  }
  if (ncomp < 0) FAIL(IMG_CORRUPT, "%s: JPEG: a scan but no frame header (SOF)", name);
  if (ncomp == 4)
    FAIL(IMG_CMYK,
         "%s: JPEG with 4 components (CMYK or YCCK): expected 1 (grey) or 3 (YCbCr/RGB); "
         "convert it to RGB first",
         name);
  if (ncomp != 1 && ncomp != 3)
    FAIL(IMG_CORRUPT, "%s: JPEG with %d components: expected 1 or 3", name, ncomp);
  /* entropy-coded data stuffs every FF with 00, so FF D9 after the first scan is the end */
  for (size_t k = sos; k + 1 < n; k++)
    if (b[k] == 0xFF && b[k + 1] == 0xD9) return IMG_OK;
  FAIL(IMG_TRUNCATED, "%s: JPEG: no end-of-image marker (FF D9) after the scan data (%zu bytes)",
       name, n);
}

static img_status check_png(const uint8_t *b, size_t n, const char *name, char *err,
                            size_t err_len) {
  size_t i = 8;
  bool first = true;
  for (;;) {
    if (i + 8 > n) FAIL(IMG_TRUNCATED, "%s: PNG ends at byte %zu before its IEND chunk", name, n);
    uint32_t len = be32(b + i);
    char type[5] = {(char)b[i + 4], (char)b[i + 5], (char)b[i + 6], (char)b[i + 7], 0};
    for (int k = 0; k < 4; k++)
      if (!((type[k] >= 'A' && type[k] <= 'Z') || (type[k] >= 'a' && type[k] <= 'z')))
        FAIL(IMG_CORRUPT, "%s: PNG: bad chunk type at byte %zu", name, i + 4);
    if (first && strcmp(type, "IHDR"))
      FAIL(IMG_CORRUPT, "%s: PNG: first chunk is %s, expected IHDR", name, type);
    first = false;
    if (len > 0x7fffffffu || (size_t)len > n - i - 8 || n - i - 8 - len < 4)
      FAIL(IMG_TRUNCATED, "%s: PNG: chunk %s at byte %zu needs %u data bytes, the file ends at %zu",
           name, type, i, len, n);
    uint32_t crc = (uint32_t)crc32(0L, b + i + 4, (uInt)len + 4);
    uint32_t want = be32(b + i + 8 + len);
    if (crc != want)
      FAIL(IMG_CORRUPT, "%s: PNG: chunk %s at byte %zu: CRC 0x%08X, expected 0x%08X", name, type, i,
           crc, want);
    if (!strcmp(type, "IEND")) return IMG_OK;
    i += 12 + (size_t)len;
  }
}

static img_status check_bmp(const uint8_t *b, size_t n, const char *name, char *err,
                            size_t err_len) {
  if (n < 26) FAIL(IMG_TRUNCATED, "%s: BMP: %zu bytes, shorter than its headers", name, n);
  uint32_t off = le32(b + 10), dib = le32(b + 14);
  int64_t w, h;
  unsigned bpp;
  uint32_t comp = 0;
  if (dib == 12) {
    w = le16(b + 18), h = le16(b + 20), bpp = le16(b + 24);
  } else {
    if (n < 34) FAIL(IMG_TRUNCATED, "%s: BMP: %zu bytes, shorter than its headers", name, n);
    w = (int32_t)le32(b + 18), h = (int32_t)le32(b + 22), bpp = le16(b + 28);
    comp = le32(b + 30);
  }
  if (h < 0) h = -h; /* top-down rows */
  if (w <= 0 || h <= 0)
    FAIL(IMG_CORRUPT, "%s: BMP: size %lld x %lld", name, (long long)w, (long long)h);
  if (comp == 0 || comp == 3 || comp == 6) { /* uncompressed rows: their extent is known */
    int64_t row = ((w * (int64_t)bpp + 31) / 32) * 4;
    /* the product in double for the message: it may not fit an int64 (hostile sizes) */
    if (h > INT64_MAX / (row ? row : 1) - off || (int64_t)off + row * h > (int64_t)n)
      FAIL(IMG_TRUNCATED,
           "%s: BMP: %lld x %lld at %u bits needs %.0f bytes from byte %u, file has %zu", name,
           (long long)w, (long long)h, bpp, (double)row * (double)h, off, n);
  }
  return IMG_OK;
}

static img_status gif_blocks(const uint8_t *b, size_t n, size_t *i, const char *name, char *err,
                             size_t err_len) {
  for (;;) {
    if (*i >= n) FAIL(IMG_TRUNCATED, "%s: GIF ends at byte %zu inside a data block", name, n);
    size_t sz = b[(*i)++];
    if (!sz) return IMG_OK;
    *i += sz;
    if (*i > n) FAIL(IMG_TRUNCATED, "%s: GIF ends at byte %zu inside a data block", name, n);
  }
}

static img_status check_gif(const uint8_t *b, size_t n, const char *name, char *err,
                            size_t err_len) {
  if (n < 13) FAIL(IMG_TRUNCATED, "%s: GIF: %zu bytes, shorter than its header", name, n);
  size_t i = 13;
  if (b[10] & 0x80) i += (size_t)3 << ((b[10] & 7) + 1);
  for (;;) {
    if (i >= n) FAIL(IMG_TRUNCATED, "%s: GIF ends at byte %zu before its first frame", name, n);
    unsigned t = b[i++];
    if (t == 0x21) {
      i++; /* label */
      img_status st = gif_blocks(b, n, &i, name, err, err_len);
      if (st) return st;
    } else if (t == 0x2C) {
      if (i + 10 > n) FAIL(IMG_TRUNCATED, "%s: GIF ends inside its first frame's header", name);
      unsigned packed = b[i + 8];
      i += 9;
      if (packed & 0x80) i += (size_t)3 << ((packed & 7) + 1);
      i++; /* LZW minimum code size */
      return gif_blocks(b, n, &i, name, err, err_len);
    } else if (t == 0x3B) {
      FAIL(IMG_CORRUPT, "%s: GIF without any frame", name);
    } else {
      FAIL(IMG_CORRUPT, "%s: GIF: unknown block 0x%02X at byte %zu", name, t, i - 1);
    }
  }
}

img_status img_decode_mem(const uint8_t *buf, size_t n, const char *name, long long max_pixels,
                          img_rgb *out, char *err, size_t err_len) {
  out->w = out->h = 0;
  out->px = NULL;
  if (max_pixels <= 0) max_pixels = IMG_DEFAULT_MAX_PIXELS;
  if (n == 0) FAIL(IMG_EMPTY, "%s: empty file (0 bytes)", name);
  img_format f = sniff(buf, n);
  img_status st = IMG_OK;
  switch (f) {
  case FMT_JPEG: st = check_jpeg(buf, n, name, err, err_len); break;
  case FMT_PNG: st = check_png(buf, n, name, err, err_len); break;
  case FMT_BMP: st = check_bmp(buf, n, name, err, err_len); break;
  case FMT_GIF: st = check_gif(buf, n, name, err, err_len); break;
  default:
    FAIL(IMG_UNKNOWN, "%s: not a JPEG, PNG, BMP or GIF (first bytes %02X %02X %02X %02X)", name,
         buf[0], n > 1 ? buf[1] : 0, n > 2 ? buf[2] : 0, n > 3 ? buf[3] : 0);
  }
  if (st) return st;
  int w, h;
  const char *why = "";
  if (img_stb_info(buf, n, &w, &h, &why))
    FAIL(IMG_CORRUPT, "%s: cannot read the image header: %s", name, why);
  if (w <= 0 || h <= 0) FAIL(IMG_CORRUPT, "%s: image size %d x %d", name, w, h);
  if ((long long)w * h > max_pixels)
    FAIL(IMG_TOO_LARGE, "%s: %d x %d = %lld pixels, the limit is %lld (decompression bomb?)", name,
         w, h, (long long)w * h, max_pixels);
  uint8_t *px;
  int dw, dh;
  if (img_stb_rgb(buf, n, &dw, &dh, &px, &why))
    FAIL(IMG_CORRUPT, "%s: cannot decode: %s", name, why);
  out->w = dw;
  out->h = dh;
  out->px = px;
  return IMG_OK;
}

img_status img_decode_file(const char *path, long long max_pixels, img_rgb *out, char *err,
                           size_t err_len) {
  out->w = out->h = 0;
  out->px = NULL;
  int fd = open(path, O_RDONLY);
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0) {
    vt_seterr(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return IMG_UNREADABLE;
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    FAIL(IMG_UNREADABLE, "%s: not a regular file", path);
  }
  size_t n = (size_t)sb.st_size;
  uint8_t *buf = malloc(n ? n : 1);
  if (!buf) {
    close(fd);
    FAIL(IMG_UNREADABLE, "%s: out of memory for %zu bytes", path, n);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd);
  img_status st;
  if (got != n) {
    vt_seterr(err, err_len, "%s: read %zu of %zu bytes", path, got, n);
    st = IMG_UNREADABLE;
  } else {
    st = img_decode_mem(buf, n, path, max_pixels, out, err, err_len);
  }
  free(buf);
  return st;
}

/* ---- resize, crop, pad ---------------------------------------------------------------- */

/* Pillow's fixed point: coefficients scaled by 2^22, sums rounded by adding half a unit. */
enum { RS_BITS = 22 };

static double bicubic(double x) {
  const double a = -0.5;
  x = fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

typedef struct {
  int ksize;
  int *bounds; /* per output index: first input index, count */
  int32_t *kk; /* per output index: ksize coefficients */
} rs_coeffs;

static void rs_free(rs_coeffs *c) {
  free(c->bounds);
  free(c->kk);
}

/* Coefficients for in_size -> out_size, the way Pillow's precompute_coeffs and
 * normalize_coeffs_8bpc compute them (filter support scaled by the shrink factor). */
static int rs_coeffs_init(rs_coeffs *c, int in_size, int out_size) {
  double scale = (double)in_size / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  c->ksize = (int)ceil(support) * 2 + 1;
  c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
  c->kk = malloc((size_t)out_size * (size_t)c->ksize * sizeof *c->kk);
  double *k = malloc((size_t)c->ksize * sizeof *k);
  if (!c->bounds || !c->kk || !k) {
    free(k);
    rs_free(c);
    return -1;
  }
  for (int xx = 0; xx < out_size; xx++) {
    double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double w = bicubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    int32_t *kk = c->kk + (size_t)xx * (size_t)c->ksize;
    for (int x = 0; x < c->ksize; x++) {
      double v = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
      kk[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << RS_BITS)) : (int32_t)(0.5 + v * (1 << RS_BITS));
    }
    c->bounds[xx * 2] = xmin;
    c->bounds[xx * 2 + 1] = xmax;
  }
  free(k);
  return 0;
}

static uint8_t clip8(int64_t v) {
  v >>= RS_BITS; /* arithmetic shift: floor, as Pillow's lookup table */
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* dst (w x rows) = horizontal pass over rows [y0, y0 + rows) of src. */
static void rs_horizontal(const img_rgb *src, int y0, int rows, const rs_coeffs *c, int w,
                          uint8_t *dst) {
  for (int yy = 0; yy < rows; yy++) {
    const uint8_t *in = src->px + (size_t)(yy + y0) * (size_t)src->w * 3;
    uint8_t *out = dst + (size_t)yy * (size_t)w * 3;
    for (int xx = 0; xx < w; xx++) {
      int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
      const int32_t *k = c->kk + (size_t)xx * (size_t)c->ksize;
      int64_t s0 = 1 << (RS_BITS - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < xmax; x++) {
        const uint8_t *p = in + (size_t)(x + xmin) * 3;
        s0 += p[0] * (int64_t)k[x];
        s1 += p[1] * (int64_t)k[x];
        s2 += p[2] * (int64_t)k[x];
      }
      out[xx * 3] = clip8(s0);
      out[xx * 3 + 1] = clip8(s1);
      out[xx * 3 + 2] = clip8(s2);
    }
  }
}

/* dst (w x h) = vertical pass over src (w x src_h); bounds shifted by y0. */
static void rs_vertical(const uint8_t *src, int w, const rs_coeffs *c, int y0, int h,
                        uint8_t *dst) {
  size_t stride = (size_t)w * 3;
  for (int yy = 0; yy < h; yy++) {
    int ymin = c->bounds[yy * 2] - y0, ymax = c->bounds[yy * 2 + 1];
    const int32_t *k = c->kk + (size_t)yy * (size_t)c->ksize;
    uint8_t *out = dst + (size_t)yy * stride;
    for (size_t xc = 0; xc < stride; xc++) {
      int64_t s = 1 << (RS_BITS - 1);
      for (int y = 0; y < ymax; y++) s += src[(size_t)(y + ymin) * stride + xc] * (int64_t)k[y];
      out[xc] = clip8(s);
    }
  }
}

int img_resize_bicubic(const img_rgb *src, int w, int h, img_rgb *dst) {
  if (img_alloc(dst, w, h)) return -1;
  if (w == src->w && h == src->h) {
    memcpy(dst->px, src->px, (size_t)w * (size_t)h * 3);
    return 0;
  }
  rs_coeffs cv = {0}, ch = {0};
  if (rs_coeffs_init(&cv, src->h, h)) goto oom;
  /* the rows the vertical pass reads: the horizontal pass needs only those */
  int y0 = cv.bounds[0], y1 = cv.bounds[h * 2 - 2] + cv.bounds[h * 2 - 1];
  if (w != src->w) {
    if (rs_coeffs_init(&ch, src->w, w)) goto oom;
    if (h == src->h) {
      rs_horizontal(src, 0, h, &ch, w, dst->px);
    } else {
      uint8_t *tmp = malloc((size_t)w * (size_t)(y1 - y0) * 3);
      if (!tmp) goto oom;
      rs_horizontal(src, y0, y1 - y0, &ch, w, tmp);
      rs_vertical(tmp, w, &cv, y0, h, dst->px);
      free(tmp);
    }
  } else {
    rs_vertical(src->px, w, &cv, 0, h, dst->px);
  }
  rs_free(&cv);
  rs_free(&ch);
  return 0;
oom:
  rs_free(&cv);
  rs_free(&ch);
  img_free(dst);
  return -1;
}

int img_crop(const img_rgb *src, int x, int y, int w, int h, img_rgb *dst) {
  if (x < 0 || y < 0 || x + w > src->w || y + h > src->h || img_alloc(dst, w, h)) return -1;
  for (int r = 0; r < h; r++)
    memcpy(dst->px + (size_t)r * (size_t)w * 3,
           src->px + ((size_t)(y + r) * (size_t)src->w + (size_t)x) * 3, (size_t)w * 3);
  return 0;
}

int img_pad_square(const img_rgb *src, const uint8_t bg[3], img_rgb *dst) {
  int s = src->w > src->h ? src->w : src->h;
  if (img_alloc(dst, s, s)) return -1;
  for (size_t i = 0; i < (size_t)s * (size_t)s; i++) memcpy(dst->px + i * 3, bg, 3);
  int x = (s - src->w) / 2, y = (s - src->h) / 2;
  for (int r = 0; r < src->h; r++)
    memcpy(dst->px + ((size_t)(y + r) * (size_t)s + (size_t)x) * 3,
           src->px + (size_t)r * (size_t)src->w * 3, (size_t)src->w * 3);
  return 0;
}
