/* The media part of the data config (the `media:` mapping of a prep config) and the one call
 * that turns a medium into the uint8 tiles a shard stores: an image through dynamic tiling, a
 * video (file or frame folder) through the frame rule with one tile per frame, audio into
 * none (its features are the audio pipeline's). */
#ifndef VT_DATA_MEDIA_H
#define VT_DATA_MEDIA_H

#include "data/tiling.h"
#include "data/video.h"
#include "data/yamlcfg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
  bool decode;          /* decode media in prep and store tiles (default true) */
  tile_cfg tiles;       /* image_aspect_ratio (square | pad), max_tiles, thumbnail */
  vid_cfg video;        /* video_fps, video_min_frames, video_max_frames, frame_folder_fps */
  long long max_pixels; /* per image or frame (default Pillow's 89478485) */
} media_cfg;

media_cfg media_cfg_default(void);
/* Reads the `media:` mapping n of a config over the defaults. Unknown keys and bad values are
 * errors naming the file, the line and the key. Returns 0 or -1. */
int media_cfg_load(ycfg *y, yaml_node_t *n, media_cfg *m, char *err, size_t err_len);

/* Growable uint8 tile storage for one sample. */
typedef struct {
  uint8_t *px;
  size_t n_tiles, cap_tiles;
  int size;
} media_tiles;

void media_tiles_free(media_tiles *t);

/* Appends the tiles of one medium (kind: chat_media_kind) at path to t; *n_added says how
 * many. Returns 0, or -1 with err naming the file and the reason (the image or video status:
 * corrupt, truncated, empty, too large, CMYK, no video stream, no frames, ...). */
int media_add_tiles(const media_cfg *m, int kind, const char *path, media_tiles *t,
                    int32_t *n_added, char *err, size_t err_len);

#endif
