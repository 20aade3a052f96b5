// ctest-labels: unit
/* Packed sequences: two samples packed in one row (segment ids, positions restarting at 0,
 * the second sample's first label masked) give the same loss and the same gradient of every
 * parameter as the two samples in a padded batch of two rows. */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors_params.h"
#include "model/qwen2.h"
#include "tests/qwen2_config.h"
#include "tests/testutil.h"

enum { LA = 5, LB = 7 };

static float loss_and_grads(qwen2 *m, vt_params *ps, bool packed, float *grads) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  const int32_t a[LA] = {3, 17, 42, 8, 91}, b[LB] = {5, 5, 60, 2, 33, 71, 12};
  const int32_t la[LA] = {-100, 17, 42, 8, 91}, lb[LB] = {-100, -100, 60, 2, 33, 71, 12};
  vt_tensor *loss;
  if (packed) {
    int32_t ids[LA + LB], labels[LA + LB], pos[LA + LB], seg[LA + LB];
    for (int i = 0; i < LA; i++) ids[i] = a[i], labels[i] = la[i], pos[i] = i, seg[i] = 0;
    for (int i = 0; i < LB; i++)
      ids[LA + i] = b[i], labels[LA + i] = lb[i], pos[LA + i] = i, seg[LA + i] = 1;
    labels[LA] = -100; /* the last token of a must not predict the first of b */
    int64_t sh[2] = {1, LA + LB};
    qwen2_layout lay = {.pos = vt_from_host(ctx, VT_I32, 2, sh, pos),
                        .segments = vt_from_host(ctx, VT_I32, 2, sh, seg)};
    loss = qwen2_loss(m, ctx, vt_from_host(ctx, VT_I32, 2, sh, ids),
                      vt_from_host(ctx, VT_I32, 2, sh, labels), &lay);
  } else {
    int32_t ids[2 * LB] = {0}, labels[2 * LB], len[2] = {LA, LB};
    for (int i = 0; i < 2 * LB; i++) labels[i] = -100;
    for (int i = 0; i < LA; i++) ids[i] = a[i], labels[i] = la[i];
    for (int i = 0; i < LB; i++) ids[LB + i] = b[i], labels[LB + i] = lb[i];
    int64_t sh[2] = {2, LB};
    qwen2_layout lay = {.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, len)};
    loss = qwen2_loss(m, ctx, vt_from_host(ctx, VT_I32, 2, sh, ids),
                      vt_from_host(ctx, VT_I32, 2, sh, labels), &lay);
  }
  float l = vt_item(ctx, loss);
  vt_params_zero_grad(ps);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  memcpy(grads, ps->grad, sizeof(float) * ps->grad_numel);
  vt_ctx_free(ctx);
  return l;
}

int main(void) {
  char path[1024], err[1024];
  snprintf(path, sizeof path, "%s/qwen2_tiny/config.json", getenv("VT_FIXTURES"));
  qwen2_cfg cfg;
  CHECK_MSG(hf_qwen2_config_read(path, &cfg, err, sizeof err) == 0, "%s", err);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  qwen2 m;
  CHECK(qwen2_init(&m, &ps, &cfg, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  snprintf(path, sizeof path, "%s/qwen2_tiny/model.safetensors", getenv("VT_FIXTURES"));
  CHECK_MSG(st_load_params_path(&ps, path, 0, err, sizeof err) == 0, "%s", err);
  size_t n = ps.grad_numel;
  float *gu = malloc(sizeof(float) * n), *gp = malloc(sizeof(float) * n);
  float lu = loss_and_grads(&m, &ps, false, gu), lp = loss_and_grads(&m, &ps, true, gp);
  printf("loss: padded batch %.7f, packed row %.7f\n", lu, lp);
  /* the same sums in another order: a few hundred f32 ulps of the largest value */
  double mx = 0;
  for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(gu[i]));
  CHECK(fabs(lu - lp) <= 256 * 1.1920929e-7 * fabs(lu));
  CHECK_CLOSE("gradients", gp, gu, (long)n, 256 * 1.1920929e-7 * mx, 256 * 1.1920929e-7);
  free(gu);
  free(gp);
  qwen2_free(&m);
  vt_params_free(&ps);
  return vt_test_finish("test_qwen2_pack");
}
