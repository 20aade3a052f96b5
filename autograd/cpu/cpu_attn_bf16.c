/* Attention with bf16 score and value products (see cpu_attn_bf16.h). The f32 kernel in
 * cpu_attn.c forms one 64 x 64 tile at a time inside an OpenMP region, too small and too
 * many for a oneDNN call each; here a query tile of every (batch, head) is one batched
 * oneDNN matmul instead, over the tile's whole visible key range, so the softmax of a row is
 * done in one pass (no online rescaling) and oneDNN threads each product itself.
 *
 * The (batch, kv head) pairs run in chunks of CB, so the workspace is bounded: CB of them
 * take at most WORK_BUDGET bytes of scores, copies and products (at least one pair: a pair's
 * part still grows with Tk). Per chunk k and v are copied to bf16 once, then every query tile
 * runs. Layouts: the bf16 copies of one query tile of q and dout are regrouped per kv head
 * as [CB, group x BQ, D] (rows g * BQ + r: head kvh * group + g, query q0 + r; tail rows
 * zero), so the group's heads form one matrix: the products with k and v need no broadcast,
 * and the sums over a group in dk and dv are the GEMMs' own reductions. k and v keep
 * [CB, Tk, D]. Softmax, masks, bias, the log-sum-exp and dS = P (dP - D) stay f32; P and dS
 * are rounded to bf16 only as GEMM inputs. */
#include "autograd/cpu/cpu_attn_bf16.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "autograd/cpu/cpu_gemm.h"
#include "autograd/cpu/cpu_par.h"
#include "autograd/cpu/cpu_vexp.h"
#include "autograd/dtype.h"

#define BQ 64                  /* query rows of one head per tile */
#define WORK_BUDGET (2u << 20) /* bytes of one chunk of (batch, kv head) pairs */

typedef struct {
  int64_t G, Bkv, nqt, M, Dm; /* group, B * Hkv, query tiles, rows per tile, max head dim */
  int64_t CB;                 /* (batch, kv head) pairs per chunk */
  uint16_t *q16, *k16, *v16, *do16, *p16, *ds16;
  float *S, *dP, *T32, *D;
} plan;

/* One chunk: pairs [b0, b0 + nb) of the B * Hkv. */
typedef struct {
  int64_t b0, nb;
} chunk;

static size_t align64(size_t b) { return (b + 63) & ~(size_t)63; }

static void plan_dims(const vt_attn_geom *g, plan *p) {
  p->G = g->H / g->Hkv;
  p->Bkv = g->B * g->Hkv;
  p->nqt = (g->Tq + BQ - 1) / BQ;
  p->M = p->G * BQ;
  p->Dm = g->Dk > g->Dv ? g->Dk : g->Dv;
  /* bytes per pair: q and dout tiles, k and v in bf16; P, dS (bf16), S, dP (f32); T32 */
  int64_t pair =
      2 * (p->M * (g->Dk + g->Dv) + g->Tk * (g->Dk + g->Dv)) + 12 * p->M * g->Tk + 4 * p->M * p->Dm;
  p->CB = (int64_t)WORK_BUDGET / pair;
  if (p->CB < 1) p->CB = 1;
  if (p->CB > p->Bkv) p->CB = p->Bkv;
}

/* Carves the workspace; with base NULL only sums the bytes. */
static size_t plan_carve(const vt_attn_geom *g, plan *p, char *base) {
  plan_dims(g, p);
  size_t off = 0, tiles = (size_t)(p->CB * p->M), kv = (size_t)(p->CB * g->Tk);
  size_t st = (size_t)(p->CB * p->M * g->Tk);
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
  TAKE(T32, float, (size_t)(p->CB * p->M * p->Dm));
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

VT_SIMD_HOT void row_to_bf16(int64_t n, const float *restrict x, uint16_t *restrict y) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) y[i] = vt_f32_to_bf16(x[i]);
}

/* Query tile qt of x [B, H, Tq, D] f32 for the chunk's pairs -> the regrouped bf16 tile
 * (zero rows past Tq). */
static void regroup(const vt_attn_geom *g, const plan *p, chunk c, int64_t qt, const float *x,
                    int64_t D, uint16_t *y) {
  int64_t rows = c.nb * p->M;
  VT_OMP_IF(
      big(rows * D), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
        int64_t r = u % BQ, gg = (u / BQ) % p->G, bkv = c.b0 + u / p->M;
        int64_t i = qt * BQ + r, b = bkv / g->Hkv, h = (bkv % g->Hkv) * p->G + gg;
        uint16_t *dst = y + u * D;
        if (i >= g->Tq) {
          memset(dst, 0, sizeof(uint16_t) * (size_t)D);
          continue;
        }
        row_to_bf16(D, x + ((b * g->H + h) * g->Tq + i) * D, dst);
      });
}

/* x f32 -> y bf16, in blocks over the threads. */
static void to_bf16(const float *x, int64_t n, uint16_t *y) {
  int64_t nb = (n + 4095) / 4096;
  VT_OMP_IF(
      big(n), "omp parallel for", for (int64_t c = 0; c < nb; c++) {
        int64_t i0 = c * 4096;
        row_to_bf16(n - i0 < 4096 ? n - i0 : 4096, x + i0, y + i0);
      });
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

/* Row u of a tile's [nb, M] rows in chunk c: its sample, head and query index (i >= Tq:
 * padding). */
static void row_of(const vt_attn_geom *g, const plan *p, chunk c, int64_t qt, int64_t u, int64_t *b,
                   int64_t *h, int64_t *i) {
  int64_t bkv = c.b0 + u / p->M, rr = u % p->M;
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

/* S = scale q_tile k^T over keys [klo, klo + nk) for the chunk's pairs. */
static bool tile_scores(const vt_attn_geom *g, const plan *p, chunk c, int64_t klo, int64_t nk) {
  return vt_cpu_dnnl_gemm_bf16(false, true, p->M, nk, g->Dk, g->scale, p->q16, g->Dk, p->M * g->Dk,
                               p->k16 + klo * g->Dk, g->Dk, g->Tk * g->Dk, 0.0f, p->S, nk,
                               p->M * nk, c.nb);
}

/* The chunk's k and v in bf16. */
static void chunk_kv(const vt_attn_geom *g, const plan *p, chunk c, const float *k,
                     const float *v) {
  to_bf16(k + c.b0 * g->Tk * g->Dk, c.nb * g->Tk * g->Dk, p->k16);
  to_bf16(v + c.b0 * g->Tk * g->Dv, c.nb * g->Tk * g->Dv, p->v16);
}

VT_SIMD_HOT void softmax_row(float *s, uint16_t *p16, int64_t nk, int64_t a, int64_t e,
                             float *lse) {
  /* the max in simd lanes (exact in any order; a serial chain of vmaxss was latency-bound) */
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
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

/* The tile's product rows t [nb M, D] into x [B, H, Tq, D] (added, or copied; t NULL: zeros),
 * padding rows skipped. */
static void scatter_rows(const vt_attn_geom *g, const plan *p, chunk c, int64_t qt, int64_t D,
                         const float *t, float *x, bool add) {
  const int64_t rows = c.nb * p->M;
  VT_OMP_IF(
      big(rows * D), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
        int64_t b, h, i;
        row_of(g, p, c, qt, u, &b, &h, &i);
        if (i >= g->Tq) continue;
        float *d = x + ((b * g->H + h) * g->Tq + i) * D;
        const float *r = t ? t + u * D : NULL;
        if (add)
          for (int64_t e = 0; e < D; e++) d[e] += r[e];
        else if (r)
          memcpy(d, r, sizeof(float) * (size_t)D);
        else
          memset(d, 0, sizeof(float) * (size_t)D);
      });
}

/* Forward of query tile qt for chunk c (k16 and v16 hold the chunk's k and v). */
static bool forward_tile(const vt_attn_geom *g, const plan *p, chunk c, int64_t qt, const float *q,
                         float *out, float *lse) {
  int64_t klo, khi;
  tile_keys(g, qt, &klo, &khi);
  int64_t nk = khi > klo ? khi - klo : 0;
  const int64_t rows = c.nb * p->M;
  regroup(g, p, c, qt, q, g->Dk, p->q16);
  if (nk && !tile_scores(g, p, c, klo, nk)) return false;
  VT_OMP_IF(
      big(rows * (nk + g->Dv)), "omp parallel for", for (int64_t u = 0; u < rows; u++) {
        int64_t b, h, i, a = 0, e = 0;
        row_of(g, p, c, qt, u, &b, &h, &i);
        if (i >= g->Tq || !nk) {
          if (nk) memset(p->p16 + u * nk, 0, sizeof(uint16_t) * (size_t)nk);
          if (i < g->Tq) lse[(b * g->H + h) * g->Tq + i] = -INFINITY;
          continue;
        }
        float *s = p->S + u * nk;
        mask_row(g, b, h, i, klo, nk, s, &a, &e);
        softmax_row(s, p->p16 + u * nk, nk, a, e, &lse[(b * g->H + h) * g->Tq + i]);
      });
  if (nk && !vt_cpu_dnnl_gemm_bf16(false, false, p->M, g->Dv, nk, 1.0f, p->p16, nk, p->M * nk,
                                   p->v16 + klo * g->Dv, g->Dv, g->Tk * g->Dv, 0.0f, p->T32, g->Dv,
                                   p->M * g->Dv, c.nb))
    return false;
  scatter_rows(g, p, c, qt, g->Dv, nk ? p->T32 : NULL, out, false);
  return true;
}

bool vt_cpu_attn_bf16_forward(const vt_attn_geom *g, const float *q, const float *k, const float *v,
                              float *out, float *lse, void *work) {
  plan p;
  plan_carve(g, &p, (char *)(((uintptr_t)work + 63) & ~(uintptr_t)63));
  for (chunk c = {0, 0}; c.b0 < p.Bkv; c.b0 += c.nb) {
    c.nb = p.Bkv - c.b0 < p.CB ? p.Bkv - c.b0 : p.CB;
    chunk_kv(g, &p, c, k, v);
    for (int64_t qt = 0; qt < p.nqt; qt++)
      if (!forward_tile(g, &p, c, qt, q, out, lse)) return false;
  }
  return true;
}

/* P and dS of one tile row from S (scores, overwritten) and dP; dbias gets the f32 dS. */
VT_SIMD_HOT void grad_row(float *s, const float *dp, uint16_t *p16, uint16_t *ds16, int64_t nk,
                          int64_t a, int64_t e, float l, float d, float scale, float *db) {
  if (l == -INFINITY) {
    memset(p16, 0, sizeof(uint16_t) * (size_t)nk);
    memset(ds16, 0, sizeof(uint16_t) * (size_t)nk);
    return;
  }
  /* zeros outside the visible columns only: [a, e) is written below */
  a = a < nk ? a : nk;
  e = e < a ? a : e;
  memset(p16, 0, sizeof(uint16_t) * (size_t)a);
  memset(ds16, 0, sizeof(uint16_t) * (size_t)a);
  memset(p16 + e, 0, sizeof(uint16_t) * (size_t)(nk - e));
  memset(ds16 + e, 0, sizeof(uint16_t) * (size_t)(nk - e));
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

/* Backward of query tile qt for chunk c: dq of the tile's rows, and the tile's share of dk
 * and dv of the chunk's pairs (accumulated by the GEMMs, beta 1). */
static bool backward_tile(const vt_attn_geom *g, const plan *p, chunk c, int64_t qt, const float *q,
                          const float *dout, const float *lse, float *dq, float *dk, float *dv,
                          float *dbias) {
  int64_t klo, khi;
  tile_keys(g, qt, &klo, &khi);
  if (khi <= klo) return true; /* no row of this tile sees a key: nothing flows */
  int64_t nk = khi - klo;
  regroup(g, p, c, qt, q, g->Dk, p->q16);
  regroup(g, p, c, qt, dout, g->Dv, p->do16);
  if (!tile_scores(g, p, c, klo, nk) ||
      !vt_cpu_dnnl_gemm_bf16(false, true, p->M, nk, g->Dv, 1.0f, p->do16, g->Dv, p->M * g->Dv,
                             p->v16 + klo * g->Dv, g->Dv, g->Tk * g->Dv, 0.0f, p->dP, nk, p->M * nk,
                             c.nb))
    return false;
  /* One unit per query row r of the tile, looping over samples and heads: the rows of one
   * unit are the only writers of dbias row q0 + r, even when the bias is shared. */
  VT_OMP_IF(
      big(c.nb * p->M * nk), "omp parallel for", for (int64_t r = 0; r < BQ; r++) {
        for (int64_t bkv = 0; bkv < c.nb; bkv++)
          for (int64_t gg = 0; gg < p->G; gg++) {
            int64_t u = bkv * p->M + gg * BQ + r, b, h, i, a = 0, e = 0;
            row_of(g, p, c, qt, u, &b, &h, &i);
            float *s = p->S + u * nk;
            if (i >= g->Tq) {
              memset(p->p16 + u * nk, 0, sizeof(uint16_t) * (size_t)nk);
              memset(p->ds16 + u * nk, 0, sizeof(uint16_t) * (size_t)nk);
              continue;
            }
            mask_row(g, b, h, i, klo, nk, s, &a, &e);
            int64_t row = (b * g->H + h) * g->Tq + i;
            float *db = dbias ? dbias + vt_attn_bias_offset(g, b, h) + i * g->Tk + klo : NULL;
            grad_row(s, p->dP + u * nk, p->p16 + u * nk, p->ds16 + u * nk, nk, a, e, lse[row],
                     p->D[row], g->scale, db);
          }
      });
  if (dq) {
    if (!vt_cpu_dnnl_gemm_bf16(false, false, p->M, g->Dk, nk, 1.0f, p->ds16, nk, p->M * nk,
                               p->k16 + klo * g->Dk, g->Dk, g->Tk * g->Dk, 0.0f, p->T32, g->Dk,
                               p->M * g->Dk, c.nb))
      return false;
    scatter_rows(g, p, c, qt, g->Dk, p->T32, dq, true);
  }
  int64_t kv0 = c.b0 * g->Tk + klo;
  if (dk && !vt_cpu_dnnl_gemm_bf16(true, false, nk, g->Dk, p->M, 1.0f, p->ds16, nk, p->M * nk,
                                   p->q16, g->Dk, p->M * g->Dk, 1.0f, dk + kv0 * g->Dk, g->Dk,
                                   g->Tk * g->Dk, c.nb))
    return false;
  return !dv || vt_cpu_dnnl_gemm_bf16(true, false, nk, g->Dv, p->M, 1.0f, p->p16, nk, p->M * nk,
                                      p->do16, g->Dv, p->M * g->Dv, 1.0f, dv + kv0 * g->Dv, g->Dv,
                                      g->Tk * g->Dv, c.nb);
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
  for (chunk c = {0, 0}; c.b0 < p.Bkv; c.b0 += c.nb) {
    c.nb = p.Bkv - c.b0 < p.CB ? p.Bkv - c.b0 : p.CB;
    chunk_kv(g, &p, c, k, v);
    for (int64_t qt = 0; qt < p.nqt; qt++)
      if (!backward_tile(g, &p, c, qt, q, dout, lse, dq, dk, dv, dbias)) return false;
  }
  return true;
}
