// ctest-labels: unit
/* The CPU RMSNorm and RoPE kernels (autograd/cpu/cpu_norm.c, vectorised clones) bit for bit
 * against plain scalar loops written here in the order the kernels document: the forward's
 * sum of squares and the input gradient's sum in 8 double lanes added in lane order, dw summed
 * over the rows in double column by column, the rotation pairs of vt_rope_pair. Vectorising a
 * kernel must not change a bit (the fp32 path is bit-reproducible). Widths with and without
 * a tail past the 8 lanes and past dw's 64-column blocks; with and without the weight; RoPE
 * with the bf16 input and the accumulating backward; on 1 and 2 threads. (dw's double sums
 * are rounded to float, so a change of their order alone mostly leaves its bits: summing the
 * rows backwards went unseen here; a changed element operation is caught.) */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/backend.h"
#include "autograd/dtype.h"
#include "autograd/kernels_norm.h"
#include "tests/check.h"

static float *rnd(int64_t n, uint32_t *s) {
  float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    *s = *s * 1664525u + 1013904223u;
    p[i] = (float)((double)(*s >> 8) / 16777216.0 - 0.5) * 3.0f;
  }
  return p;
}

static bool same_bits(const float *a, const float *b, int64_t n) {
  return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

static double lanes_sum(const double *lane) {
  double s = 0;
  for (int l = 0; l < 8; l++) s += lane[l];
  return s;
}

static void ref_rms(int64_t rows, int64_t cols, float eps, const float *x, const float *w, float *y,
                    float *rstd) {
  for (int64_t r = 0; r < rows; r++) {
    const float *px = x + r * cols;
    double lane[8] = {0}, ss;
    int64_t j = 0;
    for (; j + 8 <= cols; j += 8)
      for (int l = 0; l < 8; l++) lane[l] += (double)px[j + l] * px[j + l];
    ss = lanes_sum(lane);
    for (; j < cols; j++) ss += (double)px[j] * px[j];
    float rs = (float)(1.0 / sqrt(ss / (double)cols + eps));
    for (j = 0; j < cols; j++) y[r * cols + j] = w ? w[j] * (px[j] * rs) : px[j] * rs;
    rstd[r] = rs;
  }
}

static void ref_rms_backward(int64_t rows, int64_t cols, const float *x, const float *w,
                             const float *rstd, const float *dy, float *dx, float *dw) {
  for (int64_t r = 0; r < rows; r++) {
    const float *px = x + r * cols, *pd = dy + r * cols;
    float rs = rstd[r];
    double lane[8] = {0};
    for (int64_t j = 0; j < cols; j++) {
      float g = w ? pd[j] * w[j] : pd[j];
      lane[j % 8] += (double)g * (px[j] * rs);
    }
    float mb = (float)(lanes_sum(lane) / (double)cols);
    for (int64_t j = 0; j < cols; j++)
      dx[r * cols + j] +=
          w ? rs * (pd[j] * w[j] - px[j] * rs * mb) : rs * (pd[j] - px[j] * rs * mb);
  }
  for (int64_t j = 0; j < cols; j++) {
    double a = 0;
    for (int64_t r = 0; r < rows; r++) a += (double)dy[r * cols + j] * (x[r * cols + j] * rstd[r]);
    dw[j] += (float)a;
  }
}

static void check_rms(int64_t rows, int64_t cols, bool weight) {
  const vt_backend *be = vt_backend_cpu();
  uint32_t s = (uint32_t)(rows * 131 + cols);
  int64_t n = rows * cols;
  float *x = rnd(n, &s), *w = rnd(cols, &s), *dy = rnd(n, &s), *dx0 = rnd(n, &s);
  float *y = malloc(sizeof(float) * n), *yr = malloc(sizeof(float) * n);
  float *rs = malloc(sizeof(float) * rows), *rsr = malloc(sizeof(float) * rows);
  float *dx = malloc(sizeof(float) * n), *dxr = malloc(sizeof(float) * n);
  float *dw = rnd(cols, &s), *dwr = malloc(sizeof(float) * cols);
  const float *wp = weight ? w : NULL;
  memcpy(dx, dx0, sizeof(float) * n);
  memcpy(dxr, dx0, sizeof(float) * n);
  memcpy(dwr, dw, sizeof(float) * cols);
  be->norm->rms_norm(be, rows, cols, 1e-6f, x, wp, y, rs);
  ref_rms(rows, cols, 1e-6f, x, wp, yr, rsr);
  CHECK_MSG(same_bits(y, yr, n) && same_bits(rs, rsr, rows), "rms_norm %lldx%lld w %d",
            (long long)rows, (long long)cols, weight);
  be->norm->rms_norm_backward(be, rows, cols, x, wp, rs, dy, dx, dw);
  ref_rms_backward(rows, cols, x, wp, rsr, dy, dxr, dwr);
  CHECK_MSG(same_bits(dx, dxr, n), "rms_norm dx %lldx%lld w %d", (long long)rows, (long long)cols,
            weight);
  CHECK_MSG(same_bits(dw, dwr, cols), "rms_norm dw %lldx%lld w %d", (long long)rows,
            (long long)cols, weight);
  free(x), free(w), free(dy), free(dx0), free(y), free(yr), free(rs), free(rsr), free(dx);
  free(dxr), free(dw), free(dwr);
}

/* rope_qkv forward (f32 and bf16 x) and backward (overwrite and accumulate) against the head
 * loop of kernels_norm.h's definitions. */
static void check_rope(int64_t b, int64_t t, int64_t hq, int64_t hkv, int64_t d) {
  const vt_backend *be = vt_backend_cpu();
  uint32_t s = (uint32_t)(b * 7 + t * 3 + d);
  int64_t nh = hq + 2 * hkv, nx = b * t * nh * d, nq = b * hq * t * d, nk = b * hkv * t * d;
  float theta = 10000.0f, *x = rnd(nx, &s);
  uint16_t *x16 = malloc(sizeof(uint16_t) * nx);
  for (int64_t i = 0; i < nx; i++) x16[i] = vt_f32_to_bf16(x[i]);
  int32_t *pos = malloc(sizeof(int32_t) * b * t);
  for (int64_t i = 0; i < b * t; i++) pos[i] = (int32_t)((i * 5) % 97);
  float *qkv = malloc(sizeof(float) * (nq + 2 * nk)), *ref = malloc(sizeof(float) * (nq + 2 * nk));
  float *dx = rnd(nx, &s), *dxr = malloc(sizeof(float) * nx), *g = rnd(nq + 2 * nk, &s);
  memcpy(dxr, dx, sizeof(float) * nx);
  for (int pass = 0; pass < 2; pass++) { /* f32 x, then bf16 x */
    float *xw = x;
    if (pass) {
      xw = malloc(sizeof(float) * nx);
      for (int64_t i = 0; i < nx; i++) xw[i] = vt_bf16_to_f32(x16[i]);
      be->norm->rope_qkv_bf16(be, b, t, hq, hkv, d, theta, pos, t, x16, qkv, qkv + nq,
                              qkv + nq + nk);
    } else {
      be->norm->rope_qkv(be, b, t, hq, hkv, d, theta, pos, t, x, qkv, qkv + nq, qkv + nq + nk);
    }
    for (int64_t bi = 0; bi < b; bi++)
      for (int64_t ti = 0; ti < t; ti++)
        for (int64_t h = 0; h < nh; h++) {
          const float *src = xw + ((bi * t + ti) * nh + h) * d;
          float *dst = vt_qkv_head_row(bi, ti, h, hq, hkv, t, d, ref, ref + nq, ref + nq + nk);
          for (int64_t k = 0; k < d / 2; k++) {
            if (h >= hq + hkv) {
              dst[k] = src[k], dst[k + d / 2] = src[k + d / 2];
              continue;
            }
            float ang = (float)pos[bi * t + ti] * vt_rope_inv_freq(theta, k, d);
            vt_rope_pair(src[k], src[k + d / 2], cosf(ang), sinf(ang), &dst[k], &dst[k + d / 2]);
          }
        }
    CHECK_MSG(same_bits(qkv, ref, nq + 2 * nk), "rope_qkv%s b %lld t %lld d %lld",
              pass ? "_bf16" : "", (long long)b, (long long)t, (long long)d);
    if (pass) free(xw);
  }
  for (int acc = 0; acc < 2; acc++) {
    be->norm->rope_qkv_backward(be, b, t, hq, hkv, d, theta, pos, t, g, g + nq, g + nq + nk, dx,
                                acc);
    for (int64_t bi = 0; bi < b; bi++)
      for (int64_t ti = 0; ti < t; ti++)
        for (int64_t h = 0; h < nh; h++) {
          float *dst = dxr + ((bi * t + ti) * nh + h) * d;
          const float *src = vt_qkv_head_row(bi, ti, h, hq, hkv, t, d, g, g + nq, g + nq + nk);
          for (int64_t k = 0; k < d / 2; k++) {
            float o1 = src[k], o2 = src[k + d / 2];
            if (h < hq + hkv) {
              float ang = (float)pos[bi * t + ti] * vt_rope_inv_freq(theta, k, d);
              vt_rope_pair(src[k], src[k + d / 2], cosf(ang), -1.0f * sinf(ang), &o1, &o2);
            }
            dst[k] = acc ? dst[k] + o1 : o1;
            dst[k + d / 2] = acc ? dst[k + d / 2] + o2 : o2;
          }
        }
    CHECK_MSG(same_bits(dx, dxr, nx), "rope_qkv_backward acc %d d %lld", acc, (long long)d);
  }
  free(x), free(x16), free(pos), free(qkv), free(ref), free(dx), free(dxr), free(g);
}

int main(void) {
  for (int th = 1; th <= 2; th++) {
    omp_set_num_threads(th);
    check_rms(1024, 512, true); /* the bench's shape: 8 whole dw blocks, threaded */
    check_rms(300, 100, true);  /* tails: 4 past the lanes, 36 past the first dw block */
    check_rms(70, 77, false);
    check_rope(2, 37, 4, 2, 64);
    check_rope(1, 300, 2, 1, 12); /* d / 2 = 6: shorter than a vector */
  }
  return vt_test_finish("test_norm_kernels");
}
