/* The demo training loop; see demo.h. */
#include "train/demo.h"

#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "model/tiny_lm.h"
#include "train/optim.h"
#include "train/schedule.h"

vt_demo_cfg vt_demo_defaults(void) {
  return (vt_demo_cfg){.steps = 300, .batch = 256, .lr = 3e-3, .seed = 1, .vocab = 64,
                       .context = 3, .dim = 32, .hidden = 256, .log_every = 20, .log = stdout};
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The generating rule: the next token is a fixed random permutation of the previous one,
 * replaced by a uniform token with probability `noise`. */
typedef struct {
  int vocab;
  float noise;
  int32_t perm[256];
} rule;

static void rule_init(rule *r, int vocab, float noise, vt_rng *rng) {
  r->vocab = vocab;
  r->noise = noise;
  for (int i = 0; i < vocab; i++) r->perm[i] = i;
  for (int i = vocab - 1; i > 0; i--) { /* Fisher-Yates */
    int j = (int)vt_rng_below(rng, (uint64_t)i + 1);
    int32_t t = r->perm[i];
    r->perm[i] = r->perm[j];
    r->perm[j] = t;
  }
}

static int32_t next_token(const rule *r, vt_rng *rng, int32_t prev) {
  if (vt_rng_uniform(rng) < r->noise) return (int32_t)vt_rng_below(rng, (uint64_t)r->vocab);
  return r->perm[prev];
}

/* Fills ids [n, context] with windows of a generated stream and targets with what follows. */
static void make_batch(const rule *r, vt_rng *rng, int64_t n, int context, int32_t *ids,
                       int32_t *targets) {
  for (int64_t i = 0; i < n; i++) {
    int32_t w[64];
    w[0] = (int32_t)vt_rng_below(rng, (uint64_t)r->vocab);
    for (int k = 1; k <= context; k++) w[k] = next_token(r, rng, w[k - 1]);
    for (int k = 0; k < context; k++) ids[i * context + k] = w[k];
    targets[i] = w[context];
  }
}

int vt_demo_run(const vt_demo_cfg *cfg, vt_demo_result *res, char *err, size_t err_len) {
  if (cfg->steps < 1 || cfg->batch < 1 || cfg->context < 1 || cfg->context > 63 ||
      cfg->vocab < 2 || cfg->vocab > 256) {
    snprintf(err, err_len,
             "demo: steps >= 1, batch >= 1, context in [1, 63] and vocab in [2, 256] expected");
    return -1;
  }
  int rc = -1;
  vt_rng rng;
  vt_rng_seed(&rng, cfg->seed);
  rule r;
  rule_init(&r, cfg->vocab, 0.1f, &rng);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_optim opt = {0};
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, NULL);
  int32_t *ids = malloc(sizeof(int32_t) * (size_t)(cfg->batch * cfg->context));
  int32_t *targets = malloc(sizeof(int32_t) * (size_t)cfg->batch);
  tiny_lm m;
  tiny_lm_cfg mc = {cfg->vocab, cfg->context, cfg->dim, cfg->hidden};
  if (!ctx || !ids || !targets) {
    snprintf(err, err_len, "demo: out of memory");
    goto done;
  }
  if (tiny_lm_init(&m, &ps, &mc, err, err_len) || vt_params_alloc(&ps, err, err_len)) goto done;
  tiny_lm_init_weights(&m, &rng);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = cfg->lr;
  oc.weight_decay = 0.01;
  oc.max_grad_norm = 1.0;
  vt_sched sched;
  vt_sched_cfg sc = {.kind = VT_SCHED_COSINE, .total_steps = cfg->steps, .warmup_ratio = 0.03,
                     .min_lr_ratio = 0.1};
  if (vt_optim_init(&opt, &ps, &oc, err, err_len) || vt_sched_init(&sched, &sc, err, err_len))
    goto done;

  /* the best reachable loss is the entropy of the rule's next-token distribution */
  double p_rule = 1.0 - r.noise + r.noise / r.vocab, p_other = r.noise / r.vocab;
  res->min_possible = -(p_rule * log(p_rule) + (r.vocab - 1) * p_other * log(p_other));
  res->params = (int64_t)vt_params_count(&ps, true);
  if (cfg->log_every && cfg->log)
    fprintf(cfg->log,
            "demo: tiny_lm with %lld parameters on generated sequences (vocab %d, context %d); "
            "loss starts near ln(%d) = %.3f, the best reachable is %.3f\n",
            (long long)res->params, cfg->vocab, cfg->context, cfg->vocab, log(cfg->vocab),
            res->min_possible);
  int64_t tenth = cfg->steps >= 10 ? cfg->steps / 10 : 1;
  double sum_first = 0, sum_last = 0, t0 = now();
  for (int64_t step = 0; step < cfg->steps; step++) {
    make_batch(&r, &rng, cfg->batch, cfg->context, ids, targets);
    vt_tensor *ti = vt_from_host(ctx, VT_I32, 2, (int64_t[]){cfg->batch, cfg->context}, ids);
    vt_tensor *tt = vt_from_host(ctx, VT_I32, 1, (int64_t[]){cfg->batch}, targets);
    vt_tensor *loss = tiny_lm_loss(&m, ctx, ti, tt);
    double l = vt_item(ctx, loss);
    vt_params_zero_grad(&ps);
    vt_optim_stats st = {0};
    if (!vt_backward(ctx, loss)) {
      snprintf(err, err_len, "demo: step %lld: %s", (long long)step, vt_ctx_error(ctx));
      goto done;
    }
    if (vt_optim_step(&opt, vt_sched_lr(&sched, step), step, &st, err, err_len)) goto done;
    vt_ctx_reset(ctx);
    if (step < tenth) sum_first += l;
    if (step >= cfg->steps - tenth) sum_last += l;
    if (cfg->log_every && cfg->log && ((step + 1) % cfg->log_every == 0 || step == 0)) {
      double el = now() - t0, tps = (double)(step + 1) * cfg->batch / el;
      fprintf(cfg->log, "step %5lld/%lld | loss %.4f | lr %.2e | grad norm %.3f | %.0f tok/s | "
                        "ETA %.1fs\n",
              (long long)step + 1, (long long)cfg->steps, l, st.lr, st.grad_norm, tps,
              el / (double)(step + 1) * (double)(cfg->steps - step - 1));
    }
  }
  res->seconds = now() - t0;
  res->tokens_per_s = (double)cfg->steps * cfg->batch / res->seconds;
  res->first_loss = sum_first / tenth;
  res->last_loss = sum_last / tenth;
  rc = 0;
done:
  vt_optim_free(&opt);
  vt_params_free(&ps);
  vt_ctx_free(ctx);
  free(ids);
  free(targets);
  return rc;
}
