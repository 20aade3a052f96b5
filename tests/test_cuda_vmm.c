// ctest-labels: unit cuda
/* Sharded f32 masters released through the backend (release_range / commit_range), with one
 * rank and a shard given by hand: a store of two GEMM weights and a norm keeps a quarter of one
 * weight and half of the other. On a GPU with virtual memory management (cuda_vmm.cu) the
 * device's free memory (cudaMemGetInfo) rises by the whole 2 MiB chunks between the kept
 * values, exactly, and falls back when unshard maps them again (zeros); with VT_CUDA_NO_VMM=1
 * nothing is released and the released values read NaN instead. In every case reads of the
 * sharded weights are refused (vt_param_read_f32, an f32 op), a bf16 forward and backward that
 * reads only the copies runs while they are released, and after the values are loaded back a
 * training step gives the same bits as a store that was never sharded; a second shard releases
 * again. The CPU (pages, madvise: mincore finds none resident) runs the same here; the GPU part
 * skips (77) without a GPU. */
#define _DEFAULT_SOURCE /* mincore */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/testutil.h"
#ifdef VT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* A [R, C] (32 MiB of f32), then the norm [C] (16 KiB), then B [R / 2, C] (16 MiB): offsets
 * 0, 8 Mi and 8 Mi + 4 Ki values. A keeps its first 1 Mi values, B its second half. */
enum { R = 2048, C = 4096, ROWS = 8 };
#define MIB ((size_t)1 << 20)
#define A_N ((int64_t)R * C)
#define B_N ((int64_t)R / 2 * C)
#define A_KEEP ((int64_t)1 << 20)

/* Released on a GPU (2 MiB chunks from a chunk-aligned base; the buffer is 48 MiB + 16 KiB):
 * A's values [1 Mi, 8 Mi) are bytes [4, 32) MiB, chunks 2..15 (14); B's first half is bytes
 * [32 MiB + 16 KiB, 40 MiB + 16 KiB), whole chunks 17..19 (3); the chunks with the norm and
 * with B's kept half stay. */
#define GPU_RELEASED (17 * 2 * MIB)

typedef struct {
  vt_params ps;
  vt_tensor *a, *norm, *b;
} store;

static float *g_a, *g_norm, *g_b, *g_x; /* the initial values and the input, on the host */

static void store_init(store *s, const vt_backend *be) {
  char err[512];
  vt_params_init_backend(&s->ps, be);
  s->a = vt_params_add(&s->ps, "w.a", VT_F32, 2, (int64_t[]){R, C}, err, sizeof err);
  s->norm = vt_params_add(&s->ps, "w.norm", VT_F32, 1, (int64_t[]){C}, err, sizeof err);
  s->b = vt_params_add(&s->ps, "w.b", VT_F32, 2, (int64_t[]){R / 2, C}, err, sizeof err);
  CHECK(s->a && s->norm && s->b);
  CHECK_MSG(!vt_params_alloc(&s->ps, err, sizeof err), "%s", err);
  CHECK(!vt_param_write_f32(&s->ps, s->a, g_a, err, sizeof err));
  CHECK(!vt_param_write_f32(&s->ps, s->norm, g_norm, err, sizeof err));
  CHECK(!vt_param_write_f32(&s->ps, s->b, g_b, err, sizeof err));
  CHECK_MSG(!vt_params_enable_lowp(&s->ps, VT_BF16, err, sizeof err), "%s", err);
}

/* loss = mean((x * norm) A^T squared) + mean(x B^T); false when the ctx refused (err). */
static bool forward_backward(vt_ctx *ctx, store *s, float *loss, char *err, size_t n) {
  vt_tensor *x = vt_from_host(ctx, VT_F32, 2, (int64_t[]){ROWS, C}, g_x);
  vt_tensor *h = vt_matmul(ctx, vt_mul(ctx, x, s->norm), s->a, false, true);
  vt_tensor *l = vt_add(ctx, vt_mean(ctx, vt_mul(ctx, h, h), VT_ALL_AXES, false),
                        vt_mean(ctx, vt_matmul(ctx, x, s->b, false, true), VT_ALL_AXES, false));
  vt_params_zero_grad(&s->ps);
  bool ok = !vt_ctx_failed(ctx) && vt_backward(ctx, l);
  if (ok) *loss = vt_item(ctx, l);
  snprintf(err, n, "%s", ok ? "" : vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
  return ok;
}

/* One SGD step in f32 over every parameter: w -= 0.5 grad. */
static bool sgd_step(vt_ctx *ctx, store *s) {
  float loss;
  char err[1024];
  if (!forward_backward(ctx, s, &loss, err, sizeof err)) {
    fprintf(stderr, "step: %s\n", err);
    return false;
  }
  const vt_backend *be = s->ps.be;
  for (int i = 0; i < s->ps.n; i++) {
    vt_tensor *t = &s->ps.items[i]->t;
    be->axpy(be, vt_numel(t), -0.5f, t->grad, t->data);
  }
  vt_backend_sync(be);
  return isfinite(loss);
}

/* A bf16 forward and backward (GEMMs read the copies): the loss and the norm's gradient, whose
 * backward reads A through its copy. False when the device has no bf16 GEMM (err says why). */
static bool bf16_pass(vt_ctx *ctx, store *s, float *loss, float *dnorm, char *err, size_t n) {
  char kernel[256];
  if (vt_ctx_set_gemm_dtype(ctx, VT_BF16, kernel, sizeof kernel, err, n)) return false;
  bool ok =
      forward_backward(ctx, s, loss, err, n) && !vt_param_grad_read(&s->ps, s->norm, dnorm, err, n);
  vt_ctx_set_gemm_dtype(ctx, VT_F32, kernel, sizeof kernel, err, n);
  return ok;
}

/* Free device memory in bytes (0 on the CPU). */
static double device_free(const vt_backend *be) {
  vt_backend_sync(be);
#ifdef VT_HAVE_CUDA
  size_t fr = 0, total = 0;
  if (be->device.type == VT_DEV_CUDA && cudaMemGetInfo(&fr, &total) == cudaSuccess)
    return (double)fr;
#endif
  return 0;
}

/* Resident pages of [p, p + bytes) (CPU). */
static long resident(const void *p, size_t bytes) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = ((uintptr_t)p + page - 1) / page * page, b = ((uintptr_t)p + bytes) / page * page;
  if (b <= a) return 0;
  size_t n = (b - a) / page;
  unsigned char *v = malloc(n);
  long r = 0;
  if (v && !mincore((void *)a, b - a, v))
    for (size_t i = 0; i < n; i++) r += v[i] & 1;
  else
    r = -1;
  free(v);
  return r;
}

static int shard(store *s) {
  char err[512];
  int64_t lo[3] = {0, 0, B_N / 2}, hi[3] = {A_KEEP, C, B_N};
  int rc = vt_params_shard_masters(&s->ps, lo, hi, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  return rc;
}

/* f32 values [off, off + n) of the store's buffer, raw (no masters check). */
static void raw_read(const store *s, size_t off, float *host, size_t n) {
  vt_buf_to_host(s->ps.be, host, (const float *)s->ps.data[VT_F32] + off, n * sizeof(float));
}

/* released: the bytes the device gives back at the shard (GPU; CPU: pages, checked with
 * mincore); nan: whether released values read NaN (no VMM) rather than being unmapped. */
static void run(const char *what, const vt_backend *be, double released, bool nan) {
  printf("%s:\n", what);
  char err[1024];
  store s, ref;
  store_init(&s, be);
  store_init(&ref, be);
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.backend = be, .arena_bytes = 64 << 20}, NULL);
  CHECK(ctx != NULL);
  /* everything that allocates on first use (the arena, cuBLAS workspaces, kernels loaded
   * lazily, the NaN fill) before free memory is measured */
  float loss, ref_loss, *dnorm = malloc(sizeof(float) * C), *ref_dnorm = malloc(sizeof(float) * C);
  bool bf16 = bf16_pass(ctx, &ref, &ref_loss, ref_dnorm, err, sizeof err);
  if (!bf16) printf("  (no bf16 GEMM here: %s)\n", err);
  CHECK(forward_backward(ctx, &ref, &loss, err, sizeof err));
  float *scratch = vt_buf_alloc(be, MIB);
  vt_buf_fill_f32(be, scratch, 1024, NAN);
  vt_buf_fill_f32(be, scratch, 1024, 0.0f);
  vt_buf_free(be, scratch);
  double free0 = device_free(be);
  if (shard(&s)) return;
  double free1 = device_free(be);
  bool gpu = be->device.type == VT_DEV_CUDA;
  if (gpu)
    printf("  shard: free device memory %+.3f MiB (expected %+.3f)\n", (free1 - free0) / MIB,
           released / MIB);
  /* within a chunk (the driver's page tables may move a little) */
  CHECK_MSG(fabs(free1 - free0 - released) < 2 * MIB, "freed %.0f bytes, expected %.0f",
            free1 - free0, released);
  if (!gpu) /* A's released values: no page resident (B's: its first half) */
    CHECK(resident((float *)s.a->data + A_KEEP, (size_t)(A_N - A_KEEP) * 4) == 0 &&
          resident(s.b->data, (size_t)B_N / 2 * 4) == 0 && resident(s.norm->data, C * 4) > 0);

  /* reads of released values are refused: the host read, an op reading f32 values */
  float *host = malloc(sizeof(float) * A_N);
  CHECK(vt_param_read_f32(&s.ps, s.a, host, err, sizeof err) == -1 && strstr(err, "w.a"));
  CHECK(vt_param_read_f32(&s.ps, s.b, host, err, sizeof err) == -1 && strstr(err, "w.b"));
  CHECK(vt_param_read_f32(&s.ps, s.norm, host, err, sizeof err) == 0 &&
        !memcmp(host, g_norm, C * sizeof(float)));
  CHECK(!forward_backward(ctx, &s, &loss, err, sizeof err) && strstr(err, "w.a") &&
        strstr(err, "shard"));
  if (nan) { /* no VMM: the values are still there, as NaN */
    raw_read(&s, (size_t)A_KEEP, host, 4);
    CHECK(isnan(host[0]) && isnan(host[3]));
  }
  /* a bf16 forward and backward reads the copies only, never the released memory (on the CPU
   * the released pages read as zeros, here NaN without VMM): the same bits as the unsharded
   * store's */
  if (bf16) {
    bool ok = bf16_pass(ctx, &s, &loss, dnorm, err, sizeof err);
    CHECK_MSG(ok && isfinite(loss), "%s", err);
    CHECK(loss == ref_loss && !memcmp(dnorm, ref_dnorm, sizeof(float) * C));
  }

  /* unshard takes the memory back (zeros), a load writes every value, then one step equals
   * the step of the store that was never sharded, bit for bit */
  CHECK_MSG(!vt_params_unshard_masters(&s.ps, err, sizeof err), "%s", err);
  double free2 = device_free(be);
  if (gpu) printf("  unshard: free device memory %+.3f MiB\n", (free2 - free1) / MIB);
  CHECK(fabs(free2 - free0) < 2 * MIB);
  raw_read(&s, (size_t)A_N / 2, host, 4); /* values of A in a released page or chunk */
  CHECK(nan ? isnan(host[0]) && isnan(host[3]) : host[0] == 0 && host[3] == 0);
  CHECK(!vt_param_write_f32(&s.ps, s.a, g_a, err, sizeof err));
  CHECK(!vt_param_write_f32(&s.ps, s.b, g_b, err, sizeof err));
  CHECK(sgd_step(ctx, &s) && sgd_step(ctx, &ref));
  float *got = malloc(sizeof(float) * A_N);
  bool same = true, moved = false;
  for (int i = 0; i < 3; i++) {
    vt_tensor *t = &s.ps.items[i]->t, *u = &ref.ps.items[i]->t;
    size_t n = (size_t)vt_numel(t);
    CHECK(!vt_param_read_f32(&s.ps, t, got, err, sizeof err));
    CHECK(!vt_param_read_f32(&ref.ps, u, host, err, sizeof err));
    same &= !memcmp(got, host, n * sizeof(float));
    const float *init = i == 0 ? g_a : i == 1 ? g_norm : g_b;
    moved |= memcmp(got, init, n * sizeof(float)) != 0;
  }
  CHECK_MSG(same && moved, "after a step: same bits %d, weights moved %d", same, moved);

  /* and shards again (a restore's reshard) */
  free0 = device_free(be);
  if (!shard(&s)) CHECK(fabs(device_free(be) - free0 - released) < 2 * MIB);
  free(host);
  free(dnorm);
  free(ref_dnorm);
  free(got);
  vt_ctx_free(ctx);
  vt_params_free(&s.ps);
  vt_params_free(&ref.ps);
}

int main(void) {
  g_a = malloc(sizeof(float) * A_N);
  g_b = malloc(sizeof(float) * B_N);
  g_norm = malloc(sizeof(float) * C);
  g_x = malloc(sizeof(float) * ROWS * C);
  vt_rng r;
  vt_rng_seed(&r, 14);
  vt_test_fill_uniform(&r, g_a, (long)A_N, -0.02f, 0.02f);
  vt_test_fill_uniform(&r, g_b, (long)B_N, -0.02f, 0.02f);
  vt_test_fill_uniform(&r, g_norm, C, 0.5f, 1.5f);
  vt_test_fill_uniform(&r, g_x, ROWS * C, -1, 1);
  run("cpu (pages)", vt_backend_cpu(), 0, false);
  int rc = 77;
  const char *why = NULL;
  vt_backend *be = vt_backend_cuda(0, &why);
  if (be) {
    run("cuda:0 (VMM chunks)", be, GPU_RELEASED, false);
    setenv("VT_CUDA_NO_VMM", "1", 1);
    run("cuda:0 (VT_CUDA_NO_VMM=1: NaN)", be, 0, true);
    unsetenv("VT_CUDA_NO_VMM");
    vt_backend_free(be);
    rc = 0;
  } else {
    printf("no GPU (%s): the CUDA part skips\n", why ? why : "?");
  }
  free(g_a), free(g_b), free(g_norm), free(g_x);
  int f = vt_test_finish("test_cuda_vmm");
  return f ? f : rc;
}
