/* The gradient-ready hook of vt_backward; see vt_ctx_set_grad_hook in ctx.h. One pass over
 * the tape before backward finds, per slot, the lowest tape index whose node reads a tensor
 * whose gradient overlaps the slot; backward runs the tape from the top down, so once it has
 * run that node nothing adds to the slot's gradient any more. */
#include <stdint.h>
#include <stdlib.h>

#include "autograd/ctx_impl.h"

void vt_ctx_set_grad_hook(vt_ctx *ctx, const float *base, const size_t *slot_lo,
                          const size_t *slot_hi, int64_t n, vt_grad_ready_fn fn, void *arg) {
  vt_grad_hook *h = &ctx->hook;
  h->fn = fn && n > 0 ? fn : NULL;
  h->base = base;
  h->lo = slot_lo;
  h->hi = slot_hi;
  h->n = h->fn ? n : 0;
  h->arg = arg;
  h->region = h->n ? slot_hi[h->n - 1] : 0;
}

/* Calls fn(slot) for every slot overlapping the gradient of t (when it lies in the region). */
static void each_slot(const vt_grad_hook *h, const vt_tensor *t,
                      void (*fn)(vt_ctx *, int64_t, void *), vt_ctx *ctx, void *arg) {
  if (!t->requires_grad || !t->grad || t->grad < h->base || t->grad >= h->base + h->region) return;
  size_t off = (size_t)(t->grad - h->base), end = off + (size_t)vt_numel(t);
  int64_t a = 0, b = h->n; /* first slot with hi > off */
  while (a < b) {
    int64_t m = a + (b - a) / 2;
    if (h->hi[m] <= off)
      a = m + 1;
    else
      b = m;
  }
  for (int64_t s = a; s < h->n && h->lo[s] < end; s++) fn(ctx, s, arg);
}

static void note_reader(vt_ctx *ctx, int64_t s, void *arg) {
  int64_t i = *(const int64_t *)arg;
  if (i < ctx->hook.last[s]) ctx->hook.last[s] = i;
}

static int64_t key(const vt_grad_hook *h, int64_t s) {
  return h->last[s] == INT64_MAX ? -1 : h->last[s];
}

static int by_last_desc(const void *a, const void *b, void *arg) {
  const vt_grad_hook *h = arg;
  int64_t ka = key(h, *(const int64_t *)a), kb = key(h, *(const int64_t *)b);
  if (ka != kb) return ka > kb ? -1 : 1;
  /* ties (one node reads several slots): later slots first, as backward meets them */
  return *(const int64_t *)a < *(const int64_t *)b ? 1 : -1;
}

/* qsort has no context argument in C11: a small insertion-merge sort with one. */
static void sort_ctx(int64_t *v, int64_t n, int64_t *tmp, const vt_grad_hook *h) {
  if (n < 2) return;
  int64_t m = n / 2;
  sort_ctx(v, m, tmp, h);
  sort_ctx(v + m, n - m, tmp, h);
  int64_t i = 0, j = m, k = 0;
  while (i < m && j < n) tmp[k++] = by_last_desc(&v[j], &v[i], (void *)h) < 0 ? v[j++] : v[i++];
  while (i < m) tmp[k++] = v[i++];
  while (j < n) tmp[k++] = v[j++];
  for (int64_t q = 0; q < n; q++) v[q] = tmp[q];
}

bool vt_hook_begin(vt_ctx *ctx) {
  vt_grad_hook *h = &ctx->hook;
  if (!h->fn) return true;
  if (h->cap < h->n) {
    free(h->last);
    free(h->order);
    h->last = malloc(sizeof *h->last * (size_t)h->n * 2); /* the second half: sort scratch */
    h->order = malloc(sizeof *h->order * (size_t)h->n);
    h->cap = h->last && h->order ? h->n : 0;
    if (!h->cap) {
      vt_ctx_fail(ctx, "backward", "out of host memory for the gradient hook (%lld slots)",
                  (long long)h->n);
      return false;
    }
  }
  for (int64_t s = 0; s < h->n; s++) h->last[s] = INT64_MAX, h->order[s] = s;
  for (int64_t i = 0; i < ctx->n_nodes; i++) {
    const vt_node *nd = &ctx->tape[i];
    for (int k = 0; k < nd->n_in; k++) each_slot(h, nd->in[k], note_reader, ctx, &i);
  }
  sort_ctx(h->order, h->n, h->last + h->n, h);
  h->next = 0;
  return true;
}

static void report(vt_grad_hook *h, int64_t s) {
  h->last[s] = -1;
  h->fn(h->arg, s);
}

void vt_hook_after_node(vt_ctx *ctx, int64_t i) {
  vt_grad_hook *h = &ctx->hook;
  if (!h->fn || ctx->failed) return;
  while (h->next < h->n) {
    int64_t s = h->order[h->next];
    if (h->last[s] == -1) { /* reported by a recompute segment */
      h->next++;
      continue;
    }
    if (h->last[s] == INT64_MAX || h->last[s] < i) break;
    h->next++;
    report(h, s);
  }
}

typedef struct {
  int64_t *pending;
  int64_t n;
} nested;

static void note_nested(vt_ctx *ctx, int64_t s, void *arg) {
  vt_grad_hook *h = &ctx->hook;
  nested *ns = arg;
  if (h->last[s] == -1) {
    vt_ctx_fail(ctx, "backward",
                "the gradient of hook slot %lld (elements [%zu, %zu)) changed after it was "
                "reported final: a parameter read inside a recompute segment is also read "
                "after it",
                (long long)s, h->lo[s], h->hi[s]);
    return;
  }
  if (h->last[s] != INT64_MAX) return; /* read by an outer node too: that one reports it */
  for (int64_t q = 0; q < ns->n; q++)
    if (ns->pending[q] == s) return;
  if (ns->pending) ns->pending[ns->n++] = s;
}

void vt_hook_nested(vt_ctx *ctx, int64_t first, int64_t end) {
  vt_grad_hook *h = &ctx->hook;
  if (!h->fn || ctx->failed) return;
  /* the slots only this segment reads are final now: report them after it, so the
   * communication of recomputed layers overlaps the rest of backward as well */
  nested ns = {.pending = malloc(sizeof(int64_t) * (size_t)h->n)};
  for (int64_t i = first; i < end && !ctx->failed; i++)
    for (int k = 0; k < ctx->tape[i].n_in; k++)
      each_slot(h, ctx->tape[i].in[k], note_nested, ctx, &ns);
  for (int64_t q = 0; q < ns.n && !ctx->failed; q++) report(h, ns.pending[q]);
  free(ns.pending); /* out of memory: the slots are reported at the end instead */
}

void vt_hook_end(vt_ctx *ctx) {
  vt_grad_hook *h = &ctx->hook;
  if (!h->fn) return;
  for (int64_t s = h->n - 1; s >= 0; s--)
    if (h->last[s] != -1) report(h, s);
}
