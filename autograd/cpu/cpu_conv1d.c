/* The direct 1-D correlation of cpu_conv1d.h: an AVX2 + FMA tile kernel chosen at run time
 * (the build targets x86-64-v2), a portable tile loop otherwise, and a bounds-checked scalar
 * loop for the few positions near the row ends where some tap falls outside the source. */
#include "autograd/cpu/cpu_conv1d.h"

#include <immintrin.h>
#include <string.h>

#include "autograd/cpu/cpu_par.h"

#define TILE 16                 /* output positions per register tile */
#define CPU_CORR_CHUNK_MAX 2048 /* output positions per chunk (a stack row of them) */

/* The taps that contribute, packed: their source offsets and weight columns. */
typedef struct {
  int n;
  int64_t off[CPU_CORR_MAX_TAPS], t[CPU_CORR_MAX_TAPS];
} taps;

static void store_tile(const cpu_corr1d *c, int64_t o, int64_t j, const float *v) {
  float *d = c->dst + o * c->dst_ld + c->obase + j * c->ostride;
  for (int q = 0; q < TILE; q++) {
    float *p = d + q * c->ostride;
    *p = c->acc ? *p + v[q] : v[q];
  }
}

/* The two source vectors of tap q at tile position j (16 floats, read with the stride). */
#define LOAD_X(x0, x1)                                                                             \
  do {                                                                                             \
    const float *p_ = s + tp->off[q];                                                              \
    if (c->istride == 1) {                                                                         \
      x0 = _mm256_loadu_ps(p_);                                                                    \
      x1 = _mm256_loadu_ps(p_ + 8);                                                                \
    } else {                                                                                       \
      x0 = _mm256_i32gather_ps(p_, step, 4);                                                       \
      x1 = _mm256_i32gather_ps(p_ + 8 * c->istride, step, 4);                                      \
    }                                                                                              \
  } while (0)

__attribute__((target("avx2,fma"))) static void store_avx2(const cpu_corr1d *c, int64_t o,
                                                           int64_t j, __m256 a0, __m256 a1) {
  if (c->ostride == 1) {
    float *d = c->dst + o * c->dst_ld + c->obase + j;
    if (c->acc) {
      a0 = _mm256_add_ps(a0, _mm256_loadu_ps(d));
      a1 = _mm256_add_ps(a1, _mm256_loadu_ps(d + 8));
    }
    _mm256_storeu_ps(d, a0);
    _mm256_storeu_ps(d + 8, a1);
  } else {
    float v[TILE];
    _mm256_storeu_ps(v, a0);
    _mm256_storeu_ps(v + 8, a1);
    store_tile(c, o, j, v);
  }
}

/* Four output rows from o0 over tiles j0, j0 + TILE, ... < j1 (every tap inside the row):
 * eight accumulators stay in registers across all input rows and taps. */
__attribute__((target("avx2,fma"))) static void tiles4_avx2(const cpu_corr1d *c, const taps *tp,
                                                            int64_t o0, int64_t j0, int64_t j1) {
  const __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32((int)c->istride));
  const int64_t so = c->so;
  for (int64_t j = j0; j + TILE <= j1; j += TILE) {
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
           a30 = a00, a31 = a00;
    for (int64_t i = 0; i < c->n_i; i++) {
      const float *s = c->src + i * c->src_ld + j * c->istride;
      const float *wp = c->w + o0 * so + i * c->si;
      for (int q = 0; q < tp->n; q++) {
        __m256 x0, x1;
        LOAD_X(x0, x1);
        const float *wq = wp + tp->t[q];
        __m256 w0 = _mm256_broadcast_ss(wq), w1 = _mm256_broadcast_ss(wq + so),
               w2 = _mm256_broadcast_ss(wq + 2 * so), w3 = _mm256_broadcast_ss(wq + 3 * so);
        a00 = _mm256_fmadd_ps(w0, x0, a00);
        a01 = _mm256_fmadd_ps(w0, x1, a01);
        a10 = _mm256_fmadd_ps(w1, x0, a10);
        a11 = _mm256_fmadd_ps(w1, x1, a11);
        a20 = _mm256_fmadd_ps(w2, x0, a20);
        a21 = _mm256_fmadd_ps(w2, x1, a21);
        a30 = _mm256_fmadd_ps(w3, x0, a30);
        a31 = _mm256_fmadd_ps(w3, x1, a31);
      }
    }
    store_avx2(c, o0, j, a00, a01);
    store_avx2(c, o0 + 1, j, a10, a11);
    store_avx2(c, o0 + 2, j, a20, a21);
    store_avx2(c, o0 + 3, j, a30, a31);
  }
}

/* One output row: two tiles at a time so that four accumulators hide the FMA latency. */
__attribute__((target("avx2,fma"))) static void tiles1_avx2(const cpu_corr1d *c, const taps *tp,
                                                            int64_t o, int64_t j0, int64_t j1) {
  const __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                          _mm256_set1_epi32((int)c->istride));
  for (int64_t j = j0; j + TILE <= j1; j += TILE) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0;
    for (int64_t i = 0; i < c->n_i; i++) {
      const float *s = c->src + i * c->src_ld + j * c->istride;
      const float *wp = c->w + o * c->so + i * c->si;
      for (int q = 0; q < tp->n; q++) {
        __m256 x0, x1;
        LOAD_X(x0, x1);
        __m256 w0 = _mm256_broadcast_ss(wp + tp->t[q]);
        a0 = _mm256_fmadd_ps(w0, x0, a0);
        a1 = _mm256_fmadd_ps(w0, x1, a1);
      }
    }
    store_avx2(c, o, j, a0, a1);
  }
}

__attribute__((target("avx2,fma"))) static void rows_avx2(const cpu_corr1d *c, const taps *tp,
                                                          int64_t j0, int64_t j1) {
  int64_t o = 0;
  for (; o + 4 <= c->n_o; o += 4) tiles4_avx2(c, tp, o, j0, j1);
  for (; o < c->n_o; o++) tiles1_avx2(c, tp, o, j0, j1);
}

/* The same tiles in plain C, one output row at a time. */
static void rows_plain(const cpu_corr1d *c, const taps *tp, int64_t j0, int64_t j1) {
  for (int64_t o = 0; o < c->n_o; o++)
    for (int64_t j = j0; j + TILE <= j1; j += TILE) {
      float v[TILE] = {0};
      for (int64_t i = 0; i < c->n_i; i++) {
        const float *s = c->src + i * c->src_ld + j * c->istride;
        const float *wp = c->w + o * c->so + i * c->si;
        for (int q = 0; q < tp->n; q++) {
          const float *p = s + tp->off[q];
          float wv = wp[tp->t[q]];
          for (int e = 0; e < TILE; e++) v[e] += wv * p[e * c->istride];
        }
      }
      store_tile(c, o, j, v);
    }
}

static int64_t div_floor(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* Positions [j0, j1) (at most a chunk) near the row ends: per tap, only the positions whose
 * source index is inside the row, found once, so the inner loop has no bounds check. */
static void cols_ranged(const cpu_corr1d *c, const taps *tp, int64_t j0, int64_t j1) {
  if (j1 <= j0) return;
  float acc[CPU_CORR_CHUNK_MAX];
  int64_t lo[CPU_CORR_MAX_TAPS], hi[CPU_CORR_MAX_TAPS];
  for (int q = 0; q < tp->n; q++) {
    int64_t a = div_floor(-tp->off[q] + c->istride - 1, c->istride);
    int64_t b = div_floor(c->len - 1 - tp->off[q], c->istride) + 1;
    lo[q] = a > j0 ? a : j0;
    hi[q] = b < j1 ? b : j1;
  }
  for (int64_t o = 0; o < c->n_o; o++) {
    for (int64_t j = j0; j < j1; j++) acc[j - j0] = 0.0f;
    for (int64_t i = 0; i < c->n_i; i++) {
      const float *row = c->src + i * c->src_ld;
      const float *wp = c->w + o * c->so + i * c->si;
      for (int q = 0; q < tp->n; q++) {
        float wv = wp[tp->t[q]];
        const float *p = row + tp->off[q];
        for (int64_t j = lo[q]; j < hi[q]; j++) acc[j - j0] += wv * p[j * c->istride];
      }
    }
    for (int64_t j = j0; j < j1; j++) {
      float *d = c->dst + o * c->dst_ld + c->obase + j * c->ostride;
      *d = c->acc ? *d + acc[j - j0] : acc[j - j0];
    }
  }
}

void cpu_corr1d_run(const cpu_corr1d *c) {
  static int have_avx2 = -1;
  if (have_avx2 < 0)
    have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1 : 0;
  taps tp;
  tp.n = 0;
  /* the interior [lo, hi): every contributing tap reads inside the source row */
  int64_t lo = 0, hi = c->m;
  for (int64_t t = 0; t < c->k; t++) {
    if (!c->on[t]) continue;
    tp.off[tp.n] = c->off[t];
    tp.t[tp.n++] = t;
    int64_t a = div_floor(-c->off[t] + c->istride - 1, c->istride);
    int64_t b = div_floor(c->len - 1 - c->off[t], c->istride) + 1;
    if (a > lo) lo = a;
    if (b < hi) hi = b;
  }
  if (lo > c->m) lo = c->m;
  if (hi < lo) hi = lo;
  if (tp.n == 0) { /* nothing reads the source: the output is zero (or unchanged) */
    if (!c->acc)
      for (int64_t o = 0; o < c->n_o; o++)
        for (int64_t j = 0; j < c->m; j++) c->dst[o * c->dst_ld + c->obase + j * c->ostride] = 0.0f;
    return;
  }
  /* chunks keep the source window of all input rows near L2 */
  int64_t chunk = (int64_t)32768 / (c->n_i > 0 ? c->n_i : 1) / TILE * TILE;
  if (chunk < 4 * TILE) chunk = 4 * TILE;
  if (chunk > CPU_CORR_CHUNK_MAX) chunk = CPU_CORR_CHUNK_MAX;
  int64_t n_chunks = (c->m + chunk - 1) / chunk;
  int64_t work = c->m * c->n_o * c->n_i * tp.n;
  VT_OMP_IF(
      work > 262144 && n_chunks > 1, "omp parallel for schedule(static)",
      for (int64_t ch = 0; ch < n_chunks; ch++) {
        int64_t j0 = ch * chunk, j1 = j0 + chunk < c->m ? j0 + chunk : c->m;
        int64_t a = j0 > lo ? j0 : lo, b = j1 < hi ? j1 : hi;
        if (a > j1) a = j1;
        if (b < a) b = a;
        int64_t bt = a + (b - a) / TILE * TILE; /* whole tiles in [a, bt) */
        cols_ranged(c, &tp, j0, a);
        if (have_avx2)
          rows_avx2(c, &tp, a, bt);
        else
          rows_plain(c, &tp, a, bt);
        cols_ranged(c, &tp, bt, j1 > bt ? j1 : bt);
      });
}

/* sum over j in [j0, j1) of d_b[j] * x[j * xs] for four rows d_b at once (d_b = d + b * dld). */
__attribute__((target("avx2,fma"))) static void dots_avx2(const float *x, int64_t xs,
                                                          const float *d, int64_t dld, int nb,
                                                          int64_t j0, int64_t j1, double *out) {
  const __m256i step =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)xs));
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = j0;
  for (; j + 8 <= j1; j += 8) {
    __m256 xv = xs == 1 ? _mm256_loadu_ps(x + j) : _mm256_i32gather_ps(x + j * xs, step, 4);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(d + j), xv, a0);
    if (nb > 1) a1 = _mm256_fmadd_ps(_mm256_loadu_ps(d + dld + j), xv, a1);
    if (nb > 2) a2 = _mm256_fmadd_ps(_mm256_loadu_ps(d + 2 * dld + j), xv, a2);
    if (nb > 3) a3 = _mm256_fmadd_ps(_mm256_loadu_ps(d + 3 * dld + j), xv, a3);
  }
  float v[4][8];
  _mm256_storeu_ps(v[0], a0);
  _mm256_storeu_ps(v[1], a1);
  _mm256_storeu_ps(v[2], a2);
  _mm256_storeu_ps(v[3], a3);
  for (int b = 0; b < nb; b++) {
    double s = 0;
    for (int e = 0; e < 8; e++) s += v[b][e];
    for (int64_t q = j; q < j1; q++) s += (double)d[b * dld + q] * x[q * xs];
    out[b] = s;
  }
}

static void dots_plain(const float *x, int64_t xs, const float *d, int64_t dld, int nb, int64_t j0,
                       int64_t j1, double *out) {
  for (int b = 0; b < nb; b++) {
    float s = 0.0f;
    for (int64_t q = j0; q < j1; q++) s += d[b * dld + q] * x[q * xs];
    out[b] = s;
  }
}

void cpu_corr1d_dweight(const cpu_corr1d *c, const float *dy, int64_t dy_ld, float *dw) {
  int have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  int64_t work = c->m * c->n_o * c->n_i * c->k;
  VT_OMP_IF(
      work > 262144 && c->n_i > 1, "omp parallel for schedule(static)",
      for (int64_t i = 0; i < c->n_i; i++) {
        const float *row = c->src + i * c->src_ld;
        for (int64_t t = 0; t < c->k; t++) {
          if (!c->on[t]) continue;
          int64_t a = div_floor(-c->off[t] + c->istride - 1, c->istride);
          int64_t b = div_floor(c->len - 1 - c->off[t], c->istride) + 1;
          if (a < 0) a = 0;
          if (b > c->m) b = c->m;
          if (b <= a) continue;
          for (int64_t o = 0; o < c->n_o; o += 4) {
            int nb = c->n_o - o < 4 ? (int)(c->n_o - o) : 4;
            double s[4];
            if (have_avx2)
              dots_avx2(row + c->off[t], c->istride, dy + o * dy_ld, dy_ld, nb, a, b, s);
            else
              dots_plain(row + c->off[t], c->istride, dy + o * dy_ld, dy_ld, nb, a, b, s);
            for (int q = 0; q < nb; q++) dw[(o + q) * c->so + i * c->si + t] += (float)s[q];
          }
        }
      });
}
