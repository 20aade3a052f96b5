/* One fuzz input through the media decoders: the first byte picks the decoder (image from
 * memory with stb_image and our structural checks; audio through libsndfile and libsoxr;
 * video through FFmpeg, both from a temporary file as prep reads them), the rest is the file.
 * It must be refused with a status and a message, or decoded with its invariants holding:
 * positive sizes within the pixel limit, every pixel readable; finite samples at the asked
 * rate within the length limit; at least one frame, each a readable image. Shared by the
 * libFuzzer target and the corpus replay; returns 0 when it behaved. */
#ifndef VT_MEDIA_FUZZ_ONE_H
#define VT_MEDIA_FUZZ_ONE_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/audio.h"
#include "data/image.h"
#include "data/video.h"

#define MEDIA_FUZZ_MAX_PIXELS (1 << 22)

/* Sums every pixel (reading all of them, so a short buffer shows under ASan). */
static inline unsigned media_fuzz_touch(const img_rgb *im) {
  unsigned s = 0;
  for (size_t i = 0; i < (size_t)im->w * (size_t)im->h * 3; i++) s += im->px[i];
  return s;
}

static inline int media_fuzz_image(const uint8_t *d, size_t n) {
  img_rgb im = {0};
  char err[512] = "";
  img_status st = img_decode_mem(d, n, "fuzz.img", MEDIA_FUZZ_MAX_PIXELS, &im, err, sizeof err);
  if (st != IMG_OK) return err[0] && !im.px ? 0 : 1;
  int bad = im.w <= 0 || im.h <= 0 || (long long)im.w * im.h > MEDIA_FUZZ_MAX_PIXELS || !im.px;
  if (!bad) (void)media_fuzz_touch(&im);
  img_free(&im);
  return bad;
}

/* Writes the input to a temporary file (libsndfile and FFmpeg go by the contents, not the
 * name); 0 or -1. */
static inline int media_fuzz_file(const uint8_t *d, size_t n, char *path, size_t len) {
  snprintf(path, len, "/tmp/vt_media_fuzz_%d_XXXXXX", (int)getpid());
  int fd = mkstemp(path);
  if (fd < 0) return -1;
  FILE *f = fdopen(fd, "wb");
  if (!f) return -1;
  int ok = fwrite(d, 1, n, f) == n;
  return fclose(f) == 0 && ok ? 0 : -1;
}

static inline int media_fuzz_audio(const uint8_t *d, size_t n) {
  char path[128], err[512] = "";
  if (media_fuzz_file(d, n, path, sizeof path)) return 0; /* no disk: not the parser */
  aud_load_opts o = aud_load_opts_default();
  o.max_seconds = 30;
  aud_wave w = {0};
  aud_reason r = aud_load(path, &o, &w, err, sizeof err);
  unlink(path);
  if (r != AUD_OK) return err[0] && !w.data ? 0 : 1;
  int bad = !w.data || w.n == 0 || w.rate != o.rate || (double)w.n > 31.0 * o.rate;
  for (size_t i = 0; !bad && i < w.n; i++) bad = !isfinite(w.data[i]);
  aud_wave_free(&w);
  return bad;
}

static inline int media_fuzz_video(const uint8_t *d, size_t n) {
  char path[128], err[512] = "";
  if (media_fuzz_file(d, n, path, sizeof path)) return 0;
  vid_cfg c = vid_cfg_default();
  vid_frames v = {0};
  vid_status st = vid_decode(path, &c, &v, err, sizeof err);
  unlink(path);
  if (st != VID_OK) return err[0] ? 0 : 1;
  int bad = v.n <= 0 || !v.frames;
  for (int i = 0; !bad && i < v.n; i++) {
    bad = v.frames[i].w <= 0 || v.frames[i].h <= 0 || !v.frames[i].px;
    if (!bad) (void)media_fuzz_touch(&v.frames[i]);
  }
  vid_frames_free(&v);
  return bad;
}

static inline int media_fuzz_one(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  switch (data[0] % 3) {
  case 0: return media_fuzz_image(data + 1, size - 1);
  case 1: return media_fuzz_audio(data + 1, size - 1);
  default: return media_fuzz_video(data + 1, size - 1);
  }
}

#endif
