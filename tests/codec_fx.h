/* Helpers of the codec tests (tests/test_codec*.c) for tests/fixtures/codec/codec.txt, written
 * by tests/reference/gen_codec_fixtures.py: the hashed parameter values and test weights
 * (hu), filling a model's parameters from the fixture, the small config both sides use, and
 * comparisons of whole gradients (G.NAME) or their projections (GP.NAME). */
#ifndef VT_CODEC_FX_H
#define VT_CODEC_FX_H

#include <stdlib.h>
#include <string.h>

#include "model/codec.h"
#include "model/disc.h"
#include "tests/fixture.h"
#include "tests/testutil.h"

static vt_fixture *FX;

static const vt_fixture_tensor *fx_opt(const char *name) {
  for (int i = 0; i < FX->n; i++)
    if (!strcmp(FX->t[i].name, name)) return &FX->t[i];
  return NULL;
}

static const vt_fixture_tensor *fx_need(const char *name) {
  const vt_fixture_tensor *t = fx_opt(name);
  if (!t) {
    fprintf(stderr, "fixture has no %s\n", name);
    exit(1);
  }
  return t;
}

static inline vt_tensor *fx_load(vt_ctx *ctx, const char *name) {
  const vt_fixture_tensor *t = fx_need(name);
  return t->is_int ? vt_from_host(ctx, VT_I32, t->ndim, t->shape, t->i)
                   : vt_from_host(ctx, VT_F32, t->ndim, t->shape, t->f);
}

/* The reference's hu(): splitmix64 of FNV-1a(name) + (i + 1) * golden, top 24 bits as a
 * uniform in [-1, 1) (exact in f32). */
static inline double fx_hu1(uint64_t seed, int64_t i) {
  uint64_t z = seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return (double)(z >> 40) / (double)(1 << 23) - 1.0;
}

static inline uint64_t fx_fnv(const char *s) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001B3ull;
  return h;
}

static inline void fx_hu(const char *name, float *out, int64_t n) {
  uint64_t seed = fx_fnv(name);
  for (int64_t i = 0; i < n; i++) out[i] = (float)fx_hu1(seed, i);
}

/* The weights of a case's sum(out * w): hu("w." + name) in out's shape. */
static inline vt_tensor *fx_weight(vt_ctx *ctx, const char *name, const vt_tensor *like) {
  char key[256];
  snprintf(key, sizeof key, "w.%s", name);
  int64_t n = vt_numel(like);
  float *h = malloc(sizeof(float) * (size_t)n);
  fx_hu(key, h, n);
  vt_tensor *w = vt_from_host(ctx, VT_F32, like->ndim, like->shape, h);
  free(h);
  return w;
}

static inline vt_tensor *fx_dot(vt_ctx *ctx, const char *name, vt_tensor *y) {
  return vt_sum(ctx, vt_mul(ctx, y, fx_weight(ctx, name, y)), VT_ALL_AXES, false);
}

/* Fills every parameter of ps from the fixture: V.NAME whole, or hu(NAME) * S.NAME. Names
 * containing one of the n_opt strings `optional` may be absent (left zero). */
static inline void fx_fill_params(vt_params *ps, const char *const *optional, int n_opt) {
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    char key[300];
    int64_t n = vt_numel(&p->t);
    snprintf(key, sizeof key, "V.%s", p->name);
    const vt_fixture_tensor *v = fx_opt(key);
    float *h = malloc(sizeof(float) * (size_t)n);
    if (v) {
      CHECK_MSG(v->n == n, "%s: %ld values for %lld", key, v->n, (long long)n);
      memcpy(h, v->f, sizeof(float) * (size_t)(v->n < n ? v->n : n));
    } else {
      snprintf(key, sizeof key, "S.%s", p->name);
      const vt_fixture_tensor *s = fx_opt(key);
      bool opt = false;
      for (int k = 0; k < n_opt; k++) opt |= strstr(p->name, optional[k]) != NULL;
      CHECK_MSG(s || opt, "parameter %s is not in the fixture", p->name);
      fx_hu(p->name, h, n);
      for (int64_t j = 0; j < n; j++) h[j] = s ? h[j] * s->f[0] : 0.0f;
    }
    ps->be->copy(ps->be, p->t.data, h, sizeof(float) * (size_t)n, VT_COPY_H2D);
    free(h);
  }
}

static inline double fx_max_abs(const float *x, long n) {
  double m = 0;
  for (long i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

/* f32 against the float64 reference through a few dozen layers: each op rounds to ~6e-8
 * relative, and errors grow through the depth; tol is the relative error allowed against the
 * largest value (plus the same relative per element). */
static inline void fx_close(const char *what, const float *got, const vt_fixture_tensor *want,
                            double tol) {
  CHECK_CLOSE(what, got, want->f, want->n, tol * fmax(1e-30, fx_max_abs(want->f, want->n)), tol);
}

static inline void fx_check_tensor(vt_ctx *ctx, const char *what, vt_tensor *t, const char *key,
                                   double tol) {
  const vt_fixture_tensor *want = fx_need(key);
  if (vt_ctx_failed(ctx) || vt_numel(t) != want->n) {
    CHECK_MSG(false, "%s: %s (%lld values, want %ld)", what,
              vt_ctx_failed(ctx) ? vt_ctx_error(ctx) : "size", (long long)vt_numel(t), want->n);
    return;
  }
  float *h = malloc(sizeof(float) * (size_t)want->n);
  if (t->dtype == VT_I32) {
    int32_t *iv = malloc(sizeof(int32_t) * (size_t)want->n);
    vt_to_host(ctx, t, iv);
    long bad = 0;
    for (long i = 0; i < want->n; i++) bad += iv[i] != want->i[i];
    CHECK_MSG(bad == 0, "%s: %ld of %ld codes differ", what, bad, want->n);
    free(iv);
  } else {
    vt_to_host(ctx, t, h);
    fx_close(what, h, want, tol);
  }
  free(h);
}

static inline void fx_check_grad(vt_ctx *ctx, const char *what, vt_tensor *t, const char *key,
                                 double tol) {
  const vt_fixture_tensor *want = fx_need(key);
  float *h = malloc(sizeof(float) * (size_t)want->n);
  CHECK_MSG(vt_numel(t) == want->n, "%s: size", what);
  if (vt_numel(t) == want->n) {
    vt_grad_to_host(ctx, t, h);
    fx_close(what, h, want, tol);
  }
  free(h);
}

/* Every trainable parameter whose name starts with prefix against KEY + G.NAME (whole) or
 * KEY + GP.NAME ([sum g h, sum |g h|, sum g^2], h = hu(NAME + "#p")). */
static inline void fx_check_param_grads(vt_ctx *ctx, vt_params *ps, const char *prefix,
                                        const char *key, double tol) {
  /* a gradient that cancels to ~0 (a bias before BatchNorm) is checked against the scale of
   * the largest whole-stored gradient of the group, not its own */
  double scale = 0;
  for (int i = 0; i < ps->n; i++) {
    char k[300];
    snprintf(k, sizeof k, "%sG.%s", key, ps->items[i]->name);
    const vt_fixture_tensor *t = fx_opt(k);
    if (t && !strncmp(ps->items[i]->name, prefix, strlen(prefix)))
      scale = fmax(scale, fx_max_abs(t->f, t->n));
  }
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (strncmp(p->name, prefix, strlen(prefix)) || !p->trainable) continue;
    char k[300];
    snprintf(k, sizeof k, "%sG.%s", key, p->name);
    const vt_fixture_tensor *whole = fx_opt(k);
    if (whole) {
      float *h = malloc(sizeof(float) * (size_t)whole->n);
      vt_grad_to_host(ctx, &p->t, h);
      /* a gradient that is zero by construction (a bias before training-mode BatchNorm, the
       * reference's is ~1e-13) is f32 round-off of a sum of terms of the group's scale: which
       * value it lands on depends on the summation order of every conv upstream (2e-4 for
       * 14.9 seen), so it gets the group's whole scale */
      double want_max = fx_max_abs(whole->f, whole->n);
      double floor = want_max < 1e-6 * scale ? scale : 1e-2 * scale;
      CHECK_CLOSE(k, h, whole->f, whole->n, tol * fmax(want_max, floor), tol);
      free(h);
      continue;
    }
    snprintf(k, sizeof k, "%sGP.%s", key, p->name);
    const vt_fixture_tensor *gp = fx_opt(k);
    CHECK_MSG(gp, "fixture has no gradient of %s", p->name);
    if (!gp) continue;
    int64_t n = vt_numel(&p->t);
    float *g = malloc(sizeof(float) * (size_t)n), *hh = malloc(sizeof(float) * (size_t)n);
    vt_grad_to_host(ctx, &p->t, g);
    char hk[300];
    snprintf(hk, sizeof hk, "%s#p", p->name);
    fx_hu(hk, hh, n);
    double dot = 0, sq = 0;
    for (int64_t j = 0; j < n; j++) {
      dot += (double)g[j] * hh[j];
      sq += (double)g[j] * g[j];
    }
    /* the projection's error is bounded by tol times the sum of |g h| */
    CHECK_MSG(fabs(dot - gp->f[0]) <= tol * gp->f[1] + 1e-30,
              "%s: sum g h %.9g, want %.9g (scale %.3g)", k, dot, gp->f[0], gp->f[1]);
    CHECK_MSG(fabs(sq - gp->f[2]) <= 2 * tol * gp->f[2] + 1e-30, "%s: sum g^2 %.9g, want %.9g", k,
              sq, gp->f[2]);
    free(g);
    free(hh);
  }
}

/* The small config of gen_codec_fixtures.py. */
static inline codec_cfg fx_codec_cfg(void) {
  codec_cfg c = codec_cfg_vita();
  c.n_stages = 2;
  c.rates[0] = 4, c.rates[1] = 2;
  c.kernels[0] = 8, c.kernels[1] = 4;
  c.n_res = 2;
  c.res_kernels[0] = 3, c.res_kernels[1] = 5;
  c.n_dil = 2;
  c.res_dilations[0][0] = 1, c.res_dilations[0][1] = 2;
  c.res_dilations[1][0] = 1, c.res_dilations[1][1] = 2;
  c.enc_ch = 4;
  c.gen_ch = 16;
  c.group_ch = 4;
  c.global_hidden = 4;
  c.global_dim = 8;
  c.n_codes = 16;
  c.n_global = 4;
  return c;
}

static inline disc_cfg fx_disc_cfg(int n_periods, const int *periods, int n_scales, int n_stft,
                                   const int *n_fft, const int *hop) {
  disc_cfg d = disc_cfg_vita();
  const int mpd[5] = {4, 8, 8, 16, 16}, msd[7] = {4, 4, 8, 8, 16, 16, 16},
            groups[7] = {1, 2, 2, 2, 2, 2, 1};
  memcpy(d.mpd_ch, mpd, sizeof mpd);
  memcpy(d.msd_ch, msd, sizeof msd);
  memcpy(d.msd_groups, groups, sizeof groups);
  d.n_periods = n_periods;
  for (int i = 0; i < n_periods; i++) d.periods[i] = periods[i];
  d.n_scales = n_scales;
  d.n_stft = n_stft;
  for (int i = 0; i < n_stft; i++) d.stft_n_fft[i] = n_fft[i], d.stft_hop[i] = hop[i];
  d.stft_filters = 4;
  return d;
}

#endif
