// ctest-labels: unit grad
/* Qwen2's packed GEMMs (q/k/v as one, gate/up as one) against separate ones on the HF fixture
 * of test_qwen2_parity: the same loss and gradients within f32 rounding, and HF's loss either
 * way; with k_proj frozen the q/k/v view is refused, the separate path runs and the trainable
 * gradients still agree. Parameter names stay the HF ones. */
#include <stdlib.h>
#include <string.h>

#include "tests/parity.h"
#include "tests/testutil.h"

/* Loss and the flat gradient buffer of one step on the fixture batch. */
static float step(bool unpacked, bool freeze_k, float **grads, size_t *n_grads) {
  qwen2_cfg cfg = parity_qwen2_cfg();
  char err[512];
  cfg.unpacked = unpacked;
  vt_params ps;
  qwen2 m;
  parity_qwen2_init(&m, &ps, &cfg);
  CHECK(vt_params_find(&ps, "model.layers.1.self_attn.k_proj.bias") &&
        vt_params_find(&ps, "model.layers.1.mlp.up_proj.weight"));
  if (freeze_k) {
    CHECK(vt_params_set_trainable(&ps, "model.layers.*.self_attn.k_proj.weight", false) == 2);
    CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  }
  parity_load_weights(&ps, PARITY_QWEN2, (const char *[]){"model.safetensors", NULL});
  st_file ref;
  CHECK(parity_open(&ref, PARITY_QWEN2, "reference.safetensors"));
  parity_qwen2_batch bt = parity_qwen2_batch_read(&ref);
  float *want = parity_read(&ref, "loss", VT_F32, NULL);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *loss = parity_qwen2_loss(&m, ctx, &bt);
  float l = vt_item(ctx, loss);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  CHECK_MSG(fabs(l - want[0]) <= 256 * 1.1920929e-7 * fabs(want[0]), "loss %.8g, HF %.8g", l,
            want[0]);
  *n_grads = ps.grad_numel;
  *grads = malloc(sizeof(float) * ps.grad_numel);
  memcpy(*grads, ps.grad, sizeof(float) * ps.grad_numel);
  vt_ctx_free(ctx);
  parity_qwen2_batch_free(&bt);
  free(want);
  st_file_close(&ref);
  qwen2_free(&m);
  vt_params_free(&ps);
  return l;
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
                  64 * 1.1920929e-7 * parity_max_abs(gu, (int64_t)nu), 64 * 1.1920929e-7);
    free(gp);
    free(gu);
  }
  return vt_test_finish("test_model_qwen2_gemm_pack");
}
