/* Fused (flash-style) attention against the unfused formula softmax(q k^T / sqrt(d) + mask) v
 * built from matmul, scale, add and softmax ops: causal, batch 1, 2 heads, T = 512, 2048,
 * 8192, head dim 64 and 128, forward and forward+backward.
 * Each measurement runs in a forked child so that its peak RSS is its own; the step
 * arena's high-water mark is printed too. The unfused run is skipped when its T x T tensors
 * would take more than half of the physical memory.
 * Usage: bench_attention [heads] [max_T]   (default 2, 8192; OMP_NUM_THREADS sets threads) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "autograd/ops_attn.h"
#include "autograd/vt.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static long rss_kib(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

typedef struct {
  double fwd_ms, step_ms;
  size_t arena;
} result;

static vt_tensor *unfused(vt_ctx *ctx, vt_tensor *q, vt_tensor *k, vt_tensor *v, vt_tensor *mask,
                          float scale) {
  vt_tensor *s = vt_scale(ctx, vt_matmul(ctx, q, k, false, true), scale);
  return vt_matmul(ctx, vt_softmax(ctx, vt_add(ctx, s, mask)), v, false, false);
}

/* Runs in the child: best of reps of forward, and of forward + backward. */
static int run(bool fused, int64_t H, int64_t T, int64_t D, result *res) {
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, NULL);
  if (!ctx) return 1;
  int64_t shape[4] = {1, H, T, D};
  size_t n = (size_t)(H * T * D);
  float *host = malloc(n * sizeof(float)), *m = NULL;
  vt_rng r;
  vt_rng_seed(&r, 1);
  for (size_t i = 0; i < n; i++) host[i] = 2.0f * vt_rng_uniform(&r) - 1.0f;
  if (!fused) {
    m = malloc((size_t)(T * T) * sizeof(float));
    for (int64_t i = 0; i < T; i++)
      for (int64_t j = 0; j < T; j++) m[i * T + j] = j <= i ? 0.0f : -INFINITY;
  }
  vt_attn_opts o = {.mask = VT_ATTN_CAUSAL};
  float scale = 1.0f / sqrtf((float)D);
  int reps = T <= 512 ? 5 : T <= 2048 ? 2 : 1, rc = 0;
  res->fwd_ms = res->step_ms = 1e30;
  for (int pass = 0; pass < 2 && !rc; pass++) { /* pass 0: forward only, no grad */
    for (int rep = 0; rep <= reps; rep++) {     /* rep 0 warms up (skipped for the largest) */
      if (rep == 0 && T > 2048) continue;
      /* each rep is one step: inputs in a rewound arena, so the high-water is one step's */
      vt_ctx_reset(ctx);
      vt_set_grad_enabled(ctx, pass == 1);
      vt_tensor *q = vt_from_host(ctx, VT_F32, 4, shape, host);
      vt_tensor *k = vt_from_host(ctx, VT_F32, 4, shape, host);
      vt_tensor *v = vt_from_host(ctx, VT_F32, 4, shape, host);
      vt_tensor *mask = m ? vt_from_host(ctx, VT_F32, 2, (int64_t[]){T, T}, m) : NULL;
      vt_requires_grad(ctx, q);
      vt_requires_grad(ctx, k);
      vt_requires_grad(ctx, v);
      double t0 = now_ms();
      vt_tensor *out = fused ? vt_attention(ctx, q, k, v, &o) : unfused(ctx, q, k, v, mask, scale);
      if (pass == 1) vt_backward(ctx, vt_sum(ctx, out, VT_ALL_AXES, false));
      double dt = now_ms() - t0;
      if (vt_ctx_failed(ctx)) {
        fprintf(stderr, "failed: %s\n", vt_ctx_error(ctx));
        rc = 1;
        break;
      }
      if (rep > 0 || T > 2048) {
        double *best = pass ? &res->step_ms : &res->fwd_ms;
        if (dt < *best) *best = dt;
      }
    }
  }
  free(host);
  free(m);
  res->arena = vt_ctx_arena_high_water(ctx);
  vt_ctx_free(ctx);
  return rc;
}

/* Forks, runs, and collects the result and the child's peak RSS growth through a pipe. */
static int measure(bool fused, int64_t H, int64_t T, int64_t D, result *res, long *peak_kib) {
  int fd[2];
  if (pipe(fd)) return 1;
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 1;
  if (pid == 0) {
    close(fd[0]);
    long base = rss_kib();
    result r = {0};
    int rc = run(fused, H, T, D, &r);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    long delta = ru.ru_maxrss - base;
    if (write(fd[1], &r, sizeof r) != (ssize_t)sizeof r ||
        write(fd[1], &delta, sizeof delta) != (ssize_t)sizeof delta)
      rc = 1;
    _exit(rc);
  }
  close(fd[1]);
  int status = 0;
  ssize_t got = read(fd[0], res, sizeof *res);
  got += read(fd[0], peak_kib, sizeof *peak_kib);
  close(fd[0]);
  waitpid(pid, &status, 0);
  return got == (ssize_t)(sizeof *res + sizeof *peak_kib) && WIFEXITED(status) &&
                 WEXITSTATUS(status) == 0
             ? 0
             : 1;
}

int main(int argc, char **argv) {
  int64_t H = argc > 1 ? atoll(argv[1]) : 2, max_t = argc > 2 ? atoll(argv[2]) : 8192;
  const int64_t Ts[3] = {512, 2048, 8192}, Ds[2] = {64, 128};
  double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
  const char *thr = getenv("OMP_NUM_THREADS");
  printf("attention, causal, batch 1, %lld heads, f32, %s threads\n", (long long)H,
         thr ? thr : "default");
  printf("GFLOP/s count the visible (causal) half: forward 2 matmuls, backward 5 more\n");
  printf("peak: step-arena high-water / child's peak RSS growth\n\n");
  printf("%6s %4s %-8s %10s %9s %10s %9s %12s %12s\n", "T", "D", "impl", "fwd ms", "GFLOP/s",
         "fwd+bwd ms", "GFLOP/s", "arena MiB", "RSS MiB");
  for (int ti = 0; ti < 3; ti++)
    for (int di = 0; di < 2; di++) {
      int64_t T = Ts[ti], D = Ds[di];
      if (T > max_t) continue;
      double flop = 2.0 * 2.0 * (double)H * (double)T * (double)(T + 1) / 2.0 * (double)D;
      for (int f = 1; f >= 0; f--) {
        /* unfused: ~5 T x T tensors forward (scores, scaled, masked, softmax, mask) and 4
         * gradients of them backward */
        double need = 9.0 * (double)H * (double)T * (double)T * 4.0;
        if (!f && need > phys / 2) {
          printf("%6lld %4lld %-8s skipped: needs ~%.1f GiB of T x T tensors, more than half of"
                 " the %.1f GiB here\n",
                 (long long)T, (long long)D, "unfused", need / (1 << 30), phys / (1 << 30));
          continue;
        }
        result r;
        long peak = 0;
        if (measure(f, H, T, D, &r, &peak)) {
          printf("%6lld %4lld %-8s failed\n", (long long)T, (long long)D, f ? "fused" : "unfused");
          continue;
        }
        printf("%6lld %4lld %-8s %10.2f %9.1f %10.2f %9.1f %12.1f %12.1f\n", (long long)T,
               (long long)D, f ? "fused" : "unfused", r.fwd_ms, flop / r.fwd_ms * 1e-6, r.step_ms,
               3.5 * flop / r.step_ms * 1e-6, (double)r.arena / (1 << 20), (double)peak / 1024.0);
      }
    }
  return 0;
}
