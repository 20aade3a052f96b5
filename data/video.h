/* Video in: a file decoded with FFmpeg's libraries (libavformat, libavcodec, libswscale), or a
 * folder of frame images taken in name order. Frames are picked by the public loader's rule at
 * a configurable rate (DESIGN.md §4): every round(fps / rate)-th frame, then 16 evenly spaced of
 * those if more than max_frames, or min_frames evenly spaced (frames repeat) if fewer. At 1 fps
 * this is the paper's rule (4 frames under 4 s, one a second up to 16 s, 16 frames beyond). */
#ifndef VT_DATA_VIDEO_H
#define VT_DATA_VIDEO_H

#include "data/image.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  double rate;          /* frames a second to keep: 1 (paper, default) or 3 (public loader) */
  int min_frames;       /* 4 */
  int max_frames;       /* 16 */
  double folder_fps;    /* frame rate of a folder of frame images; default 1 */
  long long max_pixels; /* per frame, as img_decode_file; <= 0: the default */
} vid_cfg;

vid_cfg vid_cfg_default(void);

/* The frames to keep out of n_frames at fps: writes their indices (ascending, may repeat) to
 * idx, which must hold max(min_frames, max_frames) entries. Returns the count, 0 if n_frames
 * is 0. */
int vid_pick_frames(int64_t n_frames, double fps, const vid_cfg *c, int64_t *idx);

typedef enum {
  VID_OK = 0,
  VID_UNREADABLE, /* cannot open the file or folder, or not a container FFmpeg knows */
  VID_NO_VIDEO,   /* no video stream */
  VID_NO_FRAMES,  /* a video stream (or folder) without any frame */
  VID_CORRUPT,    /* the decoder failed, or frames the container promised are missing */
  VID_BAD_FRAME,  /* a frame image of a folder is bad (its image status in the message) */
  VID_N_STATUS
} vid_status;

const char *vid_status_name(vid_status s);

/* The picked frames, 8-bit RGB at their own size. */
typedef struct {
  int n;
  img_rgb *frames;
  int64_t *index; /* frame number of each in the video */
  double *times;  /* seconds: index / fps */
  double fps;
  int64_t n_total; /* frames in the video */
} vid_frames;

/* Decodes path (a file, or a directory of frame images). Returns VID_OK with out filled (free
 * with vid_frames_free), else a status and err naming the file and what was wrong. */
vid_status vid_decode(const char *path, const vid_cfg *c, vid_frames *out, char *err,
                      size_t err_len);
void vid_frames_free(vid_frames *v);

#endif
