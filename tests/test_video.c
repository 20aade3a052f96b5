// ctest-labels: unit
/* Video: the frame rule (the public loader's stride, then 16 or 4 evenly spaced, as
 * np.linspace(..., dtype=int)) at 1, 2 and 3 fps; decoding H.264 (with B-frames), MPEG-4 and
 * MJPEG files and a folder of frames, checking from each frame's colour which frame came back;
 * and unreadable, truncated, frameless and audio-only input as statuses. Fixtures:
 * tests/fixtures/video from tests/reference/gen_video_fixtures.py. */
#include "data/video.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fx_dir[4096];

static const char *fx(const char *name) {
  static char p[8192];
  snprintf(p, sizeof p, "%s/video/%s", fx_dir, name);
  return p;
}

static void check_pick(int64_t n, double fps, double rate, const int64_t *want, int n_want) {
  vid_cfg c = vid_cfg_default();
  c.rate = rate;
  int64_t idx[16];
  int k = vid_pick_frames(n, fps, &c, idx);
  bool same = k == n_want;
  for (int i = 0; same && i < k; i++) same = idx[i] == want[i];
  CHECK_MSG(same, "%lld frames at %g fps, rate %g: got %d frames", (long long)n, fps, rate, k);
}

static void test_pick(void) {
  /* expectations from the loader's Python (numpy) */
  check_pick(20, 10, 1, (const int64_t[]){0, 0, 0, 10}, 4);
  check_pick(70, 10, 1, (const int64_t[]){0, 10, 20, 30, 40, 50, 60}, 7);
  check_pick(70, 10, 3,
             (const int64_t[]){0, 3, 9, 12, 18, 21, 27, 30, 36, 39, 45, 48, 54, 57, 63, 69}, 16);
  check_pick(100, 5, 1,
             (const int64_t[]){0, 5, 10, 15, 25, 30, 35, 40, 50, 55, 60, 65, 75, 80, 85, 95}, 16);
  check_pick(90, 30, 3, (const int64_t[]){0, 10, 20, 30, 40, 50, 60, 70, 80}, 9);
  /* 5 / 2 = 2.5 rounds to 2, as Python's round() */
  check_pick(100, 5, 2,
             (const int64_t[]){0, 6, 12, 18, 26, 32, 38, 44, 52, 58, 64, 70, 78, 84, 90, 98}, 16);
  check_pick(1, 30, 1, (const int64_t[]){0, 0, 0, 0}, 4);
  check_pick(1000, 29.97, 1,
             (const int64_t[]){0, 60, 120, 180, 240, 330, 390, 450, 510, 570, 660, 720, 780, 840,
                               900, 990},
             16);
  check_pick(17, 1, 1, (const int64_t[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16}, 16);
  vid_cfg c = vid_cfg_default();
  int64_t idx[16];
  CHECK(vid_pick_frames(0, 10, &c, idx) == 0);
}

/* The generator's colour of frame k (see gen_video_fixtures.py). */
static void colour(int64_t k, int rgb[3]) {
  rgb[0] = (int)(10 + (7 * k) % 230);
  rgb[1] = (int)(250 - (3 * k) % 230);
  rgb[2] = (int)(60 + (k / 10) * 20 % 190);
}

/* Lossy codecs and 4:2:0 chroma move a flat colour by a few levels; neighbouring frames differ
 * by 7 levels of red at least, so 3 levels tell frames apart. */
static void check_frames(const char *name, const vid_frames *v, double fps, int64_t total,
                         const int64_t *want, int n_want) {
  CHECK_MSG(v->n == n_want && v->n_total == total && fabs(v->fps - fps) < 1e-6,
            "%s: %d frames of %lld at %g fps", name, v->n, (long long)v->n_total, v->fps);
  for (int i = 0; i < v->n && i < n_want; i++) {
    CHECK_MSG(v->index[i] == want[i] && fabs(v->times[i] - (double)want[i] / fps) < 1e-9,
              "%s: frame %d is %lld, expected %lld", name, i, (long long)v->index[i],
              (long long)want[i]);
    const img_rgb *im = &v->frames[i];
    int rgb[3];
    colour(want[i], rgb);
    const uint8_t *p = im->px + ((size_t)(im->h / 2) * (size_t)im->w + (size_t)im->w / 2) * 3;
    int d = 0;
    for (int c = 0; c < 3; c++) d = abs(p[c] - rgb[c]) > d ? abs(p[c] - rgb[c]) : d;
    CHECK_MSG(im->w == 64 && im->h == 48 && d <= 3,
              "%s: frame %lld: %dx%d, centre (%d,%d,%d), expected (%d,%d,%d)", name,
              (long long)want[i], im->w, im->h, p[0], p[1], p[2], rgb[0], rgb[1], rgb[2]);
  }
}

static void test_decode(void) {
  char err[1024];
  vid_cfg c = vid_cfg_default();
  vid_frames v;
  vid_status st = vid_decode(fx("c2s_10fps.mp4"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_OK, "%s", err);
  if (!st) check_frames("c2s_10fps.mp4", &v, 10, 20, (const int64_t[]){0, 0, 0, 10}, 4);
  vid_frames_free(&v);
  st = vid_decode(fx("c7s_10fps.mp4"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_OK, "%s", err);
  if (!st)
    check_frames("c7s_10fps.mp4", &v, 10, 70, (const int64_t[]){0, 10, 20, 30, 40, 50, 60}, 7);
  vid_frames_free(&v);
  st = vid_decode(fx("c20s_5fps.avi"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_OK, "%s", err);
  if (!st)
    check_frames("c20s_5fps.avi", &v, 5, 100,
                 (const int64_t[]){0, 5, 10, 15, 25, 30, 35, 40, 50, 55, 60, 65, 75, 80, 85, 95},
                 16);
  vid_frames_free(&v);
  c.rate = 3; /* the public loader's rate */
  st = vid_decode(fx("c3s_30fps.mkv"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_OK, "%s", err);
  if (!st)
    check_frames("c3s_30fps.mkv", &v, 30, 90, (const int64_t[]){0, 10, 20, 30, 40, 50, 60, 70, 80},
                 9);
  vid_frames_free(&v);

  c = vid_cfg_default();
  st = vid_decode(fx("frames"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_OK, "%s", err);
  if (!st) check_frames("frames/", &v, 1, 8, (const int64_t[]){0, 1, 2, 3, 4, 5, 6, 7}, 8);
  vid_frames_free(&v);
  c.folder_fps = 4;
  st = vid_decode(fx("frames"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_OK, "%s", err);
  if (!st) check_frames("frames/ at 4 fps", &v, 4, 8, (const int64_t[]){0, 0, 0, 4}, 4);
  vid_frames_free(&v);
}

static void test_bad(void) {
  char err[1024], tmp[] = "/tmp/vt_test_video_XXXXXX", path[4200];
  CHECK(mkdtemp(tmp) != NULL);
  vid_cfg c = vid_cfg_default();
  vid_frames v;
  vid_status st;

  st = vid_decode("/nonexistent/clip.mp4", &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_UNREADABLE && strstr(err, "/nonexistent/clip.mp4"), "%d %s", st, err);
  st = vid_decode(fx("audio_only.m4a"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_NO_VIDEO && strstr(err, "no video stream"), "%d %s", st, err);
  st = vid_decode(fx("truncated.mp4"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_UNREADABLE || st == VID_CORRUPT, "truncated: %d %s", st, err);
  printf("truncated.mp4: %s: %s\n", vid_status_name(st), err);

  snprintf(path, sizeof path, "%s/empty.mp4", tmp);
  FILE *f = fopen(path, "wb");
  fclose(f);
  st = vid_decode(path, &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_UNREADABLE && strstr(err, "0 bytes"), "%d %s", st, err);
  f = fopen(path, "wb");
  fputs("this is not a video, only some text that looks like nothing\n", f);
  fclose(f);
  st = vid_decode(path, &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_UNREADABLE, "text as video: %d %s", st, err);
  unlink(path);

  /* a folder without frames, then one whose only frame is corrupt */
  st = vid_decode(tmp, &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_NO_FRAMES, "empty folder: %d %s", st, err);
  snprintf(path, sizeof path, "%s/f000.png", tmp);
  f = fopen(path, "wb");
  fputs("\x89PNG\r\n\x1a\n broken", f);
  fclose(f);
  st = vid_decode(tmp, &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_BAD_FRAME && strstr(err, "f000.png"), "bad frame: %d %s", st, err);
  unlink(path);

  c.max_frames = 0;
  st = vid_decode(fx("c2s_10fps.mp4"), &c, &v, err, sizeof err);
  CHECK_MSG(st == VID_UNREADABLE && strstr(err, "max_frames 0"), "%d %s", st, err);
  rmdir(tmp);
}

int main(void) {
  const char *f = getenv("VT_FIXTURES");
  snprintf(fx_dir, sizeof fx_dir, "%s", f ? f : "tests/fixtures");
  test_pick();
  test_decode();
  test_bad();
  return vt_test_finish("test_video");
}
