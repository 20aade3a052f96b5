/* bf16 GEMMs through oneDNN's matmul primitive (see cpu_gemm.h). Debian's OpenBLAS 0.3.21 has
 * no sbgemm, and oneDNN picks its AMX or AVX512-BF16 brgemm kernels at run time. Creating a
 * primitive costs far more than a small GEMM, so each distinct call geometry (transposes,
 * sizes, leading dimensions, batch strides, alpha, beta) keeps its primitive and memory objects
 * in a small table; a training step has a few dozen geometries and reuses them every step. */
#include "autograd/cpu/cpu_gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef VT_HAVE_DNNL
#include <cpuid.h>
#include <dnnl.h>
#include <pthread.h>

/* One call geometry; zero-initialised so padding compares equal. */
typedef struct {
  int64_t m, n, k, lda, ldb, ldc, sa, sb, sc, batch;
  uint32_t alpha_bits, beta_bits;
  int32_t ta, tb;
  int32_t c_bf16, bias; /* c written in bf16; a bias per column of c added to the f32 sum */
} gemm_key;

typedef struct {
  bool used;
  gemm_key key;
  dnnl_primitive_t prim;
  dnnl_memory_t a, b, c, bias, scratch; /* bias, scratch: NULL when there is none */
  size_t scratch_bytes;
} gemm_entry;

#define CACHE_SLOTS 512 /* a power of two; cleared when 3/4 full */

static struct {
  pthread_mutex_t lock;
  bool tried, ok;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  gemm_entry slots[CACHE_SLOTS];
  int n_used;
  /* One scratchpad for every primitive (calls run one at a time under the lock), grown to
   * the largest need: with oneDNN's own (library) scratchpads each call allocated and freed
   * its buffer, and the heap returned and faulted in those pages again every step. */
  void *scratch;
  size_t scratch_cap;
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

static bool engine_ready(void) {
  if (!G.tried) {
    G.tried = true;
    G.ok = dnnl_engine_create(&G.engine, dnnl_cpu, 0) == dnnl_success &&
           dnnl_stream_create(&G.stream, G.engine, dnnl_stream_default_flags) == dnnl_success;
  }
  return G.ok;
}

static uint64_t key_hash(const gemm_key *k) {
  const unsigned char *p = (const unsigned char *)k;
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for (size_t i = 0; i < sizeof *k; i++) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

static void entry_destroy(gemm_entry *e) {
  dnnl_memory_destroy(e->a);
  dnnl_memory_destroy(e->b);
  dnnl_memory_destroy(e->c);
  if (e->bias) dnnl_memory_destroy(e->bias);
  if (e->scratch) dnnl_memory_destroy(e->scratch);
  dnnl_primitive_destroy(e->prim);
  memset(e, 0, sizeof *e);
}

/* A [batch, rows, cols] operand (batch 1 when shared, stride 0) with row stride ld, read
 * transposed when t: element (r, c) of the logical matrix sits at r + c * ld. */
static bool operand_desc(dnnl_memory_desc_t *md, dnnl_data_type_t dt, int64_t batch, int64_t stride,
                         int64_t rows, int64_t cols, int64_t ld, bool t) {
  dnnl_dims_t dims = {0}, strides = {0};
  dims[0] = stride ? batch : 1;
  dims[1] = rows;
  dims[2] = cols;
  strides[0] = stride ? stride : rows * cols;
  strides[1] = t ? 1 : ld;
  strides[2] = t ? ld : 1;
  return dnnl_memory_desc_init_by_strides(md, 3, dims, dt, strides) == dnnl_success;
}

/* The primitive of one geometry, or false when oneDNN refuses it. */
static bool entry_create(gemm_entry *e, const gemm_key *k, float alpha, float beta) {
  dnnl_memory_desc_t ad, bd, cd, biasd;
  dnnl_data_type_t ct = k->c_bf16 ? dnnl_bf16 : dnnl_f32;
  if (!operand_desc(&ad, dnnl_bf16, k->batch, k->sa, k->m, k->k, k->lda, k->ta) ||
      !operand_desc(&bd, dnnl_bf16, k->batch, k->sb, k->k, k->n, k->ldb, k->tb) ||
      !operand_desc(&cd, ct, k->batch, k->sc, k->m, k->n, k->ldc, false) ||
      (k->bias && !operand_desc(&biasd, dnnl_f32, 1, 0, 1, k->n, k->n, false)))
    return false;
  dnnl_matmul_desc_t md;
  if (dnnl_matmul_desc_init(&md, &ad, &bd, k->bias ? &biasd : NULL, &cd) != dnnl_success)
    return false;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  bool ok =
      dnnl_primitive_attr_create(&attr) == dnnl_success &&
      dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success;
  if (ok && alpha != 1.0f) ok = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha) == 0;
  if (ok && beta != 0.0f) /* c = alpha * a b + beta * c: oneDNN's sum post-op */
    ok = dnnl_post_ops_create(&po) == dnnl_success &&
         dnnl_post_ops_append_sum(po, beta) == dnnl_success &&
         dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
  dnnl_primitive_desc_t pd = NULL;
  ok = ok && dnnl_primitive_desc_create(&pd, &md, attr, G.engine, NULL) == dnnl_success;
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (!ok) return false;
  memset(e, 0, sizeof *e);
  ok = dnnl_primitive_create(&e->prim, pd) == dnnl_success &&
       dnnl_memory_create(&e->a, &ad, G.engine, DNNL_MEMORY_NONE) == dnnl_success &&
       dnnl_memory_create(&e->b, &bd, G.engine, DNNL_MEMORY_NONE) == dnnl_success &&
       dnnl_memory_create(&e->c, &cd, G.engine, DNNL_MEMORY_NONE) == dnnl_success &&
       (!k->bias ||
        dnnl_memory_create(&e->bias, &biasd, G.engine, DNNL_MEMORY_NONE) == dnnl_success);
  const dnnl_memory_desc_t *sd =
      ok ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
  e->scratch_bytes = sd ? dnnl_memory_desc_get_size(sd) : 0;
  if (ok && e->scratch_bytes)
    ok = dnnl_memory_create(&e->scratch, sd, G.engine, DNNL_MEMORY_NONE) == dnnl_success;
  dnnl_primitive_desc_destroy(pd);
  if (!ok) {
    entry_destroy(e);
    return false;
  }
  e->used = true;
  e->key = *k;
  return true;
}

static gemm_entry *lookup(const gemm_key *k, float alpha, float beta) {
  size_t i = (size_t)key_hash(k) & (CACHE_SLOTS - 1);
  for (;; i = (i + 1) & (CACHE_SLOTS - 1)) {
    gemm_entry *e = &G.slots[i];
    if (!e->used) break;
    if (!memcmp(&e->key, k, sizeof *k)) return e;
  }
  if (G.n_used >= CACHE_SLOTS * 3 / 4) { /* shapes keep changing: start over */
    for (int j = 0; j < CACHE_SLOTS; j++)
      if (G.slots[j].used) entry_destroy(&G.slots[j]);
    G.n_used = 0;
    i = (size_t)key_hash(k) & (CACHE_SLOTS - 1);
  }
  if (!entry_create(&G.slots[i], k, alpha, beta)) return NULL;
  G.n_used++;
  return &G.slots[i];
}

static bool run_one(const gemm_key *k, float alpha, float beta, const uint16_t *a,
                    const uint16_t *b, const float *bias, void *c) {
  gemm_entry *e = lookup(k, alpha, beta);
  if (!e) return false;
  /* oneDNN never writes its sources; the handles are set per call */
  if (dnnl_memory_set_data_handle(e->a, (void *)a) != dnnl_success ||
      dnnl_memory_set_data_handle(e->b, (void *)b) != dnnl_success ||
      dnnl_memory_set_data_handle(e->c, c) != dnnl_success ||
      (e->bias && dnnl_memory_set_data_handle(e->bias, (void *)bias) != dnnl_success))
    return false;
  if (e->scratch_bytes > G.scratch_cap) {
    void *p = NULL;
    if (posix_memalign(&p, 64, e->scratch_bytes)) return false;
    free(G.scratch);
    G.scratch = p;
    G.scratch_cap = e->scratch_bytes;
  }
  if (e->scratch && dnnl_memory_set_data_handle(e->scratch, G.scratch) != dnnl_success)
    return false;
  dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
  int na = 3;
  if (e->bias) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
  if (e->scratch) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
  return dnnl_primitive_execute(e->prim, G.stream, na, args) == dnnl_success &&
         dnnl_stream_wait(G.stream) == dnnl_success;
}

/* Both entry points: c of element size c_bytes (4 f32, 2 bf16), bias NULL or per column. */
static bool gemm_any(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                     const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                     int64_t ldb, int64_t stride_b, const float *bias, float beta, void *c,
                     bool c_bf16, int64_t ldc, int64_t stride_c, int64_t batch) {
  if (m <= 0 || n <= 0 || batch <= 0) return true; /* nothing to compute */
  if (k <= 0) return false;                        /* c = beta c: the fallback does it */
  size_t c_bytes = c_bf16 ? sizeof(uint16_t) : sizeof(float);
  pthread_mutex_lock(&G.lock);
  bool ok = engine_ready();
  gemm_key key;
  memset(&key, 0, sizeof key);
  key = (gemm_key){.m = m,
                   .n = n,
                   .k = k,
                   .lda = lda,
                   .ldb = ldb,
                   .ldc = ldc,
                   .ta = ta,
                   .tb = tb,
                   .c_bf16 = c_bf16,
                   .bias = bias != NULL};
  memcpy(&key.alpha_bits, &alpha, 4);
  memcpy(&key.beta_bits, &beta, 4);
  /* One batched primitive, unless c is shared across the batch (a sum over it, e.g. a shared
   * weight's gradient) or both inputs are: then one 2-d call per matrix, accumulating. */
  bool batched = batch > 1 && stride_c != 0 && (stride_a != 0 || stride_b != 0);
  if (ok && (batch == 1 || batched)) {
    key.batch = batch;
    key.sa = batch > 1 ? stride_a : 0;
    key.sb = batch > 1 ? stride_b : 0;
    key.sc = batch > 1 ? stride_c : 0;
    ok = run_one(&key, alpha, beta, a, b, bias, c);
  } else if (ok) {
    key.batch = 1;
    for (int64_t i = 0; ok && i < batch; i++) {
      float bi = i > 0 && stride_c == 0 ? 1.0f : beta;
      memcpy(&key.beta_bits, &bi, 4);
      ok = run_one(&key, alpha, bi, a + i * stride_a, b + i * stride_b, bias,
                   (char *)c + (size_t)(i * stride_c) * c_bytes);
    }
  }
  pthread_mutex_unlock(&G.lock);
  return ok;
}

bool vt_cpu_dnnl_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                           const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                           int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                           int64_t stride_c, int64_t batch) {
  return gemm_any(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, NULL, beta, c, false,
                  ldc, stride_c, batch);
}

bool vt_cpu_dnnl_gemm_bf16_ex(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                              const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                              int64_t ldb, int64_t stride_b, const float *bias, void *c,
                              bool c_bf16, int64_t ldc, int64_t stride_c, int64_t batch) {
  /* every matrix overwriting one c, or oneDNN's order of output scale and bias: refused */
  if ((batch > 1 && stride_c == 0) || (bias && alpha != 1.0f)) return false;
  return gemm_any(ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, bias, 0.0f, c, c_bf16,
                  ldc, stride_c, batch);
}

/* The bf16 units from CPUID (leaf 7: subleaf 1 EAX bit 5 AVX512_BF16, subleaf 0 EDX bit 22
 * AMX_BF16), read directly: older compilers (clang 14) know neither feature name. The OS
 * saving AVX-512 state is what __builtin_cpu_supports("avx512f") reports. */
static bool cpuid7(unsigned sub, unsigned reg, unsigned bit) {
  unsigned r[4];
  if (!__get_cpuid_count(7, sub, &r[0], &r[1], &r[2], &r[3])) return false;
  return (r[reg] >> bit) & 1u;
}
static bool has_avx512_bf16(void) { return __builtin_cpu_supports("avx512f") && cpuid7(1, 0, 5); }
static bool has_amx_bf16(void) { return cpuid7(0, 3, 22); }

bool vt_cpu_bf16_gemm_info(char *buf, size_t len) {
  bool units = has_avx512_bf16() || has_amx_bf16();
  const dnnl_version_t *v = dnnl_version();
  /* The kernel oneDNN picks for a probe shape names the ISA it dispatches to. */
  char impl[96] = "?";
  pthread_mutex_lock(&G.lock);
  if (engine_ready()) {
    dnnl_memory_desc_t ad, bd, cd;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd;
    const char *s = NULL;
    if (operand_desc(&ad, dnnl_bf16, 1, 0, 64, 64, 64, false) &&
        operand_desc(&bd, dnnl_bf16, 1, 0, 64, 64, 64, false) &&
        operand_desc(&cd, dnnl_f32, 1, 0, 64, 64, 64, false) &&
        dnnl_matmul_desc_init(&md, &ad, &bd, NULL, &cd) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &md, NULL, G.engine, NULL) == dnnl_success) {
      if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s)
        snprintf(impl, sizeof impl, "%s", s);
      dnnl_primitive_desc_destroy(pd);
    }
  }
  pthread_mutex_unlock(&G.lock);
  if (!units) {
    snprintf(buf, len,
             "CPU lacks avx512_bf16 and amx_bf16 (oneDNN %d.%d.%d would emulate bf16 with %s)",
             v->major, v->minor, v->patch, impl);
    return false;
  }
  snprintf(buf, len, "oneDNN %d.%d.%d matmul %s (CPU has %s)", v->major, v->minor, v->patch, impl,
           has_amx_bf16() ? "amx_bf16" : "avx512_bf16");
  return true;
}

#else /* built without oneDNN */

bool vt_cpu_dnnl_gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                           const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                           int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                           int64_t stride_c, int64_t batch) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda;
  (void)stride_a, (void)b, (void)ldb, (void)stride_b, (void)beta, (void)c, (void)ldc;
  (void)stride_c, (void)batch;
  return false;
}

bool vt_cpu_dnnl_gemm_bf16_ex(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                              const uint16_t *a, int64_t lda, int64_t stride_a, const uint16_t *b,
                              int64_t ldb, int64_t stride_b, const float *bias, void *c,
                              bool c_bf16, int64_t ldc, int64_t stride_c, int64_t batch) {
  (void)ta, (void)tb, (void)m, (void)n, (void)k, (void)alpha, (void)a, (void)lda;
  (void)stride_a, (void)b, (void)ldb, (void)stride_b, (void)bias, (void)c, (void)c_bf16;
  (void)ldc, (void)stride_c, (void)batch;
  return false;
}

bool vt_cpu_bf16_gemm_info(char *buf, size_t len) {
  snprintf(buf, len, "built without oneDNN (install libdnnl-dev and reconfigure)");
  return false;
}

#endif

bool vt_cpu_bf16_gemm_ok(void) {
  static int known; /* 0 not asked, 1 yes, 2 no */
  int k = __atomic_load_n(&known, __ATOMIC_ACQUIRE);
  if (!k) {
    char info[256];
    k = vt_cpu_bf16_gemm_info(info, sizeof info) ? 1 : 2;
    __atomic_store_n(&known, k, __ATOMIC_RELEASE);
  }
  return k == 1;
}
