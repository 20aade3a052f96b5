// ctest-labels: unit
/* The shipped stage 3.2 configs: both stage files load (no unknown key), name the speech
 * decoder, train the decoder part and freeze the LLM table; the full-size decoder has about
 * 0.13B trained parameters (DESIGN.md: 0.12-0.17B) beside the frozen 152064 x 3584 table,
 * and the tiny decoder config builds. */
#include <stdlib.h>
#include <string.h>

#include "model/tts.h"
#include "stages/stage_config.h"
#include "stages/stage_hf.h"
#include "tests/testutil.h"

static const char *src(const char *rel) {
  static char path[2][1024];
  static int k;
  const char *dir = getenv("VT_SOURCE_DIR");
  k ^= 1;
  snprintf(path[k], sizeof path[k], "%s/%s", dir ? dir : ".", rel);
  return path[k];
}

static void stage(const char *rel) {
  stage_cfg *c = calloc(1, sizeof *c);
  char err[1024];
  stage_cfg_defaults(c);
  CHECK_MSG(stage_config_load(c, src(rel), err, sizeof err) == 0, "%s: %s", rel, err);
  CHECK(!strcmp(c->model_name, "tts_decoder"));
  CHECK_MSG(c->n_trainable == 1 && strstr(c->trainable[0], "layers_pre_nn.*") &&
                strstr(c->trainable[0], "out_fnn.*"),
            "%s: trainable %s", rel, c->n_trainable ? c->trainable[0] : "(none)");
  CHECK(c->n_frozen == 1 && !strcmp(c->frozen[0], "model.embed_tokens.weight"));
  CHECK(c->n_init == 1 && !strcmp(c->init[0].params, "model.embed_tokens.weight"));
  stage_model_info info;
  CHECK_MSG(stage_model_describe(c->model_config, &info, err, sizeof err) == 0, "%s", err);
  CHECK(!strcmp(info.model, "tts_decoder") && !strcmp(info.terms, "speech_ce"));
  printf("%s: %lld trained parameters, %lld in all\n", rel, (long long)info.n_phase_params,
         (long long)info.n_params);
  free(c);
}

int main(void) {
  stage("configs/stages/3.2.yaml");
  stage("configs/stages/3.2-tiny.yaml");
  stage_model_info info;
  char err[512];
  CHECK_MSG(stage_model_describe(src("configs/models/tts-decoder.json"), &info, err, sizeof err) ==
                0,
            "%s", err);
  tts_cfg full = tts_cfg_full();
  CHECK(info.n_phase_params == tts_param_count(&full) && info.n_phase_params == 132144004);
  CHECK(info.n_phase_params > 120000000 && info.n_phase_params < 170000000);
  CHECK(info.n_params - info.n_phase_params == (int64_t)152064 * 3584);
  CHECK(info.n_tensors == 1 + 8 * 9 + 3 + 1); /* embedding, 8 layers, norm + head, LLM table */
  return vt_test_finish("test_tts_configs");
}
