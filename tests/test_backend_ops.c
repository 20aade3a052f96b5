// ctest-labels: unit grad cuda
/* One op table run over every available backend, like ggml's test-backend-ops. Each case of
 * tests/op_table.h builds a graph from its inputs (a PyTorch fixture's, or random ones from a
 * spec); the loss is sum(out * w). On the CPU, the reference backend, a case is checked
 * against its fixture (forward, extra outputs, input gradients) and by finite differences
 * (tests/gradcheck.c) when its differentiable inputs are small enough. On every other
 * backend the same inputs and w run forward and backward, and the results must match the
 * CPU's within tolerances derived from f32 (16 eps per term of the longest sum behind an
 * element; NaN matches NaN, infinities must be equal, integer outputs bit-exact). A backend
 * without the case's kernel family must fail with an error naming the family: counted as
 * "not supported". The counts are printed per backend.
 *
 * The other backends are every CUDA device (which has every family, so every case must run
 * there), and always "cpu-core": the CPU kernels with no kernel family at all, and
 * "cpu-partial": every family but the
 * norm family without its RoPE kernel. They run the comparison and the not-supported paths
 * of this harness, whole-family and per-member, in every build. Beyond the per-op cases, each other
 * backend gets the checks ops do not reach: bad indices as errors, the GEMM with a shared C
 * and k = 0, and index_check itself. */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/kernels_norm.h"
#include "tests/op_table.h"

/* Finite differences cost two forward passes per element: larger inputs are left to the
 * PyTorch fixture and the cross-backend comparison. */
#define FD_MAX_ELEMENTS 1024

typedef struct {
  int n;
  vt_dtype dtype[OT_MAX_IN];
  int ndim[OT_MAX_IN];
  int64_t shape[OT_MAX_IN][VT_MAX_DIMS];
  void *host[OT_MAX_IN];
  bool diff[OT_MAX_IN];
  const vt_fixture_tensor *grad[OT_MAX_IN]; /* PyTorch's gradient, or NULL */
  const vt_fixture_tensor *out;             /* PyTorch's output, or NULL */
  const vt_fixture *fx;
  char wkey[160]; /* fixture key of w, "" for linspace, "=1" for ones */
  float *w;
} case_data;

/* What one backend produced. */
typedef struct {
  bool ok;
  char error[1024];
  vt_dtype dtype;
  int ndim;
  int64_t shape[VT_MAX_DIMS];
  int64_t numel;
  void *out;
  float *grad[OT_MAX_IN];
  op_extra ex; /* names only */
  void *extra[2];
  vt_dtype extra_dtype[2];
  int64_t extra_n[2];
} result;

static void result_free(result *r) {
  free(r->out);
  for (int k = 0; k < OT_MAX_IN; k++) free(r->grad[k]);
  free(r->extra[0]);
  free(r->extra[1]);
}

static int64_t data_numel(const case_data *d, int k) {
  return vt_shape_numel(d->ndim[k], d->shape[k]);
}

static void set_input(case_data *d, int k, vt_dtype dt, int ndim, const int64_t *shape) {
  d->dtype[k] = dt;
  d->ndim[k] = ndim;
  memcpy(d->shape[k], shape, sizeof(int64_t) * (size_t)ndim);
  d->host[k] = malloc((size_t)data_numel(d, k) * vt_dtype_size(dt) + 8);
}

/* "a:b c" -> the fixture key of token i (before ':') and of its gradient (after ':'); names
 * without a '.' are fields of the case. */
static bool token(const char *keys, int i, const char *name, char *in, char *grad, size_t len) {
  const char *p = keys;
  for (int j = 0; j < i && p; j++) {
    p = strchr(p, ' ');
    if (p) p++;
  }
  if (!p || !*p) return false;
  size_t n = strcspn(p, " ");
  char tok[160];
  snprintf(tok, sizeof tok, "%.*s", (int)n, p);
  char *colon = strchr(tok, ':');
  if (colon) *colon = '\0';
  snprintf(in, len, strchr(tok, '.') ? "%s" : "%s.%s", strchr(tok, '.') ? tok : name, tok);
  grad[0] = '\0';
  if (colon) snprintf(grad, len, "%s.%s", name, colon + 1);
  return true;
}

static const vt_fixture_tensor *fx_find(const vt_fixture *fx, const char *key) {
  for (int i = 0; i < fx->n; i++)
    if (strcmp(fx->t[i].name, key) == 0) return &fx->t[i];
  return NULL;
}

static void load_fixture_inputs(const op_case *c, const vt_fixture *fx, case_data *d) {
  char in[160], grad[160];
  d->fx = fx;
  for (int k = 0; k < OT_MAX_IN; k++) {
    if (c->keys) {
      if (!token(c->keys, k, c->name, in, grad, sizeof in)) break;
    } else {
      if (k == c->n_in) break;
      snprintf(in, sizeof in, "%s.in%d", c->name, k);
      snprintf(grad, sizeof grad, "%s.grad%d", c->name, k);
    }
    const vt_fixture_tensor *t = vt_fixture_get(fx, in);
    set_input(d, k, t->is_int ? VT_I32 : VT_F32, t->ndim, t->shape);
    memcpy(d->host[k], t->is_int ? (void *)t->i : (void *)t->f, (size_t)t->n * 4);
    d->grad[k] = grad[0] ? fx_find(fx, grad) : NULL;
    d->diff[k] = d->grad[k] != NULL;
    d->n = k + 1;
  }
  snprintf(in, sizeof in, "%s.%s", c->name, c->out ? c->out : "out");
  d->out = vt_fixture_get(fx, in);
  if (c->w && !strcmp(c->w, "=1"))
    snprintf(d->wkey, sizeof d->wkey, "=1");
  else if (c->w)
    snprintf(d->wkey, sizeof d->wkey, "%s.%s", c->name, c->w);
  else {
    snprintf(in, sizeof in, "%s.w", c->name);
    if (fx_find(fx, in)) snprintf(d->wkey, sizeof d->wkey, "%s", in);
  }
}

static void random_inputs(const op_case *c, uint64_t seed, case_data *d) {
  vt_rng rng;
  vt_rng_seed(&rng, seed);
  d->n = c->n_in;
  for (int k = 0; k < c->n_in; k++) {
    const input_spec *s = &c->in[k];
    set_input(d, k, s->dtype, s->ndim, s->shape);
    d->diff[k] = s->grad;
    int64_t n = data_numel(d, k);
    for (int64_t i = 0; i < n; i++) {
      float u = s->lo + (s->hi - s->lo) * vt_rng_uniform(&rng);
      if (s->dtype == VT_F32) {
        ((float *)d->host[k])[i] = s->quant > 0 ? s->quant * roundf(u / s->quant) : u;
      } else {
        int64_t v = (int64_t)floorf(u);
        if (v >= (int64_t)s->hi) v = (int64_t)s->hi - 1;
        if (s->dtype == VT_I32)
          ((int32_t *)d->host[k])[i] = (int32_t)v;
        else
          ((int64_t *)d->host[k])[i] = v;
      }
    }
  }
  if (c->prepare) c->prepare(d->host);
}

/* w for an output of n elements: the fixture's, ones, linspace(-1, 1) (the core fixtures), or
 * uniform random for random cases. */
static void make_w(const op_case *c, case_data *d, int64_t n) {
  d->w = malloc(sizeof(float) * (size_t)n + 4);
  if (d->fx && d->wkey[0] && strcmp(d->wkey, "=1")) {
    const vt_fixture_tensor *fw = vt_fixture_get(d->fx, d->wkey);
    CHECK_MSG(fw->n == n, "%s: w has %ld elements, the output %lld", c->name, fw->n, (long long)n);
    memcpy(d->w, fw->f, sizeof(float) * (size_t)(fw->n < n ? fw->n : n));
  } else if (!strcmp(d->wkey, "=1")) {
    for (int64_t i = 0; i < n; i++) d->w[i] = 1.0f;
  } else if (d->fx) {
    for (int64_t i = 0; i < n; i++)
      d->w[i] = n > 1 ? -1.0f + 2.0f * (float)i / (float)(n - 1) : -1.0f;
  } else {
    vt_rng rng;
    vt_rng_seed(&rng, 99);
    vt_test_fill_uniform(&rng, d->w, (long)n, -1.0f, 1.0f);
  }
}

static void *download(vt_ctx *ctx, const vt_tensor *t) {
  void *h = malloc(vt_nbytes(t) + 8);
  vt_to_host(ctx, t, h);
  return h;
}

static result run_on(vt_ctx *ctx, const op_case *c, case_data *d) {
  result r = {0};
  vt_tensor *in[OT_MAX_IN];
  bool any_grad = false;
  for (int k = 0; k < d->n; k++) {
    in[k] = vt_from_host(ctx, d->dtype[k], d->ndim[k], d->shape[k], d->host[k]);
    if (d->diff[k]) vt_requires_grad(ctx, in[k]);
    any_grad |= d->diff[k];
  }
  vt_tensor *out = c->fn(ctx, in, c->param, &r.ex);
  if (!vt_ctx_failed(ctx)) {
    r.dtype = out->dtype;
    r.ndim = out->ndim;
    memcpy(r.shape, out->shape, sizeof r.shape);
    r.numel = vt_numel(out);
    r.out = download(ctx, out);
    for (int e = 0; e < 2 && r.ex.t[e]; e++) {
      r.extra[e] = download(ctx, r.ex.t[e]);
      r.extra_dtype[e] = r.ex.t[e]->dtype;
      r.extra_n[e] = vt_numel(r.ex.t[e]);
    }
    if (any_grad && out->dtype == VT_F32 && out->requires_grad) {
      if (!d->w) make_w(c, d, r.numel);
      vt_tensor *wt = vt_from_host(ctx, VT_F32, out->ndim, out->shape, d->w);
      vt_backward(ctx, vt_sum(ctx, vt_mul(ctx, out, wt), VT_ALL_AXES, false));
      for (int k = 0; k < d->n; k++)
        if (d->diff[k]) {
          r.grad[k] = malloc(sizeof(float) * (size_t)data_numel(d, k) + 4);
          vt_grad_to_host(ctx, in[k], r.grad[k]);
        }
    }
    vt_backend_sync(vt_ctx_backend(ctx));
  }
  r.ok = !vt_ctx_failed(ctx);
  if (!r.ok) snprintf(r.error, sizeof r.error, "%s", vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
  return r;
}

/* ---- against PyTorch, on the CPU ---- */

static void torch_compare(const op_case *c, const char *what, const float *got,
                          const vt_fixture_tensor *want) {
  double atol = c->tol.atol, rtol = c->tol.rtol;
  if (c->tol.kind == TOL_MAX) { /* mult * eps, absolute part scaled by the largest value */
    double scale = 0;
    for (long i = 0; i < want->n; i++) scale = fmax(scale, fabs((double)want->f[i]));
    rtol = c->tol.atol * FLT_EPSILON;
    atol = rtol * (scale > 1 ? scale : 1);
  }
  CHECK_CLOSE(what, got, want->f, want->n, atol, rtol);
}

/* The exact shape; a scalar may be stored 0-d or [1]. */
static bool same_shape(const result *r, const vt_fixture_tensor *f) {
  if (r->numel != f->n) return false;
  if (r->numel == 1) return true;
  if (r->ndim != f->ndim) return false;
  for (int i = 0; i < r->ndim; i++)
    if (r->shape[i] != f->shape[i]) return false;
  return true;
}

static void check_torch(const op_case *c, const case_data *d, const result *r) {
  char key[200];
  snprintf(key, sizeof key, "%s (PyTorch) out", c->name);
  CHECK_MSG(same_shape(r, d->out), "%s: output shape differs from PyTorch's (%lld elements, %ld)",
            c->name, (long long)r->numel, d->out->n);
  if (same_shape(r, d->out)) torch_compare(c, key, r->out, d->out);
  for (int e = 0; e < 2 && r->ex.t[e]; e++) {
    snprintf(key, sizeof key, "%s.%s", c->name, r->ex.name[e]);
    const vt_fixture_tensor *fe = vt_fixture_get(d->fx, key);
    CHECK_MSG(r->extra_n[e] == fe->n, "%s: %lld elements, PyTorch %ld", key,
              (long long)r->extra_n[e], fe->n);
    if (r->extra_n[e] != fe->n) continue;
    if (r->extra_dtype[e] == VT_I32)
      CHECK_MSG(!memcmp(r->extra[e], fe->i, sizeof(int32_t) * (size_t)fe->n), "%s differs", key);
    else
      torch_compare(c, key, r->extra[e], fe);
  }
  for (int k = 0; k < d->n; k++) {
    if (!d->grad[k] || !r->grad[k]) continue;
    snprintf(key, sizeof key, "%s (PyTorch) grad of input %d", c->name, k);
    torch_compare(c, key, r->grad[k], d->grad[k]);
  }
}

/* ---- finite differences, on the CPU ---- */

typedef struct {
  const op_case *c;
  op_extra ex;
} fd_user;

static vt_tensor *fd_graph(vt_ctx *ctx, vt_tensor **in, void *user) {
  fd_user *u = user;
  return u->c->fn(ctx, in, u->c->param, &u->ex);
}

/* Returns 1 when checked, 0 when skipped (nothing differentiable, or too large). */
static int check_fd(const op_case *c, const case_data *d) {
  int64_t n = 0;
  bool ints_ok = true;
  for (int k = 0; k < d->n; k++) {
    if (d->diff[k]) n += data_numel(d, k);
    ints_ok &= d->dtype[k] == VT_F32 || d->dtype[k] == VT_I32;
  }
  if (c->no_fd || n == 0 || n > FD_MAX_ELEMENTS || !ints_ok) {
    if (getenv("VT_OPS_VERBOSE"))
      printf("  %s: no finite differences (%lld elements%s)\n", c->name, (long long)n,
             c->no_fd ? ", excluded" : "");
    return 0;
  }
  vt_gc_input gin[OT_MAX_IN];
  for (int k = 0; k < d->n; k++) {
    size_t bytes = (size_t)data_numel(d, k) * 4;
    gin[k] = (vt_gc_input){.dtype = d->dtype[k], .ndim = d->ndim[k], .diff = d->diff[k]};
    memcpy(gin[k].shape, d->shape[k], sizeof gin[k].shape);
    gin[k].host = malloc(bytes + 4);
    memcpy(gin[k].host, d->host[k], bytes);
  }
  fd_user u = {c, {{0}, {0}}};
  char what[200];
  snprintf(what, sizeof what, "%s (finite differences)", c->name);
  CHECK_GRAD(what, fd_graph, &u, gin, d->n);
  for (int k = 0; k < d->n; k++) free(gin[k].host);
  return 1;
}

/* ---- another backend against the CPU ---- */

static bool close_nan(const char *what, const char *be, const float *got, const float *want,
                      int64_t n, double tol) {
  int shown = 0;
  bool ok = true;
  for (int64_t i = 0; i < n; i++) {
    double g = got[i], w = want[i];
    bool same = (isnan(g) && isnan(w)) || g == w || fabs(g - w) <= tol + tol * fabs(w);
    if (!same) {
      ok = false;
      if (shown++ < 5)
        fprintf(stderr, "  %s[%lld]: %s %.9g cpu %.9g (err %.3g, tol %.3g)\n", what, (long long)i,
                be, g, w, fabs(g - w), tol + tol * fabs(w));
    }
  }
  return ok;
}

static void check_against_cpu(const op_case *c, const case_data *d, const result *want,
                              const result *got, const char *be) {
  double tol = 16.0 * FLT_EPSILON * (double)(c->terms > 1 ? c->terms : 64);
  char what[200];
  bool same = want->dtype == got->dtype && want->ndim == got->ndim &&
              !memcmp(want->shape, got->shape, sizeof(int64_t) * (size_t)want->ndim);
  CHECK_MSG(same, "%s on %s: output dtype or shape differs from the CPU's", c->name, be);
  if (!same) return;
  snprintf(what, sizeof what, "%s on %s: out", c->name, be);
  if (want->dtype == VT_F32)
    CHECK_MSG(close_nan(what, be, got->out, want->out, want->numel, tol), "%s", what);
  else /* conversions share one definition: bit-exact */
    CHECK_MSG(!memcmp(got->out, want->out, (size_t)want->numel * vt_dtype_size(want->dtype)), "%s",
              what);
  for (int e = 0; e < 2 && want->ex.t[e]; e++) {
    snprintf(what, sizeof what, "%s on %s: %s", c->name, be, want->ex.name[e]);
    if (want->extra_dtype[e] == VT_F32)
      CHECK_MSG(close_nan(what, be, got->extra[e], want->extra[e], want->extra_n[e], tol), "%s",
                what);
    else
      CHECK_MSG(!memcmp(got->extra[e], want->extra[e],
                        (size_t)want->extra_n[e] * vt_dtype_size(want->extra_dtype[e])),
                "%s", what);
  }
  for (int k = 0; k < d->n; k++) {
    if (!want->grad[k]) continue;
    snprintf(what, sizeof what, "%s on %s: grad of input %d", c->name, be, k);
    CHECK_MSG(got->grad[k] &&
                  close_nan(what, be, got->grad[k], want->grad[k], data_numel(d, k), tol),
              "%s", what);
  }
}

/* ---- the backends ---- */

typedef struct {
  char label[64];
  vt_backend *owned; /* a CUDA instance */
  vt_backend table;  /* cpu-core: a copy of the CPU's */
  const vt_backend *be;
  vt_ctx *ctx;
  int passed, failed, unsupported;
} backend_run;

static int add_backends(backend_run *runs, int max) {
  int n = 0;
  backend_run *r = &runs[n++];
  memset(r, 0, sizeof *r);
  r->table = *vt_backend_cpu();
  r->table.name = "cpu-core";
  r->table.norm = NULL;
  r->table.conv = NULL;
  r->table.attn = NULL;
  r->table.loss = NULL;
  r->table.optim = NULL;
  r->table.spectral = NULL;
  r->be = &r->table;
  snprintf(r->label, sizeof r->label, "cpu-core");
  /* cpu-partial: every family, but the norm family without RoPE, as a device filling a
   * family member by member would be */
  static struct vt_norm_kernels partial_norm;
  partial_norm = *vt_backend_cpu()->norm;
  partial_norm.rope = NULL;
  r = &runs[n++];
  memset(r, 0, sizeof *r);
  r->table = *vt_backend_cpu();
  r->table.name = "cpu-partial";
  r->table.norm = &partial_norm;
  r->be = &r->table;
  snprintf(r->label, sizeof r->label, "cpu-partial");
  int gpus = vt_cuda_device_count();
  for (int g = 0; g < gpus && n < max; g++) {
    const char *why = NULL;
    vt_backend *be = vt_backend_cuda(g, &why);
    CHECK_MSG(be != NULL, "cuda:%d is present but no backend instance could be made: %s", g, why);
    if (!be) continue;
    r = &runs[n++];
    memset(r, 0, sizeof *r);
    r->owned = be;
    r->be = be;
    snprintf(r->label, sizeof r->label, "cuda:%d", g);
  }
  if (!gpus) {
    const char *why = NULL;
    vt_backend_free(vt_backend_cuda(0, &why));
    printf("cuda: not run (%s)\n", why ? why : "no device");
  }
  for (int i = 0; i < n; i++) {
    const char *err = NULL;
    runs[i].ctx = vt_ctx_init(&(vt_ctx_opts){.backend = runs[i].be}, &err);
    if (!runs[i].ctx) {
      fprintf(stderr, "%s: no context: %s\n", runs[i].label, err);
      exit(1);
    }
  }
  return n;
}

/* Each fixture file is read once. */
static struct {
  const char *path;
  vt_fixture *fx;
} fixtures[8];

static const vt_fixture *fixture(const char *path) {
  int i = 0;
  for (; i < 8 && fixtures[i].path; i++)
    if (!strcmp(fixtures[i].path, path)) return fixtures[i].fx;
  if (i == 8) {
    fprintf(stderr, "more than 8 fixture files\n");
    exit(1);
  }
  fixtures[i].path = path;
  return fixtures[i].fx = vt_fixture_load(path);
}

static void run_case(vt_ctx *cpu, backend_run *runs, int n_runs, const op_case *c, uint64_t seed,
                     int *cpu_pass, int *cpu_fail, int *n_torch, int *n_fd) {
  case_data d;
  memset(&d, 0, sizeof d);
  const vt_fixture *fx = c->fixture ? fixture(c->fixture) : NULL;
  if (fx)
    load_fixture_inputs(c, fx, &d);
  else
    random_inputs(c, seed, &d);
  int before = vt_test_failures;
  result want = run_on(cpu, c, &d);
  CHECK_MSG(want.ok, "%s on cpu: %s", c->name, want.error);
  if (want.ok && fx) {
    check_torch(c, &d, &want);
    (*n_torch)++;
  }
  if (want.ok) *n_fd += check_fd(c, &d);
  if (vt_test_failures == before)
    (*cpu_pass)++;
  else
    (*cpu_fail)++;
  for (int b = 0; b < n_runs && want.ok; b++) {
    backend_run *br = &runs[b];
    before = vt_test_failures;
    result got = run_on(br->ctx, c, &d);
    char needle[96];
    snprintf(needle, sizeof needle, "no kernels of the %s family",
             c->family == OT_CORE ? "core" : vt_backend_family_name(c->family));
    /* a family that is there but lacks this op's member (filled in steps) is also "not
     * supported", as long as the op says so by name */
    bool partial = c->family != OT_CORE && !got.ok && strstr(got.error, needle);
    if (partial || (c->family != OT_CORE && !vt_backend_has_family(br->be, c->family))) {
      CHECK_MSG(!got.ok && strstr(got.error, needle), "%s on %s: expected \"%s\", got \"%s\"",
                c->name, br->label, needle, got.ok ? "(ran)" : got.error);
      if (vt_test_failures == before)
        br->unsupported++;
      else
        br->failed++;
      result_free(&got);
      continue;
    }
    CHECK_MSG(got.ok, "%s on %s: %s", c->name, br->label, got.error);
    if (got.ok) check_against_cpu(c, &d, &want, &got, br->label);
    if (vt_test_failures == before)
      br->passed++;
    else
      br->failed++;
    result_free(&got);
  }
  result_free(&want);
  for (int k = 0; k < d.n; k++) free(d.host[k]);
  free(d.w);
}

/* An out-of-range index on the device is a ctx error naming index and position. */
static void check_bad_index(vt_ctx *ctx) {
  int64_t xs[2] = {5, 4}, is[1] = {3};
  float x[20] = {0};
  int32_t idx[3] = {0, 7, 2};
  vt_tensor *xt = vt_from_host(ctx, VT_F32, 2, xs, x);
  vt_tensor *it = vt_from_host(ctx, VT_I32, 1, is, idx);
  vt_tensor *out = vt_index_select(ctx, xt, 0, it);
  CHECK(vt_ctx_failed(ctx));
  CHECK_MSG(strstr(vt_ctx_error(ctx), "index 7 at position 1") != NULL, "error: %s",
            vt_ctx_error(ctx));
  CHECK(isnan(vt_item(ctx, out)));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
  int32_t ids[4] = {1, 2, 3, -1};
  int64_t ws[2] = {4, 3}, ids_shape[2] = {2, 2};
  float wv[12] = {0};
  vt_tensor *w = vt_from_host(ctx, VT_F32, 2, ws, wv);
  vt_tensor *id = vt_from_host(ctx, VT_I32, 2, ids_shape, ids);
  vt_embedding(ctx, w, id);
  CHECK_MSG(strstr(vt_ctx_error(ctx), "index -1 at position 3") != NULL, "error: %s",
            vt_ctx_error(ctx));
  vt_ctx_clear_error(ctx);
  vt_ctx_reset(ctx);
}

/* The backend's GEMM where the ops do not reach: a shared C (stride 0) with beta applied per
 * batch element as the CPU loop does, and k == 0; then index_check on its own. */
static void check_gemm_edges(const vt_backend *g, const char *label) {
  const vt_backend *c = vt_backend_cpu();
  enum { M = 5, N = 6, K = 7, B = 3 };
  float a[B * M * K], b[K * N], c0[M * N], want[M * N], got[M * N];
  vt_rng rng;
  vt_rng_seed(&rng, 5);
  vt_test_fill_uniform(&rng, a, B * M * K, -1, 1);
  vt_test_fill_uniform(&rng, b, K * N, -1, 1);
  vt_test_fill_uniform(&rng, c0, M * N, -1, 1);
  float *da = vt_buf_alloc(g, sizeof a), *db = vt_buf_alloc(g, sizeof b);
  float *dc = vt_buf_alloc(g, sizeof c0);
  const float betas[3] = {0.0f, 0.5f, 1.0f};
  for (int kk = 0; kk < 2; kk++)
    for (int bi = 0; bi < 3; bi++) {
      int64_t k = kk ? K : 0;
      memcpy(want, c0, sizeof c0);
      c->gemm(c, VT_F32, false, false, M, N, k, 0.75f, a, K, M * K, b, N, 0, betas[bi], want, N, 0,
              B);
      vt_buf_from_host(g, da, a, sizeof a);
      vt_buf_from_host(g, db, b, sizeof b);
      vt_buf_from_host(g, dc, c0, sizeof c0);
      g->gemm(g, VT_F32, false, false, M, N, k, 0.75f, da, K, M * K, db, N, 0, betas[bi], dc, N, 0,
              B);
      vt_buf_to_host(g, got, dc, sizeof got);
      char what[96];
      snprintf(what, sizeof what, "gemm shared C k=%lld beta=%g", (long long)k, betas[bi]);
      CHECK_MSG(close_nan(what, label, got, want, M * N, 16.0 * FLT_EPSILON * K * B), "%s", what);
    }
  int32_t idx[6] = {0, 3, 9, 2, -4, 11};
  int32_t *di = vt_buf_alloc(g, sizeof idx);
  vt_buf_from_host(g, di, idx, sizeof idx);
  CHECK(g->index_check(g, di, 2, 4) == -1);
  CHECK(g->index_check(g, di, 6, 4) == 2);
  CHECK(g->index_check(g, di, 6, 10) == 4);
  CHECK(g->index_check(g, di, 0, 1) == -1);
  vt_buf_free(g, di);
  vt_buf_free(g, da);
  vt_buf_free(g, db);
  vt_buf_free(g, dc);
}

/* index_add (the embedding gradient) with long runs of repeated ids and terms over six
 * decades, where the order of a row's sum shows in its bits: the device must give the CPU's
 * bits (each row summed in position order), on the sorted path and on the VT_CUDA_SIMPLE one. */
static void check_index_add_bits(const vt_backend *g, const char *label) {
  const vt_backend *c = vt_backend_cpu();
  enum { OUTER = 2, NDST = 40, INNER = 96, NIDX = 3000 };
  static int32_t idx[NIDX];
  static float src[OUTER * NIDX * INNER], dst0[OUTER * NDST * INNER], want[OUTER * NDST * INNER],
      got[OUTER * NDST * INNER];
  vt_rng rng;
  vt_rng_seed(&rng, 77);
  for (int i = 0; i < NIDX; i++)
    idx[i] = (int32_t)(vt_rng_uniform(&rng) < 0.9f ? vt_rng_uniform(&rng) * 3
                                                   : vt_rng_uniform(&rng) * (NDST - 1));
  for (int i = 0; i < OUTER * NIDX * INNER; i++)
    src[i] = (vt_rng_uniform(&rng) - 0.5f) * powf(10.0f, 6.0f * vt_rng_uniform(&rng) - 3.0f);
  vt_test_fill_uniform(&rng, dst0, OUTER * NDST * INNER, -1, 1);
  memcpy(want, dst0, sizeof want);
  c->index_add(c, OUTER, NDST, INNER, src, idx, NIDX, want);
  float *ds = vt_buf_alloc(g, sizeof src), *dd = vt_buf_alloc(g, sizeof dst0);
  int32_t *di = vt_buf_alloc(g, sizeof idx);
  vt_buf_from_host(g, ds, src, sizeof src);
  vt_buf_from_host(g, di, idx, sizeof idx);
  for (int run = 0; run < 3; run++) {
    if (run == 2) setenv("VT_CUDA_SIMPLE", "1", 1);
    vt_buf_from_host(g, dd, dst0, sizeof dst0);
    g->index_add(g, OUTER, NDST, INNER, ds, di, NIDX, dd);
    vt_buf_to_host(g, got, dd, sizeof got);
    if (run == 2) unsetenv("VT_CUDA_SIMPLE");
    CHECK_MSG(memcmp(got, want, sizeof got) == 0, "%s: index_add run %d%s: not the CPU's bits",
              label, run, run == 2 ? " (VT_CUDA_SIMPLE)" : "");
  }
  vt_buf_free(g, ds);
  vt_buf_free(g, dd);
  vt_buf_free(g, di);
}

int main(void) {
  vt_ctx *cpu = vt_test_cpu_ctx();
  backend_run runs[10];
  int n_runs = add_backends(runs, 10);
  int cpu_pass = 0, cpu_fail = 0, n_torch = 0, n_fd = 0;
  for (int i = 0; i < OT_N_CASES; i++)
    run_case(cpu, runs, n_runs, &OT_CASES[i], 1000 + (uint64_t)i, &cpu_pass, &cpu_fail, &n_torch,
             &n_fd);
  printf("cpu: %d cases: %d passed, %d failed (%d against PyTorch fixtures, %d by finite "
         "differences)\n",
         OT_N_CASES, cpu_pass, cpu_fail, n_torch, n_fd);
  for (int b = 0; b < n_runs; b++) {
    int before = vt_test_failures;
    check_bad_index(runs[b].ctx);
    check_gemm_edges(runs[b].be, runs[b].label);
    check_index_add_bits(runs[b].be, runs[b].label);
    /* the CUDA backend fills every family: each case must run there */
    if (runs[b].owned)
      CHECK_MSG(runs[b].unsupported == 0, "%s: %d cases not supported", runs[b].label,
                runs[b].unsupported);
    printf("%s: %d passed, %d failed, %d not supported (backend checks %s)\n", runs[b].label,
           runs[b].passed, runs[b].failed, runs[b].unsupported,
           vt_test_failures == before ? "passed" : "FAILED");
    vt_ctx_free(runs[b].ctx);
    vt_backend_free(runs[b].owned);
  }
  vt_ctx_free(cpu);
  for (int i = 0; i < 8 && fixtures[i].path; i++) vt_fixture_free(fixtures[i].fx);
  return vt_test_finish("test_backend_ops");
}
