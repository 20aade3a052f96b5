/* fp32 masters sharded under bf16 ZeRO; see zero_masters.h. */
#include "train/zero_masters.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"

bool vt_zero_master_sharded(const vt_param *p, uint8_t reads) {
  return p->trainable && p->t.dtype == VT_F32 && p->t.ndim == 2 && (reads & VT_READ_GEMM) &&
         !(reads & VT_READ_F32);
}

void vt_zero_masters_free(vt_zero_masters *zm) {
  free(zm->kept);
  free(zm->kept_at);
  free(zm->kept_counts);
  free(zm->run_copy);
  free(zm->run_counts);
  memset(zm, 0, sizeof *zm);
}

/* The stretch range [g, g + n) of parameter p, in values from the stretch's start. */
static void stretch_range(const vt_optim *o, const vt_param *p, size_t *g, size_t *n) {
  *g = p->grad_offset - o->flat_lo;
  *n = (size_t)vt_numel(&p->t);
}

static size_t overlap(size_t a, size_t b, size_t lo, size_t hi) {
  size_t x = a > lo ? a : lo, y = b < hi ? b : hi;
  return y > x ? y - x : 0;
}

/* The runs of the bf16 gather: covered parameters with copies in stretch order, a run
 * extended while the next one sits as far from the run's start in the copies as in the
 * gradients (the same 16-value padding; a frozen f32 parameter between them breaks it). */
static int find_runs(vt_zero_masters *zm, char *err, size_t err_len) {
  const vt_optim *o = zm->o;
  const vt_params *ps = o->ps;
  int n = 0, *order = malloc(sizeof(int) * (size_t)(ps->n + 1));
  size_t *lo = malloc(sizeof(size_t) * (size_t)(ps->n + 1)),
         *hi = malloc(sizeof(size_t) * (size_t)(ps->n + 1));
  zm->run_copy = malloc(sizeof(size_t) * (size_t)(ps->n + 1));
  if (!order || !lo || !hi || !zm->run_copy) goto oom;
  for (int i = 0; i < ps->n; i++) { /* by gradient offset (the store is nearly sorted) */
    if (!o->covered[i] || !ps->items[i]->t.lowp) continue;
    int k = n++;
    while (k > 0 && ps->items[order[k - 1]]->grad_offset > ps->items[i]->grad_offset) {
      order[k] = order[k - 1];
      k--;
    }
    order[k] = i;
  }
  for (int k = 0; k < n; k++) {
    const vt_param *p = ps->items[order[k]];
    size_t g, m;
    stretch_range(o, p, &g, &m);
    int r = zm->n_runs - 1;
    if (r >= 0 && p->offset - zm->run_copy[r] == g - lo[r]) {
      hi[r] = g + m;
      continue;
    }
    r = zm->n_runs++;
    zm->run_copy[r] = p->offset, lo[r] = g, hi[r] = g + m;
  }
  zm->run_counts = calloc((size_t)(zm->n_runs + 1) * (size_t)zm->world, sizeof(size_t));
  if (!zm->run_counts) goto oom;
  for (int k = 0; k < zm->n_runs; k++)
    for (int r = 0; r < zm->world; r++) {
      size_t a, b;
      vt_coll_shard_range(o->state_numel, zm->world, r, &a, &b);
      zm->run_counts[(size_t)k * (size_t)zm->world + (size_t)r] = overlap(lo[k], hi[k], a, b);
    }
  free(order);
  free(lo);
  free(hi);
  return 0;
oom:
  free(order);
  free(lo);
  free(hi);
  vt_zero_masters_free(zm);
  vt_seterr(err, err_len, "sharded masters: out of host memory");
  return -1;
}

int vt_zero_masters_init(vt_zero_masters *zm, const vt_optim *o, int world, const uint8_t *reads,
                         char *err, size_t err_len) {
  memset(zm, 0, sizeof *zm);
  zm->o = o;
  const vt_params *ps = o->ps;
  if (o->shard_world <= 1 || !ps->lowp || !o->state_numel) return 0;
  bool any = false;
  for (int i = 0; i < ps->n; i++)
    any |= o->covered[i] && vt_zero_master_sharded(ps->items[i], reads[i]);
  if (!any) return 0;
  zm->kept = malloc(sizeof(int) * (size_t)(ps->n + 1));
  zm->kept_at = malloc(sizeof(size_t) * (size_t)(ps->n + 1));
  zm->kept_counts = calloc((size_t)world, sizeof(size_t));
  if (!zm->kept || !zm->kept_at || !zm->kept_counts) {
    vt_zero_masters_free(zm);
    vt_seterr(err, err_len, "sharded masters: out of host memory");
    return -1;
  }
  zm->o = o;
  for (int i = 0; i < ps->n; i++) { /* the kept ones, sorted by stretch offset */
    if (!o->covered[i] || vt_zero_master_sharded(ps->items[i], reads[i])) continue;
    int k = zm->n_kept++;
    while (k > 0 && ps->items[zm->kept[k - 1]]->grad_offset > ps->items[i]->grad_offset) {
      zm->kept[k] = zm->kept[k - 1];
      k--;
    }
    zm->kept[k] = i;
  }
  for (int k = 0; k < zm->n_kept; k++) {
    size_t g, n;
    stretch_range(o, ps->items[zm->kept[k]], &g, &n);
    zm->kept_at[k] = zm->kept_n;
    zm->kept_n += n;
    for (int r = 0; r < world; r++) {
      size_t lo, hi;
      vt_coll_shard_range(o->state_numel, world, r, &lo, &hi);
      zm->kept_counts[r] += overlap(g, g + n, lo, hi);
    }
  }
  zm->world = world;
  if (find_runs(zm, err, err_len)) return -1;
  zm->on = true;
  return 0;
}

void vt_zero_masters_keep(const vt_zero_masters *zm, int64_t *keep_lo, int64_t *keep_hi) {
  if (!zm->on) return;
  const vt_optim *o = zm->o;
  for (int i = 0; i < o->ps->n; i++) {
    if (!o->covered[i]) continue;
    keep_lo[i] = 0, keep_hi[i] = vt_numel(&o->ps->items[i]->t);
  }
  for (int i = 0; i < o->ps->n; i++) {
    if (!o->covered[i]) continue;
    bool kept = false;
    for (int k = 0; k < zm->n_kept && !kept; k++) kept = zm->kept[k] == i;
    if (kept) continue;
    float *m, *v;
    int64_t first, n;
    if (!vt_optim_piece(o, i, &m, &v, &first, &n)) first = n = 0;
    keep_lo[i] = first, keep_hi[i] = first + n;
  }
}

int vt_zero_masters_gather_copies(const vt_zero_masters *zm, vt_coll *c, char *err,
                                  size_t err_len) {
  const vt_params *ps = zm->o->ps;
  /* in place run by run (see zero_masters.h) */
  for (int k = 0; k < zm->n_runs; k++)
    if (c->ops->allgatherv(c, (uint16_t *)ps->lowp + zm->run_copy[k],
                           zm->run_counts + (size_t)k * (size_t)zm->world, sizeof(uint16_t),
                           "updated bf16 weights")) {
      vt_seterr(err, err_len, "%s", c->err);
      return -1;
    }
  return 0;
}

int vt_zero_masters_gather(const vt_zero_masters *zm, vt_coll *c, char *err, size_t err_len) {
  const vt_optim *o = zm->o;
  vt_params *ps = o->ps;
  const vt_backend *be = ps->be;
  if (vt_zero_masters_gather_copies(zm, c, err, err_len)) return -1;
  if (!zm->kept_n) return 0;
  /* the whole f32 parameters, packed into the spent gradients (this rank's shard of them when
   * the run fits there: those pages are resident anyway) */
  float *run = ps->grad + o->flat_lo + (zm->kept_n <= o->shard_n ? o->shard_lo : 0);
  for (int k = 0; k < zm->n_kept; k++) {
    const vt_param *p = ps->items[zm->kept[k]];
    size_t g, n;
    stretch_range(o, p, &g, &n);
    size_t a = g > o->shard_lo ? g : o->shard_lo;
    size_t m = overlap(g, g + n, o->shard_lo, o->shard_lo + o->shard_n);
    if (m)
      be->copy(be, run + zm->kept_at[k] + (a - g), (const float *)p->t.data + (a - g),
               m * sizeof(float), VT_COPY_D2D);
  }
  if (c->ops->allgatherv(c, run, zm->kept_counts, sizeof(float), "updated f32 weights")) {
    vt_seterr(err, err_len, "%s", c->err);
    return -1;
  }
  for (int k = 0; k < zm->n_kept; k++) {
    const vt_param *p = ps->items[zm->kept[k]];
    be->copy(be, p->t.data, run + zm->kept_at[k], (size_t)vt_numel(&p->t) * sizeof(float),
             VT_COPY_D2D);
  }
  return 0;
}

double vt_zero_masters_plan(int64_t n_f32, int64_t n_other_bytes, int64_t n_sharded, int world) {
  if (world < 1) world = 1;
  int64_t shard = (n_sharded + world - 1) / world;
  return 2.0 * (double)n_f32 + 4.0 * (double)(n_f32 - n_sharded + shard) + (double)n_other_bytes;
}
