/* Finite-difference gradient checks for ops (like ggml's test-backend-ops): a test describes
 * its inputs as host arrays and a function that builds the op's graph; the harness forms
 * L = sum(w * out) with fixed random w, compares the tape's gradient of every differentiable
 * input with central differences of L, and reports the worst element. */
#ifndef VT_GRADCHECK_H
#define VT_GRADCHECK_H

#include "tests/testutil.h"

#define VT_GC_MAX_IN 8

typedef struct {
  vt_dtype dtype; /* VT_F32 (differentiated when diff) or VT_I32 */
  int ndim;
  int64_t shape[VT_MAX_DIMS];
  void *host; /* float* or int32_t*, owned by the test */
  bool diff;
} vt_gc_input;

typedef vt_tensor *(*vt_gc_graph)(vt_ctx *ctx, vt_tensor **in, void *user);

/* Runs the check on a CPU ctx; returns true when every gradient agrees. */
bool vt_gradcheck(const char *name, vt_gc_graph fn, void *user, vt_gc_input *in, int n_in);
#define CHECK_GRAD(name, fn, user, in, n)                                                          \
  do {                                                                                             \
    vt_test_checks++;                                                                              \
    if (!vt_gradcheck(name, fn, user, in, n)) {                                                    \
      vt_test_failures++;                                                                          \
      fprintf(stderr, "%s:%d: gradient check of %s failed\n", __FILE__, __LINE__, name);           \
    }                                                                                              \
  } while (0)

#endif
