/* The autograd core in one include: tensors, the context, ops, parameters and the RNG. */
#ifndef VT_H
#define VT_H

#include "autograd/ctx.h"
#include "autograd/ops.h"
#include "autograd/params.h"
#include "autograd/rng.h"

#endif
