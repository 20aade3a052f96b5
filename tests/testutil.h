/* Small helpers for the C tests: checks that report file:line and count failures, a CPU ctx,
 * and closeness with dtype-derived tolerances. A test's main returns vt_test_finish(). */
#ifndef VT_TESTUTIL_H
#define VT_TESTUTIL_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#include "autograd/vt.h"

extern int vt_test_failures;
extern int vt_test_checks;

#define CHECK(cond)                                                                              \
  do {                                                                                           \
    vt_test_checks++;                                                                            \
    if (!(cond)) {                                                                               \
      vt_test_failures++;                                                                        \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                 \
    }                                                                                            \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                     \
  do {                                                                                           \
    vt_test_checks++;                                                                            \
    if (!(cond)) {                                                                               \
      vt_test_failures++;                                                                        \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                 \
      fprintf(stderr, __VA_ARGS__);                                                              \
      fprintf(stderr, "\n");                                                                     \
    }                                                                                            \
  } while (0)

/* |got - want| <= atol + rtol * |want| for every element; prints the first few mismatches. */
bool vt_test_close(const char *what, const float *got, const float *want, long n, double atol,
                   double rtol);
#define CHECK_CLOSE(what, got, want, n, atol, rtol)                                              \
  do {                                                                                           \
    vt_test_checks++;                                                                            \
    if (!vt_test_close(what, got, want, n, atol, rtol)) {                                        \
      vt_test_failures++;                                                                        \
      fprintf(stderr, "%s:%d: %s not close\n", __FILE__, __LINE__, what);                        \
    }                                                                                            \
  } while (0)

vt_ctx *vt_test_cpu_ctx(void);
/* Fills x with uniform values in [lo, hi). */
void vt_test_fill_uniform(vt_rng *r, float *x, long n, float lo, float hi);
/* Prints "N passed, M failed" and returns the exit code. */
int vt_test_finish(const char *name);

#endif
