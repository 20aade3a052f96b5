// ctest-labels: unit grad
/* vt_conv1d_fused / vt_conv_transpose1d_fused (autograd/ops_conv.c) against the composition
 * they replace (vt_leaky_relu, the conv, vt_leaky_relu, vt_add): without a tape the CPU's
 * direct thin-channel kernel folds the LeakyReLUs, the bias and the residual into the conv's
 * source reads and tile stores, and must give the composition's bits for every part on and
 * off, over strides, dilations, groups, paddings, transposed convs, lengths that put positions
 * in the wide and narrow tiles, the edges and several threads' chunks, on every kernel path
 * (plain C, AVX2, AVX-512: cpu_corr1d_set_isa) and 1 and 2 threads. The plain conv must also
 * give the same bits on 1 and 2 threads, and with AVX2 as with AVX-512. With a tape the fused ops
 * are the composition: finite differences check their gradients. Plus the fallbacks (a residual
 * that broadcasts, a geometry the kernel does not take) and the error path. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/cpu/cpu_conv1d.h"
#include "autograd/ops_conv.h"
#include "tests/gradcheck.h"

typedef struct {
  int cin, cout, k, l, stride, pad, dil, groups, opad;
  bool transpose;
} geo;

static int64_t out_len(const geo *a) {
  if (a->transpose) return (int64_t)(a->l - 1) * a->stride - 2 * a->pad + a->k + a->opad;
  return (a->l + 2 * a->pad - a->dil * (a->k - 1) - 1) / a->stride + 1;
}

typedef struct {
  bool in_act, out_act, bias, res;
} parts;

/* The composition (fused = false) or the fused op, without a tape; copies y to host out. */
static bool run(const geo *a, const parts *p, bool fused, const float *x, const float *w,
                const float *b, const float *r, float *out) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  int64_t lo = out_len(a), cout = a->cout;
  vt_tensor *tx = vt_from_host(ctx, VT_F32, 3, (int64_t[]){2, a->cin, a->l}, x);
  int64_t ws[3] = {a->transpose ? a->cin : cout, a->transpose ? cout : a->cin / a->groups, a->k};
  vt_tensor *tw = vt_from_host(ctx, VT_F32, 3, ws, w);
  vt_tensor *tb = p->bias ? vt_from_host(ctx, VT_F32, 1, &cout, b) : NULL;
  vt_tensor *tr = p->res ? vt_from_host(ctx, VT_F32, 3, (int64_t[]){2, cout, lo}, r) : NULL;
  vt_conv_fusion f = {p->in_act, p->out_act, 0.1f, 0.2f, tr};
  vt_tensor *y;
  if (fused) {
    y = a->transpose
            ? vt_conv_transpose1d_fused(ctx, tx, tw, tb, a->stride, a->pad, a->opad, &f)
            : vt_conv1d_fused(ctx, tx, tw, tb, a->stride, a->pad, a->pad, a->dil, a->groups, &f);
  } else {
    if (p->in_act) tx = vt_leaky_relu(ctx, tx, 0.1f);
    y = a->transpose ? vt_conv_transpose1d(ctx, tx, tw, tb, a->stride, a->pad, a->opad)
                     : vt_conv1d(ctx, tx, tw, tb, a->stride, a->pad, a->dil, a->groups);
    if (p->out_act) y = vt_leaky_relu(ctx, y, 0.2f);
    if (tr) y = vt_add(ctx, y, tr);
  }
  bool ok = !vt_ctx_failed(ctx);
  CHECK_MSG(ok, "%s", vt_ctx_error(ctx));
  if (ok) vt_to_host(ctx, y, out);
  vt_ctx_free(ctx);
  return ok;
}

/* A case's inputs: x, weight, bias and a residual of the output's shape, uniform in [-1, 1). */
typedef struct {
  float *x, *w, *b, *r;
  size_t nx, nw, ny;
} inputs;

static inputs make_inputs(const geo *a, uint64_t seed) {
  inputs in = {.nx = (size_t)2 * a->cin * a->l,
               .nw = (size_t)a->cout * (a->cin / a->groups) * a->k,
               .ny = (size_t)2 * a->cout * out_len(a)};
  in.x = malloc(sizeof(float) * in.nx);
  in.w = malloc(sizeof(float) * in.nw);
  in.b = malloc(sizeof(float) * (size_t)a->cout);
  in.r = malloc(sizeof(float) * in.ny);
  vt_rng rng;
  vt_rng_seed(&rng, seed);
  vt_test_fill_uniform(&rng, in.x, (long)in.nx, -1, 1);
  vt_test_fill_uniform(&rng, in.w, (long)in.nw, -1, 1);
  vt_test_fill_uniform(&rng, in.b, a->cout, -1, 1);
  vt_test_fill_uniform(&rng, in.r, (long)in.ny, -1, 1);
  return in;
}

static void free_inputs(inputs *in) {
  free(in->x);
  free(in->w);
  free(in->b);
  free(in->r);
}

static const char *isa_name[3] = {"plain", "avx2", "avx512"};

static void check_case(geo a, parts p) {
  inputs in = make_inputs(&a, (uint64_t)(a.cin * 7919 + a.cout * 131 + a.k * 17 + a.l));
  size_t ny = in.ny;
  float *x = in.x, *w = in.w, *b = in.b, *r = in.r, *want = malloc(sizeof(float) * ny),
        *got = malloc(sizeof(float) * ny), *avx512 = malloc(sizeof(float) * ny);
  char name[128];
  snprintf(name, sizeof name, "%s %d->%d k%d l%d s%d p%d d%d g%d%s%s%s%s",
           a.transpose ? "convT" : "conv", a.cin, a.cout, a.k, a.l, a.stride, a.pad, a.dil,
           a.groups, p.in_act ? " in_act" : "", p.out_act ? " out_act" : "", p.bias ? " bias" : "",
           p.res ? " res" : "");
  /* per kernel path: the composition on 1 thread, then the fused op and the composition on 1
   * and 2 threads must give its bits; the AVX2 path must give the AVX-512 one's */
  int old = cpu_corr1d_set_isa(2);
  bool ok = run(&a, &p, false, x, w, b, r, avx512);
  for (int isa = 2; ok && isa >= 0; isa--) {
    cpu_corr1d_set_isa(isa);
    omp_set_num_threads(1);
    if (!run(&a, &p, false, x, w, b, r, want)) break;
    if (isa == 1)
      CHECK_MSG(!memcmp(want, avx512, sizeof(float) * ny), "%s: avx2 and avx512 differ", name);
    for (int th = 1; th <= 2; th++) {
      omp_set_num_threads(th);
      if (run(&a, &p, true, x, w, b, r, got))
        CHECK_MSG(!memcmp(got, want, sizeof(float) * ny),
                  "%s: the fused op (%s, %d threads) differs from the composition", name,
                  isa_name[isa], th);
      if (th > 1 && run(&a, &p, false, x, w, b, r, got))
        CHECK_MSG(!memcmp(got, want, sizeof(float) * ny),
                  "%s: the composition (%s) differs between 1 and %d threads", name, isa_name[isa],
                  th);
    }
  }
  omp_set_num_threads(1);
  cpu_corr1d_set_isa(old);
  free_inputs(&in);
  free(want);
  free(got);
  free(avx512);
}

/* The composition's values in double (bias and both acts on, residual on) for one case: the
 * reference the bit checks hang on. */
static void check_values(geo a) {
  int64_t lo = out_len(&a);
  int cin_g = a.cin / a.groups, cout_g = a.cout / a.groups;
  inputs in = make_inputs(&a, 3);
  size_t ny = in.ny;
  float *x = in.x, *w = in.w, *b = in.b, *r = in.r, *got = malloc(sizeof(float) * ny),
        *want = malloc(sizeof(float) * ny);
  double *acc = calloc(ny, sizeof(double));
  for (int i = 0; i < 2; i++)
    for (int ci = 0; ci < a.cin; ci++)
      for (int t = 0; t < a.l; t++) {
        double v = x[((size_t)i * a.cin + ci) * a.l + t];
        v = v > 0 ? v : 0.1f * v;
        for (int j = 0; j < a.k; j++)
          for (int co = 0; co < a.cout; co++) {
            int64_t p;
            double wv;
            if (a.transpose) {
              p = (int64_t)t * a.stride - a.pad + j;
              wv = w[((size_t)ci * a.cout + co) * a.k + j];
            } else { /* output p reads t = p * stride - pad + j * dil */
              if (co / cout_g != ci / cin_g) continue;
              int64_t num = t + a.pad - (int64_t)j * a.dil;
              if (num % a.stride) continue;
              p = num / a.stride;
              wv = w[((size_t)co * cin_g + ci % cin_g) * a.k + j];
            }
            if (p >= 0 && p < lo) acc[((size_t)i * a.cout + co) * lo + p] += wv * v;
          }
      }
  for (size_t e = 0; e < ny; e++) {
    double v = acc[e] + b[(e / (size_t)lo) % (size_t)a.cout];
    want[e] = (float)((v > 0 ? v : 0.2f * v) + r[e]);
  }
  parts p = {true, true, true, true};
  if (run(&a, &p, true, x, w, b, r, got)) {
    double tol = 4.0 * (a.transpose ? a.cin : cin_g) * a.k * FLT_EPSILON;
    CHECK_CLOSE("fused conv vs double", got, want, (long)ny, tol, tol);
  }
  free_inputs(&in);
  free(got);
  free(want);
  free(acc);
}

/* The gradient cases: a geometry and whether the output LeakyReLU is on (a bias feeds every
 * output of its channel, so a difference step can cross the kink somewhere). */
typedef struct {
  geo a;
  bool out_act;
} grad_case;

static vt_tensor *g_fused(vt_ctx *c, vt_tensor **in, void *u) {
  const grad_case *gc = u;
  const geo *a = &gc->a;
  vt_conv_fusion f = {true, gc->out_act, 0.1f, 0.2f, in[3]};
  if (a->transpose)
    return vt_conv_transpose1d_fused(c, in[0], in[1], in[2], a->stride, a->pad, a->opad, &f);
  return vt_conv1d_fused(c, in[0], in[1], in[2], a->stride, a->pad, a->pad, a->dil, a->groups, &f);
}

static void check_grad(geo a, bool out_act) {
  grad_case gc = {a, out_act};
  int64_t lo = out_len(&a);
  inputs d = make_inputs(&a, 9);
  int64_t ws[3] = {a.transpose ? a.cin : a.cout, a.transpose ? a.cout : a.cin / a.groups, a.k};
  vt_gc_input in[4] = {{VT_F32, 3, {2, a.cin, a.l}, d.x, true},
                       {VT_F32, 3, {ws[0], ws[1], ws[2]}, d.w, true},
                       {VT_F32, 1, {a.cout}, d.b, true},
                       {VT_F32, 3, {2, a.cout, lo}, d.r, true}};
  CHECK_GRAD(a.transpose ? "grad fused convT" : "grad fused conv", g_fused, &gc, in, 4);
  free_inputs(&d);
}

/* The fused op without a tape writes only its output (no intermediate tensors), and the
 * fallbacks: a residual that broadcasts, a wide conv the direct kernel does not take, and a
 * bad geometry's error. */
static void check_paths(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  geo a = {4, 4, 3, 50, 1, 1, 1, 1, 0, false};
  inputs in = make_inputs(&a, 4);
  const float *x = in.x, *w = in.w, *b = in.b, *r = in.r;
  vt_tensor *tx = vt_from_host(ctx, VT_F32, 3, (int64_t[]){2, 4, 50}, x);
  vt_tensor *tw = vt_from_host(ctx, VT_F32, 3, (int64_t[]){4, 4, 3}, w);
  vt_tensor *tb = vt_from_host(ctx, VT_F32, 1, (int64_t[]){4}, b);
  vt_tensor *tr = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, 4, 50}, r);
  vt_tensor *full = vt_from_host(ctx, VT_F32, 3, (int64_t[]){2, 4, 50}, x);
  size_t before = vt_ctx_arena_high_water(ctx);
  vt_conv_fusion f = {true, true, 0.1f, 0.1f, full};
  vt_tensor *y = vt_conv1d_fused(ctx, tx, tw, tb, 1, 1, 1, 1, 1, &f);
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  size_t grew = vt_ctx_arena_high_water(ctx) - before;
  CHECK_MSG(grew <= sizeof(float) * 400 + 256,
            "the fused op grew the arena by %zu bytes, want only its 1600-byte output", grew);
  /* a [1, 4, 50] residual broadcasts over the batch: composed, same values as by hand */
  f.res = tr;
  y = vt_conv1d_fused(ctx, tx, tw, tb, 1, 1, 1, 1, 1, &f);
  vt_tensor *z = vt_conv1d_fused(ctx, tx, tw, tb, 1, 1, 1, 1, 1,
                                 &(vt_conv_fusion){true, true, 0.1f, 0.1f, NULL});
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  if (!vt_ctx_failed(ctx)) {
    float gy[400], gz[400], want[400];
    vt_to_host(ctx, y, gy);
    vt_to_host(ctx, z, gz);
    for (int e = 0; e < 400; e++) want[e] = gz[e] + r[e % 200];
    CHECK_CLOSE("broadcast residual", gy, want, 400, 0, 0);
  }
  /* a geometry error names the op and the shapes */
  y = vt_conv1d_fused(ctx, tx, tw, tb, 1, 1, 1, 1, 3, &f);
  CHECK(vt_ctx_failed(ctx) && strstr(vt_ctx_error(ctx), "conv1d") &&
        strstr(vt_ctx_error(ctx), "groups"));
  vt_ctx_free(ctx);
  free_inputs(&in);
  /* 80 output channels: the im2col path, so the op composes; same bits as the composition */
  geo wide = {8, 80, 3, 40, 1, 1, 1, 1, 0, false};
  check_case(wide, (parts){true, true, true, true});
  /* 64 input rows of a 321-tap span: the input LeakyReLU's window does not fit, so the
   * kernel declines and the op composes */
  geo span = {64, 4, 41, 400, 1, 160, 8, 1, 0, false};
  check_case(span, (parts){true, false, true, false});
  check_case(span, (parts){false, true, true, true});
}

int main(void) {
  omp_set_num_threads(1);
  const geo gs[] = {
      {4, 4, 3, 70, 1, 1, 1, 1, 0, false},      {4, 4, 7, 333, 1, 9, 3, 1, 0, false},
      {8, 8, 3, 200, 1, 5, 5, 1, 0, false},     {1, 4, 7, 150, 1, 3, 1, 1, 0, false},
      {4, 1, 7, 150, 1, 3, 1, 1, 0, false},     {9, 7, 5, 91, 3, 1, 1, 1, 0, false},
      {16, 5, 16, 403, 8, 4, 1, 1, 0, false},   {12, 6, 5, 100, 2, 2, 2, 3, 0, false},
      {8, 4, 3, 64, 1, 1, 1, 2, 0, false},      {3, 5, 3, 5, 1, 1, 1, 1, 0, false},
      {4, 4, 7, 9011, 1, 9, 3, 1, 0, false},    {2, 6, 5, 7007, 3, 1, 1, 1, 0, false},
      {64, 64, 11, 300, 1, 25, 5, 1, 0, false}, {8, 4, 10, 2001, 5, 2, 1, 1, 0, true},
      {3, 2, 16, 29, 8, 4, 1, 1, 0, true},      {8, 4, 5, 41, 3, 1, 1, 1, 2, true},
      {5, 3, 4, 130, 1, 0, 1, 1, 0, true},      {32, 16, 16, 160, 8, 4, 1, 1, 0, true},
  };
  for (size_t c = 0; c < sizeof gs / sizeof gs[0]; c++)
    for (int m = 0; m < 16; m += (c < 3 ? 1 : 5))
      check_case(gs[c], (parts){m & 1, m & 2, m & 4, m & 8});
  check_values(gs[1]);
  check_values(gs[6]);
  check_values(gs[13]);
  check_values(gs[15]);
  check_grad((geo){3, 4, 3, 37, 1, 3, 3, 1, 0, false}, true);
  check_grad((geo){2, 3, 5, 9, 3, 1, 1, 1, 1, true}, false);
  check_paths();
  return vt_test_finish("test_conv_fused");
}
