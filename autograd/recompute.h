/* Activation recompute (gradient checkpointing) of one segment, e.g. a transformer block:
 * the forward runs with the tape off and keeps only the segment's output; backward runs the
 * segment again with the tape on, back-propagates through it and drops its activations, so
 * peak memory holds one segment's activations instead of all of them. */
#ifndef VT_RECOMPUTE_H
#define VT_RECOMPUTE_H

#include "autograd/ctx.h"

typedef vt_tensor *(*vt_segment_fn)(vt_ctx *ctx, vt_tensor *const *in, int n_in, void *user);

/* out = fn(in). fn must compute the same thing when run again (seed any dropout), and `user`
 * (e.g. the layer with its parameters) must stay valid until backward. Every tensor the
 * segment uses that needs a gradient must be a parameter or one of `in` (checked: otherwise
 * backward records an error). */
vt_tensor *vt_recompute(vt_ctx *ctx, vt_segment_fn fn, void *user, int n_in, vt_tensor *const *in);
/* As vt_recompute, with per-call state: the args_bytes at args are copied into the step and fn
 * receives the copy as `user`, in forward and again in backward. For callers whose per-call
 * state (mask options, a dropout seed) lives on their stack, not in a long-lived struct. */
vt_tensor *vt_recompute_args(vt_ctx *ctx, vt_segment_fn fn, const void *args, size_t args_bytes,
                             int n_in, vt_tensor *const *in);

/* out = fn(in) for a segment off the tape (a frozen layer whose input needs no gradient, or any
 * segment with grad mode off): when fn records no node, everything it allocated in the step
 * except its output is freed at once (the output moves down to where fn's allocations
 * began), so a frozen tower's forward keeps its layers' outputs, not every layer's values.
 * When fn records a node (something in it trains), nothing is freed: the result is fn's. */
vt_tensor *vt_transient(vt_ctx *ctx, vt_segment_fn fn, void *user, int n_in, vt_tensor *const *in);

#endif
