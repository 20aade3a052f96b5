/* Generated training data for the built-in job and end-to-end tests: token sequences of a
 * small synthetic "language" (each token a fixed random function of the previous one, with
 * some noise), written as real HDF5 shards with a mixture config beside them. A prompt part
 * of each sample is masked from the labels (-100), like a user turn. */
#ifndef VT_DATA_SYNTH_H
#define VT_DATA_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int64_t samples; /* total over all shards */
  int64_t n_shards;
  int32_t vocab;            /* ids in [0, vocab) */
  int64_t min_len, max_len; /* sample lengths, uniform */
  double noise;             /* probability that a token is uniform instead of the rule's */
  uint64_t seed;
} synth_cfg;

synth_cfg synth_defaults(void);
/* Largest sample length and count synth_write accepts. */
#define SYNTH_MAX_LEN (INT64_C(1) << 24)
#define SYNTH_MAX_SAMPLES (INT64_C(1) << 32)

/* Writes DIR/shard-0000k.h5 and DIR/mixture.yaml (one dataset, ratio 1, the given seed).
 * Returns 0 or -1 with err. */
int synth_write(const char *dir, const synth_cfg *cfg, char *err, size_t err_len);
/* Entropy (nats) of the rule's next-token distribution: the best reachable loss. */
double synth_entropy(const synth_cfg *cfg);

#endif
