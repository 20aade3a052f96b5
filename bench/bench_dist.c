/* Data-parallel figures on local CPU ranks, all in one run (mpirun -np 2; bench/run_dist.sh):
 *  1. MPI all-reduce, reduce-scatter and all-gather bandwidth through the collective
 *     interface, 1 MB to 256 MB, and the all-gather of the same values as bf16 (half the bytes:
 *     the sharded masters' gather): algorithm bandwidth (bytes / time) and bus bandwidth
 *     (all-reduce x 2(n-1)/n, the others x (n-1)/n, as nccl-tests reports them);
 *  2. the step time of the Qwen2 bench model (bench_qwen2_train's shape) on 1 rank and on 2
 *     ranks with the same per-rank batch, the gradients reduced after backward (bucket_mb 0)
 *     and overlapped with it (buckets of --bucket-mb), and the overhead of each over 1 rank;
 *  3. the peak resident memory per rank during steps at ZeRO 0, 1 and 2 (VmHWM, reset between
 *     stages through /proc/self/clear_refs), against vt_zero_plan; then the same under bf16
 *     compute copies, where ZeRO 1 and 2 also shard the GEMM weights' f32 masters after the
 *     first step (zero_masters.h; the peak is reset after that step).
 * Usage: mpirun -np 2 bench_dist [steps] [--bucket-mb MB] [--max-mb MB] [--batch B]
 *        [--sweep MB,MB,...] (more overlapped bucket sizes, printed after the main figures)
 *        [--parts bsm] (b: bandwidth, s: step times, m: memory; all by default) */
#include <math.h>
#include <stdio.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autograd/vt.h"
#include "model/qwen2.h"
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
  vt_params ps;
  qwen2 m;
  vt_optim opt;
  vt_reducer red;
  vt_zero_masters zm; /* bf16: the sharded f32 masters (after the first step) */
  bool bf16;
  vt_ctx *ctx;
  int32_t *ids;
  int64_t b, t;
  vt_rng rng;
} dp;

static const qwen2_cfg bench_cfg = {.vocab_size = 8192,
                                    .hidden_size = 512,
                                    .intermediate_size = 1408,
                                    .num_hidden_layers = 4,
                                    .num_attention_heads = 8,
                                    .num_key_value_heads = 2,
                                    .max_position_embeddings = 2048,
                                    .rope_theta = 1e6,
                                    .rms_norm_eps = 1e-6,
                                    .initializer_range = 0.02};

static void dp_init(dp *s, vt_coll *c, int zero, double bucket_mb, int64_t b, int64_t t) {
  char err[512];
  memset(s, 0, sizeof *s);
  s->b = b, s->t = t;
  if (vt_params_init(&s->ps, (vt_device){VT_DEV_CPU, 0}) ||
      qwen2_init(&s->m, &s->ps, &bench_cfg, err, sizeof err) ||
      vt_params_alloc(&s->ps, err, sizeof err) || vt_params_alloc_grads(&s->ps, err, sizeof err))
    die("model", err);
  vt_rng_seed(&s->rng, 1234);
  qwen2_init_weights(&s->m, &s->rng);
  vt_rng_seed(&s->rng, 99 + (uint64_t)c->rank);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 1e-4;
  if (zero > 0 && c->world > 1) oc.shard_rank = c->rank, oc.shard_world = c->world;
  if (vt_optim_init(&s->opt, &s->ps, &oc, err, sizeof err) ||
      vt_reducer_init(&s->red, c, &s->opt, zero, bucket_mb * (1 << 20), err, sizeof err))
    die("optimizer", err);
  const char *cerr = NULL;
  s->ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
  s->ids = malloc(sizeof(int32_t) * (size_t)(b * t));
  if (!s->ctx || !s->ids) die("context", cerr ? cerr : "out of memory");
}

/* bf16 compute copies over the f32 masters, as `precision: bf16` trains. */
static void dp_bf16(dp *s) {
  char err[512], kern[256];
  if (vt_ctx_set_gemm_dtype(s->ctx, VT_BF16, kern, sizeof kern, err, sizeof err) ||
      vt_params_enable_lowp(&s->ps, VT_BF16, err, sizeof err))
    die("bf16", err);
  s->bf16 = true;
}

/* After the first bf16 step: the masters of the GEMM weights sharded, as the trainer does. */
static void dp_shard_masters(dp *s, vt_coll *c) {
  char err[512];
  int n = s->ps.n;
  int64_t *lo = calloc((size_t)n + 1, sizeof *lo), *hi = calloc((size_t)n + 1, sizeof *hi);
  if (!lo || !hi) die("masters", "out of memory");
  for (int i = 0; i < n; i++) hi[i] = vt_numel(&s->ps.items[i]->t);
  if (vt_zero_masters_init(&s->zm, &s->opt, c->world, s->ps.reads, err, sizeof err))
    die("masters", err);
  vt_zero_masters_keep(&s->zm, lo, hi);
  if (s->zm.on && vt_params_shard_masters(&s->ps, lo, hi, err, sizeof err)) die("masters", err);
  free(lo);
  free(hi);
}

static void dp_free(dp *s) {
  vt_zero_masters_free(&s->zm);
  vt_reducer_free(&s->red);
  vt_optim_free(&s->opt);
  vt_ctx_free(s->ctx);
  qwen2_free(&s->m);
  vt_params_free(&s->ps);
  free(s->ids);
}

/* Seconds spent in vt_reducer_finish: the communication backward did not hide. */
static double exposed_s;

/* CPU seconds of the last dp_step, and the median of those of the last time_steps. */
static double step_cpu, med_cpu;

static void sort(double *x, int n) {
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && x[j] < x[j - 1]; j--) {
      double t = x[j];
      x[j] = x[j - 1];
      x[j - 1] = t;
    }
}

/* One data-parallel step as the trainer runs it; returns its seconds. */
static double dp_step(dp *s, vt_coll *c, int zero) {
  char err[600];
  double t0 = now_s(), c0 = cpu_s();
  for (int64_t i = 0; i < s->b * s->t; i++)
    s->ids[i] = (int32_t)vt_rng_below(&s->rng, (uint64_t)bench_cfg.vocab_size);
  vt_zero_clear_grads(&s->ps, zero, c->world);
  vt_tensor *tid = vt_from_host(s->ctx, VT_I32, 2, (int64_t[]){s->b, s->t}, s->ids);
  vt_tensor *l = qwen2_loss(&s->m, s->ctx, tid, tid, NULL);
  vt_reducer_arm(&s->red, s->ctx);
  bool ok = vt_backward(s->ctx, l);
  vt_reducer_disarm(&s->red, s->ctx);
  if (!ok) die("backward", vt_ctx_error(s->ctx));
  double tf = now_s();
  if (vt_reducer_finish(&s->red, err, sizeof err)) die("reduce", err);
  exposed_s += now_s() - tf;
  vt_zero_scale_grads(&s->ps, &s->opt, zero, c->world, 1.0f / (float)c->world);
  double norm = NAN;
  if (zero == 2 && c->world > 1) {
    double ss = vt_optim_shard_sumsq(&s->opt);
    vt_coll_allreduce_f64(c, &ss, 1, VT_COLL_SUM, "norm");
    norm = sqrt(ss);
  }
  vt_optim_stats st;
  if (vt_optim_step_norm(&s->opt, 1.0, 1, norm, &st, err, sizeof err)) die("step", err);
  if (s->zm.on) {
    if (vt_zero_masters_gather(&s->zm, c, err, sizeof err)) die("all-gather", err);
  } else if (s->opt.shard_world > 1 && s->opt.param_base) {
    if (c->ops->allgather(c, s->opt.param_base, s->opt.state_numel, "parameters"))
      die("all-gather", c->err);
    vt_params_sync_lowp(&s->ps);
  }
  vt_ctx_reset(s->ctx);
  step_cpu = cpu_s() - c0;
  return now_s() - t0;
}

/* Median of the timed steps (after one warmup step); their median CPU time in med_cpu. */
static double time_steps(dp *s, vt_coll *c, int zero, int steps) {
  double ts[64], cs[64];
  if (steps > 64) steps = 64;
  dp_step(s, c, zero);
  for (int i = 0; i < steps; i++) {
    ts[i] = dp_step(s, c, zero);
    cs[i] = step_cpu;
  }
  sort(ts, steps);
  sort(cs, steps);
  med_cpu = cs[steps / 2];
  return ts[steps / 2];
}

typedef struct {
  double wall, cpu, exposed; /* medians per step; exposed: mean time in vt_reducer_finish */
  int nb;                    /* buckets */
} run_t;

/* Steps on group g (all ranks: the maxima over them through c when all is set). */
static run_t run(vt_coll *g, vt_coll *c, bool all, double bucket_mb, int64_t b, int64_t t,
                 int steps) {
  dp s;
  dp_init(&s, g, 0, bucket_mb, b, t);
  exposed_s = 0;
  run_t r = {.wall = time_steps(&s, g, 0, steps), .cpu = med_cpu, .nb = s.red.nb};
  r.exposed = exposed_s / (steps + 1); /* per step, the warmup included */
  dp_free(&s);
  if (all) vt_coll_allreduce_f64(c, &r.wall, 3, VT_COLL_MAX, "bench time");
  return r;
}

/* The peak and resident memory of the larger rank (MiB, into mib) after the steps, then the
 * plan for weight bytes w; frees s. */
static vt_zero_mem measure(dp *s, vt_coll *c, int z, double w, double bucket_mb, double *mib) {
  mib[0] = status_mib("VmHWM:"), mib[1] = status_mib("VmRSS:");
  vt_coll_allreduce_f64(c, mib, 2, VT_COLL_MAX, "bench memory");
  vt_zero_mem pl = vt_zero_plan(w, (int64_t)vt_params_count(&s->ps, true), 2, z, c->world, false);
  vt_zero_plan_overlap(&pl, z, c->world, false, bucket_mb * (1 << 20), 1);
  dp_free(s);
  return pl;
}

int main(int argc, char **argv) {
  int steps = 5;
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

  /* 2. step time: 1 rank (rank 0 alone, the others wait), every rank alone at the same time
   * (what sharing the cores, caches and memory bandwidth costs before any communication),
   * then data parallel without overlap (bucket_mb 0), with overlap, and the --sweep sizes */
  run_t r1 = {0}, rc = {0}, rn[10];
  if (!strchr(parts, 's')) goto memory;
  if (c.rank == 0) r1 = run(&solo, &c, false, 0, batch, seq, steps);
  c.ops->barrier(&c, "bench");
  rc = run(&solo, &c, true, 0, batch, seq, steps);
  double mbs[10] = {0, bucket_mb};
  int nr = 2;
  for (char *p = sweep; p && *p && nr < 10; nr++) {
    mbs[nr] = strtod(p, &p);
    if (*p == ',') p++;
  }
  for (int i = 0; i < nr; i++) rn[i] = run(&c, &c, true, mbs[i], batch, seq, steps);
  if (c.rank == 0) {
    printf("qwen2 bench model, batch %lld x %lld per rank, median of %d steps (wall; CPU of the "
           "busier rank):\n",
           (long long)batch, (long long)seq, steps);
    printf("  %-34s %8.1f ms  CPU %8.1f ms\n", "1 rank", r1.wall * 1e3, r1.cpu * 1e3);
    char what[64];
    snprintf(what, sizeof what, "%d ranks, no collective", c.world);
    printf("  %-34s %8.1f ms  CPU %8.1f ms  overhead %+.1f%% (CPU %+.1f%%)\n", what, rc.wall * 1e3,
           rc.cpu * 1e3, 100 * (rc.wall / r1.wall - 1), 100 * (rc.cpu / r1.cpu - 1));
    for (int i = 0; i < nr; i++) {
      if (i == 0)
        snprintf(what, sizeof what, "%d ranks, no overlap", c.world);
      else
        snprintf(what, sizeof what, "%d ranks, overlap, %d x <= %g MB", c.world, rn[i].nb, mbs[i]);
      printf("  %-34s %8.1f ms  CPU %8.1f ms  overhead %+.1f%% (CPU %+.1f%%)  exposed %.1f ms\n",
             what, rn[i].wall * 1e3, rn[i].cpu * 1e3, 100 * (rn[i].wall / r1.wall - 1),
             100 * (rn[i].cpu / r1.cpu - 1), rn[i].exposed * 1e3);
    }
    printf("RESULT step_ms_1=%.1f step_ms_shared=%.1f step_ms_dp=%.1f step_ms_dp_overlap=%.1f "
           "overhead_pct=%.1f overhead_overlap_pct=%.1f exposed_ms=%.1f exposed_overlap_ms=%.1f "
           "cpu_ms_1=%.1f cpu_ms_dp_overlap=%.1f cpu_overhead_overlap_pct=%.1f\n",
           r1.wall * 1e3, rc.wall * 1e3, rn[0].wall * 1e3, rn[1].wall * 1e3,
           100 * (rn[0].wall / r1.wall - 1), 100 * (rn[1].wall / r1.wall - 1), rn[0].exposed * 1e3,
           rn[1].exposed * 1e3, r1.cpu * 1e3, rn[1].cpu * 1e3, 100 * (rn[1].cpu / r1.cpu - 1));
  }

memory:
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
    dp_init(&s, &c, z, bucket_mb, batch, seq);
    dp_step(&s, &c, z);
    dp_step(&s, &c, z);
    double mib[2];
    vt_zero_mem pl =
        measure(&s, &c, z, 4.0 * (double)vt_params_count(&s.ps, false), bucket_mb, mib);
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
    dp_init(&s, &c, z, bucket_mb, batch, seq);
    dp_bf16(&s);
    dp_step(&s, &c, z);
    if (z > 0) dp_shard_masters(&s, &c);
    reset_peak();
    dp_step(&s, &c, z);
    dp_step(&s, &c, z);
    int64_t n_all = (int64_t)vt_params_count(&s.ps, false), n_sh = 0;
    for (int i = 0; i < s.ps.n; i++)
      if (vt_zero_master_sharded(s.ps.items[i], s.ps.reads[i])) n_sh += vt_numel(&s.ps.items[i]->t);
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
