// ctest-labels: mpi
/* mpirun -np 2 on the CPU: each rank takes half of a global batch, the gradients are
 * all-reduced (summed, then divided by the world size here), and the result equals the gradient one
 * process computes on the whole batch; parameters broadcast from rank 0 are identical everywhere.
 */
#include <stdlib.h>
#include <string.h>

#include "model/qwen2.h"
#include "tests/testutil.h"
#include "train/dist.h"

enum { N = 4, T = 8, V = 32 };

/* Gradient of the mean loss over sequences [lo, hi) of the batch, into grad (host). Every
 * label counts, so the mean over both halves equals the mean over the whole batch. */
static void grad_of(vt_ctx *ctx, vt_params *ps, qwen2 *m, const int32_t *ids, int lo, int hi,
                    float *grad) {
  vt_tensor *ti = vt_from_host(ctx, VT_I32, 2, (int64_t[]){hi - lo, T}, ids + lo * T);
  vt_params_zero_grad(ps);
  CHECK(vt_backward(ctx, qwen2_loss(m, ctx, ti, ti, NULL)));
  memcpy(grad, ps->grad, sizeof(float) * ps->grad_numel);
  vt_ctx_reset(ctx);
}

int main(int argc, char **argv) {
  vt_dist d;
  char err[256];
  if (vt_dist_init(&d, &argc, &argv, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  if (d.world != 2) {
    printf("needs exactly 2 ranks (mpirun -np 2), got %d: skipped\n", d.world);
    vt_dist_finalize(&d);
    return 77;
  }
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  qwen2 m;
  qwen2_cfg cfg = {.vocab_size = V,
                   .hidden_size = 16,
                   .intermediate_size = 24,
                   .num_hidden_layers = 1,
                   .num_attention_heads = 2,
                   .num_key_value_heads = 1,
                   .rope_theta = 1e4,
                   .rms_norm_eps = 1e-6,
                   .initializer_range = 0.2};
  CHECK(qwen2_init(&m, &ps, &cfg, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 100 + (uint64_t)d.rank); /* different on each rank ... */
  qwen2_init_weights(&m, &rng);
  float *w = ps.data[VT_F32];
  CHECK(vt_dist_broadcast(&d, w, ps.numel[VT_F32] * sizeof(float)) == 0); /* ... until now */
  float w0 = w[0], w_rank0 = w0;
  CHECK(vt_dist_broadcast(&d, &w_rank0, sizeof w_rank0) == 0);
  CHECK(w0 == w_rank0);

  int32_t ids[N * T];
  vt_rng_seed(&rng, 7); /* the same global batch everywhere */
  for (int i = 0; i < N * T; i++) ids[i] = (int32_t)vt_rng_below(&rng, V);
  size_t n = ps.grad_numel;
  float *full = malloc(sizeof(float) * n), *part = malloc(sizeof(float) * n);
  grad_of(ctx, &ps, &m, ids, 0, N, full);
  int half = N / 2;
  grad_of(ctx, &ps, &m, ids, d.rank * half, (d.rank + 1) * half, part);
  CHECK(vt_dist_allreduce_sum(&d, part, n) == 0);
  for (size_t i = 0; i < n; i++) part[i] /= (float)d.world;
  /* same sum in another order: a few f32 roundings apart */
  double max_abs = 0;
  for (size_t i = 0; i < n; i++) max_abs = fmax(max_abs, fabs(full[i]));
  CHECK_CLOSE("all-reduced gradient", part, full, (long)n, 16 * 1.1920929e-7 * max_abs,
              16 * 1.1920929e-7);
  free(full);
  free(part);
  qwen2_free(&m);
  vt_params_free(&ps);
  vt_ctx_free(ctx);
  int rc = vt_test_finish(d.rank == 0 ? "test_dist rank 0" : "test_dist rank 1");
  vt_dist_finalize(&d);
  return rc;
}
