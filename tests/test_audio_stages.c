// ctest-labels: unit
/* The stage 2.1b / 2.2 configs load and say what DESIGN.md §6 says: 2.1b trains the audio adapter
 * (and prompts) alone at 5e-4 from 1.3 + 2.1a; 2.2 trains both encoders, both adapters, the LLM
 * and the modality head at 1e-5 (the tower's group at 2e-6) with the LM and modality terms at
 * weight 1, from 2.1b. Both model configs build: the release layout with the audio parts, and
 * the same plus the head (terms lm and modality). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_config.h"
#include "stages/stage_model.h"
#include "tests/check.h"

static void load(const char *name, stage_cfg *c) {
  const char *src = getenv("VT_SOURCE_DIR");
  char path[4200], err[1024];
  snprintf(path, sizeof path, "%s/configs/stages/%s", src ? src : ".", name);
  CHECK_MSG(stage_config_load(c, path, err, sizeof err) == 0, "%s", err);
}

static bool has(const stage_cfg *c, const char *glob) {
  for (int i = 0; i < c->n_trainable; i++)
    if (strstr(c->trainable[i], glob)) return true;
  return false;
}

/* The model of c builds (parameters registered, none allocated) with these terms. */
static void builds(const stage_cfg *c, int terms) {
  char err[1024];
  vt_params ps;
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  vt_model *m =
      stage_model_open(c->model_name, c->model_config, &c->model_opts, &ps, err, sizeof err);
  CHECK_MSG(m != NULL, "%s: %s", c->path, err);
  if (m) {
    CHECK(m->n_terms == terms && !strcmp(m->terms[0].name, "lm"));
    CHECK(vt_params_find(&ps, "model.audio_encoder.adpter.project.weight"));
    CHECK(vt_params_find(&ps, "model.audio_encoder.encoder.global_cmvn.mean"));
    CHECK((vt_params_find(&ps, "model.predict_head.weight") != NULL) == (terms == 2));
  }
  vt_model_destroy(m);
  vt_params_free(&ps);
}

int main(void) {
  static stage_cfg c;
  load("2.1b.yaml", &c);
  CHECK(!strcmp(c.model_name, "vita") && c.n_init == 2);
  CHECK(has(&c, "model.audio_encoder.adpter.*") && has(&c, "prompt_embeddings") &&
        !has(&c, "model.audio_encoder.encoder") && !has(&c, "model.layers.*") &&
        !has(&c, "model.mm_projector.*"));
  CHECK(fabs(c.optim.lr - 5e-4) < 1e-12);
  CHECK(strstr(c.init[0].from, "runs/1.3") && strstr(c.init[1].from, "runs/2.1a") &&
        strstr(c.init[1].params, "model.audio_encoder.encoder.enc.*") &&
        strstr(c.init[1].params, "global_cmvn"));
  builds(&c, 1);
  load("2.2.yaml", &c);
  CHECK(has(&c, "model.vision_tower.*") && has(&c, "model.mm_projector.*") &&
        has(&c, "model.audio_encoder.encoder.enc.*") && has(&c, "model.audio_encoder.adpter.*") &&
        has(&c, "model.layers.*") && has(&c, "model.predict_head.*") && !has(&c, "global_cmvn"));
  CHECK(fabs(c.optim.lr - 1e-5) < 1e-12 && c.optim.n_groups == 1 &&
        fabs(c.optim.groups[0].lr - 2e-6) < 1e-12);
  CHECK(stage_loss_weight(&c, "lm") == 1.0 && stage_loss_weight(&c, "modality") == 1.0);
  CHECK(c.n_init == 1 && strstr(c.init[0].from, "runs/2.1b") &&
        !strstr(c.init[0].params, "predict_head"));
  builds(&c, 2);
  return vt_test_finish("test_audio_stages");
}
