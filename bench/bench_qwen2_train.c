/* Training speed of a small Qwen2-shaped model on the CPU (issue 5's reference shape: hidden
 * 512, 4 layers, 8 heads, 2 KV heads, FFN 1408, vocab 8192, sequence 256, batch 4), on random
 * tokens with AdamW. Warmup steps are not timed. Prints one parseable line:
 *   RESULT impl=c tokens_per_s=... gflops=... peak_rss_mib=... step_ms=... loss0=... loss=...
 * FLOPs per step = 6 * P * B * T + 6 * L * B * H * hd * T^2, where P counts the parameters
 * that take part in matmuls (all of them but the input embedding table, a gather: 15.5M of
 * 19.7M here) at 6 FLOPs per parameter and token (2 forward, 4 backward), and the second term
 * is causal attention: QK^T and PV are 2 * T^2 * hd each per head over the full square,
 * forward once and backward twice (12 * T^2 * hd), halved by the causal mask. PyTorch's bench
 * counts the same way.
 * The efficiency is model FLOP/s over plain sgemm's on the step's own GEMM shapes (the linear
 * layers forward and backward, the attention's per-head squares, halved for causal), timed in
 * the same run: after the timed steps, `steps` more steps alternate with one call of every
 * shape; sgemm_ms is what the step's calls take at the best time seen per shape, best_step_ms
 * the fastest of those steps, and efficiency = sgemm_ms / best_step_ms (BENCH_VERBOSE=1 lists the
 * shapes, BENCH_NO_SGEMM=1 skips the reference, e.g. under a profiler; BENCH_PROFILE=1 prints
 * the fastest zero-grad, forward, backward and optimizer phases seen). With --bf16 the step
 * runs in bf16 mixed precision (bf16 GEMMs from the store's weight copies, f32 everything else;
 * impl=c-bf16, no sgemm reference). Usage: bench_qwen2_train [steps] [warmup] [--recompute]
 * [--unpacked] [--bf16] (OMP_NUM_THREADS sets threads) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "bench/bench_qwen2.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the sgemm reference: the step's GEMM shapes as plain cblas_sgemm calls ---- */

/* One GEMM shape of a step: C[m,n] = op(A) op(B) with op(A) m x k, `count` calls per step,
 * of which `weight` counts (causal attention does half of each square). */
typedef struct {
  const char *what;
  bool ta, tb;
  int64_t m, n, k;
  double count, weight;
} gemm_shape;

/* Seconds of one call. */
static double time_gemm(const gemm_shape *g, float *a, float *b, float *c) {
  int64_t lda = g->ta ? g->m : g->k, ldb = g->tb ? g->k : g->n;
  double t0 = now_s();
  cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
              (int)g->m, (int)g->n, (int)g->k, 1.0f, a, (int)lda, b, (int)ldb, 0.0f, c, (int)g->n);
  return now_s() - t0;
}

/* The shapes of one training step of the bench model (linear layers as the model runs them:
 * q/k/v and gate/up packed unless `unpacked`), forward and both backward GEMMs each, plus the
 * attention's per-head squares. Returns how many. */
static int step_shapes(const qwen2_cfg *c, int64_t rows, int64_t t, int64_t batch, bool unpacked,
                       gemm_shape *out) {
  int64_t h = c->hidden_size, nh = c->num_attention_heads, hd = h / nh;
  int64_t kv = c->num_key_value_heads * hd, in = c->intermediate_size;
  double L = (double)c->num_hidden_layers;
  typedef struct {
    const char *what;
    int64_t n_out, n_in;
    double count;
  } linear;
  linear lin[8];
  int nl = 0;
  if (unpacked) {
    lin[nl++] = (linear){"q_proj", nh * hd, h, L};
    lin[nl++] = (linear){"k_proj/v_proj", kv, h, 2 * L};
    lin[nl++] = (linear){"gate/up_proj", in, h, 2 * L};
  } else {
    lin[nl++] = (linear){"qkv (packed)", nh * hd + 2 * kv, h, L};
    lin[nl++] = (linear){"gate+up (packed)", 2 * in, h, L};
  }
  lin[nl++] = (linear){"o_proj", h, nh * hd, L};
  lin[nl++] = (linear){"down_proj", h, in, L};
  lin[nl++] = (linear){"lm_head", c->vocab_size, h, 1};
  int n = 0;
  for (int i = 0; i < nl; i++) {
    /* y = x W^T; dx = dy W; dW = dy^T x (the transposes vt_matmul's backward uses) */
    out[n++] =
        (gemm_shape){lin[i].what, false, true, rows, lin[i].n_out, lin[i].n_in, lin[i].count, 1};
    out[n++] =
        (gemm_shape){lin[i].what, false, false, rows, lin[i].n_in, lin[i].n_out, lin[i].count, 1};
    out[n++] =
        (gemm_shape){lin[i].what, true, false, lin[i].n_out, lin[i].n_in, rows, lin[i].count, 1};
  }
  /* attention per (sample, head): S = Q K^T, O = P V forward; dV = P^T dO, dP = dO V^T,
   * dQ = dS K, dK = dS^T Q backward; causal: half of each square counts */
  double heads = L * (double)(batch * nh);
  out[n++] = (gemm_shape){"attention", false, true, t, t, hd, 2 * heads, 0.5};
  out[n++] = (gemm_shape){"attention", false, false, t, hd, t, 2 * heads, 0.5};
  out[n++] = (gemm_shape){"attention", true, false, t, hd, t, 2 * heads, 0.5};
  return n;
}

/* What one training step needs. */
typedef struct {
  qwen2 *m;
  vt_params *ps;
  vt_optim *opt;
  vt_ctx *ctx;
  vt_rng *rng;
  int32_t *ids;
  int64_t b, t, vocab;
  int step;
  double phase[4]; /* BENCH_PROFILE: fastest zero-grad, forward, backward, optimizer seen */
} step_state;

static void phase_done(step_state *s, int i, double *t0) {
  double t = now_s();
  if (t - *t0 < s->phase[i]) s->phase[i] = t - *t0;
  *t0 = t;
}

/* One step on fresh random tokens (labels = inputs, shifted inside); 0 or 1 after a message. */
static int run_step(step_state *s, double *loss) {
  char err[512];
  for (int64_t i = 0; i < s->b * s->t; i++)
    s->ids[i] = (int32_t)vt_rng_below(s->rng, (uint64_t)s->vocab);
  double t0 = now_s();
  vt_params_zero_grad(s->ps);
  phase_done(s, 0, &t0);
  vt_tensor *tid = vt_from_host(s->ctx, VT_I32, 2, (int64_t[]){s->b, s->t}, s->ids);
  vt_tensor *l = qwen2_loss(s->m, s->ctx, tid, tid, NULL);
  *loss = vt_item(s->ctx, l);
  phase_done(s, 1, &t0);
  if (!vt_backward(s->ctx, l) || vt_ctx_failed(s->ctx)) {
    fprintf(stderr, "bench_qwen2_train: step %d: %s\n", s->step, vt_ctx_error(s->ctx));
    return 1;
  }
  phase_done(s, 2, &t0);
  vt_optim_stats st;
  if (vt_optim_step(s->opt, 1.0, s->step, &st, err, sizeof err)) {
    fprintf(stderr, "bench_qwen2_train: %s\n", err);
    return 1;
  }
  phase_done(s, 3, &t0);
  vt_ctx_reset(s->ctx);
  s->step++;
  return 0;
}

int main(int argc, char **argv) {
  int steps = 10, warmup = 2;
  bool recompute = false, unpacked = false, bf16 = false;
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--recompute")) {
      recompute = true;
    } else if (!strcmp(argv[i], "--unpacked")) {
      unpacked = true;
    } else if (!strcmp(argv[i], "--bf16")) {
      bf16 = true;
    } else if (npos == 0) {
      steps = atoi(argv[i]), npos++;
    } else {
      warmup = atoi(argv[i]), npos++;
    }
  }
  if (steps < 1 || warmup < 0) {
    fprintf(stderr,
            "usage: bench_qwen2_train [steps] [warmup] [--recompute] [--unpacked] [--bf16]\n");
    return 2;
  }
  const int64_t B = 4, T = 256;
  qwen2_cfg cfg = bench_qwen2_cpu_cfg(recompute, unpacked);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 1e-4;
  bench_qwen2 bq;
  if (bench_qwen2_init(&bq, "bench_qwen2_train", &cfg, (vt_device){VT_DEV_CPU, 0}, &oc, bf16,
                       "sgemm"))
    return 1;
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(B * T));
  int64_t P = (int64_t)vt_params_count(&bq.ps, false);
  const char *threads = getenv("OMP_NUM_THREADS");
  printf("qwen2 bench (C): params %lld, batch %lld x seq %lld, %d steps after %d warmup, "
         "threads %s, recompute %s, GEMMs %s\n",
         (long long)P, (long long)B, (long long)T, steps, warmup, threads ? threads : "default",
         recompute ? "on" : "off", bq.kernel);

  step_state st = {&bq.m,
                   &bq.ps,
                   &bq.opt,
                   bq.ctx,
                   &bq.rng,
                   ids,
                   B,
                   T,
                   cfg.vocab_size,
                   0,
                   {1e30, 1e30, 1e30, 1e30}};
  double t_start = 0, loss0 = 0, loss = 0;
  for (int s = 0; s < warmup + steps; s++) {
    if (s == warmup) t_start = now_s();
    if (run_step(&st, &loss)) return 1;
    if (s == 0) loss0 = loss;
  }
  double dt = now_s() - t_start, loss_timed = loss; /* what PyTorch's bench reports */

  double tokens = (double)(B * T) * steps;
  double flops_step = bench_qwen2_flops(&cfg, P, B, T);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru); /* peak memory of the steps, before the reference buffers */

  /* The efficiency: what plain sgemm takes for the step's GEMM shapes over the step's time,
   * i.e. model FLOP/s over sgemm FLOP/s. Under a shared machine's changing load the two are
   * measured alternately: `steps` more steps, each followed by one timed call of every shape,
   * and the best of each is kept. */
  gemm_shape shapes[32];
  const char *skip = getenv("BENCH_NO_SGEMM"); /* profiling the step alone */
  int ns = (skip && *skip == '1') || bf16 ? 0 : step_shapes(&cfg, B * T, T, B, unpacked, shapes);
  size_t most = 0;
  for (int i = 0; i < ns; i++) {
    size_t mk = (size_t)(shapes[i].m * shapes[i].k), kn = (size_t)(shapes[i].k * shapes[i].n);
    size_t mn = (size_t)(shapes[i].m * shapes[i].n);
    most = mk > most ? mk : most;
    most = kn > most ? kn : most;
    most = mn > most ? mn : most;
  }
  float *ga = malloc(sizeof(float) * (most + 1)), *gb = malloc(sizeof(float) * (most + 1));
  float *gc = malloc(sizeof(float) * (most + 1));
  for (size_t i = 0; i < most; i++) ga[i] = gb[i] = 0.01f * (float)(i % 97), gc[i] = 0;
  double best_shape[32], best_step = 1e30;
  for (int i = 0; i < ns; i++) best_shape[i] = time_gemm(&shapes[i], ga, gb, gc); /* warm */
  for (int r = 0; ns && r < steps; r++) {
    double t0 = now_s();
    if (run_step(&st, &loss)) return 1;
    if (now_s() - t0 < best_step) best_step = now_s() - t0;
    for (int i = 0; i < ns; i++) {
      double one = time_gemm(&shapes[i], ga, gb, gc);
      if (one < best_shape[i]) best_shape[i] = one;
    }
  }
  double ref_s = 0, ref_flops = 0;
  for (int i = 0; i < ns; i++) {
    const gemm_shape *g = &shapes[i];
    double one = best_shape[i], f = 2.0 * (double)(g->m * g->n * g->k);
    ref_s += one * g->count * g->weight;
    ref_flops += f * g->count * g->weight;
    if (getenv("BENCH_VERBOSE"))
      printf("  sgemm %-16s %c%c %5lld x %5lld x %5lld: %7.3f ms, %6.1f GFLOP/s, x %.0f\n", g->what,
             g->ta ? 'T' : 'N', g->tb ? 'T' : 'N', (long long)g->m, (long long)g->n,
             (long long)g->k, one * 1e3, f / one * 1e-9, g->count * g->weight);
  }
  free(ga);
  free(gb);
  free(gc);
  if (getenv("BENCH_PROFILE")) /* where a step's time goes, fastest of each phase */
    printf("PROFILE zero_grad_ms=%.1f forward_ms=%.1f backward_ms=%.1f optim_ms=%.1f\n",
           st.phase[0] * 1e3, st.phase[1] * 1e3, st.phase[2] * 1e3, st.phase[3] * 1e3);
  printf("RESULT impl=%s tokens_per_s=%.1f gflops=%.2f peak_rss_mib=%.1f step_ms=%.1f loss0=%.4f "
         "loss=%.4f arena_mib=%.1f blas=%s best_step_ms=%.1f sgemm_ms=%.1f sgemm_gflops=%.2f "
         "efficiency=%.3f\n",
         bf16 ? "c-bf16" : "c", tokens / dt, flops_step * steps / dt * 1e-9, ru.ru_maxrss / 1024.0,
         dt / steps * 1e3, loss0, loss_timed, vt_ctx_arena_high_water(bq.ctx) / 1048576.0,
         openblas_get_corename(), ns ? best_step * 1e3 : 0.0, ref_s * 1e3,
         ref_s > 0 ? ref_flops / ref_s * 1e-9 : 0.0, ns ? ref_s / best_step : 0.0);
  free(ids);
  bench_qwen2_free(&bq);
  return 0;
}
