/* The trainer's sharded f32 masters under bf16 ZeRO (zero_masters.h); see trainer_impl.h. */
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"
#include "train/trainer_impl.h"

static bool wanted(const trainer *t) {
  return t->cfg->precision == VT_BF16 && t->cfg->zero >= 1 && t->dist->world > 1 && t->ps.lowp;
}

int trainer_shard_masters(trainer *t, char *err, size_t err_len) {
  t->masters_probed = true;
  if (!wanted(t)) return 0;
  vt_params *ps = &t->ps;
  size_t n = (size_t)ps->n;
  /* how every rank's first step read each parameter: a batch without images reads no vision
   * weight on that rank */
  double *seen = malloc(sizeof(double) * 2 * (n + 1));
  uint8_t *reads = malloc(n + 1);
  int64_t *lo = malloc(sizeof(int64_t) * (n + 1)), *hi = malloc(sizeof(int64_t) * (n + 1));
  int rc = -1;
  if (!seen || !reads || !lo || !hi) {
    vt_seterr(err, err_len, "sharded masters: out of host memory");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    seen[2 * i] = ps->reads[i] & VT_READ_GEMM ? 1 : 0;
    seen[2 * i + 1] = ps->reads[i] & VT_READ_F32 ? 1 : 0;
  }
  if (n && vt_coll_allreduce_f64(t->hc, seen, 2 * n, VT_COLL_MAX, "parameter reads")) {
    vt_seterr(err, err_len, "step %lld: %s", (long long)t->step, t->hc->err);
    goto done;
  }
  bool any = false;
  for (size_t i = 0; i < n; i++) {
    reads[i] =
        (uint8_t)((seen[2 * i] > 0 ? VT_READ_GEMM : 0) | (seen[2 * i + 1] > 0 ? VT_READ_F32 : 0));
    lo[i] = 0, hi[i] = vt_numel(&ps->items[i]->t);
  }
  for (int p = 0; p < t->n_phases; p++) {
    trainer_phase *tp = &t->phases[p];
    if (vt_zero_masters_init(&tp->zm, &tp->opt, t->dist->world, reads, err, err_len)) goto done;
    vt_zero_masters_keep(&tp->zm, lo, hi);
    any |= tp->zm.on;
  }
  rc = any ? vt_params_shard_masters(ps, lo, hi, err, err_len) : 0;
done:
  free(seen);
  free(reads);
  free(lo);
  free(hi);
  return rc;
}

int trainer_gather_masters(trainer *t, char *err, size_t err_len) {
  if (!t->ps.spans) return 0;
  for (int p = 0; p < t->n_phases; p++) {
    const vt_optim *o = &t->phases[p].opt;
    if (!t->phases[p].zm.on) continue;
    if (t->dc->ops->allgather(t->dc, o->param_base, o->state_numel, "f32 master weights")) {
      vt_seterr(err, err_len, "%s", t->dc->err);
      return -1;
    }
  }
  vt_params_unshard_masters(&t->ps);
  return 0;
}

int trainer_reshard_masters(trainer *t, char *err, size_t err_len) {
  if (!t->ps.keep_lo || t->ps.spans) return 0;
  return vt_params_shard_masters(&t->ps, t->ps.keep_lo, t->ps.keep_hi, err, err_len);
}

int64_t trainer_sharded_masters(const trainer *t, int64_t *kept) {
  int64_t n = 0;
  *kept = 0;
  for (int i = 0; t->ps.keep_lo && i < t->ps.n; i++) {
    int64_t e = vt_numel(&t->ps.items[i]->t), k = t->ps.keep_hi[i] - t->ps.keep_lo[i];
    if (k == e) continue;
    n += e;
    *kept += k;
  }
  return n;
}
