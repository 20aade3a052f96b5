/* vt_ctx: arenas, sticky errors, the tape and backward. */
#include "autograd/ctx_impl.h"
#include "autograd/params.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vt_ctx *vt_ctx_init(const vt_ctx_opts *opts, const char **err) {
  vt_ctx_opts o = opts ? *opts : (vt_ctx_opts){0};
  const vt_backend *be = o.backend;
  const char *why = "unknown device type";
  bool owns = false;
  if (!be) {
    be = vt_backend_for(o.device, &why);
    owns = be && be != vt_backend_cpu();
  }
  if (!be) {
    if (err) *err = why;
    return NULL;
  }
  vt_ctx *ctx = calloc(1, sizeof *ctx);
  if (!ctx) {
    if (owns) vt_backend_free(be);
    if (err) *err = "out of host memory";
    return NULL;
  }
  ctx->device = be->device;
  ctx->be = be;
  ctx->owns_be = owns;
  ctx->grad_enabled = true;
  vt_arena_init(&ctx->meta, NULL, (size_t)1 << 20);
  vt_arena_init(&ctx->data, be, o.arena_bytes);
  ctx->err_value = NAN;
  ctx->err_tensor = (vt_tensor){.dtype = VT_F32, .ndim = 1, .shape = {1}, .data = &ctx->err_value};
  return ctx;
}

void vt_ctx_free(vt_ctx *ctx) {
  if (!ctx) return;
  vt_arena_free(&ctx->meta);
  vt_arena_free(&ctx->data);
  free(ctx->tape);
  free(ctx->hook.last);
  free(ctx->hook.order);
  if (ctx->owns_be) vt_backend_free(ctx->be);
  free(ctx);
}

const vt_backend *vt_ctx_backend(const vt_ctx *ctx) { return ctx->be; }
vt_device vt_ctx_device(const vt_ctx *ctx) { return ctx->device; }
bool vt_ctx_failed(const vt_ctx *ctx) { return ctx->failed; }
const char *vt_ctx_error(const vt_ctx *ctx) { return ctx->error; }

void vt_ctx_clear_error(vt_ctx *ctx) {
  ctx->failed = false;
  ctx->error[0] = '\0';
}

vt_tensor *vt_ctx_fail_at(vt_ctx *ctx, const char *file, int line, const char *op, const char *fmt,
                          ...) {
  if (!ctx->failed) {
    const char *base = strrchr(file, '/');
    int n = snprintf(ctx->error, sizeof ctx->error, "%s: ", op);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof ctx->error)
      n += vsnprintf(ctx->error + n, sizeof ctx->error - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof ctx->error)
      snprintf(ctx->error + n, sizeof ctx->error - (size_t)n, " (%s:%d)", base ? base + 1 : file,
               line);
    ctx->failed = true;
  }
  return &ctx->err_tensor;
}

void vt_ctx_reset(vt_ctx *ctx) {
  ctx->n_nodes = 0;
  vt_arena_reset(&ctx->meta);
  vt_arena_reset(&ctx->data);
}

bool vt_set_grad_enabled(vt_ctx *ctx, bool enabled) {
  bool prev = ctx->grad_enabled;
  ctx->grad_enabled = enabled;
  return prev;
}

bool vt_grad_enabled(const vt_ctx *ctx) { return ctx->grad_enabled; }
int64_t vt_tape_len(const vt_ctx *ctx) { return ctx->n_nodes; }

int64_t vt_ctx_heap_allocs(const vt_ctx *ctx) {
  return ctx->meta.n_block_allocs + ctx->data.n_block_allocs + ctx->tape_allocs;
}

size_t vt_ctx_arena_high_water(const vt_ctx *ctx) { return ctx->data.high_water; }

void *vt_arena_data(vt_ctx *ctx, const char *op, size_t bytes) {
  void *p = vt_arena_alloc(&ctx->data, bytes);
  if (!p) vt_ctx_fail(ctx, op, "out of %s memory allocating %zu bytes", ctx->be->name, bytes);
  return p;
}

void *vt_arena_meta(vt_ctx *ctx, const char *op, size_t bytes) {
  void *p = vt_arena_alloc(&ctx->meta, bytes);
  if (!p) vt_ctx_fail(ctx, op, "out of host memory allocating %zu bytes", bytes);
  return p;
}

vt_tensor *vt_alloc_tensor(vt_ctx *ctx, const char *op, vt_dtype dtype, int ndim,
                           const int64_t *shape) {
  if (ndim < 0 || ndim > VT_MAX_DIMS) {
    vt_ctx_fail(ctx, op, "%d dims requested, at most %d supported", ndim, VT_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) {
      vt_ctx_fail(ctx, op, "negative size %lld in dim %d", (long long)shape[i], i);
      return NULL;
    }
  vt_tensor *t = vt_arena_meta(ctx, op, sizeof *t);
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  t->dtype = dtype;
  t->ndim = ndim;
  if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim); /* a scalar's may be NULL */
  t->device = ctx->device;
  t->data = vt_arena_data(ctx, op, vt_nbytes(t));
  return t->data ? t : NULL;
}

int vt_ctx_set_gemm_dtype(vt_ctx *ctx, vt_dtype dtype, char *kernel, size_t kernel_len, char *err,
                          size_t err_len) {
  char info[256];
  if (dtype == VT_F32) {
    ctx->gemm_dtype = VT_F32;
    if (kernel) snprintf(kernel, kernel_len, "%s sgemm", ctx->be->name);
    return 0;
  }
  if (dtype != VT_BF16) {
    snprintf(err, err_len, "GEMM precision %s is not supported (expected f32 or bf16)",
             vt_dtype_name(dtype));
    return -1;
  }
  if (!vt_backend_bf16_gemm(ctx->be, info, sizeof info)) {
    snprintf(err, err_len, "bf16 precision needs bf16 GEMM units: %s", info);
    return -1;
  }
  ctx->gemm_dtype = VT_BF16;
  if (kernel) snprintf(kernel, kernel_len, "%s", info);
  return 0;
}

vt_dtype vt_ctx_gemm_dtype(const vt_ctx *ctx) { return ctx->gemm_dtype; }

const void *vt_gemm_operand(vt_ctx *ctx, const char *op, const vt_tensor *t, const float *data,
                            int64_t n) {
  if (ctx->gemm_dtype == VT_F32) return data;
  if (t && t->dtype == VT_BF16 && t->data == data) return data; /* vt_gemm_input's */
  if (t && t->lowp && t->data == data) return t->lowp;
  if (t && t->reads && (*t->reads & VT_READ_SHARDED)) {
    vt_ctx_fail(ctx, op,
                "parameter %s: a GEMM reads part of its f32 values, of which this rank "
                "holds only a shard (ZeRO under bf16)",
                t->name ? t->name : "(unnamed)");
    return NULL;
  }
  void *h = vt_arena_data(ctx, op, sizeof(uint16_t) * (size_t)(n > 0 ? n : 1));
  if (h && n > 0) ctx->be->convert(ctx->be, VT_F32, ctx->gemm_dtype, n, data, h);
  return h;
}

float *vt_grad_first(vt_ctx *ctx, vt_tensor *t, bool *fresh) {
  *fresh = !t->grad;
  if (!t->grad) t->grad = vt_arena_data(ctx, "backward", (size_t)vt_numel(t) * sizeof(float));
  return t->grad;
}

float *vt_grad(vt_ctx *ctx, vt_tensor *t) {
  if (!t->grad) {
    t->grad = vt_arena_data(ctx, "backward", (size_t)vt_numel(t) * sizeof(float));
    if (t->grad) ctx->be->fill(ctx->be, t->grad, vt_numel(t), 0.0f);
  }
  return t->grad;
}

vt_node *vt_record(vt_ctx *ctx, const char *op, vt_backward_fn fn, vt_tensor *out, int n_in,
                   vt_tensor *const *in) {
  if (!ctx->grad_enabled || ctx->failed) return NULL;
  bool any = false;
  for (int i = 0; i < n_in; i++) any |= in[i]->requires_grad;
  if (!any) return NULL;
  return vt_record_always(ctx, op, fn, out, n_in, in);
}

vt_node *vt_record_always(vt_ctx *ctx, const char *op, vt_backward_fn fn, vt_tensor *out, int n_in,
                          vt_tensor *const *in) {
  if (!ctx->grad_enabled || ctx->failed) return NULL;
  if (n_in > VT_NODE_MAX_IN) {
    vt_ctx_fail(ctx, op, "%d inputs, at most %d can be recorded", n_in, VT_NODE_MAX_IN);
    return NULL;
  }
  if (ctx->n_nodes == ctx->cap_nodes) {
    int64_t cap = ctx->cap_nodes ? ctx->cap_nodes * 2 : 1024;
    vt_node *nt = realloc(ctx->tape, (size_t)cap * sizeof *nt);
    if (!nt) {
      vt_ctx_fail(ctx, op, "out of host memory growing the tape to %lld nodes", (long long)cap);
      return NULL;
    }
    ctx->tape = nt;
    ctx->cap_nodes = cap;
    ctx->tape_allocs++;
  }
  vt_node *n = &ctx->tape[ctx->n_nodes++];
  memset(n, 0, sizeof *n);
  n->backward = fn;
  n->op = op;
  n->out = out;
  n->n_in = n_in;
  for (int i = 0; i < n_in; i++) n->in[i] = in[i];
  out->requires_grad = true;
  return n;
}

bool vt_backward(vt_ctx *ctx, vt_tensor *loss) {
  if (ctx->failed) return false;
  if (vt_numel(loss) != 1 || loss->dtype != VT_F32) {
    char s[96];
    vt_ctx_fail(ctx, "backward", "the loss must be a single f32 value, got %s",
                vt_shape_str(loss, s, sizeof s));
    return false;
  }
  if (!loss->requires_grad) {
    vt_ctx_fail(ctx, "backward",
                "the loss does not depend on anything that requires a gradient"
                " (is every parameter frozen, or was no-grad mode on?)");
    return false;
  }
  float *g = vt_grad(ctx, loss);
  if (!g) return false;
  ctx->be->fill(ctx->be, g, 1, 1.0f);
  if (!vt_hook_begin(ctx)) return false;
  for (int64_t i = ctx->n_nodes - 1; i >= 0 && !ctx->failed; i--) {
    vt_node *n = &ctx->tape[i];
    if (n->out->grad) n->backward(ctx, n);
    vt_hook_after_node(ctx, i);
  }
  if (!ctx->failed) vt_hook_end(ctx);
  ctx->n_nodes = 0; /* saved activations are no longer referenced */
  return !ctx->failed;
}

bool vt_mark_param_read(vt_ctx *ctx, const char *op, const vt_tensor *t, vt_input_use use) {
  if (!t->reads || use == VT_IN_VIEW) return true; /* a view keeps t.reads: its reader marks */
  /* a GEMM reads the bf16 copy of a 2-D weight; a bias (1-D) goes to the epilogue in f32 */
  bool gemm = use == VT_IN_GEMM && ctx->gemm_dtype == VT_BF16 && t->ndim == 2 && t->lowp;
  *t->reads |= gemm ? VT_READ_GEMM : VT_READ_F32;
  if (gemm || !(*t->reads & VT_READ_SHARDED)) return true;
  vt_ctx_fail(ctx, op,
              "parameter %s: this op reads its f32 values, of which this rank holds only a "
              "shard (ZeRO under bf16 keeps whole f32 values only of parameters that were read "
              "in f32 when the shards were chosen)",
              t->name ? t->name : "(unnamed)");
  return false;
}

bool vt_check_inputs_as(vt_ctx *ctx, const char *op, vt_input_use use, int n,
                        vt_tensor *const *ts) {
  if (ctx->failed) return false;
  for (int i = 0; i < n; i++) {
    if (!ts[i]) {
      vt_ctx_fail(ctx, op, "input %d is NULL", i);
      return false;
    }
    if (ts[i]->device.type != ctx->device.type) {
      vt_ctx_fail(ctx, op, "input %d is on another device than the context", i);
      return false;
    }
    if (!vt_mark_param_read(ctx, op, ts[i], use)) return false;
  }
  return true;
}

bool vt_check_inputs(vt_ctx *ctx, const char *op, int n, vt_tensor *const *ts) {
  return vt_check_inputs_as(ctx, op, VT_IN_VALUES, n, ts);
}

bool vt_check_dtype(vt_ctx *ctx, const char *op, const vt_tensor *t, vt_dtype want) {
  if (t->dtype == want) return true;
  char s[96];
  vt_ctx_fail(ctx, op, "expected dtype %s, got %s", vt_dtype_name(want),
              vt_shape_str(t, s, sizeof s));
  return false;
}

bool vt_need_kernels(vt_ctx *ctx, const char *op, vt_kernel_family family, bool present) {
  if (present) return true;
  vt_ctx_fail(ctx, op, "not supported on the %s backend (no kernels of the %s family)",
              ctx->be->name, vt_backend_family_name(family));
  return false;
}

bool vt_check_axis(vt_ctx *ctx, const char *op, const vt_tensor *t, int *axis) {
  int a = *axis < 0 ? *axis + t->ndim : *axis;
  if (a < 0 || a >= t->ndim) {
    char s[96];
    vt_ctx_fail(ctx, op, "axis %d out of range for %s", *axis, vt_shape_str(t, s, sizeof s));
    return false;
  }
  *axis = a;
  return true;
}

vt_tensor *vt_new(vt_ctx *ctx, vt_dtype dtype, int ndim, const int64_t *shape) {
  if (ctx->failed) return &ctx->err_tensor;
  vt_tensor *t = vt_alloc_tensor(ctx, "new", dtype, ndim, shape);
  return t ? t : &ctx->err_tensor;
}

vt_tensor *vt_zeros(vt_ctx *ctx, vt_dtype dtype, int ndim, const int64_t *shape) {
  vt_tensor *t = vt_new(ctx, dtype, ndim, shape);
  if (ctx->failed) return t;
  if (dtype == VT_F32)
    ctx->be->fill(ctx->be, t->data, vt_numel(t), 0.0f);
  else {
    /* zero bytes are zero in every dtype we have */
    size_t words = (vt_nbytes(t) + 3) / 4;
    ctx->be->fill(ctx->be, t->data, (int64_t)words, 0.0f);
  }
  return t;
}

vt_tensor *vt_full(vt_ctx *ctx, int ndim, const int64_t *shape, float value) {
  vt_tensor *t = vt_new(ctx, VT_F32, ndim, shape);
  if (!ctx->failed) ctx->be->fill(ctx->be, t->data, vt_numel(t), value);
  return t;
}

vt_tensor *vt_from_host(vt_ctx *ctx, vt_dtype dtype, int ndim, const int64_t *shape,
                        const void *host) {
  vt_tensor *t = vt_new(ctx, dtype, ndim, shape);
  if (!ctx->failed) ctx->be->copy(ctx->be, t->data, host, vt_nbytes(t), VT_COPY_H2D);
  return t;
}

void vt_to_host(vt_ctx *ctx, const vt_tensor *t, void *host) {
  if (t == &ctx->err_tensor) {
    memcpy(host, &ctx->err_value, sizeof(float));
    return;
  }
  ctx->be->copy(ctx->be, host, t->data, vt_nbytes(t), VT_COPY_D2H);
}

void vt_grad_to_host(vt_ctx *ctx, const vt_tensor *t, float *host) {
  size_t bytes = (size_t)vt_numel(t) * sizeof(float);
  if (!t->grad)
    memset(host, 0, bytes);
  else
    ctx->be->copy(ctx->be, host, t->grad, bytes, VT_COPY_D2H);
}

static bool range_ok(vt_ctx *ctx, const char *op, const vt_tensor *t, int64_t first, int64_t n) {
  if (ctx->failed) return false;
  if (t == &ctx->err_tensor || !t->data) {
    vt_ctx_fail(ctx, op, "the tensor has no data (an error tensor?)");
    return false;
  }
  if (first < 0 || n < 0 || first > vt_numel(t) - n) {
    char s[96];
    vt_ctx_fail(ctx, op, "elements [%lld, %lld) lie outside %s", (long long)first,
                (long long)(first + n), vt_shape_str(t, s, sizeof s));
    return false;
  }
  return true;
}

void vt_write_host(vt_ctx *ctx, vt_tensor *t, int64_t first, int64_t n, const void *host) {
  if (!range_ok(ctx, "write_host", t, first, n) || !n) return;
  size_t es = vt_dtype_size(t->dtype);
  ctx->be->copy(ctx->be, (char *)t->data + (size_t)first * es, host, (size_t)n * es, VT_COPY_H2D);
}

void vt_read_host(vt_ctx *ctx, const vt_tensor *t, int64_t first, int64_t n, void *host) {
  if (!range_ok(ctx, "read_host", t, first, n) || !n) return;
  size_t es = vt_dtype_size(t->dtype);
  ctx->be->copy(ctx->be, host, (const char *)t->data + (size_t)first * es, (size_t)n * es,
                VT_COPY_D2H);
}

void vt_requires_grad(vt_ctx *ctx, vt_tensor *t) {
  (void)ctx;
  if (t->dtype == VT_F32) t->requires_grad = true;
}

float vt_item(vt_ctx *ctx, const vt_tensor *t) {
  if (t == &ctx->err_tensor || t->dtype != VT_F32) return NAN;
  float v;
  ctx->be->copy(ctx->be, &v, t->data, sizeof v, VT_COPY_D2H);
  return v;
}

vt_scope vt_scope_begin(vt_ctx *ctx) {
  vt_arena_mark d = vt_arena_get_mark(&ctx->data), m = vt_arena_get_mark(&ctx->meta);
  return (vt_scope){d.block, m.block, d.used, m.used, ctx->n_nodes};
}

vt_tensor *vt_scope_end(vt_ctx *ctx, vt_scope s, vt_tensor *keep) {
  vt_arena_mark d = {s.data_block, s.data_used}, m = {s.meta_block, s.meta_used};
  if (ctx->failed || ctx->grad_enabled || ctx->n_nodes != s.n_nodes || !keep || keep->grad ||
      keep->is_param || !vt_arena_after_mark(&ctx->data, d, keep->data) ||
      !vt_arena_after_mark(&ctx->meta, m, keep))
    return keep;
  vt_tensor t = *keep;
  size_t bytes = vt_nbytes(&t);
  vt_arena_rewind(&ctx->data, d);
  vt_arena_rewind(&ctx->meta, m);
  /* the new places are at or below the old ones in the same block, or in another block, so
   * a forward copy in pieces no longer than the gap never reads what it already overwrote */
  vt_tensor *out = vt_arena_meta(ctx, "scope", sizeof *out);
  char *dst = out ? vt_arena_data(ctx, "scope", bytes) : NULL;
  if (!dst) return &ctx->err_tensor;
  const char *src = t.data;
  size_t gap = src > dst ? (size_t)(src - dst) : bytes;
  if (dst != src)
    for (size_t o = 0; o < bytes; o += gap)
      ctx->be->copy(ctx->be, dst + o, src + o, bytes - o < gap ? bytes - o : gap, VT_COPY_D2D);
  *out = t;
  out->data = dst;
  return out;
}
