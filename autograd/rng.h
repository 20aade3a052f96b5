/* vt_rng: a small, fast, reproducible random generator (xoshiro256**, seeded by splitmix64).
 * State lives in the struct (no globals), so it can be saved in a checkpoint and restored. */
#ifndef VT_RNG_H
#define VT_RNG_H

#include <stdint.h>

typedef struct {
  uint64_t s[4];
} vt_rng;

void vt_rng_seed(vt_rng *r, uint64_t seed);
uint64_t vt_rng_next(vt_rng *r);
float vt_rng_uniform(vt_rng *r);              /* [0, 1) */
float vt_rng_normal(vt_rng *r);               /* standard normal (Box-Muller) */
uint64_t vt_rng_below(vt_rng *r, uint64_t n); /* uniform in [0, n) */

#endif
