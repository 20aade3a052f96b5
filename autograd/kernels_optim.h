/* Kernels of the optim family: optimizer updates and reductions over the flat gradient buffer,
 * one table per device reached through vt_backend.optim (NULL where a device lacks them).
 * train/optim.c drives them; every pointer is a device pointer of that backend. */
#ifndef VT_KERNELS_OPTIM_H
#define VT_KERNELS_OPTIM_H

#include <math.h>

#include "autograd/backend.h"
#include "autograd/dtype.h"

/* One contiguous run of a trainable parameter: n values at param, and the same n values at
 * flat offset `flat` of the gradient and moment buffers (which share the grad buffer's
 * layout). Large parameters are cut into several segments so threads balance. */
typedef struct {
  float *param;
  int64_t flat;
  int64_t n;
  bool no_copy; /* the parameter has no bf16 copy (vt_param.no_copy): adam_update_lowp skips it */
} vt_optim_seg;

/* Scalars of one Adam/AdamW update, computed on the host in double (as PyTorch does) and
 * rounded once. Per element, with g = grad * grad_scale:
 *   g += l2 * p;  p *= decay;  m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) g^2;
 *   p -= step_size * m / (sqrt(v) / bc2_sqrt + eps)                                       */
typedef struct {
  float grad_scale; /* clip coefficient folded into the gradient (1 = none) */
  float l2;         /* Adam's coupled L2 decay (0 = none) */
  float decay;      /* AdamW's decoupled decay factor 1 - lr * wd (1 = none) */
  float beta1, beta2, one_minus_beta1, one_minus_beta2;
  float step_size; /* lr / (1 - beta1^t) */
  float bc2_sqrt;  /* sqrt(1 - beta2^t) */
  float eps;
} vt_adam_hparams;

/* SGD with optional momentum (PyTorch semantics, no dampening): g = grad * grad_scale + l2 * p;
 * buf = momentum * buf + g;  p -= lr * buf  (no buf when momentum is 0). The buffer starts at
 * zero, which equals torch's copy of the first gradient. */
typedef struct {
  float grad_scale, l2, lr, momentum;
} vt_sgd_hparams;

/* The per-element updates, shared by the CPU and CUDA kernels. The lerp is PyTorch's (two
 * forms, chosen by the weight) so that steps match torch.optim to float rounding. */
static inline VT_HD void vt_adam_elem(float *p, float *m, float *v, float grad,
                                      const vt_adam_hparams *h) {
  float g = grad * h->grad_scale + h->l2 * *p;
  float pv = *p * h->decay;
  float w = h->one_minus_beta1, mv = *m;
  mv = w < 0.5f ? mv + w * (g - mv) : g - (g - mv) * (1.0f - w);
  float vv = *v * h->beta2 + h->one_minus_beta2 * g * g;
  float denom = sqrtf(vv) / h->bc2_sqrt + h->eps;
  *p = pv + (-h->step_size) * (mv / denom);
  *m = mv;
  *v = vv;
}

static inline VT_HD void vt_sgd_elem(float *p, float *buf, float grad, const vt_sgd_hparams *h) {
  float g = grad * h->grad_scale + h->l2 * *p;
  if (buf) g = *buf = h->momentum * *buf + g;
  *p = *p + (-h->lr) * g;
}

/* Stochastic rounding of the bf16 weight copies (train.stochastic_rounding): instead of the
 * nearest bf16, x becomes the bf16 just below or just above it in magnitude, the upper one with
 * probability equal to x's distance from the lower one in units of the gap, so the copy equals
 * x in expectation and small updates are not lost. The randomness is a counter-based hash of
 * (key, flat index) -- key from (seed, optimizer step), vt_sr_key -- so a run is reproducible
 * and resumes exactly, whatever the device, thread count or chunking. Shared by the CPU and
 * CUDA convert kernels (backend.h, convert_sr). */
static inline VT_HD uint64_t vt_sr_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline VT_HD uint64_t vt_sr_key(uint64_t seed, int64_t step) {
  return vt_sr_mix(seed ^
                   vt_sr_mix((uint64_t)step * 0xd1b54a32d192ed03ull + 0x8bb84b93962eacc9ull));
}

/* 16 random bits for element `index` under `key`. */
static inline VT_HD uint32_t vt_sr_bits(uint64_t key, uint64_t index) {
  return (uint32_t)(vt_sr_mix(key ^ (index * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull)) >> 48);
}

/* f32 -> bf16 rounded up (in magnitude) when the 16 dropped bits plus r16 carry: probability
 * (dropped bits) / 2^16. Exact values stay exact; NaN stays a quiet NaN; a value within the last
 * gap below the largest finite bf16 may round to infinity, as it may under round to nearest. */
static inline VT_HD uint16_t vt_f32_to_bf16_sr(float f, uint32_t r16) {
  uint32_t u = vt_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
  if ((u & 0x7fffffffu) == 0x7f800000u) return (uint16_t)(u >> 16);            /* +-Inf */
  return (uint16_t)((u + (r16 & 0xffffu)) >> 16);
}

struct vt_optim_kernels {
  /* Sum of squares of x[0..n) accumulated in double. Deterministic for a given n whatever the
   * thread count; a non-finite element makes the result non-finite, which is how the optimizer
   * detects NaN/Inf gradients without a separate pass. */
  double (*sumsq)(const vt_backend *be, const float *x, int64_t n);
  void (*scale)(const vt_backend *be, float *x, int64_t n, float alpha); /* x *= alpha */
  /* The segments (a device array) of one parameter group, updated in place. */
  void (*adam_update)(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                      const float *grad, float *m, float *v, vt_adam_hparams h);
  void (*sgd_update)(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                     const float *grad, float *buf, vt_sgd_hparams h);
  /* adam_update that also refreshes the bf16 copy of every value it updates, segments marked
   * no_copy excepted (bf16 mixed precision): the copy of param value p sits at
   * lowp + (p - base), base being the f32 buffer the copies mirror (vt_params_enable_lowp). One
   * pass instead of an update and a conversion of the whole buffer. Optional (NULL: the optimizer
   * converts afterwards). */
  void (*adam_update_lowp)(const vt_backend *be, const vt_optim_seg *segs, int64_t nseg,
                           const float *grad, float *m, float *v, vt_adam_hparams h,
                           const float *base, uint16_t *lowp);
};

#endif
