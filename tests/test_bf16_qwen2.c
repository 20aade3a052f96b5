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

#include "checkpoints/safetensors.h"
#include "model/qwen2.h"
#include "tests/qwen2_config.h"
#include "tests/testutil.h"

#define BF16_EPS 0x1p-7              /* a product of two bf16-rounded values */
#define F32_REL (256 * 1.1920929e-7) /* test_qwen2_parity's f32 tolerance */

static const char *fixture(const char *name) {
  static char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/qwen2_tiny/%s", dir ? dir : "tests/fixtures", name);
  return path;
}

static void *read_ref(const st_file *f, const char *name, vt_dtype dtype, int64_t *numel) {
  const st_tensor *t = st_find(f, name);
  if (!t) {
    fprintf(stderr, "reference has no tensor %s\n", name);
    exit(1);
  }
  void *buf = malloc((size_t)t->numel * 4);
  char err[256];
  if (st_tensor_read(t, dtype, buf, (size_t)t->numel * 4, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  *numel = t->numel;
  return buf;
}

static double max_abs(const float *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

static double max_diff(const float *a, const float *b, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
  return m;
}

/* Logits, loss and gradients of one run in the given precision. */
typedef struct {
  float *logits, loss, **grads;
} run_out;

static run_out run(vt_dtype prec, bool recompute, int64_t chunk) {
  qwen2_cfg cfg;
  char err[512];
  CHECK_MSG(hf_qwen2_config_read(fixture("config.json"), &cfg, err, sizeof err) == 0, "%s", err);
  cfg.recompute = recompute;
  cfg.ce_chunk_rows = chunk;
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  qwen2 m;
  CHECK(qwen2_init(&m, &ps, &cfg, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  st_file w, ref;
  CHECK_MSG(st_file_open(&w, fixture("model.safetensors"), err, sizeof err) == 0, "%s", err);
  CHECK_MSG(st_file_open(&ref, fixture("reference.safetensors"), err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    const st_tensor *t = st_find(&w, p->name);
    CHECK_MSG(t && t->numel == vt_numel(&p->t), "weight %s missing or misshaped", p->name);
    float *host = malloc(vt_nbytes(&p->t));
    if (t) CHECK(st_tensor_read(t, VT_F32, host, vt_nbytes(&p->t), err, sizeof err) == 0);
    CHECK(vt_param_write_f32(&ps, &p->t, host, err, sizeof err) == 0);
    free(host);
  }
  vt_ctx *ctx = vt_test_cpu_ctx();
  if (prec == VT_BF16) {
    CHECK_MSG(vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == 0, "%s", err);
    CHECK_MSG(vt_params_enable_lowp(&ps, VT_BF16, err, sizeof err) == 0, "%s", err);
  }
  int64_t n_ids, n;
  int32_t *ids = read_ref(&ref, "input_ids", VT_I32, &n_ids);
  int32_t *labels = read_ref(&ref, "labels", VT_I32, &n);
  const st_tensor *ti = st_find(&ref, "input_ids");
  int64_t b = ti->shape[0], t = ti->shape[1];
  run_out o = {.grads = calloc((size_t)ps.n, sizeof(float *))};

  vt_tensor *tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, ids);
  vt_set_grad_enabled(ctx, false);
  vt_tensor *pos = vt_new(ctx, VT_I32, 1, (int64_t[]){t});
  for (int64_t i = 0; i < t; i++) ((int32_t *)pos->data)[i] = (int32_t)i;
  vt_tensor *logits = qwen2_logits(
      &m, ctx, qwen2_forward(&m, ctx, qwen2_embed(&m, ctx, tid), &(qwen2_layout){.pos = pos}));
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  o.logits = malloc(vt_nbytes(logits));
  vt_to_host(ctx, logits, o.logits);
  vt_set_grad_enabled(ctx, true);
  vt_ctx_reset(ctx);

  vt_params_zero_grad(&ps);
  tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, ids);
  vt_tensor *tlab = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, labels);
  vt_tensor *loss = qwen2_loss(&m, ctx, tid, tlab, NULL);
  o.loss = vt_item(ctx, loss);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  for (int i = 0; i < ps.n; i++) {
    o.grads[i] = malloc(sizeof(float) * (size_t)vt_numel(&ps.items[i]->t));
    vt_grad_to_host(ctx, &ps.items[i]->t, o.grads[i]);
  }
  vt_ctx_free(ctx);
  free(ids);
  free(labels);
  st_file_close(&w);
  st_file_close(&ref);
  qwen2_free(&m);
  vt_params_free(&ps);
  return o;
}

static void compare(bool recompute, int64_t chunk) {
  char err[512];
  qwen2_cfg cfg;
  CHECK(hf_qwen2_config_read(fixture("config.json"), &cfg, err, sizeof err) == 0);
  double g_fwd = 6.0 * (double)cfg.num_hidden_layers + 1.0, g_bwd = 2.0 * g_fwd;
  run_out f = run(VT_F32, recompute, chunk), h = run(VT_BF16, recompute, chunk);
  st_file ref;
  CHECK_MSG(st_file_open(&ref, fixture("reference.safetensors"), err, sizeof err) == 0, "%s", err);
  int64_t nl, n;
  float *want = read_ref(&ref, "logits", VT_F32, &nl);
  float *want_loss = read_ref(&ref, "loss", VT_F32, &n);
  double scale = max_abs(want, nl), d16 = max_diff(h.logits, want, nl);
  double d32 = max_diff(f.logits, want, nl);
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
    float *wg = read_ref(&ref, key, VT_F32, &ng);
    double s = max_abs(wg, ng), d = max_diff(h.grads[i], wg, ng);
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
