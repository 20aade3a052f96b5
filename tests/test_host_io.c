// ctest-labels: unit cuda
/* The host <-> device helpers the upper layers use instead of touching tensor memory:
 * parameter writes and reads (as stored and converted from / to f32), fills, gradients, the
 * flat gradient buffer, ranged copies of step tensors, raw device buffers, and backend
 * instances shared by a ctx and a store. Each runs on the CPU backend and, when a GPU is
 * present, on cuda:0 with the same expectations. */
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static void check_params(vt_device dev) {
  vt_params ps;
  if (vt_params_init(&ps, dev)) return;
  char err[256] = "";
  vt_tensor *w = vt_params_add(&ps, "w", VT_F32, 2, (int64_t[]){3, 5}, err, sizeof err);
  vt_tensor *h = vt_params_add(&ps, "h", VT_BF16, 1, (int64_t[]){4097}, err, sizeof err);
  vt_tensor *f = vt_params_add(&ps, "frozen", VT_F32, 1, (int64_t[]){7}, err, sizeof err);
  CHECK(w && h && f);
  vt_params_set_trainable(&ps, "frozen", false);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);

  float wv[15], back[15];
  for (int i = 0; i < 15; i++) wv[i] = 0.25f * (float)i - 1.0f;
  CHECK(vt_param_write(&ps, w, wv, err, sizeof err) == 0);
  CHECK(vt_param_read(&ps, w, back, err, sizeof err) == 0);
  CHECK(memcmp(wv, back, sizeof wv) == 0);

  /* bf16 over more than one conversion chunk: rounded to nearest even, read back exactly */
  enum { NH = 4097 };
  float *hv = malloc(sizeof(float) * NH), *hb = malloc(sizeof(float) * NH);
  uint16_t *raw = malloc(sizeof(uint16_t) * NH);
  for (int i = 0; i < NH; i++) hv[i] = 1.0f + (float)i * 1e-3f;
  CHECK(vt_param_write_f32(&ps, h, hv, err, sizeof err) == 0);
  CHECK(vt_param_read(&ps, h, raw, err, sizeof err) == 0);
  CHECK(vt_param_read_f32(&ps, h, hb, err, sizeof err) == 0);
  int bad = 0;
  for (int i = 0; i < NH; i++) {
    bad += raw[i] != vt_f32_to_bf16(hv[i]);
    bad += hb[i] != vt_bf16_to_f32(vt_f32_to_bf16(hv[i]));
  }
  CHECK_MSG(bad == 0, "%d bf16 values differ", bad);
  CHECK(vt_param_fill(&ps, h, -2.5f, err, sizeof err) == 0);
  CHECK(vt_param_read_f32(&ps, h, hb, err, sizeof err) == 0);
  CHECK(hb[0] == -2.5f && hb[NH - 1] == -2.5f);
  CHECK(vt_param_fill(&ps, w, 3.0f, err, sizeof err) == 0);
  CHECK(vt_param_read_f32(&ps, w, back, err, sizeof err) == 0);
  CHECK(back[0] == 3.0f && back[14] == 3.0f);

  /* gradients: the flat buffer round trip, scaling, per-parameter reads, frozen = zeros */
  CHECK(ps.grad_numel >= 15);
  float *g = calloc(ps.grad_numel, sizeof(float)), *g2 = calloc(ps.grad_numel, sizeof(float));
  for (size_t i = 0; i < ps.grad_numel; i++) g[i] = (float)i;
  vt_params_grad_from_host(&ps, g);
  vt_params_scale_grad(&ps, 0.5f);
  vt_params_grad_to_host(&ps, g2);
  bad = 0;
  for (size_t i = 0; i < ps.grad_numel; i++) bad += g2[i] != 0.5f * (float)i;
  CHECK_MSG(bad == 0, "%d scaled gradient values differ", bad);
  float gw[15], gf[7] = {1, 1, 1, 1, 1, 1, 1};
  CHECK(vt_param_grad_read(&ps, w, gw, err, sizeof err) == 0);
  CHECK(gw[3] == 0.5f * (float)(vt_params_find(&ps, "w")->grad_offset + 3));
  CHECK(vt_param_grad_read(&ps, f, gf, err, sizeof err) == 0);
  CHECK(gf[0] == 0.0f && gf[6] == 0.0f);

  /* a tensor that is not a parameter of this store is refused, by name */
  vt_params other;
  CHECK(vt_params_init(&other, dev) == 0);
  vt_tensor *o = vt_params_add(&other, "other.weight", VT_F32, 1, (int64_t[]){15}, err, sizeof err);
  CHECK(vt_params_alloc(&other, err, sizeof err) == 0);
  CHECK(vt_param_write(&ps, o, wv, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "other.weight") && strstr(err, "outside"), "err: %s", err);
  vt_tensor fake = *w;
  fake.is_param = false;
  CHECK(vt_param_read(&ps, &fake, back, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "parameter w: not a parameter"), "err: %s", err);
  vt_params_free(&other);
  free(g);
  free(g2);
  free(hv);
  free(hb);
  free(raw);
  vt_params_free(&ps);
}

static void check_ctx(vt_device dev) {
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = dev}, NULL);
  if (!ctx) return;
  vt_tensor *t = vt_zeros(ctx, VT_I32, 1, (int64_t[]){10});
  int32_t a[4] = {7, 8, 9, 10}, all[10];
  vt_write_host(ctx, t, 6, 4, a);
  vt_to_host(ctx, t, all);
  CHECK(all[0] == 0 && all[5] == 0 && all[6] == 7 && all[9] == 10);
  int32_t two[2];
  vt_read_host(ctx, t, 7, 2, two);
  CHECK(two[0] == 8 && two[1] == 9);
  CHECK(!vt_ctx_failed(ctx));
  vt_write_host(ctx, t, 8, 4, a);
  CHECK(vt_ctx_failed(ctx));
  CHECK_MSG(strstr(vt_ctx_error(ctx), "write_host: elements [8, 12) lie outside [10] i32"),
            "err: %s", vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_read_host(ctx, t, -1, 1, two);
  CHECK(vt_ctx_failed(ctx));
  vt_ctx_free(ctx);

  /* raw device buffers */
  const vt_backend *be = vt_backend_for(dev, NULL);
  float *d = vt_buf_alloc_zeroed(be, 40 * sizeof(float));
  float h[40] = {1}, src[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  vt_buf_to_host(be, h, d, sizeof h);
  CHECK(h[0] == 0.0f && h[39] == 0.0f);
  vt_buf_fill_f32(be, d, 40, 1.5f);
  vt_buf_from_host(be, d + 5, src, sizeof src);
  vt_backend_sync(be);
  vt_buf_to_host(be, h, d, sizeof h);
  CHECK(h[4] == 1.5f && h[5] == 1.0f && h[14] == 10.0f && h[15] == 1.5f);
  vt_buf_free(be, d);
  vt_buf_free(be, NULL);
  vt_backend_free(be); /* a no-op for the shared CPU instance */
}

/* Instances: a ctx and a store share one borrowed instance; families are named; a device
 * that does not exist is refused with a reason; two CUDA instances work independently. */
static void check_instances(void) {
  const char *why = NULL;
  CHECK(vt_backend_for((vt_device){(vt_device_type)7, 0}, &why) == NULL);
  CHECK_MSG(why && strstr(why, "unknown device"), "why: %s", why ? why : "(null)");
  why = NULL;
  CHECK(vt_backend_cuda(vt_cuda_device_count(), &why) == NULL && why != NULL);
  CHECK(!strcmp(vt_backend_family_name(VT_FAMILY_NORM), "norm"));
  CHECK(!strcmp(vt_backend_family_name(VT_FAMILY_OPTIM), "optim"));
  CHECK(vt_backend_has_family(vt_backend_cpu(), VT_FAMILY_ATTN));
  vt_backend_free(vt_backend_cpu()); /* the shared CPU instance ignores it */

  vt_device dev = {vt_cuda_device_count() > 0 ? VT_DEV_CUDA : VT_DEV_CPU, 0};
  const vt_backend *be = vt_backend_for(dev, &why);
  CHECK_MSG(be != NULL, "%s", why);
  if (!be) return;
  vt_params ps;
  vt_params_init_backend(&ps, be);
  CHECK(ps.be == be && ps.device.type == dev.type);
  char err[256];
  vt_tensor *w = vt_params_add(&ps, "w", VT_F32, 1, (int64_t[]){4}, err, sizeof err);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_param_write_f32(&ps, w, (float[]){1, 2, 3, 4}, err, sizeof err) == 0);
  /* the device comes from the borrowed instance, whatever .device says */
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}, .backend = be}, NULL);
  CHECK(vt_ctx_backend(ctx) == be && vt_ctx_device(ctx).type == dev.type);
  float y[4];
  vt_to_host(ctx, vt_scale(ctx, w, 2.0f), y);
  CHECK(y[0] == 2.0f && y[3] == 8.0f);
  vt_ctx_free(ctx); /* does not release the borrowed instance */
  CHECK(vt_param_read_f32(&ps, w, y, err, sizeof err) == 0 && y[2] == 3.0f);
  vt_params_free(&ps);
  if (dev.type == VT_DEV_CUDA) {
    /* a second instance: its own stream; releasing it leaves the first working */
    vt_backend *b2 = vt_backend_cuda(0, &why);
    CHECK(b2 != NULL && b2 != be && b2->impl != be->impl);
    float *d2 = vt_buf_alloc(b2, 16), h[4] = {0};
    vt_buf_fill_f32(b2, d2, 4, 7.0f);
    vt_buf_to_host(b2, h, d2, 16);
    CHECK(h[0] == 7.0f && h[3] == 7.0f);
    vt_buf_free(b2, d2);
    vt_backend_free(b2);
    float *d1 = vt_buf_alloc(be, 16);
    vt_buf_fill_f32(be, d1, 4, 5.0f);
    vt_buf_to_host(be, h, d1, 16);
    CHECK(h[1] == 5.0f);
    vt_buf_free(be, d1);
  }
  vt_backend_free(be);
}

int main(void) {
  check_instances();
  check_params((vt_device){VT_DEV_CPU, 0});
  check_ctx((vt_device){VT_DEV_CPU, 0});
  if (vt_cuda_device_count() > 0) {
    check_params((vt_device){VT_DEV_CUDA, 0});
    check_ctx((vt_device){VT_DEV_CUDA, 0});
  }
  return vt_test_finish("test_host_io");
}
