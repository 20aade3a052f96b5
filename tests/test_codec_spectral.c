// ctest-labels: unit grad
/* The spectral ops of autograd/ops_spectral.h: the STFT (FFTW) against a direct DFT, and its
 * backward (the adjoint transform) by central differences, with and without a window, for
 * overlapping and gapped frames; the complex magnitude and the clamped log likewise; and the
 * errors they report. */
#include <stdlib.h>
#include <string.h>

#include "model/mel.h"
#include "tests/gradcheck.h"

typedef struct {
  int n_fft, hop;
  bool window;
} stft_case;

static vt_tensor *g_stft(vt_ctx *ctx, vt_tensor **in, void *user) {
  const stft_case *c = user;
  return vt_stft(ctx, in[0], c->window ? in[1] : NULL, c->n_fft, c->hop);
}

static vt_tensor *g_mag_log(vt_ctx *ctx, vt_tensor **in, void *user) {
  (void)user;
  /* |z| then log, with the clamp active on a part of the values (|z| < 0.3) */
  return vt_log_clamp(ctx, vt_complex_abs(ctx, in[0], 1e-3f), 0.3f);
}

static void test_stft_values(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_rng r;
  vt_rng_seed(&r, 7);
  float x[2 * 40], w[16];
  vt_test_fill_uniform(&r, x, 80, -1, 1);
  mel_hann_window(w, 16);
  vt_tensor *xt = vt_from_host(ctx, VT_F32, 2, (int64_t[]){2, 40}, x);
  vt_tensor *wt = vt_from_host(ctx, VT_F32, 1, (int64_t[]){16}, w);
  vt_tensor *s = vt_stft(ctx, xt, wt, 16, 5); /* frames 1 + (40 - 16) / 5 = 5 */
  CHECK(!vt_ctx_failed(ctx) && s->ndim == 4 && s->shape[1] == 5 && s->shape[2] == 9 &&
        s->shape[3] == 2);
  float got[2 * 5 * 9 * 2], want[2 * 5 * 9 * 2];
  vt_to_host(ctx, s, got);
  for (int b = 0; b < 2; b++)
    for (int t = 0; t < 5; t++)
      for (int k = 0; k < 9; k++) {
        double re = 0, im = 0;
        for (int n = 0; n < 16; n++) {
          double v = x[b * 40 + t * 5 + n] * w[n], a = 2 * 3.14159265358979323846 * k * n / 16;
          re += v * cos(a);
          im -= v * sin(a);
        }
        want[((b * 5 + t) * 9 + k) * 2] = (float)re;
        want[((b * 5 + t) * 9 + k) * 2 + 1] = (float)im;
      }
  CHECK_CLOSE("stft vs direct DFT", got, want, 180, 1e-5, 1e-5);
  /* bad input: too short, odd n_fft, wrong window */
  vt_stft(ctx, xt, NULL, 64, 4);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "L >= n_fft 64"));
  vt_ctx_clear_error(ctx);
  vt_stft(ctx, xt, wt, 15, 4);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "even"));
  vt_ctx_clear_error(ctx);
  vt_stft(ctx, xt, wt, 8, 4);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "window"));
  vt_ctx_clear_error(ctx);
  vt_log_clamp(ctx, xt, 0.0f);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "> 0"));
  vt_ctx_clear_error(ctx);
  vt_complex_abs(ctx, xt, 1e-9f);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "[..., 2]"));
  vt_ctx_free(ctx);
}

static void test_stft_grad(void) {
  vt_rng r;
  vt_rng_seed(&r, 11);
  static float x[3 * 50], w[20];
  vt_test_fill_uniform(&r, x, 150, -1, 1);
  mel_hann_window(w, 20);
  /* overlapping frames (hop < n_fft), gapped frames (hop > n_fft: samples without gradient) */
  stft_case cases[3] = {{20, 6, true}, {20, 6, false}, {8, 11, false}};
  for (int i = 0; i < 3; i++) {
    vt_gc_input in[2] = {{VT_F32, 2, {3, 50}, x, true}, {VT_F32, 1, {20}, w, false}};
    char name[64];
    snprintf(name, sizeof name, "stft n_fft %d hop %d%s", cases[i].n_fft, cases[i].hop,
             cases[i].window ? " hann" : "");
    CHECK_GRAD(name, g_stft, &cases[i], in, cases[i].window ? 2 : 1);
  }
}

static void test_mag_log_grad(void) {
  vt_rng r;
  vt_rng_seed(&r, 5);
  static float z[4 * 6 * 2];
  vt_test_fill_uniform(&r, z, 48, -1, 1);
  /* keep values away from the clamp's kink at |z| = 0.3, where differences straddle it */
  for (int i = 0; i < 24; i++) {
    double m = sqrt(z[2 * i] * z[2 * i] + z[2 * i + 1] * z[2 * i + 1]);
    if (fabs(m - 0.3) < 0.05) z[2 * i] *= 2;
  }
  vt_gc_input in[1] = {{VT_F32, 3, {4, 6, 2}, z, true}};
  CHECK_GRAD("complex_abs + log_clamp", g_mag_log, NULL, in, 1);
}

int main(void) {
  test_stft_values();
  test_stft_grad();
  test_mag_log_grad();
  return vt_test_finish("test_codec_spectral");
}
