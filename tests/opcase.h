/* One op case against a PyTorch fixture (tests/reference/gen_norm_conv_fixtures.py layout:
 * NAME.in<i>, NAME.out, NAME.w, NAME.grad<i>, NAME.<extra>): forward, then the gradients of
 * sum(out * w), then a finite-difference check of the same graph on the same inputs.
 * Header-only (static) so each test binary that uses it stays one file. */
#ifndef VT_TEST_OPCASE_H
#define VT_TEST_OPCASE_H

#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fixture.h"
#include "tests/gradcheck.h"

/* Tensors a graph function reports besides its output (running statistics, indices), compared
 * with NAME.<name> after the forward. */
typedef struct {
  vt_tensor *t[2];
  const char *name[2];
} opcase_extra;

static const vt_fixture_tensor *opcase_find(const vt_fixture *fx, const char *name) {
  for (int i = 0; i < fx->n; i++)
    if (strcmp(fx->t[i].name, name) == 0) return &fx->t[i];
  return NULL;
}

/* Tolerance from f32: each value is a short chain of f32 operations over at most a few dozen
 * terms, so its rounding error is a modest multiple of eps times the size of the terms,
 * bounded by the largest magnitude in the reference tensor. 64 eps leaves room for the
 * different summation orders of PyTorch and us; cases with large RoPE angles pass a bigger
 * multiple (see there). */
static void opcase_compare(const char *what, const float *got, const vt_fixture_tensor *want,
                           double mult) {
  double scale = 0;
  for (long i = 0; i < want->n; i++) scale = fmax(scale, fabs((double)want->f[i]));
  double tol = mult * FLT_EPSILON;
  CHECK_CLOSE(what, got, want->f, want->n, tol * (scale > 1 ? scale : 1), tol);
}

static bool opcase_shape_is(const vt_tensor *t, const vt_fixture_tensor *f) {
  if (t->ndim != f->ndim) return false;
  for (int d = 0; d < t->ndim; d++)
    if (t->shape[d] != f->shape[d]) return false;
  return true;
}

/* Runs case `name` with n_in inputs through fn; mult scales the f32 tolerance; with
 * gradcheck, also checks the tape against finite differences. */
static void opcase_run(const vt_fixture *fx, const char *name, vt_gc_graph fn, int n_in,
                       double mult, bool gradcheck) {
  char key[160];
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_tensor *in[VT_GC_MAX_IN];
  const vt_fixture_tensor *fin[VT_GC_MAX_IN], *fgrad[VT_GC_MAX_IN];
  for (int i = 0; i < n_in; i++) {
    snprintf(key, sizeof key, "%s.in%d", name, i);
    fin[i] = vt_fixture_get(fx, key);
    snprintf(key, sizeof key, "%s.grad%d", name, i);
    fgrad[i] = opcase_find(fx, key);
    in[i] = vt_from_host(ctx, fin[i]->is_int ? VT_I32 : VT_F32, fin[i]->ndim, fin[i]->shape,
                         fin[i]->is_int ? (void *)fin[i]->i : (void *)fin[i]->f);
    if (fgrad[i]) vt_requires_grad(ctx, in[i]);
  }
  opcase_extra ex = {{0}, {0}};
  vt_tensor *out = fn(ctx, in, &ex);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s: %s", name, vt_ctx_error(ctx));
  if (vt_ctx_failed(ctx)) {
    vt_ctx_free(ctx);
    return;
  }
  snprintf(key, sizeof key, "%s.out", name);
  const vt_fixture_tensor *fout = vt_fixture_get(fx, key);
  CHECK_MSG(opcase_shape_is(out, fout), "%s: output shape", name);
  if (opcase_shape_is(out, fout)) {
    float *y = malloc(sizeof(float) * (size_t)fout->n);
    vt_to_host(ctx, out, y);
    opcase_compare(key, y, fout, mult);
    free(y);
  }
  for (int k = 0; k < 2 && ex.t[k]; k++) {
    snprintf(key, sizeof key, "%s.%s", name, ex.name[k]);
    const vt_fixture_tensor *fe = vt_fixture_get(fx, key);
    CHECK_MSG(vt_numel(ex.t[k]) == fe->n, "%s: size", key);
    if (vt_numel(ex.t[k]) != fe->n) continue;
    if (ex.t[k]->dtype == VT_I32) {
      int32_t *v = malloc(sizeof(int32_t) * (size_t)fe->n);
      vt_to_host(ctx, ex.t[k], v);
      CHECK_MSG(memcmp(v, fe->i, sizeof(int32_t) * (size_t)fe->n) == 0, "%s differs", key);
      free(v);
    } else {
      float *v = malloc(sizeof(float) * (size_t)fe->n);
      vt_to_host(ctx, ex.t[k], v);
      opcase_compare(key, v, fe, mult);
      free(v);
    }
  }
  if (out->requires_grad) {
    snprintf(key, sizeof key, "%s.w", name);
    const vt_fixture_tensor *fw = vt_fixture_get(fx, key);
    vt_tensor *w = vt_from_host(ctx, VT_F32, fw->ndim, fw->shape, fw->f);
    vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, out, w), VT_ALL_AXES, false));
    CHECK_MSG(!vt_ctx_failed(ctx), "%s backward: %s", name, vt_ctx_error(ctx));
    for (int i = 0; i < n_in && !vt_ctx_failed(ctx); i++) {
      if (!fgrad[i]) continue;
      float *g = malloc(sizeof(float) * (size_t)fgrad[i]->n);
      vt_grad_to_host(ctx, in[i], g);
      snprintf(key, sizeof key, "%s.grad%d", name, i);
      opcase_compare(key, g, fgrad[i], mult);
      free(g);
    }
  }
  vt_ctx_free(ctx);
  if (!gradcheck) return;
  vt_gc_input gin[VT_GC_MAX_IN];
  for (int i = 0; i < n_in; i++) {
    size_t bytes = sizeof(float) * (size_t)fin[i]->n;
    gin[i] = (vt_gc_input){.dtype = fin[i]->is_int ? VT_I32 : VT_F32,
                           .ndim = fin[i]->ndim,
                           .host = malloc(bytes ? bytes : 1),
                           .diff = fgrad[i] != NULL};
    memcpy(gin[i].shape, fin[i]->shape, sizeof(int64_t) * (size_t)fin[i]->ndim);
    memcpy(gin[i].host, fin[i]->is_int ? (void *)fin[i]->i : (void *)fin[i]->f, bytes);
  }
  opcase_extra gex;
  CHECK_GRAD(name, fn, &gex, gin, n_in);
  for (int i = 0; i < n_in; i++) free(gin[i].host);
}

#endif
