/* GroupNorm and BatchNorm over [n, c, s] on the GPU (kernels_norm.h's members): one block per
 * (sample, group) or per channel, two passes (the mean, then the centred sum of squares) in
 * double, each a fixed block reduction, so the same bits on every run and no atomics. GroupNorm's
 * dw / db are one block per channel. float4 loads and stores where the runs allow: a group's
 * cg * s values are contiguous (len % 4 == 0), a channel's are n runs of s (s % 4 == 0), with
 * 16-byte aligned pointers; otherwise, and under VT_CUDA_SIMPLE, one float per thread and step
 * (the kernels before, the same order and bits). tests/test_cuda_sim.cpp compiles the kernels for
 * the host (VT_CUDA_SIM) and checks them against the CPU backend; the launchers at the end are
 * CUDA only. */
#ifdef VT_CUDA_SIM
#include "tests/flash_sim.h"
// flash_sim.h first: it defines float4
#include "autograd/cuda/cuda_red.cuh"
#include "autograd/cuda/cuda_vec.cuh"
#else
#include "autograd/cuda/cuda_common.cuh"
#endif

/* Calls f(o, i, w) for the values of channel ch of [n, c, s] taken by worker lane of width:
 * groups of w = 4 at offsets o = (i c + ch) s + j, j % 4 == 0 (vec: s % 4 == 0), else w = 1. */
template <class F>
static __device__ __forceinline__ void chan_for(int64_t n, int64_t c, int64_t s, int64_t ch,
                                                bool vec, int64_t lane, int64_t width, F f) {
  if (vec) {
    int64_t s4 = s / 4;
    for (int64_t q = lane; q < n * s4; q += width) f((q / s4 * c + ch) * s + q % s4 * 4, q / s4, 4);
  } else {
    for (int64_t q = lane; q < n * s; q += width) f((q / s * c + ch) * s + q % s, q / s, 1);
  }
}

/* w values (1 or 4) at p. */
static __device__ __forceinline__ vt_f4 cn_ld(const float *p, int w) {
  vt_f4 u = {};
  if (w == 4)
    u = vt_ld4(p);
  else
    u.f[0] = p[0];
  return u;
}

static __device__ __forceinline__ void cn_st(float *p, vt_f4 u, int w) {
  if (w == 4)
    vt_st4(p, u);
  else
    p[0] = u.f[0];
}

__global__ void group_norm_kernel(int64_t n, int64_t c, int64_t s, int64_t groups, bool vec,
                                  float eps, const float *x, const float *w, const float *b,
                                  float *y, float *mean, float *rstd) {
  __shared__ double sh[32];
  int64_t cg = c / groups, len = cg * s;
  for (int64_t ng = blockIdx.x; ng < n * groups; ng += gridDim.x) {
    const float *px = x + ng * len;
    float *py = y + ng * len;
    double sum = 0;
    vt_for_vec(len, vec, threadIdx.x, blockDim.x, [&](int64_t j, int k) {
      vt_f4 a = cn_ld(px + j, k);
      for (int e = 0; e < k; e++) sum += a.f[e];
    });
    double m = vt_block_sum_d(sum, sh) / (double)len;
    double ss = 0;
    vt_for_vec(len, vec, threadIdx.x, blockDim.x, [&](int64_t j, int k) {
      vt_f4 a = cn_ld(px + j, k);
      for (int e = 0; e < k; e++) {
        double d = a.f[e] - m;
        ss += d * d;
      }
    });
    ss = vt_block_sum_d(ss, sh);
    float fm = (float)m, rs = (float)(1.0 / sqrt(ss / (double)len + eps));
    if (threadIdx.x == 0) {
      mean[ng] = fm;
      rstd[ng] = rs;
    }
    int64_t c0 = (ng % groups) * cg;
    vt_for_vec(len, vec, threadIdx.x, blockDim.x, [&](int64_t j, int k) {
      vt_f4 a = cn_ld(px + j, k);
      for (int e = 0; e < k; e++) {
        int64_t ch = c0 + (j + e) / s;
        float wc = w ? w[ch] : 1.0f, bc = b ? b[ch] : 0.0f;
        a.f[e] = (a.f[e] - fm) * rs * wc + bc;
      }
      cn_st(py + j, a, k);
    });
  }
}

__global__ void group_norm_dx_kernel(int64_t n, int64_t c, int64_t s, int64_t groups, bool vec,
                                     const float *x, const float *w, const float *mean,
                                     const float *rstd, const float *dy, float *dx) {
  __shared__ double sh[32];
  int64_t cg = c / groups, len = cg * s;
  for (int64_t ng = blockIdx.x; ng < n * groups; ng += gridDim.x) {
    const float *px = x + ng * len, *pd = dy + ng * len;
    float *pdx = dx + ng * len;
    float m = mean[ng], rs = rstd[ng];
    int64_t c0 = (ng % groups) * cg;
    double a = 0, bs = 0;
    vt_for_vec(len, vec, threadIdx.x, blockDim.x, [&](int64_t j, int k) {
      vt_f4 xv = cn_ld(px + j, k), dv = cn_ld(pd + j, k);
      for (int e = 0; e < k; e++) {
        float g = dv.f[e] * (w ? w[c0 + (j + e) / s] : 1.0f);
        a += g;
        bs += (double)g * ((xv.f[e] - m) * rs);
      }
    });
    a = vt_block_sum_d(a, sh);
    bs = vt_block_sum_d(bs, sh);
    float ma = (float)(a / (double)len), mb = (float)(bs / (double)len);
    vt_for_vec(len, vec, threadIdx.x, blockDim.x, [&](int64_t j, int k) {
      vt_f4 xv = cn_ld(px + j, k), dv = cn_ld(pd + j, k), o = cn_ld(pdx + j, k);
      for (int e = 0; e < k; e++) {
        float wc = w ? w[c0 + (j + e) / s] : 1.0f;
        o.f[e] += rs * (dv.f[e] * wc - ma - (xv.f[e] - m) * rs * mb);
      }
      cn_st(pdx + j, o, k);
    });
  }
}

/* GroupNorm's dw, db: per channel ch of [n, c, s], sums over (i, j) of dy * xhat and dy with
 * the statistics of (i, group of ch). One block per channel. */
__global__ void channel_grad_kernel(int64_t n, int64_t c, int64_t s, int64_t groups, bool vec,
                                    const float *x, const float *mean, const float *rstd,
                                    const float *dy, float *dw, float *db) {
  __shared__ double sh[32];
  int64_t cg = c / groups;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double aw = 0, ab = 0;
    chan_for(n, c, s, ch, vec, threadIdx.x, blockDim.x, [&](int64_t o, int64_t i, int k) {
      int64_t ng = i * groups + ch / cg;
      vt_f4 d = cn_ld(dy + o, k), xv = cn_ld(x + o, k);
      for (int e = 0; e < k; e++) {
        aw += (double)d.f[e] * ((xv.f[e] - mean[ng]) * rstd[ng]);
        ab += d.f[e];
      }
    });
    aw = vt_block_sum_d(aw, sh);
    ab = vt_block_sum_d(ab, sh);
    if (threadIdx.x == 0) {
      if (dw) dw[ch] += (float)aw;
      if (db) db[ch] += (float)ab;
    }
  }
}

__global__ void batch_norm_kernel(int64_t n, int64_t c, int64_t s, bool vec, bool training,
                                  float momentum, float eps, const float *x, const float *w,
                                  const float *b, float *running_mean, float *running_var, float *y,
                                  float *mean, float *rstd) {
  __shared__ double sh[32];
  __shared__ float stat[2];
  int64_t cnt = n * s;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    if (training) {
      double sum = 0;
      chan_for(n, c, s, ch, vec, threadIdx.x, blockDim.x, [&](int64_t o, int64_t, int k) {
        vt_f4 a = cn_ld(x + o, k);
        for (int e = 0; e < k; e++) sum += a.f[e];
      });
      double m = vt_block_sum_d(sum, sh) / (double)cnt;
      double ss = 0;
      chan_for(n, c, s, ch, vec, threadIdx.x, blockDim.x, [&](int64_t o, int64_t, int k) {
        vt_f4 a = cn_ld(x + o, k);
        for (int e = 0; e < k; e++) {
          double d = a.f[e] - m;
          ss += d * d;
        }
      });
      ss = vt_block_sum_d(ss, sh);
      if (threadIdx.x == 0) {
        stat[0] = (float)m;
        stat[1] = (float)(1.0 / sqrt(ss / (double)cnt + eps));
        if (running_mean)
          running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * m);
        if (running_var && cnt > 1)
          running_var[ch] =
              (float)((1.0 - momentum) * running_var[ch] + momentum * ss / (double)(cnt - 1));
      }
    } else if (threadIdx.x == 0) {
      stat[0] = running_mean[ch];
      stat[1] = (float)(1.0 / sqrt((double)running_var[ch] + eps));
    }
    __syncthreads();
    float fm = stat[0], rs = stat[1];
    if (threadIdx.x == 0) {
      mean[ch] = fm;
      rstd[ch] = rs;
    }
    float wc = w ? w[ch] : 1.0f, bc = b ? b[ch] : 0.0f;
    chan_for(n, c, s, ch, vec, threadIdx.x, blockDim.x, [&](int64_t o, int64_t, int k) {
      vt_f4 a = cn_ld(x + o, k);
      for (int e = 0; e < k; e++) a.f[e] = (a.f[e] - fm) * rs * wc + bc;
      cn_st(y + o, a, k);
    });
    __syncthreads(); /* stat is rewritten for the next channel */
  }
}

__global__ void batch_norm_backward_kernel(int64_t n, int64_t c, int64_t s, bool vec, bool training,
                                           const float *x, const float *w, const float *mean,
                                           const float *rstd, const float *dy, float *dx, float *dw,
                                           float *db) {
  __shared__ double sh[32];
  int64_t cnt = n * s;
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    float m = mean[ch], rs = rstd[ch], wc = w ? w[ch] : 1.0f;
    double a = 0, bs = 0;
    chan_for(n, c, s, ch, vec, threadIdx.x, blockDim.x, [&](int64_t o, int64_t, int k) {
      vt_f4 d = cn_ld(dy + o, k), xv = cn_ld(x + o, k);
      for (int e = 0; e < k; e++) {
        a += d.f[e];
        bs += (double)d.f[e] * ((xv.f[e] - m) * rs);
      }
    });
    a = vt_block_sum_d(a, sh);
    bs = vt_block_sum_d(bs, sh);
    if (threadIdx.x == 0) {
      if (dw) dw[ch] += (float)bs;
      if (db) db[ch] += (float)a;
    }
    if (!dx) continue;
    float ma = training ? (float)(a / (double)cnt) : 0.0f;
    float mb = training ? (float)(bs / (double)cnt) : 0.0f;
    chan_for(n, c, s, ch, vec, threadIdx.x, blockDim.x, [&](int64_t o, int64_t, int k) {
      vt_f4 d = cn_ld(dy + o, k), xv = cn_ld(x + o, k), g = cn_ld(dx + o, k);
      for (int e = 0; e < k; e++) g.f[e] += wc * rs * (d.f[e] - ma - (xv.f[e] - m) * rs * mb);
      cn_st(dx + o, g, k);
    });
  }
}

#ifndef VT_CUDA_SIM

#define CN_THREADS 256

/* float4 over runs of `run` values: run % 4 == 0 and the pointers 16-byte aligned. */
static bool cn_vec(int64_t run, const void *a, const void *b, const void *c) {
  return run % 4 == 0 && vt_cuda_flat_vec(a, b, c, NULL);
}

void vt_cuda_group_norm(const vt_backend *be, int64_t n, int64_t c, int64_t s, int64_t groups,
                        float eps, const float *x, const float *w, const float *b, float *y,
                        float *mean, float *rstd) {
  if (n * c * s <= 0) return;
  bool vec = cn_vec(c / groups * s, x, y, NULL);
  group_norm_kernel<<<vt_cuda_grid(n * groups), CN_THREADS, 0, VT_STREAM(be)>>>(
      n, c, s, groups, vec, eps, x, w, b, y, mean, rstd);
  VT_CUDA_LAUNCHED();
}

void vt_cuda_group_norm_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                                 int64_t groups, const float *x, const float *w, const float *mean,
                                 const float *rstd, const float *dy, float *dx, float *dw,
                                 float *db) {
  if (n * c * s <= 0) return;
  if (dx) {
    bool vec = cn_vec(c / groups * s, x, dy, dx);
    group_norm_dx_kernel<<<vt_cuda_grid(n * groups), CN_THREADS, 0, VT_STREAM(be)>>>(
        n, c, s, groups, vec, x, w, mean, rstd, dy, dx);
    VT_CUDA_LAUNCHED();
  }
  if (dw || db) {
    bool vec = cn_vec(s, x, dy, NULL);
    channel_grad_kernel<<<vt_cuda_grid(c), CN_THREADS, 0, VT_STREAM(be)>>>(n, c, s, groups, vec, x,
                                                                           mean, rstd, dy, dw, db);
    VT_CUDA_LAUNCHED();
  }
}

void vt_cuda_batch_norm(const vt_backend *be, int64_t n, int64_t c, int64_t s, bool training,
                        float momentum, float eps, const float *x, const float *w, const float *b,
                        float *running_mean, float *running_var, float *y, float *mean,
                        float *rstd) {
  if (c <= 0) return;
  bool vec = cn_vec(s, x, y, NULL);
  batch_norm_kernel<<<vt_cuda_grid(c), CN_THREADS, 0, VT_STREAM(be)>>>(
      n, c, s, vec, training, momentum, eps, x, w, b, running_mean, running_var, y, mean, rstd);
  VT_CUDA_LAUNCHED();
}

void vt_cuda_batch_norm_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                                 bool training, const float *x, const float *w, const float *mean,
                                 const float *rstd, const float *dy, float *dx, float *dw,
                                 float *db) {
  if (c <= 0) return;
  bool vec = cn_vec(s, x, dy, dx);
  batch_norm_backward_kernel<<<vt_cuda_grid(c), CN_THREADS, 0, VT_STREAM(be)>>>(
      n, c, s, vec, training, x, w, mean, rstd, dy, dx, dw, db);
  VT_CUDA_LAUNCHED();
}

#endif /* VT_CUDA_SIM */
