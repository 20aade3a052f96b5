// ctest-labels: mpi
/* The parts of data parallel below the trainer, on CPU ranks (ctest: 2 ranks; test_zero.sh
 * also runs it on 3, where shards are uneven):
 *  - autograd's gradient-ready hook reports every slot exactly once, and when it does the
 *    slot's gradient already has its final value (with and without activation recompute);
 *  - the bucketed reducer armed on backward starts buckets before backward returns, and its
 *    sums equal one blocking all-reduce of the whole buffer (ZeRO 0) or that sum's shard of
 *    this rank (ZeRO 2, buckets reduced to their owners);
 *  - a ZeRO-sharded AdamW updating its shard, then all-gathering, gives the parameters and
 *    (piece by piece) the moments of an unsharded AdamW, bit for bit, and the shards tile the
 *    stretch exactly;
 *  - at ZeRO 2 the pages of other ranks' buckets are out of memory after the reduce and the
 *    division by the count (mincore);
 *  - vt_zero_plan's figures for a small case computed by hand. */
#define _DEFAULT_SOURCE /* mincore */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "model/qwen2.h"
#include "tests/testutil.h"
#include "train/coll.h"
#include "train/zero.h"

enum { N = 4, T = 8, V = 40 };

typedef struct {
  vt_params ps;
  qwen2 m;
  vt_ctx *ctx;
} net;

static void net_init(net *n, bool recompute) {
  char err[256];
  qwen2_cfg cfg = {.vocab_size = V,
                   .hidden_size = 16,
                   .intermediate_size = 24,
                   .num_hidden_layers = 2,
                   .num_attention_heads = 2,
                   .num_key_value_heads = 1,
                   .rope_theta = 1e4,
                   .rms_norm_eps = 1e-6,
                   .initializer_range = 0.2,
                   .recompute = recompute};
  vt_params_init(&n->ps, (vt_device){VT_DEV_CPU, 0});
  CHECK(qwen2_init(&n->m, &n->ps, &cfg, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&n->ps, err, sizeof err) == 0);
  CHECK(vt_params_alloc_grads(&n->ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 5); /* the same weights on every rank */
  qwen2_init_weights(&n->m, &rng);
  n->ctx = vt_test_cpu_ctx();
}

static void net_free(net *n) {
  qwen2_free(&n->m);
  vt_params_free(&n->ps);
  vt_ctx_free(n->ctx);
}

/* This rank's rows of a global batch of N * world sequences. */
static vt_tensor *batch(net *n, int rank, uint64_t seed) {
  int32_t ids[N * T];
  vt_rng rng;
  vt_rng_seed(&rng, seed + 1000 * (uint64_t)rank);
  for (int i = 0; i < N * T; i++) ids[i] = (int32_t)vt_rng_below(&rng, V);
  return vt_from_host(n->ctx, VT_I32, 2, (int64_t[]){N, T}, ids);
}

/* ---- the hook ---- */
typedef struct {
  net *n;
  size_t *lo, *hi;
  int64_t ns;
  int *reports;
  float *at_report; /* each slot's gradient when reported */
  int64_t early;    /* reports made while slot 0 (the embedding table) had no gradient yet */
} hook_log;

static void on_slot(void *arg, int64_t s) {
  hook_log *h = arg;
  h->reports[s]++;
  bool none = true;
  for (size_t j = h->lo[0]; j < h->hi[0] && none; j++) none = h->n->ps.grad[j] == 0;
  h->early += none;
  memcpy(h->at_report + h->lo[s], h->n->ps.grad + h->lo[s], (h->hi[s] - h->lo[s]) * sizeof(float));
}

static void test_hook(bool recompute) {
  net n;
  net_init(&n, recompute);
  vt_params *ps = &n.ps;
  hook_log h = {.n = &n};
  h.lo = malloc(sizeof(size_t) * (size_t)ps->n);
  h.hi = malloc(sizeof(size_t) * (size_t)ps->n);
  h.reports = calloc((size_t)ps->n, sizeof(int));
  h.at_report = calloc(ps->grad_numel, sizeof(float));
  for (int i = 0; i < ps->n; i++) /* the store lays out gradients in item order */
    if (ps->items[i]->trainable) {
      h.lo[h.ns] = ps->items[i]->grad_offset;
      h.hi[h.ns++] = ps->items[i]->grad_offset + (size_t)vt_numel(&ps->items[i]->t);
    }
  for (int round = 0; round < 2; round++) { /* the second backward accumulates */
    vt_ctx_set_grad_hook(n.ctx, ps->grad, h.lo, h.hi, h.ns, on_slot, &h);
    vt_tensor *ids = batch(&n, 0, 7 + (uint64_t)round);
    CHECK(vt_backward(n.ctx, qwen2_loss(&n.m, n.ctx, ids, ids, NULL)));
    vt_ctx_set_grad_hook(n.ctx, NULL, NULL, NULL, 0, NULL, NULL);
    vt_ctx_reset(n.ctx);
    /* backward meets the embedding last: every other slot is final before it */
    if (round == 0) CHECK(h.early == h.ns - 1);
    int once = 0;
    for (int64_t s = 0; s < h.ns; s++) once += h.reports[s] == round + 1;
    CHECK(once == h.ns);
    size_t differ = 0;
    for (int64_t s = 0; s < h.ns; s++)
      for (size_t j = h.lo[s]; j < h.hi[s]; j++) differ += h.at_report[j] != ps->grad[j];
    if (differ) printf("  %zu gradient values changed after their slot was reported\n", differ);
    CHECK(differ == 0);
  }
  printf("hook (recompute %d): %lld slots, each reported once per backward with its final "
         "gradient\n",
         recompute, (long long)h.ns);
  free(h.lo);
  free(h.hi);
  free(h.reports);
  free(h.at_report);
  net_free(&n);
}

/* ---- the reducer and the sharded optimizer ---- */
static double max_abs(const float *x, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

static void test_reducer(vt_coll *c, int zero, int window) {
  char err[600];
  net n;
  net_init(&n, false);
  vt_params *ps = &n.ps;
  size_t gn = ps->grad_numel;
  /* the reference: this rank's gradient, summed by one blocking all-reduce */
  vt_tensor *ids = batch(&n, c->rank, 11);
  CHECK(vt_backward(n.ctx, qwen2_loss(&n.m, n.ctx, ids, ids, NULL)));
  vt_ctx_reset(n.ctx);
  float *ref = malloc(sizeof(float) * gn);
  memcpy(ref, ps->grad, sizeof(float) * gn);
  CHECK(vt_coll_allreduce_f32(c, ref, gn, "reference") == 0);
  /* the same through 1 KiB buckets overlapped with backward */
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  if (zero) oc.shard_rank = c->rank, oc.shard_world = c->world;
  vt_optim o;
  vt_reducer r;
  CHECK(vt_optim_init(&o, ps, &oc, err, sizeof err) == 0);
  CHECK(vt_reducer_init(&r, c, &o, zero, 1024, err, sizeof err) == 0);
  r.window = window;
  vt_zero_clear_grads(ps, zero, c->world);
  ids = batch(&n, c->rank, 11);
  vt_reducer_arm(&r, n.ctx);
  CHECK(vt_backward(n.ctx, qwen2_loss(&n.m, n.ctx, ids, ids, NULL)));
  vt_reducer_disarm(&r, n.ctx);
  int started_in_backward = r.next;
  CHECK(r.nb > 4);
  if (window <= 0)
    CHECK(started_in_backward == r.nb); /* every bucket, once its last gradient was final */
  else /* as earlier ones completed; the last ready ones may wait for room */
    CHECK(started_in_backward >= 1 && r.next - r.done <= window);
  CHECK(vt_reducer_finish(&r, err, sizeof err) == 0);
  vt_ctx_reset(n.ctx);
  size_t lo = 0, hi = gn;
  if (zero == 2) {
    lo = o.flat_lo + o.shard_lo;
    hi = lo + o.shard_n;
  }
  if (zero == 2) {
    /* the other ranks' buckets were returned to the system as they completed, and dividing
     * by the count touches only the shard: their pages stay out of memory */
    vt_zero_scale_grads(ps, &o, zero, c->world, 0.5f);
    for (size_t i = lo; i < hi; i++) ref[i] *= 0.5f;
    long page = sysconf(_SC_PAGESIZE), out = 0, kept = 0;
    for (int side = 0; side < 2; side++) {
      uintptr_t a = (uintptr_t)(ps->grad + (side ? hi : o.flat_lo));
      uintptr_t b = (uintptr_t)(ps->grad + (side ? o.flat_lo + o.state_numel : lo));
      a = (a + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
      b = b / (uintptr_t)page * (uintptr_t)page;
      for (; a < b; a += (uintptr_t)page, out++) {
        unsigned char v = 0;
        CHECK(mincore((void *)a, (size_t)page, &v) == 0);
        kept += v & 1;
      }
    }
    printf("ZeRO 2: %ld of %ld whole pages outside the shard resident after the reduce\n", kept,
           out);
    CHECK(kept == 0);
  }
  double tol = 8 * 1.1920929e-7 * max_abs(ref, gn);
  CHECK_CLOSE("bucketed sums", ps->grad + lo, ref + lo, (long)(hi - lo), tol, 8 * 1.1920929e-7);
  printf("reducer ZeRO %d, window %d: %d buckets, %d started during backward; sums of [%zu, %zu) "
         "match\n",
         zero, window, r.nb, started_in_backward, lo, hi);
  vt_reducer_free(&r);
  vt_optim_free(&o);
  free(ref);
  net_free(&n);
}

static void test_sharded_adamw(vt_coll *c) {
  char err[600];
  net a, b; /* a: unsharded; b: sharded over the ranks */
  net_init(&a, false);
  net_init(&b, false);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 0.01;
  oc.max_grad_norm = 0.5;
  vt_optim oa, ob;
  CHECK(vt_optim_init(&oa, &a.ps, &oc, err, sizeof err) == 0);
  oc.shard_rank = c->rank, oc.shard_world = c->world;
  CHECK(vt_optim_init(&ob, &b.ps, &oc, err, sizeof err) == 0);
  /* the shards tile the stretch */
  double n_sh = (double)ob.shard_n;
  CHECK(vt_coll_allreduce_f64(c, &n_sh, 1, VT_COLL_SUM, "shard sizes") == 0);
  CHECK(n_sh == (double)ob.state_numel);
  CHECK(ob.param_base != NULL);
  size_t gn = a.ps.grad_numel;
  for (int step = 1; step <= 3; step++) {
    vt_rng rng;
    vt_rng_seed(&rng, (uint64_t)step);
    for (size_t i = 0; i < gn; i++) a.ps.grad[i] = (float)(vt_rng_uniform(&rng) - 0.5);
    memcpy(b.ps.grad, a.ps.grad, sizeof(float) * gn);
    vt_optim_stats sa, sb;
    CHECK(vt_optim_step(&oa, 1.0, step, &sa, err, sizeof err) == 0);
    CHECK(vt_optim_step(&ob, 1.0, step, &sb, err, sizeof err) == 0); /* full gradients: ZeRO 1 */
    CHECK(sa.clip_coef < 1 && sa.clip_coef == sb.clip_coef);
    CHECK(c->ops->allgather(c, ob.param_base, ob.state_numel, "parameters") == 0);
  }
  size_t differ = 0;
  for (size_t i = 0; i < a.ps.numel[VT_F32]; i++)
    differ += ((float *)a.ps.data[VT_F32])[i] != ((float *)b.ps.data[VT_F32])[i];
  CHECK(differ == 0);
  /* every piece of moments this rank holds equals the unsharded moments there */
  int64_t pieces = 0, values = 0;
  differ = 0;
  for (int i = 0; i < a.ps.n; i++) {
    float *m, *v, *fm, *fv;
    int64_t first, cnt, f0, fn;
    if (!vt_optim_piece(&ob, i, &m, &v, &first, &cnt)) continue;
    CHECK(vt_optim_piece(&oa, i, &fm, &fv, &f0, &fn) && f0 == 0);
    for (int64_t j = 0; j < cnt; j++) differ += m[j] != fm[first + j] || v[j] != fv[first + j];
    pieces++;
    values += cnt;
  }
  CHECK(differ == 0);
  double vals = (double)values;
  CHECK(vt_coll_allreduce_f64(c, &vals, 1, VT_COLL_SUM, "piece sizes") == 0);
  CHECK(vals == (double)vt_params_count(&a.ps, true));
  printf("sharded AdamW over %d ranks: parameters bit-identical after 3 clipped steps; %lld "
         "pieces of moments match (%lld values here)\n",
         c->world, (long long)pieces, (long long)values);
  vt_optim_free(&oa);
  vt_optim_free(&ob);
  net_free(&a);
  net_free(&b);
}

static void test_plan(void) {
  /* 1000 trainable values, 4000 bytes of weights, Adam (2 moments), 3 ranks: shard 334 */
  vt_zero_mem z0 = vt_zero_plan(4000, 1000, 2, 0, 3, false);
  vt_zero_mem z1 = vt_zero_plan(4000, 1000, 2, 1, 3, false);
  vt_zero_mem z2 = vt_zero_plan(4000, 1000, 2, 2, 3, false);
  vt_zero_mem g1 = vt_zero_plan(4000, 1000, 2, 1, 3, true);
  CHECK(z0.weights == 4000 && z0.grads == 4000 && z0.optimizer == 8000 && z0.total == 16000);
  CHECK(z1.shard == 334 && z1.grads == 4000 && z1.optimizer == 2672 && z1.total == 10672);
  CHECK(z2.grads == 4000 && z2.grads_idle == 1336 && z2.optimizer == 2672 && z2.total == 10672);
  CHECK(z1.grads_idle == 4000);
  CHECK(g1.comm == 4008 && g1.total == 14680); /* NCCL pads 1000 to 3 x 334 */
  vt_zero_mem even = vt_zero_plan(4000, 999, 2, 1, 3, true);
  CHECK(even.comm == 0);
  /* ZeRO 2 on CPU ranks, buckets of 100 bytes in flight two at a time: gradients 1336 + 200,
   * MPI temporaries 200 */
  CHECK(VT_REDUCER_WINDOW == 2);
  vt_zero_plan_overlap(&z2, 2, 3, false, 100, 1);
  CHECK(z2.grads == 1536 && z2.comm == 200 && z2.total == 10672 - 4000 + 1536 + 200);
  vt_zero_mem z2b = vt_zero_plan(4000, 1000, 2, 2, 3, false);
  vt_zero_plan_overlap(&z2b, 2, 3, false, 100, 2); /* two micro-batches: every page written */
  CHECK(z2b.grads == 4000 && z2b.comm == 200);
  vt_zero_plan_overlap(&z1, 1, 3, false, 100, 1); /* ZeRO 1 keeps the buffer */
  CHECK(z1.grads == 4000 && z1.total == 10672 + 200);
  vt_zero_mem g2 = vt_zero_plan(4000, 1000, 2, 2, 3, true);
  vt_zero_plan_overlap(&g2, 2, 3, true, 100, 1); /* GPUs keep the buffer; NCCL stages itself */
  CHECK(g2.grads == 4000 && g2.comm == 4008);
}

int main(int argc, char **argv) {
  vt_dist d;
  char err[600];
  if (vt_dist_init(&d, &argc, &argv, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  test_plan();
  test_hook(false);
  test_hook(true);
  vt_coll c;
  CHECK(vt_coll_open_mpi(&c, &d, 60, err, sizeof err) == 0);
  if (d.world < 2) {
    printf("the collective parts need 2 or more ranks (mpirun -np 2): skipped\n");
  } else {
    test_reducer(&c, 0, 0);
    test_reducer(&c, 2, 0);
    test_reducer(&c, 0, VT_REDUCER_WINDOW);
    test_reducer(&c, 2, VT_REDUCER_WINDOW);
    test_sharded_adamw(&c);
  }
  vt_coll_close(&c);
  char name[64];
  snprintf(name, sizeof name, "test_dist_zero rank %d of %d", d.rank, d.world);
  int rc = vt_test_finish(name);
  vt_dist_finalize(&d);
  return rc;
}
