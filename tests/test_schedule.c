// ctest-labels: unit
/* LR schedules against torch's schedulers and HF transformers' cosine lambdas
 * (tests/fixtures/optim/schedule.txt from tests/reference/gen_optim_fixtures.py), plus the
 * configuration checks. */
#include <string.h>

#include "tests/fixture.h"
#include "tests/testutil.h"
#include "train/schedule.h"

/* The fixture holds f32 values with 9 significant digits: a relative error of a few float
 * ulps covers the rounding; the absolute term covers multipliers that are exactly 0. */
#define RTOL 1e-6
#define ATOL 1e-9

static void check_sched(const vt_fixture *fx, const char *name, vt_sched_cfg cfg) {
  const vt_fixture_tensor *want = vt_fixture_get(fx, name);
  vt_sched s;
  char err[256];
  CHECK_MSG(vt_sched_init(&s, &cfg, err, sizeof err) == 0, "%s: %s", name, err);
  float got[256];
  CHECK(want->n <= 256);
  for (long i = 0; i < want->n && i < 256; i++) got[i] = (float)vt_sched_lr(&s, i);
  CHECK_CLOSE(name, got, want->f, want->n, ATOL, RTOL);
}

int main(void) {
  vt_fixture *fx = vt_fixture_load("optim/schedule.txt");
  check_sched(fx, "constant", (vt_sched_cfg){.kind = VT_SCHED_CONSTANT});
  check_sched(fx, "cosine_steps",
              (vt_sched_cfg){.kind = VT_SCHED_COSINE, .total_steps = 50, .warmup_steps = 5});
  check_sched(fx, "cosine_ratio",
              (vt_sched_cfg){.kind = VT_SCHED_COSINE, .total_steps = 100, .warmup_ratio = 0.03});
  check_sched(
      fx, "cosine_min",
      (vt_sched_cfg){
          .kind = VT_SCHED_COSINE, .total_steps = 30, .warmup_steps = 3, .min_lr_ratio = 0.1});
  check_sched(fx, "noam", (vt_sched_cfg){.kind = VT_SCHED_NOAM, .warmup_steps = 25});
  check_sched(fx, "noam_dmodel",
              (vt_sched_cfg){.kind = VT_SCHED_NOAM, .warmup_steps = 40, .noam_model_dim = 512});
  check_sched(fx, "exp_epoch",
              (vt_sched_cfg){.kind = VT_SCHED_EXP_EPOCH, .steps_per_epoch = 7, .gamma = 0.9});

  /* The warmup ratio resolves as HF Trainer does: ceil(ratio * total). */
  vt_sched s;
  char err[256];
  vt_sched_cfg c = {.kind = VT_SCHED_COSINE, .total_steps = 1000, .warmup_ratio = 0.03};
  CHECK(vt_sched_init(&s, &c, err, sizeof err) == 0 && s.warmup == 30);
  c.total_steps = 101;
  CHECK(vt_sched_init(&s, &c, err, sizeof err) == 0 && s.warmup == 4);
  /* Past total_steps the cosine stays at its floor. */
  c = (vt_sched_cfg){.kind = VT_SCHED_COSINE, .total_steps = 10, .min_lr_ratio = 0.25};
  CHECK(vt_sched_init(&s, &c, err, sizeof err) == 0);
  CHECK(vt_sched_lr(&s, 10) == 0.25 && vt_sched_lr(&s, 15) == 0.25 && vt_sched_lr(&s, 0) == 1.0);

  /* Bad configurations are reported, not guessed around. */
  vt_sched_cfg bad[] = {
      {.kind = VT_SCHED_COSINE, .total_steps = 0},
      {.kind = VT_SCHED_COSINE, .total_steps = 10, .warmup_ratio = 1.5},
      {.kind = VT_SCHED_COSINE, .total_steps = 10, .warmup_steps = 2, .warmup_ratio = 0.1},
      {.kind = VT_SCHED_COSINE, .total_steps = 10, .min_lr_ratio = -0.1},
      {.kind = VT_SCHED_NOAM, .warmup_steps = 0},
      {.kind = VT_SCHED_EXP_EPOCH, .steps_per_epoch = 0, .gamma = 0.9},
      {.kind = VT_SCHED_EXP_EPOCH, .steps_per_epoch = 3, .gamma = 0},
      {.kind = (vt_sched_kind)42},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    err[0] = 0;
    CHECK_MSG(vt_sched_init(&s, &bad[i], err, sizeof err) == -1 && err[0], "bad config %zu", i);
  }
  vt_fixture_free(fx);
  return vt_test_finish("test_schedule");
}
