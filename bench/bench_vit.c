/* Forward + backward speed of the InternViT tower and mlp2x_gelu adapter on the CPU (fp32):
 * tiles of 448 x 448 through the tower's first LAYERS layers (full width: hidden 1024, 16 heads,
 * MLP 4096; default 2 layers, since all 24 take tens of seconds a tile on two cores) and the
 * adapter 4096 -> 3584 -> 3584, loss sum(out * w), backward into every parameter (no optimizer
 * step). Then the peak step memory (arena high water) of one 13-tile sample, with and without
 * recompute. Prints parseable lines:
 *   RESULT impl=c tiles_per_s=... step_ms=... peak_rss_mib=... arena_mib=...
 *   MEMORY tiles=13 layers=... recompute=off arena_mib=...   (and recompute=on)
 * Usage: bench_vit [layers] [tiles_per_step] [steps] [warmup] [--no-memory]
 * bench/bench_vit_torch.py runs the same model in PyTorch; bench/run_vit_vs_torch.sh both. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "autograd/vt.h"
#include "model/vit.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
static double now_s(void) { return clock_s(CLOCK_MONOTONIC); }
/* CPU time of the process (all threads): at 1 thread the work itself, whatever the load */
static double cpu_s(void) { return clock_s(CLOCK_PROCESS_CPUTIME_ID); }

typedef struct {
  vt_params ps;
  vit tower;
  vit_adapter ad;
} model;

static int build(model *m, int64_t layers, bool recompute, char *err, size_t len) {
  vit_cfg c = vit_cfg_300m();
  c.num_hidden_layers = layers;
  c.recompute = recompute;
  if (vt_params_init(&m->ps, (vt_device){VT_DEV_CPU, 0}) ||
      vit_init(&m->tower, &m->ps, &c, "model.vision_tower.vision_tower", err, len) ||
      vit_adapter_init(&m->ad, &m->ps, "model.mm_projector", 4096, 3584, err, len) ||
      vt_params_alloc(&m->ps, err, len))
    return -1;
  vt_rng rng;
  vt_rng_seed(&rng, 1);
  vit_init_weights(&m->tower, &rng);
  vit_adapter_init_weights(&m->ad, &rng, 0.02f);
  return 0;
}

/* One step over n tiles: forward, loss, backward. Returns the loss or NAN. */
static double step(model *m, vt_ctx *ctx, int64_t n, const float *px, const float *w) {
  vt_params_zero_grad(&m->ps);
  vt_tensor *x = vt_from_host(ctx, VT_F32, 4, (int64_t[]){n, 3, 448, 448}, px);
  vt_tensor *y = vit_adapter_forward(
      &m->ad, ctx, vit_features(&m->tower, ctx, vit_hidden(&m->tower, ctx, x, NULL), 32, 32));
  vt_tensor *loss =
      vt_sum(ctx, vt_mul(ctx, y, vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, 256, 3584}, w)),
             VT_ALL_AXES, false);
  double l = vt_item(ctx, loss);
  if (!vt_backward(ctx, loss) || vt_ctx_failed(ctx)) {
    fprintf(stderr, "bench_vit: %s\n", vt_ctx_error(ctx));
    return NAN;
  }
  return l;
}

int main(int argc, char **argv) {
  int64_t layers = 2, n = 1;
  int steps = 3, warmup = 1, npos = 0;
  bool memory = true;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--no-memory"))
      memory = false;
    else if (npos == 0)
      layers = atoll(argv[i]), npos++;
    else if (npos == 1)
      n = atoll(argv[i]), npos++;
    else if (npos == 2)
      steps = atoi(argv[i]), npos++;
    else
      warmup = atoi(argv[i]), npos++;
  }
  char err[512];
  model m;
  if (build(&m, layers, false, err, sizeof err)) {
    fprintf(stderr, "bench_vit: %s\n", err);
    return 1;
  }
  const char *cerr = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
  if (!ctx) {
    fprintf(stderr, "bench_vit: %s\n", cerr ? cerr : "no CPU context");
    return 1;
  }
  int64_t big = 13 > n ? 13 : n;
  float *px = malloc(sizeof(float) * (size_t)(big * 3 * 448 * 448));
  float *w = malloc(sizeof(float) * (size_t)(big * 256 * 3584));
  vt_rng rng;
  vt_rng_seed(&rng, 2);
  for (int64_t i = 0; i < big * 3 * 448 * 448; i++) px[i] = vt_rng_normal(&rng);
  for (int64_t i = 0; i < big * 256 * 3584; i++) w[i] = vt_rng_normal(&rng) * 1e-3f;
  const char *threads = getenv("OMP_NUM_THREADS");
  printf("vit bench (C): InternViT-300M width, %lld of 24 layers + mlp2x_gelu, %lld params, "
         "%lld tiles a step, %d steps after %d warmup, threads %s\n",
         (long long)layers, (long long)vt_params_count(&m.ps, false), (long long)n, steps, warmup,
         threads ? threads : "default");
  double t0 = 0, c0 = 0, l = 0;
  for (int s = 0; s < warmup + steps; s++) {
    if (s == warmup) t0 = now_s(), c0 = cpu_s();
    l = step(&m, ctx, n, px, w);
    if (isnan(l)) return 1;
    vt_ctx_reset(ctx);
  }
  double dt = now_s() - t0, dc = cpu_s() - c0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("RESULT impl=c tiles_per_s=%.3f step_ms=%.1f peak_rss_mib=%.1f arena_mib=%.1f loss=%.6g "
         "cpu_ms=%.1f\n",
         (double)(n * steps) / dt, dt / steps * 1e3, ru.ru_maxrss / 1024.0,
         vt_ctx_arena_high_water(ctx) / 1048576.0, l, dc / steps * 1e3);
  fflush(stdout);
  vt_ctx_free(ctx);
  if (memory) {
    /* a 13-tile sample (12 tiles + thumbnail), each setting in a fresh context */
    for (int rc = 0; rc < 2; rc++) {
      model mm;
      if (build(&mm, layers, rc == 1, err, sizeof err)) return 1;
      vt_ctx *c2 = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
      if (!c2 || isnan(step(&mm, c2, 13, px, w))) return 1;
      printf("MEMORY tiles=13 layers=%lld recompute=%s arena_mib=%.1f\n", (long long)layers,
             rc ? "on" : "off", vt_ctx_arena_high_water(c2) / 1048576.0);
      fflush(stdout);
      vt_ctx_free(c2);
      vit_free(&mm.tower);
      vt_params_free(&mm.ps);
    }
  }
  free(px);
  free(w);
  vit_free(&m.tower);
  vt_params_free(&m.ps);
  return 0;
}
