// ctest-labels: unit grad
/* Qwen2's packed GEMMs (q/k/v as one, gate/up as one) against separate ones on the HF fixture
 * of test_qwen2_parity: the same loss and gradients within f32 rounding, and HF's loss either
 * way; with k_proj frozen the q/k/v view is refused, the separate path runs and the trainable
 * gradients still agree. Parameter names stay the HF ones. */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "model/qwen2.h"
#include "tests/qwen2_config.h"
#include "tests/testutil.h"

static const char *fixture(const char *name) {
  static char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/qwen2_tiny/%s", dir ? dir : "tests/fixtures", name);
  return path;
}

static void *read_ref(const st_file *f, const char *name, vt_dtype dtype) {
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
  return buf;
}

/* Loss and the flat gradient buffer of one step on the fixture batch. */
static float step(bool unpacked, bool freeze_k, float **grads, size_t *n_grads) {
  qwen2_cfg cfg;
  char err[512];
  CHECK_MSG(hf_qwen2_config_read(fixture("config.json"), &cfg, err, sizeof err) == 0, "%s", err);
  cfg.unpacked = unpacked;
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  qwen2 m;
  CHECK(qwen2_init(&m, &ps, &cfg, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_params_find(&ps, "model.layers.1.self_attn.k_proj.bias") &&
        vt_params_find(&ps, "model.layers.1.mlp.up_proj.weight"));
  if (freeze_k) {
    CHECK(vt_params_set_trainable(&ps, "model.layers.*.self_attn.k_proj.weight", false) == 2);
    CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  }
  st_file w, ref;
  CHECK_MSG(st_file_open(&w, fixture("model.safetensors"), err, sizeof err) == 0, "%s", err);
  CHECK_MSG(st_file_open(&ref, fixture("reference.safetensors"), err, sizeof err) == 0, "%s", err);
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    const st_tensor *t = st_find(&w, p->name);
    CHECK(t && st_tensor_read(t, VT_F32, p->t.data, vt_nbytes(&p->t), err, sizeof err) == 0);
  }
  int32_t *ids = read_ref(&ref, "input_ids", VT_I32), *labels = read_ref(&ref, "labels", VT_I32);
  float *want = read_ref(&ref, "loss", VT_F32);
  const st_tensor *ti = st_find(&ref, "input_ids");
  int64_t sh[2] = {ti->shape[0], ti->shape[1]};
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *loss = qwen2_loss(&m, ctx, vt_from_host(ctx, VT_I32, 2, sh, ids),
                               vt_from_host(ctx, VT_I32, 2, sh, labels), NULL);
  float l = vt_item(ctx, loss);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  CHECK_MSG(fabs(l - want[0]) <= 256 * 1.1920929e-7 * fabs(want[0]), "loss %.8g, HF %.8g", l,
            want[0]);
  *n_grads = ps.grad_numel;
  *grads = malloc(sizeof(float) * ps.grad_numel);
  memcpy(*grads, ps.grad, sizeof(float) * ps.grad_numel);
  vt_ctx_free(ctx);
  free(ids);
  free(labels);
  free(want);
  st_file_close(&w);
  st_file_close(&ref);
  qwen2_free(&m);
  vt_params_free(&ps);
  return l;
}

static double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

int main(void) {
  for (int freeze = 0; freeze < 2; freeze++) {
    float *gp, *gu;
    size_t np, nu;
    float lp = step(false, freeze, &gp, &np), lu = step(true, freeze, &gu, &nu);
    CHECK(np == nu);
    /* the same values up to the order of a few sums: 64 ulps of the largest gradient */
    CHECK_MSG(fabs(lp - lu) <= 64 * 1.1920929e-7 * fabs(lu), "loss %.9g vs %.9g", lp, lu);
    if (np == nu)
      CHECK_CLOSE(freeze ? "gradients, k frozen" : "gradients", gp, gu, (long)np,
                  64 * 1.1920929e-7 * max_abs(gu, nu), 64 * 1.1920929e-7);
    free(gp);
    free(gu);
  }
  return vt_test_finish("test_model_qwen2_gemm_pack");
}
