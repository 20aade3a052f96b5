/* One fuzz input through the config readers: the first byte picks the reader, the rest is the
 * file. A stage YAML (stages/stage_config.c, from a temporary file as `vita train` reads it):
 * refused with a message naming the file, or accepted with the documented bounds holding
 * (sizes, counts, finite weights and rates). A model config.json (HF-style, as `vita import`
 * and stage configs read it) through every registered model: refused with a message, or a
 * model whose registered parameters all have a size that fits in memory arithmetic. Shared by
 * the libFuzzer target and the corpus replay; returns 0 when it behaved. */
#ifndef VT_CONFIG_FUZZ_ONE_H
#define VT_CONFIG_FUZZ_ONE_H

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/model.h"
#include "stages/stage_config.h"

static inline int config_fuzz_stage(const uint8_t *d, size_t n) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/vt_config_fuzz_%d_XXXXXX", (int)getpid());
  int fd = mkstemp(path);
  if (fd < 0) return 0; /* no disk: not the parser */
  FILE *f = fdopen(fd, "wb");
  if (!f) return 0;
  int wrote = fwrite(d, 1, n, f) == n;
  if (fclose(f) || !wrote) {
    unlink(path);
    return 0;
  }
  static stage_cfg c;
  char err[2048] = "";
  int rc = stage_config_load(&c, path, err, sizeof err);
  unlink(path);
  if (rc) return err[0] && strstr(err, path) ? 0 : 1; /* the message names the file */
  int bad = c.batch_size < 1 || c.batch_size > STAGE_MAX_BATCH || c.grad_accum < 1 ||
            c.max_len < 2 || c.max_len > STAGE_MAX_LEN ||
            c.batch_size * c.max_len > STAGE_MAX_TOKENS || (c.steps > 0) == (c.epochs > 0) ||
            c.n_parts < 0 || c.n_parts > STAGE_MAX_PARTS || c.n_init < 0 ||
            c.n_init > STAGE_MAX_INIT || c.n_ratios > STAGE_MAX_RATIOS ||
            c.n_trainable > STAGE_MAX_LIST || c.n_frozen > STAGE_MAX_LIST ||
            c.n_losses > VT_MODEL_MAX_TERMS || c.n_phases > VT_MODEL_MAX_PHASES ||
            !c.model_config[0] || !c.mixture[0] || !c.out_dir[0];
  for (int i = 0; !bad && i < c.n_ratios; i++)
    bad = !isfinite(c.ratios[i].weight) || c.ratios[i].weight < 0;
  for (int i = 0; !bad && i < c.n_losses; i++) bad = !isfinite(c.losses[i].weight);
  if (!bad && !isnan(c.optim.lr)) bad = !isfinite(c.optim.lr) || c.optim.lr < 0;
  return bad;
}

/* Every model's create over the JSON; any that accepts must register sane parameters. */
static inline int config_fuzz_model(const uint8_t *d, size_t n) {
  json_error_t je;
  json_t *j = json_loadb((const char *)d, n, JSON_REJECT_DUPLICATES, &je);
  if (!j) return 0;
  static const char *const names[] = {"qwen2", "vita", "tts_decoder", "ticodec", "audio_ctc"};
  int bad = 0;
  for (size_t k = 0; !bad && k < sizeof names / sizeof names[0]; k++) {
    const vt_model_ops *ops = vt_model_find(names[k]);
    if (!ops) continue;
    vt_params ps;
    vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
    vt_model_opts o = {0};
    char err[1024] = "";
    vt_model *m = vt_model_create(ops, j, "fuzz/config.json", &o, &ps, err, sizeof err);
    if (!m) {
      bad = !err[0];
    } else {
      double total = 0;
      for (int i = 0; !bad && i < ps.n; i++) {
        int64_t e = vt_shape_numel(ps.items[i]->t.ndim, ps.items[i]->t.shape);
        bad = e < 1;
        total += (double)e;
      }
      bad = bad || ps.n < 1 || total > 9.2e18;
      vt_model_destroy(m);
    }
    vt_params_free(&ps);
  }
  json_decref(j);
  return bad;
}

static inline int config_fuzz_one(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  return data[0] % 2 ? config_fuzz_model(data + 1, size - 1)
                     : config_fuzz_stage(data + 1, size - 1);
}

#endif
