/* Attention with bf16 score and value products (see cpu_attn_bf16.h). The f32 kernel in
 * cpu_attn.c forms one 64 x 64 tile at a time inside an OpenMP region, too small and too
 * many for a oneDNN call each; here a query tile of every (batch, head) is one batched
 * oneDNN matmul instead, over the tile's whole visible key range, so the softmax of a row is
 * done in one pass (no online rescaling) and oneDNN threads each product itself.
 *
 * Layouts: the bf16 copies of q and dout are regrouped per kv head as [B Hkv, query tiles,
 * group x BQ, D] (rows g * BQ + r: head kvh * group + g, query q0 + r; tail rows zero), so
 * the group's heads form one matrix: the products with k and v need no broadcast, and the
 * sums over a group in dk and dv are the GEMMs' own reductions. k and v keep [B Hkv, Tk, D].
 * Softmax, masks, bias, the log-sum-exp and dS = P (dP - D) stay f32; P and dS are rounded to
 * bf16 only as GEMM inputs. */
#include "autograd/cpu/cpu_attn_bf16.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "autograd/cpu/cpu_gemm.h"
#include "autograd/cpu/cpu_par.h"
#include "autograd/cpu/cpu_vexp.h"
#include "autograd/dtype.h"

#define BQ 64 /* query rows of one head per tile */

typedef struct {
  int64_t G, Bkv, nqt, M, Dm; /* group, B * Hkv, query tiles, rows per tile, max head dim */
  uint16_t *q16, *k16, *v16, *do16, *p16, *ds16;
  float *S, *dP, *T32, *D;
} plan;

static size_t align64(size_t b) { return (b + 63) & ~(size_t)63; }

static void plan_dims(const vt_attn_geom *g, plan *p) {
  p->G = g->H / g->Hkv;
  p->Bkv = g->B * g->Hkv;
  p->nqt = (g->Tq + BQ - 1) / BQ;
  p->M = p->G * BQ;
  p->Dm = g->Dk > g->Dv ? g->Dk : g->Dv;
}

/* Carves the workspace; with base NULL only sums the bytes. */
static size_t plan_carve(const vt_attn_geom *g, plan *p, char *base) {
  plan_dims(g, p);
  size_t off = 0, tiles = (size_t)(p->Bkv * p->nqt * p->M), kv = (size_t)(p->Bkv * g->Tk);
  size_t st = (size_t)(p->Bkv * p->M * g->Tk);
#define TAKE(field, type, count)                                                                   \
  p->field = base ? (type *)(void *)(base + off) : NULL;                                           \
  off += align64(sizeof(type) * (count))
  TAKE(q16, uint16_t, tiles * (size_t)g->Dk);
  TAKE(do16, uint16_t, tiles * (size_t)g->Dv);
  TAKE(k16, uint16_t, kv * (size_t)g->Dk);
  TAKE(v16, uint16_t, kv * (size_t)g->Dv);
  TAKE(p16, uint16_t, st);
  TAKE(ds16, uint16_t, st);
  TAKE(S, float, st);
  TAKE(dP, float, st);
  TAKE(T32, float, (size_t)(p->Bkv * p->M * p->Dm));
  TAKE(D, float, (size_t)(g->B * g->H * g->Tq));
#undef TAKE
  return off;
}

size_t vt_cpu_attn_bf16_workspace(const vt_attn_geom *g) {
  plan p;
  return plan_carve(g, &p, NULL) + 64;
}

/* Below this many elements a pass runs on one thread: forking costs more. */
static bool big(int64_t elems) { return elems > 32768; }

/* x [B, H, Tq, D] f32 -> the regrouped bf16 tiles (zero rows past Tq). */
static void regroup(const vt_attn_geom *g, const plan *p, const float *x, int64_t D, uint16_t *y) {
  int64_t rows = p->Bkv * p->nqt * p->M;
  VT_OMP_IF(
      big(rows * D), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
        int64_t r = u % BQ, gg = (u / BQ) % p->G, qt = (u / p->M) % p->nqt,
                bkv = u / (p->M * p->nqt);
        int64_t i = qt * BQ + r, b = bkv / g->Hkv, h = (bkv % g->Hkv) * p->G + gg;
        uint16_t *dst = y + u * D;
        if (i >= g->Tq) {
          memset(dst, 0, sizeof(uint16_t) * (size_t)D);
          continue;
        }
        const float *src = x + ((b * g->H + h) * g->Tq + i) * D;
        for (int64_t d = 0; d < D; d++) dst[d] = vt_f32_to_bf16(src[d]);
      });
}

static void to_bf16(const float *x, int64_t n, uint16_t *y) {
  VT_OMP_IF(big(n), "omp parallel for",
            for (int64_t i = 0; i < n; i++) y[i] = vt_f32_to_bf16(x[i]););
}

/* The union [klo, khi) of the visible key ranges of query tile qt over the batch. */
static void tile_keys(const vt_attn_geom *g, int64_t qt, int64_t *klo, int64_t *khi) {
  *klo = g->Tk;
  *khi = 0;
  for (int64_t b = 0; b < g->B; b++)
    for (int64_t i = qt * BQ; i < g->Tq && i < (qt + 1) * BQ; i++) {
      int64_t lo, hi;
      vt_attn_row_range(g, b, i, &lo, &hi);
      if (lo < hi) {
        if (lo < *klo) *klo = lo;
        if (hi > *khi) *khi = hi;
      }
    }
}

/* Row u of a tile's [Bkv, M] rows: its sample, head and query index (i >= Tq: padding). */
static void row_of(const vt_attn_geom *g, const plan *p, int64_t qt, int64_t u, int64_t *b,
                   int64_t *h, int64_t *i) {
  int64_t bkv = u / p->M, rr = u % p->M;
  *b = bkv / g->Hkv;
  *h = (bkv % g->Hkv) * p->G + rr / BQ;
  *i = qt * BQ + rr % BQ;
}

/* s[0, nk) (keys klo..) of row (b, h, i): + bias, then -inf outside the visible range;
 * returns the visible columns [a, e). */
static void mask_row(const vt_attn_geom *g, int64_t b, int64_t h, int64_t i, int64_t klo,
                     int64_t nk, float *s, int64_t *a, int64_t *e) {
  int64_t lo, hi;
  vt_attn_row_range(g, b, i, &lo, &hi);
  *a = lo - klo < 0 ? 0 : lo - klo;
  *e = hi - klo > nk ? nk : hi - klo;
  if (*e < *a) *e = *a;
  if (g->bias) {
    const float *br = g->bias + vt_attn_bias_offset(g, b, h) + i * g->Tk + klo;
    for (int64_t c = *a; c < *e; c++) s[c] += br[c];
  }
}

/* S = scale q_tile k^T over keys [klo, klo + nk) for every (batch, kv head). */
static bool tile_scores(const vt_attn_geom *g, const plan *p, int64_t qt, int64_t klo, int64_t nk) {
  return vt_cpu_dnnl_gemm_bf16(false, true, p->M, nk, g->Dk, g->scale, p->q16 + qt * p->M * g->Dk,
                               g->Dk, p->nqt * p->M * g->Dk, p->k16 + klo * g->Dk, g->Dk,
                               g->Tk * g->Dk, 0.0f, p->S, nk, p->M * nk, p->Bkv);
}

VT_SIMD_HOT void softmax_row(float *s, uint16_t *p16, int64_t nk, int64_t a, int64_t e,
                             float *lse) {
  float mx = -INFINITY;
  for (int64_t c = a; c < e; c++) mx = s[c] > mx ? s[c] : mx;
  if (a >= e || mx == -INFINITY) {
    memset(p16, 0, sizeof(uint16_t) * (size_t)nk);
    *lse = -INFINITY;
    return;
  }
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t c = a; c < e; c++) {
    float x = vt_vexpf(s[c] - mx);
    s[c] = x;
    sum += x;
  }
  float inv = 1.0f / sum;
  for (int64_t c = 0; c < a; c++) p16[c] = 0;
#pragma omp simd
  for (int64_t c = a; c < e; c++) p16[c] = vt_f32_to_bf16(s[c] * inv);
  for (int64_t c = e; c < nk; c++) p16[c] = 0;
  *lse = mx + logf(sum);
}

bool vt_cpu_attn_bf16_forward(const vt_attn_geom *g, const float *q, const float *k, const float *v,
                              float *out, float *lse, void *work) {
  plan p;
  plan_carve(g, &p, (char *)(((uintptr_t)work + 63) & ~(uintptr_t)63));
  regroup(g, &p, q, g->Dk, p.q16);
  to_bf16(k, p.Bkv * g->Tk * g->Dk, p.k16);
  to_bf16(v, p.Bkv * g->Tk * g->Dv, p.v16);
  const int64_t rows = p.Bkv * p.M;
  for (int64_t qt = 0; qt < p.nqt; qt++) {
    int64_t klo, khi;
    tile_keys(g, qt, &klo, &khi);
    int64_t nk = khi > klo ? khi - klo : 0;
    if (nk && !tile_scores(g, &p, qt, klo, nk)) return false;
    VT_OMP_IF(
        big(rows * (nk + g->Dv)), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
          int64_t b, h, i, a = 0, e = 0;
          row_of(g, &p, qt, u, &b, &h, &i);
          if (i >= g->Tq || !nk) {
            if (nk) memset(p.p16 + u * nk, 0, sizeof(uint16_t) * (size_t)nk);
            if (i < g->Tq) lse[(b * g->H + h) * g->Tq + i] = -INFINITY;
            continue;
          }
          float *s = p.S + u * nk;
          mask_row(g, b, h, i, klo, nk, s, &a, &e);
          softmax_row(s, p.p16 + u * nk, nk, a, e, &lse[(b * g->H + h) * g->Tq + i]);
        });
    if (nk && !vt_cpu_dnnl_gemm_bf16(false, false, p.M, g->Dv, nk, 1.0f, p.p16, nk, p.M * nk,
                                     p.v16 + klo * g->Dv, g->Dv, g->Tk * g->Dv, 0.0f, p.T32, g->Dv,
                                     p.M * g->Dv, p.Bkv))
      return false;
    VT_OMP_IF(
        big(rows * g->Dv), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
          int64_t b, h, i;
          row_of(g, &p, qt, u, &b, &h, &i);
          if (i >= g->Tq) continue;
          float *o = out + ((b * g->H + h) * g->Tq + i) * g->Dv;
          if (nk)
            memcpy(o, p.T32 + u * g->Dv, sizeof(float) * (size_t)g->Dv);
          else
            memset(o, 0, sizeof(float) * (size_t)g->Dv);
        });
  }
  return true;
}

/* P and dS of one tile row from S (scores, overwritten) and dP; dbias gets the f32 dS. */
VT_SIMD_HOT void grad_row(float *s, const float *dp, uint16_t *p16, uint16_t *ds16, int64_t nk,
                          int64_t a, int64_t e, float l, float d, float scale, float *db) {
  memset(p16, 0, sizeof(uint16_t) * (size_t)nk);
  memset(ds16, 0, sizeof(uint16_t) * (size_t)nk);
  if (l == -INFINITY) return;
#pragma omp simd
  for (int64_t c = a; c < e; c++) {
    float pr = vt_vexpf(s[c] - l), ds = pr * (dp[c] - d);
    p16[c] = vt_f32_to_bf16(pr);
    ds16[c] = vt_f32_to_bf16(ds * scale);
    s[c] = ds;
  }
  if (db)
#pragma omp simd
    for (int64_t c = a; c < e; c++) db[c] += s[c];
}

bool vt_cpu_attn_bf16_backward(const vt_attn_geom *g, const float *q, const float *k,
                               const float *v, const float *out, const float *dout,
                               const float *lse, float *dq, float *dk, float *dv, float *dbias,
                               void *work) {
  plan p;
  plan_carve(g, &p, (char *)(((uintptr_t)work + 63) & ~(uintptr_t)63));
  const int64_t nrow = g->B * g->H * g->Tq;
  VT_OMP_IF(
      big(nrow * g->Dv), "omp parallel for", for (int64_t r = 0; r < nrow; r++) {
        float s = 0;
        for (int64_t d = 0; d < g->Dv; d++) s += dout[r * g->Dv + d] * out[r * g->Dv + d];
        p.D[r] = s;
      });
  regroup(g, &p, q, g->Dk, p.q16);
  regroup(g, &p, dout, g->Dv, p.do16);
  to_bf16(k, p.Bkv * g->Tk * g->Dk, p.k16);
  to_bf16(v, p.Bkv * g->Tk * g->Dv, p.v16);
  for (int64_t qt = 0; qt < p.nqt; qt++) {
    int64_t klo, khi;
    tile_keys(g, qt, &klo, &khi);
    if (khi <= klo) continue; /* no row of this tile sees a key: nothing flows */
    int64_t nk = khi - klo;
    if (!tile_scores(g, &p, qt, klo, nk) ||
        !vt_cpu_dnnl_gemm_bf16(false, true, p.M, nk, g->Dv, 1.0f, p.do16 + qt * p.M * g->Dv, g->Dv,
                               p.nqt * p.M * g->Dv, p.v16 + klo * g->Dv, g->Dv, g->Tk * g->Dv, 0.0f,
                               p.dP, nk, p.M * nk, p.Bkv))
      return false;
    /* One unit per query row r of the tile, looping over samples and heads: the rows of one
     * unit are the only writers of dbias row q0 + r, even when the bias is shared. */
    VT_OMP_IF(
        big(p.Bkv * p.M * nk), "omp parallel for", for (int64_t r = 0; r < BQ; r++) {
          for (int64_t bkv = 0; bkv < p.Bkv; bkv++)
            for (int64_t gg = 0; gg < p.G; gg++) {
              int64_t u = bkv * p.M + gg * BQ + r, b, h, i, a = 0, e = 0;
              row_of(g, &p, qt, u, &b, &h, &i);
              float *s = p.S + u * nk;
              if (i >= g->Tq) {
                memset(p.p16 + u * nk, 0, sizeof(uint16_t) * (size_t)nk);
                memset(p.ds16 + u * nk, 0, sizeof(uint16_t) * (size_t)nk);
                continue;
              }
              mask_row(g, b, h, i, klo, nk, s, &a, &e);
              int64_t row = (b * g->H + h) * g->Tq + i;
              float *db = dbias ? dbias + vt_attn_bias_offset(g, b, h) + i * g->Tk + klo : NULL;
              grad_row(s, p.dP + u * nk, p.p16 + u * nk, p.ds16 + u * nk, nk, a, e, lse[row],
                       p.D[row], g->scale, db);
            }
        });
    if (dq) {
      if (!vt_cpu_dnnl_gemm_bf16(false, false, p.M, g->Dk, nk, 1.0f, p.ds16, nk, p.M * nk,
                                 p.k16 + klo * g->Dk, g->Dk, g->Tk * g->Dk, 0.0f, p.T32, g->Dk,
                                 p.M * g->Dk, p.Bkv))
        return false;
      const int64_t rows = p.Bkv * p.M;
      VT_OMP_IF(
          big(rows * g->Dk), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
            int64_t b, h, i;
            row_of(g, &p, qt, u, &b, &h, &i);
            if (i >= g->Tq) continue;
            float *d = dq + ((b * g->H + h) * g->Tq + i) * g->Dk;
            const float *t = p.T32 + u * g->Dk;
            for (int64_t c = 0; c < g->Dk; c++) d[c] += t[c];
          });
    }
    if (dk && !vt_cpu_dnnl_gemm_bf16(true, false, nk, g->Dk, p.M, 1.0f, p.ds16, nk, p.M * nk,
                                     p.q16 + qt * p.M * g->Dk, g->Dk, p.nqt * p.M * g->Dk, 1.0f,
                                     dk + klo * g->Dk, g->Dk, g->Tk * g->Dk, p.Bkv))
      return false;
    if (dv && !vt_cpu_dnnl_gemm_bf16(true, false, nk, g->Dv, p.M, 1.0f, p.p16, nk, p.M * nk,
                                     p.do16 + qt * p.M * g->Dv, g->Dv, p.nqt * p.M * g->Dv, 1.0f,
                                     dv + klo * g->Dv, g->Dv, g->Tk * g->Dv, p.Bkv))
      return false;
  }
  return true;
}
