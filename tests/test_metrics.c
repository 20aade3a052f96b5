// ctest-labels: unit
/* metrics.jsonl stays valid JSON lines whatever the numbers: a skipped step's NaN or Inf
 * gradient norm (and any other non-finite value) is written as null, finite ones as numbers. */
#include "tests/testutil.h"
#include "train/metrics.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
  char dir[] = "/tmp/vt_metrics_XXXXXX", err[512], path[256];
  CHECK(mkdtemp(dir) != NULL);
  vt_metrics m;
  CHECK_MSG(vt_metrics_open(&m, dir, 0, 3, NULL, err, sizeof err) == 0, "%s", err);
  vt_step_metrics s = {.step = 1,
                       .loss = 2.5,
                       .lr = 1e-3,
                       .grad_norm = NAN,
                       .tokens = 10,
                       .tokens_per_s = INFINITY,
                       .skipped = true};
  vt_metrics_step(&m, &s, false);
  s.step = 2;
  s.grad_norm = 0.75;
  s.tokens_per_s = 100;
  s.skipped = false;
  vt_metrics_step(&m, &s, false);
  vt_metrics_value(&m, 2, "eval_loss", -INFINITY);
  vt_metrics_close(&m);
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  FILE *f = fopen(path, "r");
  CHECK(f != NULL);
  char line[1024];
  int n = 0;
  while (f && fgets(line, sizeof line, f)) {
    json_error_t je;
    json_t *j = json_loads(line, 0, &je);
    CHECK_MSG(j != NULL, "line %d is not JSON: %s (%s)", n + 1, line, je.text);
    if (j && n == 0)
      CHECK(json_is_null(json_object_get(j, "grad_norm")) &&
            json_is_null(json_object_get(j, "tokens_per_s")) &&
            json_real_value(json_object_get(j, "loss")) == 2.5 &&
            json_is_true(json_object_get(j, "skipped")));
    if (j && n == 1) CHECK(json_real_value(json_object_get(j, "grad_norm")) == 0.75);
    if (j && n == 2) CHECK(json_is_null(json_object_get(j, "eval_loss")));
    json_decref(j);
    n++;
  }
  if (f) fclose(f);
  CHECK(n == 3);
  unlink(path);
  rmdir(dir);
  return vt_test_finish("test_metrics");
}
