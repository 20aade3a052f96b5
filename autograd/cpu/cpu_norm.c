/* CPU kernels of the norm family: OpenMP loops over rows (or channels), statistics in double so
 * long rows (a 3584-wide RMSNorm, a GroupNorm over a whole waveform) keep f32 accuracy. */
#include "autograd/cpu/cpu_par.h"
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "autograd/cpu/cpu_vexp.h"
#include "autograd/dtype.h"
#include "autograd/kernels_norm.h"

/* Loops with less work than this run on one thread. */
#define PAR_MIN 32768

/* Per-parameter gradients (dw, db over [.., cols]) are summed over rows; rows are independent
 * in dx, so dx runs row-parallel and dw/db run column-parallel over blocks of this many. */
#define COL_BLOCK 64

/* LayerNorm's row sums in 8 fixed double lanes added in lane order: a serial double chain was
 * latency-bound, and fixed lanes do not depend on the vector width or the thread count. */
#define LN_LANES 8
VT_SIMD_CLONES void ln_row_stats(int64_t cols, const float *restrict px, double *mean, double *sq) {
  double lane[LN_LANES] = {0}, s = 0, ss = 0;
  int64_t j = 0, n8 = cols / LN_LANES * LN_LANES;
  for (; j < n8; j += LN_LANES)
    for (int l = 0; l < LN_LANES; l++) lane[l] += px[j + l];
  for (int l = 0; l < LN_LANES; l++) s += lane[l];
  for (; j < cols; j++) s += px[j];
  double m = s / (double)cols;
  for (int l = 0; l < LN_LANES; l++) lane[l] = 0;
  for (j = 0; j < n8; j += LN_LANES)
    for (int l = 0; l < LN_LANES; l++) {
      double d = px[j + l] - m;
      lane[l] += d * d;
    }
  for (int l = 0; l < LN_LANES; l++) ss += lane[l];
  for (; j < cols; j++) ss += (px[j] - m) * (px[j] - m);
  *mean = m, *sq = ss;
}

/* sum(g) and sum(g * xhat) of one row, g = dy * w (w NULL: 1), xhat = (x - m) * rs. */
VT_SIMD_CLONES void ln_row_grad_sums(int64_t cols, const float *restrict px,
                                     const float *restrict pd, const float *restrict w, float m,
                                     float rs, double *a, double *b) {
  double la[LN_LANES] = {0}, lb[LN_LANES] = {0}, sa = 0, sb = 0;
  int64_t j = 0, n8 = cols / LN_LANES * LN_LANES;
  for (; j < n8; j += LN_LANES)
    for (int l = 0; l < LN_LANES; l++) {
      float g = w ? pd[j + l] * w[j + l] : pd[j + l];
      la[l] += g;
      lb[l] += (double)g * ((px[j + l] - m) * rs);
    }
  for (int l = 0; l < LN_LANES; l++) sa += la[l], sb += lb[l];
  for (; j < cols; j++) {
    float g = w ? pd[j] * w[j] : pd[j];
    sa += g;
    sb += (double)g * ((px[j] - m) * rs);
  }
  *a = sa, *b = sb;
}

static void cpu_layer_norm(const vt_backend *be, int64_t rows, int64_t cols, float eps,
                           const float *x, const float *w, const float *b, float *y, float *mean,
                           float *rstd) {
  (void)be;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *px = x + r * cols;
        float *py = y + r * cols;
        double m, ss;
        ln_row_stats(cols, px, &m, &ss);
        float fm = (float)m, rs = (float)(1.0 / sqrt(ss / (double)cols + eps));
        mean[r] = fm;
        rstd[r] = rs;
        for (int64_t j = 0; j < cols; j++) {
          float v = (px[j] - fm) * rs;
          if (w) v *= w[j];
          if (b) v += b[j];
          py[j] = v;
        }
      });
}

static void cpu_layer_norm_backward(const vt_backend *be, int64_t rows, int64_t cols,
                                    const float *x, const float *w, const float *mean,
                                    const float *rstd, const float *dy, float *dx, float *dw,
                                    float *db) {
  (void)be;
  if (dx) {
    VT_OMP_IF(
        rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
          const float *px = x + r * cols, *pd = dy + r * cols;
          float m = mean[r], rs = rstd[r];
          double a, bsum; /* sum(g), sum(g * xhat) with g = dy * w */
          ln_row_grad_sums(cols, px, pd, w, m, rs, &a, &bsum);
          float ma = (float)(a / (double)cols), mb = (float)(bsum / (double)cols);
          float *pdx = dx + r * cols;
          for (int64_t j = 0; j < cols; j++) {
            float g = w ? pd[j] * w[j] : pd[j];
            pdx[j] += rs * (g - ma - (px[j] - m) * rs * mb);
          }
        });
  }
  if (dw || db) {
    int64_t nblk = (cols + COL_BLOCK - 1) / COL_BLOCK;
    VT_OMP_IF(
        rows * cols > PAR_MIN, "omp parallel for", for (int64_t bk = 0; bk < nblk; bk++) {
          int64_t j0 = bk * COL_BLOCK, j1 = j0 + COL_BLOCK < cols ? j0 + COL_BLOCK : cols;
          double aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
          for (int64_t r = 0; r < rows; r++) {
            const float *px = x + r * cols, *pd = dy + r * cols;
            float m = mean[r], rs = rstd[r];
            for (int64_t j = j0; j < j1; j++) {
              aw[j - j0] += (double)pd[j] * ((px[j] - m) * rs);
              ab[j - j0] += pd[j];
            }
          }
          for (int64_t j = j0; j < j1; j++) {
            if (dw) dw[j] += (float)aw[j - j0];
            if (db) db[j] += (float)ab[j - j0];
          }
        });
  }
}

/* One row of RMSNorm forward. The sum of squares runs in 8 fixed double lanes added in lane
 * order (squares of floats are exact in double, so this differs from a serial sum only in
 * the double's last bits, and it does not depend on the vector width); a serial double chain
 * was latency-bound. */
VT_SIMD_CLONES float rms_row(int64_t cols, float eps, const float *restrict px,
                             const float *restrict w, float *restrict py) {
  double lane[8] = {0}, ss = 0;
  int64_t j = 0;
  for (; j + 8 <= cols; j += 8)
    for (int l = 0; l < 8; l++) lane[l] += (double)px[j + l] * px[j + l];
  for (int l = 0; l < 8; l++) ss += lane[l];
  for (; j < cols; j++) ss += (double)px[j] * px[j];
  float rs = (float)(1.0 / sqrt(ss / (double)cols + eps));
  if (w) {
#pragma omp simd
    for (j = 0; j < cols; j++) py[j] = w[j] * (px[j] * rs);
  } else {
#pragma omp simd
    for (j = 0; j < cols; j++) py[j] = px[j] * rs;
  }
  return rs;
}

static void cpu_rms_norm(const vt_backend *be, int64_t rows, int64_t cols, float eps,
                         const float *x, const float *w, float *y, float *rstd) {
  (void)be;
  VT_OMP_IF(rows * cols > PAR_MIN, "omp parallel for",
            for (int64_t r = 0; r < rows; r++) rstd[r] =
                rms_row(cols, eps, x + r * cols, w, y + r * cols););
}

/* One row of RMSNorm's input gradient: dx += rs * (g - xhat * mean(g * xhat)), g = dy * w.
 * The sum runs in 8 fixed double lanes (a serial double sum is latency-bound and was most of
 * this kernel's time); the result does not depend on the vector width or the thread count. */
#define RMS_LANES 8
VT_SIMD_CLONES void rms_row_backward(int64_t cols, const float *restrict px,
                                     const float *restrict pd, const float *restrict w, float rs,
                                     float *restrict pdx) {
  double lane[RMS_LANES] = {0};
  int64_t j = 0;
  if (w) {
    for (; j + RMS_LANES <= cols; j += RMS_LANES)
      for (int l = 0; l < RMS_LANES; l++)
        lane[l] += (double)(pd[j + l] * w[j + l]) * (px[j + l] * rs);
  } else {
    for (; j + RMS_LANES <= cols; j += RMS_LANES)
      for (int l = 0; l < RMS_LANES; l++) lane[l] += (double)pd[j + l] * (px[j + l] * rs);
  }
  for (; j < cols; j++) {
    float g = w ? pd[j] * w[j] : pd[j];
    lane[j % RMS_LANES] += (double)g * (px[j] * rs);
  }
  double bsum = 0; /* sum(g * xhat) */
  for (int l = 0; l < RMS_LANES; l++) bsum += lane[l];
  float mb = (float)(bsum / (double)cols);
  if (w) {
#pragma omp simd
    for (int64_t i = 0; i < cols; i++) pdx[i] += rs * (pd[i] * w[i] - px[i] * rs * mb);
  } else {
#pragma omp simd
    for (int64_t i = 0; i < cols; i++) pdx[i] += rs * (pd[i] - px[i] * rs * mb);
  }
}

/* dw[j0, j1) summed over the rows in double, each column on its own (vectorised across
 * columns, so the same additions in the same order as a scalar loop; without the simd
 * pragmas -O2 left this loop scalar). */
VT_SIMD_CLONES void rms_dw_block(int64_t rows, int64_t cols, int64_t j0, int64_t j1,
                                 const float *restrict x, const float *restrict rstd,
                                 const float *restrict dy, float *restrict dw) {
  double aw[COL_BLOCK] = {0};
  int64_t n = j1 - j0;
  for (int64_t r = 0; r < rows; r++) {
    const float *px = x + r * cols + j0, *pd = dy + r * cols + j0;
    float rs = rstd[r];
    if (n == COL_BLOCK) { /* a fixed trip count: the accumulators stay in registers */
#pragma omp simd
      for (int64_t j = 0; j < COL_BLOCK; j++) aw[j] += (double)pd[j] * (px[j] * rs);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < n; j++) aw[j] += (double)pd[j] * (px[j] * rs);
    }
  }
  for (int64_t j = 0; j < n; j++) dw[j0 + j] += (float)aw[j];
}

static void cpu_rms_norm_backward(const vt_backend *be, int64_t rows, int64_t cols, const float *x,
                                  const float *w, const float *rstd, const float *dy, float *dx,
                                  float *dw) {
  (void)be;
  if (dx) {
    VT_OMP_IF(
        rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
          rms_row_backward(cols, x + r * cols, dy + r * cols, w, rstd[r], dx + r * cols);
        });
  }
  if (dw) {
    int64_t nblk = (cols + COL_BLOCK - 1) / COL_BLOCK;
    VT_OMP_IF(
        rows * cols > PAR_MIN, "omp parallel for", for (int64_t bk = 0; bk < nblk; bk++) {
          int64_t j0 = bk * COL_BLOCK, j1 = j0 + COL_BLOCK < cols ? j0 + COL_BLOCK : cols;
          rms_dw_block(rows, cols, j0, j1, x, rstd, dy, dw);
        });
  }
}

static void cpu_group_norm(const vt_backend *be, int64_t n, int64_t c, int64_t s, int64_t groups,
                           float eps, const float *x, const float *w, const float *b, float *y,
                           float *mean, float *rstd) {
  (void)be;
  int64_t cg = c / groups, len = cg * s;
  VT_OMP_IF(
      n * c * s > PAR_MIN, "omp parallel for", for (int64_t ng = 0; ng < n * groups; ng++) {
        const float *px = x + ng * len;
        float *py = y + ng * len;
        double sum = 0, ss = 0;
        for (int64_t j = 0; j < len; j++) sum += px[j];
        double m = sum / (double)len;
        for (int64_t j = 0; j < len; j++) {
          double dlt = px[j] - m;
          ss += dlt * dlt;
        }
        float fm = (float)m, rs = (float)(1.0 / sqrt(ss / (double)len + eps));
        mean[ng] = fm;
        rstd[ng] = rs;
        int64_t c0 = (ng % groups) * cg;
        for (int64_t ci = 0; ci < cg; ci++) {
          float wc = w ? w[c0 + ci] : 1.0f, bc = b ? b[c0 + ci] : 0.0f;
          for (int64_t j = ci * s; j < (ci + 1) * s; j++) py[j] = (px[j] - fm) * rs * wc + bc;
        }
      });
}

static void cpu_group_norm_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                                    int64_t groups, const float *x, const float *w,
                                    const float *mean, const float *rstd, const float *dy,
                                    float *dx, float *dw, float *db) {
  (void)be;
  int64_t cg = c / groups, len = cg * s;
  if (dx) {
    VT_OMP_IF(
        n * c * s > PAR_MIN, "omp parallel for", for (int64_t ng = 0; ng < n * groups; ng++) {
          const float *px = x + ng * len, *pd = dy + ng * len;
          float *pdx = dx + ng * len;
          float m = mean[ng], rs = rstd[ng];
          int64_t c0 = (ng % groups) * cg;
          double a = 0, bsum = 0;
          for (int64_t ci = 0; ci < cg; ci++) {
            float wc = w ? w[c0 + ci] : 1.0f;
            for (int64_t j = ci * s; j < (ci + 1) * s; j++) {
              float g = pd[j] * wc;
              a += g;
              bsum += (double)g * ((px[j] - m) * rs);
            }
          }
          float ma = (float)(a / (double)len), mb = (float)(bsum / (double)len);
          for (int64_t ci = 0; ci < cg; ci++) {
            float wc = w ? w[c0 + ci] : 1.0f;
            for (int64_t j = ci * s; j < (ci + 1) * s; j++)
              pdx[j] += rs * (pd[j] * wc - ma - (px[j] - m) * rs * mb);
          }
        });
  }
  if (dw || db) {
    VT_OMP_IF(
        n * c * s > PAR_MIN, "omp parallel for", for (int64_t ch = 0; ch < c; ch++) {
          double aw = 0, ab = 0;
          for (int64_t i = 0; i < n; i++) {
            int64_t ng = i * groups + ch / cg;
            const float *px = x + (i * c + ch) * s, *pd = dy + (i * c + ch) * s;
            float m = mean[ng], rs = rstd[ng];
            for (int64_t j = 0; j < s; j++) {
              aw += (double)pd[j] * ((px[j] - m) * rs);
              ab += pd[j];
            }
          }
          if (dw) dw[ch] += (float)aw;
          if (db) db[ch] += (float)ab;
        });
  }
}

static void cpu_batch_norm(const vt_backend *be, int64_t n, int64_t c, int64_t s, bool training,
                           float momentum, float eps, const float *x, const float *w,
                           const float *b, float *running_mean, float *running_var, float *y,
                           float *mean, float *rstd) {
  (void)be;
  int64_t cnt = n * s;
  VT_OMP_IF(
      n * c * s > PAR_MIN, "omp parallel for", for (int64_t ch = 0; ch < c; ch++) {
        float fm, rs;
        if (training) {
          double sum = 0, ss = 0;
          for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < s; j++) sum += x[(i * c + ch) * s + j];
          double m = sum / (double)cnt;
          for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < s; j++) {
              double dlt = x[(i * c + ch) * s + j] - m;
              ss += dlt * dlt;
            }
          double var = ss / (double)cnt;
          fm = (float)m;
          rs = (float)(1.0 / sqrt(var + eps));
          if (running_mean)
            running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * m);
          if (running_var && cnt > 1)
            running_var[ch] =
                (float)((1.0 - momentum) * running_var[ch] + momentum * ss / (double)(cnt - 1));
        } else {
          fm = running_mean[ch];
          rs = (float)(1.0 / sqrt((double)running_var[ch] + eps));
        }
        mean[ch] = fm;
        rstd[ch] = rs;
        float wc = w ? w[ch] : 1.0f, bc = b ? b[ch] : 0.0f;
        for (int64_t i = 0; i < n; i++) {
          const float *px = x + (i * c + ch) * s;
          float *py = y + (i * c + ch) * s;
          for (int64_t j = 0; j < s; j++) py[j] = (px[j] - fm) * rs * wc + bc;
        }
      });
}

static void cpu_batch_norm_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                                    bool training, const float *x, const float *w,
                                    const float *mean, const float *rstd, const float *dy,
                                    float *dx, float *dw, float *db) {
  (void)be;
  int64_t cnt = n * s;
  VT_OMP_IF(
      n * c * s > PAR_MIN, "omp parallel for", for (int64_t ch = 0; ch < c; ch++) {
        float m = mean[ch], rs = rstd[ch], wc = w ? w[ch] : 1.0f;
        double a = 0, bsum = 0; /* sum(dy), sum(dy * xhat) */
        for (int64_t i = 0; i < n; i++) {
          const float *px = x + (i * c + ch) * s, *pd = dy + (i * c + ch) * s;
          for (int64_t j = 0; j < s; j++) {
            a += pd[j];
            bsum += (double)pd[j] * ((px[j] - m) * rs);
          }
        }
        if (dw) dw[ch] += (float)bsum;
        if (db) db[ch] += (float)a;
        if (!dx) continue;
        /* In training the statistics depend on x; in eval they are constants. */
        float ma = training ? (float)(a / (double)cnt) : 0.0f;
        float mb = training ? (float)(bsum / (double)cnt) : 0.0f;
        for (int64_t i = 0; i < n; i++) {
          const float *px = x + (i * c + ch) * s, *pd = dy + (i * c + ch) * s;
          float *pdx = dx + (i * c + ch) * s;
          for (int64_t j = 0; j < s; j++) pdx[j] += wc * rs * (pd[j] - ma - (px[j] - m) * rs * mb);
        }
      });
}

static void cpu_rope(const vt_backend *be, int64_t b, int64_t ho, int64_t t, int64_t hi, int64_t d,
                     float theta, const int32_t *pos, int64_t pos_bstride, const float *x, float *y,
                     bool inverse) {
  (void)be;
  int64_t half = d / 2;
  VT_OMP_IF(
      b * ho * t * hi * d > PAR_MIN, "omp parallel for collapse(2)",
      for (int64_t bi = 0; bi < b; bi++) for (int64_t ti = 0; ti < t; ti++) {
        float cs[512], sn[512]; /* half <= 512: checked by the op */
        float p = (float)pos[bi * pos_bstride + ti];
        for (int64_t k = 0; k < half; k++) {
          float ang = p * vt_rope_inv_freq(theta, k, d);
          cs[k] = cosf(ang);
          sn[k] = inverse ? -sinf(ang) : sinf(ang);
        }
        for (int64_t h0 = 0; h0 < ho; h0++)
          for (int64_t h1 = 0; h1 < hi; h1++) {
            int64_t off = (((bi * ho + h0) * t + ti) * hi + h1) * d;
            const float *px = x + off;
            float *py = y + off;
            for (int64_t k = 0; k < half; k++) {
              float o1, o2;
              vt_rope_pair(px[k], px[k + half], cs[k], sn[k], &o1, &o2);
              if (inverse) {
                py[k] += o1;
                py[k + half] += o2;
              } else {
                py[k] = o1;
                py[k + half] = o2;
              }
            }
          }
      });
}

/* cos and sin of the angles of one position (half <= 512) from the inverse frequencies, as
 * cpu_rope forms them. */
static void rope_angles(const float *inv, int64_t d, int32_t p, float *cs, float *sn) {
  for (int64_t k = 0; k < d / 2; k++) {
    float ang = (float)p * inv[k];
    cs[k] = cosf(ang);
    sn[k] = sinf(ang);
  }
}

/* One position's heads, src rows to dst rows: rotated by (cs, sn) when cs is given (sn
 * negated for the inverse), else copied; accumulate adds into dst. */
VT_SIMD_HOT void rope_row(const float *restrict src, float *restrict dst, int64_t d,
                          const float *restrict cs, const float *restrict sn, bool inverse,
                          bool accumulate) {
  int64_t half = d / 2;
  if (!cs) {
    if (accumulate)
#pragma omp simd
      for (int64_t j = 0; j < d; j++) dst[j] += src[j];
    else
      memcpy(dst, src, sizeof(float) * (size_t)d);
    return;
  }
  float sg = inverse ? -1.0f : 1.0f;
  if (accumulate) {
#pragma omp simd
    for (int64_t k = 0; k < half; k++) {
      float o1, o2;
      vt_rope_pair(src[k], src[k + half], cs[k], sg * sn[k], &o1, &o2);
      dst[k] += o1;
      dst[k + half] += o2;
    }
    return;
  }
#pragma omp simd
  for (int64_t k = 0; k < half; k++) {
    float o1, o2;
    vt_rope_pair(src[k], src[k + half], cs[k], sg * sn[k], &o1, &o2);
    dst[k] = o1;
    dst[k + half] = o2;
  }
}

/* Both directions of rope_qkv: packed [b, t, hq + 2 hkv, d] <-> heads q [b, hq, t, d], k, v
 * [b, hkv, t, d]. One (sample, position) per iteration, its angles formed once for every head
 * (with shared positions the whole batch could share them, but the angles are a small part:
 * half of d sincos per position against (hq + 2 hkv) d moved floats). */
static void rope_qkv_run(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d, float theta,
                         const int32_t *pos, int64_t pos_bstride, float *packed,
                         const uint16_t *packed16, float *q, float *k, float *v, bool backward,
                         bool accumulate) {
  int64_t nh = hq + 2 * hkv;
  float inv[512]; /* the inverse frequencies, once per call rather than per position */
  for (int64_t k = 0; theta > 0 && k < d / 2; k++) inv[k] = vt_rope_inv_freq(theta, k, d);
  VT_OMP_IF(
      b * t * nh * d > PAR_MIN, "omp parallel for collapse(2)",
      for (int64_t bi = 0; bi < b; bi++) for (int64_t ti = 0; ti < t; ti++) {
        float cs[512], sn[512], wide[1024]; /* half <= 512: checked by the op */
        bool rot = theta > 0;
        if (rot) rope_angles(inv, d, pos[bi * pos_bstride + ti], cs, sn);
        float *row = packed ? packed + (bi * t + ti) * nh * d : NULL;
        const uint16_t *row16 = packed16 ? packed16 + (bi * t + ti) * nh * d : NULL;
        for (int64_t h = 0; h < nh; h++) {
          float *hp = vt_qkv_head_row(bi, ti, h, hq, hkv, t, d, q, k, v);
          const float *c = rot && h < hq + hkv ? cs : NULL;
          if (backward) {
            rope_row(hp, row + h * d, d, c, sn, true, accumulate);
          } else if (row16) { /* bf16 x: the head's row widened first */
            _Pragma("omp simd") for (int64_t j = 0; j < d; j++) wide[j] =
                vt_bf16_to_f32(row16[h * d + j]);
            rope_row(wide, hp, d, c, sn, false, false);
          } else {
            rope_row(row + h * d, hp, d, c, sn, false, false);
          }
        }
      });
}

static void cpu_rope_qkv(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                         int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                         const float *x, float *q, float *k, float *v) {
  (void)be;
  rope_qkv_run(b, t, hq, hkv, d, theta, pos, pos_bstride, (float *)x, NULL, q, k, v, false, false);
}

static void cpu_rope_qkv_bf16(const vt_backend *be, int64_t b, int64_t t, int64_t hq, int64_t hkv,
                              int64_t d, float theta, const int32_t *pos, int64_t pos_bstride,
                              const uint16_t *x, float *q, float *k, float *v) {
  (void)be;
  rope_qkv_run(b, t, hq, hkv, d, theta, pos, pos_bstride, NULL, x, q, k, v, false, false);
}

static void cpu_rope_qkv_backward(const vt_backend *be, int64_t b, int64_t t, int64_t hq,
                                  int64_t hkv, int64_t d, float theta, const int32_t *pos,
                                  int64_t pos_bstride, const float *dq, const float *dk,
                                  const float *dv, float *dx, bool accumulate) {
  (void)be;
  rope_qkv_run(b, t, hq, hkv, d, theta, pos, pos_bstride, dx, NULL, (float *)dq, (float *)dk,
               (float *)dv, true, accumulate);
}

static void cpu_dropout(const vt_backend *be, int64_t n, float p, uint64_t seed, uint64_t offset,
                        const float *x, float *y) {
  (void)be;
  float scale = 1.0f / (1.0f - p);
  VT_OMP_IF(n > PAR_MIN, "omp parallel for",
            for (int64_t i = 0; i < n; i++) y[i] =
                vt_dropout_uniform(seed, offset + (uint64_t)i) >= p ? x[i] * scale : 0.0f;);
}

static void cpu_dropout_backward(const vt_backend *be, int64_t n, float p, uint64_t seed,
                                 uint64_t offset, const float *dy, float *dx) {
  (void)be;
  float scale = 1.0f / (1.0f - p);
  VT_OMP_IF(n > PAR_MIN, "omp parallel for",
            for (int64_t i = 0; i < n; i++) if (vt_dropout_uniform(seed, offset + (uint64_t)i) >= p)
                dx[i] += dy[i] * scale;);
}

static void cpu_weight_norm(const vt_backend *be, int64_t rows, int64_t cols, const float *g,
                            const float *v, float *w, float *norm) {
  (void)be;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *pv = v + r * cols;
        double ss = 0;
        for (int64_t j = 0; j < cols; j++) ss += (double)pv[j] * pv[j];
        float nr = (float)sqrt(ss);
        norm[r] = nr;
        float sc = g[r] / nr;
        for (int64_t j = 0; j < cols; j++) w[r * cols + j] = pv[j] * sc;
      });
}

static void cpu_weight_norm_backward(const vt_backend *be, int64_t rows, int64_t cols,
                                     const float *g, const float *v, const float *norm,
                                     const float *dw, float *dg, float *dv) {
  (void)be;
  VT_OMP_IF(
      rows * cols > PAR_MIN, "omp parallel for", for (int64_t r = 0; r < rows; r++) {
        const float *pv = v + r * cols, *pd = dw + r * cols;
        double dot = 0;
        for (int64_t j = 0; j < cols; j++) dot += (double)pd[j] * pv[j];
        float nr = norm[r];
        /* d/dg = (dw . v) / |v|; d/dv = g / |v| * (dw - v (dw . v) / |v|^2) */
        if (dg) dg[r] += (float)(dot / nr);
        if (dv) {
          float sc = g[r] / nr, proj = (float)(dot / ((double)nr * nr));
          for (int64_t j = 0; j < cols; j++) dv[r * cols + j] += sc * (pd[j] - pv[j] * proj);
        }
      });
}

/* The squared distance of x to code c, summed in j order (the reference the vector form
 * matches: a multiply then an add per element, no FMA). */
static float vq_dist(const float *x, const float *c, int64_t d) {
  float dist = 0;
  for (int64_t j = 0; j < d; j++) {
    float df = x[j] - c[j];
    dist += df * df;
  }
  return dist;
}

#define VQ_LANES 16   /* rows per vector */
#define VQ_MAX_D 1024 /* the transposed block of rows lives on the stack */

/* Nearest codes of rows [0, nr) (nr <= 16) of x: the rows transposed into lanes, so each
 * lane's distance to a code is vq_dist's sum in its order, and the first smallest wins. */
__attribute__((target("avx512f"))) static void vq_block_avx512(const float *x, int64_t nr,
                                                               int64_t k, int64_t d,
                                                               const float *codebook,
                                                               int32_t *idx) {
  float xt[VQ_MAX_D * VQ_LANES];
  for (int64_t j = 0; j < d; j++)
    for (int64_t l = 0; l < VQ_LANES; l++) xt[j * VQ_LANES + l] = l < nr ? x[l * d + j] : 0.0f;
  __m512 best = _mm512_set1_ps(INFINITY);
  __m512i bi = _mm512_setzero_si512();
  for (int64_t c = 0; c < k; c++) {
    const float *pc = codebook + c * d;
    __m512 dist = _mm512_setzero_ps();
    for (int64_t j = 0; j < d; j++) {
      __m512 df = _mm512_sub_ps(_mm512_loadu_ps(xt + j * VQ_LANES), _mm512_set1_ps(pc[j]));
      dist = _mm512_add_ps(dist, _mm512_mul_ps(df, df));
    }
    __mmask16 lt = _mm512_cmp_ps_mask(dist, best, _CMP_LT_OQ);
    best = _mm512_mask_blend_ps(lt, best, dist);
    bi = _mm512_mask_blend_epi32(lt, bi, _mm512_set1_epi32((int)c));
  }
  int32_t out[VQ_LANES];
  _mm512_storeu_si512(out, bi);
  memcpy(idx, out, sizeof(int32_t) * (size_t)nr);
}

static void cpu_vq_nearest(const vt_backend *be, int64_t n, int64_t k, int64_t d, const float *x,
                           const float *codebook, int32_t *idx, float *zq) {
  (void)be;
  static int wide = -1;
  if (wide < 0) wide = __builtin_cpu_supports("avx512f") ? 1 : 0;
  bool lanes = wide && d <= VQ_MAX_D && k <= INT32_MAX;
  int64_t nb = lanes ? (n + VQ_LANES - 1) / VQ_LANES : n, per = lanes ? VQ_LANES : 1;
  VT_OMP_IF(
      n * k * d > PAR_MIN, "omp parallel for", for (int64_t blk = 0; blk < nb; blk++) {
        int64_t i0 = blk * per, nr = n - i0 < per ? n - i0 : per;
        if (lanes) {
          vq_block_avx512(x + i0 * d, nr, k, d, codebook, idx + i0);
        } else {
          float best = INFINITY;
          int64_t bc = 0;
          for (int64_t c = 0; c < k; c++) {
            float dist = vq_dist(x + i0 * d, codebook + c * d, d);
            if (dist < best) best = dist, bc = c;
          }
          idx[i0] = (int32_t)bc;
        }
        for (int64_t i = i0; i < i0 + nr; i++)
          memcpy(zq + i * d, codebook + (int64_t)idx[i] * d, sizeof(float) * (size_t)d);
      });
}

const struct vt_norm_kernels vt_cpu_norm_kernels = {
    .layer_norm = cpu_layer_norm,
    .layer_norm_backward = cpu_layer_norm_backward,
    .rms_norm = cpu_rms_norm,
    .rms_norm_backward = cpu_rms_norm_backward,
    .group_norm = cpu_group_norm,
    .group_norm_backward = cpu_group_norm_backward,
    .batch_norm = cpu_batch_norm,
    .batch_norm_backward = cpu_batch_norm_backward,
    .rope = cpu_rope,
    .rope_qkv = cpu_rope_qkv,
    .rope_qkv_bf16 = cpu_rope_qkv_bf16,
    .rope_qkv_backward = cpu_rope_qkv_backward,
    .dropout = cpu_dropout,
    .dropout_backward = cpu_dropout_backward,
    .weight_norm = cpu_weight_norm,
    .weight_norm_backward = cpu_weight_norm_backward,
    .vq_nearest = cpu_vq_nearest,
};
