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
 *  - sharded f32 masters under bf16 (zero_masters.h): after a bf16 forward marks the reads,
 *    the GEMM weights keep f32 values of this rank's shard only (whole pages of the rest out of
 *    memory, reads refused by vt_param_read_f32 and by a non-GEMM op), and 3 sharded AdamW
 *    steps with bf16 all-gathers give the bf16 copies and the kept f32 values of an unsharded
 *    store bit for bit, with round-to-nearest and with stochastic rounding; the forward loss
 *    is then the unsharded one; the gathers write no gradient page outside this rank's shard
 *    (ZeRO 2's gradient memory between steps stays the plan's); the variable-length
 *    all-gather of bf16 runs;
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
#include "train/zero_masters.h"

enum { N = 4, T = 8, V = 40 };

typedef struct {
  vt_params ps;
  qwen2 m;
  vt_ctx *ctx;
} net;

/* A net of hidden size h (sharded masters need weights of whole pages). */
static void net_init_sized(net *n, bool recompute, int h) {
  char err[256];
  qwen2_cfg cfg = {.vocab_size = V,
                   .hidden_size = h,
                   .intermediate_size = h * 3 / 2,
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

static void net_init(net *n, bool recompute) { net_init_sized(n, recompute, 16); }

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

/* AdamW (lr 0.01, clipped at 0.5) over a's store unsharded and over b's sharded over the ranks. */
static void adamw_pair(vt_coll *c, net *a, net *b, vt_optim *oa, vt_optim *ob) {
  char err[600];
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 0.01;
  oc.max_grad_norm = 0.5;
  CHECK(vt_optim_init(oa, &a->ps, &oc, err, sizeof err) == 0);
  oc.shard_rank = c->rank, oc.shard_world = c->world;
  CHECK(vt_optim_init(ob, &b->ps, &oc, err, sizeof err) == 0);
}

/* Step `step` of both on the same random full gradients (ZeRO 1); both clip alike. */
static void adamw_pair_step(net *a, net *b, vt_optim *oa, vt_optim *ob, int step) {
  char err[600];
  size_t gn = a->ps.grad_numel;
  vt_rng rng;
  vt_rng_seed(&rng, (uint64_t)step);
  for (size_t i = 0; i < gn; i++) a->ps.grad[i] = (float)(vt_rng_uniform(&rng) - 0.5);
  memcpy(b->ps.grad, a->ps.grad, sizeof(float) * gn);
  vt_optim_stats sa, sb;
  CHECK(vt_optim_step(oa, 1.0, step, &sa, err, sizeof err) == 0);
  CHECK(vt_optim_step(ob, 1.0, step, &sb, err, sizeof err) == 0);
  CHECK(sa.clip_coef < 1 && sa.clip_coef == sb.clip_coef);
}

static void test_sharded_adamw(vt_coll *c) {
  net a, b; /* a: unsharded; b: sharded over the ranks */
  net_init(&a, false);
  net_init(&b, false);
  vt_optim oa, ob;
  adamw_pair(c, &a, &b, &oa, &ob);
  /* the shards tile the stretch */
  double n_sh = (double)ob.shard_n;
  CHECK(vt_coll_allreduce_f64(c, &n_sh, 1, VT_COLL_SUM, "shard sizes") == 0);
  CHECK(n_sh == (double)ob.state_numel);
  CHECK(ob.param_base != NULL);
  for (int step = 1; step <= 3; step++) {
    adamw_pair_step(&a, &b, &oa, &ob, step);
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

/* Runs of 0, 3, 5, ... bf16 values (rank r's run holds r * 1000 + j), gathered in place. */
static void test_allgatherv(vt_coll *c) {
  size_t counts[16], total = 0;
  for (int r = 0; r < c->world; r++) total += counts[r] = r == 1 ? 0 : (size_t)(3 + 2 * r);
  uint16_t *buf = calloc(total, sizeof *buf);
  size_t at = 0;
  for (int r = 0; r < c->rank; r++) at += counts[r];
  for (size_t j = 0; j < counts[c->rank]; j++) buf[at + j] = (uint16_t)(c->rank * 1000 + j);
  CHECK(c->ops->allgatherv(c, buf, counts, sizeof *buf, "test runs") == 0);
  size_t bad = 0;
  at = 0;
  for (int r = 0; r < c->world; at += counts[r], r++)
    for (size_t j = 0; j < counts[r]; j++) bad += buf[at + j] != (uint16_t)(r * 1000 + j);
  CHECK(bad == 0);
  free(buf);
}

/* Pages of [p, p + bytes) that are resident. */
static long resident_pages(const void *p, size_t bytes) {
  long page = sysconf(_SC_PAGESIZE), n = 0;
  uintptr_t a = (uintptr_t)p / (uintptr_t)page * (uintptr_t)page, b = (uintptr_t)p + bytes;
  for (; a < b; a += (uintptr_t)page) {
    unsigned char v = 0;
    CHECK(mincore((void *)a, (size_t)page, &v) == 0);
    n += v & 1;
  }
  return n;
}

/* sr: stochastic rounding; frozen: a frozen norm between the trainable layers, so the stretch
 * is not in the gradient layout and the bf16 all-gather takes two runs over the copies. */
static void test_sharded_masters(vt_coll *c, bool sr, bool frozen) {
  char err[600], kern[256];
  net a, b; /* a: whole masters, unsharded optimizer; b: sharded masters and optimizer */
  net_init_sized(&a, false, 64);
  net_init_sized(&b, false, 64);
  net *both[2] = {&a, &b};
  for (int k = 0; frozen && k < 2; k++) {
    CHECK(vt_params_set_trainable(&both[k]->ps, "model.layers.0.post_attention_layernorm.*",
                                  false) == 1);
    CHECK(vt_params_alloc_grads(&both[k]->ps, err, sizeof err) == 0);
  }
  if (vt_ctx_set_gemm_dtype(a.ctx, VT_BF16, kern, sizeof kern, err, sizeof err)) {
    printf("sharded masters: no bf16 GEMMs here (%s): skipped\n", err);
    net_free(&a);
    net_free(&b);
    return;
  }
  CHECK(vt_ctx_set_gemm_dtype(b.ctx, VT_BF16, kern, sizeof kern, err, sizeof err) == 0);
  CHECK(vt_params_enable_lowp(&a.ps, VT_BF16, err, sizeof err) == 0);
  CHECK(vt_params_enable_lowp(&b.ps, VT_BF16, err, sizeof err) == 0);
  CHECK(vt_params_set_rounding(&a.ps, sr, 11, err, sizeof err) == 0);
  CHECK(vt_params_set_rounding(&b.ps, sr, 11, err, sizeof err) == 0);
  vt_optim oa, ob;
  adamw_pair(c, &a, &b, &oa, &ob);
  CHECK((ob.param_base == NULL) == frozen);
  /* the reads of a bf16 step */
  CHECK(vt_backward(b.ctx, qwen2_loss(&b.m, b.ctx, batch(&b, 0, 3), batch(&b, 0, 3), NULL)));
  vt_ctx_reset(b.ctx);
  vt_zero_masters zm;
  CHECK(vt_zero_masters_init(&zm, &ob, c->world, b.ps.reads, err, sizeof err) == 0);
  CHECK(zm.on);
  int n = b.ps.n;
  int64_t *lo = calloc((size_t)n, sizeof *lo), *hi = calloc((size_t)n, sizeof *hi);
  for (int i = 0; i < n; i++) hi[i] = vt_numel(&b.ps.items[i]->t);
  vt_zero_masters_keep(&zm, lo, hi);
  CHECK(vt_params_shard_masters(&b.ps, lo, hi, err, sizeof err) == 0);
  vt_param *emb = vt_params_find(&b.ps, "model.embed_tokens.weight");
  vt_param *norm = vt_params_find(&b.ps, "model.norm.weight");
  vt_param *q = vt_params_find(&b.ps, "model.layers.0.self_attn.q_proj.weight");
  CHECK(emb && norm && q && vt_zero_master_sharded(q, *q->t.reads));
  CHECK(!vt_zero_master_sharded(emb, *emb->t.reads) &&
        !vt_zero_master_sharded(norm, *norm->t.reads));
  CHECK(vt_param_has_masters(&b.ps, &emb->t) && vt_param_has_masters(&b.ps, &norm->t));
  q = NULL; /* a GEMM weight of which this rank holds less than the whole */
  int64_t mine = 0, shardable = 0;
  for (int i = 0; i < b.ps.n; i++) {
    vt_param *p = b.ps.items[i];
    if (!vt_zero_master_sharded(p, *p->t.reads)) continue;
    mine += hi[i] - lo[i];
    shardable += vt_numel(&p->t);
    if (!q && !vt_param_has_masters(&b.ps, &p->t)) q = p;
  }
  CHECK(q != NULL);
  double tot = (double)mine;
  CHECK(vt_coll_allreduce_f64(c, &tot, 1, VT_COLL_SUM, "kept masters") == 0);
  CHECK(tot == (double)shardable); /* the shards of the sharded weights tile them */
  float *host = malloc(sizeof(float) * (size_t)vt_numel(&q->t));
  CHECK(vt_param_read_f32(&b.ps, &q->t, host, err, sizeof err) == -1 && strstr(err, "shard"));
  long page = sysconf(_SC_PAGESIZE), grad_res = 0;
  for (int step = 1; step <= 3; step++) {
    adamw_pair_step(&a, &b, &oa, &ob, step);
    /* as at ZeRO 2: the spent gradients outside the shard are out of memory (here all of
     * them); the gathers must not bring them back */
    vt_zero_clear_grads(&b.ps, 2, c->world);
    CHECK(vt_zero_masters_gather(&zm, c, err, sizeof err) == 0);
    grad_res = resident_pages(b.ps.grad, b.ps.grad_numel * sizeof(float));
  }
  /* gradient memory between ZeRO 2 steps is the plan's: this rank's shard (the whole f32
   * parameters were gathered there), within a page at either end */
  vt_zero_mem z2 = vt_zero_plan(0, (int64_t)vt_params_count(&b.ps, true), 2, 2, c->world, false);
  printf("sharded masters: %ld gradient pages resident after the gathers (%.0f bytes; plan "
         "between ZeRO 2 steps %.0f, ZeRO 1 %.0f)\n",
         grad_res, (double)(grad_res * page), z2.grads_idle, z2.grads);
  CHECK((double)(grad_res * page) <= 4.0 * (double)ob.shard_n + 2.0 * (double)page);
  CHECK(z2.grads_idle < z2.grads && (double)(grad_res * page) <= z2.grads_idle + 2.0 * page);
  size_t differ = 0, f32_differ = 0;
  for (int i = 0; i < n; i++) {
    const vt_param *pa = a.ps.items[i], *pb = b.ps.items[i];
    const uint16_t *la = pa->t.lowp, *lb = pb->t.lowp;
    const float *fa = pa->t.data, *fb = pb->t.data;
    CHECK(!la == !lb); /* a gathered embedding table has no copy */
    for (int64_t j = 0; la && j < vt_numel(&pa->t); j++) differ += la[j] != lb[j];
    for (int64_t j = b.ps.keep_lo[i]; j < b.ps.keep_hi[i]; j++) f32_differ += fa[j] != fb[j];
  }
  CHECK(differ == 0 && f32_differ == 0);
  int64_t pages, res = vt_params_released_resident(&b.ps, &pages);
  CHECK(res == 0 && pages > 0);
  /* a forward from the sharded store reads nothing released: the same loss */
  vt_tensor *ia = batch(&a, c->rank, 9), *ib = batch(&b, c->rank, 9);
  float la = vt_item(a.ctx, qwen2_loss(&a.m, a.ctx, ia, ia, NULL));
  float lb = vt_item(b.ctx, qwen2_loss(&b.m, b.ctx, ib, ib, NULL));
  CHECK(!vt_ctx_failed(b.ctx) && la == lb);
  /* an op that reads f32 values of a sharded parameter fails with a message */
  vt_embedding(b.ctx, &q->t, ib);
  CHECK(vt_ctx_failed(b.ctx) && strstr(vt_ctx_error(b.ctx), q->name) &&
        strstr(vt_ctx_error(b.ctx), "shard"));
  printf("sharded masters (%s rounding%s) over %d ranks: %lld of %lld f32 values of GEMM weights "
         "kept here, "
         "%lld of %lld released whole pages resident; bf16 copies and kept values bit-identical "
         "after 3 steps; loss %.6f both\n",
         sr ? "stochastic" : "nearest", frozen ? ", a frozen norm inside" : "", c->world,
         (long long)mine, (long long)shardable, (long long)res, (long long)pages, la);
  free(host);
  free(lo);
  free(hi);
  vt_zero_masters_free(&zm);
  vt_optim_free(&oa);
  vt_optim_free(&ob);
  net_free(&a);
  net_free(&b);
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
    test_allgatherv(&c);
    test_sharded_masters(&c, false, false);
    test_sharded_masters(&c, true, false);
    test_sharded_masters(&c, false, true);
  }
  vt_coll_close(&c);
  char name[64];
  snprintf(name, sizeof name, "test_dist_zero rank %d of %d", d.rank, d.world);
  int rc = vt_test_finish(name);
  vt_dist_finalize(&d);
  return rc;
}
