// ctest-labels: unit
/* Parameter registration on hostile sizes: 100,000 names register in linear time (a hashed
 * index, not a scan per name) and every one is found again; a duplicate is refused; sizes
 * whose product or the store's total overflow are refused with the parameter named, and
 * vt_shape_numel says -1 for them. */
#include "autograd/params.h"
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(void) {
  vt_params ps;
  char err[256] = "", name[64];
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  clock_t t0 = clock();
  int ok = 1;
  for (int i = 0; i < 100000 && ok; i++) {
    snprintf(name, sizeof name, "model.layers.%d.mlp.weight", i);
    ok = vt_params_add(&ps, name, VT_F32, 1, (int64_t[]){1}, err, sizeof err) != NULL;
  }
  double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
  CHECK_MSG(ok, "%s", err);
  CHECK_MSG(secs < 5.0, "100,000 registrations took %.1f s", secs); /* a scan took minutes */
  int found = 0;
  for (int i = 0; i < 100000; i += 997) {
    snprintf(name, sizeof name, "model.layers.%d.mlp.weight", i);
    vt_param *p = vt_params_find(&ps, name);
    found += p && !strcmp(p->name, name);
  }
  CHECK(found == 101);
  CHECK(vt_params_find(&ps, "model.layers.100000.mlp.weight") == NULL);
  CHECK(vt_params_add(&ps, "model.layers.7.mlp.weight", VT_F32, 1, (int64_t[]){1}, err,
                      sizeof err) == NULL);
  CHECK_MSG(strstr(err, "model.layers.7.mlp.weight: registered twice"), "%s", err);
  CHECK(vt_params_add(&ps, "huge", VT_F32, 2, (int64_t[]){INT64_C(1) << 32, INT64_C(1) << 32}, err,
                      sizeof err) == NULL);
  CHECK_MSG(strstr(err, "parameter huge: its size (or the store's total) overflows"), "%s", err);
  CHECK(vt_params_add(&ps, "vocab", VT_BF16, 2, (int64_t[]){INT64_C(1) << 62, 1}, err,
                      sizeof err) == NULL);
  CHECK_MSG(strstr(err, "parameter vocab"), "%s", err);
  vt_params_free(&ps);
  CHECK(vt_shape_numel(2, (int64_t[]){INT64_C(1) << 32, INT64_C(1) << 32}) == -1);
  CHECK(vt_shape_numel(2, (int64_t[]){3, -1}) == -1);
  CHECK(vt_shape_numel(3, (int64_t[]){INT64_C(1) << 20, 1 << 20, 1 << 20}) == INT64_C(1) << 60);
  return vt_test_finish("test_params");
}
