// ctest-labels: unit grad
/* The Qwen2 parity fixture (tests/reference/gen_qwen2_fixtures.py: HF transformers in f32) run
 * in bf16 mixed precision: the ctx's GEMMs take bf16 operands (weights from the store's bf16
 * copies), everything else stays f32. Logits, loss and every parameter's gradient must lie
 * within a bf16-derived tolerance of HF's f32 values, and must differ from our own f32 run by
 * more than f32 rounding (else the bf16 path did not run). Also with activation recompute and
 * a 5-row loss chunk (the LM head then forms its logits again in backward).
 *
 * Tolerance: bf16 keeps 8 significant bits, so a rounded input is within 2^-8 relative and a
 * GEMM of rounded inputs computes each product to within 2^-7 of the f32 one: its output is off
 * by at most 2^-7 * sum |a||b|. Through a path of G such GEMMs the deviations add up, relative
 * to the size of the values compared: |got - want| <= G * 2^-7 * max |want|. Forward G = 6 L + 1
 * (q/k/v, attention's QK^T and PV, o, gate/up, down per layer, the head); gradients pass the
 * path twice, G = 2 (6 L + 1). Skips (77) when the CPU has no bf16 GEMM units. */
#include <stdlib.h>
#include <string.h>

#include "tests/parity.h"
#include "tests/testutil.h"

#define BF16_EPS 0x1p-7              /* a product of two bf16-rounded values */
#define F32_REL (256 * 1.1920929e-7) /* test_qwen2_parity's f32 tolerance */

/* Logits, loss and gradients of one run in the given precision. */
typedef struct {
  float *logits, loss, **grads;
} run_out;

static run_out run(vt_dtype prec, bool recompute, int64_t chunk) {
  qwen2_cfg cfg = parity_qwen2_cfg();
  char err[512];
  cfg.recompute = recompute;
  cfg.ce_chunk_rows = chunk;
  vt_params ps;
  qwen2 m;
  parity_qwen2_init(&m, &ps, &cfg);
  parity_load_weights(&ps, PARITY_QWEN2, (const char *[]){"model.safetensors", NULL});
  st_file ref;
  CHECK(parity_open(&ref, PARITY_QWEN2, "reference.safetensors"));
  vt_ctx *ctx = vt_test_cpu_ctx();
  if (prec == VT_BF16) {
    CHECK_MSG(vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(vt_params_enable_lowp(&ps, VT_BF16, err, sizeof err) == 0, "%s", err);
  }
  parity_qwen2_batch bt = parity_qwen2_batch_read(&ref);
  run_out o = {.grads = calloc((size_t)ps.n, sizeof(float *))};
  o.logits = parity_qwen2_logits(&m, ctx, &bt);

  vt_params_zero_grad(&ps);
  vt_tensor *loss = parity_qwen2_loss(&m, ctx, &bt);
  o.loss = vt_item(ctx, loss);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  for (int i = 0; i < ps.n; i++) {
    o.grads[i] = malloc(sizeof(float) * (size_t)vt_numel(&ps.items[i]->t));
    vt_grad_to_host(ctx, &ps.items[i]->t, o.grads[i]);
  }
  vt_ctx_free(ctx);
  parity_qwen2_batch_free(&bt);
  st_file_close(&ref);
  qwen2_free(&m);
  vt_params_free(&ps);
  return o;
}

static void compare(bool recompute, int64_t chunk) {
  char err[512];
  qwen2_cfg cfg = parity_qwen2_cfg();
  double g_fwd = 6.0 * (double)cfg.num_hidden_layers + 1.0, g_bwd = 2.0 * g_fwd;
  run_out f = run(VT_F32, recompute, chunk), h = run(VT_BF16, recompute, chunk);
  st_file ref;
  CHECK(parity_open(&ref, PARITY_QWEN2, "reference.safetensors"));
  int64_t nl;
  float *want = parity_read(&ref, "logits", VT_F32, &nl);
  float *want_loss = parity_read(&ref, "loss", VT_F32, NULL);
  double scale = parity_max_abs(want, nl), d16 = parity_max_diff(h.logits, want, nl);
  double d32 = parity_max_diff(f.logits, want, nl);
  printf("logits: max |bf16 - HF f32| = %.3g (tolerance %.3g), |f32 - HF| = %.3g\n", d16,
         g_fwd * BF16_EPS * scale, d32);
  CHECK_MSG(d16 <= g_fwd * BF16_EPS * scale, "logits off by %g", d16);
  CHECK_MSG(d16 > F32_REL * scale, "bf16 logits equal f32's (%g): bf16 GEMMs did not run", d16);
  CHECK_MSG(fabs(h.loss - want_loss[0]) <= g_fwd * BF16_EPS * fabs(want_loss[0]),
            "loss %.6g, HF %.6g", h.loss, want_loss[0]);
  /* parameter order of the store: the same names as the reference's grad.NAME */
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  qwen2 m;
  CHECK(qwen2_init(&m, &ps, &cfg, err, sizeof err) == 0);
  double worst = 0;
  for (int i = 0; i < ps.n; i++) {
    char key[256];
    snprintf(key, sizeof key, "grad.%s", ps.items[i]->name);
    int64_t ng;
    float *wg = parity_read(&ref, key, VT_F32, &ng);
    double s = parity_max_abs(wg, ng), d = parity_max_diff(h.grads[i], wg, ng);
    worst = fmax(worst, d / (s > 0 ? s : 1));
    CHECK_MSG(d <= g_bwd * BF16_EPS * s, "%s: max |bf16 - HF| %g > %g", key, d,
              g_bwd * BF16_EPS * s);
    free(wg);
    free(h.grads[i]);
    free(f.grads[i]);
  }
  printf("gradients: worst max |bf16 - HF f32| / max |HF| = %.3g (tolerance %.3g)\n", worst,
         g_bwd * BF16_EPS);
  qwen2_free(&m);
  vt_params_free(&ps);
  free(h.grads);
  free(f.grads);
  free(h.logits);
  free(f.logits);
  free(want);
  free(want_loss);
  st_file_close(&ref);
}

int main(void) {
  char why[256];
  if (!vt_backend_bf16_gemm(vt_backend_cpu(), why, sizeof why)) {
    printf("test_bf16_qwen2: skipped: %s\n", why);
    return 77;
  }
  compare(false, 0);
  compare(true, 5);
  return vt_test_finish("test_bf16_qwen2");
}
