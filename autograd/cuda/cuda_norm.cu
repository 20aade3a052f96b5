/* CUDA kernels of the norm family (autograd/kernels_norm.h; GroupNorm and BatchNorm are in
 * cuda_chnorm.cu). Row statistics use one block per row (or per group / channel) and accumulate in
 * double like the CPU kernels; per-parameter gradients (dw, db) are column sums done by one thread
 * per column in row order, so every reduction is deterministic and none uses atomics. */
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_norm.h"
}

#define NT 256 /* threads of the row kernels */

/* ---- LayerNorm / RMSNorm ---- */

__global__ void layer_norm_kernel(int64_t rows, int64_t cols, bool vec, float eps, const float *x,
                                  const float *w, const float *b, float *y, float *mean,
                                  float *rstd) {
  __shared__ double sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *px = x + r * cols;
    float *py = y + r * cols;
    double s = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) s += px[j];
    double m = vt_block_sum_d(s, sh) / (double)cols;
    double ss = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      double d = px[j] - m;
      ss += d * d;
    }
    ss = vt_block_sum_d(ss, sh);
    float fm = (float)m, rs = (float)(1.0 / sqrt(ss / (double)cols + eps));
    if (threadIdx.x == 0) {
      mean[r] = fm;
      rstd[r] = rs;
    }
    auto out = [&](float xv, float wv, float bv) {
      float v = (xv - fm) * rs;
      if (w) v *= wv;
      if (b) v += bv;
      return v;
    };
    vt_for_vec(cols, vec, threadIdx.x, blockDim.x, [&](int64_t j, int n) {
      if (n == 1) {
        py[j] = out(px[j], w ? w[j] : 0.0f, b ? b[j] : 0.0f);
        return;
      }
      vt_f4 a = vt_ld4(px + j), ww = {}, bb = {}, o;
      if (w) ww = vt_ld4(w + j);
      if (b) bb = vt_ld4(b + j);
      for (int e = 0; e < 4; e++) o.f[e] = out(a.f[e], ww.f[e], bb.f[e]);
      vt_st4(py + j, o);
    });
  }
}

/* rms: mean is NULL and the row is not centred. */
__global__ void norm_dx_kernel(int64_t rows, int64_t cols, bool vec, const float *x, const float *w,
                               const float *mean, const float *rstd, const float *dy, float *dx) {
  __shared__ double sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *px = x + r * cols, *pd = dy + r * cols;
    float m = mean ? mean[r] : 0.0f, rs = rstd[r];
    double a = 0, bs = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
      float g = w ? pd[j] * w[j] : pd[j];
      a += g;
      bs += (double)g * ((px[j] - m) * rs);
    }
    a = mean ? vt_block_sum_d(a, sh) : 0.0;
    bs = vt_block_sum_d(bs, sh);
    float ma = (float)(a / (double)cols), mb = (float)(bs / (double)cols);
    float *pdx = dx + r * cols;
    auto grad = [&](float xv, float dv, float wv) {
      float g = w ? dv * wv : dv;
      return mean ? rs * (g - ma - (xv - m) * rs * mb) : rs * (g - xv * rs * mb);
    };
    vt_for_vec(cols, vec, threadIdx.x, blockDim.x, [&](int64_t j, int n) {
      if (n == 1) {
        pdx[j] += grad(px[j], pd[j], w ? w[j] : 0.0f);
        return;
      }
      vt_f4 a = vt_ld4(px + j), d = vt_ld4(pd + j), ww = {}, o = vt_ld4(pdx + j);
      if (w) ww = vt_ld4(w + j);
      for (int e = 0; e < 4; e++) o.f[e] += grad(a.f[e], d.f[e], ww.f[e]);
      vt_st4(pdx + j, o);
    });
  }
}

/* dw[j] += sum_r dy * xhat, db[j] += sum_r dy in two deterministic passes: the rows are cut
 * into ROW_SLICES fixed slices, one thread per (slice, column) sums its slice in row order
 * into part[slice, column, 2] (double), then one thread per column adds the slices in order.
 * The slices give the GPU enough threads (a 2048 x 896 RMSNorm has 896 columns). */
#define ROW_SLICES 64

__global__ void norm_dwdb_part_kernel(int64_t rows, int64_t cols, const float *x, const float *mean,
                                      const float *rstd, const float *dy, double *part) {
  int64_t j = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, sl = blockIdx.y;
  if (j >= cols) return;
  int64_t r0 = rows * sl / ROW_SLICES, r1 = rows * (sl + 1) / ROW_SLICES;
  double aw = 0, ab = 0;
  for (int64_t r = r0; r < r1; r++) {
    float d = dy[r * cols + j];
    float m = mean ? mean[r] : 0.0f;
    aw += (double)d * ((x[r * cols + j] - m) * rstd[r]);
    ab += d;
  }
  part[(sl * cols + j) * 2] = aw;
  part[(sl * cols + j) * 2 + 1] = ab;
}

__global__ void norm_dwdb_sum_kernel(int64_t cols, const double *part, float *dw, float *db) {
  VT_GRID_STRIDE(j, cols) {
    double aw = 0, ab = 0;
    for (int sl = 0; sl < ROW_SLICES; sl++) {
      aw += part[(sl * cols + j) * 2];
      ab += part[(sl * cols + j) * 2 + 1];
    }
    if (dw) dw[j] += (float)aw;
    if (db) db[j] += (float)ab;
  }
}

/* The instance's scratch of at least n doubles (grown, never shrunk; growing waits for the
 * work queued, since the old block may still be in use). */
double *vt_cuda_red_scratch(const vt_backend *be, size_t n) {
  vt_cuda_inst *st = vt_cuda_of(be);
  if (st->red_n < n) {
    VT_CUDA_CHECK(cudaStreamSynchronize(st->stream));
    if (st->red) VT_CUDA_CHECK(cudaFree(st->red));
    st->red = NULL;
    st->red_n = 0;
    if (cudaMalloc(&st->red, n * sizeof(double)) != cudaSuccess) {
      (void)cudaGetLastError();
      vt_cuda_die(__FILE__, __LINE__, "column sums", "out of device memory for partial sums");
    }
    st->red_n = n;
  }
  return st->red;
}

static void cuda_layer_norm(const vt_backend *be, int64_t rows, int64_t cols, float eps,
                            const float *x, const float *w, const float *b, float *y, float *mean,
                            float *rstd) {
  if (rows <= 0 || cols <= 0) return;
  bool vec = vt_cuda_rows_vec(cols, x, y, w) && vt_cuda_al16(b);
  layer_norm_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(rows, cols, vec, eps, x, w, b, y,
                                                                  mean, rstd);
  VT_CUDA_LAUNCHED();
}

static void norm_backward(const vt_backend *be, int64_t rows, int64_t cols, const float *x,
                          const float *w, const float *mean, const float *rstd, const float *dy,
                          float *dx, float *dw, float *db) {
  if (rows <= 0 || cols <= 0) return;
  if (dx) {
    bool vec = vt_cuda_rows_vec(cols, x, dx, w) && vt_cuda_al16(dy);
    norm_dx_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(rows, cols, vec, x, w, mean, rstd,
                                                                 dy, dx);
    VT_CUDA_LAUNCHED();
  }
  if (dw || db) {
    double *part = vt_cuda_red_scratch(be, (size_t)ROW_SLICES * (size_t)cols * 2);
    dim3 grid((unsigned)((cols + 127) / 128), ROW_SLICES);
    norm_dwdb_part_kernel<<<grid, 128, 0, VT_STREAM(be)>>>(rows, cols, x, mean, rstd, dy, part);
    VT_CUDA_LAUNCHED();
    norm_dwdb_sum_kernel<<<vt_cuda_blocks(be, cols, 128), 128, 0, VT_STREAM(be)>>>(cols, part, dw,
                                                                                   db);
    VT_CUDA_LAUNCHED();
  }
}

static void cuda_layer_norm_backward(const vt_backend *be, int64_t rows, int64_t cols,
                                     const float *x, const float *w, const float *mean,
                                     const float *rstd, const float *dy, float *dx, float *dw,
                                     float *db) {
  norm_backward(be, rows, cols, x, w, mean, rstd, dy, dx, dw, db);
}

__global__ void rms_norm_kernel(int64_t rows, int64_t cols, bool vec, float eps, const float *x,
                                const float *w, float *y, float *rstd) {
  __shared__ double sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *px = x + r * cols;
    float *py = y + r * cols;
    double ss = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) ss += (double)px[j] * px[j];
    ss = vt_block_sum_d(ss, sh);
    float rs = (float)(1.0 / sqrt(ss / (double)cols + eps));
    if (threadIdx.x == 0) rstd[r] = rs;
    vt_for_vec(cols, vec, threadIdx.x, blockDim.x, [&](int64_t j, int n) {
      if (n == 1) {
        py[j] = w ? w[j] * (px[j] * rs) : px[j] * rs;
        return;
      }
      vt_f4 a = vt_ld4(px + j), ww = {}, o;
      if (w) ww = vt_ld4(w + j);
      for (int e = 0; e < 4; e++) o.f[e] = w ? ww.f[e] * (a.f[e] * rs) : a.f[e] * rs;
      vt_st4(py + j, o);
    });
  }
}

static void cuda_rms_norm(const vt_backend *be, int64_t rows, int64_t cols, float eps,
                          const float *x, const float *w, float *y, float *rstd) {
  if (rows <= 0 || cols <= 0) return;
  rms_norm_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(
      rows, cols, vt_cuda_rows_vec(cols, x, y, w), eps, x, w, y, rstd);
  VT_CUDA_LAUNCHED();
}

static void cuda_rms_norm_backward(const vt_backend *be, int64_t rows, int64_t cols, const float *x,
                                   const float *w, const float *rstd, const float *dy, float *dx,
                                   float *dw) {
  norm_backward(be, rows, cols, x, w, NULL, rstd, dy, dx, dw, NULL);
}

/* ---- RoPE, dropout ---- */

/* One thread per rotated pair (b, h0, t, h1, k), k < d / 2. */
__global__ void rope_kernel(int64_t b, int64_t ho, int64_t t, int64_t hi, int64_t d, float theta,
                            const int32_t *pos, int64_t pos_bstride, const float *x, float *y,
                            bool inverse) {
  int64_t half = d / 2, n = b * ho * t * hi * half;
  VT_GRID_STRIDE(q, n) {
    int64_t k = q % half, r = q / half; /* r indexes (b, h0, t, h1) */
    int64_t ti = r / hi % t, bi = r / (hi * t * ho);
    float p = (float)pos[bi * pos_bstride + ti];
    float ang = p * vt_rope_inv_freq(theta, k, d);
    float cs = cosf(ang), sn = inverse ? -sinf(ang) : sinf(ang);
    const float *px = x + r * d;
    float *py = y + r * d;
    float x1 = px[k], x2 = px[k + half];
    float o1 = x1 * cs - x2 * sn, o2 = x2 * cs + x1 * sn;
    if (inverse) {
      py[k] += o1;
      py[k + half] += o2;
    } else {
      py[k] = o1;
      py[k + half] = o2;
    }
  }
}

static void cuda_rope(const vt_backend *be, int64_t b, int64_t ho, int64_t t, int64_t hi, int64_t d,
                      float theta, const int32_t *pos, int64_t pos_bstride, const float *x,
                      float *y, bool inverse) {
  int64_t n = b * ho * t * hi * (d / 2);
  if (n <= 0 || vt_cuda_rope_rows(be, b, ho, t, hi, d, theta, pos, pos_bstride, x, y, inverse))
    return; /* cuda_rows.cu: 4 pairs a thread */
  rope_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      b, ho, t, hi, d, theta, pos, pos_bstride, x, y, inverse);
  VT_CUDA_LAUNCHED();
}

__global__ void dropout_kernel(int64_t n, bool vec, float p, uint64_t seed, uint64_t offset,
                               const float *x, float *y, bool backward) {
  float scale = 1.0f / (1.0f - p);
  /* one element: y written, or (backward) added into */
  auto el = [&](int64_t i, float xv, float yv) {
    bool keep = vt_dropout_uniform(seed, offset + (uint64_t)i) >= p;
    if (backward) return keep ? yv + xv * scale : yv;
    return keep ? xv * scale : 0.0f;
  };
  vt_for_vec(n, vec, VT_GRID_LANE, VT_GRID_WIDTH, [&](int64_t i, int w) {
    if (w == 1) {
      y[i] = el(i, x[i], backward ? y[i] : 0.0f);
      return;
    }
    vt_f4 a = vt_ld4(x + i), o = {};
    if (backward) o = vt_ld4(y + i);
    for (int e = 0; e < 4; e++) o.f[e] = el(i + e, a.f[e], o.f[e]);
    vt_st4(y + i, o);
  });
}

static void cuda_dropout(const vt_backend *be, int64_t n, float p, uint64_t seed, uint64_t offset,
                         const float *x, float *y) {
  if (n <= 0) return;
  bool vec = vt_cuda_flat_vec(x, y, NULL, NULL);
  dropout_kernel<<<VT_VEC_BLOCKS(be, n, vec), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      n, vec, p, seed, offset, x, y, false);
  VT_CUDA_LAUNCHED();
}

static void cuda_dropout_backward(const vt_backend *be, int64_t n, float p, uint64_t seed,
                                  uint64_t offset, const float *dy, float *dx) {
  if (n <= 0) return;
  bool vec = vt_cuda_flat_vec(dy, dx, NULL, NULL);
  dropout_kernel<<<VT_VEC_BLOCKS(be, n, vec), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      n, vec, p, seed, offset, dy, dx, true);
  VT_CUDA_LAUNCHED();
}

/* ---- weight norm, VQ ---- */

__global__ void weight_norm_kernel(int64_t rows, int64_t cols, const float *g, const float *v,
                                   float *w, float *norm) {
  __shared__ double sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *pv = v + r * cols;
    double ss = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) ss += (double)pv[j] * pv[j];
    float nr = (float)sqrt(vt_block_sum_d(ss, sh));
    if (threadIdx.x == 0) norm[r] = nr;
    float sc = g[r] / nr;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) w[r * cols + j] = pv[j] * sc;
  }
}

__global__ void weight_norm_backward_kernel(int64_t rows, int64_t cols, const float *g,
                                            const float *v, const float *norm, const float *dw,
                                            float *dg, float *dv) {
  __shared__ double sh[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float *pv = v + r * cols, *pd = dw + r * cols;
    double dot = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) dot += (double)pd[j] * pv[j];
    dot = vt_block_sum_d(dot, sh);
    float nr = norm[r];
    if (dg && threadIdx.x == 0) dg[r] += (float)(dot / nr);
    if (dv) {
      float sc = g[r] / nr, proj = (float)(dot / ((double)nr * nr));
      for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        dv[r * cols + j] += sc * (pd[j] - pv[j] * proj);
    }
  }
}

static void cuda_weight_norm(const vt_backend *be, int64_t rows, int64_t cols, const float *g,
                             const float *v, float *w, float *norm) {
  if (rows <= 0) return;
  weight_norm_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(rows, cols, g, v, w, norm);
  VT_CUDA_LAUNCHED();
}

static void cuda_weight_norm_backward(const vt_backend *be, int64_t rows, int64_t cols,
                                      const float *g, const float *v, const float *norm,
                                      const float *dw, float *dg, float *dv) {
  if (rows <= 0) return;
  weight_norm_backward_kernel<<<vt_cuda_grid(rows), NT, 0, VT_STREAM(be)>>>(rows, cols, g, v, norm,
                                                                            dw, dg, dv);
  VT_CUDA_LAUNCHED();
}

/* One block per row: threads take codes, each distance summed over d in order with explicit
 * round-to-nearest operations (no FMA contraction), so distances equal the CPU's bit for bit
 * and the first minimum is the same code. */
__global__ void vq_kernel(int64_t n, int64_t k, int64_t d, const float *x, const float *codebook,
                          int32_t *idx, float *zq) {
  __shared__ float sd[NT];
  __shared__ int64_t si[NT];
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float *px = x + i * d;
    float best = INFINITY;
    int64_t bi = -1;
    for (int64_t c = threadIdx.x; c < k; c += blockDim.x) {
      const float *pc = codebook + c * d;
      float dist = 0;
      for (int64_t j = 0; j < d; j++) {
        float df = __fsub_rn(px[j], pc[j]);
        dist = __fadd_rn(dist, __fmul_rn(df, df));
      }
      if (dist < best) { /* as the CPU: the first distance below the running best */
        best = dist;
        bi = c;
      }
    }
    sd[threadIdx.x] = best;
    si[threadIdx.x] = bi;
    __syncthreads();
    for (int st = blockDim.x / 2; st > 0; st >>= 1) {
      if (threadIdx.x < st) {
        float d2 = sd[threadIdx.x + st];
        int64_t i2 = si[threadIdx.x + st];
        int64_t i1 = si[threadIdx.x];
        /* a found code beats none; the smaller distance wins, ties to the lower code */
        if (i2 >= 0 && (i1 < 0 || d2 < sd[threadIdx.x] || (d2 == sd[threadIdx.x] && i2 < i1))) {
          sd[threadIdx.x] = d2;
          si[threadIdx.x] = i2;
        }
      }
      __syncthreads();
    }
    int64_t win = si[0] < 0 ? 0 : si[0];
    if (threadIdx.x == 0) idx[i] = (int32_t)win;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) zq[i * d + j] = codebook[win * d + j];
    __syncthreads(); /* sd/si are rewritten for the next row */
  }
}

static void cuda_vq_nearest(const vt_backend *be, int64_t n, int64_t k, int64_t d, const float *x,
                            const float *codebook, int32_t *idx, float *zq) {
  if (n <= 0) return;
  vq_kernel<<<vt_cuda_grid(n), NT, 0, VT_STREAM(be)>>>(n, k, d, x, codebook, idx, zq);
  VT_CUDA_LAUNCHED();
}

static vt_norm_kernels make_table(void) {
  vt_norm_kernels t;
  memset(&t, 0, sizeof t);
  t.layer_norm = cuda_layer_norm;
  t.layer_norm_backward = cuda_layer_norm_backward;
  t.rms_norm = cuda_rms_norm;
  t.rms_norm_backward = cuda_rms_norm_backward;
  t.group_norm = vt_cuda_group_norm; /* cuda_chnorm.cu */
  t.group_norm_backward = vt_cuda_group_norm_backward;
  t.batch_norm = vt_cuda_batch_norm;
  t.batch_norm_backward = vt_cuda_batch_norm_backward;
  t.rope = cuda_rope;
  t.rope_qkv = vt_cuda_rope_qkv;
  t.rope_qkv_backward = vt_cuda_rope_qkv_backward;
  t.dropout = cuda_dropout;
  t.dropout_backward = cuda_dropout_backward;
  t.weight_norm = cuda_weight_norm;
  t.weight_norm_backward = cuda_weight_norm_backward;
  t.vq_nearest = cuda_vq_nearest;
  return t;
}

const vt_norm_kernels *vt_cuda_norm_table(void) {
  static const vt_norm_kernels t = make_table();
  return &t;
}
