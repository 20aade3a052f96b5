/* Reference fixtures written by the scripts in tests/reference/ (PyTorch and friends) and read by
 * the C tests. Text format, one tensor per two lines: NAME DTYPE NDIM D0 D1 ...      (DTYPE is f32
 * or i32) V0 V1 V2 ...                   (row-major values, floats written with 9 digits) Lines
 * starting with '#' are comments. */
#ifndef VT_FIXTURE_H
#define VT_FIXTURE_H

#include <stdint.h>

typedef struct {
  char name[128];
  int is_int;
  int ndim;
  int64_t shape[8];
  long n;
  float *f;   /* values as float (also for i32) */
  int32_t *i; /* values as i32 (also for f32, truncated) */
} vt_fixture_tensor;

typedef struct {
  vt_fixture_tensor *t;
  int n;
} vt_fixture;

/* Loads a fixture from $VT_FIXTURES/rel_path; exits the test with a message when missing or
 * malformed (a broken fixture is a broken test). */
vt_fixture *vt_fixture_load(const char *rel_path);
/* Exits the test with a message when the name is missing. */
const vt_fixture_tensor *vt_fixture_get(const vt_fixture *fx, const char *name);
void vt_fixture_free(vt_fixture *fx);

#endif
