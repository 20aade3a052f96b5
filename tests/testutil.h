/* Small helpers for the C tests: checks that report file:line and count failures, a CPU ctx,
 * and closeness with dtype-derived tolerances. A test's main returns vt_test_finish(). */
#ifndef VT_TESTUTIL_H
#define VT_TESTUTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "autograd/vt.h"
#include "tests/check.h"

vt_ctx *vt_test_cpu_ctx(void);
/* Whether files a and b can be read, are not empty and hold the same bytes (a resumed run's
 * checkpoint against the uninterrupted one's). */
bool vt_test_same_bytes(const char *a, const char *b);
/* Fills x with uniform values in [lo, hi). */
void vt_test_fill_uniform(vt_rng *r, float *x, long n, float lo, float hi);

#endif
