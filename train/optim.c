/* Optimizers over the flat parameter store; see optim.h. The host side resolves groups and
 * hyper-parameters (in double, as PyTorch does in Python); the per-element work runs in the
 * backend's optim kernels over segments of the flat buffers. */
#include "train/optim.h"

#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parameters longer than this are cut into several segments so that one large tensor (an
 * embedding table) spreads over all threads. */
#define SEG_MAX ((int64_t)1 << 15)
#define GLOB_MAX 256

vt_optim_cfg vt_optim_defaults(vt_optim_kind kind) {
  vt_optim_cfg c = {.kind = kind, .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8};
  if (kind == VT_OPTIM_ADAMW) c.weight_decay = 0.01;
  return c;
}

static const char *const no_decay_globs[] = {"*bias",      "*norm*", "*.ln_*", "ln_*",
                                             "*.ln[0-9]*", "*.ls1",  "*.ls2"};

bool vt_optim_is_no_decay(const vt_param *p) {
  if (p->t.ndim == 1) return true;
  for (size_t i = 0; i < sizeof no_decay_globs / sizeof *no_decay_globs; i++)
    if (fnmatch(no_decay_globs[i], p->name, 0) == 0) return true;
  return false;
}

/* Calls fn on each comma-separated glob of list (spaces around commas ignored); stops and
 * returns the first nonzero result of fn, or -2 when a glob is empty or too long. */
static int each_glob(const char *list, int (*fn)(const char *glob, void *arg), void *arg) {
  char buf[GLOB_MAX];
  const char *s = list;
  for (;;) {
    while (*s == ' ') s++;
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    while (len && s[len - 1] == ' ') len--;
    if (!len || len >= GLOB_MAX) return -2;
    memcpy(buf, s, len);
    buf[len] = 0;
    int r = fn(buf, arg);
    if (r) return r;
    if (!e) return 0;
    s = e + 1;
  }
}

static int glob_matches_name(const char *glob, void *name) {
  return fnmatch(glob, (const char *)name, 0) == 0;
}

typedef struct {
  const vt_params *ps;
  char *err;
  size_t err_len;
  int group;
} glob_check;

static int glob_matches_some(const char *glob, void *arg) {
  glob_check *gc = arg;
  for (int i = 0; i < gc->ps->n; i++)
    if (fnmatch(glob, gc->ps->items[i]->name, 0) == 0) return 0;
  snprintf(gc->err, gc->err_len, "optimizer group %d: glob \"%s\" matches no parameter", gc->group,
           glob);
  return -1;
}

static int check_cfg(const vt_optim_cfg *c, char *err, size_t err_len) {
  if (c->kind != VT_OPTIM_ADAMW && c->kind != VT_OPTIM_ADAM && c->kind != VT_OPTIM_SGD) {
    snprintf(err, err_len, "optimizer: unknown kind %d", (int)c->kind);
    return -1;
  }
  /* each value by name, finite (a config built in code is not checked by the YAML reader) */
  const struct {
    const char *name;
    double v, lo, hi;
    bool hi_open;
  } vals[] = {{"lr", c->lr, 0, INFINITY, true},
              {"weight_decay", c->weight_decay, 0, INFINITY, true},
              {"max_grad_norm", c->max_grad_norm, 0, INFINITY, true},
              {"beta1", c->beta1, 0, 1, true},
              {"beta2", c->beta2, 0, 1, true},
              {"eps", c->eps, 0, INFINITY, true}};
  int n_vals = c->kind == VT_OPTIM_SGD ? 3 : 6;
  for (int i = 0; i < n_vals; i++)
    if (!(vals[i].v >= vals[i].lo && vals[i].v < vals[i].hi)) {
      snprintf(err, err_len, "optimizer: %s %g must be finite and lie in [%g, %g)", vals[i].name,
               vals[i].v, vals[i].lo, vals[i].hi);
      return -1;
    }
  if (c->kind == VT_OPTIM_SGD && !(c->momentum >= 0 && c->momentum < 1)) {
    snprintf(err, err_len, "optimizer: SGD momentum %g must lie in [0, 1)", c->momentum);
    return -1;
  }
  if (c->n_groups < 0 || (c->n_groups && !c->groups)) {
    snprintf(err, err_len, "optimizer: %d groups given without a group array", c->n_groups);
    return -1;
  }
  for (int g = 0; g < c->n_groups; g++) {
    const vt_optim_group_cfg *gr = &c->groups[g];
    if (!gr->globs || !(gr->lr >= 0) || !(gr->weight_decay >= 0)) {
      snprintf(err, err_len, "optimizer group %d: globs %s, lr %g, weight_decay %g", g,
               gr->globs ? gr->globs : "(missing)", gr->lr, gr->weight_decay);
      return -1;
    }
  }
  return 0;
}

/* Index of the user group (n_groups for the default group) that claims the parameter. */
static int group_of(const vt_optim_cfg *c, const char *name) {
  for (int g = 0; g < c->n_groups; g++)
    if (each_glob(c->groups[g].globs, glob_matches_name, (void *)name) == 1) return g;
  return c->n_groups;
}

void vt_optim_free(vt_optim *o) {
  if (o->be) {
    vt_buf_free(o->be, o->m);
    vt_buf_free(o->be, o->v);
    vt_buf_free(o->be, o->segs);
  }
  free(o->groups);
  free(o->covered);
  memset(o, 0, sizeof *o);
}

/* Elements [*a, *b) of parameter p that fall in this rank's shard of the stretch (all of it
 * without sharding; an empty range when none). */
static void piece_of(const vt_optim *o, const vt_param *p, int64_t *a, int64_t *b) {
  int64_t g = (int64_t)(p->grad_offset - o->flat_lo), n = vt_numel(&p->t);
  int64_t lo = (int64_t)o->shard_lo, hi = lo + (int64_t)o->shard_n;
  *a = lo > g ? lo - g : 0;
  *b = hi < g + n ? hi - g : n;
  if (*b < *a) *b = *a;
}

static float *alloc_zeroed(const vt_backend *be, size_t n) {
  return vt_buf_alloc_zeroed(be, n * sizeof(float));
}

int vt_optim_init(vt_optim *o, vt_params *ps, const vt_optim_cfg *cfg, char *err, size_t err_len) {
  memset(o, 0, sizeof *o);
  if (check_cfg(cfg, err, err_len)) return -1;
  const struct vt_optim_kernels *k = ps->be ? ps->be->optim : NULL;
  if (!k || !k->sumsq || !k->scale || !k->adam_update || !k->sgd_update) {
    snprintf(err, err_len,
             "optimizer: not supported on the %s backend (no kernels of the %s family)",
             ps->be ? ps->be->name : "(none)", vt_backend_family_name(VT_FAMILY_OPTIM));
    return -1;
  }
  for (int g = 0; g < cfg->n_groups; g++) {
    glob_check gc = {.ps = ps, .err = err, .err_len = err_len, .group = g};
    int r = each_glob(cfg->groups[g].globs, glob_matches_some, &gc);
    if (r == -2)
      snprintf(err, err_len, "optimizer group %d: empty or over-long glob in \"%s\"", g,
               cfg->groups[g].globs);
    if (r) return -1;
  }
  /* The moments mirror the gradient buffer, so it must describe the current trainable set. */
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (!p->trainable) continue;
    if (!ps->grad || p->t.grad != ps->grad + p->grad_offset) {
      snprintf(err, err_len,
               "optimizer: parameter %s is trainable but has no gradient slot; call "
               "vt_params_alloc_grads after vt_params_set_trainable",
               p->name);
      return -1;
    }
  }
  o->cfg = *cfg;
  o->cfg.groups = NULL; /* the caller's globs and selection are not kept */
  o->cfg.only = NULL;
  o->covered = calloc((size_t)ps->n + 1, sizeof *o->covered);
  if (!o->covered) goto oom;
  size_t lo = SIZE_MAX, hi = 0;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    o->covered[i] = p->trainable && (!cfg->only || cfg->only[i]);
    if (!o->covered[i]) continue;
    if (p->grad_offset < lo) lo = p->grad_offset;
    if (p->grad_offset + (size_t)vt_numel(&p->t) > hi)
      hi = p->grad_offset + (size_t)vt_numel(&p->t);
  }
  /* the moments span only the covered stretch of the gradient buffer: a phase's optimizer
   * holds no state for the other phases' parameters */
  o->flat_lo = lo < hi ? lo : 0;
  o->state_numel = lo < hi ? hi - lo : 0;
  o->ps = ps;
  o->be = ps->be;
  o->numel = ps->grad_numel;
  /* ZeRO: this rank holds the state of, and updates, only its shard of the stretch */
  o->shard_world = cfg->shard_world > 1 ? cfg->shard_world : 1;
  o->shard_rank = o->shard_world > 1 ? cfg->shard_rank : 0;
  if (o->shard_rank < 0 || o->shard_rank >= o->shard_world) {
    snprintf(err, err_len, "optimizer: shard rank %d outside [0, %d)", cfg->shard_rank,
             o->shard_world);
    vt_optim_free(o);
    return -1;
  }
  {
    size_t per = (o->state_numel + (size_t)o->shard_world - 1) / (size_t)o->shard_world;
    size_t a = per * (size_t)o->shard_rank, b = a + per;
    o->shard_lo = a < o->state_numel ? a : o->state_numel;
    o->shard_n = (b < o->state_numel ? b : o->state_numel) - o->shard_lo;
  }
  o->n_int_groups = 2 * (cfg->n_groups + 1); /* (user group, decays?) pairs */
  o->groups = calloc((size_t)o->n_int_groups, sizeof *o->groups);
  int *which = calloc((size_t)ps->n + 1, sizeof *which);
  if (!o->groups || !which) {
    free(which);
    goto oom;
  }
  for (int g = 0; g <= cfg->n_groups; g++) {
    double lr = g < cfg->n_groups ? cfg->groups[g].lr : cfg->lr;
    double wd = g < cfg->n_groups ? cfg->groups[g].weight_decay : cfg->weight_decay;
    o->groups[2 * g] = (vt_optim_group){.lr = lr, .weight_decay = wd};
    o->groups[2 * g + 1] = (vt_optim_group){.lr = lr, .weight_decay = 0.0};
  }
  /* Count segments per internal group, then lay them out group after group. */
  int64_t *count = calloc((size_t)o->n_int_groups + 1, sizeof *count);
  if (!count) goto oom_which;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (!o->covered[i]) continue;
    int ig = 2 * group_of(cfg, p->name) + (!cfg->decay_all && vt_optim_is_no_decay(p));
    which[i] = ig;
    int64_t a, b;
    piece_of(o, p, &a, &b);
    count[ig + 1] += (b - a + SEG_MAX - 1) / SEG_MAX;
  }
  for (int g = 0; g < o->n_int_groups; g++) {
    count[g + 1] += count[g];
    o->groups[g].seg_begin = count[g];
    o->groups[g].seg_end = count[g + 1];
  }
  o->n_segs = count[o->n_int_groups];
  vt_optim_seg *host = calloc((size_t)o->n_segs + 1, sizeof *host);
  if (!host) goto oom_count;
  for (int i = 0; i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (!o->covered[i]) continue;
    int64_t a, b; /* the stretch of the parameter this rank updates */
    piece_of(o, p, &a, &b);
    int64_t at = (int64_t)(p->grad_offset - o->flat_lo) - (int64_t)o->shard_lo;
    for (int64_t s = a; s < b; s += SEG_MAX)
      host[count[which[i]]++] = (vt_optim_seg){.param = (float *)p->t.data + s,
                                               .flat = at + s,
                                               .n = b - s < SEG_MAX ? b - s : SEG_MAX,
                                               .no_copy = p->no_copy};
  }
  size_t seg_bytes = sizeof *host * (size_t)(o->n_segs ? o->n_segs : 1);
  o->segs = vt_buf_alloc(o->be, seg_bytes);
  if (o->segs) vt_buf_from_host(o->be, o->segs, host, seg_bytes);
  free(host);
  free(count);
  free(which);
  if (!o->segs) goto oom;
  /* whether the parameters of the stretch sit in the f32 data buffer in the gradient layout
   * (everything trainable in store order): then ZeRO all-gathers them in place */
  o->param_base = NULL;
  bool same = o->state_numel > 0 && ps->data[VT_F32];
  int64_t shift = 0;
  bool first = true;
  for (int i = 0; same && i < ps->n; i++) {
    vt_param *p = ps->items[i];
    if (!p->trainable || p->grad_offset < o->flat_lo ||
        p->grad_offset >= o->flat_lo + o->state_numel)
      continue;
    int64_t d = (int64_t)p->offset - (int64_t)(p->grad_offset - o->flat_lo);
    if (p->t.dtype != VT_F32 || (!first && d != shift)) same = false;
    shift = d, first = false;
  }
  if (same && shift >= 0 && (size_t)shift + o->state_numel <= ps->numel[VT_F32]) {
    /* frozen parameters inside the range would break the shift; none means a 1:1 map */
    bool frozen_inside = false;
    for (int i = 0; i < ps->n; i++) {
      vt_param *p = ps->items[i];
      if (!p->trainable && p->t.dtype == VT_F32 && p->offset < (size_t)shift + o->state_numel &&
          p->offset + (size_t)vt_numel(&p->t) > (size_t)shift)
        frozen_inside = true;
    }
    if (!frozen_inside) o->param_base = (float *)ps->data[VT_F32] + shift;
  }
  bool need_m = cfg->kind != VT_OPTIM_SGD || cfg->momentum > 0;
  bool need_v = cfg->kind != VT_OPTIM_SGD;
  size_t n = o->shard_n ? o->shard_n : 1;
  if ((need_m && !(o->m = alloc_zeroed(o->be, n))) || (need_v && !(o->v = alloc_zeroed(o->be, n))))
    goto oom;
  return 0;
oom_count:
  free(count);
oom_which:
  free(which);
oom:
  snprintf(err, err_len, "optimizer: out of %s memory for the state of %zu values", ps->be->name,
           ps->grad_numel);
  vt_optim_free(o);
  return -1;
}

double vt_optim_grad_norm(const vt_params *ps) {
  if (!ps->be || !ps->be->optim) return -1.0;
  if (!ps->grad_numel) return 0.0;
  return sqrt(ps->be->optim->sumsq(ps->be, ps->grad, (int64_t)ps->grad_numel));
}

/* torch.nn.utils.clip_grad_norm_'s coefficient, computed in float as torch does. */
static float clip_coef(double norm, double max_norm) {
  if (!(max_norm > 0)) return 1.0f;
  float c = (float)max_norm / ((float)norm + 1e-6f);
  return c < 1.0f ? c : 1.0f;
}

double vt_optim_clip_grads(vt_params *ps, double max_norm) {
  if (!ps->be || !ps->be->optim) return -1.0;
  double norm = vt_optim_grad_norm(ps);
  float c = clip_coef(norm, max_norm);
  if (c < 1.0f && isfinite(norm))
    ps->be->optim->scale(ps->be, ps->grad, (int64_t)ps->grad_numel, c);
  return norm;
}

int vt_optim_step(vt_optim *o, double lr_mult, int64_t step, vt_optim_stats *stats, char *err,
                  size_t err_len) {
  return vt_optim_step_norm(o, lr_mult, step, NAN, stats, err, err_len);
}

double vt_optim_shard_sumsq(const vt_optim *o) {
  if (!o->shard_n) return 0.0;
  return o->be->optim->sumsq(o->be, o->ps->grad + o->flat_lo + o->shard_lo, (int64_t)o->shard_n);
}

int vt_optim_step_norm(vt_optim *o, double lr_mult, int64_t step, double grad_norm,
                       vt_optim_stats *stats, char *err, size_t err_len) {
  vt_optim_stats st = {.clip_coef = 1.0, .lr = o->cfg.lr * lr_mult};
  vt_params *ps = o->ps;
  if (ps->grad_numel != o->numel || (o->numel && !ps->grad)) {
    snprintf(err, err_len,
             "optimizer: the store's gradient layout changed (%zu values, optimizer built for "
             "%zu); re-create the optimizer after changing trainable parameters",
             ps->grad_numel, o->numel);
    return -1;
  }
  const struct vt_optim_kernels *k = o->be->optim;
  st.grad_norm = isnan(grad_norm) ? vt_optim_grad_norm(ps) : grad_norm;
  if (!isfinite(st.grad_norm)) {
    o->n_skipped++;
    st.skipped = true;
    fprintf(stderr,
            "warning: step %lld: gradient norm is %g; update skipped (%lld skipped so far)\n",
            (long long)step, st.grad_norm, (long long)o->n_skipped);
    if (stats) *stats = st;
    return 0;
  }
  float gs = clip_coef(st.grad_norm, o->cfg.max_grad_norm);
  st.clip_coef = gs;
  o->t++;
  const vt_optim_cfg *c = &o->cfg;
  /* where the segments count from: this rank's shard of the optimizer's stretch */
  float *grad = ps->grad ? ps->grad + o->flat_lo + o->shard_lo : NULL;
  double bc1 = 1.0 - pow(c->beta1, (double)o->t), bc2 = 1.0 - pow(c->beta2, (double)o->t);
  for (int g = 0; g < o->n_int_groups; g++) {
    const vt_optim_group *gr = &o->groups[g];
    int64_t nseg = gr->seg_end - gr->seg_begin;
    if (!nseg) continue;
    double lr = gr->lr * lr_mult;
    const vt_optim_seg *segs = o->segs + gr->seg_begin;
    if (c->kind == VT_OPTIM_SGD) {
      vt_sgd_hparams h = {.grad_scale = gs,
                          .l2 = (float)gr->weight_decay,
                          .lr = (float)lr,
                          .momentum = (float)c->momentum};
      k->sgd_update(o->be, segs, nseg, grad, o->m, h);
      continue;
    }
    bool adamw = c->kind == VT_OPTIM_ADAMW;
    vt_adam_hparams h = {.grad_scale = gs,
                         .l2 = adamw ? 0.0f : (float)gr->weight_decay,
                         .decay = adamw ? (float)(1.0 - lr * gr->weight_decay) : 1.0f,
                         .beta1 = (float)c->beta1,
                         .beta2 = (float)c->beta2,
                         .one_minus_beta1 = (float)(1.0 - c->beta1),
                         .one_minus_beta2 = (float)(1.0 - c->beta2),
                         .step_size = (float)(lr / bc1),
                         .bc2_sqrt = (float)sqrt(bc2),
                         .eps = (float)c->eps};
    if (ps->lowp && !ps->sr && k->adam_update_lowp)
      k->adam_update_lowp(o->be, segs, nseg, grad, o->m, o->v, h, ps->data[VT_F32], ps->lowp);
    else
      k->adam_update(o->be, segs, nseg, grad, o->m, o->v, h);
  }
  /* bf16 mixed precision: the GEMMs' copies follow the updated f32 masters, refreshed inside
   * the update where the backend can (frozen parameters keep theirs: they did not change),
   * else by one conversion of the whole buffer here (a no-op without copies). Stochastic
   * rounding refreshes here, keyed by the step. Whoever changes parameters after this (e.g. a
   * ZeRO all-gather of the updated shards) syncs again. */
  bool fused = c->kind != VT_OPTIM_SGD && k->adam_update_lowp && !ps->sr;
  if (!fused) vt_params_sync_lowp_step(ps, step);
  if (stats) *stats = st;
  return 0;
}

int vt_optim_state(const vt_optim *o, const char *name, float **m, float **v, int64_t *numel,
                   char *err, size_t err_len) {
  const vt_param *p = vt_params_find(o->ps, name);
  bool mine = false;
  for (int i = 0; p && i < o->ps->n; i++)
    if (o->ps->items[i] == p) mine = o->covered[i];
  if (!p || !mine) {
    snprintf(err, err_len, "optimizer state: parameter %s is %s", name,
             !p             ? "unknown"
             : p->trainable ? "not updated by this optimizer (no state here)"
                            : "frozen (frozen parameters have no state)");
    return -1;
  }
  if (o->shard_world > 1) {
    snprintf(err, err_len,
             "optimizer state: parameter %s: the state is sharded (ZeRO); use "
             "vt_optim_piece",
             name);
    return -1;
  }
  *m = o->m ? o->m + (p->grad_offset - o->flat_lo) : NULL;
  *v = o->v ? o->v + (p->grad_offset - o->flat_lo) : NULL;
  *numel = vt_numel(&p->t);
  return 0;
}

bool vt_optim_piece(const vt_optim *o, int i, float **m, float **v, int64_t *first, int64_t *n) {
  *m = *v = NULL;
  *first = *n = 0;
  if (i < 0 || i >= o->ps->n || !o->covered[i]) return false;
  const vt_param *p = o->ps->items[i];
  int64_t a, b;
  piece_of(o, p, &a, &b);
  if (b <= a) return false;
  size_t at = p->grad_offset - o->flat_lo + (size_t)a - o->shard_lo;
  *m = o->m ? o->m + at : NULL;
  *v = o->v ? o->v + at : NULL;
  *first = a;
  *n = b - a;
  return true;
}

/* The updated pieces into (pack) or all parameters out of (unpack) their gradient slots. */
static void move_params(const vt_optim *o, bool pack) {
  vt_params *ps = o->ps;
  for (int i = 0; i < ps->n; i++) {
    if (!o->covered[i]) continue;
    vt_param *p = ps->items[i];
    int64_t a = 0, b = vt_numel(&p->t);
    if (pack) piece_of(o, p, &a, &b);
    if (b <= a) continue;
    float *slot = ps->grad + p->grad_offset + a, *data = (float *)p->t.data + a;
    o->be->copy(o->be, pack ? slot : data, pack ? data : slot, (size_t)(b - a) * sizeof(float),
                VT_COPY_D2D);
  }
}

void vt_optim_pack_shard(const vt_optim *o) { move_params(o, true); }
void vt_optim_unpack_params(const vt_optim *o) { move_params(o, false); }
