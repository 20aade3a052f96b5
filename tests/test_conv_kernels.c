// ctest-labels: unit
/* The CPU conv kernels (autograd/cpu/cpu_conv.c: im2col / col2im by runs of output rows, over
 * chunks of output positions) against direct loops in double: forward, the input gradient and
 * the weight gradient, for geometries whose chunks start and end inside an output row (cin
 * 512 x 3 x 3 gives chunks of 910 of 961 positions), strides 2 and 3, padding, dilation,
 * groups, a 1-D conv, and the audio subsampling's first conv (1 channel, 3 x 3, stride 2). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/backend.h"
#include "autograd/kernels_conv.h"
#include "tests/check.h"

static float *rnd(int64_t n, uint32_t *s) {
  float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    *s = *s * 1664525u + 1013904223u;
    p[i] = (float)((double)(*s >> 8) / 16777216.0 - 0.5);
  }
  return p;
}

/* y[n, co, oy, ox] by the definition in kernels_conv.h, into y (double). */
static void direct(const vt_conv_geom *g, const float *x, const float *w, double *y) {
  int64_t cig = g->cin / g->groups, cog = g->cout / g->groups;
  for (int64_t n = 0; n < g->n; n++)
    for (int64_t co = 0; co < g->cout; co++)
      for (int64_t oy = 0; oy < g->oh; oy++)
        for (int64_t ox = 0; ox < g->ow; ox++) {
          double acc = 0;
          int64_t gr = co / cog;
          for (int64_t c = 0; c < cig; c++)
            for (int64_t ky = 0; ky < g->kh; ky++)
              for (int64_t kx = 0; kx < g->kw; kx++) {
                int64_t iy = oy * g->sh - g->ph + ky * g->dh, ix = ox * g->sw - g->pw + kx * g->dw;
                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
                acc += (double)x[((n * g->cin + gr * cig + c) * g->h + iy) * g->w + ix] *
                       w[((co * cig + c) * g->kh + ky) * g->kw + kx];
              }
          y[((n * g->cout + co) * g->oh + oy) * g->ow + ox] = acc;
        }
}

/* Largest |got - want| over the scale of want (its largest magnitude). */
static double rel_err(const float *got, const double *want, int64_t n) {
  double m = 0, s = 1e-30;
  for (int64_t i = 0; i < n; i++) s = fmax(s, fabs(want[i]));
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(got[i] - want[i]));
  return m / s;
}

static void check_geom(const char *what, vt_conv_geom g) {
  const struct vt_conv_kernels *k = vt_backend_cpu()->conv;
  uint32_t s = 17;
  int64_t nx = g.n * g.cin * g.h * g.w, nw = g.cout * (g.cin / g.groups) * g.kh * g.kw,
          ny = g.n * g.cout * g.oh * g.ow;
  float *x = rnd(nx, &s), *w = rnd(nw, &s), *dy = rnd(ny, &s);
  float *y = malloc(sizeof(float) * (size_t)ny), *dx = calloc((size_t)nx, sizeof(float)),
        *dw = calloc((size_t)nw, sizeof(float));
  float *work = malloc(sizeof(float) * (size_t)vt_conv_work_floats(&g));
  double *want =
      malloc(sizeof(double) * (size_t)(ny > nx ? (ny > nw ? ny : nw) : (nx > nw ? nx : nw)));
  k->conv_forward(vt_backend_cpu(), &g, x, w, y, false, work);
  direct(&g, x, w, want);
  double ef = rel_err(y, want, ny);
  /* gradients by linearity: d<dy, conv(x, w)> / dx[i] is conv with x = e_i; summed directly */
  k->conv_backward_data(vt_backend_cpu(), &g, w, dy, dx, work);
  k->conv_backward_weight(vt_backend_cpu(), &g, x, dy, dw, work);
  int64_t cig = g.cin / g.groups, cog = g.cout / g.groups;
  double *wdx = calloc((size_t)nx, sizeof(double)), *wdw = calloc((size_t)nw, sizeof(double));
  for (int64_t n = 0; n < g.n; n++)
    for (int64_t co = 0; co < g.cout; co++)
      for (int64_t oy = 0; oy < g.oh; oy++)
        for (int64_t ox = 0; ox < g.ow; ox++) {
          double d = dy[((n * g.cout + co) * g.oh + oy) * g.ow + ox];
          int64_t gr = co / cog;
          for (int64_t c = 0; c < cig; c++)
            for (int64_t ky = 0; ky < g.kh; ky++)
              for (int64_t kx = 0; kx < g.kw; kx++) {
                int64_t iy = oy * g.sh - g.ph + ky * g.dh, ix = ox * g.sw - g.pw + kx * g.dw;
                if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                int64_t xi = ((n * g.cin + gr * cig + c) * g.h + iy) * g.w + ix,
                        wi = ((co * cig + c) * g.kh + ky) * g.kw + kx;
                wdx[xi] += d * w[wi];
                wdw[wi] += d * x[xi];
              }
        }
  double ex = rel_err(dx, wdx, nx), ew = rel_err(dw, wdw, nw);
  printf("%-34s chunk %5lld of %5lld positions: forward %.2g, dx %.2g, dw %.2g\n", what,
         (long long)vt_conv_chunk_cols(&g), (long long)(g.oh * g.ow), ef, ex, ew);
  CHECK_MSG(ef < 1e-5 && ex < 1e-5 && ew < 1e-5, "%s: forward %g, dx %g, dw %g", what, ef, ex, ew);
  free(x), free(w), free(dy), free(y), free(dx), free(dw), free(work), free(want), free(wdx);
  free(wdw);
}

/* oh / ow of a geometry from its input and padding on both sides. */
static vt_conv_geom geom(int64_t n, int64_t groups, int64_t cin, int64_t h, int64_t w, int64_t cout,
                         int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                         int64_t dh, int64_t dw) {
  vt_conv_geom g = {n, groups, cin, h, w, cout, 0, 0, kh, kw, sh, sw, ph, pw, dh, dw};
  g.oh = (h + 2 * ph - dh * (kh - 1) - 1) / sh + 1;
  g.ow = (w + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
  return g;
}

int main(void) {
  check_geom("audio conv0 (1 ch, 3x3, stride 2)", geom(2, 1, 1, 41, 20, 8, 3, 3, 2, 2, 0, 0, 1, 1));
  check_geom("chunks inside rows (512 ch, pad 1)",
             geom(1, 1, 512, 31, 31, 3, 3, 3, 1, 1, 1, 1, 1, 1));
  check_geom("chunks, stride 2, pad 1", geom(1, 1, 512, 61, 63, 2, 3, 3, 2, 2, 1, 1, 1, 1));
  check_geom("stride 3, pad 2, dilation 2", geom(2, 1, 5, 17, 23, 4, 3, 3, 3, 3, 2, 2, 2, 2));
  check_geom("groups 2, stride (1, 2), pad (0, 2)",
             geom(1, 2, 6, 9, 14, 4, 2, 5, 1, 2, 0, 2, 1, 1));
  check_geom("1-D, stride 2, pad 3", geom(2, 1, 4, 1, 50, 3, 1, 7, 1, 2, 0, 3, 1, 1));
  return vt_test_finish("test_conv_kernels");
}
