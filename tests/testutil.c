/* Test helpers; see testutil.h. */
#include "tests/testutil.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/regfile.h"

int vt_test_failures = 0;
int vt_test_checks = 0;

bool vt_test_close(const char *what, const float *got, const float *want, long n, double atol,
                   double rtol) {
  int shown = 0;
  bool ok = true;
  for (long i = 0; i < n; i++) {
    double err = fabs((double)got[i] - (double)want[i]);
    if (!(err <= atol + rtol * fabs((double)want[i]))) {
      ok = false;
      if (shown++ < 5)
        fprintf(stderr, "  %s[%ld]: got %.9g want %.9g (err %.3g, tol %.3g)\n", what, i,
                (double)got[i], (double)want[i], err, atol + rtol * fabs((double)want[i]));
    }
  }
  return ok;
}

vt_ctx *vt_test_cpu_ctx(void) {
  const char *err = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &err);
  if (!ctx) {
    fprintf(stderr, "cannot create a CPU context: %s\n", err);
    exit(1);
  }
  return ctx;
}

void vt_test_fill_uniform(vt_rng *r, float *x, long n, float lo, float hi) {
  for (long i = 0; i < n; i++) x[i] = lo + (hi - lo) * vt_rng_uniform(r);
}

int vt_test_finish(const char *name) {
  int passed = vt_test_checks - vt_test_failures;
  printf("%s: %d passed, %d failed\n", name, passed, vt_test_failures);
  return vt_test_failures ? 1 : 0;
}

bool vt_test_same_bytes(const char *a, const char *b) {
  size_t la = 0, lb = 0;
  char *x = vt_read_regular(a, (size_t)1 << 30, &la, NULL, 0);
  char *y = vt_read_regular(b, (size_t)1 << 30, &lb, NULL, 0);
  bool same = x && y && la == lb && la > 0 && memcmp(x, y, la) == 0;
  free(x);
  free(y);
  return same;
}
