/* Flash attention on tensor cores (the attn family's fast path, cuda_attn.cu dispatches): q, k,
 * v arrive in f32 and are rounded to bf16 as their tiles enter shared memory; products run
 * through mma.sync.m16n8k16 (bf16 in, f32 accumulate) with the softmax statistics in f32.
 * Taken only under bf16 mixed precision (vt_attn_geom.lowp), for Dk == Dv in {64, 128},
 * 16-byte aligned q/k/v; everything else, and VT_CUDA_SIMPLE=1, runs the simple kernels.
 *
 * Tiling (4 warps a block, each warp owns 16 rows of the block's tile; a thread holds rows
 * g = lane/4 and g + 8 of its warp's slice, columns 2 (lane%4) + {0, 1} of every 8-wide tile):
 *   forward  a block per (64 queries, batch*head); keys in tiles of 64: S = Q K^T, online
 *            softmax in log2 units, P (bf16) V into 16 x D f32 accumulators in registers.
 *   dq       a block per (64 queries, bias slot), looping over the (batch, head) pairs that
 *            share the slot's bias slice; keys in tiles of 32: recompute S, P = exp(S - lse),
 *            dP = dO V^T, dS = P (dP - D), dbias += dS (read-modify-write by the one thread
 *            that owns the element), dQ += dS K.
 *   dk, dv   a block per (64 keys, batch*kv head), looping over the GQA group's query heads
 *            and query tiles of 32: S^T = K Q^T, dP^T = V dO^T, dV += P^T dO, dK += dS^T Q.
 * Every output element is owned by one thread and summed in a fixed order: no atomics, the
 * same bits on every run. The accumulator layout of S equals the A-operand layout of the next
 * product, so P and dS go from registers to the tensor cores without shared memory. */
#ifdef VT_FLASH_SIM
/* tests/test_flash_sim.cpp compiles the kernels on the host, one block at a time with a
 * fiber per thread, to check the tiling without a GPU (tests/flash_sim.h) */
#include "tests/flash_sim.h"
#else
#include <cuda_bf16.h>

#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_attn.h"
}
#define FL_DYN_SMEM(name) extern __shared__ __align__(16) unsigned char name[]
#endif

#define FL_THREADS 128
#define FL_LOG2E 1.4426950408889634f

typedef __nv_bfloat16 bf16;

/* Two floats as one bf16x2 register, the first in the low half (the lower column). */
static __device__ __forceinline__ uint32_t fl_pack(float lo, float hi) {
  __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  uint32_t u;
  memcpy(&u, &v, 4);
  return u;
}

static __device__ __forceinline__ uint32_t fl_ld32(const bf16 *p) {
  return *reinterpret_cast<const uint32_t *>(p);
}

/* c += a b for one 16x16 (row-major A) by 16x8 (column-major B) bf16 product. */
static __device__ __forceinline__ void fl_mma(float c[4], const uint32_t a[4], uint32_t b0,
                                              uint32_t b1) {
#ifdef VT_FLASH_SIM
  vt_sim_mma(c, a, b0, b1);
#else
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
               "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
#endif
}

/* The A fragment of rows r0.. r0+15, columns k0.. k0+15 of a row-major bf16 tile. */
static __device__ __forceinline__ void fl_frag_a(uint32_t a[4], const bf16 *s, int ld, int r0,
                                                 int k0) {
  const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
  a[0] = fl_ld32(s + (r0 + g) * ld + k0 + 2 * t);
  a[1] = fl_ld32(s + (r0 + g + 8) * ld + k0 + 2 * t);
  a[2] = fl_ld32(s + (r0 + g) * ld + k0 + 2 * t + 8);
  a[3] = fl_ld32(s + (r0 + g + 8) * ld + k0 + 2 * t + 8);
}

/* c[n] += A B for B (k x 8 n) stored as its transpose: rows n0.. n0+7 of `s` hold B's
 * columns, k contiguous. */
static __device__ __forceinline__ void fl_mma_bt(float c[4], const uint32_t a[4], const bf16 *s,
                                                 int ld, int n0, int k0) {
  const int g = (threadIdx.x & 31) >> 2, t = threadIdx.x & 3;
  const bf16 *p = s + (n0 + g) * ld + k0 + 2 * t;
  fl_mma(c, a, fl_ld32(p), fl_ld32(p + 8));
}

/* The A fragment of a 16 x 16 product from two accumulator tiles (columns 0-7, 8-15). */
static __device__ __forceinline__ void fl_acc_to_a(uint32_t a[4], const float lo[4],
                                                   const float hi[4]) {
  a[0] = fl_pack(lo[0], lo[1]);
  a[1] = fl_pack(lo[2], lo[3]);
  a[2] = fl_pack(hi[0], hi[1]);
  a[3] = fl_pack(hi[2], hi[3]);
}

/* rows x D f32 rows at src (avail of them exist; the rest become zeros) into a bf16 tile:
 * row-major (dst[r * ld + c]) or transposed (dst[c * ld + r]). */
/* The two products both backward kernels form together over the head dim D: s = A B^T and
 * dp = A2 B2^T for the warp's 16 rows of A / A2 against N rows of B / B2, zeroed first (S with
 * dP = dO V^T in dq's kernel; S^T with dP^T in dk/dv's). */
template <int D, int N>
static __device__ __forceinline__ void fl_two_products(float s[N / 8][4], float dp[N / 8][4],
                                                       const bf16 *A, const bf16 *A2, const bf16 *B,
                                                       const bf16 *B2, int ld, int warp) {
#pragma unroll
  for (int nt = 0; nt < N / 8; nt++)
#pragma unroll
    for (int e = 0; e < 4; e++) s[nt][e] = dp[nt][e] = 0.0f;
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) {
    uint32_t a[4], a2[4];
    fl_frag_a(a, A, ld, warp * 16, kk * 16);
    fl_frag_a(a2, A2, ld, warp * 16, kk * 16);
#pragma unroll
    for (int nt = 0; nt < N / 8; nt++) {
      fl_mma_bt(s[nt], a, B, ld, nt * 8, kk * 16);
      fl_mma_bt(dp[nt], a2, B2, ld, nt * 8, kk * 16);
    }
  }
}

template <int D, bool TRANS>
static __device__ __forceinline__ void fl_tile(bf16 *dst, int ld, const float *src, int64_t avail,
                                               int rows) {
  for (int idx = threadIdx.x; idx < rows * (D / 4); idx += FL_THREADS) {
    int r = idx / (D / 4), c = (idx % (D / 4)) * 4;
    float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    if (r < avail) x = *reinterpret_cast<const float4 *>(src + (int64_t)r * D + c);
    if (TRANS) {
      dst[(c + 0) * ld + r] = __float2bfloat16_rn(x.x);
      dst[(c + 1) * ld + r] = __float2bfloat16_rn(x.y);
      dst[(c + 2) * ld + r] = __float2bfloat16_rn(x.z);
      dst[(c + 3) * ld + r] = __float2bfloat16_rn(x.w);
    } else {
      uint2 w = make_uint2(fl_pack(x.x, x.y), fl_pack(x.z, x.w));
      *reinterpret_cast<uint2 *>(dst + r * ld + c) = w;
    }
  }
}

/* Max / sum over the four lanes that share a row. */
static __device__ __forceinline__ float fl_quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 1));
  return fmaxf(v, __shfl_xor_sync(0xffffffffu, v, 2));
}

static __device__ __forceinline__ float fl_quad_sum(float v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  return v + __shfl_xor_sync(0xffffffffu, v, 2);
}

/* The union [blo, bhi) of the non-empty ranges of the block's rows (each thread brings its
 * two rows' [lo, hi)), in every thread; blo >= bhi: none. Integer min / max: the same result
 * whatever the order. */
static __device__ __forceinline__ void fl_block_range(const int64_t lo[2], const int64_t hi[2],
                                                      int64_t *blo, int64_t *bhi, int64_t *sh) {
  int64_t l = INT64_MAX, h = 0;
  for (int x = 0; x < 2; x++)
    if (lo[x] < hi[x]) {
      l = lo[x] < l ? lo[x] : l;
      h = hi[x] > h ? hi[x] : h;
    }
  for (int o = 16; o > 0; o >>= 1) {
    int64_t ol = __shfl_xor_sync(0xffffffffu, l, o), oh = __shfl_xor_sync(0xffffffffu, h, o);
    l = ol < l ? ol : l;
    h = oh > h ? oh : h;
  }
  const int warp = threadIdx.x >> 5;
  __syncthreads(); /* sh may still be read from a previous call */
  if ((threadIdx.x & 31) == 0) {
    sh[2 * warp] = l;
    sh[2 * warp + 1] = h;
  }
  __syncthreads();
  l = INT64_MAX;
  h = 0;
  for (int w = 0; w < FL_THREADS / 32; w++) {
    l = sh[2 * w] < l ? sh[2 * w] : l;
    h = sh[2 * w + 1] > h ? sh[2 * w + 1] : h;
  }
  *blo = l;
  *bhi = h;
}

/* ---- forward ---- */

#define FB_Q 64 /* queries per block */
#define FB_K 64 /* keys per tile */

template <int D>
__global__ void __launch_bounds__(FL_THREADS)
    flash_fwd(vt_attn_geom g, const float *q, const float *k, const float *v, float *out,
              float *lse) {
  FL_DYN_SMEM(fl_smem);
  constexpr int LD = D + 8, LDT = FB_K + 8;
  bf16 *Qs = reinterpret_cast<bf16 *>(fl_smem), *Ks = Qs + FB_Q * LD, *Vt = Ks + FB_K * LD;
  __shared__ int64_t red[2 * FL_THREADS / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tq = lane & 3;
  const int64_t bh = blockIdx.y, b = bh / g.H, h = bh % g.H;
  const int64_t kvh = b * g.Hkv + h / (g.H / g.Hkv), i0 = (int64_t)blockIdx.x * FB_Q;
  const float *kp = k + kvh * g.Tk * D, *vp = v + kvh * g.Tk * D;
  const float *bp = g.bias ? g.bias + vt_attn_bias_offset(&g, b, h) : NULL;
  int64_t row[2], lo[2], hi[2];
  for (int x = 0; x < 2; x++) {
    row[x] = i0 + warp * 16 + (lane >> 2) + 8 * x;
    lo[x] = hi[x] = 0;
    if (row[x] < g.Tq) vt_attn_row_range(&g, b, row[x], &lo[x], &hi[x]);
  }
  int64_t klo, khi;
  fl_block_range(lo, hi, &klo, &khi, red);
  fl_tile<D, false>(Qs, LD, q + (bh * g.Tq + i0) * D, g.Tq - i0, FB_Q);
  __syncthreads();
  uint32_t qa[D / 16][4];
#pragma unroll
  for (int kk = 0; kk < D / 16; kk++) fl_frag_a(qa[kk], Qs, LD, warp * 16, kk * 16);
  float o[D / 8][4];
#pragma unroll
  for (int dt = 0; dt < D / 8; dt++) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
  const float sl2 = g.scale * FL_LOG2E;
  for (int64_t k0 = klo; k0 < khi; k0 += FB_K) {
    __syncthreads(); /* the previous tile is read */
    fl_tile<D, false>(Ks, LD, kp + k0 * D, g.Tk - k0, FB_K);
    fl_tile<D, true>(Vt, LDT, vp + k0 * D, g.Tk - k0, FB_K);
    __syncthreads();
    float s[FB_K / 8][4];
#pragma unroll
    for (int nt = 0; nt < FB_K / 8; nt++) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < D / 16; kk++) fl_mma_bt(s[nt], qa[kk], Ks, LD, nt * 8, kk * 16);
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < FB_K / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        const int x = e >> 1;
        const int64_t j = k0 + nt * 8 + 2 * tq + (e & 1);
        float val = -INFINITY;
        if (j >= lo[x] && j < hi[x]) {
          val = s[nt][e] * sl2;
          if (bp) val += bp[row[x] * g.Tk + j] * FL_LOG2E;
        }
        s[nt][e] = val;
        mx[x] = fmaxf(mx[x], val);
      }
    float mu[2];
#pragma unroll
    for (int x = 0; x < 2; x++) {
      float mn = fmaxf(m[x], fl_quad_max(mx[x]));
      mu[x] = mn == -INFINITY ? 0.0f : mn; /* a row with nothing visible yet: p = 0 */
      float alpha = exp2f(m[x] - mu[x]);
      m[x] = mn;
      l[x] *= alpha;
#pragma unroll
      for (int dt = 0; dt < D / 8; dt++) {
        o[dt][2 * x] *= alpha;
        o[dt][2 * x + 1] *= alpha;
      }
    }
#pragma unroll
    for (int nt = 0; nt < FB_K / 8; nt++)
#pragma unroll
      for (int e = 0; e < 4; e++) {
        float p = exp2f(s[nt][e] - mu[e >> 1]);
        s[nt][e] = p;
        l[e >> 1] += p; /* this lane's share; the quad's shares are added at the end */
      }
#pragma unroll
    for (int kk = 0; kk < FB_K / 16; kk++) {
      uint32_t pa[4];
      fl_acc_to_a(pa, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int dt = 0; dt < D / 8; dt++) fl_mma_bt(o[dt], pa, Vt, LDT, dt * 8, kk * 16);
    }
  }
#pragma unroll
  for (int x = 0; x < 2; x++) {
    float lt = fl_quad_sum(l[x]);
    if (row[x] >= g.Tq) continue;
    float inv = lt > 0.0f ? 1.0f / lt : 0.0f;
    float *op = out + (bh * g.Tq + row[x]) * D;
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++)
      *reinterpret_cast<float2 *>(op + dt * 8 + 2 * tq) =
          make_float2(o[dt][2 * x] * inv, o[dt][2 * x + 1] * inv);
    if (tq == 0) lse[bh * g.Tq + row[x]] = lt > 0.0f ? m[x] / FL_LOG2E + logf(lt) : -INFINITY;
  }
}

/* ---- backward: dq (and dbias) ---- */

#define FQ_Q 64 /* queries per block */
#define FQ_K 32 /* keys per tile */

template <int D>
__global__ void __launch_bounds__(FL_THREADS)
    flash_dq(vt_attn_geom g, int64_t sb, int64_t sh, const float *q, const float *k, const float *v,
             const float *dout, const float *lse, const float *Dl, float *dq, float *dbias) {
  FL_DYN_SMEM(fl_smem);
  constexpr int LD = D + 8, LDT = FQ_K + 8;
  bf16 *Qs = reinterpret_cast<bf16 *>(fl_smem), *dOs = Qs + FQ_Q * LD, *Ks = dOs + FQ_Q * LD,
       *Vs = Ks + FQ_K * LD, *Kt = Vs + FQ_K * LD;
  __shared__ int64_t red[2 * FL_THREADS / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tq = lane & 3;
  const int64_t slot = blockIdx.y, bs = slot / sh, hs = slot % sh, group = g.H / g.Hkv;
  const int64_t i0 = (int64_t)blockIdx.x * FQ_Q;
  const float sl2 = g.scale * FL_LOG2E;
  for (int64_t b = bs; b < g.B; b += sb)
    for (int64_t h = hs; h < g.H; h += sh) {
      const int64_t bh = b * g.H + h, kvh = b * g.Hkv + h / group;
      const float *kp = k + kvh * g.Tk * D, *vp = v + kvh * g.Tk * D;
      const int64_t boff = g.bias ? vt_attn_bias_offset(&g, b, h) : 0;
      int64_t row[2], lo[2], hi[2];
      float lse2[2], Di[2];
      for (int x = 0; x < 2; x++) {
        row[x] = i0 + warp * 16 + (lane >> 2) + 8 * x;
        lo[x] = hi[x] = 0;
        lse2[x] = 0.0f;
        Di[x] = 0.0f;
        if (row[x] < g.Tq) {
          float ls = lse[bh * g.Tq + row[x]];
          if (ls != -INFINITY) { /* a row that sees no key has no gradient */
            vt_attn_row_range(&g, b, row[x], &lo[x], &hi[x]);
            lse2[x] = ls * FL_LOG2E;
            Di[x] = Dl[bh * g.Tq + row[x]];
          }
        }
      }
      int64_t klo, khi;
      fl_block_range(lo, hi, &klo, &khi, red); /* synchronises: the last pair's tiles are read */
      fl_tile<D, false>(Qs, LD, q + (bh * g.Tq + i0) * D, g.Tq - i0, FQ_Q);
      fl_tile<D, false>(dOs, LD, dout + (bh * g.Tq + i0) * D, g.Tq - i0, FQ_Q);
      float acc[D / 8][4];
#pragma unroll
      for (int dt = 0; dt < D / 8; dt++) acc[dt][0] = acc[dt][1] = acc[dt][2] = acc[dt][3] = 0.0f;
      for (int64_t k0 = klo; k0 < khi; k0 += FQ_K) {
        __syncthreads();
        fl_tile<D, false>(Ks, LD, kp + k0 * D, g.Tk - k0, FQ_K);
        fl_tile<D, false>(Vs, LD, vp + k0 * D, g.Tk - k0, FQ_K);
        fl_tile<D, true>(Kt, LDT, kp + k0 * D, g.Tk - k0, FQ_K);
        __syncthreads();
        float s[FQ_K / 8][4], dp[FQ_K / 8][4];
        fl_two_products<D, FQ_K>(s, dp, Qs, dOs, Ks, Vs, LD, warp);
#pragma unroll
        for (int nt = 0; nt < FQ_K / 8; nt++)
#pragma unroll
          for (int e = 0; e < 4; e++) {
            const int x = e >> 1;
            const int64_t j = k0 + nt * 8 + 2 * tq + (e & 1);
            float ds = 0.0f;
            if (j >= lo[x] && j < hi[x]) {
              float val = s[nt][e] * sl2;
              if (g.bias) val += g.bias[boff + row[x] * g.Tk + j] * FL_LOG2E;
              float p = exp2f(val - lse2[x]);
              ds = p * (dp[nt][e] - Di[x]);
              if (dbias) dbias[boff + row[x] * g.Tk + j] += ds;
            }
            s[nt][e] = ds;
          }
#pragma unroll
        for (int kk = 0; kk < FQ_K / 16; kk++) {
          uint32_t a[4];
          fl_acc_to_a(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
          for (int dt = 0; dt < D / 8; dt++) fl_mma_bt(acc[dt], a, Kt, LDT, dt * 8, kk * 16);
        }
      }
      if (dq)
#pragma unroll
        for (int x = 0; x < 2; x++) {
          if (row[x] >= g.Tq) continue;
          float *p = dq + (bh * g.Tq + row[x]) * D;
#pragma unroll
          for (int dt = 0; dt < D / 8; dt++) {
            float2 *p2 = reinterpret_cast<float2 *>(p + dt * 8 + 2 * tq), w = *p2;
            w.x += g.scale * acc[dt][2 * x];
            w.y += g.scale * acc[dt][2 * x + 1];
            *p2 = w;
          }
        }
    }
}

/* ---- backward: dk, dv ---- */

#define FK_K 64 /* keys per block */
#define FK_Q 32 /* queries per tile */

template <int D>
__global__ void __launch_bounds__(FL_THREADS)
    flash_dkv(vt_attn_geom g, const float *q, const float *k, const float *v, const float *dout,
              const float *lse, const float *Dl, float *dk, float *dv) {
  FL_DYN_SMEM(fl_smem);
  constexpr int LD = D + 8, LDT = FK_Q + 8;
  bf16 *Ks = reinterpret_cast<bf16 *>(fl_smem), *Vs = Ks + FK_K * LD, *Qs = Vs + FK_K * LD,
       *dOs = Qs + FK_Q * LD, *Qt = dOs + FK_Q * LD, *dOt = Qt + D * LDT;
  __shared__ int64_t qlo[FK_Q], qhi[FK_Q];
  __shared__ float qlse2[FK_Q], qD[FK_Q];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, tq = lane & 3;
  const int64_t kvh = blockIdx.y, b = kvh / g.Hkv, hk = kvh % g.Hkv, group = g.H / g.Hkv;
  const int64_t j0 = (int64_t)blockIdx.x * FK_K, jend = j0 + FK_K < g.Tk ? j0 + FK_K : g.Tk;
  const float sl2 = g.scale * FL_LOG2E;
  int64_t key[2];
  for (int x = 0; x < 2; x++) key[x] = j0 + warp * 16 + (lane >> 2) + 8 * x;
  fl_tile<D, false>(Ks, LD, k + (kvh * g.Tk + j0) * D, g.Tk - j0, FK_K);
  fl_tile<D, false>(Vs, LD, v + (kvh * g.Tk + j0) * D, g.Tk - j0, FK_K);
  float ak[D / 8][4], av[D / 8][4];
#pragma unroll
  for (int dt = 0; dt < D / 8; dt++)
#pragma unroll
    for (int e = 0; e < 4; e++) ak[dt][e] = av[dt][e] = 0.0f;
  for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
    const int64_t bh = b * g.H + h;
    const float *bp = g.bias ? g.bias + vt_attn_bias_offset(&g, b, h) : NULL;
    for (int64_t i0 = 0; i0 < g.Tq; i0 += FK_Q) {
      __syncthreads(); /* the previous tile's statistics and rows are read */
      if (threadIdx.x < FK_Q) {
        int64_t i = i0 + threadIdx.x, l = 0, hh = 0;
        float ls = i < g.Tq ? lse[bh * g.Tq + i] : -INFINITY;
        if (ls != -INFINITY) vt_attn_row_range(&g, b, i, &l, &hh);
        qlo[threadIdx.x] = l;
        qhi[threadIdx.x] = hh;
        qlse2[threadIdx.x] = ls == -INFINITY ? 0.0f : ls * FL_LOG2E;
        qD[threadIdx.x] = ls == -INFINITY ? 0.0f : Dl[bh * g.Tq + i];
      }
      __syncthreads();
      int any = threadIdx.x < FK_Q && qlo[threadIdx.x] < qhi[threadIdx.x] &&
                qlo[threadIdx.x] < jend && qhi[threadIdx.x] > j0;
      if (!__syncthreads_or(any)) continue; /* no query of the tile sees these keys */
      const float *qp = q + (bh * g.Tq + i0) * D, *dp_ = dout + (bh * g.Tq + i0) * D;
      fl_tile<D, false>(Qs, LD, qp, g.Tq - i0, FK_Q);
      fl_tile<D, false>(dOs, LD, dp_, g.Tq - i0, FK_Q);
      fl_tile<D, true>(Qt, LDT, qp, g.Tq - i0, FK_Q);
      fl_tile<D, true>(dOt, LDT, dp_, g.Tq - i0, FK_Q);
      __syncthreads();
      float s[FK_Q / 8][4], dp[FK_Q / 8][4];
      fl_two_products<D, FK_Q>(s, dp, Ks, Vs, Qs, dOs, LD, warp);
#pragma unroll
      for (int nt = 0; nt < FK_Q / 8; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
          const int x = e >> 1, il = nt * 8 + 2 * tq + (e & 1);
          float p = 0.0f, ds = 0.0f;
          if (key[x] >= qlo[il] && key[x] < qhi[il]) {
            float val = s[nt][e] * sl2;
            if (bp) val += bp[(i0 + il) * g.Tk + key[x]] * FL_LOG2E;
            p = exp2f(val - qlse2[il]);
            ds = p * (dp[nt][e] - qD[il]);
          }
          s[nt][e] = p;
          dp[nt][e] = ds;
        }
#pragma unroll
      for (int kk = 0; kk < FK_Q / 16; kk++) {
        uint32_t pa[4], sa[4];
        fl_acc_to_a(pa, s[2 * kk], s[2 * kk + 1]);
        fl_acc_to_a(sa, dp[2 * kk], dp[2 * kk + 1]);
#pragma unroll
        for (int dt = 0; dt < D / 8; dt++) {
          fl_mma_bt(av[dt], pa, dOt, LDT, dt * 8, kk * 16);
          fl_mma_bt(ak[dt], sa, Qt, LDT, dt * 8, kk * 16);
        }
      }
    }
  }
#pragma unroll
  for (int x = 0; x < 2; x++) {
    if (key[x] >= g.Tk) continue;
    const int64_t r = (kvh * g.Tk + key[x]) * D;
#pragma unroll
    for (int dt = 0; dt < D / 8; dt++) {
      if (dk) {
        float2 *p = reinterpret_cast<float2 *>(dk + r + dt * 8 + 2 * tq), w = *p;
        w.x += g.scale * ak[dt][2 * x];
        w.y += g.scale * ak[dt][2 * x + 1];
        *p = w;
      }
      if (dv) {
        float2 *p = reinterpret_cast<float2 *>(dv + r + dt * 8 + 2 * tq), w = *p;
        w.x += av[dt][2 * x];
        w.y += av[dt][2 * x + 1];
        *p = w;
      }
    }
  }
}

/* ---- dispatch ---- */
#ifndef VT_FLASH_SIM

static bool fl_aligned(const void *p) { return ((uintptr_t)p & 15) == 0; }

bool vt_cuda_flash_fits(const vt_attn_geom *g, const void *const *ptrs, int n) {
  if (!g->lowp || vt_cuda_simple_kernels()) return false;
  if (g->Dk != g->Dv || (g->Dk != 64 && g->Dk != 128)) return false;
  if (g->B * g->H > 65535 || g->B * g->Hkv > 65535) return false;
  for (int i = 0; i < n; i++)
    if (!fl_aligned(ptrs[i])) return false; /* NULL (an output not wanted) is aligned */
  return true;
}

/* Dynamic shared memory above 48 KiB needs the kernel's opt-in, once per kernel. */
template <typename K> static void fl_smem_attr(K kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    VT_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <int D>
static void fl_forward(const vt_backend *be, const vt_attn_geom *g, const float *q, const float *k,
                       const float *v, float *out, float *lse) {
  const size_t smem = sizeof(bf16) * (size_t)(FB_Q * (D + 8) + FB_K * (D + 8) + D * (FB_K + 8));
  fl_smem_attr(flash_fwd<D>, smem);
  dim3 grid((unsigned)((g->Tq + FB_Q - 1) / FB_Q), (unsigned)(g->B * g->H));
  flash_fwd<D><<<grid, FL_THREADS, smem, VT_STREAM(be)>>>(*g, q, k, v, out, lse);
  VT_CUDA_LAUNCHED();
}

template <int D>
static void fl_backward(const vt_backend *be, const vt_attn_geom *g, const float *q, const float *k,
                        const float *v, const float *dout, const float *lse, const float *Dl,
                        float *dq, float *dk, float *dv, float *dbias) {
  if (dq || dbias) {
    int64_t sb = dbias && g->bias_b == 1 ? 1 : g->B, sh = dbias && g->bias_h == 1 ? 1 : g->H;
    const size_t smem =
        sizeof(bf16) * (size_t)(2 * FQ_Q * (D + 8) + 2 * FQ_K * (D + 8) + D * (FQ_K + 8));
    fl_smem_attr(flash_dq<D>, smem);
    dim3 grid((unsigned)((g->Tq + FQ_Q - 1) / FQ_Q), (unsigned)(sb * sh));
    flash_dq<D>
        <<<grid, FL_THREADS, smem, VT_STREAM(be)>>>(*g, sb, sh, q, k, v, dout, lse, Dl, dq, dbias);
    VT_CUDA_LAUNCHED();
  }
  if (dk || dv) {
    const size_t smem =
        sizeof(bf16) * (size_t)(2 * FK_K * (D + 8) + 2 * FK_Q * (D + 8) + 2 * D * (FK_Q + 8));
    fl_smem_attr(flash_dkv<D>, smem);
    dim3 grid((unsigned)((g->Tk + FK_K - 1) / FK_K), (unsigned)(g->B * g->Hkv));
    flash_dkv<D><<<grid, FL_THREADS, smem, VT_STREAM(be)>>>(*g, q, k, v, dout, lse, Dl, dk, dv);
    VT_CUDA_LAUNCHED();
  }
}

void vt_cuda_flash_forward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                           const float *k, const float *v, float *out, float *lse) {
  if (g->B * g->H * g->Tq <= 0) return;
  if (g->Dk == 64)
    fl_forward<64>(be, g, q, k, v, out, lse);
  else
    fl_forward<128>(be, g, q, k, v, out, lse);
}

void vt_cuda_flash_backward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                            const float *k, const float *v, const float *dout, const float *lse,
                            const float *Dl, float *dq, float *dk, float *dv, float *dbias) {
  if (g->B * g->H * g->Tq <= 0 || g->Tk <= 0) return;
  if (g->Dk == 64)
    fl_backward<64>(be, g, q, k, v, dout, lse, Dl, dq, dk, dv, dbias);
  else
    fl_backward<128>(be, g, q, k, v, dout, lse, Dl, dq, dk, dv, dbias);
}
#endif /* VT_FLASH_SIM */
