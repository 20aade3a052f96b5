/* Data-parallel figures on local CPU ranks, all in one run (mpirun -np 2; bench/run_dist.sh):
 *  1. MPI all-reduce, reduce-scatter and all-gather bandwidth through the collective
 *     interface, 1 MB to 256 MB, and the all-gather of the same values as bf16 (half the bytes:
 *     the sharded masters' gather): algorithm bandwidth (bytes / time) and bus bandwidth
 *     (all-reduce x 2(n-1)/n, the others x (n-1)/n, as nccl-tests reports them);
 *  2. the step time of the Qwen2 bench model (bench_qwen2.h's CPU shape) on 1 rank and on 2
 *     ranks with the same per-rank batch, the gradients reduced after backward (bucket_mb 0)
 *     and overlapped with it (buckets of --bucket-mb), and the overhead of each over 1 rank:
 *     the settings interleaved over --rounds rounds, each overhead the median over the rounds
 *     of its ratio to 1 rank in the same round [smallest, largest], with the busier rank's CPU
 *     time split into the calling thread's compute and the rest (vt_reducer_finish), the
 *     exposed communication and the buckets completed during backward (BENCH_PROFILE=1: the
 *     phases);
 *  3. the peak resident memory per rank during steps at ZeRO 0, 1 and 2 (VmHWM, reset between
 *     stages through /proc/self/clear_refs), against vt_zero_plan; then the same under bf16
 *     compute copies, where ZeRO 1 and 2 also shard the GEMM weights' f32 masters after the
 *     first step (zero_masters.h; the peak is reset after that step).
 * Usage: mpirun -np 2 bench_dist [steps] [--bucket-mb MB] [--max-mb MB] [--batch B]
 *        [--rounds R] (default 5) [--sweep MB,MB,...] (more overlapped bucket sizes, printed after
 * the main figures)
 *        [--parts bsm] (b: bandwidth, s: step times, m: memory; all by default) */
#include <math.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_qwen2.h"
#include "train/coll.h"
#include "train/optim.h"
#include "train/zero.h"
#include "train/zero_masters.h"

/* CPU seconds of this process (all its threads): under a loaded machine the wall time of a
 * step includes the time the rank waited for a core; its CPU time is the work it did. */
static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* VmHWM / VmRSS of this process in MiB (-1 when /proc is unreadable). */
static double status_mib(const char *key) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  double v = -1;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl)) v = atof(line + kl + 1) / 1024.0;
  fclose(f);
  return v;
}

static bool reset_peak(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  bool ok = fputs("5", f) >= 0;
  return fclose(f) == 0 && ok;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "bench_dist: %s: %s\n", what, why);
  exit(1);
}

static void bandwidth(vt_coll *c, double max_mb) {
  if (c->rank == 0)
    printf("%-15s %10s %8s %12s %12s\n", "collective", "MB", "ms", "algbw GB/s", "busbw GB/s");
  double n = c->world;
  for (double mb = 1; mb <= max_mb; mb *= 4) {
    size_t count = (size_t)(mb * 1e6 / sizeof(float));
    float *buf = malloc(count * sizeof(float));
    if (!buf) die("bandwidth", "out of memory");
    for (size_t i = 0; i < count; i++) buf[i] = 1.0f;
    size_t counts[64];
    for (int r = 0; r < c->world && r < 64; r++) {
      size_t lo, hi;
      vt_coll_shard_range(count, c->world, r, &lo, &hi);
      counts[r] = hi - lo;
    }
    for (int op = 0; op < 4; op++) {
      int reps = mb <= 16 ? 10 : 3;
      double best = INFINITY;
      for (int r = 0; r < reps + 1; r++) { /* the first is a warmup */
        c->ops->barrier(c, "bench");
        double t0 = now_s();
        int rc;
        if (op == 0) {
          vt_coll_req q;
          rc = c->ops->iallreduce(c, buf, count, "bench buffer", &q) || c->ops->wait(c, &q);
        } else if (op == 1) {
          rc = c->ops->reduce_scatter(c, buf, count, "bench buffer");
        } else if (op == 2) {
          rc = c->ops->allgather(c, buf, count, "bench buffer");
        } else { /* the same values as bf16: half the bytes (sharded masters' gather) */
          rc = c->ops->allgatherv(c, buf, counts, sizeof(uint16_t), "bench buffer");
        }
        if (rc) die("collective", c->err);
        double t = now_s() - t0;
        if (r > 0 && t < best) best = t;
      }
      /* every rank's time counts: the slowest rank's */
      vt_coll_allreduce_f64(c, &best, 1, VT_COLL_MAX, "bench time");
      double alg = mb * 1e6 / best / 1e9;
      if (op == 3) alg /= 2; /* bytes moved: half the f32 buffer */
      double bus = alg * (op == 0 ? 2 * (n - 1) / n : (n - 1) / n);
      static const char *const names[] = {"all-reduce", "reduce-scatter", "all-gather",
                                          "all-gather bf16"};
      if (c->rank == 0)
        printf("%-15s %10g %8.2f %12.2f %12.2f\n", names[op], op == 3 ? mb / 2 : mb, best * 1e3,
               alg, bus);
      fflush(stdout);
    }
    free(buf);
  }
}

typedef struct {
  bench_qwen2 q;      /* the model, its AdamW and ctx (bench_qwen2.h) */
  vt_reducer red;     /* the gradient buckets of the memory part */
  vt_zero_masters zm; /* bf16: the sharded f32 masters (after the first step) */
  int32_t *ids;
  int64_t b, t;
} dp;

static void dp_init(dp *s, vt_coll *c, int zero, bool bf16, double bucket_mb, int64_t b,
                    int64_t t) {
  char err[512];
  memset(s, 0, sizeof *s);
  s->b = b, s->t = t;
  qwen2_cfg cfg = bench_qwen2_cpu_cfg(false, false);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 1e-4;
  if (zero > 0 && c->world > 1) oc.shard_rank = c->rank, oc.shard_world = c->world;
  if (bench_qwen2_init(&s->q, "bench_dist", &cfg, (vt_device){VT_DEV_CPU, 0}, &oc, bf16, "sgemm"))
    exit(1);
  vt_rng_seed(&s->q.rng, 99 + (uint64_t)c->rank); /* each rank its own tokens */
  if (vt_reducer_init(&s->red, c, &s->q.opt, zero, bucket_mb * (1 << 20), err, sizeof err))
    die("optimizer", err);
  s->ids = malloc(sizeof(int32_t) * (size_t)(b * t));
  if (!s->ids) die("tokens", "out of memory");
}

/* After the first bf16 step: the masters of the GEMM weights sharded, as the trainer does. */
static void dp_shard_masters(dp *s, vt_coll *c) {
  char err[512];
  vt_params *ps = &s->q.ps;
  int n = ps->n;
  int64_t *lo = calloc((size_t)n + 1, sizeof *lo), *hi = calloc((size_t)n + 1, sizeof *hi);
  if (!lo || !hi) die("masters", "out of memory");
  for (int i = 0; i < n; i++) hi[i] = vt_numel(&ps->items[i]->t);
  if (vt_zero_masters_init(&s->zm, &s->q.opt, c->world, ps->reads, err, sizeof err))
    die("masters", err);
  vt_zero_masters_keep(&s->zm, lo, hi);
  if (s->zm.on && vt_params_shard_masters(ps, lo, hi, err, sizeof err)) die("masters", err);
  free(lo);
  free(hi);
}

static void dp_free(dp *s) {
  vt_zero_masters_free(&s->zm);
  vt_reducer_free(&s->red);
  bench_qwen2_free(&s->q);
  free(s->ids);
}

/* The figures of one step on one rank (seconds). */
enum {
  F_WALL,     /* the step */
  F_CPU,      /* CPU time of the process, all its threads */
  F_FWD,      /* wall: forward */
  F_BWD,      /* wall: backward (with the buckets it starts and tests) */
  F_EXPOSED,  /* wall: vt_reducer_finish, the communication backward did not hide */
  F_OPT,      /* wall: scaling, the optimizer step, ZeRO's all-gather */
  F_CPU_MAIN, /* CPU time of the calling thread outside vt_reducer_finish: the compute */
  F_STARTED,  /* buckets started by the end of backward */
  F_DONE,     /* buckets completed by the end of backward */
  NF
};

static double thread_cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One data-parallel step over group g with the buckets of red, as the trainer runs it; its
 * figures into f (may be NULL). */
static void dp_step(dp *s, vt_coll *g, vt_reducer *red, int zero, double *f) {
  char err[600];
  vt_params *ps = &s->q.ps;
  vt_optim *opt = &s->q.opt;
  vt_ctx *ctx = s->q.ctx;
  double t0 = now_s(), c0 = cpu_s(), m0 = thread_cpu_s();
  for (int64_t i = 0; i < s->b * s->t; i++)
    s->ids[i] = (int32_t)vt_rng_below(&s->q.rng, (uint64_t)s->q.m.cfg.vocab_size);
  vt_zero_clear_grads(ps, zero, g->world);
  vt_tensor *tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){s->b, s->t}, s->ids);
  vt_tensor *l = qwen2_loss(&s->q.m, ctx, tid, tid, NULL);
  double t1 = now_s();
  vt_reducer_arm(red, ctx);
  bool ok = vt_backward(ctx, l);
  vt_reducer_disarm(red, ctx);
  if (!ok) die("backward", vt_ctx_error(ctx));
  int started = red->next, done = red->done;
  double t2 = now_s(), m2 = thread_cpu_s();
  if (vt_reducer_finish(red, err, sizeof err)) die("reduce", err);
  double t3 = now_s(), m3 = thread_cpu_s();
  /* the trainer divides the summed gradients by the global count on any number of ranks: the
   * pass runs on 1 rank too (vt_params_scale_grad skips a factor of 1), or the overhead would
   * include a pass over the gradients that 1 rank does not make */
  float alpha = 1.0f / (float)g->world;
  if (zero == 2 && g->world > 1)
    vt_zero_scale_grads(ps, opt, zero, g->world, alpha);
  else
    ps->be->unary(ps->be, VT_UN_SCALE, (int64_t)ps->grad_numel, alpha, ps->grad, ps->grad);
  double norm = NAN;
  if (zero == 2 && g->world > 1) {
    double ss = vt_optim_shard_sumsq(opt);
    vt_coll_allreduce_f64(g, &ss, 1, VT_COLL_SUM, "norm");
    norm = sqrt(ss);
  }
  vt_optim_stats st;
  if (vt_optim_step_norm(opt, 1.0, 1, norm, &st, err, sizeof err)) die("step", err);
  if (s->zm.on) {
    if (vt_zero_masters_gather(&s->zm, g, err, sizeof err)) die("all-gather", err);
  } else if (opt->shard_world > 1 && opt->param_base) {
    if (g->ops->allgather(g, opt->param_base, opt->state_numel, "parameters"))
      die("all-gather", g->err);
    vt_params_sync_lowp(ps);
  }
  vt_ctx_reset(ctx);
  double t4 = now_s();
  if (!f) return;
  f[F_WALL] = t4 - t0, f[F_CPU] = cpu_s() - c0;
  f[F_FWD] = t1 - t0, f[F_BWD] = t2 - t1, f[F_EXPOSED] = t3 - t2, f[F_OPT] = t4 - t3;
  f[F_CPU_MAIN] = thread_cpu_s() - m0 - (m3 - m2);
  f[F_STARTED] = started, f[F_DONE] = done;
}

static void sort(double *x, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
      double t = x[j];
      x[j] = x[j - 1];
      x[j - 1] = t;
    }
}

static double median(const double *x, int n) {
  double v[64];
  if (n > 64) n = 64;
  memcpy(v, x, sizeof(double) * (size_t)n);
  sort(v, n);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* One warmup step, then `steps` timed ones: the median of each figure into f. */
static void time_steps(dp *s, vt_coll *g, vt_reducer *red, int steps, double *f) {
  double x[NF][64];
  if (steps > 64) steps = 64;
  dp_step(s, g, red, 0, NULL);
  for (int i = 0; i < steps; i++) {
    double one[NF];
    dp_step(s, g, red, 0, one);
    for (int k = 0; k < NF; k++) x[k][i] = one[k];
  }
  for (int k = 0; k < NF; k++) f[k] = median(x[k], steps);
}

/* A barrier that sleeps while it waits (1 ms between tests), so that a rank waiting for rank
 * 0's one-rank steps takes no core from them or from the machine's other work. */
static void sleeping_barrier(vt_coll *c) {
  float x = 0;
  vt_coll_req q;
  if (c->ops->iallreduce(c, &x, 1, "bench barrier", &q)) die("barrier", c->err);
  for (bool done = false; !done;) {
    if (c->ops->test(c, &q, &done)) die("barrier", c->err);
    if (!done) nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
}

/* The step-time settings: rank 0 alone, every rank alone at once (what sharing the cores,
 * caches and memory bandwidth costs before any communication), and data parallel with the
 * gradients reduced after backward (bucket_mb 0) or overlapped with it. */
typedef struct {
  char label[48];
  int kind; /* 0: rank 0 alone; 1: every rank alone; 2: data parallel over c */
  double mb;
  vt_reducer red;
} setting;

#define MAX_SETTINGS 10
#define MAX_ROUNDS 32

/* Medians over the rounds of figure k of setting i, and of its per-round ratio to rank 0
 * alone (with the smallest and largest). */
static double over_rounds(double (*fig)[MAX_SETTINGS][NF], int rounds, int i, int k) {
  double v[MAX_ROUNDS] = {0};
  for (int r = 0; r < rounds; r++) v[r] = fig[r][i][k];
  return median(v, rounds);
}

static void ratio_stats(double (*fig)[MAX_SETTINGS][NF], int rounds, int i, int k, double *med,
                        double *lo, double *hi) {
  double v[MAX_ROUNDS] = {0};
  for (int r = 0; r < rounds; r++) v[r] = 100 * (fig[r][i][k] / fig[r][0][k] - 1);
  *med = median(v, rounds);
  sort(v, rounds);
  *lo = v[0], *hi = v[rounds - 1];
}

/* Step times: `rounds` rounds, each running every setting for a warmup and `steps` timed
 * steps, so that the machine's drifting load falls on all settings alike; each setting's
 * overhead is the median over the rounds of its ratio to rank 0 alone in the same round. */
static void step_times(vt_coll *c, vt_coll *solo, double bucket_mb, const char *sweep,
                       int64_t batch, int64_t seq, int steps, int rounds) {
  char err[512];
  setting set[MAX_SETTINGS] = {
      {.kind = 0}, {.kind = 1}, {.kind = 2, .mb = 0}, {.kind = 2, .mb = bucket_mb}};
  int ns = 4;
  for (const char *p = sweep; p && *p && ns < MAX_SETTINGS; ns++) {
    char *e;
    set[ns] = (setting){.kind = 2, .mb = strtod(p, &e)};
    p = *e == ',' ? e + 1 : e;
  }
  dp s; /* one model per rank: every setting steps it, with its own buckets */
  dp_init(&s, c, 0, false, 0, batch, seq);
  for (int i = 0; i < ns; i++) {
    if (vt_reducer_init(&set[i].red, set[i].kind == 2 ? c : solo, &s.q.opt, 0,
                        set[i].mb * (1 << 20), err, sizeof err))
      die("buckets", err);
    if (set[i].kind == 0)
      snprintf(set[i].label, sizeof set[i].label, "1 rank");
    else if (set[i].kind == 1)
      snprintf(set[i].label, sizeof set[i].label, "%d ranks, no collective", c->world);
    else if (set[i].mb <= 0)
      snprintf(set[i].label, sizeof set[i].label, "%d ranks, no overlap", c->world);
    else
      snprintf(set[i].label, sizeof set[i].label, "%d ranks, overlap, %d x <= %g MB", c->world,
               set[i].red.nb, set[i].mb);
  }
  rounds = rounds < 1 ? 1 : rounds > MAX_ROUNDS ? MAX_ROUNDS : rounds;
  steps = steps < 1 ? 1 : steps;
  static double fig[MAX_ROUNDS][MAX_SETTINGS][NF];
  for (int r = 0; r < rounds; r++)
    for (int i = 0; i < ns; i++) {
      double *f = fig[r][i];
      memset(f, 0, sizeof(double) * NF);
      if (set[i].kind == 0) {
        if (c->rank == 0) time_steps(&s, solo, &set[i].red, steps, f);
        sleeping_barrier(c);
      } else {
        time_steps(&s, set[i].kind == 2 ? c : solo, &set[i].red, steps, f);
      }
      /* the busier rank's figures (rank 0's alone for the first setting) */
      vt_coll_allreduce_f64(c, f, NF, VT_COLL_MAX, "bench figures");
    }
  if (c->rank == 0) {
    printf("qwen2 bench model, batch %lld x %lld per rank, %d rounds of every setting "
           "interleaved, each a warmup and %d timed steps; per round the median step of the "
           "busier rank; below the median over the rounds [smallest, largest]:\n",
           (long long)batch, (long long)seq, rounds, steps);
    double wall_lo = 0, wall_hi = 0;
    for (int i = 0; i < ns; i++) {
      double v[MAX_ROUNDS] = {0};
      for (int r = 0; r < rounds; r++) v[r] = fig[r][i][F_WALL];
      sort(v, rounds);
      wall_lo = v[0], wall_hi = v[rounds - 1];
      double wall = over_rounds(fig, rounds, i, F_WALL), cpu = over_rounds(fig, rounds, i, F_CPU);
      double comm = over_rounds(fig, rounds, i, F_CPU) - over_rounds(fig, rounds, i, F_CPU_MAIN);
      printf("  %-32s %7.1f ms [%7.1f, %7.1f]", set[i].label, wall * 1e3, wall_lo * 1e3,
             wall_hi * 1e3);
      if (i > 0) {
        double m, lo, hi, cm, clo, chi;
        ratio_stats(fig, rounds, i, F_WALL, &m, &lo, &hi);
        ratio_stats(fig, rounds, i, F_CPU, &cm, &clo, &chi);
        printf("  overhead %+6.1f%% [%+6.1f, %+6.1f]  CPU %7.1f ms %+6.1f%% [%+6.1f, %+6.1f]", m,
               lo, hi, cpu * 1e3, cm, clo, chi);
      } else {
        printf("  %37s CPU %7.1f ms %27s", "", cpu * 1e3, "");
      }
      printf("  comm CPU %5.1f ms", comm * 1e3);
      if (set[i].kind == 2)
        printf("  exposed %6.1f ms  done in backward %.0f/%d",
               over_rounds(fig, rounds, i, F_EXPOSED) * 1e3, over_rounds(fig, rounds, i, F_DONE),
               set[i].red.nb);
      printf("\n");
    }
    printf("  (CPU: the process, all threads; comm CPU: what of it was not the calling thread's "
           "compute outside vt_reducer_finish)\n");
    if (getenv("BENCH_PROFILE")) {
      printf("PROFILE median wall per phase, ms (forward / backward / exposed / optimizer), "
             "compute CPU of the calling thread, buckets started and done by the end of "
             "backward:\n");
      for (int i = 0; i < ns; i++)
        printf(
            "PROFILE %-32s %7.1f / %7.1f / %6.1f / %6.1f  compute CPU %7.1f  started %.0f "
            "done %.0f of %d\n",
            set[i].label, over_rounds(fig, rounds, i, F_FWD) * 1e3,
            over_rounds(fig, rounds, i, F_BWD) * 1e3, over_rounds(fig, rounds, i, F_EXPOSED) * 1e3,
            over_rounds(fig, rounds, i, F_OPT) * 1e3, over_rounds(fig, rounds, i, F_CPU_MAIN) * 1e3,
            over_rounds(fig, rounds, i, F_STARTED), over_rounds(fig, rounds, i, F_DONE),
            set[i].red.nb);
    }
    double o, olo, ohi, n, nlo, nhi, co, clo, chi;
    ratio_stats(fig, rounds, 2, F_WALL, &n, &nlo, &nhi);
    ratio_stats(fig, rounds, 3, F_WALL, &o, &olo, &ohi);
    ratio_stats(fig, rounds, 3, F_CPU, &co, &clo, &chi);
    printf("RESULT step_ms_1=%.1f step_ms_shared=%.1f step_ms_dp=%.1f step_ms_dp_overlap=%.1f "
           "overhead_pct=%.1f overhead_overlap_pct=%.1f overhead_overlap_min_pct=%.1f "
           "overhead_overlap_max_pct=%.1f exposed_ms=%.1f exposed_overlap_ms=%.1f "
           "cpu_ms_1=%.1f cpu_ms_dp_overlap=%.1f cpu_overhead_overlap_pct=%.1f rounds=%d\n",
           over_rounds(fig, rounds, 0, F_WALL) * 1e3, over_rounds(fig, rounds, 1, F_WALL) * 1e3,
           over_rounds(fig, rounds, 2, F_WALL) * 1e3, over_rounds(fig, rounds, 3, F_WALL) * 1e3, n,
           o, olo, ohi, over_rounds(fig, rounds, 2, F_EXPOSED) * 1e3,
           over_rounds(fig, rounds, 3, F_EXPOSED) * 1e3, over_rounds(fig, rounds, 0, F_CPU) * 1e3,
           over_rounds(fig, rounds, 3, F_CPU) * 1e3, co, rounds);
    fflush(stdout);
  }
  for (int i = 0; i < ns; i++) vt_reducer_free(&set[i].red);
  dp_free(&s);
}

/* The peak and resident memory of the larger rank (MiB, into mib) after the steps, then the
 * plan for weight bytes w; frees s. */
static vt_zero_mem measure(dp *s, vt_coll *c, int z, double w, double bucket_mb, double *mib) {
  mib[0] = status_mib("VmHWM:"), mib[1] = status_mib("VmRSS:");
  vt_coll_allreduce_f64(c, mib, 2, VT_COLL_MAX, "bench memory");
  vt_zero_mem pl = vt_zero_plan(w, (int64_t)vt_params_count(&s->q.ps, true), 2, z, c->world, false);
  vt_zero_plan_overlap(&pl, z, c->world, false, bucket_mb * (1 << 20), 1);
  dp_free(s);
  return pl;
}

int main(int argc, char **argv) {
  int steps = 5, rounds = 5;
  double bucket_mb = 4, max_mb = 256;
  int64_t batch = 2, seq = 256;
  char *sweep = NULL;
  const char *parts = "bsm"; /* bandwidth, step times, memory */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--bucket-mb") && i + 1 < argc)
      bucket_mb = atof(argv[++i]);
    else if (!strcmp(argv[i], "--max-mb") && i + 1 < argc)
      max_mb = atof(argv[++i]);
    else if (!strcmp(argv[i], "--parts") && i + 1 < argc)
      parts = argv[++i];
    else if (!strcmp(argv[i], "--sweep") && i + 1 < argc)
      sweep = argv[++i];
    else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
      batch = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
      rounds = atoi(argv[++i]);
    else
      steps = atoi(argv[i]);
  }
  vt_dist d;
  char err[600];
  if (vt_dist_init(&d, &argc, &argv, err, sizeof err)) die("MPI", err);
  vt_coll c, solo;
  vt_dist one = {.rank = 0, .world = 1, .local_world = 1};
  if (vt_coll_open_mpi(&c, &d, 120, err, sizeof err) ||
      vt_coll_open_mpi(&solo, &one, 120, err, sizeof err))
    die("collectives", err);
  if (c.rank == 0)
    printf("bench_dist: %d rank(s), OMP_NUM_THREADS=%s\n", c.world,
           getenv("OMP_NUM_THREADS") ? getenv("OMP_NUM_THREADS") : "default");

  /* 1. bandwidth */
  if (c.world > 1 && strchr(parts, 'b')) bandwidth(&c, max_mb);

  /* 2. step times, interleaved over the rounds */
  if (strchr(parts, 's')) step_times(&c, &solo, bucket_mb, sweep, batch, seq, steps, rounds);

  if (!strchr(parts, 'm')) goto out;
  /* 3. peak memory per rank at ZeRO 0, 1, 2 (the larger of the ranks: at ZeRO 2 they release
   * different buckets at different times) */
  if (c.rank == 0) printf("peak memory per rank (the larger rank), 2 steps each:\n");
  double peak0 = 0, plan0 = 0;
  for (int z = 0; z <= 2; z++) {
    c.ops->barrier(&c, "bench");
#ifdef __GLIBC__
    malloc_trim(0); /* what earlier stages freed (MPI's temporaries) is not this stage's */
#endif
    if (!reset_peak() && c.rank == 0) printf("  (cannot reset VmHWM: peaks are cumulative)\n");
    dp s;
    dp_init(&s, &c, z, false, bucket_mb, batch, seq);
    dp_step(&s, &c, &s.red, z, NULL);
    dp_step(&s, &c, &s.red, z, NULL);
    double mib[2];
    vt_zero_mem pl =
        measure(&s, &c, z, 4.0 * (double)vt_params_count(&s.q.ps, false), bucket_mb, mib);
    if (!z) peak0 = mib[0], plan0 = pl.total;
    if (c.rank == 0)
      printf("  ZeRO %d: peak %7.1f MiB (%+7.1f vs ZeRO 0); plan: weights %.1f + grads %.1f + "
             "optimizer %.1f = %.1f MiB (%+.1f vs ZeRO 0); grads between steps %.1f MiB, "
             "resident after the steps %.1f MiB\n",
             z, mib[0], mib[0] - peak0, pl.weights / 1048576, pl.grads / 1048576,
             pl.optimizer / 1048576, pl.total / 1048576, (pl.total - plan0) / 1048576,
             pl.grads_idle / 1048576, mib[1]);
    fflush(stdout);
  }
  /* the same under bf16: ZeRO 1 and 2 shard the GEMM weights' f32 masters after step 1 */
  if (c.rank == 0)
    printf("bf16 copies over f32 masters, peak per rank over steps 2-3 (reset after step 1, "
           "which sharded the masters):\n");
  for (int z = 0; z <= 2; z++) {
    c.ops->barrier(&c, "bench");
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    dp s;
    dp_init(&s, &c, z, true, bucket_mb, batch, seq);
    dp_step(&s, &c, &s.red, z, NULL);
    if (z > 0) dp_shard_masters(&s, &c);
    reset_peak();
    dp_step(&s, &c, &s.red, z, NULL);
    dp_step(&s, &c, &s.red, z, NULL);
    vt_params *ps = &s.q.ps;
    int64_t n_all = (int64_t)vt_params_count(ps, false), n_sh = 0;
    for (int i = 0; i < ps->n; i++)
      if (vt_zero_master_sharded(ps->items[i], ps->reads[i])) n_sh += vt_numel(&ps->items[i]->t);
    double w = z > 0 ? vt_zero_masters_plan(n_all, 0, n_sh, c.world) : 6.0 * (double)n_all, mib[2];
    vt_zero_mem pl = measure(&s, &c, z, w, bucket_mb, mib);
    if (!z) peak0 = mib[0], plan0 = pl.total;
    if (c.rank == 0)
      printf("  bf16 ZeRO %d: peak %7.1f MiB (%+7.1f vs bf16 ZeRO 0); plan: weights %.1f (f32 "
             "masters %.1f) + grads %.1f + optimizer %.1f = %.1f MiB (%+.1f vs bf16 ZeRO 0); "
             "resident after the steps %.1f MiB\n",
             z, mib[0], mib[0] - peak0, pl.weights / 1048576,
             (pl.weights - 2.0 * (double)n_all) / 1048576, pl.grads / 1048576,
             pl.optimizer / 1048576, pl.total / 1048576, (pl.total - plan0) / 1048576, mib[1]);
    fflush(stdout);
  }
out:
  vt_coll_close(&solo);
  vt_coll_close(&c);
  vt_dist_finalize(&d);
  return 0;
}
