/* The media config and media -> tiles; see media.h. */
#include "data/media.h"
#include "autograd/fmt.h"
#include "data/chat.h"

#include <stdlib.h>
#include <string.h>

media_cfg media_cfg_default(void) {
  return (media_cfg){.decode = true,
                     .tiles = tile_cfg_default(),
                     .video = vid_cfg_default(),
                     .max_pixels = IMG_DEFAULT_MAX_PIXELS};
}

static int int_in(ycfg *y, yaml_node_t *map, const char *key, long long lo, long long hi, int *out,
                  char *err, size_t err_len) {
  yaml_node_t *n = ycfg_get(y, map, key);
  long long v;
  if (!n) return 0;
  if (ycfg_int(y, n, key, &v, err, err_len)) return -1;
  if (v < lo || v > hi) {
    vt_seterr(err, err_len, "%s:%zu: media.%s: expected %lld..%lld, found %lld", y->path,
              n->start_mark.line + 1, key, lo, hi, v);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int pos_float(ycfg *y, yaml_node_t *map, const char *key, double *out, char *err,
                     size_t err_len) {
  yaml_node_t *n = ycfg_get(y, map, key);
  if (!n) return 0;
  if (ycfg_float(y, n, key, out, err, err_len)) return -1;
  if (!(*out > 0) || *out > 1000) {
    vt_seterr(err, err_len, "%s:%zu: media.%s: expected a rate in (0, 1000], found %g", y->path,
              n->start_mark.line + 1, key, *out);
    return -1;
  }
  return 0;
}

int media_cfg_load(ycfg *y, yaml_node_t *map, media_cfg *m, char *err, size_t err_len) {
  static const char *const keys[] = {
      "decode",    "image_aspect_ratio", "max_tiles",        "thumbnail",        "max_pixels",
      "video_fps", "video_min_frames",   "video_max_frames", "frame_folder_fps", "tile_size",
      NULL};
  if (ycfg_check_keys(y, map, keys, "media", err, err_len)) return -1;
  yaml_node_t *n;
  const char *s;
  if ((n = ycfg_get(y, map, "decode")) && ycfg_bool(y, n, "decode", &m->decode, err, err_len))
    return -1;
  if ((n = ycfg_get(y, map, "thumbnail")) &&
      ycfg_bool(y, n, "thumbnail", &m->tiles.thumbnail, err, err_len))
    return -1;
  if ((n = ycfg_get(y, map, "image_aspect_ratio"))) {
    if (ycfg_str(y, n, "image_aspect_ratio", &s, err, err_len)) return -1;
    if (strcmp(s, "square") && strcmp(s, "pad")) {
      vt_seterr(err, err_len,
                "%s:%zu: media.image_aspect_ratio: expected square or pad, found '%s'", y->path,
                n->start_mark.line + 1, s);
      return -1;
    }
    m->tiles.pad = !strcmp(s, "pad");
  }
  if ((n = ycfg_get(y, map, "max_pixels"))) {
    if (ycfg_int(y, n, "max_pixels", &m->max_pixels, err, err_len)) return -1;
    if (m->max_pixels < 1) {
      vt_seterr(err, err_len, "%s:%zu: media.max_pixels: expected > 0, found %lld", y->path,
                n->start_mark.line + 1, m->max_pixels);
      return -1;
    }
  }
  m->video.max_pixels = m->max_pixels;
  if (int_in(y, map, "max_tiles", 1, 64, &m->tiles.max_tiles, err, err_len) ||
      int_in(y, map, "tile_size", 14, 4096, &m->tiles.size, err, err_len) ||
      int_in(y, map, "video_min_frames", 1, 256, &m->video.min_frames, err, err_len) ||
      int_in(y, map, "video_max_frames", 1, 256, &m->video.max_frames, err, err_len) ||
      pos_float(y, map, "video_fps", &m->video.rate, err, err_len) ||
      pos_float(y, map, "frame_folder_fps", &m->video.folder_fps, err, err_len))
    return -1;
  return 0;
}

void media_tiles_free(media_tiles *t) {
  free(t->px);
  memset(t, 0, sizeof *t);
}

static uint8_t *reserve(media_tiles *t, size_t more) {
  size_t tb = (size_t)t->size * (size_t)t->size * 3;
  if (t->n_tiles + more > t->cap_tiles) {
    size_t cap = t->cap_tiles ? t->cap_tiles : 16;
    while (cap < t->n_tiles + more) cap *= 2;
    uint8_t *p = realloc(t->px, cap * tb);
    if (!p) return NULL;
    t->px = p;
    t->cap_tiles = cap;
  }
  return t->px + t->n_tiles * tb;
}

int media_add_tiles(const media_cfg *m, int kind, const char *path, media_tiles *t,
                    int32_t *n_added, char *err, size_t err_len) {
  *n_added = 0;
  if (kind == CHAT_MEDIA_AUDIO) return 0;
  t->size = m->tiles.size;
  size_t tb = (size_t)t->size * (size_t)t->size * 3;
  char why[1024];
  if (kind == CHAT_MEDIA_IMAGE) {
    img_rgb im;
    img_status st = img_decode_file(path, m->max_pixels, &im, why, sizeof why);
    if (st) {
      vt_seterr(err, err_len, "%s: %s", img_status_name(st), why);
      return -1;
    }
    tile_set ts;
    int rc = tile_image(&im, &m->tiles, &ts);
    img_free(&im);
    uint8_t *dst = rc ? NULL : reserve(t, (size_t)ts.n);
    if (!dst) {
      if (!rc) tile_set_free(&ts);
      vt_seterr(err, err_len, "%s: out of memory for its tiles", path);
      return -1;
    }
    memcpy(dst, ts.px, (size_t)ts.n * tb);
    t->n_tiles += (size_t)ts.n;
    *n_added = ts.n;
    tile_set_free(&ts);
    return 0;
  }
  vid_cfg vc = m->video;
  vc.max_pixels = m->max_pixels;
  vid_frames fr;
  vid_status st = vid_decode(path, &vc, &fr, why, sizeof why);
  if (st) {
    vt_seterr(err, err_len, "%s: %s", vid_status_name(st), why);
    return -1;
  }
  uint8_t *dst = reserve(t, (size_t)fr.n);
  int rc = dst ? 0 : -1;
  for (int i = 0; rc == 0 && i < fr.n; i++)
    rc = tile_frame(&fr.frames[i], &m->tiles, dst + (size_t)i * tb);
  if (rc) {
    vt_seterr(err, err_len, "%s: out of memory for its frames", path);
  } else {
    t->n_tiles += (size_t)fr.n;
    *n_added = fr.n;
  }
  vid_frames_free(&fr);
  return rc;
}
