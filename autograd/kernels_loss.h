/* Kernels of the loss family (cross-entropy rows, CTC, L1/MSE, cosine): one table per device,
 * reached through vt_backend.loss and called by autograd/ops_loss*.c. Scalars (a loss, its
 * upstream gradient, a normaliser) stay in device memory, so no kernel forces a sync. */
#ifndef VT_KERNELS_LOSS_H
#define VT_KERNELS_LOSS_H

#include <math.h>

#include "autograd/backend.h"

typedef enum { VT_DIST_L1, VT_DIST_MSE } vt_dist_kind;

/* A cross-entropy row's weighted loss from its logsumexp l and its logits x (CPU and CUDA):
 * an ignored row weighs 0. */
static inline VT_HD void vt_ce_row_nll(float l, const float *x, int32_t t, int32_t ignore_index,
                                       const float *class_w, float *nll, float *wrow) {
  if (t == ignore_index) {
    *nll = *wrow = 0;
    return;
  }
  float w = class_w ? class_w[t] : 1.0f;
  *wrow = w;
  *nll = w * (l - x[t]);
}

/* CTC lattice math shared by the CPU and CUDA kernels. The extended label is
 * l' = (blank, y1, blank, y2, ..., blank): node s carries vt_ctc_label(s); vt_ctc_skip(s) says
 * whether s may also be reached from s - 2 (skipping a blank between two different labels). */
static inline VT_HD int32_t vt_ctc_label(int64_t s, const int32_t *y, int32_t blank) {
  return s % 2 ? y[s / 2] : blank;
}

static inline VT_HD bool vt_ctc_skip(int64_t s, const int32_t *y) {
  return s >= 2 && s % 2 && y[s / 2] != y[s / 2 - 1];
}

static inline VT_HD double vt_logaddexp(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  return a > b ? a + log1p(exp(b - a)) : b + log1p(exp(a - b));
}

struct vt_loss_kernels {
  /* Cross-entropy over rows of logits [rows, cols]: lse[r] = logsumexp(logits[r]),
   * wrow[r] = class_w ? class_w[t] : 1 and nll[r] = wrow[r] * (lse[r] - logits[r, t]) with
   * t = target[r]; a row whose target is ignore_index gets nll = wrow = 0. */
  void (*ce_forward)(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                     const int32_t *target, int32_t ignore_index, const float *class_w, float *lse,
                     float *nll, float *wrow);
  /* dlogits[r] (+)= f * w(t) * (softmax(logits[r]) - onehot(t)), f = gout[0] / denom[0]
   * (denom NULL: 1; denom 0: f = 0); ignored rows get 0. dlogits may alias logits when not
   * accumulating. */
  void (*ce_backward)(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                      const int32_t *target, int32_t ignore_index, const float *class_w,
                      const float *lse, const float *gout, const float *denom, float *dlogits,
                      bool accumulate);
  /* out[0] = sum(num) / sum(den) (den NULL: / 1; a zero sum gives 0), den_sum[0] = sum(den)
   * (or 1). */
  void (*ratio_sum)(const vt_backend *be, int64_t n, const float *num, const float *den, float *out,
                    float *den_sum);
  /* targets[b, t] = labels[b, t + 1], targets[b, T - 1] = ignore_index (next-token labels). */
  void (*shift_labels)(const vt_backend *be, int64_t B, int64_t T, const int32_t *labels,
                       int32_t ignore_index, int32_t *targets);

  /* CTC over log_probs [B, T, C] and padded targets [B, S]: nll[b] = -log p(target | x) over
   * the first in_len[b] frames (+inf when no alignment exists); when grad is not NULL it
   * receives d nll[b] / d log_probs[b] (zero past in_len[b] and for impossible samples). */
  size_t (*ctc_workspace)(const vt_backend *be, int64_t B, int64_t T, int64_t S);
  void (*ctc_forward)(const vt_backend *be, int64_t B, int64_t T, int64_t C, int64_t S,
                      const float *log_probs, const int32_t *targets, const int32_t *in_len,
                      const int32_t *tgt_len, int32_t blank, float *nll, float *grad, void *work);
  /* out[0] = sum_b factor[b] nll[b] with factor[b] = mean ? 1 / (max(tgt_len[b], 1) B) : 1,
   * and 0 for an infinite nll when zero_infinity. */
  void (*ctc_reduce)(const vt_backend *be, int64_t B, const float *nll, const int32_t *tgt_len,
                     bool mean, bool zero_infinity, float *factor, float *out);
  /* dst[b, :] += gout[0] * factor[b] * src[b, :] over rows of length n. */
  void (*scale_rows_acc)(const vt_backend *be, int64_t B, int64_t n, const float *factor,
                         const float *gout, const float *src, float *dst);

  /* out[0] = scale * sum f(a - b), f = |.| or (.)^2. */
  void (*dist_forward)(const vt_backend *be, vt_dist_kind kind, int64_t n, const float *a,
                       const float *b, float scale, float *out);
  /* da += gout[0] scale_a f'(a - b), db -= gout[0] scale_b f'(a - b); either may be NULL. */
  void (*dist_backward)(const vt_backend *be, vt_dist_kind kind, int64_t n, const float *a,
                        const float *b, const float *gout, float scale_a, float scale_b, float *da,
                        float *db);
  /* Rows of length dim: cos[r] = a.b / (max(|a|, eps) max(|b|, eps)) and
   * out[0] = scale * sum_r (1 - cos[r]). */
  void (*cosine_forward)(const vt_backend *be, int64_t rows, int64_t dim, const float *a,
                         const float *b, float eps, float scale, float *cos, float *out);
  /* Gradients of out: da, db accumulate (either may be NULL). */
  void (*cosine_backward)(const vt_backend *be, int64_t rows, int64_t dim, const float *a,
                          const float *b, float eps, float scale, const float *cos,
                          const float *gout, float *da, float *db);
};

#endif
