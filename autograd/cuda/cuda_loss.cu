/* CUDA kernels of the loss family (autograd/kernels_loss.h): cross-entropy rows (cuda_ce.cu:
 * a warp or block per row, float4 loads, max then the sum of exponentials in double), CTC (one
 * block per sample walking the lattice in time, nodes across threads, in double), L1/MSE and
 * cosine. Every sum is a fixed block reduction (no atomics), so a loss is the same bits on every
 * run. Scalars stay on the device: no kernel here synchronises with the host. */
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_loss.h"
}

#define NT 256

/* ---- cross-entropy rows ---- */

/* One block of 1024 threads: sums in double, one fixed reduction order. */
__global__ void ratio_sum_kernel(int64_t n, const float *num, const float *den, float *out,
                                 float *den_sum) {
  __shared__ double sh[32];
  double a = 0, b = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    a += num[i];
    if (den) b += den[i];
  }
  a = vt_block_sum_d(a, sh);
  b = den ? vt_block_sum_d(b, sh) : 1.0;
  if (threadIdx.x == 0) {
    out[0] = b != 0 ? (float)(a / b) : 0.0f;
    if (den_sum) den_sum[0] = (float)b;
  }
}

static void cuda_ratio_sum(const vt_backend *be, int64_t n, const float *num, const float *den,
                           float *out, float *den_sum) {
  ratio_sum_kernel<<<1, 1024, 0, VT_STREAM(be)>>>(n, num, den, out, den_sum);
  VT_CUDA_LAUNCHED();
}

__global__ void shift_labels_kernel(int64_t B, int64_t T, const int32_t *labels,
                                    int32_t ignore_index, int32_t *targets) {
  VT_GRID_STRIDE(i, B * T) targets[i] = i % T == T - 1 ? ignore_index : labels[i + 1];
}

static void cuda_shift_labels(const vt_backend *be, int64_t B, int64_t T, const int32_t *labels,
                              int32_t ignore_index, int32_t *targets) {
  if (B * T <= 0) return;
  shift_labels_kernel<<<vt_cuda_blocks(be, B * T, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                        VT_STREAM(be)>>>(B, T, labels, ignore_index, targets);
  VT_CUDA_LAUNCHED();
}

/* ---- CTC ---- */

static size_t cuda_ctc_workspace(const vt_backend *be, int64_t B, int64_t T, int64_t S) {
  (void)be;
  return (size_t)(B > 0 ? B : 1) * (size_t)(T * (2 * S + 1)) * 2 * sizeof(double) + 64;
}

/* One block per sample: alpha forward in time, then beta backward, each time step one pass of
 * the threads over the lattice nodes; then the gradient, one thread per (t, class), summing
 * its nodes in order as the CPU does. */
__global__ void ctc_kernel(int64_t B, int64_t T, int64_t C, int64_t S, const float *log_probs,
                           const int32_t *targets, const int32_t *in_len, const int32_t *tgt_len,
                           int32_t blank, float *nll, float *grad, double *work) {
  const int64_t Lmax = 2 * S + 1;
  __shared__ double ll_sh;
  for (int64_t b = blockIdx.x; b < B; b += gridDim.x) {
    const float *lp = log_probs + b * T * C;
    const int32_t *y = targets + b * S;
    const int64_t Tb = in_len[b], U = tgt_len[b], L = 2 * U + 1;
    double *alpha = work + b * T * Lmax * 2, *beta = alpha + T * Lmax;
    if (Tb > 0) {
      for (int64_t s = threadIdx.x; s < L; s += blockDim.x)
        alpha[s] = s < 2 ? (double)lp[vt_ctc_label(s, y, blank)] : -INFINITY;
      __syncthreads();
      for (int64_t t = 1; t < Tb; t++) {
        const double *ap = alpha + (t - 1) * Lmax;
        double *a = alpha + t * Lmax;
        for (int64_t s = threadIdx.x; s < L; s += blockDim.x) {
          double v = ap[s];
          if (s >= 1) v = vt_logaddexp(v, ap[s - 1]);
          if (vt_ctc_skip(s, y)) v = vt_logaddexp(v, ap[s - 2]);
          a[s] = v + lp[t * C + vt_ctc_label(s, y, blank)];
        }
        __syncthreads();
      }
    }
    if (threadIdx.x == 0) {
      double ll = -INFINITY;
      if (Tb > 0) {
        const double *al = alpha + (Tb - 1) * Lmax;
        ll = vt_logaddexp(al[L - 1], L >= 2 ? al[L - 2] : -INFINITY);
      } else if (U == 0) {
        ll = 0; /* the empty alignment of an empty target */
      }
      nll[b] = (float)-ll;
      ll_sh = ll;
    }
    __syncthreads();
    double ll = ll_sh;
    if (grad) {
      float *g = grad + b * T * C;
      bool live = ll != -INFINITY && Tb > 0;
      if (live) {
        double *bl = beta + (Tb - 1) * Lmax;
        for (int64_t s = threadIdx.x; s < L; s += blockDim.x)
          bl[s] = s >= L - 2 ? (double)lp[(Tb - 1) * C + vt_ctc_label(s, y, blank)] : -INFINITY;
        __syncthreads();
        for (int64_t t = Tb - 2; t >= 0; t--) {
          const double *bn = beta + (t + 1) * Lmax;
          double *bt = beta + t * Lmax;
          for (int64_t s = threadIdx.x; s < L; s += blockDim.x) {
            double v = bn[s];
            if (s + 1 < L) v = vt_logaddexp(v, bn[s + 1]);
            if (s + 2 < L && vt_ctc_skip(s + 2, y)) v = vt_logaddexp(v, bn[s + 2]);
            bt[s] = v + lp[t * C + vt_ctc_label(s, y, blank)];
          }
          __syncthreads();
        }
      }
      for (int64_t q = threadIdx.x; q < T * C; q += blockDim.x) {
        int64_t t = q / C;
        int32_t c = (int32_t)(q % C);
        float v = 0.0f;
        if (live && t < Tb)
          for (int64_t s = 0; s < L; s++) {
            if (vt_ctc_label(s, y, blank) != c) continue;
            double e = alpha[t * Lmax + s] + beta[t * Lmax + s] - ll - lp[t * C + c];
            if (e > -INFINITY) v -= (float)exp(e);
          }
        g[q] = v;
      }
    }
    __syncthreads(); /* ll_sh is rewritten for the next sample */
  }
}

static void cuda_ctc_forward(const vt_backend *be, int64_t B, int64_t T, int64_t C, int64_t S,
                             const float *log_probs, const int32_t *targets, const int32_t *in_len,
                             const int32_t *tgt_len, int32_t blank, float *nll, float *grad,
                             void *work) {
  if (B <= 0) return;
  ctc_kernel<<<vt_cuda_grid(B), NT, 0, VT_STREAM(be)>>>(B, T, C, S, log_probs, targets, in_len,
                                                        tgt_len, blank, nll, grad, (double *)work);
  VT_CUDA_LAUNCHED();
}

/* B is a batch size: one thread adds the samples in order, in double, as the CPU does. */
__global__ void ctc_reduce_kernel(int64_t B, const float *nll, const int32_t *tgt_len, bool mean,
                                  bool zero_infinity, float *factor, float *out) {
  if (threadIdx.x || blockIdx.x) return;
  double s = 0;
  for (int64_t b = 0; b < B; b++) {
    double f = mean ? 1.0 / ((double)(tgt_len[b] > 1 ? tgt_len[b] : 1) * (double)B) : 1.0;
    if (zero_infinity && isinf(nll[b])) f = 0;
    factor[b] = (float)f;
    if (f != 0) s += f * nll[b];
  }
  out[0] = (float)s;
}

static void cuda_ctc_reduce(const vt_backend *be, int64_t B, const float *nll,
                            const int32_t *tgt_len, bool mean, bool zero_infinity, float *factor,
                            float *out) {
  ctc_reduce_kernel<<<1, 32, 0, VT_STREAM(be)>>>(B, nll, tgt_len, mean, zero_infinity, factor, out);
  VT_CUDA_LAUNCHED();
}

__global__ void scale_rows_acc_kernel(int64_t B, int64_t n, const float *factor, const float *gout,
                                      const float *src, float *dst) {
  VT_GRID_STRIDE(i, B * n) {
    float f = gout[0] * factor[i / n];
    if (f != 0) dst[i] += f * src[i];
  }
}

static void cuda_scale_rows_acc(const vt_backend *be, int64_t B, int64_t n, const float *factor,
                                const float *gout, const float *src, float *dst) {
  if (B * n <= 0) return;
  scale_rows_acc_kernel<<<vt_cuda_blocks(be, B * n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                          VT_STREAM(be)>>>(B, n, factor, gout, src, dst);
  VT_CUDA_LAUNCHED();
}

/* ---- L1 / MSE, cosine ---- */

__global__ void dist_forward_kernel(vt_dist_kind kind, int64_t n, const float *a, const float *b,
                                    float scale, float *out) {
  __shared__ double sh[32];
  double t = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    double d = (double)a[i] - b[i];
    t += kind == VT_DIST_L1 ? fabs(d) : d * d;
  }
  t = vt_block_sum_d(t, sh);
  if (threadIdx.x == 0) out[0] = (float)(scale * t);
}

static void cuda_dist_forward(const vt_backend *be, vt_dist_kind kind, int64_t n, const float *a,
                              const float *b, float scale, float *out) {
  dist_forward_kernel<<<1, 1024, 0, VT_STREAM(be)>>>(kind, n, a, b, scale, out);
  VT_CUDA_LAUNCHED();
}

__global__ void dist_backward_kernel(vt_dist_kind kind, int64_t n, const float *a, const float *b,
                                     const float *gout, float scale_a, float scale_b, float *da,
                                     float *db) {
  float g = gout[0];
  VT_GRID_STRIDE(i, n) {
    float d = a[i] - b[i];
    float f = kind == VT_DIST_L1 ? (float)((d > 0) - (d < 0)) : 2.0f * d;
    if (da) da[i] += g * scale_a * f;
    if (db) db[i] -= g * scale_b * f;
  }
}

static void cuda_dist_backward(const vt_backend *be, vt_dist_kind kind, int64_t n, const float *a,
                               const float *b, const float *gout, float scale_a, float scale_b,
                               float *da, float *db) {
  if (n <= 0) return;
  dist_backward_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                         VT_STREAM(be)>>>(kind, n, a, b, gout, scale_a, scale_b, da, db);
  VT_CUDA_LAUNCHED();
}

__global__ void cosine_rows_kernel(int64_t rows, int64_t dim, const float *a, const float *b,
                                   float eps, float *cos) {
  __shared__ double sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *x = a + r * dim, *y = b + r * dim;
    double xy = 0, xx = 0, yy = 0;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      xy += (double)x[j] * y[j];
      xx += (double)x[j] * x[j];
      yy += (double)y[j] * y[j];
    }
    xy = vt_block_sum_d(xy, sh);
    xx = vt_block_sum_d(xx, sh);
    yy = vt_block_sum_d(yy, sh);
    if (threadIdx.x == 0)
      cos[r] = (float)(xy / (fmax(sqrt(xx), (double)eps) * fmax(sqrt(yy), (double)eps)));
  }
}

__global__ void cosine_sum_kernel(int64_t rows, const float *cos, float scale, float *out) {
  __shared__ double sh[32];
  double s = 0;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) s += 1.0 - cos[r];
  s = vt_block_sum_d(s, sh);
  if (threadIdx.x == 0) out[0] = (float)(scale * s);
}

static void cuda_cosine_forward(const vt_backend *be, int64_t rows, int64_t dim, const float *a,
                                const float *b, float eps, float scale, float *cos, float *out) {
  if (rows > 0) {
    cosine_rows_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(rows, dim, a, b, eps, cos);
    VT_CUDA_LAUNCHED();
  }
  cosine_sum_kernel<<<1, 1024, 0, VT_STREAM(be)>>>(rows, cos, scale, out);
  VT_CUDA_LAUNCHED();
}

__global__ void cosine_backward_kernel(int64_t rows, int64_t dim, const float *a, const float *b,
                                       float eps, float scale, const float *cos, const float *gout,
                                       float *da, float *db) {
  __shared__ double sh[32];
  float g = -gout[0] * scale; /* d (1 - cos) = -d cos */
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *x = a + r * dim, *y = b + r * dim;
    double xx = 0, yy = 0;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      xx += (double)x[j] * x[j];
      yy += (double)y[j] * y[j];
    }
    xx = vt_block_sum_d(xx, sh);
    yy = vt_block_sum_d(yy, sh);
    double nx = sqrt(xx), ny = sqrt(yy), cx = fmax(nx, (double)eps), cy = fmax(ny, (double)eps);
    double c = cos[r];
    /* as the CPU (and PyTorch): the eps clamp is not differentiated */
    double kx = nx > 0 ? c / (cx * nx) : 0, ky = ny > 0 ? c / (cy * ny) : 0;
    for (int64_t j = threadIdx.x; j < dim; j += blockDim.x) {
      if (da) da[r * dim + j] += g * (float)(y[j] / (cx * cy) - kx * x[j]);
      if (db) db[r * dim + j] += g * (float)(x[j] / (cx * cy) - ky * y[j]);
    }
  }
}

static void cuda_cosine_backward(const vt_backend *be, int64_t rows, int64_t dim, const float *a,
                                 const float *b, float eps, float scale, const float *cos,
                                 const float *gout, float *da, float *db) {
  if (rows <= 0) return;
  cosine_backward_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(rows, dim, a, b, eps, scale,
                                                                       cos, gout, da, db);
  VT_CUDA_LAUNCHED();
}

static vt_loss_kernels make_table(void) {
  vt_loss_kernels t;
  memset(&t, 0, sizeof t);
  t.ce_forward = vt_cuda_ce_forward; /* cuda_ce.cu */
  t.ce_backward = vt_cuda_ce_backward;
  t.ratio_sum = cuda_ratio_sum;
  t.shift_labels = cuda_shift_labels;
  t.ctc_workspace = cuda_ctc_workspace;
  t.ctc_forward = cuda_ctc_forward;
  t.ctc_reduce = cuda_ctc_reduce;
  t.scale_rows_acc = cuda_scale_rows_acc;
  t.dist_forward = cuda_dist_forward;
  t.dist_backward = cuda_dist_backward;
  t.cosine_forward = cuda_cosine_forward;
  t.cosine_backward = cuda_cosine_backward;
  return t;
}

const vt_loss_kernels *vt_cuda_loss_table(void) {
  static const vt_loss_kernels t = make_table();
  return &t;
}
