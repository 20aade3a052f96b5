/* The autograd core in one include: tensors, the context, every op group, parameters,
 * activation recompute and the RNG. */
#ifndef VT_H
#define VT_H

#include "autograd/ctx.h"
#include "autograd/ops.h"
#include "autograd/ops_attn.h"
#include "autograd/ops_conv.h"
#include "autograd/ops_loss.h"
#include "autograd/ops_norm.h"
#include "autograd/ops_spectral.h"
#include "autograd/params.h"
#include "autograd/recompute.h"
#include "autograd/rng.h"

#endif
