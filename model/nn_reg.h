/* nn_reg: how the model/ building blocks (nn_*) register their parameters, and the weight
 * initialisers. A block's init takes a registration context and a name prefix, so parameter
 * names are the export names ("model.layers.3" + "self_attn.q_proj" + "weight"). Failures are
 * sticky, like the ctx's: register a whole model, then check nn_reg_failed() once. The
 * initialisers write through the store's backend (host buffer + copy), never tensor memory. */
#ifndef VT_NN_REG_H
#define VT_NN_REG_H

#include "autograd/vt.h"

typedef struct {
  vt_params *ps;
  char *err; /* the first failure's message */
  size_t err_len;
  bool failed;
} nn_reg;

static inline nn_reg nn_reg_make(vt_params *ps, char *err, size_t err_len) {
  return (nn_reg){.ps = ps, .err = err, .err_len = err_len, .failed = false};
}
static inline bool nn_reg_failed(const nn_reg *r) { return r->failed; }
/* Records a failure (the first message wins); returns NULL for the caller to return. */
void *nn_reg_fail(nn_reg *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "a.b.c" from the non-empty parts into buf (truncation is a failure of r). */
const char *nn_name(nn_reg *r, char *buf, size_t len, const char *a, const char *b, const char *c);
/* Registers the f32 parameter "prefix.name.leaf" (empty parts skipped). NULL once r failed. */
vt_tensor *nn_param(nn_reg *r, const char *prefix, const char *name, const char *leaf, int ndim,
                    const int64_t *shape);

/* Initialisers of parameters of ps (after vt_params_alloc). Values are drawn in element order
 * from rng, so a model's initialisation is a pure function of its seed. NULL t: no-op. */
void nn_init_normal(const vt_params *ps, vt_tensor *t, vt_rng *rng, float mean, float std);
void nn_init_uniform(const vt_params *ps, vt_tensor *t, vt_rng *rng, float lo, float hi);
void nn_init_const(const vt_params *ps, vt_tensor *t, float value);
/* Copies n host floats into t from element offset (n + offset <= numel). */
void nn_write(const vt_params *ps, vt_tensor *t, int64_t offset, const float *host, int64_t n);

#endif
