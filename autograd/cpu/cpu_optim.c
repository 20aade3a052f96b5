/* CPU kernels of the optim family (see kernels_optim.h): OpenMP loops over segments. */
#include "autograd/cpu/cpu_par.h"
#include <math.h>

#include "autograd/cpu/cpu_vexp.h"
#include "autograd/dtype.h"
#include "autograd/kernels_optim.h"

/* sumsq splits x into this many fixed blocks and adds their partial sums in order, so the
 * result does not depend on the thread count or on OpenMP's reduction order: a resumed run
 * clips exactly as the original did. */
#define SUMSQ_BLOCKS 256
#define PAR_MIN 32768

/* One block's sum of squares in 8 double lanes, each summed in index order and then added in
 * lane order: the same result from every clone (AVX-512, AVX2, SSE), unlike a simd reduction
 * whose order follows the vector width, and 8 independent chains instead of one. */
VT_SIMD_CLONES double sumsq_block(const float *x, int64_t n) {
  double acc[8] = {0}, s = 0;
  int64_t n8 = n - n % 8;
  for (int64_t i = 0; i < n8; i += 8)
    for (int k = 0; k < 8; k++) acc[k] += (double)x[i + k] * (double)x[i + k];
  for (int k = 0; k < 8; k++) s += acc[k];
  for (int64_t i = n8; i < n; i++) s += (double)x[i] * (double)x[i];
  return s;
}

static double cpu_sumsq(const vt_backend *be, const float *x, int64_t n) {
  (void)be;
  double part[SUMSQ_BLOCKS];
  VT_OMP_IF(
      n > PAR_MIN, "omp parallel for schedule(static)", for (int b = 0; b < SUMSQ_BLOCKS; b++) {
        int64_t lo = n * b / SUMSQ_BLOCKS, hi = n * (b + 1) / SUMSQ_BLOCKS;
        part[b] = sumsq_block(x + lo, hi - lo);
      });
  double s = 0.0;
  for (int b = 0; b < SUMSQ_BLOCKS; b++) s += part[b];
  return s;
}

static void cpu_scale(const vt_backend *be, float *x, int64_t n, float alpha) {
  (void)be;
  VT_OMP_IF(n > PAR_MIN, "omp parallel for schedule(static)",
            for (int64_t i = 0; i < n; i++) x[i] *= alpha;);
}

/* One segment in simd lanes: the scalar loop spent most of its time in sqrtss and divss.
 * vt_adam_elem's arithmetic (C11 mode: no FMA contraction), so every clone rounds alike. */
VT_SIMD_CLONES void adam_seg(int64_t n, float *p, float *m, float *v, const float *g,
                             const vt_adam_hparams *h) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) vt_adam_elem(&p[i], &m[i], &v[i], g[i], h);
}

/* Elements [lo, hi) of the segments laid end to end. */
static void adam_range(const vt_optim_seg *segs, int64_t nseg, int64_t lo, int64_t hi,
                       const float *grad, float *m, float *v, const vt_adam_hparams *h) {
  for (int64_t s = 0, at = 0; s < nseg && at < hi; at += segs[s].n, s++) {
    int64_t a = lo > at ? lo - at : 0, e = hi - at < segs[s].n ? hi - at : segs[s].n;
    if (a >= e) continue;
    int64_t f = segs[s].flat + a;
    adam_seg(e - a, segs[s].param + a, m + f, v + f, grad + f, h);
  }
}

/* Each thread takes an equal share of the elements (not of the segments: the embedding and
 * the LM head alone are 40% of a small model's, and whole segments left one thread idle). */
static void cpu_adam_update(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                            const float *grad, float *m, float *v, vt_adam_hparams h) {
  (void)be;
  int64_t total = 0;
  for (int64_t s = 0; s < nseg; s++) total += segs[s].n;
  VT_OMP_IF(total > PAR_MIN, "omp parallel", {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    adam_range(segs, nseg, total * t / nt, total * (t + 1) / nt, grad, m, v, &h);
  });
}

/* adam_seg plus the bf16 copy, rounded as vt_f32_to_bf16 (the backend's convert) rounds. */
VT_SIMD_CLONES void adam_seg_lowp(int64_t n, float *p, float *m, float *v, const float *g,
                                  const vt_adam_hparams *h, uint16_t *lp) {
#pragma omp simd
  for (int64_t i = 0; i < n; i++) {
    vt_adam_elem(&p[i], &m[i], &v[i], g[i], h);
    lp[i] = vt_f32_to_bf16(p[i]);
  }
}

/* As cpu_adam_update (equal shares of the elements), each value's bf16 copy written beside. */
static void cpu_adam_update_lowp(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                                 const float *grad, float *m, float *v, vt_adam_hparams h,
                                 const float *base, uint16_t *lowp) {
  (void)be;
  int64_t total = 0;
  for (int64_t s = 0; s < nseg; s++) total += segs[s].n;
  VT_OMP_IF(total > PAR_MIN, "omp parallel", {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t lo = total * t / nt, hi = total * (t + 1) / nt;
    for (int64_t s = 0, at = 0; s < nseg && at < hi; at += segs[s].n, s++) {
      int64_t a = lo > at ? lo - at : 0, e = hi - at < segs[s].n ? hi - at : segs[s].n;
      if (a >= e) continue;
      int64_t f = segs[s].flat + a;
      float *p = segs[s].param + a;
      if (segs[s].no_copy)
        adam_seg(e - a, p, m + f, v + f, grad + f, &h);
      else
        adam_seg_lowp(e - a, p, m + f, v + f, grad + f, &h, lowp + (p - base));
    }
  });
}

static void cpu_sgd_update(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                           const float *grad, float *buf, vt_sgd_hparams h) {
  (void)be;
  VT_OMP_IF(
      nseg > 1, "omp parallel for schedule(dynamic, 4)", for (int64_t s = 0; s < nseg; s++) {
        float *p = segs[s].param;
        const float *g = grad + segs[s].flat;
        float *b = buf ? buf + segs[s].flat : NULL;
        for (int64_t i = 0; i < segs[s].n; i++) vt_sgd_elem(&p[i], b ? &b[i] : NULL, g[i], &h);
      });
}

const struct vt_optim_kernels vt_cpu_optim_kernels = {
    .sumsq = cpu_sumsq,
    .scale = cpu_scale,
    .adam_update = cpu_adam_update,
    .sgd_update = cpu_sgd_update,
    .adam_update_lowp = cpu_adam_update_lowp,
};
