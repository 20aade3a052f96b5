// ctest-labels: unit
/* Optimizers against torch.optim over 10 steps (tests/fixtures/optim/{adamw,adam,sgd}.txt from
 * tests/reference/gen_optim_fixtures.py): parameters, moments, clipped norms and scheduled LRs,
 * with groups and frozen parameters; then non-finite skips, the no-decay rule and errors. */
#include <stdlib.h>
#include <string.h>

#include "autograd/kernels_optim.h"
#include "tests/fixture.h"
#include "tests/testutil.h"
#include "train/optim.h"
#include "train/schedule.h"

/* f32 trajectories: each step rounds a handful of times (~1.2e-7 each) and torch sums the
 * norm in float where we use double, so 10 steps stay well inside 1e-6 relative; the absolute
 * terms cover values that cross zero (one ulp of the value scale, 1 for parameters, the
 * gradient scale ~0.3 for m, its square for v). */
#define RTOL 1e-6
#define ATOL_P 1e-7
#define ATOL_M 3e-8
#define ATOL_V 1e-8

typedef struct {
  const char *name;
  int ndim;
  int64_t shape[3];
  bool trainable;
} spec;

static const spec adamw_spec[] = {
    {"model.embed_tokens.weight", 2, {6, 4}, true},
    {"model.layers.0.self_attn.q_proj.weight", 2, {4, 4}, true},
    {"model.layers.0.self_attn.q_proj.bias", 1, {4}, true},
    {"model.layers.0.self_attn.k_proj.weight", 2, {4, 4}, false},
    {"model.layers.0.input_layernorm.weight", 1, {4}, true},
    {"vision_tower.encoder.layers.0.ls1", 1, {4}, true},
    {"vision_tower.encoder.layers.0.norm1.weight", 1, {4}, true},
    {"vision_tower.encoder.layers.0.mlp.fc1.weight", 2, {5, 4}, true},
    {"audio_encoder.conv.weight", 3, {3, 2, 2}, false},
    {"audio_encoder.conv.bias", 1, {3}, false},
    {"mlp1.1.weight", 2, {4, 5}, true},
    {"mlp1.1.bias", 1, {4}, true},
};

static const spec adam_spec[] = {
    {"codec.encoder.conv.weight", 3, {4, 3, 3}, true},
    {"codec.encoder.conv.bias", 1, {4}, true},
    {"codec.embed.weight", 2, {5, 3}, false},
    {"disc.conv.weight", 3, {2, 4, 3}, true},
    {"disc.conv.bias", 1, {2}, true},
};

static const spec sgd_spec[] = {
    {"a.weight", 2, {3, 4}, true},
    {"a.bias", 1, {3}, true},
    {"b.weight", 2, {2, 3}, false},
};

static const float *fx_get(const vt_fixture *fx, const char *prefix, const char *name) {
  char key[256];
  snprintf(key, sizeof key, "%s.%s", prefix, name);
  return vt_fixture_get(fx, key)->f;
}

/* A store with the spec's parameters, initialised from the fixture, frozen ones marked. */
static void build_store(vt_params *ps, const spec *sp, int n, const vt_fixture *fx) {
  char err[256];
  vt_params_init(ps, (vt_device){VT_DEV_CPU, 0});
  for (int i = 0; i < n; i++)
    CHECK(vt_params_add(ps, sp[i].name, VT_F32, sp[i].ndim, sp[i].shape, err, sizeof err));
  CHECK(vt_params_alloc(ps, err, sizeof err) == 0);
  for (int i = 0; i < n; i++)
    if (!sp[i].trainable) CHECK(vt_params_set_trainable(ps, sp[i].name, false) == 1);
  CHECK(vt_params_alloc_grads(ps, err, sizeof err) == 0);
  for (int i = 0; i < n; i++) {
    vt_param *p = vt_params_find(ps, sp[i].name);
    if (fx) memcpy(p->t.data, fx_get(fx, "init", p->name), sizeof(float) * vt_numel(&p->t));
  }
}

/* Runs the fixture's steps and compares everything it recorded. */
static void check_trajectory(const char *file, const spec *sp, int n, const vt_optim_cfg *cfg,
                             const vt_sched_cfg *scfg) {
  vt_fixture *fx = vt_fixture_load(file);
  vt_params ps;
  build_store(&ps, sp, n, fx);
  vt_optim o;
  vt_sched s;
  char err[256];
  CHECK_MSG(vt_optim_init(&o, &ps, cfg, err, sizeof err) == 0, "%s: %s", file, err);
  CHECK(vt_sched_init(&s, scfg, err, sizeof err) == 0);
  /* frozen parameters: no gradient, no state, and (below) not one bit changed */
  float *frozen_before[16] = {0};
  for (int i = 0; i < n; i++) {
    vt_param *p = vt_params_find(&ps, sp[i].name);
    CHECK(p->trainable == sp[i].trainable && (p->t.grad != NULL) == sp[i].trainable);
    if (sp[i].trainable) continue;
    size_t bytes = sizeof(float) * (size_t)vt_numel(&p->t);
    frozen_before[i] = malloc(bytes);
    memcpy(frozen_before[i], p->t.data, bytes);
  }
  CHECK(o.numel == ps.grad_numel);
  const vt_fixture_tensor *steps = vt_fixture_get(fx, "lrs");
  float norms[16], lrs[16];
  for (int k = 0; k < steps->n; k++) {
    for (int i = 0; i < n; i++) {
      if (!sp[i].trainable) continue;
      vt_param *p = vt_params_find(&ps, sp[i].name);
      int64_t m = vt_numel(&p->t);
      memcpy(p->t.grad, fx_get(fx, "grad", p->name) + k * m, sizeof(float) * m);
    }
    vt_optim_stats st;
    CHECK(vt_optim_step(&o, vt_sched_lr(&s, k), k, &st, err, sizeof err) == 0);
    CHECK(!st.skipped);
    norms[k] = (float)st.grad_norm;
    lrs[k] = (float)st.lr;
  }
  CHECK(o.t == steps->n && o.n_skipped == 0);
  char what[256];
  snprintf(what, sizeof what, "%s lrs", file);
  CHECK_CLOSE(what, lrs, steps->f, steps->n, 1e-12, RTOL);
  if (cfg->max_grad_norm > 0) {
    snprintf(what, sizeof what, "%s norms", file);
    CHECK_CLOSE(what, norms, vt_fixture_get(fx, "norms")->f, steps->n, 0, RTOL);
  }
  for (int i = 0; i < n; i++) {
    vt_param *p = vt_params_find(&ps, sp[i].name);
    int64_t numel = vt_numel(&p->t);
    snprintf(what, sizeof what, "%s final %s", file, p->name);
    CHECK_CLOSE(what, p->t.data, fx_get(fx, "final", p->name), numel, ATOL_P, RTOL);
    float *m, *v;
    int64_t sn;
    if (!sp[i].trainable) {
      CHECK_MSG(memcmp(p->t.data, frozen_before[i], sizeof(float) * numel) == 0,
                "frozen %s changed", p->name);
      free(frozen_before[i]);
      CHECK(vt_optim_state(&o, p->name, &m, &v, &sn, err, sizeof err) == -1);
      continue;
    }
    CHECK(vt_optim_state(&o, p->name, &m, &v, &sn, err, sizeof err) == 0 && sn == numel);
    if (cfg->kind == VT_OPTIM_SGD) {
      snprintf(what, sizeof what, "%s momentum %s", file, p->name);
      CHECK(v == NULL);
      CHECK_CLOSE(what, m, fx_get(fx, "momentum_buffer", p->name), numel, ATOL_M, RTOL);
      continue;
    }
    snprintf(what, sizeof what, "%s exp_avg %s", file, p->name);
    CHECK_CLOSE(what, m, fx_get(fx, "exp_avg", p->name), numel, ATOL_M, RTOL);
    snprintf(what, sizeof what, "%s exp_avg_sq %s", file, p->name);
    CHECK_CLOSE(what, v, fx_get(fx, "exp_avg_sq", p->name), numel, ATOL_V, RTOL);
  }
  vt_optim_free(&o);
  vt_params_free(&ps);
  vt_fixture_free(fx);
}

static void test_torch_trajectories(void) {
  vt_optim_group_cfg groups[] = {{"vision_tower.*", 2e-3, 0.05}, {"mlp1.*", 5e-2, 0.1}};
  vt_optim_cfg c = vt_optim_defaults(VT_OPTIM_ADAMW);
  c.lr = 1e-2;
  c.weight_decay = 0.01;
  c.max_grad_norm = 1.0;
  c.groups = groups;
  c.n_groups = 2;
  vt_sched_cfg cos = {
      .kind = VT_SCHED_COSINE, .total_steps = 10, .warmup_steps = 2, .min_lr_ratio = 0.1};
  check_trajectory("optim/adamw.txt", adamw_spec, 5 + 7, &c, &cos);

  vt_sched_cfg constant = {.kind = VT_SCHED_CONSTANT};
  vt_optim_group_cfg disc[] = {{"disc.*", 2e-2, 0.01}};
  c = vt_optim_defaults(VT_OPTIM_ADAM);
  c.lr = 1e-2;
  c.beta1 = 0.5;
  c.beta2 = 0.9;
  c.groups = disc;
  c.n_groups = 1;
  check_trajectory("optim/adam.txt", adam_spec, 5, &c, &constant);

  c = vt_optim_defaults(VT_OPTIM_SGD);
  c.lr = 5e-2;
  c.weight_decay = 1e-3;
  c.momentum = 0.9;
  c.max_grad_norm = 0.5;
  check_trajectory("optim/sgd.txt", sgd_spec, 3, &c, &constant);
}

/* A NaN or Inf gradient skips the whole step: nothing moves, t stays, the skip is counted. */
static void test_nonfinite_skip(void) {
  vt_params ps;
  build_store(&ps, adamw_spec, 12, NULL);
  vt_rng r;
  vt_rng_seed(&r, 7);
  vt_test_fill_uniform(&r, ps.data[VT_F32], (long)ps.numel[VT_F32], -1, 1);
  vt_optim o;
  char err[256];
  vt_optim_cfg c = vt_optim_defaults(VT_OPTIM_ADAMW);
  c.max_grad_norm = 1.0;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == 0);
  size_t np = ps.numel[VT_F32], ng = ps.grad_numel, ns = o.state_numel; /* moments: ns values */
  float *p0 = malloc(np * 4), *m0 = malloc(ns * 4), *v0 = malloc(ns * 4);
  vt_optim_stats st;
  for (int k = 0; k < 6; k++) {
    vt_test_fill_uniform(&r, ps.grad, (long)ng, -1, 1);
    if (k == 2 || k == 4) { /* a bad value somewhere in the middle of a trainable parameter */
      vt_param *q = vt_params_find(&ps, "mlp1.1.weight");
      q->t.grad[7] = k == 2 ? NAN : -INFINITY;
    }
    memcpy(p0, ps.data[VT_F32], np * 4);
    memcpy(m0, o.m, ns * 4);
    memcpy(v0, o.v, ns * 4);
    int64_t t0 = o.t;
    CHECK(vt_optim_step(&o, 1.0, 100 + k, &st, err, sizeof err) == 0);
    bool bad = k == 2 || k == 4;
    CHECK(st.skipped == bad && (bool)isfinite(st.grad_norm) == !bad);
    CHECK(o.t == t0 + !bad);
    bool same = !memcmp(p0, ps.data[VT_F32], np * 4) && !memcmp(m0, o.m, ns * 4) &&
                !memcmp(v0, o.v, ns * 4);
    CHECK_MSG(same == bad, "step %d: state %s", k, same ? "unchanged" : "changed");
  }
  CHECK(o.n_skipped == 2 && o.t == 4);
  free(p0);
  free(m0);
  free(v0);
  vt_optim_free(&o);
  vt_params_free(&ps);
}

static void test_no_decay_rule(void) {
  struct {
    const char *name;
    int ndim;
    bool no_decay;
  } cases[] = {
      {"model.layers.0.mlp.down_proj.weight", 2, false},
      {"model.embed_tokens.weight", 2, false},
      {"lm_head.weight", 2, false},
      {"model.layers.0.self_attn.q_proj.bias", 1, true},
      {"model.layers.3.post_attention_layernorm.weight", 1, true},
      {"model.norm.weight", 2, true}, /* by name even if not 1-D */
      {"vision_tower.encoder.layers.0.norm1.weight", 1, true},
      {"vision_tower.encoder.layers.0.ls1", 2, true},
      {"vision_tower.encoder.layers.0.ls2", 2, true},
      {"transformer.h.0.ln_1.weight", 2, true},
      {"ln_f.weight", 2, true},
      {"audio_encoder.encoder.ln2.weight", 2, true},
      {"model.kiln.weight", 2, false},          /* "ln" inside a word is not a norm */
      {"audio_encoder.conv.weight_g", 1, true}, /* any 1-D parameter */
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    vt_param p = {.name = (char *)cases[i].name};
    p.t.ndim = cases[i].ndim;
    CHECK_MSG(vt_optim_is_no_decay(&p) == cases[i].no_decay, "%s", cases[i].name);
  }
}

/* decay_all applies the group's weight decay to biases too; a 1-step AdamW on a zero gradient
 * shows it as p * (1 - lr * wd). */
static void test_decay_all(void) {
  for (int all = 0; all < 2; all++) {
    vt_params ps;
    build_store(&ps, sgd_spec, 3, NULL);
    float *w = vt_params_find(&ps, "a.weight")->t.data, *b = vt_params_find(&ps, "a.bias")->t.data;
    w[0] = b[0] = 1.0f;
    vt_optim_cfg c = vt_optim_defaults(VT_OPTIM_ADAMW);
    c.lr = 0.5;
    c.weight_decay = 0.1;
    c.decay_all = all;
    vt_optim o;
    char err[256];
    CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == 0);
    CHECK(vt_optim_step(&o, 1.0, 0, NULL, err, sizeof err) == 0);
    CHECK(w[0] == 0.95f && b[0] == (all ? 0.95f : 1.0f));
    vt_optim_free(&o);
    vt_params_free(&ps);
  }
}

static void test_clip_grads(void) {
  vt_params ps;
  build_store(&ps, adamw_spec, 12, NULL);
  for (size_t i = 0; i < ps.grad_numel; i++) ps.grad[i] = 0.0f;
  vt_params_find(&ps, "mlp1.1.bias")->t.grad[1] = 3.0f;
  vt_params_find(&ps, "model.embed_tokens.weight")->t.grad[5] = -4.0f;
  CHECK(vt_optim_grad_norm(&ps) == 5.0);
  CHECK(vt_optim_clip_grads(&ps, 10.0) == 5.0); /* below the limit: untouched */
  CHECK(vt_params_find(&ps, "mlp1.1.bias")->t.grad[1] == 3.0f);
  CHECK(vt_optim_clip_grads(&ps, 1.0) == 5.0);
  float want = 3.0f * (1.0f / (5.0f + 1e-6f));
  CHECK_CLOSE("clipped", &vt_params_find(&ps, "mlp1.1.bias")->t.grad[1], &want, 1, 0, 1e-7);
  CHECK(fabs(vt_optim_grad_norm(&ps) - 1.0) < 1e-6);
  vt_params_free(&ps);
}

static void test_errors(void) {
  vt_params ps;
  build_store(&ps, adamw_spec, 12, NULL);
  vt_optim o;
  char err[256];
  vt_optim_cfg c = vt_optim_defaults(VT_OPTIM_ADAMW);

  vt_optim_group_cfg typo[] = {{"vision_tower.*", 1e-3, 0}, {"mlp1.*, visoin.*", 1e-3, 0}};
  c.groups = typo;
  c.n_groups = 2;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1 && strstr(err, "visoin.*"));
  vt_optim_group_cfg empty[] = {{"mlp1.*,", 1e-3, 0}};
  c.groups = empty;
  c.n_groups = 1;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1);
  /* a glob may name only frozen parameters: the group is merely empty */
  vt_optim_group_cfg frozen[] = {{"audio_encoder.*", 1e-3, 0}};
  c.groups = frozen;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == 0);
  vt_optim_free(&o);

  c = vt_optim_defaults(VT_OPTIM_ADAM);
  c.beta2 = 1.0;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "beta2 1 must be finite and lie in [0, 1)"), "%s", err); /* which beta */
  c = vt_optim_defaults(VT_OPTIM_ADAMW);
  c.eps = INFINITY;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1 && strstr(err, "eps inf"));
  c = vt_optim_defaults(VT_OPTIM_SGD);
  c.lr = -1;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1);
  c.lr = INFINITY;
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1 && strstr(err, "lr inf"));

  /* a backend without optim kernels is an error, not a crash */
  vt_backend nokernels = *ps.be;
  nokernels.optim = NULL;
  const vt_backend *be = ps.be;
  ps.be = &nokernels;
  c = vt_optim_defaults(VT_OPTIM_ADAMW);
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1 && strstr(err, "optim"));
  ps.be = be;

  /* trainable set changed without vt_params_alloc_grads: caught at init */
  vt_params_set_trainable(&ps, "audio_encoder.*", true);
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == -1 && strstr(err, "alloc_grads"));
  /* ... and after init: the step refuses to run on a stale layout */
  vt_params_set_trainable(&ps, "audio_encoder.*", false);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  CHECK(vt_optim_init(&o, &ps, &c, err, sizeof err) == 0);
  vt_params_set_trainable(&ps, "audio_encoder.*", true);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  CHECK(vt_optim_step(&o, 1.0, 0, NULL, err, sizeof err) == -1 && strstr(err, "re-create"));
  CHECK(vt_optim_state(&o, "no.such.param", &(float *){0}, &(float *){0}, &(int64_t){0}, err,
                       sizeof err) == -1);
  vt_optim_free(&o);
  vt_params_free(&ps);
}

/* cfg.only: two optimizers over one store (the phases of a multi-phase model), each updating
 * and holding state for its own parameters only, each step equal to an optimizer built over
 * that parameter alone. */
static void test_only(void) {
  char err[256];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  const char *names[3] = {"a.w", "b.w", "c.w"};
  const int64_t sizes[3] = {4, 6, 3};
  for (int i = 0; i < 3; i++)
    CHECK(vt_params_add(&ps, names[i], VT_F32, 1, &sizes[i], err, sizeof err));
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0 &&
        vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  vt_param *pa = vt_params_find(&ps, "a.w"), *pb = vt_params_find(&ps, "b.w"),
           *pc = vt_params_find(&ps, "c.w");
  float before[3][6];
  vt_param *all[3] = {pa, pb, pc};
  for (int k = 0; k < 3; k++)
    for (int i = 0; i < sizes[k]; i++) {
      before[k][i] = ((float *)all[k]->t.data)[i] = 0.1f * (float)(k * 6 + i);
      all[k]->t.grad[i] = 0.5f - 0.07f * (float)(k * 6 + i);
    }
  bool only_b[3] = {false, true, false}, only_ac[3] = {true, false, true};
  vt_optim_cfg cb = vt_optim_defaults(VT_OPTIM_ADAMW), cac = vt_optim_defaults(VT_OPTIM_SGD);
  cb.only = only_b;
  cac.momentum = 0.9;
  cac.only = only_ac;
  vt_optim ob, oac;
  CHECK(vt_optim_init(&ob, &ps, &cb, err, sizeof err) == 0);
  CHECK(vt_optim_init(&oac, &ps, &cac, err, sizeof err) == 0);
  /* b's state is its own 6 values; a and c span the store around b */
  CHECK(ob.flat_lo == pb->grad_offset && ob.state_numel == 6 && oac.flat_lo == 0 &&
        oac.state_numel == pc->grad_offset + 3);
  float *m, *v;
  int64_t n;
  CHECK(vt_optim_state(&ob, "b.w", &m, &v, &n, err, sizeof err) == 0 && n == 6 && m == ob.m);
  CHECK(vt_optim_state(&ob, "a.w", &m, &v, &n, err, sizeof err) == -1 && strstr(err, "a.w"));
  CHECK(vt_optim_state(&oac, "c.w", &m, &v, &n, err, sizeof err) == 0 &&
        m == oac.m + pc->grad_offset && !v);
  vt_optim_stats st;
  CHECK(vt_optim_step(&ob, 1.0, 1, &st, err, sizeof err) == 0);
  const float *wa = pa->t.data, *wb = pb->t.data, *wc = pc->t.data;
  CHECK(!memcmp(wa, before[0], 4 * sizeof(float)) && !memcmp(wc, before[2], 3 * sizeof(float)));
  /* b's update is AdamW's first step on b alone (1-D: no decay): w - lr * g / (|g| + eps) */
  for (int i = 0; i < 6; i++) {
    float g = pb->t.grad[i], want = before[1][i] - 1e-3f * g / (fabsf(g) + 1e-8f);
    CHECK_MSG(fabsf(wb[i] - want) <= 1e-6f, "b[%d] %g, want %g", i, wb[i], want);
  }
  CHECK(vt_optim_step(&oac, 1.0, 1, &st, err, sizeof err) == 0);
  CHECK(fabsf(wa[0] - (before[0][0] - 1e-3f * pa->t.grad[0])) <= 1e-7f &&
        fabsf(wc[2] - (before[2][2] - 1e-3f * pc->t.grad[2])) <= 1e-7f);
  vt_optim_free(&ob);
  vt_optim_free(&oac);
  vt_params_free(&ps);
}

int main(void) {
  test_only();
  test_torch_trajectories();
  test_nonfinite_skip();
  test_no_decay_rule();
  test_decay_all();
  test_clip_grads();
  test_errors();
  return vt_test_finish("test_optim");
}
