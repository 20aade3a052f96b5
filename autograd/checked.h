/* Checked size arithmetic for every layer: products and sums of sizes, counts and ids read
 * from files, configs or the command line go through these, so an overflow becomes an error
 * naming the field instead of a wrapped allocation. Each returns true on overflow and leaves
 * *out untouched then; the result is written only when it fits. */
#ifndef VT_CHECKED_H
#define VT_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline bool vt_mul_i64_overflows(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return true;
  *out = r;
  return false;
}

static inline bool vt_add_i64_overflows(int64_t a, int64_t b, int64_t *out) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return true;
  *out = r;
  return false;
}

static inline bool vt_mul_size_overflows(size_t a, size_t b, size_t *out) {
  size_t r;
  if (__builtin_mul_overflow(a, b, &r)) return true;
  *out = r;
  return false;
}

static inline bool vt_add_size_overflows(size_t a, size_t b, size_t *out) {
  size_t r;
  if (__builtin_add_overflow(a, b, &r)) return true;
  *out = r;
  return false;
}

/* Bytes of n elements of elem bytes each as a size_t; n < 0 counts as overflow. */
static inline bool vt_bytes_overflows(int64_t n, size_t elem, size_t *out) {
  if (n < 0 || (uint64_t)n > SIZE_MAX) return true;
  return vt_mul_size_overflows((size_t)n, elem, out);
}

/* Product of n sizes, each >= 0; true when one is negative or the product overflows int64. */
static inline bool vt_prod_i64_overflows(const int64_t *v, int n, int64_t *out) {
  int64_t p = 1;
  for (int i = 0; i < n; i++)
    if (v[i] < 0 || vt_mul_i64_overflows(p, v[i], &p)) return true;
  *out = p;
  return false;
}

/* True when x lies in [lo, hi]; for range checks of integers read from input. */
static inline bool vt_in_range_i64(int64_t x, int64_t lo, int64_t hi) { return x >= lo && x <= hi; }

#endif
