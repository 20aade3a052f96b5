// ctest-labels: unit grad
/* Parity of model/qwen2.c with HF transformers (tests/reference/gen_qwen2_fixtures.py): a
 * small randomly initialised Qwen2 saved by transformers gives the same logits, loss and
 * gradient of every parameter on a fixed batch with -100 holes in the labels; the same with
 * activation recompute and with a small loss chunk. */
#include <stdlib.h>
#include <string.h>

#include "tests/parity.h"
#include "tests/testutil.h"

/* f32 tolerance for a forward/backward through a few layers of dot products of length up to
 * 96: errors of sqrt(K) ulps per product compound over the layers; 256 ulps of the largest
 * value covers that with room, and a wrong formula is off by far more. */
#define REL (256 * 1.1920929e-7)

static void run(bool recompute, int64_t chunk) {
  qwen2_cfg cfg = parity_qwen2_cfg();
  cfg.recompute = recompute;
  cfg.ce_chunk_rows = chunk;
  vt_params ps;
  qwen2 m;
  parity_qwen2_init(&m, &ps, &cfg);
  /* nothing unexpected in the file */
  CHECK(parity_load_weights(&ps, PARITY_QWEN2, (const char *[]){"model.safetensors", NULL}) ==
        ps.n);
  st_file ref;
  CHECK(parity_open(&ref, PARITY_QWEN2, "reference.safetensors"));
  parity_qwen2_batch bt = parity_qwen2_batch_read(&ref);
  int64_t n_logits;
  float *want_logits = parity_read(&ref, "logits", VT_F32, &n_logits);
  float *want_loss = parity_read(&ref, "loss", VT_F32, NULL);

  vt_ctx *ctx = vt_test_cpu_ctx();
  float *got = parity_qwen2_logits(&m, ctx, &bt);
  CHECK_CLOSE("logits", got, want_logits, (long)n_logits,
              REL * parity_max_abs(want_logits, n_logits), REL);

  vt_params_zero_grad(&ps);
  vt_tensor *loss = parity_qwen2_loss(&m, ctx, &bt);
  float l = vt_item(ctx, loss);
  CHECK_MSG(fabs(l - want_loss[0]) <= REL * fabs(want_loss[0]), "loss %.8g, HF %.8g", l,
            want_loss[0]);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  int compared = parity_check_grads(ctx, &ps, &ref, "grad.", REL);
  CHECK_MSG(compared == ps.n, "%d gradients compared of %d parameters", compared, ps.n);
  vt_ctx_free(ctx);
  parity_qwen2_batch_free(&bt);
  free(want_logits);
  free(want_loss);
  free(got);
  st_file_close(&ref);
  qwen2_free(&m);
  vt_params_free(&ps);
}

int main(void) {
  run(false, 0);
  run(true, 5); /* recompute per layer, logits 5 rows at a time */
  return vt_test_finish("test_qwen2_parity");
}
