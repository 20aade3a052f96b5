/* Global CMVN of fbank features: cmvn_stats accumulates per-dimension sums over a dataset and
 * reads/writes the JSON of the public `global_cmvn` files ({"mean_stat", "var_stat",
 * "frame_num"}); cmvn turns stats into mean and 1/std and normalises one clip in place. */
#ifndef VT_DATA_CMVN_H
#define VT_DATA_CMVN_H

#include <stddef.h>
#include <stdint.h>

/* Sums in double: a dataset has billions of frames. */
typedef struct {
  int dim;
  double *sum, *sumsq; /* [dim] each: mean_stat and var_stat of the JSON */
  int64_t frames;      /* frame_num */
} cmvn_stats;

/* Zeroed stats of dim dimensions. Returns 0, or -1 out of memory / dim < 1. */
int cmvn_stats_init(cmvn_stats *s, int dim);
void cmvn_stats_free(cmvn_stats *s);
/* Adds frames rows of s->dim features. */
void cmvn_stats_add(cmvn_stats *s, const float *feats, size_t frames);
/* dst += src; both of one dim. Returns 0 or -1 (dims differ). */
int cmvn_stats_merge(cmvn_stats *dst, const cmvn_stats *src);

/* Reads the JSON stats file (mean_stat and var_stat of equal length, frame_num > 0). Returns 0,
 * or -1 with err naming the file, the field, what was expected and what was found. */
int cmvn_stats_load(cmvn_stats *s, const char *path, char *err, size_t err_len);
/* Writes it (doubles in round-trip precision), under PATH.tmp renamed to path. Returns 0 or -1. */
int cmvn_stats_save(const cmvn_stats *s, const char *path, char *err, size_t err_len);

typedef struct {
  int dim;
  float *mean, *istd; /* [dim] each: global_cmvn.mean / global_cmvn.istd of the export */
} cmvn;

/* mean = sum/n, var = sumsq/n - mean^2 floored at 1e-20, istd = 1/sqrt(var) (as WeNet's
 * load_cmvn). Returns 0, or -1 with err (no frames, out of memory). */
int cmvn_from_stats(cmvn *c, const cmvn_stats *s, char *err, size_t err_len);
void cmvn_free(cmvn *c);
/* feats[t][d] = (feats[t][d] - mean[d]) * istd[d] for the clip's frames only (padding stays). */
void cmvn_apply(const cmvn *c, float *feats, size_t frames);

#endif
