/* CUDA kernels of the optim family (autograd/kernels_optim.h): the fused Adam/AdamW and SGD
 * updates over the flat gradient and moment buffers (vt_adam_elem, the CPU's element math,
 * one block per segment), and the sum of squares behind the global-norm clip: fixed blocks
 * of the buffer, each reduced in double, added in block order on the host, so the clip is
 * deterministic and needs no atomics. */
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_optim.h"
}

/* Block b sums squares over [n b / P, n (b + 1) / P) of x; P = VT_CUDA_PARTIALS. */
__global__ void sumsq_kernel(const float *x, int64_t n, double *part) {
  __shared__ double sh[32];
  int64_t b = blockIdx.x, lo = n * b / VT_CUDA_PARTIALS, hi = n * (b + 1) / VT_CUDA_PARTIALS;
  double s = 0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) s += (double)x[i] * (double)x[i];
  s = vt_block_sum_d(s, sh);
  if (threadIdx.x == 0) part[b] = s;
}

static double cuda_sumsq(const vt_backend *be, const float *x, int64_t n) {
  if (n <= 0) return 0.0;
  vt_cuda_inst *st = vt_cuda_of(be);
  sumsq_kernel<<<VT_CUDA_PARTIALS, 512, 0, st->stream>>>(x, n, st->partials);
  VT_CUDA_LAUNCHED();
  VT_CUDA_CHECK(cudaMemcpyAsync(st->partials_host, st->partials, sizeof(double) * VT_CUDA_PARTIALS,
                                cudaMemcpyDeviceToHost, st->stream));
  VT_CUDA_CHECK(cudaStreamSynchronize(st->stream));
  double s = 0.0;
  for (int b = 0; b < VT_CUDA_PARTIALS; b++) s += st->partials_host[b];
  return s;
}

__global__ void optim_scale_kernel(float *x, int64_t n, float alpha) {
  VT_GRID_STRIDE(i, n) x[i] *= alpha;
}

static void cuda_optim_scale(const vt_backend *be, float *x, int64_t n, float alpha) {
  if (n <= 0) return;
  optim_scale_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      x, n, alpha);
  VT_CUDA_LAUNCHED();
}

/* Blocks stride over segments, threads over a segment's elements. A segment whose parameter
 * and flat offset are 16-byte aligned (with grad, m, v; vec) is read and written four floats
 * at a time: a quarter of the memory instructions of this memory-bound pass, the same
 * per-element math (vt_adam_elem), so the same bits. */
__global__ void adam_kernel(const vt_optim_seg *segs, int64_t nseg, const float *grad, float *m,
                            float *v, vt_adam_hparams h, bool vec) {
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    vt_optim_seg sg = segs[s];
    int64_t i0 = 0;
    if (vec && (((uintptr_t)sg.param) & 15) == 0 && (sg.flat & 3) == 0) {
      for (int64_t q = threadIdx.x; q < sg.n / 4; q += blockDim.x) {
        int64_t f = sg.flat + 4 * q;
        float4 p4 = reinterpret_cast<float4 *>(sg.param)[q];
        float4 m4 = *reinterpret_cast<float4 *>(m + f), v4 = *reinterpret_cast<float4 *>(v + f);
        float4 g4 = *reinterpret_cast<const float4 *>(grad + f);
        vt_adam_elem(&p4.x, &m4.x, &v4.x, g4.x, &h);
        vt_adam_elem(&p4.y, &m4.y, &v4.y, g4.y, &h);
        vt_adam_elem(&p4.z, &m4.z, &v4.z, g4.z, &h);
        vt_adam_elem(&p4.w, &m4.w, &v4.w, g4.w, &h);
        reinterpret_cast<float4 *>(sg.param)[q] = p4;
        *reinterpret_cast<float4 *>(m + f) = m4;
        *reinterpret_cast<float4 *>(v + f) = v4;
      }
      i0 = sg.n / 4 * 4; /* the tail, scalar */
    }
    for (int64_t i = i0 + threadIdx.x; i < sg.n; i += blockDim.x) {
      int64_t f = sg.flat + i;
      vt_adam_elem(&sg.param[i], &m[f], &v[f], grad[f], &h);
    }
  }
}

__global__ void sgd_kernel(const vt_optim_seg *segs, int64_t nseg, const float *grad, float *buf,
                           vt_sgd_hparams h) {
  for (int64_t s = blockIdx.x; s < nseg; s += gridDim.x) {
    vt_optim_seg sg = segs[s];
    for (int64_t i = threadIdx.x; i < sg.n; i += blockDim.x) {
      int64_t f = sg.flat + i;
      vt_sgd_elem(&sg.param[i], buf ? &buf[f] : NULL, grad[f], &h);
    }
  }
}

static void cuda_adam_update(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                             const float *grad, float *m, float *v, vt_adam_hparams h) {
  if (nseg <= 0) return;
  bool vec = ((((uintptr_t)grad) | ((uintptr_t)m) | ((uintptr_t)v)) & 15) == 0 &&
             !vt_cuda_simple_kernels();
  adam_kernel<<<vt_cuda_grid(nseg), 512, 0, VT_STREAM(be)>>>(segs, nseg, grad, m, v, h, vec);
  VT_CUDA_LAUNCHED();
}

static void cuda_sgd_update(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                            const float *grad, float *buf, vt_sgd_hparams h) {
  if (nseg <= 0) return;
  sgd_kernel<<<vt_cuda_grid(nseg), 512, 0, VT_STREAM(be)>>>(segs, nseg, grad, buf, h);
  VT_CUDA_LAUNCHED();
}

static vt_optim_kernels make_table(void) {
  vt_optim_kernels t;
  memset(&t, 0, sizeof t);
  t.sumsq = cuda_sumsq;
  t.scale = cuda_optim_scale;
  t.adam_update = cuda_adam_update;
  t.sgd_update = cuda_sgd_update;
  return t;
}

const vt_optim_kernels *vt_cuda_optim_table(void) {
  static const vt_optim_kernels t = make_table();
  return &t;
}
