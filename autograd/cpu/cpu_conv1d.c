/* The direct 1-D correlation of cpu_conv1d.h: AVX-512 and AVX2 + FMA tile kernels chosen at
 * run time (the build targets x86-64-v2), a portable tile loop otherwise, and a bounds-checked
 * scalar loop for the few positions near the row ends where some tap falls outside the source.
 * The vector tile kernels sum an output in the same order (one FMA per input row and tap), so
 * the AVX2 and AVX-512 paths give the same bits. */
#include "autograd/cpu/cpu_conv1d.h"

#include <immintrin.h>
#include <string.h>

#include "autograd/cpu/cpu_par.h"

#define TILE 16                 /* output positions per register tile */
#define WIDE 64                 /* output positions per AVX-512 tile (four registers) */
#define CPU_CORR_CHUNK_MAX 2048 /* output positions per chunk (a stack row of them) */
#define CPU_CORR_WIN 16384      /* floats of in_act's activated source window (on the stack) */
#define ISA_PLAIN 0
#define ISA_AVX2 1
#define ISA_AVX512 2
#define AVX2 __attribute__((target("avx2,fma")))
#define AVX512 __attribute__((target("avx512f,avx2,fma")))

/* The taps that contribute, packed: their source offsets and weight columns. */
typedef struct {
  int n;
  int64_t off[CPU_CORR_MAX_TAPS], t[CPU_CORR_MAX_TAPS];
} taps;

static int isa_cap = ISA_AVX512;

int cpu_corr1d_set_isa(int max_isa) {
  int old = isa_cap;
  isa_cap = max_isa;
  return old;
}

static int isa_have(void) {
  static int have = -1;
  if (have < 0) {
    have = ISA_PLAIN;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) have = ISA_AVX2;
    if (have == ISA_AVX2 && __builtin_cpu_supports("avx512f")) have = ISA_AVX512;
  }
  return have < isa_cap ? have : isa_cap;
}

static inline float lrelu(float v, float slope) { return v > 0 ? v : slope * v; }

static bool has_epilogue(const cpu_corr1d *c) { return c->bias || c->res || c->out_act; }

/* The stored value of v at output row o, position j (the epilogue of cpu_corr1d). */
static inline float epilogue(const cpu_corr1d *c, int64_t o, int64_t j, float v) {
  int64_t at = c->obase + j * c->ostride;
  if (c->acc) v = c->dst[o * c->dst_ld + at] + v;
  if (c->bias) v += c->bias[o];
  if (c->out_act) v = lrelu(v, c->out_slope);
  if (c->res) v += c->res[o * c->res_ld + at];
  return v;
}

static void store_run(const cpu_corr1d *c, int64_t o, int64_t j, const float *v, int n) {
  float *d = c->dst + o * c->dst_ld + c->obase + j * c->ostride;
  if (!has_epilogue(c)) {
    for (int q = 0; q < n; q++) d[q * c->ostride] = c->acc ? d[q * c->ostride] + v[q] : v[q];
    return;
  }
  for (int q = 0; q < n; q++) d[q * c->ostride] = epilogue(c, o, j + q, v[q]);
}

/* The epilogue on 8 contiguous values at d (res row r). */
AVX2 static inline __m256 epi_avx2(const cpu_corr1d *c, int64_t o, const float *d, const float *r,
                                   __m256 a) {
  if (c->acc) a = _mm256_add_ps(a, _mm256_loadu_ps(d));
  if (c->bias) a = _mm256_add_ps(a, _mm256_set1_ps(c->bias[o]));
  if (c->out_act)
    a = _mm256_blendv_ps(_mm256_mul_ps(a, _mm256_set1_ps(c->out_slope)), a,
                         _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_GT_OQ));
  if (c->res) a = _mm256_add_ps(a, _mm256_loadu_ps(r));
  return a;
}

AVX2 static inline __attribute__((always_inline)) void store_avx2(const cpu_corr1d *c, int64_t o,
                                                                  int64_t j, __m256 a0, __m256 a1) {
  if (c->ostride == 1) {
    float *d = c->dst + o * c->dst_ld + c->obase + j;
    const float *r = c->res ? c->res + o * c->res_ld + c->obase + j : NULL;
    a0 = epi_avx2(c, o, d, r, a0);
    a1 = epi_avx2(c, o, d + 8, r ? r + 8 : NULL, a1);
    _mm256_storeu_ps(d, a0);
    _mm256_storeu_ps(d + 8, a1);
  } else {
    float v[TILE];
    _mm256_storeu_ps(v, a0);
    _mm256_storeu_ps(v + 8, a1);
    store_run(c, o, j, v, TILE);
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

/* Four output rows from o0 over tiles j0, j0 + TILE, ... < j1 (every tap inside the row):
 * eight accumulators stay in registers across all input rows and taps. */
AVX2 static void tiles4_avx2(const cpu_corr1d *c, const taps *tp, int64_t o0, int64_t j0,
                             int64_t j1) {
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
AVX2 static void tiles1_avx2(const cpu_corr1d *c, const taps *tp, int64_t o, int64_t j0,
                             int64_t j1) {
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

AVX2 static void rows_avx2(const cpu_corr1d *c, const taps *tp, int64_t j0, int64_t j1) {
  int64_t o = 0;
  for (; o + 4 <= c->n_o; o += 4) tiles4_avx2(c, tp, o, j0, j1);
  for (; o < c->n_o; o++) tiles1_avx2(c, tp, o, j0, j1);
}

/* The epilogue and store of 16 values at (o, j). */
AVX512 static inline __attribute__((always_inline)) void
store_avx512(const cpu_corr1d *c, int64_t o, int64_t j, __m512 a) {
  if (c->ostride != 1) {
    float v[16];
    _mm512_storeu_ps(v, a);
    store_run(c, o, j, v, 16);
    return;
  }
  float *d = c->dst + o * c->dst_ld + c->obase + j;
  if (c->acc) a = _mm512_add_ps(a, _mm512_loadu_ps(d));
  if (c->bias) a = _mm512_add_ps(a, _mm512_set1_ps(c->bias[o]));
  if (c->out_act)
    a = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ),
                             _mm512_mul_ps(a, _mm512_set1_ps(c->out_slope)), a);
  if (c->res) a = _mm512_add_ps(a, _mm512_loadu_ps(c->res + o * c->res_ld + c->obase + j));
  _mm512_storeu_ps(d, a);
}

/* Source vector v (16 floats from position v * 16) of tap q. */
#define LOAD_X512(v)                                                                               \
  (c->istride == 1 ? _mm512_loadu_ps(p_ + 16 * (v))                                                \
                   : _mm512_i32gather_ps(step, p_ + 16 * (v)*c->istride, 4))

/* a_r0..a_r3 += w_r * x0..x3 for row r. */
#define FMA4(r, w)                                                                                 \
  do {                                                                                             \
    a##r##0 = _mm512_fmadd_ps(w, x0, a##r##0);                                                     \
    a##r##1 = _mm512_fmadd_ps(w, x1, a##r##1);                                                     \
    a##r##2 = _mm512_fmadd_ps(w, x2, a##r##2);                                                     \
    a##r##3 = _mm512_fmadd_ps(w, x3, a##r##3);                                                     \
  } while (0)
#define STORE4(r)                                                                                  \
  do {                                                                                             \
    store_avx512(c, o0 + r, j, a##r##0);                                                           \
    store_avx512(c, o0 + r, j + 16, a##r##1);                                                      \
    store_avx512(c, o0 + r, j + 32, a##r##2);                                                      \
    store_avx512(c, o0 + r, j + 48, a##r##3);                                                      \
  } while (0)

/* Four output rows from o0 over wide tiles j0, j0 + WIDE, ... < j1: sixteen accumulators of
 * 16 floats; per tap four source loads feed sixteen FMAs. The same FMA chain per output as
 * the AVX2 tiles, so the same bits. */
AVX512 static void wide4_avx512(const cpu_corr1d *c, const taps *tp, int64_t o0, int64_t j0,
                                int64_t j1) {
  const __m512i step =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32((int)c->istride));
  const int64_t so = c->so;
  for (int64_t j = j0; j + WIDE <= j1; j += WIDE) {
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,
           a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00,
           a32 = a00, a33 = a00;
    for (int64_t i = 0; i < c->n_i; i++) {
      const float *s = c->src + i * c->src_ld + j * c->istride;
      const float *wp = c->w + o0 * so + i * c->si;
      for (int q = 0; q < tp->n; q++) {
        const float *p_ = s + tp->off[q], *wq = wp + tp->t[q];
        __m512 x0 = LOAD_X512(0), x1 = LOAD_X512(1), x2 = LOAD_X512(2), x3 = LOAD_X512(3);
        __m512 w0 = _mm512_set1_ps(wq[0]), w1 = _mm512_set1_ps(wq[so]),
               w2 = _mm512_set1_ps(wq[2 * so]), w3 = _mm512_set1_ps(wq[3 * so]);
        FMA4(0, w0);
        FMA4(1, w1);
        FMA4(2, w2);
        FMA4(3, w3);
      }
    }
    STORE4(0);
    STORE4(1);
    STORE4(2);
    STORE4(3);
  }
}

/* One output row over wide tiles: four accumulators. */
AVX512 static void wide1_avx512(const cpu_corr1d *c, const taps *tp, int64_t o, int64_t j0,
                                int64_t j1) {
  const __m512i step =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32((int)c->istride));
  const int64_t o0 = o;
  for (int64_t j = j0; j + WIDE <= j1; j += WIDE) {
    __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    for (int64_t i = 0; i < c->n_i; i++) {
      const float *s = c->src + i * c->src_ld + j * c->istride;
      const float *wp = c->w + o * c->so + i * c->si;
      for (int q = 0; q < tp->n; q++) {
        const float *p_ = s + tp->off[q];
        __m512 x0 = LOAD_X512(0), x1 = LOAD_X512(1), x2 = LOAD_X512(2), x3 = LOAD_X512(3);
        __m512 w0 = _mm512_set1_ps(wp[tp->t[q]]);
        FMA4(0, w0);
      }
    }
    STORE4(0);
  }
}

/* Wide tiles over [j0, j0 + whole WIDEs), the AVX2 tiles over the TILEs left before j1. */
AVX512 static void rows_avx512(const cpu_corr1d *c, const taps *tp, int64_t j0, int64_t j1) {
  int64_t jw = j0 + (j1 - j0) / WIDE * WIDE, o = 0;
  for (; o + 4 <= c->n_o; o += 4) {
    wide4_avx512(c, tp, o, j0, jw);
    tiles4_avx2(c, tp, o, jw, j1);
  }
  for (; o < c->n_o; o++) {
    wide1_avx512(c, tp, o, j0, jw);
    tiles1_avx2(c, tp, o, jw, j1);
  }
}

/* The same tiles in plain C, one output row at a time (a multiply and an add where the
 * vector tiles fuse them: CPUs without FMA round differently). */
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
      store_run(c, o, j, v, TILE);
    }
}

static int64_t div_floor(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

/* d[j] = LeakyReLU(s[j]) for j < n (the select of the composition's kernel, so its bits). */
AVX2 static void act_row_avx2(const float *s, float *d, int64_t n, float slope) {
  const __m256 sl = _mm256_set1_ps(slope), z = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(s + j);
    _mm256_storeu_ps(d + j,
                     _mm256_blendv_ps(_mm256_mul_ps(v, sl), v, _mm256_cmp_ps(v, z, _CMP_GT_OQ)));
  }
  for (; j < n; j++) d[j] = lrelu(s[j], slope);
}

static void act_row(const float *s, float *d, int64_t n, float slope, int isa) {
  if (isa >= ISA_AVX2) {
    act_row_avx2(s, d, n, slope);
    return;
  }
  for (int64_t j = 0; j < n; j++) d[j] = lrelu(s[j], slope);
}

/* acc[j] += w * x[j] (x LeakyReLU'd first when act) for j < n: a multiply and an add, not an
 * FMA, as the scalar edge loop rounds. */
AVX2 static void axpy_avx2(float *acc, const float *x, int64_t n, float w, bool act, float slope) {
  const __m256 wv = _mm256_set1_ps(w), sl = _mm256_set1_ps(slope), z = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    if (act) v = _mm256_blendv_ps(_mm256_mul_ps(v, sl), v, _mm256_cmp_ps(v, z, _CMP_GT_OQ));
    _mm256_storeu_ps(acc + j, _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_mul_ps(wv, v)));
  }
  for (; j < n; j++) acc[j] += w * (act ? lrelu(x[j], slope) : x[j]);
}

/* Positions [j0, j1) (at most a chunk) near the row ends: per tap, only the positions whose
 * source index is inside the row, found once, so the inner loop has no bounds check. act:
 * read LeakyReLU(in_slope) of the source (c->in_act; a constant once inlined). */
static inline __attribute__((always_inline)) void
cols_body(const cpu_corr1d *c, const taps *tp, int64_t j0, int64_t j1, bool act, int isa) {
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
        float wv = wp[tp->t[q]], sl = c->in_slope;
        const float *p = row + tp->off[q];
        if (c->istride == 1 && isa >= ISA_AVX2 && hi[q] - lo[q] >= TILE)
          axpy_avx2(acc + (lo[q] - j0), p + lo[q], hi[q] - lo[q], wv, act, sl);
        else
          for (int64_t j = lo[q]; j < hi[q]; j++) {
            float v = p[j * c->istride];
            acc[j - j0] += wv * (act ? lrelu(v, sl) : v);
          }
      }
    }
    store_run(c, o, j0, acc, (int)(j1 - j0));
  }
}

static void cols_ranged(const cpu_corr1d *c, const taps *tp, int isa, int64_t j0, int64_t j1) {
  if (c->in_act)
    cols_body(c, tp, j0, j1, true, isa);
  else
    cols_body(c, tp, j0, j1, false, isa);
}

static void rows(const cpu_corr1d *c, const taps *tp, int isa, int64_t j0, int64_t j1) {
  if (isa == ISA_AVX512)
    rows_avx512(c, tp, j0, j1);
  else if (isa == ISA_AVX2)
    rows_avx2(c, tp, j0, j1);
  else
    rows_plain(c, tp, j0, j1);
}

/* in_act: the source offsets the taps span and the tile positions per window (a multiple of
 * TILE) whose n_i rows fit CPU_CORR_WIN floats; 0 when not even one tile's do. */
static int64_t window_len(const cpu_corr1d *c, const taps *tp, int64_t *pmin, int64_t *span) {
  int64_t lo = tp->off[0], hi = tp->off[0];
  for (int q = 1; q < tp->n; q++) {
    if (tp->off[q] < lo) lo = tp->off[q];
    if (tp->off[q] > hi) hi = tp->off[q];
  }
  *pmin = lo, *span = hi - lo + 1;
  int64_t row = CPU_CORR_WIN / (c->n_i > 0 ? c->n_i : 1) / 16 * 16; /* floats per window row */
  if (row < *span) return 0;
  int64_t n = (row - *span) / c->istride + 1;
  return n >= WIDE ? n / WIDE * WIDE : n / TILE * TILE;
}

/* Whole tiles [j0, j1) (every tap inside the row) read through activated copies of their
 * source windows, len positions at a time: the values the tiles would read from a
 * LeakyReLU'd source, so the same bits. */
static void rows_window(const cpu_corr1d *c, const taps *tp, int isa, int64_t j0, int64_t j1) {
  int64_t pmin, span, len = window_len(c, tp, &pmin, &span);
  float win[CPU_CORR_WIN];
  cpu_corr1d cc = *c;
  taps wt = *tp;
  for (int q = 0; q < wt.n; q++) wt.off[q] -= pmin;
  for (int64_t u0 = j0; u0 < j1; u0 += len) {
    int64_t u1 = u0 + len < j1 ? u0 + len : j1;
    int64_t p0 = u0 * c->istride + pmin, w = (u1 - 1 - u0) * c->istride + span;
    int64_t ld = (w + 15) / 16 * 16;
    for (int64_t i = 0; i < c->n_i; i++) {
      /* inside the row: the tiles are interior */
      act_row(c->src + i * c->src_ld + p0, win + i * ld, w, c->in_slope, isa);
    }
    cc.src = win; /* positions from u0: the stores shift by as much */
    cc.src_ld = ld;
    cc.obase = c->obase + u0 * c->ostride;
    rows(&cc, &wt, isa, 0, u1 - u0);
  }
}

/* Positions [j0, j1) of one chunk: the edge columns checked, the interior [lo, hi) in
 * tiles. */
static void run_chunk(const cpu_corr1d *c, const taps *tp, int isa, int64_t lo, int64_t hi,
                      int64_t j0, int64_t j1) {
  int64_t a = j0 > lo ? j0 : lo, b = j1 < hi ? j1 : hi;
  if (a > j1) a = j1;
  if (b < a) b = a;
  int64_t bt = a + (b - a) / TILE * TILE; /* whole tiles in [a, bt) */
  cols_ranged(c, tp, isa, j0, a);
  if (c->in_act)
    rows_window(c, tp, isa, a, bt);
  else
    rows(c, tp, isa, a, bt);
  cols_ranged(c, tp, isa, bt, j1 > bt ? j1 : bt);
}

static taps pack_taps(const cpu_corr1d *c) {
  taps tp;
  tp.n = 0;
  for (int64_t t = 0; t < c->k; t++)
    if (c->on[t]) {
      tp.off[tp.n] = c->off[t];
      tp.t[tp.n++] = t;
    }
  return tp;
}

bool cpu_corr1d_fits(const cpu_corr1d *c) {
  if (!c->in_act || c->m <= 0) return true;
  taps tp = pack_taps(c);
  int64_t pmin, span;
  return tp.n == 0 || window_len(c, &tp, &pmin, &span) > 0;
}

void cpu_corr1d_run(const cpu_corr1d *c) {
  int isa = isa_have();
  taps tp = pack_taps(c);
  /* the interior [lo, hi): every contributing tap reads inside the source row */
  int64_t lo = 0, hi = c->m;
  for (int q = 0; q < tp.n; q++) {
    int64_t a = div_floor(-tp.off[q] + c->istride - 1, c->istride);
    int64_t b = div_floor(c->len - 1 - tp.off[q], c->istride) + 1;
    if (a > lo) lo = a;
    if (b < hi) hi = b;
  }
  if (lo > c->m) lo = c->m;
  if (hi < lo) hi = lo;
  if (tp.n == 0) { /* nothing reads the source: the output is zero (or unchanged) */
    if (c->acc && !has_epilogue(c)) return;
    float zero[TILE] = {0};
    for (int64_t o = 0; o < c->n_o; o++)
      for (int64_t j = 0; j < c->m; j += TILE)
        store_run(c, o, j, zero, c->m - j < TILE ? (int)(c->m - j) : TILE);
    return;
  }
  /* chunks keep the source window of all input rows near L2 */
  int64_t chunk = (int64_t)32768 / (c->n_i > 0 ? c->n_i : 1) / TILE * TILE;
  if (chunk < 4 * TILE) chunk = 4 * TILE;
  if (chunk > CPU_CORR_CHUNK_MAX) chunk = CPU_CORR_CHUNK_MAX;
  int64_t n_chunks = (c->m + chunk - 1) / chunk;
  int64_t work = c->m * c->n_o * c->n_i * tp.n;
  if (!cpu_corr1d_fits(c)) return; /* the caller checks */
  VT_OMP_IF(
      work > 262144 && n_chunks > 1, "omp parallel for schedule(static)",
      for (int64_t ch = 0; ch < n_chunks; ch++) {
        int64_t j0 = ch * chunk, j1 = j0 + chunk < c->m ? j0 + chunk : c->m;
        run_chunk(c, &tp, isa, lo, hi, j0, j1);
      });
}

/* sum over j in [j0, j1) of d_b[j] * x[j * xs] for four rows d_b at once (d_b = d + b * dld). */
AVX2 static void dots_avx2(const float *x, int64_t xs, const float *d, int64_t dld, int nb,
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
  int have_avx2 = isa_have() >= ISA_AVX2;
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
