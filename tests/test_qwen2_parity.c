// ctest-labels: unit grad
/* Parity of model/qwen2.c with HF transformers (tests/reference/gen_qwen2_fixtures.py): a
 * small randomly initialised Qwen2 saved by transformers gives the same logits, loss and
 * gradient of every parameter on a fixed batch with -100 holes in the labels; the same with
 * activation recompute and with a small loss chunk. */
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

/* Reads a reference tensor as f32 (or i32) into a new buffer. */
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

/* The largest |x|: the tolerances scale with the size of the values compared. */
static double max_abs(const float *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

/* f32 tolerance for a forward/backward through a few layers of dot products of length up to
 * 96: errors of sqrt(K) ulps per product compound over the layers; 256 ulps of the largest
 * value covers that with room, and a wrong formula is off by far more. */
#define REL (256 * 1.1920929e-7)

static void run(bool recompute, int64_t chunk) {
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
    if (t) CHECK(st_tensor_read(t, VT_F32, p->t.data, vt_nbytes(&p->t), err, sizeof err) == 0);
  }
  CHECK(w.n == ps.n); /* nothing unexpected in the file */

  int64_t n_ids, n_logits, n;
  int32_t *ids = read_ref(&ref, "input_ids", VT_I32, &n_ids);
  int32_t *labels = read_ref(&ref, "labels", VT_I32, &n);
  float *want_logits = read_ref(&ref, "logits", VT_F32, &n_logits);
  float *want_loss = read_ref(&ref, "loss", VT_F32, &n);
  const st_tensor *ti = st_find(&ref, "input_ids");
  int64_t b = ti->shape[0], t = ti->shape[1];

  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, ids);
  vt_tensor *tlab = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, labels);
  /* logits, without the tape */
  vt_set_grad_enabled(ctx, false);
  vt_tensor *pos = vt_new(ctx, VT_I32, 1, (int64_t[]){t});
  for (int64_t i = 0; i < t; i++) ((int32_t *)pos->data)[i] = (int32_t)i;
  vt_tensor *logits = qwen2_logits(
      &m, ctx, qwen2_forward(&m, ctx, qwen2_embed(&m, ctx, tid), &(qwen2_layout){.pos = pos}));
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  float *got = malloc(sizeof(float) * (size_t)n_logits);
  vt_to_host(ctx, logits, got);
  CHECK_CLOSE("logits", got, want_logits, (long)n_logits, REL * max_abs(want_logits, n_logits),
              REL);
  vt_set_grad_enabled(ctx, true);
  vt_ctx_reset(ctx);

  vt_params_zero_grad(&ps);
  tid = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, ids);
  tlab = vt_from_host(ctx, VT_I32, 2, (int64_t[]){b, t}, labels);
  vt_tensor *loss = qwen2_loss(&m, ctx, tid, tlab, NULL);
  float l = vt_item(ctx, loss);
  CHECK_MSG(fabs(l - want_loss[0]) <= REL * fabs(want_loss[0]), "loss %.8g, HF %.8g", l,
            want_loss[0]);
  CHECK_MSG(vt_backward(ctx, loss), "%s", vt_ctx_error(ctx));
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    char key[256];
    snprintf(key, sizeof key, "grad.%s", p->name);
    int64_t ng;
    float *want = read_ref(&ref, key, VT_F32, &ng);
    float *g = malloc(sizeof(float) * (size_t)ng);
    vt_grad_to_host(ctx, &p->t, g);
    CHECK_CLOSE(key, g, want, (long)ng, REL * max_abs(want, ng), REL);
    free(g);
    free(want);
  }
  vt_ctx_free(ctx);
  free(ids);
  free(labels);
  free(want_logits);
  free(want_loss);
  free(got);
  st_file_close(&w);
  st_file_close(&ref);
  qwen2_free(&m);
  vt_params_free(&ps);
}

int main(void) {
  run(false, 0);
  run(true, 5); /* recompute per layer, logits 5 rows at a time */
  return vt_test_finish("test_qwen2_parity");
}
