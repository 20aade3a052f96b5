/* The trainer's sharded f32 masters under bf16 ZeRO (zero_masters.h); see trainer_impl.h. */
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"
#include "train/trainer_impl.h"

static bool wanted(const trainer *t) {
  return t->cfg->precision == VT_BF16 && t->cfg->zero >= 1 && t->dist->world > 1 && t->ps.lowp;
}

int trainer_probe_masters(trainer *t, char *err, size_t err_len) {
  if (t->masters_probed || !wanted(t)) return 0;
  mix_cursor start = mix_get_cursor(t->mix);
  vt_rng rng = t->rng;
  bool counting = t->count_samples, prev = vt_set_grad_enabled(t->ctx, false);
  t->count_samples = false;
  int rc = 0;
  for (int p = 0; p < t->n_phases && !rc; p++) {
    trainer_enter_phase(t, p);
    t->rng = rng;
    if (mix_set_cursor(t->mix, &start, err, err_len) ||
        trainer_next_batch(t, t->mix, err, err_len)) {
      rc = -1;
      break;
    }
    vt_batch b;
    trainer_upload(t, &b);
    vt_model_step st = {
        .phase = p, .train = true, .frozen_train = t->cfg->frozen_train, .rng = &t->rng};
    vt_model_loss out = {0};
    if (t->model->ops->loss(t->model, t->ctx, &b, &st, &out) || vt_ctx_failed(t->ctx)) {
      vt_seterr(err, err_len, "the forward that marks how parameters are read: model %s: %s",
                t->model->ops->name,
                vt_ctx_failed(t->ctx) ? vt_ctx_error(t->ctx) : "the loss failed");
      rc = -1;
    }
    vt_ctx_reset(t->ctx);
  }
  vt_set_grad_enabled(t->ctx, prev);
  t->count_samples = counting;
  t->rng = rng;
  if (!rc && mix_set_cursor(t->mix, &start, err, err_len)) rc = -1;
  return rc ? -1 : trainer_shard_masters(t, err, err_len);
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

/* The optimizer that covers parameter i, or NULL. */
static const vt_optim *owner_optim(const trainer *t, int i) {
  for (int q = 0; q < t->n_phases; q++)
    if (t->phases[q].opt.covered && t->phases[q].opt.covered[i]) return &t->phases[q].opt;
  return NULL;
}

/* Parameter i's f32 values from every rank's piece into dev (its numel values, memory of the
 * store's backend), on every rank: the pieces follow the stretch's shards in rank order, so
 * one all-gather of runs does it. */
static int gather_param(trainer *t, int i, float *dev, size_t *counts, char *err, size_t err_len) {
  const vt_param *p = t->ps.items[i];
  const vt_optim *o = owner_optim(t, i);
  if (!o) {
    vt_seterr(err, err_len, "parameter %s: sharded, but no optimizer covers it", p->name);
    return -1;
  }
  size_t g = p->grad_offset - o->flat_lo, n = (size_t)vt_numel(&p->t);
  for (int r = 0; r < t->dist->world; r++) {
    size_t lo, hi;
    vt_coll_shard_range(o->state_numel, t->dist->world, r, &lo, &hi);
    size_t a = g > lo ? g : lo, b = g + n < hi ? g + n : hi;
    counts[r] = b > a ? b - a : 0;
  }
  int64_t a = t->ps.keep_lo[i], b = t->ps.keep_hi[i];
  if (b > a)
    t->ps.be->copy(t->ps.be, dev + a, (const float *)p->t.data + a, (size_t)(b - a) * sizeof(float),
                   VT_COPY_D2D);
  if (t->dc->ops->allgatherv(t->dc, dev, counts, sizeof(float), "f32 master weights")) {
    vt_seterr(err, err_len, "%s", t->dc->err);
    return -1;
  }
  return 0;
}

int trainer_masters_begin(trainer *t, trainer_masters *m, char *err, size_t err_len) {
  memset(m, 0, sizeof *m);
  m->t = t;
  if (!t->ps.spans) return 0;
  size_t most = 1;
  for (int i = 0; i < t->ps.n; i++) /* the largest parameter that can be sharded */
    if (owner_optim(t, i) && (size_t)vt_numel(&t->ps.items[i]->t) > most)
      most = (size_t)vt_numel(&t->ps.items[i]->t);
  m->dev = vt_buf_alloc(t->ps.be, most * sizeof(float));
  m->counts = calloc((size_t)t->dist->world, sizeof *m->counts);
  if (!m->dev || !m->counts) {
    trainer_masters_end(m, NULL, 0);
    vt_seterr(err, err_len, "checkpoint: out of memory for one parameter's masters (%zu values)",
              most);
    return -1;
  }
  m->on = true;
  return 0;
}

int trainer_masters_fetch(void *ctx, const vt_param *p, void *host, char *err, size_t err_len) {
  trainer_masters *m = ctx;
  trainer *t = m->t;
  int64_t i = vt_params_index(&t->ps, p->name); /* the writer passes the store's own items */
  if (!m->on || i < 0 || t->ps.items[i] != p) {
    vt_seterr(err, err_len, "parameter %s: its sharded masters cannot be gathered", p->name);
    return -1;
  }
  if (t->hc->ops->broadcast(t->hc, &i, sizeof i, 0, "checkpoint parameter")) {
    vt_seterr(err, err_len, "%s", t->hc->err);
    return -1;
  }
  if (gather_param(t, (int)i, m->dev, m->counts, err, err_len)) return -1;
  vt_buf_to_host(t->ps.be, host, m->dev, vt_nbytes(&p->t));
  return 0;
}

int trainer_masters_serve(trainer_masters *m, char *err, size_t err_len) {
  trainer *t = m->t;
  for (;;) {
    int64_t i = -1;
    if (t->hc->ops->broadcast(t->hc, &i, sizeof i, 0, "checkpoint parameter")) {
      vt_seterr(err, err_len, "%s", t->hc->err);
      return -1;
    }
    if (i < 0) return 0;
    if (i >= t->ps.n) {
      vt_seterr(err, err_len, "checkpoint: rank 0 asked for parameter %lld of %d", (long long)i,
                t->ps.n);
      return -1;
    }
    if (gather_param(t, (int)i, m->dev, m->counts, err, err_len)) return -1;
  }
}

int trainer_masters_end(trainer_masters *m, char *err, size_t err_len) {
  int rc = 0;
  if (m->on && m->t->dist->rank == 0) { /* the other ranks stop serving */
    int64_t done = -1;
    rc = m->t->hc->ops->broadcast(m->t->hc, &done, sizeof done, 0, "checkpoint parameter");
    if (rc) vt_seterr(err, err_len, "%s", m->t->hc->err);
  }
  if (m->dev) vt_buf_free(m->t->ps.be, m->dev);
  free(m->counts);
  memset(m, 0, sizeof *m);
  return rc ? -1 : 0;
}

int trainer_restore_copies(trainer *t, char *err, size_t err_len) {
  if (!t->ps.lowp) return 0;
  vt_params_sync_lowp_step(&t->ps, t->step); /* of the values this rank holds */
  for (int p = 0; p < t->n_phases; p++)
    if (t->phases[p].zm.on && vt_zero_masters_gather_copies(&t->phases[p].zm, t->dc, err, err_len))
      return -1;
  return 0;
}

int64_t trainer_sharded_masters(const trainer *t, int64_t *kept) {
  int64_t n = 0;
  *kept = 0;
  for (int q = 0; q < t->n_phases; q++) {
    const vt_zero_masters *zm = &t->phases[q].zm;
    for (int i = 0; zm->on && i < t->ps.n; i++) {
      bool whole = !zm->o->covered[i];
      for (int k = 0; k < zm->n_kept && !whole; k++) whole = zm->kept[k] == i;
      if (whole) continue;
      n += vt_numel(&t->ps.items[i]->t);
      *kept += t->ps.keep_hi[i] - t->ps.keep_lo[i];
    }
  }
  return n;
}
