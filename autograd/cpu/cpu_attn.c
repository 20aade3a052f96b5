/* CPU kernels of the attn family: flash-style attention. Scores are formed one
 * [BQ x keys] tile at a time with OpenBLAS sgemm (every key at once up to BK_MAX keys, else
 * BK) and folded into an online softmax, so no T x T matrix exists; backward recomputes the
 * tiles from the saved row log-sum-exp.
 *
 * Parallel layout (OpenMP, one thread pool; sgemm runs single-threaded inside the region):
 *   forward          over (batch, head, query tile)
 *   backward, one pass (no dbias, Tk <= BK_MAX, >= 4 units): over (batch, kv head), each
 *                    unit owning its heads' dq and its dk/dv, so P and dS are formed once
 *   backward, two passes otherwise:
 *     dq/dbias       over (query tile, batch, head) where heads (and batches) that share one
 *                    bias slice stay on one thread, so dbias needs no atomics
 *     dk/dv          over (batch, kv head, key tile), looping over the heads of a GQA group,
 *                    so dk/dv need no atomics either. */
#include "autograd/cpu/cpu_par.h"
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "autograd/cpu/cpu_attn_bf16.h"
#include "autograd/cpu/cpu_gemm.h"
#include "autograd/cpu/cpu_vexp.h"
#include "autograd/kernels_attn.h"

#define BQ 64      /* query rows per tile */
#define BK 64      /* keys per tile of the two-pass backward */
#define BK_MAX 512 /* up to this many keys, a query tile's scores are one tile */

/* The exp loops dominate after the GEMMs: they use cpu_vexp.h's vectorisable exp, and the
 * functions holding them are VT_SIMD_HOT (AVX-512 / AVX2 / baseline clones). */

VT_SIMD_HOT float row_max(const float *s, int64_t n) {
  float mx = -INFINITY;
#if !defined(__clang__) /* clang cannot vectorise this max (NaN rules) and warns when asked */
#pragma omp simd reduction(max : mx)
#endif
  for (int64_t c = 0; c < n; c++) mx = s[c] > mx ? s[c] : mx;
  return mx;
}

/* s = exp(s - m) in place; returns the sum. */
VT_SIMD_HOT float row_exp(float *s, int64_t n, float m) {
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = 0; c < n; c++) {
    float e = vt_vexpf(s[c] - m);
    s[c] = e;
    sum += e;
  }
  return sum;
}

/* Row ranges of a query tile; returns the union [klo, khi) (empty when klo >= khi). */
static void tile_ranges(const vt_attn_geom *g, int64_t b, int64_t q0, int64_t nq, int64_t *lo,
                        int64_t *hi, int64_t *klo, int64_t *khi) {
  *klo = g->Tk;
  *khi = 0;
  for (int64_t r = 0; r < nq; r++) {
    vt_attn_row_range(g, b, q0 + r, &lo[r], &hi[r]);
    if (lo[r] < hi[r]) {
      if (lo[r] < *klo) *klo = lo[r];
      if (hi[r] > *khi) *khi = hi[r];
    }
  }
}

static const float *bias_rows(const vt_attn_geom *g, const float *bias, int64_t b, int64_t h) {
  return bias + vt_attn_bias_offset(g, b, h);
}

/* S[nq x nk] = scale * q_tile k_tile^T + bias, with masked entries set to -inf. */
static void scores(const vt_attn_geom *g, const float *qt, const float *kt, const float *bias,
                   int64_t q0, int64_t nq, int64_t k0, int64_t nk, const int64_t *lo,
                   const int64_t *hi, float *S) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)g->Dk, g->scale, qt,
              (int)g->Dk, kt, (int)g->Dk, 0.0f, S, (int)nk);
  for (int64_t r = 0; r < nq; r++) {
    float *s = S + r * nk;
    if (bias) {
      const float *br = bias + (q0 + r) * g->Tk + k0;
      for (int64_t c = 0; c < nk; c++) s[c] += br[c];
    }
    int64_t a = lo[r] - k0, e = hi[r] - k0; /* visible columns [a, e) of this tile */
    if (a > nk) a = nk;
    if (e < 0) e = 0;
    if (e < a) e = a;
    for (int64_t c = 0; c < a; c++) s[c] = -INFINITY;
    for (int64_t c = e; c < nk; c++) s[c] = -INFINITY;
  }
}

/* Below about a million multiply-adds a call runs on one thread: forking costs more. */
static bool worth_threads(const vt_attn_geom *g) {
  return (double)g->B * (double)g->H * (double)g->Tq * (double)g->Tk * (double)(g->Dk + g->Dv) >
         (double)(1 << 20);
}

/* Keys per score tile: every key at once when they fit (one GEMM pair per query tile, larger
 * and fewer sgemm calls, and no online rescaling), else BK. */
static int64_t key_tile(const vt_attn_geom *g) { return g->Tk <= BK_MAX ? g->Tk : BK; }

static size_t per_thread_floats(const vt_attn_geom *g) {
  int64_t d = g->Dk > g->Dv ? g->Dk : g->Dv, kt = key_tile(g) > BK ? key_tile(g) : BK;
  return (size_t)(2 * BQ * kt + BQ * d);
}

static size_t cpu_attn_workspace(const vt_backend *be, const vt_attn_geom *g) {
  (void)be;
  size_t rows = (size_t)(g->B * g->H * g->Tq); /* backward: D_i = dout_i . out_i */
  size_t f32 = (rows + per_thread_floats(g) * (size_t)omp_get_max_threads()) * sizeof(float) + 64;
  if (!g->lowp || !vt_cpu_bf16_gemm_ok()) return f32;
  size_t lowp = vt_cpu_attn_bf16_workspace(g); /* room for the f32 path too (its fallback) */
  return lowp > f32 ? lowp : f32;
}

static void cpu_attn_forward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                             const float *k, const float *v, float *out, float *lse, void *work) {
  (void)be;
  if (g->lowp && vt_cpu_bf16_gemm_ok() && vt_cpu_attn_bf16_forward(g, q, k, v, out, lse, work))
    return;
  const int64_t nqt = (g->Tq + BQ - 1) / BQ, group = g->H / g->Hkv;
  const int64_t units = g->B * g->H * nqt, kt = key_tile(g);
  const int nt = omp_get_max_threads();
  float *ws = (float *)work + g->B * g->H * g->Tq;
  VT_OMP_IF(worth_threads(g), "omp parallel num_threads(nt)", {
    float *S = ws + per_thread_floats(g) * (size_t)omp_get_thread_num();
    float *acc = S + (per_thread_floats(g) - (size_t)(BQ * (g->Dk > g->Dv ? g->Dk : g->Dv)));
    int64_t lo[BQ], hi[BQ];
    float m[BQ], l[BQ];
    VT_OMP_FOR(
        "omp for schedule(dynamic)", for (int64_t u = 0; u < units; u++) {
          int64_t qt = u % nqt, bh = u / nqt, b = bh / g->H, h = bh % g->H;
          int64_t q0 = qt * BQ, nq = g->Tq - q0 < BQ ? g->Tq - q0 : BQ;
          const float *qp = q + (bh * g->Tq + q0) * g->Dk;
          const float *kp = k + (b * g->Hkv + h / group) * g->Tk * g->Dk;
          const float *vp = v + (b * g->Hkv + h / group) * g->Tk * g->Dv;
          const float *bp = g->bias ? bias_rows(g, g->bias, b, h) : NULL;
          int64_t klo, khi;
          tile_ranges(g, b, q0, nq, lo, hi, &klo, &khi);
          for (int64_t r = 0; r < nq; r++) m[r] = -INFINITY, l[r] = 0;
          memset(acc, 0, sizeof(float) * (size_t)(nq * g->Dv));
          for (int64_t k0 = klo; k0 < khi; k0 += kt) {
            int64_t nk = khi - k0 < kt ? khi - k0 : kt;
            scores(g, qp, kp + k0 * g->Dk, bp, q0, nq, k0, nk, lo, hi, S);
            for (int64_t r = 0; r < nq; r++) {
              float *s = S + r * nk, mx = row_max(s, nk);
              if (mx == -INFINITY) { /* nothing visible here: this row's p is 0 */
                memset(s, 0, sizeof(float) * (size_t)nk);
                continue;
              }
              float mn = m[r] > mx ? m[r] : mx, sum = row_exp(s, nk, mn);
              if (mn > m[r]) { /* rescale what was accumulated under the old maximum */
                float alpha = expf(m[r] - mn);
                l[r] *= alpha;
                float *ar = acc + r * g->Dv;
                for (int64_t d = 0; d < g->Dv; d++) ar[d] *= alpha;
                m[r] = mn;
              }
              l[r] += sum;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)g->Dv, (int)nk,
                        1.0f, S, (int)nk, vp + k0 * g->Dv, (int)g->Dv, 1.0f, acc, (int)g->Dv);
          }
          float *op = out + (bh * g->Tq + q0) * g->Dv;
          for (int64_t r = 0; r < nq; r++) {
            float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;
            for (int64_t d = 0; d < g->Dv; d++) op[r * g->Dv + d] = acc[r * g->Dv + d] * inv;
            lse[bh * g->Tq + q0 + r] = l[r] > 0 ? m[r] + logf(l[r]) : -INFINITY;
          }
        });
  });
}

/* P = exp(S - lse) and dS = P * (dP - D) for one tile; S holds P afterwards, dP holds dS. */
VT_SIMD_HOT void tile_grads(int64_t nq, int64_t nk, const float *lse, const float *D, float *S,
                            float *dP) {
  for (int64_t r = 0; r < nq; r++) {
    float *s = S + r * nk, *dp = dP + r * nk, l = lse[r], d = D[r];
    if (l == -INFINITY) { /* a row that sees no key */
      memset(s, 0, sizeof(float) * (size_t)nk);
      memset(dp, 0, sizeof(float) * (size_t)nk);
      continue;
    }
#pragma omp simd
    for (int64_t c = 0; c < nk; c++) {
      float p = vt_vexpf(s[c] - l);
      s[c] = p;
      dp[c] = p * (dp[c] - d);
    }
  }
}

/* The backward in one pass when each thread can own whole (sample, kv head) units: per query
 * tile and head of the group, the scores, P, dP and dS are formed once and feed dq, dk and dv
 * (five GEMMs per tile instead of the two-pass form's seven), every key of the tile at once. */
/* By shape alone, so that results do not depend on the thread count: at least 4 units (two
 * per thread on 2 threads), or too little work to fork for. */
static bool one_pass(const vt_attn_geom *g, const float *dbias) {
  return !dbias && g->Tk <= BK_MAX && (g->B * g->Hkv >= 4 || !worth_threads(g));
}

static void backward_one_pass(const vt_attn_geom *g, const float *q, const float *k, const float *v,
                              const float *dout, const float *lse, const float *D, float *dq,
                              float *dk, float *dv, float *ws) {
  const int64_t group = g->H / g->Hkv, nqt = (g->Tq + BQ - 1) / BQ, units = g->B * g->Hkv;
  const int64_t kt = key_tile(g);
  const int nt = omp_get_max_threads();
  VT_OMP_IF(worth_threads(g), "omp parallel num_threads(nt)", {
    float *S = ws + per_thread_floats(g) * (size_t)omp_get_thread_num();
    float *dP = S + BQ * kt; /* both [BQ, kt]: every key of the tile */
    int64_t lo[BQ], hi[BQ];
    VT_OMP_FOR(
        "omp for schedule(dynamic)", for (int64_t u = 0; u < units; u++) {
          int64_t b = u / g->Hkv, kvh = u;
          const float *kp = k + kvh * g->Tk * g->Dk, *vp = v + kvh * g->Tk * g->Dv;
          for (int64_t qt = 0; qt < nqt; qt++) {
            int64_t q0 = qt * BQ, nq = g->Tq - q0 < BQ ? g->Tq - q0 : BQ, klo, khi;
            tile_ranges(g, b, q0, nq, lo, hi, &klo, &khi);
            if (klo >= khi) continue;
            int64_t nk = khi - klo;
            for (int64_t h = (u % g->Hkv) * group; h < (u % g->Hkv + 1) * group; h++) {
              int64_t bh = b * g->H + h;
              const float *qp = q + (bh * g->Tq + q0) * g->Dk;
              const float *dop = dout + (bh * g->Tq + q0) * g->Dv;
              const float *bp = g->bias ? bias_rows(g, g->bias, b, h) : NULL;
              scores(g, qp, kp + klo * g->Dk, bp, q0, nq, klo, nk, lo, hi, S);
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)g->Dv,
                          1.0f, dop, (int)g->Dv, vp + klo * g->Dv, (int)g->Dv, 0.0f, dP, (int)nk);
              tile_grads(nq, nk, lse + bh * g->Tq + q0, D + bh * g->Tq + q0, S, dP);
              if (dq)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)g->Dk, (int)nk,
                            g->scale, dP, (int)nk, kp + klo * g->Dk, (int)g->Dk, 1.0f,
                            dq + (bh * g->Tq + q0) * g->Dk, (int)g->Dk);
              if (dv)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)g->Dv, (int)nq,
                            1.0f, S, (int)nk, dop, (int)g->Dv, 1.0f,
                            dv + (kvh * g->Tk + klo) * g->Dv, (int)g->Dv);
              if (dk)
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)g->Dk, (int)nq,
                            g->scale, dP, (int)nk, qp, (int)g->Dk, 1.0f,
                            dk + (kvh * g->Tk + klo) * g->Dk, (int)g->Dk);
            }
          }
        });
  });
}

static void cpu_attn_backward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                              const float *k, const float *v, const float *out, const float *dout,
                              const float *lse, float *dq, float *dk, float *dv, float *dbias,
                              void *work) {
  (void)be;
  if (g->lowp && vt_cpu_bf16_gemm_ok() &&
      vt_cpu_attn_bf16_backward(g, q, k, v, out, dout, lse, dq, dk, dv, dbias, work))
    return;
  const int64_t group = g->H / g->Hkv, nqt = (g->Tq + BQ - 1) / BQ;
  const int64_t rows = g->B * g->H * g->Tq;
  const int nt = omp_get_max_threads();
  float *D = work, *ws = D + rows;
  VT_OMP_IF(
      rows * g->Dv > 32768, "omp parallel for num_threads(nt)", for (int64_t r = 0; r < rows; r++) {
        float s = 0;
        for (int64_t d = 0; d < g->Dv; d++) s += dout[r * g->Dv + d] * out[r * g->Dv + d];
        D[r] = s;
      });
  if (one_pass(g, dbias)) {
    backward_one_pass(g, q, k, v, dout, lse, D, dq, dk, dv, ws);
    return;
  }
  /* dq and dbias: bias slices shared by several (batch, head) pairs stay on one thread. */
  if (dq || dbias) {
    int64_t sb = dbias && g->bias_b == 1 ? 1 : g->B, sh = dbias && g->bias_h == 1 ? 1 : g->H;
    int64_t units = nqt * sb * sh;
    VT_OMP_IF(worth_threads(g), "omp parallel num_threads(nt)", {
      float *S = ws + per_thread_floats(g) * (size_t)omp_get_thread_num();
      float *dP = S + BQ * BK;
      int64_t lo[BQ], hi[BQ];
      VT_OMP_FOR(
          "omp for schedule(dynamic)", for (int64_t u = 0; u < units; u++) {
            int64_t qt = u % nqt, slot = u / nqt, bs = slot / sh, hs = slot % sh;
            int64_t q0 = qt * BQ, nq = g->Tq - q0 < BQ ? g->Tq - q0 : BQ;
            for (int64_t b = bs; b < g->B; b += sb) {
              int64_t klo, khi;
              tile_ranges(g, b, q0, nq, lo, hi, &klo, &khi);
              for (int64_t h = hs; h < g->H; h += sh) {
                int64_t bh = b * g->H + h, kvh = b * g->Hkv + h / group;
                const float *qp = q + (bh * g->Tq + q0) * g->Dk;
                const float *kp = k + kvh * g->Tk * g->Dk, *vp = v + kvh * g->Tk * g->Dv;
                const float *dop = dout + (bh * g->Tq + q0) * g->Dv;
                const float *bp = g->bias ? bias_rows(g, g->bias, b, h) : NULL;
                float *dbp = dbias ? (float *)bias_rows(g, dbias, b, h) : NULL;
                for (int64_t k0 = klo; k0 < khi; k0 += BK) {
                  int64_t nk = khi - k0 < BK ? khi - k0 : BK;
                  scores(g, qp, kp + k0 * g->Dk, bp, q0, nq, k0, nk, lo, hi, S);
                  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)g->Dv,
                              1.0f, dop, (int)g->Dv, vp + k0 * g->Dv, (int)g->Dv, 0.0f, dP,
                              (int)nk);
                  tile_grads(nq, nk, lse + bh * g->Tq + q0, D + bh * g->Tq + q0, S, dP);
                  if (dbp)
                    for (int64_t r = 0; r < nq; r++) {
                      float *db = dbp + (q0 + r) * g->Tk + k0;
                      for (int64_t c = 0; c < nk; c++) db[c] += dP[r * nk + c];
                    }
                  if (dq)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nq, (int)g->Dk,
                                (int)nk, g->scale, dP, (int)nk, kp + k0 * g->Dk, (int)g->Dk, 1.0f,
                                dq + (bh * g->Tq + q0) * g->Dk, (int)g->Dk);
                }
              }
            }
          });
    });
  }
  if (!dk && !dv) return;
  /* dk and dv: one key tile of one kv head per unit, summing over its query heads. */
  const int64_t nkt = (g->Tk + BK - 1) / BK, units = g->B * g->Hkv * nkt;
  VT_OMP_IF(worth_threads(g), "omp parallel num_threads(nt)", {
    float *S = ws + per_thread_floats(g) * (size_t)omp_get_thread_num();
    float *dP = S + BQ * BK;
    int64_t lo[BQ], hi[BQ];
    VT_OMP_FOR(
        "omp for schedule(dynamic)", for (int64_t u = 0; u < units; u++) {
          int64_t kt = u % nkt, kvh = u / nkt, b = kvh / g->Hkv, hk = kvh % g->Hkv;
          int64_t k0 = kt * BK, nk = g->Tk - k0 < BK ? g->Tk - k0 : BK;
          const float *kp = k + (kvh * g->Tk + k0) * g->Dk, *vp = v + (kvh * g->Tk + k0) * g->Dv;
          for (int64_t qt = 0; qt < nqt; qt++) {
            int64_t q0 = qt * BQ, nq = g->Tq - q0 < BQ ? g->Tq - q0 : BQ, klo, khi;
            tile_ranges(g, b, q0, nq, lo, hi, &klo, &khi);
            if (klo >= k0 + nk || khi <= k0) continue;
            for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
              int64_t bh = b * g->H + h;
              const float *qp = q + (bh * g->Tq + q0) * g->Dk;
              const float *dop = dout + (bh * g->Tq + q0) * g->Dv;
              const float *bp = g->bias ? bias_rows(g, g->bias, b, h) : NULL;
              scores(g, qp, kp, bp, q0, nq, k0, nk, lo, hi, S);
              cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nk, (int)g->Dv,
                          1.0f, dop, (int)g->Dv, vp, (int)g->Dv, 0.0f, dP, (int)nk);
              tile_grads(nq, nk, lse + bh * g->Tq + q0, D + bh * g->Tq + q0, S, dP);
              if (dv) /* dv += P^T dout */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)g->Dv, (int)nq,
                            1.0f, S, (int)nk, dop, (int)g->Dv, 1.0f,
                            dv + (kvh * g->Tk + k0) * g->Dv, (int)g->Dv);
              if (dk) /* dk += scale dS^T q */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, (int)g->Dk, (int)nq,
                            g->scale, dP, (int)nk, qp, (int)g->Dk, 1.0f,
                            dk + (kvh * g->Tk + k0) * g->Dk, (int)g->Dk);
            }
          }
        });
  });
}

const struct vt_attn_kernels vt_cpu_attn_kernels = {
    .workspace = cpu_attn_workspace,
    .forward = cpu_attn_forward,
    .backward = cpu_attn_backward,
};
