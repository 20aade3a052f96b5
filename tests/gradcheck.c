/* Central-difference gradient checks; see gradcheck.h.
 *
 * Tolerance, derived from f32: out is computed in f32, so L (summed in double) carries a
 * rounding error of about eps * S with S = sum |w * out|; the central difference divides
 * that by 2h, and its truncation error is O(h^2) relative. With h = eps^(1/3) * max(1, |x|)
 * the two balance; we allow 4 eps S / h absolute plus 1e-2 relative. */
#include "tests/gradcheck.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  vt_gc_graph fn;
  void *user;
  vt_gc_input *in;
  int n_in;
  float *w;
  long n_out;
} gc_state;

/* Builds the graph with current host inputs; returns L (double) and S; fills grads. */
static bool eval(vt_ctx *ctx, gc_state *st, bool with_grad, double *L, double *S, float **grads) {
  vt_tensor *t[VT_GC_MAX_IN];
  vt_set_grad_enabled(ctx, with_grad);
  for (int i = 0; i < st->n_in; i++) {
    t[i] = vt_from_host(ctx, st->in[i].dtype, st->in[i].ndim, st->in[i].shape, st->in[i].host);
    if (with_grad && st->in[i].diff) vt_requires_grad(ctx, t[i]);
  }
  vt_tensor *out = st->fn(ctx, t, st->user);
  if (vt_ctx_failed(ctx)) {
    fprintf(stderr, "  graph failed: %s\n", vt_ctx_error(ctx));
    return false;
  }
  long n = (long)vt_numel(out);
  if (!st->w) {
    st->n_out = n;
    st->w = malloc(sizeof(float) * (size_t)n);
    vt_rng r;
    vt_rng_seed(&r, 1234);
    vt_test_fill_uniform(&r, st->w, n, -1.0f, 1.0f);
  }
  float *y = malloc(sizeof(float) * (size_t)n);
  vt_to_host(ctx, out, y);
  double l = 0, s = 0;
  for (long i = 0; i < n; i++) {
    l += (double)st->w[i] * y[i];
    s += fabs((double)st->w[i] * y[i]);
  }
  *L = l;
  *S = s;
  if (with_grad) {
    vt_tensor *wt = vt_from_host(ctx, VT_F32, out->ndim, out->shape, st->w);
    vt_tensor *loss = vt_sum(ctx, vt_mul(ctx, out, wt), VT_ALL_AXES, false);
    if (!vt_backward(ctx, loss)) {
      fprintf(stderr, "  backward failed: %s\n", vt_ctx_error(ctx));
      free(y);
      return false;
    }
    for (int i = 0; i < st->n_in; i++)
      if (st->in[i].diff) vt_grad_to_host(ctx, t[i], grads[i]);
  }
  free(y);
  vt_ctx_reset(ctx);
  return true;
}

bool vt_gradcheck(const char *name, vt_gc_graph fn, void *user, vt_gc_input *in, int n_in) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  gc_state st = {fn, user, in, n_in, NULL, 0};
  float *grads[VT_GC_MAX_IN] = {0};
  for (int i = 0; i < n_in; i++)
    if (in[i].diff)
      grads[i] = calloc((size_t)vt_shape_numel(in[i].ndim, in[i].shape), sizeof(float));
  double L, S;
  bool ok = eval(ctx, &st, true, &L, &S, grads);
  double worst = 0;
  const double eps = FLT_EPSILON, cbrt_eps = cbrt(FLT_EPSILON);
  for (int i = 0; ok && i < n_in; i++) {
    if (!in[i].diff) continue;
    float *x = in[i].host;
    long n = (long)vt_shape_numel(in[i].ndim, in[i].shape);
    for (long j = 0; j < n && ok; j++) {
      float x0 = x[j];
      float h = (float)(cbrt_eps * fmax(1.0, fabs(x0)));
      double lp, lm, sp, sm;
      x[j] = x0 + h;
      float hp = x[j] - x0; /* the step actually taken in f32 */
      ok &= eval(ctx, &st, false, &lp, &sp, NULL);
      x[j] = x0 - h;
      float hm = x0 - x[j];
      ok &= eval(ctx, &st, false, &lm, &sm, NULL);
      x[j] = x0;
      double num = (lp - lm) / ((double)hp + hm);
      double ana = grads[i][j];
      double tol = 4 * eps * fmax(S, fmax(sp, sm)) / h + 1e-2 * fabs(num);
      double err = fabs(num - ana);
      if (err / (tol > 0 ? tol : 1) > worst) worst = err / (tol > 0 ? tol : 1);
      if (!(err <= tol)) {
        fprintf(stderr,
                "  %s: input %d element %ld: tape %.7g, finite difference %.7g (tol %.3g)\n", name,
                i, j, ana, num, tol);
        ok = false;
      }
    }
  }
  if (ok && getenv("VT_GC_VERBOSE")) fprintf(stderr, "  %s: worst err/tol %.3f\n", name, worst);
  for (int i = 0; i < n_in; i++) free(grads[i]);
  free(st.w);
  vt_ctx_free(ctx);
  return ok;
}
