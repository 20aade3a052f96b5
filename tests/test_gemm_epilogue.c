// ctest-labels: unit cuda
/* The GEMM epilogue interface (vt_backend.gemm_epilogue) and vt_linear, which uses it:
 *  - on the CPU, gemm_epilogue equals gemm (beta 0) followed by the bias add, and for
 *    VT_EPI_BIAS_GELU the tanh GELU of that with the sum in aux, bit for bit, for f32 and bf16
 *    inputs, every transpose, padded leading dimensions;
 *  - vt_linear on the CPU gives the values and gradients (x, w, b) of vt_add(vt_matmul(x, w^T),
 *    b) bit for bit, for 2-D and 3-D x, in f32 and in bf16 mixed precision where the CPU has
 *    bf16 GEMM units, and with a bias that needs no gradient;
 *  - on every GPU, gemm_epilogue against the CPU within the GEMM's tolerance (f32: 16 eps per
 *    summed term; bf16 inputs rounded identically on both sides, so the same), with the fast
 *    path (cuBLASLt's bias epilogue) and with VT_CUDA_SIMPLE=1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/cpu/cpu_math.h"
#include "autograd/rng.h"
#include "autograd/vt.h"
#include "tests/check.h"

static float *rnd(vt_rng *r, int64_t n) {
  float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) p[i] = 2.0f * vt_rng_uniform(r) - 1.0f;
  return p;
}

static void *as_in(const float *x, int64_t n, vt_dtype in) {
  if (in == VT_F32) {
    float *p = malloc(sizeof(float) * (size_t)n);
    memcpy(p, x, sizeof(float) * (size_t)n);
    return p;
  }
  uint16_t *p = malloc(sizeof(uint16_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) p[i] = vt_f32_to_bf16(x[i]);
  return p;
}

/* One shape on the CPU: the epilogue against gemm + bias (+ GELU). */
static void cpu_semantics(vt_rng *r, vt_dtype in, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                          int64_t pad) {
  const vt_backend *be = vt_backend_cpu();
  int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
  int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
  float *fa = rnd(r, na), *fb = rnd(r, nb), *bias = rnd(r, n);
  void *a = as_in(fa, na, in), *b = as_in(fb, nb, in);
  float *want = rnd(r, nc), *got = malloc(sizeof(float) * (size_t)nc);
  float *aux = malloc(sizeof(float) * (size_t)nc), *want_aux = malloc(sizeof(float) * (size_t)nc);
  for (int epi = VT_EPI_BIAS; epi <= VT_EPI_BIAS_GELU; epi++) {
    memcpy(got, want, sizeof(float) * (size_t)nc); /* padding must stay as it was */
    be->gemm(be, in, ta, tb, m, n, k, 1.0f, a, lda, 0, b, ldb, 0, 0.0f, want, ldc, 0, 1);
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++) {
        float s = want[i * ldc + j] + bias[j];
        want_aux[i * ldc + j] = s;
        want[i * ldc + j] = epi == VT_EPI_BIAS_GELU ? vt_unary_f(VT_UN_GELU_TANH, 0.0f, s) : s;
      }
    be->gemm_epilogue(be, in, ta, tb, m, n, k, a, lda, b, ldb, bias, (vt_gemm_epilogue)epi, got,
                      ldc, aux);
    bool same = true, same_aux = true;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < ldc; j++) {
        same &= memcmp(&got[i * ldc + j], &want[i * ldc + j], 4) == 0;
        if (epi == VT_EPI_BIAS_GELU && j < n)
          same_aux &= memcmp(&aux[i * ldc + j], &want_aux[i * ldc + j], 4) == 0;
      }
    CHECK_MSG(same && same_aux, "cpu %s %c%c %lldx%lldx%lld pad %lld epilogue %d differs",
              vt_dtype_name(in), ta ? 't' : 'n', tb ? 't' : 'n', (long long)m, (long long)n,
              (long long)k, (long long)pad, epi);
  }
  free(fa);
  free(fb);
  free(bias);
  free(a);
  free(b);
  free(want);
  free(got);
  free(aux);
  free(want_aux);
}

/* y = linear(x, w, b) and the sum(y * wt) gradients, fused or as matmul + add. */
static void linear_run(vt_ctx *ctx, vt_params *ps, vt_tensor *w, vt_tensor *b, int nd,
                       const int64_t *xs, const float *xh, const float *wt, bool fused, float **y,
                       float **dx, float **dw, float **db) {
  vt_tensor *x = vt_from_host(ctx, VT_F32, nd, xs, xh);
  x->requires_grad = true;
  vt_tensor *out =
      fused ? vt_linear(ctx, x, w, b) : vt_add(ctx, vt_matmul(ctx, x, w, false, true), b);
  vt_tensor *wt_t = vt_from_host(ctx, VT_F32, out->ndim, out->shape, wt);
  vt_tensor *loss = vt_sum(ctx, vt_mul(ctx, out, wt_t), VT_ALL_AXES, false);
  vt_params_zero_grad(ps);
  CHECK(vt_backward(ctx, loss));
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  int64_t ny = vt_numel(out), nx = vt_numel(x);
  *y = malloc(sizeof(float) * (size_t)ny);
  *dx = malloc(sizeof(float) * (size_t)nx);
  *dw = malloc(sizeof(float) * (size_t)vt_numel(w));
  *db = malloc(sizeof(float) * (size_t)vt_numel(b));
  vt_to_host(ctx, out, *y);
  vt_buf_to_host(vt_ctx_backend(ctx), *dx, x->grad, sizeof(float) * (size_t)nx);
  char err[256];
  CHECK(vt_param_grad_read(ps, w, *dw, err, sizeof err) == 0);
  if (b->requires_grad)
    CHECK(vt_param_grad_read(ps, b, *db, err, sizeof err) == 0);
  else
    memset(*db, 0, sizeof(float) * (size_t)vt_numel(b));
  vt_ctx_reset(ctx);
}

static void linear_bits(vt_rng *r, bool bf16, bool bias_grad, int nd, const int64_t *xs) {
  char err[256];
  vt_params ps;
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  int64_t k = xs[nd - 1], n = 37;
  vt_tensor *w = vt_params_add(&ps, "w", VT_F32, 2, (int64_t[]){n, k}, err, sizeof err);
  vt_tensor *b = vt_params_add(&ps, "b", VT_F32, 1, (int64_t[]){n}, err, sizeof err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0 &&
        vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  if (!bias_grad) vt_params_set_trainable(&ps, "b", false);
  float *wh = rnd(r, n * k), *bh = rnd(r, n);
  vt_param_write_f32(&ps, w, wh, err, sizeof err);
  vt_param_write_f32(&ps, b, bh, err, sizeof err);
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.backend = ps.be}, NULL);
  if (bf16) {
    char e2[256];
    if (vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, e2, sizeof e2) ||
        vt_params_enable_lowp(&ps, VT_BF16, e2, sizeof e2)) {
      printf("linear in bf16: not run (%s)\n", e2);
      vt_ctx_free(ctx);
      vt_params_free(&ps);
      free(wh);
      free(bh);
      return;
    }
  }
  int64_t nx = vt_shape_numel(nd, xs), ny = nx / k * n;
  float *xh = rnd(r, nx), *wt = rnd(r, ny);
  float *y[2], *dx[2], *dw[2], *db[2];
  for (int f = 0; f < 2; f++)
    linear_run(ctx, &ps, w, b, nd, xs, xh, wt, f == 1, &y[f], &dx[f], &dw[f], &db[f]);
  CHECK_MSG(!memcmp(y[0], y[1], sizeof(float) * (size_t)ny) &&
                !memcmp(dx[0], dx[1], sizeof(float) * (size_t)nx) &&
                !memcmp(dw[0], dw[1], sizeof(float) * (size_t)(n * k)) &&
                !memcmp(db[0], db[1], sizeof(float) * (size_t)n),
            "vt_linear (%dd x%s%s) differs from matmul + add", nd, bf16 ? ", bf16" : "",
            bias_grad ? "" : ", frozen bias");
  for (int f = 0; f < 2; f++) {
    free(y[f]);
    free(dx[f]);
    free(dw[f]);
    free(db[f]);
  }
  free(xh);
  free(wt);
  free(wh);
  free(bh);
  vt_ctx_free(ctx);
  vt_params_free(&ps);
}

/* The GPU's epilogue against the CPU's on the same inputs. */
static void gpu_vs_cpu(const vt_backend *gpu, vt_rng *r, vt_dtype in, bool ta, bool tb, int64_t m,
                       int64_t n, int64_t k) {
  const vt_backend *cpu = vt_backend_cpu();
  int64_t lda = ta ? m : k, ldb = tb ? k : n, ldc = n, na = m * k, nb = k * n, nc = m * n;
  size_t es = vt_dtype_size(in);
  float *fa = rnd(r, na), *fb = rnd(r, nb), *bias = rnd(r, n);
  void *a = as_in(fa, na, in), *b = as_in(fb, nb, in);
  float *want = malloc(4 * (size_t)nc), *waux = malloc(4 * (size_t)nc);
  float *got = malloc(4 * (size_t)nc), *gaux = malloc(4 * (size_t)nc);
  void *da = vt_buf_alloc(gpu, es * (size_t)na), *dbuf = vt_buf_alloc(gpu, es * (size_t)nb);
  float *dbias = vt_buf_alloc(gpu, 4 * (size_t)n), *dc = vt_buf_alloc(gpu, 4 * (size_t)nc);
  float *daux = vt_buf_alloc(gpu, 4 * (size_t)nc);
  vt_buf_from_host(gpu, da, a, es * (size_t)na);
  vt_buf_from_host(gpu, dbuf, b, es * (size_t)nb);
  vt_buf_from_host(gpu, dbias, bias, 4 * (size_t)n);
  double tol = 16 * 0x1.0p-23 * (double)(k + 1);
  for (int simple = 0; simple < 2; simple++) {
    if (simple) setenv("VT_CUDA_SIMPLE", "1", 1);
    for (int epi = VT_EPI_BIAS; epi <= VT_EPI_BIAS_GELU; epi++) {
      cpu->gemm_epilogue(cpu, in, ta, tb, m, n, k, a, lda, b, ldb, bias, (vt_gemm_epilogue)epi,
                         want, ldc, waux);
      gpu->gemm_epilogue(gpu, in, ta, tb, m, n, k, da, lda, dbuf, ldb, dbias, (vt_gemm_epilogue)epi,
                         dc, ldc, daux);
      vt_buf_to_host(gpu, got, dc, 4 * (size_t)nc);
      vt_buf_to_host(gpu, gaux, daux, 4 * (size_t)nc);
      int bad = 0;
      for (int64_t i = 0; i < nc; i++) {
        bad += !(fabs(got[i] - want[i]) <= tol * (1 + fabs(want[i])));
        if (epi == VT_EPI_BIAS_GELU) bad += !(fabs(gaux[i] - waux[i]) <= tol * (1 + fabs(waux[i])));
      }
      CHECK_MSG(bad == 0, "%s: %s %c%c %lldx%lldx%lld epilogue %d%s: %d elements off", gpu->name,
                vt_dtype_name(in), ta ? 't' : 'n', tb ? 't' : 'n', (long long)m, (long long)n,
                (long long)k, epi, simple ? " (VT_CUDA_SIMPLE)" : "", bad);
    }
    if (simple) unsetenv("VT_CUDA_SIMPLE");
  }
  vt_buf_free(gpu, da);
  vt_buf_free(gpu, dbuf);
  vt_buf_free(gpu, dbias);
  vt_buf_free(gpu, dc);
  vt_buf_free(gpu, daux);
  free(fa);
  free(fb);
  free(bias);
  free(a);
  free(b);
  free(want);
  free(waux);
  free(got);
  free(gaux);
}

int main(void) {
  vt_rng r;
  vt_rng_seed(&r, 5);
  for (int in = 0; in < 2; in++)
    for (int t = 0; t < 4; t++) {
      cpu_semantics(&r, in ? VT_BF16 : VT_F32, t & 1, t & 2, 17, 23, 29, 0);
      cpu_semantics(&r, in ? VT_BF16 : VT_F32, t & 1, t & 2, 65, 40, 8, 3);
    }
  linear_bits(&r, false, true, 2, (int64_t[]){33, 24});
  linear_bits(&r, false, true, 3, (int64_t[]){3, 11, 24});
  linear_bits(&r, false, false, 3, (int64_t[]){2, 7, 16});
  linear_bits(&r, true, true, 3, (int64_t[]){3, 11, 24});
  int gpus = vt_cuda_device_count();
  for (int g = 0; g < gpus; g++) {
    vt_backend *be = vt_backend_cuda(g, NULL);
    CHECK(be && be->gemm_epilogue);
    if (!be) continue;
    for (int in = 0; in < 2; in++)
      for (int t = 0; t < 4; t++) {
        gpu_vs_cpu(be, &r, in ? VT_BF16 : VT_F32, t & 1, t & 2, 64, 96, 72);
        gpu_vs_cpu(be, &r, in ? VT_BF16 : VT_F32, t & 1, t & 2, 33, 17, 29);
      }
    vt_backend_free(be);
  }
  if (!gpus) printf("cuda: not run (no GPU)\n");
  return vt_test_finish("test_gemm_epilogue");
}
