/* `vita features KIND FILE`: what the data pipeline makes of one medium, for checks and for
 * users who cache features. KIND is looked up in a table of subcommands (image, video here;
 * audio lives in cmd_features_audio.c): adding a kind is one table entry plus its options in
 * the shared option table below (the parser needs one table per command). */
#include "checkpoints/safetensors_write.h"
#include "cli/cli.h"
#include "cli/cmd_features_audio.h"
#include "data/tiling.h"
#include "data/video.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One kind of medium: run gets the parsed options and the medium's path. */
typedef struct {
  const char *name;
  const char *summary;
  int (*run)(const cli_args *a, const char *file);
} features_sub;

static const cli_opt opts[] = {
    {"out", CLI_OPT_STR, NULL,
     "write to this .safetensors (image/video: pixel_values, the normalised tiles; audio: fbank)"},
    {"max-pixels", CLI_OPT_INT, "89478485", "refuse images (frames) with more pixels"},
    {"aspect", CLI_OPT_STR, "square",
     "image_aspect_ratio: square, or pad (to a square of the mean)"},
    /* image */
    {"max-tiles", CLI_OPT_INT, "12", "image: most tiles of the dynamic grid"},
    {"no-thumbnail", CLI_OPT_FLAG, NULL, "image: no thumbnail tile after a grid of several"},
    /* video */
    {"rate", CLI_OPT_FLOAT, "1", "video: frames a second to keep (1 paper, 3 public loader)"},
    {"min-frames", CLI_OPT_INT, "4", "video: fewest frames (repeated if the video is short)"},
    {"max-frames", CLI_OPT_INT, "16", "video: most frames (evenly spaced if long)"},
    {"folder-fps", CLI_OPT_FLOAT, "1", "video: frame rate of a folder of frame images"},
    /* audio (cmd_features_audio.c) */
    {"channel", CLI_OPT_STR, "first", "audio: first (channel 0, as the public code) or mix (mean)"},
    {"dither", CLI_OPT_FLOAT, "0", "audio: Gaussian dither std on the 32768-scaled samples"},
    {"seed", CLI_OPT_INT, "0", "audio: dither noise seed"},
    {"mel-bins", CLI_OPT_INT, "80", "audio: mel bins"},
    {"prompts", CLI_OPT_INT, "0", "audio: prompt embeddings prepended per clip (in the tokens)"},
    {"max-seconds", CLI_OPT_FLOAT, "600", "audio: refuse longer files (0: no limit)"},
    {NULL, 0, NULL, NULL},
};

/* Tokens per tile: (448 / 14)^2 patches, 2x2 of them merged by the pixel shuffle. */
enum { FEATURES_TOKENS_PER_TILE = 256 };

static int tile_cfg_from(const cli_args *a, tile_cfg *c) {
  *c = tile_cfg_default();
  const char *aspect = cli_args_str(a, "aspect");
  if (strcmp(aspect, "square") && strcmp(aspect, "pad")) {
    fprintf(stderr, "vita features: --aspect: expected square or pad, found '%s'\n", aspect);
    return CLI_EXIT_USAGE;
  }
  c->pad = !strcmp(aspect, "pad");
  int64_t mt = cli_args_int(a, "max-tiles");
  if (mt < 1 || mt > 64) {
    fprintf(stderr, "vita features: --max-tiles: expected 1..64, found %lld\n", (long long)mt);
    return CLI_EXIT_USAGE;
  }
  c->max_tiles = (int)mt;
  c->thumbnail = !cli_args_flag(a, "no-thumbnail");
  return CLI_EXIT_OK;
}

/* Writes n uint8 tiles (HWC) normalised as [n, 3, S, S] f32 under pixel_values. */
static int write_tiles(const char *path, const uint8_t *tiles, int n, int s) {
  size_t per = (size_t)3 * s * s;
  float *px = malloc(sizeof(float) * per * (size_t)n);
  if (!px) {
    fprintf(stderr, "vita features: out of memory for %d tiles\n", n);
    return CLI_EXIT_FAIL;
  }
  for (int t = 0; t < n; t++) tile_normalize(tiles + (size_t)t * per, s, px + (size_t)t * per);
  st_entry e = {"pixel_values", VT_F32, 4, {n, 3, s, s}, px};
  st_kv meta = {"format", "pt"};
  char err[1024];
  int rc = st_write(path, &e, 1, &meta, 1, err, sizeof err);
  free(px);
  if (rc) {
    fprintf(stderr, "vita features: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  printf("wrote %s: pixel_values [%d, 3, %d, %d] f32\n", path, n, s, s);
  return CLI_EXIT_OK;
}

static int run_image(const cli_args *a, const char *file) {
  tile_cfg c;
  int rc = tile_cfg_from(a, &c);
  if (rc) return rc;
  char err[1024];
  img_rgb im;
  img_status st = img_decode_file(file, cli_args_int(a, "max-pixels"), &im, err, sizeof err);
  if (st) {
    fprintf(stderr, "vita features: %s: %s\n", img_status_name(st), err);
    return CLI_EXIT_FAIL;
  }
  tile_set ts;
  if (tile_image(&im, &c, &ts)) {
    fprintf(stderr, "vita features: %s: out of memory tiling %dx%d\n", file, im.w, im.h);
    img_free(&im);
    return CLI_EXIT_FAIL;
  }
  printf("%s: %dx%d, grid %dx%d (columns x rows)%s, %d tiles, %d tokens\n", file, im.w, im.h,
         ts.cols, ts.rows, ts.n > ts.cols * ts.rows ? " + thumbnail" : "", ts.n,
         ts.n * FEATURES_TOKENS_PER_TILE);
  const char *out = cli_args_str(a, "out");
  rc = out ? write_tiles(out, ts.px, ts.n, ts.size) : CLI_EXIT_OK;
  tile_set_free(&ts);
  img_free(&im);
  return rc;
}

static int run_video(const cli_args *a, const char *file) {
  tile_cfg c;
  int rc = tile_cfg_from(a, &c);
  if (rc) return rc;
  vid_cfg v = vid_cfg_default();
  v.rate = cli_args_float(a, "rate");
  v.min_frames = (int)cli_args_int(a, "min-frames");
  v.max_frames = (int)cli_args_int(a, "max-frames");
  v.folder_fps = cli_args_float(a, "folder-fps");
  v.max_pixels = cli_args_int(a, "max-pixels");
  char err[1024];
  vid_frames fr;
  vid_status st = vid_decode(file, &v, &fr, err, sizeof err);
  if (st) {
    fprintf(stderr, "vita features: %s: %s\n", vid_status_name(st), err);
    return CLI_EXIT_FAIL;
  }
  printf("%s: %lld frames at %.3f fps (%.2f s), %d picked, %d tokens\n", file,
         (long long)fr.n_total, fr.fps, (double)fr.n_total / fr.fps, fr.n,
         fr.n * FEATURES_TOKENS_PER_TILE);
  printf("frame times (s):");
  for (int i = 0; i < fr.n; i++) printf(" %.3f", fr.times[i]);
  printf("\n");
  size_t per = (size_t)3 * c.size * c.size;
  uint8_t *tiles = malloc(per * (size_t)fr.n);
  rc = tiles ? CLI_EXIT_OK : CLI_EXIT_FAIL;
  for (int i = 0; rc == CLI_EXIT_OK && i < fr.n; i++)
    if (tile_frame(&fr.frames[i], &c, tiles + (size_t)i * per)) rc = CLI_EXIT_FAIL;
  if (rc) fprintf(stderr, "vita features: %s: out of memory\n", file);
  const char *out = cli_args_str(a, "out");
  if (!rc && out) rc = write_tiles(out, tiles, fr.n, c.size);
  free(tiles);
  vid_frames_free(&fr);
  return rc;
}

static const features_sub subs[] = {
    {"image", "grid, tile and token counts of an image; --out writes the tiles", run_image},
    {"video", "picked frame times of a video or frame folder; --out writes the frames", run_video},
    {"audio", "fbank (before CMVN) with frame, encoder-frame and LLM-token counts; --out writes it",
     cli_features_audio_run},
};

static int run(const cli_args *a) {
  const size_t n_subs = sizeof subs / sizeof subs[0];
  if (a->n_positional == 2)
    for (size_t i = 0; i < n_subs; i++)
      if (!strcmp(a->positional[0], subs[i].name)) return subs[i].run(a, a->positional[1]);
  fprintf(stderr, "usage: vita features KIND FILE [options]; KIND is one of:\n");
  for (size_t i = 0; i < n_subs; i++) fprintf(stderr, "  %-8s %s\n", subs[i].name, subs[i].summary);
  return CLI_EXIT_USAGE;
}

const cli_cmd cli_cmd_features = {
    "features", "what the pipeline makes of one medium: image or video tiles, audio fbank",
    "image|video|audio FILE", opts, run};
