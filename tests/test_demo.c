// ctest-labels: e2e
/* The built-in demo job end to end: the loss falls from ln(vocab) to near the entropy of the
 * generating rule, and two runs with the same seed give bit-identical losses. */
#include "tests/testutil.h"
#include "train/demo.h"

int main(void) {
  vt_demo_cfg cfg = vt_demo_defaults();
  cfg.steps = 200;
  cfg.log_every = 0;
  vt_demo_result a, b;
  char err[256];
  CHECK(vt_demo_run(&cfg, &a, err, sizeof err) == 0);
  CHECK(vt_demo_run(&cfg, &b, err, sizeof err) == 0);
  printf("loss %.4f -> %.4f, best reachable %.4f\n", a.first_loss, a.last_loss, a.min_possible);
  CHECK_MSG(a.first_loss > 3.5, "first loss %.4f should be near ln(64)", a.first_loss);
  CHECK_MSG(a.last_loss < a.min_possible + 0.35, "last loss %.4f is far from %.4f", a.last_loss,
            a.min_possible);
  CHECK(a.first_loss == b.first_loss && a.last_loss == b.last_loss);
  cfg.context = 0;
  CHECK(vt_demo_run(&cfg, &a, err, sizeof err) == -1);
  return vt_test_finish("test_demo");
}
