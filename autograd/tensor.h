/* vt_tensor: a contiguous row-major array of up to VT_MAX_DIMS dims on one device, with an
 * optional gradient. Tensors made by ops live in the step arena of their vt_ctx; parameter
 * tensors live in a vt_params store. Shapes are int64_t, innermost dimension last. */
#ifndef VT_TENSOR_H
#define VT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/dtype.h"

#define VT_MAX_DIMS 5

typedef enum { VT_DEV_CPU = 0, VT_DEV_CUDA = 1 } vt_device_type;

typedef struct {
  vt_device_type type;
  int index; /* cuda:N */
} vt_device;

typedef struct vt_tensor {
  vt_dtype dtype;
  int ndim;
  int64_t shape[VT_MAX_DIMS];
  vt_device device;
  void *data;
  float *grad; /* f32 gradient of the same shape, or NULL (allocated on demand) */
  /* A bf16 copy of data in the same layout, kept current by the parameter store under bf16
   * mixed precision (vt_params_enable_lowp); GEMMs read it instead of converting. NULL: none. */
  void *lowp;
  bool requires_grad; /* a gradient flows to it (parameter or result of such) */
  bool is_param;      /* gradient lives in a vt_params flat buffer */
  const char *name;   /* parameter name, or NULL */
  /* A parameter's read bits in its store (VT_READ_*, params.h): ops mark how they read it and
   * refuse f32 reads of values the store released. NULL: not a store's parameter. */
  uint8_t *reads;
} vt_tensor;

int64_t vt_numel(const vt_tensor *t);
size_t vt_nbytes(const vt_tensor *t);
/* Product of the sizes; -1 when one is negative or the product overflows int64. */
int64_t vt_shape_numel(int ndim, const int64_t *shape);
bool vt_same_shape(const vt_tensor *a, const vt_tensor *b);
/* Writes "[2, 3, 4] f32" into buf; returns buf. */
char *vt_shape_str(const vt_tensor *t, char *buf, size_t len);

#endif
