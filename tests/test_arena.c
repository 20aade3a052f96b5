// ctest-labels: unit
/* After the first step of a fixed-shape training loop no further heap allocation happens:
 * malloc/calloc/realloc and the aligned allocators are counted (interposed over glibc's)
 * across steps 2..6 of a small MLP, and the ctx's own block counter stays constant. This
 * includes the OpenMP runtime: a region entered with a false `if` clause makes libgomp
 * allocate a one-thread team, which autograd/cpu/cpu_par.h avoids. Allocations made inside
 * OpenBLAS (Debian's 0.3.21 mallocs a work buffer in every sgemm call and frees it) are told
 * apart by their caller's library and reported, not counted against us. Also checks that
 * the tape is released after backward and that no-grad mode records nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "model/qwen2.h"
#include "tests/testutil.h"
#include "train/optim.h"

#if !defined(VT_SANITIZE) && defined(__GLIBC__)
#define COUNT_MALLOC 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
#define MAX_SEEN 4096
static int counting;
static long n_allocs;
static void *callers[MAX_SEEN];

static void count(void *caller) {
  if (!counting) return;
  long k = __atomic_fetch_add(&n_allocs, 1, __ATOMIC_RELAXED);
  if (k < MAX_SEEN) callers[k] = caller;
}
void *malloc(size_t n) {
  count(__builtin_return_address(0));
  return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
  count(__builtin_return_address(0));
  return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
  count(__builtin_return_address(0));
  return __libc_realloc(p, n);
}
int posix_memalign(void **p, size_t align, size_t n) {
  count(__builtin_return_address(0));
  *p = __libc_memalign(align, n);
  return *p ? 0 : 12;
}
void *aligned_alloc(size_t align, size_t n) {
  count(__builtin_return_address(0));
  return __libc_memalign(align, n);
}
void *memalign(size_t align, size_t n) {
  count(__builtin_return_address(0));
  return __libc_memalign(align, n);
}

/* Allocations whose caller is not inside OpenBLAS (dladdr allocates nothing). */
static long framework_allocs(long *in_blas) {
  long ours = 0;
  *in_blas = 0;
  for (long i = 0; i < n_allocs && i < MAX_SEEN; i++) {
    Dl_info info;
    if (dladdr(callers[i], &info) && info.dli_fname && strstr(info.dli_fname, "openblas"))
      (*in_blas)++;
    else
      ours++;
  }
  return ours + (n_allocs > MAX_SEEN ? n_allocs - MAX_SEEN : 0);
}
#endif

enum { B = 64, DIN = 256, DH = 512, DOUT = 32 };

typedef struct {
  vt_tensor *w1, *b1, *w2;
} mlp;

static float step(vt_ctx *ctx, vt_params *ps, mlp *m, const float *x, const int32_t *flat_idx) {
  vt_tensor *xt = vt_from_host(ctx, VT_F32, 2, (int64_t[]){B, DIN}, x);
  vt_tensor *h = vt_gelu_tanh(ctx, vt_add(ctx, vt_matmul(ctx, xt, m->w1, false, true), m->b1));
  vt_tensor *logp = vt_log_softmax(ctx, vt_matmul(ctx, h, m->w2, false, true));
  vt_tensor *idx = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, flat_idx);
  vt_tensor *picked =
      vt_index_select(ctx, vt_reshape(ctx, logp, 2, (int64_t[]){B * DOUT, 1}), 0, idx);
  vt_tensor *loss = vt_scale(ctx, vt_mean(ctx, picked, VT_ALL_AXES, false), -1.0f);
  float l = vt_item(ctx, loss);
  vt_params_zero_grad(ps);
  vt_backward(ctx, loss);
  CHECK(vt_tape_len(ctx) == 0);     /* released after backward */
  for (int i = 0; i < ps->n; i++) { /* plain SGD over each parameter */
    vt_param *p = ps->items[i];
    float *d = (float *)p->t.data, *g = p->t.grad;
    for (int64_t j = 0; j < vt_numel(&p->t); j++) d[j] -= 0.1f * g[j];
  }
  vt_ctx_reset(ctx);
  return l;
}

/* A Qwen2 training step (norms, RoPE, fused attention with padding, chunked LM loss, per-layer
 * recompute, AdamW): the kernels a real stage uses. */
static float qwen2_step(vt_ctx *ctx, vt_params *ps, qwen2 *m, vt_optim *opt, const int32_t *ids,
                        const int32_t *lengths) {
  vt_tensor *t = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 16}, ids);
  qwen2_layout lay = {.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, lengths)};
  vt_tensor *loss = qwen2_loss(m, ctx, t, t, &lay);
  float l = vt_item(ctx, loss);
  vt_params_zero_grad(ps);
  CHECK(vt_backward(ctx, loss));
  vt_optim_stats st;
  char err[256];
  CHECK(vt_optim_step(opt, 1.0, 1, &st, err, sizeof err) == 0);
  vt_ctx_reset(ctx);
  return l;
}

int main(void) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_params ps;
  char err[256];
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  mlp m;
  m.w1 = vt_params_add(&ps, "mlp.fc1.weight", VT_F32, 2, (int64_t[]){DH, DIN}, err, sizeof err);
  m.b1 = vt_params_add(&ps, "mlp.fc1.bias", VT_F32, 1, (int64_t[]){DH}, err, sizeof err);
  m.w2 = vt_params_add(&ps, "mlp.fc2.weight", VT_F32, 2, (int64_t[]){DOUT, DH}, err, sizeof err);
  CHECK(vt_params_add(&ps, "mlp.fc2.weight", VT_F32, 1, (int64_t[]){1}, err, sizeof err) == NULL);
  CHECK(strstr(err, "registered twice") != NULL);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng r;
  vt_rng_seed(&r, 1);
  vt_test_fill_uniform(&r, ps.data[VT_F32], (long)ps.numel[VT_F32], -0.05f, 0.05f);
  float *x = malloc(sizeof(float) * B * DIN);
  int32_t idx[B];
  vt_test_fill_uniform(&r, x, B * DIN, -1, 1);
  for (int i = 0; i < B; i++) idx[i] = i * DOUT + (int32_t)vt_rng_below(&r, DOUT);

  float first = step(ctx, &ps, &m, x, idx);
  int64_t blocks = vt_ctx_heap_allocs(ctx);
#ifdef COUNT_MALLOC
  counting = 1;
#endif
  float last = first;
  for (int s = 0; s < 5; s++) last = step(ctx, &ps, &m, x, idx);
#ifdef COUNT_MALLOC
  counting = 0;
  long in_blas, ours = framework_allocs(&in_blas);
  CHECK_MSG(ours == 0, "%ld heap allocations outside OpenBLAS in steps 2..6", ours);
  printf("steps 2..6: %ld heap allocations by the framework, %ld inside OpenBLAS sgemm\n", ours,
         in_blas);
#else
  printf("malloc counting is off in sanitizer builds; the ctx block counter is still checked\n");
#endif
  CHECK_MSG(vt_ctx_heap_allocs(ctx) == blocks, "arena/tape blocks grew from %lld to %lld",
            (long long)blocks, (long long)vt_ctx_heap_allocs(ctx));
  CHECK_MSG(last < first, "loss did not fall: %g -> %g", first, last);

  /* no-grad mode: nothing is recorded and results need no gradient */
  vt_set_grad_enabled(ctx, false);
  vt_tensor *xt = vt_from_host(ctx, VT_F32, 2, (int64_t[]){B, DIN}, x);
  vt_tensor *y = vt_matmul(ctx, xt, m.w1, false, true);
  CHECK(vt_tape_len(ctx) == 0 && !y->requires_grad);
  CHECK(!vt_backward(ctx, vt_sum(ctx, y, VT_ALL_AXES, false)));
  CHECK(strstr(vt_ctx_error(ctx), "does not depend") != NULL);
  vt_ctx_clear_error(ctx);
  vt_set_grad_enabled(ctx, true);
  vt_ctx_reset(ctx);

  /* frozen parameters get no gradient and no tape work */
  CHECK(vt_params_set_trainable(&ps, "mlp.fc1.*", false) == 2);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  CHECK(m.w1->grad == NULL && m.w2->grad != NULL);
  CHECK(vt_params_count(&ps, true) == (size_t)DOUT * DH);
  y = vt_matmul(ctx, vt_from_host(ctx, VT_F32, 2, (int64_t[]){B, DIN}, x), m.w1, false, true);
  CHECK(vt_tape_len(ctx) == 0);
  vt_ctx_reset(ctx);

  free(x);
  vt_params_free(&ps);
  vt_ctx_free(ctx);

  /* the same for Qwen2 training steps */
  ctx = vt_test_cpu_ctx();
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  qwen2 q;
  qwen2_cfg qc = {.vocab_size = 64,
                  .hidden_size = 32,
                  .intermediate_size = 64,
                  .num_hidden_layers = 2,
                  .num_attention_heads = 4,
                  .num_key_value_heads = 2,
                  .rope_theta = 1e4,
                  .rms_norm_eps = 1e-6,
                  .initializer_range = 0.1,
                  .recompute = true,
                  .ce_chunk_rows = 8};
  CHECK(qwen2_init(&q, &ps, &qc, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  qwen2_init_weights(&q, &r);
  vt_optim opt;
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.max_grad_norm = 1.0;
  CHECK(vt_optim_init(&opt, &ps, &oc, err, sizeof err) == 0);
  int32_t ids[32], lengths[2] = {16, 11};
  for (int i = 0; i < 32; i++) ids[i] = (int32_t)vt_rng_below(&r, 64);
  first = qwen2_step(ctx, &ps, &q, &opt, ids, lengths);
  blocks = vt_ctx_heap_allocs(ctx);
#ifdef COUNT_MALLOC
  n_allocs = 0;
  counting = 1;
#endif
  for (int s = 0; s < 5; s++) last = qwen2_step(ctx, &ps, &q, &opt, ids, lengths);
#ifdef COUNT_MALLOC
  counting = 0;
  ours = framework_allocs(&in_blas);
  CHECK_MSG(ours == 0, "%ld heap allocations outside OpenBLAS in Qwen2 steps 2..6", ours);
  printf("Qwen2 steps 2..6: %ld heap allocations by the framework, %ld inside OpenBLAS\n", ours,
         in_blas);
#endif
  CHECK(vt_ctx_heap_allocs(ctx) == blocks);
  CHECK_MSG(last < first, "Qwen2 loss did not fall: %g -> %g", first, last);
  vt_optim_free(&opt);
  qwen2_free(&q);
  vt_params_free(&ps);
  vt_ctx_free(ctx);
  return vt_test_finish("test_arena");
}
