/* CPU kernels of the loss family: cross-entropy rows, CTC (log-space forward-backward in
 * double, samples spread over threads), L1/MSE and cosine. Sums run in double. The
 * cross-entropy rows (an LM head's [rows x vocab] logits) use cpu_vexp.h's simd exp. */
#include "autograd/cpu/cpu_par.h"
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/cpu/cpu_vexp.h"
#include "autograd/kernels_loss.h"

/* Rows shorter than this in total run on one thread. */
#define PAR_MIN 32768

/* logsumexp of one row: its max, then the sum of e^(x - max) in double. */
VT_SIMD_HOT float ce_row_lse(const float *x, int64_t cols) {
  float m = -INFINITY;
#if !defined(__clang__) /* clang cannot vectorise this max (NaN rules) and warns when asked */
#pragma omp simd reduction(max : m)
#endif
  for (int64_t j = 0; j < cols; j++) m = x[j] > m ? x[j] : m;
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < cols; j++) s += vt_vexpf(x[j] - m);
  return m + (float)log(s);
}

/* dx (+)= fw * e^(x - l): the softmax of one row scaled by fw. */
VT_SIMD_HOT void ce_row_softmax(const float *x, int64_t cols, float l, float fw, float *dx,
                                bool accumulate) {
  if (accumulate) {
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) dx[j] += fw * vt_vexpf(x[j] - l);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < cols; j++) dx[j] = fw * vt_vexpf(x[j] - l);
  }
}

static void cpu_ce_forward(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                           const int32_t *target, int32_t ignore_index, const float *class_w,
                           float *lse, float *nll, float *wrow) {
  (void)be;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for schedule(static)",
      for (int64_t r = 0; r < rows; r++) {
        const float *x = logits + r * cols;
        float l = ce_row_lse(x, cols);
        lse[r] = l;
        vt_ce_row_nll(l, x, target[r], ignore_index, class_w, nll + r, wrow + r);
      });
}

static void cpu_ce_backward(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                            const int32_t *target, int32_t ignore_index, const float *class_w,
                            const float *lse, const float *gout, const float *denom, float *dlogits,
                            bool accumulate) {
  (void)be;
  float d = denom ? denom[0] : 1.0f, f = d != 0 ? gout[0] / d : 0.0f;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for schedule(static)",
      for (int64_t r = 0; r < rows; r++) {
        const float *x = logits + r * cols;
        float *dx = dlogits + r * cols;
        int32_t t = target[r];
        if (t == ignore_index || f == 0) {
          if (!accumulate) memset(dx, 0, sizeof(float) * (size_t)cols);
          continue;
        }
        float fw = f * (class_w ? class_w[t] : 1.0f);
        ce_row_softmax(x, cols, lse[r], fw, dx, accumulate);
        dx[t] -= fw;
      });
}

static void cpu_ratio_sum(const vt_backend *be, int64_t n, const float *num, const float *den,
                          float *out, float *den_sum) {
  (void)be;
  double a = 0, b = den ? 0 : 1;
  for (int64_t i = 0; i < n; i++) a += num[i];
  if (den)
    for (int64_t i = 0; i < n; i++) b += den[i];
  out[0] = b != 0 ? (float)(a / b) : 0.0f;
  if (den_sum) den_sum[0] = (float)b;
}

static void cpu_shift_labels(const vt_backend *be, int64_t B, int64_t T, const int32_t *labels,
                             int32_t ignore_index, int32_t *targets) {
  (void)be;
  for (int64_t b = 0; b < B; b++) {
    for (int64_t t = 0; t + 1 < T; t++) targets[b * T + t] = labels[b * T + t + 1];
    if (T > 0) targets[b * T + T - 1] = ignore_index;
  }
}

/* alpha and beta lattices [T, 2S + 1] in double, one pair per thread */
static int ctc_threads(int64_t B) {
  int nt = omp_get_max_threads();
  return B < nt ? (int)(B > 0 ? B : 1) : nt;
}

static size_t cpu_ctc_workspace(const vt_backend *be, int64_t B, int64_t T, int64_t S) {
  (void)be;
  return (size_t)(T * (2 * S + 1)) * 2 * sizeof(double) * (size_t)ctc_threads(B);
}

/* Alignment lattice over the extended label l' = (blank, y1, blank, y2, ..., blank). */
static void cpu_ctc_forward(const vt_backend *be, int64_t B, int64_t T, int64_t C, int64_t S,
                            const float *log_probs, const int32_t *targets, const int32_t *in_len,
                            const int32_t *tgt_len, int32_t blank, float *nll, float *grad,
                            void *work) {
  (void)be;
  const int64_t Lmax = 2 * S + 1;
/* (macros: a directive cannot sit inside the VT_OMP_IF argument) */
#define LAB(s) vt_ctc_label((s), y, blank)
#define SKIP(s) vt_ctc_skip((s), y)
  VT_OMP_IF(
      B * T * Lmax > 16384, "omp parallel for schedule(dynamic) num_threads(ctc_threads(B))",
      for (int64_t b = 0; b < B; b++) {
        const float *lp = log_probs + b * T * C;
        const int32_t *y = targets + b * S;
        const int64_t Tb = in_len[b], U = tgt_len[b], L = 2 * U + 1;
        double *alpha = (double *)work + omp_get_thread_num() * T * Lmax * 2,
               *beta = alpha + T * Lmax;
        double ll = -INFINITY;
        if (Tb > 0) {
          for (int64_t s = 0; s < L; s++) alpha[s] = s < 2 ? lp[LAB(s)] : -INFINITY;
          for (int64_t t = 1; t < Tb; t++) {
            const double *ap = alpha + (t - 1) * Lmax;
            double *a = alpha + t * Lmax;
            for (int64_t s = 0; s < L; s++) {
              double v = ap[s];
              if (s >= 1) v = vt_logaddexp(v, ap[s - 1]);
              if (SKIP(s)) v = vt_logaddexp(v, ap[s - 2]);
              a[s] = v + lp[t * C + LAB(s)];
            }
          }
          const double *al = alpha + (Tb - 1) * Lmax;
          ll = vt_logaddexp(al[L - 1], L >= 2 ? al[L - 2] : -INFINITY);
        } else if (U == 0) {
          ll = 0; /* the empty alignment of an empty target */
        }
        nll[b] = (float)-ll;
        if (!grad) continue;
        float *g = grad + b * T * C;
        memset(g, 0, sizeof(float) * (size_t)(T * C));
        if (ll == -INFINITY || Tb == 0) continue;
        double *bl = beta + (Tb - 1) * Lmax;
        for (int64_t s = 0; s < L; s++) bl[s] = s >= L - 2 ? lp[(Tb - 1) * C + LAB(s)] : -INFINITY;
        for (int64_t t = Tb - 2; t >= 0; t--) {
          const double *bn = beta + (t + 1) * Lmax;
          double *bt = beta + t * Lmax;
          for (int64_t s = 0; s < L; s++) {
            double v = bn[s];
            if (s + 1 < L) v = vt_logaddexp(v, bn[s + 1]);
            if (s + 2 < L && SKIP(s + 2)) v = vt_logaddexp(v, bn[s + 2]);
            bt[s] = v + lp[t * C + LAB(s)];
          }
        }
        /* d nll / d lp[t, c] = -sum_{s: l'_s = c} alpha_t(s) beta_t(s) / (p y_t(c)); both alpha
         * and beta include y_t(c), so one exp per lattice node, each term <= 1. */
        for (int64_t t = 0; t < Tb; t++)
          for (int64_t s = 0; s < L; s++) {
            int32_t c = LAB(s);
            double e = alpha[t * Lmax + s] + beta[t * Lmax + s] - ll - lp[t * C + c];
            if (e > -INFINITY) g[t * C + c] -= (float)exp(e);
          }
      });
#undef LAB
#undef SKIP
}

static void cpu_ctc_reduce(const vt_backend *be, int64_t B, const float *nll,
                           const int32_t *tgt_len, bool mean, bool zero_infinity, float *factor,
                           float *out) {
  (void)be;
  double s = 0;
  for (int64_t b = 0; b < B; b++) {
    double f = mean ? 1.0 / ((double)(tgt_len[b] > 1 ? tgt_len[b] : 1) * (double)B) : 1.0;
    if (zero_infinity && isinf(nll[b])) f = 0;
    factor[b] = (float)f;
    if (f != 0) s += f * nll[b];
  }
  out[0] = (float)s;
}

static void cpu_scale_rows_acc(const vt_backend *be, int64_t B, int64_t n, const float *factor,
                               const float *gout, const float *src, float *dst) {
  (void)be;
  VT_OMP_IF(
      B * n > PAR_MIN, "omp parallel for", for (int64_t b = 0; b < B; b++) {
        float f = gout[0] * factor[b];
        if (f == 0) continue;
        for (int64_t i = 0; i < n; i++) dst[b * n + i] += f * src[b * n + i];
      });
}

/* Sums split into a fixed number of blocks (set by n, not by the thread count) and added in
 * order, so a loss is bitwise the same whatever OMP_NUM_THREADS is. */
#define SUM_BLOCKS 64

static void cpu_dist_forward(const vt_backend *be, vt_dist_kind kind, int64_t n, const float *a,
                             const float *b, float scale, float *out) {
  (void)be;
  double part[SUM_BLOCKS] = {0}, s = 0;
  int64_t per = (n + SUM_BLOCKS - 1) / SUM_BLOCKS;
  VT_OMP_IF(
      n > PAR_MIN, "omp parallel for", for (int blk = 0; blk < SUM_BLOCKS; blk++) {
        int64_t end = (blk + 1) * per < n ? (blk + 1) * per : n;
        double t = 0;
        for (int64_t i = blk * per; i < end; i++) {
          double d = (double)a[i] - b[i];
          t += kind == VT_DIST_L1 ? fabs(d) : d * d;
        }
        part[blk] = t;
      });
  for (int blk = 0; blk < SUM_BLOCKS; blk++) s += part[blk];
  out[0] = (float)(scale * s);
}

static void cpu_dist_backward(const vt_backend *be, vt_dist_kind kind, int64_t n, const float *a,
                              const float *b, const float *gout, float scale_a, float scale_b,
                              float *da, float *db) {
  (void)be;
  float g = gout[0];
  VT_OMP_IF(
      n > PAR_MIN, "omp parallel for", for (int64_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        float f = kind == VT_DIST_L1 ? (float)((d > 0) - (d < 0)) : 2.0f * d;
        if (da) da[i] += g * scale_a * f;
        if (db) db[i] -= g * scale_b * f;
      });
}

static void cpu_cosine_forward(const vt_backend *be, int64_t rows, int64_t dim, const float *a,
                               const float *b, float eps, float scale, float *cos, float *out) {
  (void)be;
  double s = 0;
  VT_OMP_IF(
      rows * dim > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *x = a + r * dim, *y = b + r * dim;
        double xy = 0, xx = 0, yy = 0;
        for (int64_t j = 0; j < dim; j++)
          xy += (double)x[j] * y[j], xx += (double)x[j] * x[j], yy += (double)y[j] * y[j];
        cos[r] = (float)(xy / (fmax(sqrt(xx), eps) * fmax(sqrt(yy), eps)));
      });
  for (int64_t r = 0; r < rows; r++) s += 1.0 - cos[r]; /* in order: deterministic */
  out[0] = (float)(scale * s);
}

static void cpu_cosine_backward(const vt_backend *be, int64_t rows, int64_t dim, const float *a,
                                const float *b, float eps, float scale, const float *cos,
                                const float *gout, float *da, float *db) {
  (void)be;
  float g = -gout[0] * scale; /* d (1 - cos) = -d cos */
  VT_OMP_IF(
      rows * dim > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *x = a + r * dim, *y = b + r * dim;
        double xx = 0, yy = 0;
        for (int64_t j = 0; j < dim; j++) xx += (double)x[j] * x[j], yy += (double)y[j] * y[j];
        double nx = sqrt(xx), ny = sqrt(yy), cx = fmax(nx, eps), cy = fmax(ny, eps), c = cos[r];
        /* cos = (x / cx) . (y / cy) with cx = max(|x|, eps); as in PyTorch the clamp is not
         * differentiated, so d cos / d x = y / (cx cy) - cos x / (cx |x|) (x / |x|^2 unclamped) */
        double kx = nx > 0 ? c / (cx * nx) : 0, ky = ny > 0 ? c / (cy * ny) : 0;
        for (int64_t j = 0; j < dim; j++) {
          if (da) da[r * dim + j] += g * (float)(y[j] / (cx * cy) - kx * x[j]);
          if (db) db[r * dim + j] += g * (float)(x[j] / (cx * cy) - ky * y[j]);
        }
      });
}

const struct vt_loss_kernels vt_cpu_loss_kernels = {
    .ce_forward = cpu_ce_forward,
    .ce_backward = cpu_ce_backward,
    .ratio_sum = cpu_ratio_sum,
    .shift_labels = cpu_shift_labels,
    .ctc_workspace = cpu_ctc_workspace,
    .ctc_forward = cpu_ctc_forward,
    .ctc_reduce = cpu_ctc_reduce,
    .scale_rows_acc = cpu_scale_rows_acc,
    .dist_forward = cpu_dist_forward,
    .dist_backward = cpu_dist_backward,
    .cosine_forward = cpu_cosine_forward,
    .cosine_backward = cpu_cosine_backward,
};
