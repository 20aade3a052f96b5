/* Check macros for the C tests of every layer: failures report file:line and are counted,
 * and vt_test_finish prints "N passed, M failed" and gives the exit code. */
#ifndef VT_CHECK_H
#define VT_CHECK_H

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

extern int vt_test_failures;
extern int vt_test_checks;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    vt_test_checks++;                                                                              \
    if (!(cond)) {                                                                                 \
      vt_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                     \
    }                                                                                              \
  } while (0)

#define CHECK_MSG(cond, ...)                                                                       \
  do {                                                                                             \
    vt_test_checks++;                                                                              \
    if (!(cond)) {                                                                                 \
      vt_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);                     \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, "\n");                                                                       \
    }                                                                                              \
  } while (0)

/* |got - want| <= atol + rtol * |want| for every element; prints the first few mismatches. */
bool vt_test_close(const char *what, const float *got, const float *want, long n, double atol,
                   double rtol);
#define CHECK_CLOSE(what, got, want, n, atol, rtol)                                                \
  do {                                                                                             \
    vt_test_checks++;                                                                              \
    if (!vt_test_close(what, got, want, n, atol, rtol)) {                                          \
      vt_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: %s not close\n", __FILE__, __LINE__, what);                          \
    }                                                                                              \
  } while (0)

/* Prints "NAME: N passed, M failed" and returns the exit code. */
int vt_test_finish(const char *name);

#endif
