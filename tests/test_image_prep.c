// ctest-labels: unit
/* prep with real media: images become their dynamic tiles and videos one tile per picked frame,
 * stored as uint8 in the shard with a tile count per medium, byte-equal to tiling the file
 * directly; a CMYK JPEG, a decompression bomb and a truncated video are skipped as "bad media"
 * with their ids and reasons, and prep goes on. Skips (77) without the shared tokenizer. */
#include "data/prep.h"
#include "data/shard.h"
#include "tests/check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *fx_dir;

static void path_of(char *out, size_t len, const char *rel) {
  snprintf(out, len, "%s/%s", fx_dir, rel);
}

int main(void) {
  const char *shared = getenv("VT_SHARED_DIR");
  fx_dir = getenv("VT_FIXTURES") ? getenv("VT_FIXTURES") : "tests/fixtures";
  char tokdir[4096], err[2048];
  snprintf(tokdir, sizeof tokdir, "%s/data/qwen-tokenizer", shared ? shared : "../shared");
  tok_tokenizer *t;
  if (tok_init(&t, tokdir, err, sizeof err)) {
    fprintf(stderr, "skip: %s\n", err);
    return 77;
  }
  char dir[] = "/tmp/vt_test_image_prep_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char json[4200], yaml[4200], out[4200];
  snprintf(json, sizeof json, "%s/in.jsonl", dir);
  snprintf(yaml, sizeof yaml, "%s/data.yaml", dir);
  snprintf(out, sizeof out, "%s/shards", dir);
  FILE *f = fopen(yaml, "w");
  fprintf(f,
          "max_len: 2000\nshard_samples: 100\nsets:\n  fx:\n    folder: %s\n"
          "media:\n  max_tiles: 6\n  video_fps: 1\n",
          fx_dir);
  fclose(f);
  f = fopen(json, "w");
  static const char *const lines[] = {
      "{\"id\": \"img\", \"set\": \"fx\", \"image\": \"image/photo_baseline.jpg\", "
      "\"conversations\": [{\"from\": \"human\", \"value\": \"<image>\\nWho?\"}, "
      "{\"from\": \"gpt\", \"value\": \"A person.\"}]}",
      "{\"id\": \"cmyk\", \"set\": \"fx\", \"image\": \"image/cmyk.jpg\", "
      "\"conversations\": [{\"from\": \"human\", \"value\": \"<image>\"}, "
      "{\"from\": \"gpt\", \"value\": \"x\"}]}",
      "{\"id\": \"vid\", \"set\": \"fx\", \"video\": \"video/c7s_10fps.mp4\", "
      "\"conversations\": [{\"from\": \"human\", \"value\": \"<video>\\nWhat?\"}, "
      "{\"from\": \"gpt\", \"value\": \"Colours.\"}]}",
      "{\"id\": \"bomb\", \"set\": \"fx\", \"image\": \"image/bomb.png\", "
      "\"conversations\": [{\"from\": \"human\", \"value\": \"<image>\"}, "
      "{\"from\": \"gpt\", \"value\": \"x\"}]}",
      "{\"id\": \"two\", \"set\": \"fx\", \"image\": [\"image/synth_rgb.png\", "
      "\"image/photo_b.png\"], \"conversations\": [{\"from\": \"human\", \"value\": "
      "\"<image><image> Same?\"}, {\"from\": \"gpt\", \"value\": \"No.\"}]}",
      "{\"id\": \"cut\", \"set\": \"fx\", \"video\": \"video/truncated.mp4\", "
      "\"conversations\": [{\"from\": \"human\", \"value\": \"<video>\"}, "
      "{\"from\": \"gpt\", \"value\": \"x\"}]}",
      "{\"id\": \"text\", \"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, "
      "{\"from\": \"gpt\", \"value\": \"Hello.\"}]}",
  };
  for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) fprintf(f, "%s\n", lines[i]);
  fclose(f);

  sample_config cfg;
  sample_config_default(&cfg);
  CHECK_MSG(sample_config_load(&cfg, yaml, err, sizeof err) == 0, "%s", err);
  CHECK(cfg.media.decode && cfg.media.tiles.max_tiles == 6 && cfg.media.video.rate == 1);
  const char *inputs[1] = {json};
  prep_opts o = {.cfg = &cfg, .tok = t, .inputs = inputs, .n_inputs = 1, .out_dir = out};
  prep_stats st;
  CHECK_MSG(prep_run(&o, &st, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(st.n_written == 4 && st.n_skipped[SAMPLE_BAD_MEDIA] == 3, "written %lld, bad %lld",
            (long long)st.n_written, (long long)st.n_skipped[SAMPLE_BAD_MEDIA]);
  static const char *const bad[][2] = {
      {"cmyk", "CMYK"}, {"bomb", "10000 x 10000"}, {"cut", "truncated.mp4"}};
  for (size_t k = 0; k < st.n_skips && k < 3; k++) {
    CHECK_MSG(st.skips[k].reason == SAMPLE_BAD_MEDIA && !strcmp(st.skips[k].id, bad[k][0]) &&
                  strstr(st.skips[k].message, bad[k][1]),
              "skip %zu: %s: %s", k, st.skips[k].id, st.skips[k].message);
  }
  prep_print_summary(stdout, &st, out, 5);

  /* the shard against tiling the files directly */
  char path[4400];
  snprintf(path, sizeof path, "%s/shard-00000.h5", out);
  shard *sh;
  CHECK_MSG(shard_open(&sh, path, true, err, sizeof err) == 0, "%s", err);
  shard_sample s = {0};
  tile_cfg tc = cfg.media.tiles;
  size_t tb = 448 * 448 * 3;
  char file[4200];
  /* img: 512x600 with at most 6 tiles */
  CHECK(shard_read_sample(sh, 0, &s, err, sizeof err) == 0);
  img_rgb im;
  path_of(file, sizeof file, "image/photo_baseline.jpg");
  CHECK(img_decode_file(file, 0, &im, err, sizeof err) == IMG_OK);
  tile_set ts;
  CHECK(tile_image(&im, &tc, &ts) == 0);
  CHECK_MSG(s.n_media == 1 && s.n_tiles[0] == ts.n && s.n_tiles_total == ts.n && s.tile_size == 448,
            "img: %d tiles, tiling gives %d", s.n_media ? s.n_tiles[0] : -1, ts.n);
  CHECK(s.n_tiles_total == ts.n && !memcmp(s.tiles, ts.px, (size_t)ts.n * tb));
  printf("img: grid %dx%d, %d tiles stored\n", ts.cols, ts.rows, ts.n);
  tile_set_free(&ts);
  img_free(&im);
  /* vid: 7 s at 10 fps -> 7 frames, one tile each */
  CHECK(shard_read_sample(sh, 1, &s, err, sizeof err) == 0);
  vid_frames vf;
  path_of(file, sizeof file, "video/c7s_10fps.mp4");
  CHECK(vid_decode(file, &cfg.media.video, &vf, err, sizeof err) == VID_OK);
  CHECK_MSG(s.n_media == 1 && s.n_tiles[0] == 7 && vf.n == 7, "vid: %d tiles",
            s.n_media ? s.n_tiles[0] : -1);
  uint8_t *one = malloc(tb);
  for (int i = 0; i < vf.n && i < s.n_tiles_total; i++) {
    CHECK(tile_frame(&vf.frames[i], &tc, one) == 0);
    CHECK_MSG(!memcmp(s.tiles + (size_t)i * tb, one, tb), "vid frame %d differs", i);
  }
  vid_frames_free(&vf);
  /* two: 29x19 (aspect 1.53: the 3x2 grid, 6 tiles + thumbnail) and 240x200 (1x1) */
  CHECK(shard_read_sample(sh, 2, &s, err, sizeof err) == 0);
  CHECK_MSG(s.n_media == 2 && s.n_tiles[0] == 7 && s.n_tiles[1] == 1 && s.n_tiles_total == 8,
            "two: %zu media, %d + %d tiles", s.n_media, s.n_media ? s.n_tiles[0] : -1,
            s.n_media > 1 ? s.n_tiles[1] : -1);
  /* normalised when loaded: tile_normalize of the stored bytes */
  float *px = malloc(sizeof(float) * 3 * 448 * 448);
  tile_normalize(s.tiles, 448, px);
  CHECK(fabsf(px[0] - ((float)s.tiles[0] / 255.0f - 0.485f) / 0.229f) < 1e-6f);
  /* text: no media, no tiles */
  CHECK(shard_read_sample(sh, 3, &s, err, sizeof err) == 0);
  CHECK(s.n_media == 0 && s.n_tiles_total == 0);
  free(px);
  free(one);
  shard_sample_free(&s);
  shard_close(sh);
  prep_stats_free(&st);
  sample_config_free(&cfg);
  tok_free(t);
  unlink(path);
  rmdir(out);
  unlink(json);
  unlink(yaml);
  rmdir(dir);
  return vt_test_finish("test_image_prep");
}
