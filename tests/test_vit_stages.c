// ctest-labels: unit
/* The stage 1.1 / 1.2 / 1.3 configs load and say what DESIGN.md §6 says: 1.1 trains the
 * adapter alone at 5e-4; 1.2 and 1.3 train tower, adapter and LLM at 2e-5 with the tower's
 * group at 2e-6; no clipping; each stage starts from the one before. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stages/stage_config.h"
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

int main(void) {
  static stage_cfg c;
  load("1.1.yaml", &c);
  CHECK(!strcmp(c.model_name, "vita") && c.n_init == 2);
  CHECK(has(&c, "model.mm_projector.*") && !has(&c, "model.vision_tower.*") &&
        !has(&c, "model.layers.*"));
  CHECK(fabs(c.optim.lr - 5e-4) < 1e-12 && c.optim.n_groups <= 0);
  CHECK(!strcmp(c.init[1].prefix, "model.vision_tower.vision_tower."));
  load("1.2.yaml", &c);
  CHECK(has(&c, "model.mm_projector.*") && has(&c, "model.vision_tower.*") &&
        has(&c, "model.layers.*"));
  CHECK(fabs(c.optim.lr - 2e-5) < 1e-12 && c.optim.n_groups == 1 &&
        strstr(c.optim.groups[0].globs, "model.vision_tower.*") &&
        fabs(c.optim.groups[0].lr - 2e-6) < 1e-12);
  CHECK(strstr(c.init[0].from, "runs/1.1"));
  load("1.3.yaml", &c);
  CHECK(has(&c, "model.vision_tower.*") && strstr(c.init[0].from, "runs/1.2"));
  CHECK(c.optim.n_groups == 1 && fabs(c.optim.groups[0].lr - 2e-6) < 1e-12);
  return vt_test_finish("test_vit_stages");
}
