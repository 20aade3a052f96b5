/* CUDA kernels of the conv family (autograd/kernels_conv.h): the CPU's scheme on the GPU --
 * im2col over chunks of output positions, then one GEMM (cuBLAS, through the backend's gemm)
 * per (sample, group, chunk). The adjoint col2im gathers: one thread per input element sums
 * the columns that read it, in the CPU's (ky, kx) order, so nothing needs atomics. */
#include "autograd/cuda/cuda_common.cuh"

extern "C" {
#include "autograd/kernels_conv.h"
}

static bool is_direct(const vt_conv_geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && g->ph == 0 && g->pw == 0 &&
         g->oh == g->h && g->ow == g->w;
}

/* col[r, q] = x[ci, iy, ix] for r = (ci, ky, kx) and output position p0 + q (0 outside). */
__global__ void im2col_kernel(vt_conv_geom g, const float *x, int64_t p0, int64_t np, float *col) {
  int64_t rows = g.cin / g.groups * g.kh * g.kw;
  VT_GRID_STRIDE(e, rows * np) {
    int64_t r = e / np, q = e % np;
    int64_t ci = r / (g.kh * g.kw), ky = r / g.kw % g.kh, kx = r % g.kw;
    int64_t p = p0 + q, oy = p / g.ow, ox = p % g.ow;
    int64_t iy = oy * g.sh - g.ph + ky * g.dh, ix = ox * g.sw - g.pw + kx * g.dw;
    col[e] = (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) ? x[(ci * g.h + iy) * g.w + ix] : 0.0f;
  }
}

/* dx[ci, iy, ix] += col[(ci, ky, kx), p - p0] over the (ky, kx) whose output position p lies in
 * the chunk; one thread per element of dx (one group of one sample). */
__global__ void col2im_kernel(vt_conv_geom g, const float *col, int64_t p0, int64_t np, float *dx) {
  int64_t cin_g = g.cin / g.groups;
  VT_GRID_STRIDE(e, cin_g * g.h * g.w) {
    int64_t ci = e / (g.h * g.w), iy = e / g.w % g.h, ix = e % g.w;
    float acc = dx[e];
    for (int64_t ky = 0; ky < g.kh; ky++) {
      int64_t ty = iy + g.ph - ky * g.dh;
      if (ty < 0 || ty % g.sh) continue;
      int64_t oy = ty / g.sh;
      if (oy >= g.oh) continue;
      for (int64_t kx = 0; kx < g.kw; kx++) {
        int64_t tx = ix + g.pw - kx * g.dw;
        if (tx < 0 || tx % g.sw) continue;
        int64_t ox = tx / g.sw;
        if (ox >= g.ow) continue;
        int64_t p = oy * g.ow + ox;
        if (p < p0 || p >= p0 + np) continue;
        acc += col[((ci * g.kh + ky) * g.kw + kx) * np + (p - p0)];
      }
    }
    dx[e] = acc;
  }
}

/* Row-major f32 C = alpha op(A) op(B) + beta C through the backend's GEMM (full FP32). */
static void sgemm(const vt_backend *be, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                  float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                  float *c, int64_t ldc) {
  be->gemm(be, VT_F32, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

static void im2col(const vt_backend *be, const vt_conv_geom *g, const float *x, int64_t p0,
                   int64_t np, float *col) {
  int64_t n = g->cin / g->groups * g->kh * g->kw * np;
  im2col_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0, VT_STREAM(be)>>>(
      *g, x, p0, np, col);
  VT_CUDA_LAUNCHED();
}

static void cuda_conv_forward(const vt_backend *be, const vt_conv_geom *g, const float *x,
                              const float *weight, float *y, bool accumulate, float *work) {
  vt_conv_sizes s = vt_conv_sizes_of(g);
  bool direct = is_direct(g);
  for (int64_t i = 0; i < g->n; i++)
    for (int64_t gr = 0; gr < g->groups; gr++) {
      const float *xg = x + (i * g->cin + gr * s.cin_g) * s.hw;
      const float *wg = weight + gr * s.cout_g * s.ck;
      float *yg = y + (i * g->cout + gr * s.cout_g) * s.ohw;
      for (int64_t p0 = 0; p0 < s.ohw; p0 += s.chunk) {
        int64_t np = s.ohw - p0 < s.chunk ? s.ohw - p0 : s.chunk;
        const float *b = direct ? xg + p0 : work;
        if (!direct) im2col(be, g, xg, p0, np, work);
        sgemm(be, false, false, s.cout_g, np, s.ck, 1.0f, wg, s.ck, b, direct ? s.ohw : np,
              accumulate ? 1.0f : 0.0f, yg + p0, s.ohw);
      }
    }
}

static void cuda_conv_backward_data(const vt_backend *be, const vt_conv_geom *g,
                                    const float *weight, const float *dy, float *dx, float *work) {
  vt_conv_sizes s = vt_conv_sizes_of(g);
  bool direct = is_direct(g);
  for (int64_t i = 0; i < g->n; i++)
    for (int64_t gr = 0; gr < g->groups; gr++) {
      float *dxg = dx + (i * g->cin + gr * s.cin_g) * s.hw;
      const float *wg = weight + gr * s.cout_g * s.ck;
      const float *dyg = dy + (i * g->cout + gr * s.cout_g) * s.ohw;
      for (int64_t p0 = 0; p0 < s.ohw; p0 += s.chunk) {
        int64_t np = s.ohw - p0 < s.chunk ? s.ohw - p0 : s.chunk;
        sgemm(be, true, false, s.ck, np, s.cout_g, 1.0f, wg, s.ck, dyg + p0, s.ohw,
              direct ? 1.0f : 0.0f, direct ? dxg + p0 : work, direct ? s.ohw : np);
        if (!direct) {
          int64_t n = s.cin_g * s.hw;
          col2im_kernel<<<vt_cuda_blocks(be, n, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                          VT_STREAM(be)>>>(*g, work, p0, np, dxg);
          VT_CUDA_LAUNCHED();
        }
      }
    }
}

static void cuda_conv_backward_weight(const vt_backend *be, const vt_conv_geom *g, const float *x,
                                      const float *dy, float *dweight, float *work) {
  vt_conv_sizes s = vt_conv_sizes_of(g);
  bool direct = is_direct(g);
  for (int64_t i = 0; i < g->n; i++)
    for (int64_t gr = 0; gr < g->groups; gr++) {
      const float *xg = x + (i * g->cin + gr * s.cin_g) * s.hw;
      float *dwg = dweight + gr * s.cout_g * s.ck;
      const float *dyg = dy + (i * g->cout + gr * s.cout_g) * s.ohw;
      for (int64_t p0 = 0; p0 < s.ohw; p0 += s.chunk) {
        int64_t np = s.ohw - p0 < s.chunk ? s.ohw - p0 : s.chunk;
        if (!direct) im2col(be, g, xg, p0, np, work);
        sgemm(be, false, true, s.cout_g, s.ck, np, 1.0f, dyg + p0, s.ohw, direct ? xg + p0 : work,
              direct ? s.ohw : np, 1.0f, dwg, s.ck);
      }
    }
}

__global__ void bias_add_kernel(int64_t n, int64_t c, int64_t s, const float *bias, float *y) {
  VT_GRID_STRIDE(i, n * c * s) y[i] += bias[i / s % c];
}

static void cuda_bias_add(const vt_backend *be, int64_t n, int64_t c, int64_t s, const float *bias,
                          float *y) {
  int64_t total = n * c * s;
  if (total <= 0) return;
  bias_add_kernel<<<vt_cuda_blocks(be, total, VT_CUDA_THREADS), VT_CUDA_THREADS, 0,
                    VT_STREAM(be)>>>(n, c, s, bias, y);
  VT_CUDA_LAUNCHED();
}

/* One block per channel, summed in double. */
__global__ void bias_backward_kernel(int64_t n, int64_t c, int64_t s, const float *dy, float *db) {
  __shared__ double sh[32];
  for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
    double acc = 0;
    for (int64_t q = threadIdx.x; q < n * s; q += blockDim.x)
      acc += dy[(q / s * c + ch) * s + q % s];
    acc = vt_block_sum_d(acc, sh);
    if (threadIdx.x == 0) db[ch] += (float)acc;
  }
}

static void cuda_bias_backward(const vt_backend *be, int64_t n, int64_t c, int64_t s,
                               const float *dy, float *db) {
  if (c <= 0) return;
  bias_backward_kernel<<<vt_cuda_grid(c), 256, 0, VT_STREAM(be)>>>(n, c, s, dy, db);
  VT_CUDA_LAUNCHED();
}

static vt_conv_kernels make_table(void) {
  vt_conv_kernels t;
  memset(&t, 0, sizeof t);
  t.conv_forward = cuda_conv_forward;
  t.conv_backward_data = cuda_conv_backward_data;
  t.conv_backward_weight = cuda_conv_backward_weight;
  t.bias_add = cuda_bias_add;
  t.bias_backward = cuda_bias_backward;
  return t;
}

const vt_conv_kernels *vt_cuda_conv_table(void) {
  static const vt_conv_kernels t = make_table();
  return &t;
}
