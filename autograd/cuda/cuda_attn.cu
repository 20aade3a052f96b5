/* CUDA kernels of the attn family (autograd/kernels_attn.h): fused attention with an online
 * softmax, so no T x T matrix exists. One warp owns one query row (forward, dq) or one key row
 * (dk, dv) and walks the other side in tiles of 32, one lane per row of the tile; masks,
 * segments and lengths come from vt_attn_row_range, the CPU's function. Every output element
 * is written by exactly one warp, so the backward needs no atomics:
 *   forward   a warp per (batch, head, query)
 *   dq, dbias a warp per (bias slot, query), looping over the (batch, head) pairs that share
 *             the bias slice (all of them map to distinct dq rows)
 *   dk, dv    a warp per (batch, kv head, key), looping over the query heads of its GQA group
 * D_i = dout_i . out_i is computed first into the workspace. This is the simple, obviously
 * correct layout, kept as the f32 path and the fallback: under bf16 mixed precision the
 * tensor-core kernels of cuda_attn_flash.cu take the head dims they serve (64, 128) unless
 * VT_CUDA_SIMPLE is set. */
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_attn.h"
}

#define WARPS 4 /* warps per block */

/* A dot product computed by one lane on its own (its own key or query row of a tile), summed
 * in index order. Rows are read 16 bytes at a time when both are aligned for it (a quarter of
 * the memory transactions: each lane of a warp reads a different row); the sum is the same
 * either way. */
static __device__ __forceinline__ float lane_dot(const float *a, const float *b, int64_t n) {
  float s = 0.0f;
  if (((((uintptr_t)a) | ((uintptr_t)b)) & 15) == 0 && (n & 3) == 0) {
    const float4 *a4 = (const float4 *)a, *b4 = (const float4 *)b;
    for (int64_t d = 0; d < n / 4; d++) {
      float4 x = a4[d], y = b4[d];
      s += x.x * y.x;
      s += x.y * y.y;
      s += x.z * y.z;
      s += x.w * y.w;
    }
    return s;
  }
  for (int64_t d = 0; d < n; d++) s += a[d] * b[d];
  return s;
}

/* Whether key j is visible to query i of sample b. */
static __device__ __forceinline__ bool visible(const vt_attn_geom *g, int64_t b, int64_t i,
                                               int64_t j) {
  int64_t lo, hi;
  vt_attn_row_range(g, b, i, &lo, &hi);
  return j >= lo && j < hi;
}

__global__ void attn_fwd_kernel(vt_attn_geom g, const float *q, const float *k, const float *v,
                                float *out, float *lse) {
  extern __shared__ float smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float *qs = smem + warp * (g.Dk + g.Dv), *acc = qs + g.Dk;
  const int64_t rows = g.B * g.H * g.Tq, group = g.H / g.Hkv;
  for (int64_t row = (int64_t)blockIdx.x * WARPS + warp; row < rows;
       row += (int64_t)gridDim.x * WARPS) {
    int64_t i = row % g.Tq, bh = row / g.Tq, b = bh / g.H, h = bh % g.H;
    int64_t kvh = b * g.Hkv + h / group;
    const float *kp = k + kvh * g.Tk * g.Dk, *vp = v + kvh * g.Tk * g.Dv;
    const float *br = g.bias ? g.bias + vt_attn_bias_offset(&g, b, h) + i * g.Tk : NULL;
    for (int64_t d = lane; d < g.Dk; d += 32) qs[d] = q[row * g.Dk + d];
    for (int64_t d = lane; d < g.Dv; d += 32) acc[d] = 0.0f;
    __syncwarp();
    int64_t lo, hi;
    vt_attn_row_range(&g, b, i, &lo, &hi);
    float m = -INFINITY, l = 0.0f;
    for (int64_t k0 = lo; k0 < hi; k0 += 32) {
      int64_t j = k0 + lane;
      float s = -INFINITY;
      if (j < hi) {
        s = g.scale * lane_dot(qs, kp + j * g.Dk, g.Dk);
        if (br) s += br[j];
      }
      float mt = vt_warp_max(s);
      if (mt == -INFINITY) continue; /* nothing visible in this tile (a -inf bias) */
      float mn = m > mt ? m : mt, alpha = expf(m - mn);
      float p = s == -INFINITY ? 0.0f : expf(s - mn);
      l = l * alpha + vt_warp_sum(p);
      int64_t nk = hi - k0 < 32 ? hi - k0 : 32;
      for (int64_t d0 = 0; d0 < g.Dv; d0 += 32) {
        int64_t d = d0 + lane;
        float a = 0.0f;
        for (int64_t t = 0; t < nk; t++) {
          float pt = __shfl_sync(0xffffffffu, p, (int)t);
          if (d < g.Dv) a += pt * vp[(k0 + t) * g.Dv + d];
        }
        if (d < g.Dv) acc[d] = acc[d] * alpha + a;
      }
      m = mn;
    }
    __syncwarp();
    float inv = l > 0 ? 1.0f / l : 0.0f;
    for (int64_t d = lane; d < g.Dv; d += 32) out[row * g.Dv + d] = acc[d] * inv;
    if (lane == 0) lse[row] = l > 0 ? m + logf(l) : -INFINITY;
    __syncwarp(); /* qs / acc are rewritten for the next row */
  }
}

/* D[row] = dout[row] . out[row] */
__global__ void attn_delta_kernel(int64_t rows, int64_t Dv, const float *out, const float *dout,
                                  float *D) {
  const int warp = threadIdx.x >> 5;
  for (int64_t r = (int64_t)blockIdx.x * WARPS + warp; r < rows; r += (int64_t)gridDim.x * WARPS) {
    float s = 0.0f;
    for (int64_t d = threadIdx.x & 31; d < Dv; d += 32) s += dout[r * Dv + d] * out[r * Dv + d];
    s = vt_warp_sum(s);
    if ((threadIdx.x & 31) == 0) D[r] = s;
  }
}

/* P_ij and dS_ij = P_ij (dout_i . v_j - D_i) for query i (qs, dos in shared memory) and this
 * lane's key j; 0 where j is not visible. */
static __device__ __forceinline__ float dscore(const vt_attn_geom *g, const float *qs,
                                               const float *dos, const float *kj, const float *vj,
                                               float bias, float lse_i, float D_i, float *p_out) {
  float s = g->scale * lane_dot(qs, kj, g->Dk) + bias;
  float p = s == -INFINITY ? 0.0f : expf(s - lse_i);
  *p_out = p;
  return p * (lane_dot(dos, vj, g->Dv) - D_i);
}

/* A unit is (bias slot, query i); the slot's (b, h) pairs are b = bs + sb * ., h = hs + sh * .
 * (sb = B, sh = H without a bias gradient: one pair per unit). */
__global__ void attn_dq_kernel(vt_attn_geom g, int64_t sb, int64_t sh, const float *q,
                               const float *k, const float *v, const float *dout, const float *lse,
                               const float *D, float *dq, float *dbias) {
  extern __shared__ float smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float *qs = smem + warp * (2 * g.Dk + g.Dv), *dos = qs + g.Dk, *dqs = dos + g.Dv;
  const int64_t units = sb * sh * g.Tq, group = g.H / g.Hkv;
  for (int64_t u = (int64_t)blockIdx.x * WARPS + warp; u < units; u += (int64_t)gridDim.x * WARPS) {
    int64_t i = u % g.Tq, slot = u / g.Tq, bs = slot / sh, hs = slot % sh;
    for (int64_t b = bs; b < g.B; b += sb) {
      int64_t lo, hi;
      vt_attn_row_range(&g, b, i, &lo, &hi);
      for (int64_t h = hs; h < g.H; h += sh) {
        int64_t row = (b * g.H + h) * g.Tq + i, kvh = b * g.Hkv + h / group;
        float l = lse[row], Di = D[row];
        if (l == -INFINITY) continue; /* a row that sees no key has no gradient */
        const float *kp = k + kvh * g.Tk * g.Dk, *vp = v + kvh * g.Tk * g.Dv;
        int64_t boff = g.bias ? vt_attn_bias_offset(&g, b, h) + i * g.Tk : 0;
        for (int64_t d = lane; d < g.Dk; d += 32) {
          qs[d] = q[row * g.Dk + d];
          dqs[d] = 0.0f;
        }
        for (int64_t d = lane; d < g.Dv; d += 32) dos[d] = dout[row * g.Dv + d];
        __syncwarp();
        for (int64_t k0 = lo; k0 < hi; k0 += 32) {
          int64_t j = k0 + lane, nk = hi - k0 < 32 ? hi - k0 : 32;
          float ds = 0.0f, p = 0.0f;
          if (j < hi) {
            ds = dscore(&g, qs, dos, kp + j * g.Dk, vp + j * g.Dv, g.bias ? g.bias[boff + j] : 0.0f,
                        l, Di, &p);
            if (dbias) dbias[boff + j] += ds;
          }
          for (int64_t d0 = 0; d0 < g.Dk; d0 += 32) {
            int64_t d = d0 + lane;
            float a = 0.0f;
            for (int64_t t = 0; t < nk; t++) {
              float dt = __shfl_sync(0xffffffffu, ds, (int)t);
              if (d < g.Dk) a += dt * kp[(k0 + t) * g.Dk + d];
            }
            if (d < g.Dk) dqs[d] += a;
          }
        }
        __syncwarp();
        if (dq)
          for (int64_t d = lane; d < g.Dk; d += 32) dq[row * g.Dk + d] += g.scale * dqs[d];
        __syncwarp();
      }
    }
  }
}

__global__ void attn_dkv_kernel(vt_attn_geom g, const float *q, const float *k, const float *v,
                                const float *dout, const float *lse, const float *D, float *dk,
                                float *dv) {
  extern __shared__ float smem[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  float *ks = smem + warp * (2 * g.Dk + 2 * g.Dv), *vs = ks + g.Dk, *dks = vs + g.Dv,
        *dvs = dks + g.Dk;
  const int64_t units = g.B * g.Hkv * g.Tk, group = g.H / g.Hkv;
  for (int64_t u = (int64_t)blockIdx.x * WARPS + warp; u < units; u += (int64_t)gridDim.x * WARPS) {
    int64_t j = u % g.Tk, kvh = u / g.Tk, b = kvh / g.Hkv, hk = kvh % g.Hkv;
    for (int64_t d = lane; d < g.Dk; d += 32) {
      ks[d] = k[u * g.Dk + d];
      dks[d] = 0.0f;
    }
    for (int64_t d = lane; d < g.Dv; d += 32) {
      vs[d] = v[u * g.Dv + d];
      dvs[d] = 0.0f;
    }
    __syncwarp();
    for (int64_t h = hk * group; h < (hk + 1) * group; h++) {
      int64_t bh = b * g.H + h;
      const float *br = g.bias ? g.bias + vt_attn_bias_offset(&g, b, h) : NULL;
      for (int64_t i0 = 0; i0 < g.Tq; i0 += 32) {
        int64_t i = i0 + lane, nq = g.Tq - i0 < 32 ? g.Tq - i0 : 32;
        int64_t row = bh * g.Tq + i;
        bool vis = i < g.Tq && visible(&g, b, i, j) && lse[row] != -INFINITY;
        if (!__any_sync(0xffffffffu, vis)) continue;
        float ds = 0.0f, p = 0.0f;
        if (vis)
          ds = dscore(&g, q + row * g.Dk, dout + row * g.Dv, ks, vs, br ? br[i * g.Tk + j] : 0.0f,
                      lse[row], D[row], &p);
        /* dv_j += sum_i P_ij dout_i, dk_j += scale sum_i dS_ij q_i */
        for (int64_t d0 = 0; d0 < g.Dv; d0 += 32) {
          int64_t d = d0 + lane;
          float a = 0.0f;
          for (int64_t t = 0; t < nq; t++) {
            float pt = __shfl_sync(0xffffffffu, p, (int)t);
            if (d < g.Dv) a += pt * dout[(bh * g.Tq + i0 + t) * g.Dv + d];
          }
          if (d < g.Dv) dvs[d] += a;
        }
        for (int64_t d0 = 0; d0 < g.Dk; d0 += 32) {
          int64_t d = d0 + lane;
          float a = 0.0f;
          for (int64_t t = 0; t < nq; t++) {
            float dt = __shfl_sync(0xffffffffu, ds, (int)t);
            if (d < g.Dk) a += dt * q[(bh * g.Tq + i0 + t) * g.Dk + d];
          }
          if (d < g.Dk) dks[d] += a;
        }
      }
    }
    __syncwarp();
    if (dk)
      for (int64_t d = lane; d < g.Dk; d += 32) dk[u * g.Dk + d] += g.scale * dks[d];
    if (dv)
      for (int64_t d = lane; d < g.Dv; d += 32) dv[u * g.Dv + d] += dvs[d];
    __syncwarp();
  }
}

static size_t cuda_attn_workspace(const vt_backend *be, const vt_attn_geom *g) {
  (void)be;
  return (size_t)(g->B * g->H * g->Tq) * sizeof(float) + 256; /* D of the backward */
}

/* Launches `kernel` over `units` warps with `floats_per_warp` floats of shared memory each,
 * opting in to more than 48 KiB when the head dims need it. */
template <typename K>
static void launch_warps(const vt_backend *be, K kernel, int64_t units, int64_t floats_per_warp,
                         dim3 *grid, size_t *smem) {
  *smem = (size_t)floats_per_warp * WARPS * sizeof(float);
  if (*smem > 48 * 1024)
    VT_CUDA_CHECK(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)*smem));
  int64_t blocks = (units + WARPS - 1) / WARPS, cap = (int64_t)vt_cuda_of(be)->num_sms * 64;
  *grid = dim3((unsigned)(blocks < 1 ? 1 : blocks > cap ? cap : blocks));
}

static void cuda_attn_forward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                              const float *k, const float *v, float *out, float *lse, void *work) {
  (void)work;
  int64_t rows = g->B * g->H * g->Tq;
  if (rows <= 0) return;
  const void *ptrs[5] = {q, k, v, out, lse};
  if (vt_cuda_flash_fits(g, ptrs, 5)) {
    vt_cuda_flash_forward(be, g, q, k, v, out, lse);
    return;
  }
  dim3 grid;
  size_t smem;
  launch_warps(be, attn_fwd_kernel, rows, g->Dk + g->Dv, &grid, &smem);
  attn_fwd_kernel<<<grid, WARPS * 32, smem, VT_STREAM(be)>>>(*g, q, k, v, out, lse);
  VT_CUDA_LAUNCHED();
}

static void cuda_attn_backward(const vt_backend *be, const vt_attn_geom *g, const float *q,
                               const float *k, const float *v, const float *out, const float *dout,
                               const float *lse, float *dq, float *dk, float *dv, float *dbias,
                               void *work) {
  int64_t rows = g->B * g->H * g->Tq;
  if (rows <= 0) return;
  float *D = (float *)work;
  int64_t blocks = (rows + WARPS - 1) / WARPS, cap = (int64_t)vt_cuda_of(be)->num_sms * 64;
  attn_delta_kernel<<<(unsigned)(blocks > cap ? cap : blocks), WARPS * 32, 0, VT_STREAM(be)>>>(
      rows, g->Dv, out, dout, D);
  VT_CUDA_LAUNCHED();
  const void *ptrs[7] = {q, k, v, dout, dq, dk, dv};
  if (vt_cuda_flash_fits(g, ptrs, 7)) {
    vt_cuda_flash_backward(be, g, q, k, v, dout, lse, D, dq, dk, dv, dbias);
    return;
  }
  dim3 grid;
  size_t smem;
  if (dq || dbias) {
    int64_t sb = dbias && g->bias_b == 1 ? 1 : g->B, sh = dbias && g->bias_h == 1 ? 1 : g->H;
    launch_warps(be, attn_dq_kernel, sb * sh * g->Tq, 2 * g->Dk + g->Dv, &grid, &smem);
    attn_dq_kernel<<<grid, WARPS * 32, smem, VT_STREAM(be)>>>(*g, sb, sh, q, k, v, dout, lse, D, dq,
                                                              dbias);
    VT_CUDA_LAUNCHED();
  }
  if (dk || dv) {
    launch_warps(be, attn_dkv_kernel, g->B * g->Hkv * g->Tk, 2 * (g->Dk + g->Dv), &grid, &smem);
    attn_dkv_kernel<<<grid, WARPS * 32, smem, VT_STREAM(be)>>>(*g, q, k, v, dout, lse, D, dk, dv);
    VT_CUDA_LAUNCHED();
  }
}

static vt_attn_kernels make_table(void) {
  vt_attn_kernels t;
  memset(&t, 0, sizeof t);
  t.workspace = cuda_attn_workspace;
  t.forward = cuda_attn_forward;
  t.backward = cuda_attn_backward;
  return t;
}

const vt_attn_kernels *vt_cuda_attn_table(void) {
  static const vt_attn_kernels t = make_table();
  return &t;
}
