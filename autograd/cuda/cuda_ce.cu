/* Cross-entropy rows on the GPU (kernels_loss.h's ce_forward / ce_backward; the chunked LM loss
 * calls them per chunk): a row per warp up to CE_WARP_COLS columns (the modality head, CTC's and
 * the tiny vocabularies), else a row per block (1024 threads from CE_WIDE_COLS columns, a
 * 152k vocabulary); float4 loads and stores when the row length is a multiple of 4 and the
 * pointers are 16-byte aligned (vt_for_vec). The forward keeps the CPU's formula, two passes:
 * the max, then the sum of e^(x - max) in double (an online max / sum would rescale partial
 * sums and so change the terms); the order of that sum is a fixed warp / block tree, the same
 * bits on every run. The backward's element math is the scalar kernel's, so its bits are too.
 * VT_CUDA_SIMPLE: one block of 256 threads per row, one float per thread and step (the kernel
 * before). tests/test_cuda_sim.cpp compiles the kernels for the host (VT_CUDA_SIM) and checks
 * them against the CPU backend; the launchers at the end are CUDA only. */
#ifdef VT_CUDA_SIM
#include "tests/flash_sim.h"
// flash_sim.h first: it defines float4
#include "autograd/cuda/cuda_red.cuh"
#include "autograd/cuda/cuda_vec.cuh"
extern "C" {
#include "autograd/kernels_loss.h"
}
#else
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_loss.h"
}
#endif

#define CE_WARP_COLS 1024
#define CE_WIDE_COLS 16384

template <bool WARP>
__global__ void ce_forward_kernel(int64_t rows, int64_t cols, bool vec, const float *logits,
                                  const int32_t *target, int32_t ignore_index, const float *class_w,
                                  float *lse, float *nll, float *wrow) {
  __shared__ float shf[32];
  __shared__ double shd[32];
  row_group<WARP> g;
  g.shared = shf;
  g.shared_d = shd;
  int64_t step;
  for (int64_t r = first_row<WARP>(&step, &g); r < rows; r += step) {
    const float *x = logits + r * cols;
    float m = -INFINITY;
    vt_for_vec(cols, vec, g.lane, g.width, [&](int64_t j, int n) {
      vt_f4 a = {};
      if (n == 4)
        a = vt_ld4(x + j);
      else
        a.f[0] = x[j];
      for (int e = 0; e < n; e++) m = a.f[e] > m ? a.f[e] : m;
    });
    m = g.max(m);
    double s = 0;
    vt_for_vec(cols, vec, g.lane, g.width, [&](int64_t j, int n) {
      vt_f4 a = {};
      if (n == 4)
        a = vt_ld4(x + j);
      else
        a.f[0] = x[j];
      for (int e = 0; e < n; e++) s += expf(a.f[e] - m);
    });
    s = g.sum_d(s);
    if (g.lane == 0) {
      float l = m + (float)log(s);
      lse[r] = l;
      vt_ce_row_nll(l, x, target[r], ignore_index, class_w, nll + r, wrow + r);
    }
  }
}

template <bool WARP>
__global__ void ce_backward_kernel(int64_t rows, int64_t cols, bool vec, const float *logits,
                                   const int32_t *target, int32_t ignore_index,
                                   const float *class_w, const float *lse, const float *gout,
                                   const float *denom, float *dlogits, bool accumulate) {
  row_group<WARP> g;
  float d = denom ? denom[0] : 1.0f, f = d != 0 ? gout[0] / d : 0.0f;
  int64_t step;
  for (int64_t r = first_row<WARP>(&step, &g); r < rows; r += step) {
    const float *x = logits + r * cols;
    float *dx = dlogits + r * cols;
    int32_t t = target[r];
    bool zero = t == ignore_index || f == 0;
    if (zero && accumulate) continue;
    float fw = zero ? 0.0f : f * (class_w ? class_w[t] : 1.0f), l = zero ? 0.0f : lse[r];
    vt_for_vec(cols, vec, g.lane, g.width, [&](int64_t j, int n) {
      vt_f4 a = {}, o = {};
      if (n == 4) {
        a = vt_ld4(x + j);
        if (accumulate) o = vt_ld4(dx + j);
      } else {
        a.f[0] = x[j];
        if (accumulate) o.f[0] = dx[j];
      }
      for (int e = 0; e < n; e++) {
        float v = zero ? 0.0f : fw * expf(a.f[e] - l);
        if (accumulate) v = o.f[e] + v;
        if (!zero && j + e == t) v -= fw; /* the CPU's order: softmax term, then the one-hot */
        o.f[e] = v;
      }
      if (n == 4)
        vt_st4(dx + j, o);
      else
        dx[j] = o.f[0];
    });
  }
}

#ifndef VT_CUDA_SIM

/* The row layout: a warp per row (WARP), else a block of `threads`. */
static void ce_layout(int64_t cols, bool simple, bool *warp, int *threads) {
  *warp = !simple && cols <= CE_WARP_COLS;
  *threads = simple ? 256 : *warp ? 256 : cols >= CE_WIDE_COLS ? 1024 : 256;
}

/* Launches kernel<true> (a warp per row) or kernel<false> (a block per row) over the rows. */
#define CE_LAUNCH(kernel, rows, warp, threads, ...)                                                \
  do {                                                                                             \
    int64_t per_ = (warp) ? (threads) / 32 : 1;                                                    \
    unsigned blocks_ = vt_cuda_grid(((rows) + per_ - 1) / per_);                                   \
    if (warp)                                                                                      \
      kernel<true><<<blocks_, threads, 0, VT_STREAM(be)>>>(__VA_ARGS__);                           \
    else                                                                                           \
      kernel<false><<<blocks_, threads, 0, VT_STREAM(be)>>>(__VA_ARGS__);                          \
    VT_CUDA_LAUNCHED();                                                                            \
  } while (0)

void vt_cuda_ce_forward(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                        const int32_t *target, int32_t ignore_index, const float *class_w,
                        float *lse, float *nll, float *wrow) {
  if (rows <= 0) return;
  bool simple = vt_cuda_simple_kernels(), warp;
  int threads;
  ce_layout(cols, simple, &warp, &threads);
  bool vec = !simple && vt_cuda_rows_vec(cols, logits, NULL, NULL);
  CE_LAUNCH(ce_forward_kernel, rows, warp, threads, rows, cols, vec, logits, target, ignore_index,
            class_w, lse, nll, wrow);
}

void vt_cuda_ce_backward(const vt_backend *be, int64_t rows, int64_t cols, const float *logits,
                         const int32_t *target, int32_t ignore_index, const float *class_w,
                         const float *lse, const float *gout, const float *denom, float *dlogits,
                         bool accumulate) {
  if (rows <= 0) return;
  bool simple = vt_cuda_simple_kernels(), warp;
  int threads;
  ce_layout(cols, simple, &warp, &threads);
  bool vec = !simple && vt_cuda_rows_vec(cols, logits, dlogits, NULL);
  CE_LAUNCH(ce_backward_kernel, rows, warp, threads, rows, cols, vec, logits, target, ignore_index,
            class_w, lse, gout, denom, dlogits, accumulate);
}

#endif /* VT_CUDA_SIM */
