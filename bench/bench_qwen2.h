/* The shared part of the Qwen2 training benches (bench_qwen2_train.c on the CPU,
 * bench_cuda_train.c on a GPU): the model with its gradients, the optimizer and a ctx on one
 * device (bf16 mixed precision on request), seeded as both benches seed them, and the FLOPs a
 * step counts. */
#ifndef VT_BENCH_QWEN2_H
#define VT_BENCH_QWEN2_H

#include <stdio.h>

#include "autograd/vt.h"
#include "model/qwen2.h"
#include "train/optim.h"

/* The CPU benches' model (the shape the PyTorch reference runs too): hidden 512, 4 layers, 8 heads,
 * 2 KV heads, FFN 1408, vocab 8192, untied embeddings. */
static inline qwen2_cfg bench_qwen2_cpu_cfg(bool recompute, bool unpacked) {
  return (qwen2_cfg){.vocab_size = 8192,
                     .hidden_size = 512,
                     .intermediate_size = 1408,
                     .num_hidden_layers = 4,
                     .num_attention_heads = 8,
                     .num_key_value_heads = 2,
                     .max_position_embeddings = 2048,
                     .rope_theta = 1e6,
                     .rms_norm_eps = 1e-6,
                     .initializer_range = 0.02,
                     .tie_word_embeddings = false,
                     .recompute = recompute,
                     .unpacked = unpacked};
}

typedef struct {
  vt_params ps;
  qwen2 m;
  vt_optim opt;
  vt_ctx *ctx;      /* on the store's backend */
  vt_rng rng;       /* seeded 1234; drew the initial weights, then draws the tokens */
  char kernel[256]; /* the GEMMs' kernel, for the banner */
} bench_qwen2;

/* The model of cfg on dev with qwen2_init_weights, the optimizer oc over every parameter and
 * a ctx; bf16: the ctx's GEMMs in bf16 from the store's bf16 copies (kernel names the f32
 * GEMMs otherwise). Returns 0, or 1 after a message starting with bench. */
static inline int bench_qwen2_init(bench_qwen2 *b, const char *bench, const qwen2_cfg *cfg,
                                   vt_device dev, const vt_optim_cfg *oc, bool bf16,
                                   const char *kernel) {
  char err[512];
  if (vt_params_init(&b->ps, dev) || qwen2_init(&b->m, &b->ps, cfg, err, sizeof err) ||
      vt_params_alloc(&b->ps, err, sizeof err) || vt_params_alloc_grads(&b->ps, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", bench, err);
    return 1;
  }
  vt_rng_seed(&b->rng, 1234);
  qwen2_init_weights(&b->m, &b->rng);
  if (vt_optim_init(&b->opt, &b->ps, oc, err, sizeof err)) {
    fprintf(stderr, "%s: %s\n", bench, err);
    return 1;
  }
  const char *cerr = NULL;
  b->ctx = vt_ctx_init(&(vt_ctx_opts){.backend = b->ps.be}, &cerr);
  if (!b->ctx) {
    fprintf(stderr, "%s: %s\n", bench, cerr ? cerr : "no ctx");
    return 1;
  }
  snprintf(b->kernel, sizeof b->kernel, "%s", kernel);
  if (bf16 &&
      (vt_ctx_set_gemm_dtype(b->ctx, VT_BF16, b->kernel, sizeof b->kernel, err, sizeof err) ||
       vt_params_enable_lowp(&b->ps, VT_BF16, err, sizeof err))) {
    fprintf(stderr, "%s: --bf16: %s\n", bench, err);
    return 1;
  }
  return 0;
}

static inline void bench_qwen2_free(bench_qwen2 *b) {
  vt_ctx_free(b->ctx);
  vt_optim_free(&b->opt);
  qwen2_free(&b->m);
  vt_params_free(&b->ps);
}

/* Model FLOPs of a training step of b x t tokens: 6 P_mm b t + 6 L b H hd t^2, where P_mm
 * counts the n_params that take part in matmuls (all but an untied input embedding, a gather)
 * at 6 FLOPs per parameter and token (2 forward, 4 backward), and the second term is causal
 * attention (QK^T and PV, forward once and backward twice, halved by the mask). */
static inline double bench_qwen2_flops(const qwen2_cfg *cfg, int64_t n_params, int64_t b,
                                       int64_t t) {
  int64_t L = cfg->num_hidden_layers, H = cfg->num_attention_heads, hd = cfg->hidden_size / H;
  double p_mm = cfg->tie_word_embeddings ? (double)n_params
                                         : (double)(n_params - cfg->vocab_size * cfg->hidden_size);
  return 6.0 * p_mm * (double)(b * t) + 6.0 * (double)(L * b * H * hd) * (double)(t * t);
}

#endif
