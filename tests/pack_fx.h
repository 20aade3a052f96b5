/* Helpers of the packing tests (tests/test_pack_images.c, test_pack_audio.c), which train
 * packed rows of media samples in a temporary directory: a file writer, and the max_len check
 * (a sample whose media alone overflows a row is skipped and counted, never cut through its
 * media positions, while a text-only sample is cut and packed alone). */
#ifndef VT_TEST_PACK_FX_H
#define VT_TEST_PACK_FX_H

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "checkpoints/ckpt.h"
#include "stages/stage_config.h"
#include "tests/check.h"
#include "train/trainer.h"

static void pack_fx_write_file(const char *dir, const char *name, const char *text) {
  char p[512];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  FILE *f = fopen(p, "w");
  fputs(text, f);
  fclose(f);
}

/* One step of one row at max_len over dir's packed-mix.yaml and model.json, which hold exactly
 * one text-only sample longer than max_len (and media samples that overflow it once expanded):
 * the step draws until that sample, so samples.json counts the skipped ones plus one. */
static void pack_fx_too_long(const char *dir, int max_len, const char *media) {
  char text[1024], path[600], err[2048];
  snprintf(text, sizeof text,
           "model: {config: model.json}\n"
           "data: {mixture: packed-mix.yaml, max_len: %d}\n"
           "train: {steps: 1, batch_size: 1, seed: 5, lr: 1.0e-3}\n"
           "output: {dir: short, log_every: 0}\n",
           max_len);
  pack_fx_write_file(dir, "short.yaml", text);
  static stage_cfg cfg;
  snprintf(path, sizeof path, "%s/short.yaml", dir);
  vt_trainer_opts o = {.cfg = &cfg};
  vt_train_result r;
  if (stage_config_load(&cfg, path, err, sizeof err) || vt_train(&o, &r, err, sizeof err)) {
    CHECK_MSG(0, "%s", err);
    return;
  }
  snprintf(path, sizeof path, "%s/short/samples.json", dir);
  char *s = ckpt_read_text(path, err, sizeof err);
  json_t *j = s ? json_loads(s, 0, NULL) : NULL;
  int64_t drawn = json_integer_value(
      json_object_get(json_array_get(json_object_get(j, "datasets"), 0), "drawn"));
  json_decref(j);
  free(s);
  CHECK_MSG(r.truncated_samples == 1 && drawn == r.skipped_samples + 1 && isfinite(r.last_loss),
            "max_len %d: %lld cut (want 1), %lld skipped, %lld drawn (want skipped + 1)", max_len,
            (long long)r.truncated_samples, (long long)r.skipped_samples, (long long)drawn);
  printf("max_len %d: %lld %s samples skipped (not cut), the text-only one cut and packed alone\n",
         max_len, (long long)r.skipped_samples, media);
}

#endif
