/* Bucketed gradient reduction overlapped with backward, and the ZeRO memory plan; see zero.h. */
#define _DEFAULT_SOURCE /* madvise */
#include "train/zero.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "autograd/fmt.h"

/* One MPI request carries at most this many values (its count is an int). */
#define BUCKET_MAX_VALUES ((size_t)1 << 30)

void vt_reducer_free(vt_reducer *r) {
  free(r->b);
  free(r->slot_lo);
  free(r->slot_hi);
  free(r->slot_b0);
  free(r->slot_b1);
  memset(r, 0, sizeof *r);
}

/* Appends bucket [lo, hi) (owner as given); the array grows by doubling. */
static int push(vt_reducer *r, int *cap, size_t lo, size_t hi, int owner) {
  if (r->nb == *cap) {
    int nc = *cap ? 2 * *cap : 16;
    vt_bucket *nb = realloc(r->b, sizeof *nb * (size_t)nc);
    if (!nb) return -1;
    r->b = nb;
    *cap = nc;
  }
  r->b[r->nb++] = (vt_bucket){.lo = lo, .hi = hi, .owner = owner, .req = {-1}};
  return 0;
}

int vt_reducer_init(vt_reducer *r, vt_coll *coll, const vt_optim *o, int zero, double bucket_bytes,
                    char *err, size_t err_len) {
  memset(r, 0, sizeof *r);
  r->coll = coll;
  r->ps = o->ps;
  r->zero = zero;
  const vt_params *ps = o->ps;
  int world = coll->world;
  size_t base = o->flat_lo, n = o->state_numel;
  size_t per = bucket_bytes > 0 ? (size_t)(bucket_bytes / sizeof(float)) : n;
  if (per < 1) per = 1;
  if (per > BUCKET_MAX_VALUES) per = BUCKET_MAX_VALUES;
  int cap = 0;
  /* From the end of the stretch down: ZeRO 2 cuts at every shard boundary (a bucket has one
   * owner); buckets cut at parameter boundaries where one ends near the size, so a small
   * parameter is not split over two buckets. */
  for (int rank = world - 1; rank >= 0; rank--) {
    size_t lo = 0, hi = n;
    if (zero == 2)
      vt_coll_shard_range(n, world, rank, &lo, &hi);
    else if (rank != world - 1)
      break;
    size_t end = hi;
    while (end > lo) {
      size_t start = end - lo > per ? end - per : lo;
      /* move start down to the beginning of the parameter it falls in, within 2x the size */
      for (int i = 0; start > lo && i < ps->n; i++) {
        const vt_param *p = ps->items[i];
        if (!p->trainable || !p->t.grad) continue;
        size_t g = p->grad_offset - base, e = g + (size_t)vt_numel(&p->t);
        if (p->grad_offset >= base && g < start && e > start && g >= lo && end - g <= 2 * per &&
            end - g <= BUCKET_MAX_VALUES)
          start = g;
      }
      if (push(r, &cap, base + start, base + end, zero == 2 ? rank : -1)) goto oom;
      end = start;
    }
  }
  r->window = VT_REDUCER_WINDOW;
  r->lo = base, r->hi = base + n;
  vt_coll_shard_range(n, world, coll->rank, &r->own_lo, &r->own_hi);
  r->own_lo += base, r->own_hi += base;
  /* the slots: every parameter the optimizer updates, by gradient offset */
  int64_t ns = 0;
  for (int i = 0; i < ps->n; i++) ns += o->covered[i];
  r->slot_lo = malloc(sizeof(size_t) * (size_t)(ns + 1));
  r->slot_hi = malloc(sizeof(size_t) * (size_t)(ns + 1));
  r->slot_b0 = malloc(sizeof(int) * (size_t)(ns + 1));
  r->slot_b1 = malloc(sizeof(int) * (size_t)(ns + 1));
  if (!r->slot_lo || !r->slot_hi || !r->slot_b0 || !r->slot_b1) goto oom;
  for (int i = 0; i < ps->n; i++) {
    if (!o->covered[i]) continue;
    const vt_param *p = ps->items[i];
    int64_t k = r->n_slots++;
    size_t lo = p->grad_offset, hi = lo + (size_t)vt_numel(&p->t);
    while (k > 0 && r->slot_lo[k - 1] > lo) { /* insertion: the store is nearly sorted */
      r->slot_lo[k] = r->slot_lo[k - 1];
      r->slot_hi[k] = r->slot_hi[k - 1];
      k--;
    }
    r->slot_lo[k] = lo;
    r->slot_hi[k] = hi;
  }
  /* buckets run from high offsets to low: those a slot overlaps are consecutive */
  for (int64_t s = 0; s < r->n_slots; s++) {
    int b0 = -1, b1 = -1;
    for (int b = 0; b < r->nb; b++)
      if (r->b[b].lo < r->slot_hi[s] && r->b[b].hi > r->slot_lo[s]) {
        if (b0 < 0) b0 = b;
        b1 = b + 1;
      }
    r->slot_b0[s] = b0 < 0 ? 0 : b0;
    r->slot_b1[s] = b0 < 0 ? 0 : b1;
  }
  return 0;
oom:
  vt_reducer_free(r);
  vt_seterr(err, err_len, "gradient buckets: out of memory");
  return -1;
}

static void start_bucket(vt_reducer *r, int b) {
  vt_bucket *k = &r->b[b];
  k->started = true;
  if (r->failed) return;
  char what[64];
  snprintf(what, sizeof what, "gradient bucket %d of %d", b, r->nb);
  float *buf = r->ps->grad + k->lo;
  int rc = k->owner < 0
               ? r->coll->ops->iallreduce(r->coll, buf, k->hi - k->lo, what, &k->req)
               : r->coll->ops->ireduce(r->coll, buf, k->hi - k->lo, k->owner, what, &k->req);
  if (rc) {
    r->failed = true;
    snprintf(r->err, sizeof r->err, "%s", r->coll->err);
  }
}

/* Whether the window has room for one more bucket in flight. */
static bool room(const vt_reducer *r) { return r->window <= 0 || r->next - r->done < r->window; }

/* Starts the ready buckets at the front of the fixed order, as far as the window allows. */
static void start_ready(vt_reducer *r) {
  while (r->next < r->nb && r->b[r->next].pending == 0 && room(r)) start_bucket(r, r->next++);
}

static void release(vt_reducer *r, const vt_bucket *k);

static void on_ready(void *arg, int64_t slot) {
  vt_reducer *r = arg;
  for (int b = r->slot_b0[slot]; b < r->slot_b1[slot]; b++) r->b[b].pending--;
  /* start what is ready and test the buckets in flight: MPI progresses them only inside its
   * calls, a finished one makes room in the window, and ZeRO 2 drops its pages while
   * backward still runs */
  for (start_ready(r); !r->failed && r->done < r->next; start_ready(r)) {
    bool done = false;
    if (r->coll->ops->test(r->coll, &r->b[r->done].req, &done)) {
      r->failed = true;
      snprintf(r->err, sizeof r->err, "%s", r->coll->err);
      break;
    }
    if (!done) break;
    release(r, &r->b[r->done++]);
  }
}

void vt_reducer_arm(vt_reducer *r, vt_ctx *ctx) {
  r->next = r->done = 0;
  r->failed = false;
  for (int b = 0; b < r->nb; b++) {
    r->b[b].pending = 0;
    r->b[b].started = false;
    r->b[b].req.slot = -1;
  }
  if (r->coll->world <= 1 || r->nb <= 1) return; /* nothing to overlap */
  for (int64_t s = 0; s < r->n_slots; s++)
    for (int b = r->slot_b0[s]; b < r->slot_b1[s]; b++) r->b[b].pending++;
  vt_ctx_set_grad_hook(ctx, r->ps->grad, r->slot_lo, r->slot_hi, r->n_slots, on_ready, r);
  r->armed = true;
}

void vt_reducer_disarm(vt_reducer *r, vt_ctx *ctx) {
  if (r->armed) vt_ctx_set_grad_hook(ctx, NULL, NULL, NULL, 0, NULL, NULL);
  r->armed = false;
}

/* ZeRO 2 on the CPU: the pages of a bucket this rank does not own are returned to the system
 * once its sum has left (they read as zeros when touched again), so gradient memory between
 * steps is the rank's shard. */
static void drop_pages(float *lo, float *hi, bool zero_edges) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  uintptr_t a = ((uintptr_t)lo + page - 1) / page * page, b = (uintptr_t)hi / page * page;
  if (b <= a) {
    if (zero_edges) memset(lo, 0, (size_t)(hi - lo) * sizeof(float));
    return;
  }
  if (madvise((void *)a, b - a, MADV_DONTNEED)) {
    if (zero_edges) memset(lo, 0, (size_t)(hi - lo) * sizeof(float)); /* not released: zero it */
    return;
  }
  if (zero_edges) {
    memset(lo, 0, a - (uintptr_t)lo);
    memset((void *)b, 0, (uintptr_t)hi - b);
  }
}

/* Buckets complete in order, from the end of the stretch down, so when bucket k completes
 * every bucket above it has: the page across its upper edge can go too, when no part of it is
 * this rank's shard or outside the stretch. The page across its lower edge waits for the
 * bucket below (small buckets share pages; rounding each inward would keep them all). */
static void release(vt_reducer *r, const vt_bucket *k) {
  if (r->zero != 2 || k->owner == r->coll->rank || r->ps->device.type != VT_DEV_CPU) return;
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  float *g = r->ps->grad;
  uintptr_t hi = (uintptr_t)(g + k->hi), down = hi / page * page,
            up = (hi + page - 1) / page * page;
  uintptr_t own_lo = (uintptr_t)(g + r->own_lo), own_hi = (uintptr_t)(g + r->own_hi);
  bool whole = down >= (uintptr_t)(g + k->lo) && up <= (uintptr_t)(g + r->hi) &&
               (own_lo == own_hi || own_hi <= down || own_lo >= up);
  drop_pages(g + k->lo, whole ? (float *)up : g + k->hi, false);
}

void vt_zero_clear_grads(vt_params *ps, int zero, int world) {
  if (zero == 2 && world > 1 && ps->device.type == VT_DEV_CPU && ps->grad)
    drop_pages(ps->grad, ps->grad + ps->grad_numel, true);
  else
    vt_params_zero_grad(ps);
}

void vt_zero_scale_grads(vt_params *ps, const vt_optim *o, int zero, int world, float alpha) {
  if (!(zero == 2 && world > 1 && o->shard_world > 1)) {
    vt_params_scale_grad(ps, alpha);
    return;
  }
  if (ps->grad && o->shard_n && alpha != 1.0f) {
    float *g = ps->grad + o->flat_lo + o->shard_lo;
    ps->be->unary(ps->be, VT_UN_SCALE, (int64_t)o->shard_n, alpha, g, g);
  }
}

int vt_reducer_finish(vt_reducer *r, char *err, size_t err_len) {
  if (r->coll->world <= 1) return 0;
  int rc = r->failed ? -1 : 0;
  /* the rest in order, at most `window` in flight: MPI holds a bucket-sized temporary for
   * each one in flight (the sum arriving at its owner), so the window bounds that memory */
  while (r->done < r->nb) {
    while (!rc && r->next < r->nb && room(r)) start_bucket(r, r->next++);
    if (r->failed && !rc) rc = -1;
    if (r->done >= r->next) break; /* failed before starting the rest */
    vt_bucket *k = &r->b[r->done++];
    if (!k->started) continue;
    if (r->coll->ops->wait(r->coll, &k->req) && !rc) {
      snprintf(r->err, sizeof r->err, "%s", r->coll->err);
      rc = -1;
    }
    if (!rc) release(r, k);
  }
  if (rc) vt_seterr(err, err_len, "%s", r->err);
  return rc;
}

vt_zero_mem vt_zero_plan(double n_weight_bytes, int64_t n_trainable, int moments_per_value,
                         int zero, int world, bool nccl) {
  vt_zero_mem m = {0};
  if (world < 1) world = 1;
  int64_t shard = (n_trainable + world - 1) / world;
  m.shard = zero > 0 ? shard : n_trainable;
  m.weights = n_weight_bytes;
  m.grads = 4.0 * (double)n_trainable;
  m.grads_idle = 4.0 * (double)(zero == 2 && !nccl ? shard : n_trainable);
  m.optimizer = 4.0 * moments_per_value * (double)(zero > 0 ? shard : n_trainable);
  /* NCCL pads a sharded buffer whose length is not a multiple of the world size */
  m.comm = nccl && zero > 0 && shard * world != n_trainable ? 4.0 * (double)shard * world : 0;
  m.total = m.weights + m.grads + m.optimizer + m.comm;
  return m;
}

void vt_zero_plan_overlap(vt_zero_mem *m, int zero, int world, bool nccl, double bucket_bytes,
                          int64_t grad_accum) {
  if (world <= 1 || nccl || bucket_bytes <= 0) return;
  /* MPI's temporaries: one bucket for each in flight */
  m->comm += VT_REDUCER_WINDOW * bucket_bytes;
  m->total += VT_REDUCER_WINDOW * bucket_bytes;
  if (zero != 2 || grad_accum > 1) return;
  double peak = 4.0 * (double)m->shard + VT_REDUCER_WINDOW * bucket_bytes;
  if (peak >= m->grads) return;
  m->total -= m->grads - peak;
  m->grads = peak;
}
