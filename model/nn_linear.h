/* Linear and embedding blocks: torch.nn.Linear (weight [out, in], optional bias [out]) and
 * nn.Embedding (weight [n, dim]), registered under "<name>.weight" / "<name>.bias". Several
 * linears that read one input (q/k/v, gate/up) run as one GEMM when registered back to back. */
#ifndef VT_NN_LINEAR_H
#define VT_NN_LINEAR_H

#include "model/nn_reg.h"

typedef struct {
  vt_tensor *w, *b; /* b NULL without bias */
  int64_t in, out;
} nn_linear;

typedef struct {
  vt_tensor *w;
  int64_t n, dim;
} nn_embedding;

void nn_linear_init(nn_linear *l, nn_reg *r, const char *prefix, const char *name, int64_t in,
                    int64_t out, bool bias);
/* y = x W^T + b over the last dim of x [..., in]. */
vt_tensor *nn_linear_forward(const nn_linear *l, vt_ctx *ctx, vt_tensor *x);
/* The same for an output that only bf16-taking ops read (vt_linear_lowp): under bf16 GEMMs
 * the GEMM may write it in bf16. */
vt_tensor *nn_linear_forward_lowp(const nn_linear *l, vt_ctx *ctx, vt_tensor *x);
/* outs[i] = nn_linear_forward(ls[i], x) for n linears of the same input size. When their
 * weights (and biases) are contiguous in the store (registered consecutively, all trainable
 * or all frozen) it is one GEMM over a concatenated view, whose output is cut into the outs;
 * otherwise n GEMMs. The two agree within f32 rounding: the input's gradient sums the n terms
 * in another order, and some BLAS kernels (OpenBLAS's Haswell sgemm) round an output tile
 * differently by where it sits in C. pack false forces the n GEMMs. */
void nn_linear_multi(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x, bool pack,
                     vt_tensor **outs);
/* The one GEMM of nn_linear_multi: [..., sum of the outs] (the outputs side by side), or NULL
 * (no error) when the weights are not packable and the caller must run n GEMMs. */
vt_tensor *nn_linear_packed(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x);
/* nn_linear_packed through vt_linear_lowp. */
vt_tensor *nn_linear_packed_lowp(vt_ctx *ctx, const nn_linear *const *ls, int n, vt_tensor *x);
/* Registers the weights of n linears first and then their biases, which is the order
 * nn_linear_multi packs. */
void nn_linear_init_packed(nn_linear *const *ls, int n, nn_reg *r, const char *prefix,
                           const char *const *names, int64_t in, const int64_t *outs, bool bias);

/* torch.nn.Linear's default initialisation: weight and bias uniform in +-1/sqrt(in). */
void nn_linear_init_default(const nn_linear *l, const vt_params *ps, vt_rng *rng);
/* HF's: weight normal(0, std), bias zero. */
void nn_linear_init_normal(const nn_linear *l, const vt_params *ps, vt_rng *rng, float std);

void nn_embedding_init(nn_embedding *e, nn_reg *r, const char *prefix, const char *name, int64_t n,
                       int64_t dim);
/* Rows of the table for ids (i32, any shape): [ids..., dim]. */
vt_tensor *nn_embedding_forward(const nn_embedding *e, vt_ctx *ctx, vt_tensor *ids);

#endif
