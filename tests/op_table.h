/* The op table of tests/test_backend_ops.c: every op case, with its inputs (a PyTorch fixture
 * of tests/reference/gen_*_fixtures.py, or random ones from a spec), the kernel family it
 * needs and its tolerances. Header-only (static) data for that one test. To add an op: add a
 * graph function and a row; with a fixture, add the case to a generator and commit its
 * output. */
#ifndef VT_TEST_OP_TABLE_H
#define VT_TEST_OP_TABLE_H

#include <float.h>
#include <string.h>

#include "autograd/ops_spectral.h"
#include "tests/fixture.h"
#include "tests/gradcheck.h"

#define OT_MAX_IN 8
#define OT_CORE VT_FAMILY_COUNT /* the case needs only the core vtable */

/* Tensors a graph reports besides its output (running statistics, indices), compared with
 * the fixture's NAME.<name> and across backends. */
typedef struct {
  vt_tensor *t[2];
  const char *name[2];
} op_extra;

typedef vt_tensor *(*op_fn)(vt_ctx *ctx, vt_tensor **in, const void *param, op_extra *ex);

/* A random input: f32 uniform in [lo, hi) (rounded to multiples of quant when > 0, to make
 * ties), integers uniform in [lo, hi). */
typedef struct {
  vt_dtype dtype; /* VT_F32, VT_I32 or VT_I64 */
  int ndim;
  int64_t shape[VT_MAX_DIMS];
  float lo, hi;
  bool grad;
  float quant;
} input_spec;

/* Against PyTorch: TOL_ABS compares with |got - want| <= atol + rtol |want|; TOL_MAX takes
 * atol = mult eps (the first number) times max(1, max |want|) and rtol = mult eps. */
typedef enum { TOL_ABS, TOL_MAX } tol_kind;
typedef struct {
  tol_kind kind;
  double atol, rtol;
} torch_tol;

typedef struct {
  const char *name; /* with a fixture, the prefix of its keys */
  vt_kernel_family family;
  op_fn fn;
  const void *param;
  const char *fixture; /* under tests/fixtures; NULL: random inputs from in[] */
  /* Fixture layout. keys NULL: NAME.in<i> for i < n_in, NAME.grad<i> where the input is
   * differentiated, NAME.out. Else space-separated "field[:gradfield]" tokens, a field with a
   * '.' being a full key (shared inputs), and out names the output field. */
  const char *keys;
  const char *out;
  const char *w; /* NULL: NAME.w when present, else linspace(-1, 1); "=1": ones (scalars) */
  torch_tol tol;
  int n_in;
  input_spec in[OT_MAX_IN];
  void (*prepare)(void **host); /* plants NaNs, -inf, ties in random inputs */
  int64_t terms;                /* longest f32 sum behind an element (0: 64) */
  bool no_fd;                   /* no finite differences (ties, NaNs, piecewise constant) */
} op_case;

#define GRAPH(fname, expr)                                                                         \
  static vt_tensor *fname(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {                 \
    (void)p;                                                                                       \
    (void)ex;                                                                                      \
    return expr;                                                                                   \
  }

/* ---- core ops ---------------------------------------------------------------------------- */

GRAPH(mm_nn, vt_matmul(c, x[0], x[1], false, false))
GRAPH(mm_nt, vt_matmul(c, x[0], x[1], false, true))
GRAPH(mm_tn, vt_matmul(c, x[0], x[1], true, false))
GRAPH(mm_tt, vt_matmul(c, x[0], x[1], true, true))
GRAPH(linear, vt_linear(c, x[0], x[1], x[2]))
GRAPH(add, vt_add(c, x[0], x[1]))
GRAPH(swiglu, vt_swiglu(c, x[0]))
GRAPH(sub, vt_sub(c, x[0], x[1]))
GRAPH(mul, vt_mul(c, x[0], x[1]))
GRAPH(dvd, vt_div(c, x[0], x[1]))
GRAPH(scale_075, vt_scale(c, x[0], 0.75f))
GRAPH(scale_m175, vt_scale(c, x[0], -1.75f))
GRAPH(gelu_tanh, vt_gelu_tanh(c, x[0]))
GRAPH(gelu_erf, vt_gelu_erf(c, x[0]))
GRAPH(silu, vt_silu(c, x[0]))
GRAPH(relu, vt_relu(c, x[0]))
GRAPH(leaky, vt_leaky_relu(c, x[0], 0.1f))
GRAPH(tanh_, vt_tanh(c, x[0]))
GRAPH(sigmoid, vt_sigmoid(c, x[0]))
GRAPH(sum_all, vt_sum(c, x[0], VT_ALL_AXES, false))
GRAPH(sum_0, vt_sum(c, x[0], 0, false))
GRAPH(sum_1, vt_sum(c, x[0], 1, false))
GRAPH(sum_1k, vt_sum(c, x[0], 1, true))
GRAPH(sum_last, vt_sum(c, x[0], -1, false))
GRAPH(mean_all, vt_mean(c, x[0], VT_ALL_AXES, false))
GRAPH(mean_0k, vt_mean(c, x[0], 0, true))
GRAPH(mean_1, vt_mean(c, x[0], 1, false))
GRAPH(mean_lastk, vt_mean(c, x[0], -1, true))
GRAPH(max_all, vt_max(c, x[0], VT_ALL_AXES, false))
GRAPH(max_0, vt_max(c, x[0], 0, false))
GRAPH(max_1k, vt_max(c, x[0], 1, true))
GRAPH(max_last, vt_max(c, x[0], -1, false))
GRAPH(softmax, vt_softmax(c, x[0]))
GRAPH(log_softmax, vt_log_softmax(c, x[0]))
/* a view, then an op on the view, so the gradient flows through the reshape */
GRAPH(reshape, vt_scale(c, vt_reshape(c, x[0], 3, (int64_t[]){2, -1, 3}), 2.0f))
GRAPH(reshape_chain, vt_transpose(c,
                                  vt_mul(c, vt_reshape(c, x[0], 2, (int64_t[]){4, -1}),
                                         vt_reshape(c, x[0], 2, (int64_t[]){4, -1})),
                                  0, 1))
GRAPH(permute_201, vt_permute(c, x[0], (int[]){2, 0, 1}))
GRAPH(permute_3102, vt_permute(c, x[0], (int[]){3, 1, 0, 2}))
GRAPH(transpose, vt_transpose(c, x[0], 0, 2))
GRAPH(concat2_1, vt_concat(c, x, 2, 1))
GRAPH(concat3_1, vt_concat(c, x, 3, 1))
GRAPH(concat2_0, vt_concat(c, x, 2, 0))
GRAPH(slice_113, vt_slice(c, x[0], 1, 1, 3))
GRAPH(slice_127, vt_slice(c, x[0], 1, 2, 7))
GRAPH(index_select_1, vt_index_select(c, x[0], 1, x[1]))
GRAPH(index_copy_0, vt_index_copy(c, x[0], 0, x[1], x[2]))
GRAPH(index_copy_1, vt_index_copy(c, x[0], 1, x[1], x[2]))
GRAPH(index_add_0, vt_index_add(c, x[0], 0, x[1], x[2]))
GRAPH(embedding, vt_embedding(c, x[0], x[1]))
GRAPH(cast_f32, vt_cast(c, x[0], VT_F32))
GRAPH(cast_bf16, vt_cast(c, x[0], VT_BF16))
GRAPH(cast_f16, vt_cast(c, x[0], VT_F16))
GRAPH(cast_i32, vt_cast(c, x[0], VT_I32))
GRAPH(cast_i64, vt_cast(c, x[0], VT_I64))
GRAPH(cast_bf16_f32, vt_cast(c, vt_cast(c, x[0], VT_BF16), VT_F32))
GRAPH(cast_f16_f32, vt_cast(c, vt_cast(c, x[0], VT_F16), VT_F32))
GRAPH(permute_bf16, vt_permute(c, vt_cast(c, x[0], VT_BF16), (int[]){2, 0, 1}))
GRAPH(slice_i64, vt_transpose(c, vt_slice(c, vt_cast(c, x[0], VT_I64), 0, 1, 3), 0, 1))
GRAPH(mlp,
      vt_log_softmax(
          c, vt_matmul(c, vt_gelu_tanh(c, vt_add(c, vt_matmul(c, x[0], x[1], false, false), x[2])),
                       x[3], false, true)))

/* ---- norm family ------------------------------------------------------------------------- */

GRAPH(layer_norm, vt_layer_norm(c, x[0], x[1], x[2], 1e-5f))
GRAPH(layer_norm_plain, vt_layer_norm(c, x[0], NULL, NULL, 1e-6f))
GRAPH(rms_norm, vt_rms_norm(c, x[0], x[1], 1e-6f))
GRAPH(group_norm, vt_group_norm(c, x[0], 3, x[1], x[2], 1e-5f))
GRAPH(group_norm_4d, vt_group_norm(c, x[0], 2, NULL, NULL, 1e-5f))
GRAPH(bn_train_2d, vt_batch_norm1d(c, x[0], x[1], x[2], NULL, NULL, true, 0.1f, 1e-5f))
GRAPH(bn_eval, vt_batch_norm1d(c, x[0], x[1], x[2], x[3], x[4], false, 0.1f, 1e-5f))
GRAPH(rope_bthd, vt_rope(c, x[0], x[1], 10000.0f, VT_ROPE_BTHD))
GRAPH(rope_bhtd, vt_rope(c, x[0], x[1], 1e6f, VT_ROPE_BHTD))
GRAPH(rope_far, vt_rope(c, x[0], x[1], 1e6f, VT_ROPE_BTHD))
GRAPH(weight_norm, vt_weight_norm(c, x[0], x[1]))

static vt_tensor *bn_train(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  (void)p;
  *ex = (op_extra){{x[3], x[4]}, {"running_mean", "running_var"}};
  return vt_batch_norm1d(c, x[0], x[1], x[2], x[3], x[4], true, 0.1f, 1e-5f);
}

static vt_tensor *vq_ste(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  (void)p;
  vt_tensor *idx;
  vt_tensor *zq = vt_vq_ste(c, x[0], x[1], &idx);
  *ex = (op_extra){{idx, NULL}, {"idx", NULL}};
  return zq;
}

/* ---- conv family ------------------------------------------------------------------------- */

GRAPH(conv1d, vt_conv1d(c, x[0], x[1], x[2], 2, 2, 2, 2))
GRAPH(conv1d_plain, vt_conv1d(c, x[0], x[1], NULL, 1, 0, 1, 1))
GRAPH(conv1d_pad, vt_conv1d_pad(c, x[0], x[1], x[2], 2, 0, 4, 1, 1))
GRAPH(conv2d, vt_conv2d(c, x[0], x[1], x[2], 2, 1, 1, 2))
GRAPH(conv2d_s2, vt_conv2d(c, x[0], x[1], NULL, 2, 2, 0, 0))
GRAPH(convt, vt_conv_transpose1d(c, x[0], x[1], x[2], 3, 1, 2))
GRAPH(convt_plain, vt_conv_transpose1d(c, x[0], x[1], NULL, 2, 0, 0))
GRAPH(pixel_shuffle, vt_pixel_shuffle(c, x[0], 2))

/* ---- attention --------------------------------------------------------------------------- */

/* Inputs q, k, v, then those present of lengths, prefix_lengths, segments, bias, in order. */
typedef struct {
  vt_attn_mask_kind mask;
  int64_t chunk, left, prefix;
  float scale;
  bool lengths, prefix_lengths, segments, bias;
} attn_param;

static vt_tensor *attention(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  const attn_param *a = p;
  (void)ex;
  int n = 3;
  vt_attn_opts o = {.mask = a->mask,
                    .scale = a->scale,
                    .chunk_size = a->chunk,
                    .left_chunks = a->left,
                    .prefix = a->prefix};
  if (a->lengths) o.lengths = x[n++];
  if (a->prefix_lengths) o.prefix_lengths = x[n++];
  if (a->segments) o.segment_ids = x[n++];
  if (a->bias) o.bias = x[n++];
  return vt_attention(c, x[0], x[1], x[2], &o);
}

static const attn_param A_BIDIR = {0}, A_CAUSAL = {.mask = VT_ATTN_CAUSAL};
static const attn_param A_PADDING = {.lengths = true};
static const attn_param A_CHUNK = {.mask = VT_ATTN_CHUNK, .chunk = 2, .left = 1};
static const attn_param A_CHUNK_FULL = {.mask = VT_ATTN_CHUNK, .chunk = 3, .left = -1};
static const attn_param A_PREFIX = {.mask = VT_ATTN_PREFIX, .prefix = 3};
static const attn_param A_PREFIX_PS = {
    .mask = VT_ATTN_PREFIX, .lengths = true, .prefix_lengths = true};
static const attn_param A_BIAS_HEADS = {.mask = VT_ATTN_CAUSAL, .lengths = true, .bias = true};
static const attn_param A_BIAS = {.bias = true};
static const attn_param A_BIAS_BATCH = {.mask = VT_ATTN_CHUNK, .chunk = 2, .left = 0, .bias = true};
static const attn_param A_DK_NE_DV = {.scale = 0.5f};
static const attn_param A_SEG_CAUSAL = {.mask = VT_ATTN_CAUSAL, .lengths = true, .segments = true};
static const attn_param A_SEG_BIDIR = {.segments = true};
static const attn_param A_TILES = {.mask = VT_ATTN_CAUSAL, .lengths = true};

/* Attention from a packed q/k/v projection: qkv, pos, then lengths and segments if present. */
typedef struct {
  int64_t heads, kv_heads;
  float theta;
  vt_attn_mask_kind mask;
  bool lengths, segments;
} qkv_param;

static vt_tensor *attention_qkv(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  const qkv_param *a = p;
  (void)ex;
  int n = 2;
  vt_attn_opts o = {.mask = a->mask};
  if (a->lengths) o.lengths = x[n++];
  if (a->segments) o.segment_ids = x[n++];
  return vt_attention_qkv(c, x[0], a->heads, a->kv_heads, x[1], a->theta, &o);
}

static const qkv_param Q_CAUSAL_GQA = {4, 2, 10000.0f, VT_ATTN_CAUSAL, false, false};
static const qkv_param Q_SEGMENTS = {2, 1, 1e6f, VT_ATTN_CAUSAL, true, true};
static const qkv_param Q_PLAIN = {2, 2, 0.0f, VT_ATTN_BIDIRECTIONAL, false, false};

/* ---- losses ------------------------------------------------------------------------------ */

typedef struct {
  vt_loss_reduction red;
  int64_t chunk;
  vt_ctc_opts ctc;
} loss_param;

static const loss_param L_MEAN = {VT_LOSS_MEAN, 3, {0}}, L_SUM = {VT_LOSS_SUM, 0, {0}};
static const loss_param L_CTC_MEAN = {.ctc = {0, VT_LOSS_MEAN, false}};
static const loss_param L_CTC_SUM = {.ctc = {0, VT_LOSS_SUM, false}};
static const loss_param L_CTC_BLANK4 = {.ctc = {4, VT_LOSS_MEAN, false}};
static const loss_param L_CTC_ZERO_INF = {.ctc = {0, VT_LOSS_MEAN, true}};

static vt_tensor *lm_ce(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  const loss_param *l = p;
  (void)ex;
  vt_lm_ce_opts o = {.chunk_rows = l->chunk, .reduction = l->red};
  return vt_lm_cross_entropy(c, x[0], x[1], x[2], &o);
}
static vt_tensor *wce(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  (void)ex;
  return vt_cross_entropy(c, x[0], x[1], x[2], VT_IGNORE_INDEX, ((const loss_param *)p)->red);
}
static vt_tensor *ctc(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  (void)ex;
  return vt_ctc_loss(c, vt_log_softmax(c, x[0]), x[1], x[2], x[3], &((const loss_param *)p)->ctc);
}
static vt_tensor *l1(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  (void)ex;
  return vt_l1_loss(c, x[0], x[1], ((const loss_param *)p)->red);
}
static vt_tensor *mse(vt_ctx *c, vt_tensor **x, const void *p, op_extra *ex) {
  (void)ex;
  return vt_mse_loss(c, x[0], x[1], ((const loss_param *)p)->red);
}
GRAPH(speech_ce, vt_speech_token_ce(c, x[0], x[1], VT_SPEECH_PAD))
GRAPH(cosine, vt_cosine_loss(c, x[0], x[1]))
GRAPH(vq_loss, vt_vq_loss(c, x[0], x[1], 0.25f))

/* ---- spectral family --------------------------------------------------------------------- */

GRAPH(stft_window, vt_stft(c, x[0], x[1], 16, 5)) /* overlapping frames, a window */
GRAPH(stft_gapped, vt_stft(c, x[0], NULL, 8, 11)) /* frames with gaps between them */
GRAPH(complex_abs, vt_complex_abs(c, x[0], 1e-3f))
GRAPH(log_clamp, vt_log_clamp(c, x[0], 0.3f))

/* ---- planted values in random inputs ----------------------------------------------------- */

/* [4, 40] over the last axis: a row of ties, a row with two NaNs, a row of -inf, a free row. */
static void plant_max(void **host) {
  float *x = host[0];
  for (int j = 0; j < 40; j++) {
    x[j] = 0.5f;
    x[80 + j] = -INFINITY;
  }
  x[40 + 17] = NAN;
  x[40 + 30] = NAN;
}

/* [4, 10]: row 1 partly -inf, row 2 fully -inf (NaN on every device), row 3 has a +large. */
static void plant_softmax(void **host) {
  float *x = host[0];
  for (int j = 0; j < 10; j++) x[20 + j] = -INFINITY;
  x[10 + 3] = x[10 + 7] = -INFINITY;
  x[30 + 5] = 80.0f;
}

static void plant_unique(void **host) {
  int32_t *idx = host[1];
  idx[0] = 4, idx[1] = 0, idx[2] = 6;
}

static void plant_convert(void **host) {
  float *x = host[0];
  const float edge[] = {NAN,
                        INFINITY,
                        -INFINITY,
                        0.0f,
                        -0.0f,
                        65504.0f,
                        65520.0f,
                        1e-8f,
                        -3e-6f,
                        1.00390625f /* bf16 tie */,
                        1.01171875f,
                        3.4e38f,
                        1.0f + FLT_EPSILON};
  memcpy(x, edge, sizeof edge);
}

/* [4, 10] in [0.05, 2): values kept 0.02 away from log_clamp's bound 0.3, where the
 * derivative jumps and finite differences would straddle it. */
static void plant_clamp(void **host) {
  float *x = host[0];
  for (int i = 0; i < 40; i++)
    if (fabsf(x[i] - 0.3f) < 0.02f) x[i] += 0.05f;
  x[0] = 0.1f; /* clamped */
}

/* ---- the table --------------------------------------------------------------------------- */

#define F(nd, ...)                                                                                 \
  { VT_F32, nd, {__VA_ARGS__}, -1.0f, 1.0f, true, 0 }
#define FR(lo, hi, nd, ...)                                                                        \
  { VT_F32, nd, {__VA_ARGS__}, lo, hi, true, 0 }
#define FQ(nd, ...)                                                                                \
  { VT_F32, nd, {__VA_ARGS__}, -1.0f, 1.0f, true, 0.25f }
#define FN(lo, hi, nd, ...)                                                                        \
  { VT_F32, nd, {__VA_ARGS__}, lo, hi, false, 0 }
#define I32(lo, hi, nd, ...)                                                                       \
  { VT_I32, nd, {__VA_ARGS__}, lo, hi, false, 0 }
#define I64(lo, hi, nd, ...)                                                                       \
  { VT_I64, nd, {__VA_ARGS__}, lo, hi, false, 0 }

/* PyTorch tolerances: the core fixtures allow some dozens of f32 roundings (64 eps); norm and
 * conv 64 eps of the largest value; attention and losses compare f32 sums over a few dozen
 * terms with float64 or f32 references. */
#define T_CORE                                                                                     \
  { TOL_ABS, 64 * FLT_EPSILON, 64 * FLT_EPSILON }
#define T_NN                                                                                       \
  { TOL_MAX, 64, 0 }
#define T_ATTN                                                                                     \
  { TOL_ABS, 2e-5, 1e-4 }
#define T_LOSS                                                                                     \
  { TOL_ABS, 1e-5, 1e-4 }

/* A PyTorch case of the core fixtures (NAME.in<i> layout, w = linspace). */
#define CORE(nm, f, n)                                                                             \
  { .name = nm, .family = OT_CORE, .fn = f, .fixture = "ops/core.txt", .tol = T_CORE, .n_in = n }
/* A PyTorch case of the norm/conv fixtures (NAME.w given). */
#define NN(nm, fam, f, n)                                                                          \
  { .name = nm, .family = fam, .fn = f, .fixture = "ops/norm_conv.txt", .tol = T_NN, .n_in = n }
#define NN_NOFD(nm, fam, f, n)                                                                     \
  {                                                                                                \
    .name = nm, .family = fam, .fn = f, .fixture = "ops/norm_conv.txt", .tol = T_NN, .n_in = n,    \
    .no_fd = true                                                                                  \
  }
/* An attention fixture case (q, k, v, then the listed optional inputs). */
#define ATTN(nm, prm, k)                                                                           \
  {                                                                                                \
    .name = nm, .family = VT_FAMILY_ATTN, .fn = attention, .param = &prm,                          \
    .fixture = "ops/attn.txt", .keys = "q:dq k:dk v:dv" k, .out = "out", .tol = T_ATTN             \
  }
/* A vt_attention_qkv fixture case (qkv, pos, then the listed optional inputs). */
#define QKV(nm, prm, k)                                                                            \
  {                                                                                                \
    .name = nm, .family = VT_FAMILY_ATTN, .fn = attention_qkv, .param = &prm,                      \
    .fixture = "ops/fused.txt", .keys = "qkv:dqkv pos" k, .out = "out", .tol = T_ATTN              \
  }
/* A loss fixture case: a scalar loss, d loss / d input given. */
#define LOSS(nm, f, prm, k)                                                                        \
  {                                                                                                \
    .name = nm, .family = VT_FAMILY_LOSS, .fn = f, .param = prm, .fixture = "ops/loss.txt",        \
    .keys = k, .out = "loss", .w = "=1", .tol = T_LOSS                                             \
  }
/* A loss whose gradient is not the derivative of its value (stop-gradients), or whose inputs
 * sit where finite differences break down (norms near the eps clamp). */
#define LOSS_NOFD(nm, f, prm, k)                                                                   \
  {                                                                                                \
    .name = nm, .family = VT_FAMILY_LOSS, .fn = f, .param = prm, .fixture = "ops/loss.txt",        \
    .keys = k, .out = "loss", .w = "=1", .tol = T_LOSS, .no_fd = true                              \
  }
/* A random case of a kernel family (finite differences included). */
#define RND_FAM(nm, fam, f, t, n, prep, ...)                                                       \
  { .name = nm, .family = fam, .fn = f, .n_in = n, .in = __VA_ARGS__, .prepare = prep, .terms = t }
/* A random case: inputs from specs, checked across backends (and by finite differences when
 * small); t bounds the longest sum behind an element. */
#define RND(nm, f, t, n, ...)                                                                      \
  { .name = nm, .family = OT_CORE, .fn = f, .n_in = n, .in = __VA_ARGS__, .terms = t }
#define RND_P(nm, f, t, n, prep, ...)                                                              \
  {                                                                                                \
    .name = nm, .family = OT_CORE, .fn = f, .n_in = n, .in = __VA_ARGS__, .prepare = prep,         \
    .terms = t, .no_fd = true                                                                      \
  }
#define RND_NOFD(nm, f, t, n, ...)                                                                 \
  {                                                                                                \
    .name = nm, .family = OT_CORE, .fn = f, .n_in = n, .in = __VA_ARGS__, .terms = t,              \
    .no_fd = true                                                                                  \
  }

static const op_case OT_CASES[] = {
    /* core ops against PyTorch (gen_core_fixtures.py) */
    CORE("matmul_nn", mm_nn, 2),
    CORE("matmul_nt", mm_nt, 2),
    CORE("matmul_tn", mm_tn, 2),
    CORE("matmul_tt", mm_tt, 2),
    CORE("matmul_shared", mm_nt, 2),
    CORE("matmul_shared_t", mm_tn, 2),
    CORE("add_bcast", add, 2),
    CORE("sub_bcast", sub, 2),
    CORE("mul_bcast", mul, 2),
    CORE("div_bcast", dvd, 2),
    CORE("scale", scale_075, 1),
    CORE("sum_axis", sum_1, 1),
    CORE("mean_axis", mean_lastk, 1),
    CORE("max_axis", max_0, 1),
    CORE("sum_all", sum_all, 1),
    CORE("mean_all", mean_all, 1),
    CORE("gelu_tanh", gelu_tanh, 1),
    CORE("gelu_erf", gelu_erf, 1),
    CORE("silu", silu, 1),
    CORE("relu", relu, 1),
    CORE("softmax", softmax, 1),
    CORE("log_softmax", log_softmax, 1),
    CORE("permute", permute_201, 1),
    CORE("concat", concat2_1, 2),
    CORE("slice", slice_113, 1),
    CORE("index_select", index_select_1, 2),
    CORE("index_copy", index_copy_0, 3),
    CORE("index_add", index_add_0, 3),
    CORE("embedding", embedding, 2),
    /* reshape and transpose have no torch case of their own: checked through a chain */
    RND("reshape_chain", reshape_chain, 1, 1, {FR(-2, 2, 2, 3, 4)}),

    /* norm family against PyTorch (gen_norm_conv_fixtures.py) */
    NN("layer_norm", VT_FAMILY_NORM, layer_norm, 3),
    NN("layer_norm_plain", VT_FAMILY_NORM, layer_norm_plain, 1),
    NN("rms_norm", VT_FAMILY_NORM, rms_norm, 2),
    NN("group_norm", VT_FAMILY_NORM, group_norm, 3),
    NN("group_norm_4d", VT_FAMILY_NORM, group_norm_4d, 1),
    NN("batch_norm_train", VT_FAMILY_NORM, bn_train, 5),
    NN("batch_norm_train_2d", VT_FAMILY_NORM, bn_train_2d, 3),
    NN("batch_norm_eval", VT_FAMILY_NORM, bn_eval, 5),
    /* non-contiguous per-batch positions, and heads-first with shared positions */
    NN("rope_bthd", VT_FAMILY_NORM, rope_bthd, 2),
    NN("rope_bhtd", VT_FAMILY_NORM, rope_bhtd, 2),
    /* positions up to 32767: angles are formed in f32 exactly as HF does (pos * inv_freq) */
    NN("rope_far", VT_FAMILY_NORM, rope_far, 2),
    NN("weight_norm", VT_FAMILY_NORM, weight_norm, 2),
    /* zq is piecewise constant in x, so finite differences see 0 where the straight-through
     * gradient is the identity: only the PyTorch gradient is compared. */
    NN_NOFD("vq_ste", VT_FAMILY_NORM, vq_ste, 2),

    /* conv family against PyTorch: stride 2, padding 2, dilation 2, groups 2, bias */
    NN("conv1d", VT_FAMILY_CONV, conv1d, 3),
    NN("conv1d_plain", VT_FAMILY_CONV, conv1d_plain, 2),
    /* the audio adapter's F.pad(x, (0, 4)) then stride-2 conv */
    NN("conv1d_pad", VT_FAMILY_CONV, conv1d_pad, 3),
    NN("conv2d", VT_FAMILY_CONV, conv2d, 3),
    NN("conv2d_s2", VT_FAMILY_CONV, conv2d_s2, 2),
    /* stride 3, padding 1, output_padding 2, bias */
    NN("conv_transpose1d", VT_FAMILY_CONV, convt, 3),
    NN("conv_transpose1d_plain", VT_FAMILY_CONV, convt_plain, 2),
    /* VITA's InternViT pixel_shuffle(x, 0.5) on a non-square map, so the order is pinned */
    NN("pixel_shuffle", OT_CORE, pixel_shuffle, 1), /* a strided copy: core kernels */

    /* fused attention against PyTorch's plain formula (gen_attn_loss_fixtures.py) */
    ATTN("bidir", A_BIDIR, ""),
    ATTN("causal_gqa", A_CAUSAL, ""),
    ATTN("causal_cross", A_CAUSAL, ""),
    ATTN("padding", A_PADDING, " lengths"),
    ATTN("chunk", A_CHUNK, ""),
    ATTN("chunk_full_left", A_CHUNK_FULL, ""),
    ATTN("prefix", A_PREFIX, ""),
    ATTN("prefix_per_sample", A_PREFIX_PS, " lengths prefix_lengths"),
    ATTN("bias_heads", A_BIAS_HEADS, " lengths bias:dbias"),
    ATTN("bias_shared", A_BIAS, " bias:dbias"),
    ATTN("bias_batch", A_BIAS_BATCH, " bias:dbias"),
    ATTN("dk_ne_dv", A_DK_NE_DV, ""),
    ATTN("segments_causal", A_SEG_CAUSAL, " lengths segments"),
    ATTN("segments_bidir", A_SEG_BIDIR, " segments"),
    ATTN("tiles", A_TILES, " lengths"),

    /* losses against PyTorch (gen_attn_loss_fixtures.py); the chunking and label-shift
     * variants of the LM loss are in test_ops_loss.c, and so is the check of the VQ loss's
     * stop-gradients (finite differences of its value do not apply) */
    LOSS("lm_mean", lm_ce, &L_MEAN, "lm.hidden:dhidden lm.weight:dweight lm.labels"),
    LOSS("lm_sum", lm_ce, &L_SUM, "lm.hidden:dhidden lm.weight:dweight lm.labels"),
    LOSS("wce_mean", wce, &L_MEAN, "wce.logits:dlogits wce.target wce.weight"),
    LOSS("wce_sum", wce, &L_SUM, "wce.logits:dlogits wce.target wce.weight"),
    LOSS("speech", speech_ce, NULL, "logits:dlogits target"),
    LOSS("ctc_mean", ctc, &L_CTC_MEAN, "logits:dlogits targets il tl"),
    LOSS("ctc_sum", ctc, &L_CTC_SUM, "logits:dlogits targets il tl"),
    LOSS("ctc_blank4", ctc, &L_CTC_BLANK4, "logits:dlogits targets il tl"),
    LOSS("ctc_zero_inf", ctc, &L_CTC_ZERO_INF, "logits:dlogits targets il tl"),
    LOSS("l1_mean", l1, &L_MEAN, "dist.a:da dist.b:db"),
    LOSS("l1_sum", l1, &L_SUM, "dist.a:da dist.b:db"),
    LOSS("mse_mean", mse, &L_MEAN, "dist.a:da dist.b:db"),
    LOSS("mse_sum", mse, &L_SUM, "dist.a:da dist.b:db"),
    LOSS("cos", cosine, NULL, "a:da b:db"),
    LOSS_NOFD("cos_small", cosine, NULL, "a:da b:db"),
    LOSS_NOFD("vq", vq_loss, NULL, "zq:dzq x:dx"),

    /* spectral family: against a direct DFT in test_codec_spectral.c; here by finite
     * differences and across backends */
    RND_FAM("stft window", VT_FAMILY_SPECTRAL, stft_window, 16, 2, NULL,
            {F(2, 2, 40), FN(0.2f, 1.0f, 1, 16)}),
    RND_FAM("stft gapped", VT_FAMILY_SPECTRAL, stft_gapped, 8, 1, NULL, {F(2, 3, 50)}),
    RND_FAM("complex_abs", VT_FAMILY_SPECTRAL, complex_abs, 2, 1, NULL, {F(3, 3, 5, 2)}),
    RND_FAM("log_clamp", VT_FAMILY_SPECTRAL, log_clamp, 1, 1, plant_clamp,
            {FR(0.05f, 2.0f, 2, 4, 10)}),

    /* Random cases shaped to reach every kernel path of a device (warp, block and thread
     * variants, chunked broadcast gradients, repeated indices). matmul: the four transpose
     * combinations, batched, and B shared by the batch (folded into one GEMM when A is not
     * transposed; else B's gradient accumulates with C stride 0) */
    RND("matmul nn", mm_nn, 24, 2, {F(3, 3, 17, 24), F(3, 3, 24, 19)}),
    RND("matmul nt", mm_nt, 24, 2, {F(3, 3, 17, 24), F(3, 3, 19, 24)}),
    RND("matmul tn", mm_tn, 24, 2, {F(3, 3, 24, 17), F(3, 3, 24, 19)}),
    RND("matmul tt", mm_tt, 24, 2, {F(3, 3, 24, 17), F(3, 3, 19, 24)}),
    RND("matmul 2d", mm_nn, 65, 2, {F(2, 65, 64), F(2, 64, 33)}),
    RND("matmul shared b", mm_nn, 102, 2, {F(4, 2, 3, 17, 24), F(2, 24, 19)}),
    RND("matmul shared b nt", mm_nt, 34, 2, {F(3, 2, 17, 24), F(2, 19, 24)}),
    RND("matmul shared b tn", mm_tn, 68, 2, {F(3, 4, 24, 17), F(2, 24, 19)}),
    RND("matmul shared b tt", mm_tt, 68, 2, {F(3, 4, 24, 17), F(2, 19, 24)}),
    RND("matmul small", mm_nt, 5, 2, {F(3, 2, 3, 5), F(3, 2, 4, 5)}),
    /* vt_linear: the bias fused into the GEMM (gemm_epilogue), batch folded into m */
    RND("linear", linear, 34, 3, {F(3, 2, 17, 24), F(2, 19, 24), F(1, 19)}),
    RND("linear wide", linear, 70, 3, {F(2, 70, 64), F(2, 130, 64), F(1, 130)}),
    /* binary ops with broadcasting; the gradient of the broadcast operand takes each path */
    RND("add same", add, 1, 2, {F(2, 70, 130), F(2, 70, 130)}),
    RND("add bias", add, 8, 2, {F(2, 8, 9000), F(1, 9000)}),
    RND("add small bias", add, 20, 2, {F(3, 4, 5, 6), F(1, 6)}),
    RND("sub both", sub, 5, 2, {F(3, 2, 3, 1), F(2, 3, 5)}),
    RND("mul cross", mul, 231, 2, {F(3, 7, 1, 33), F(3, 1, 9, 1)}),
    RND("mul scalar", mul, 6000, 2, {F(2, 60, 100), F(1, 1)}),
    RND("mul column", mul, 4, 2, {F(2, 3000, 4), F(2, 3000, 1)}),
    RND("mul long column", mul, 5000, 2, {F(2, 3, 5000), F(2, 3, 1)}),
    RND("div", dvd, 6, 2, {F(3, 4, 5, 6), FR(0.5f, 2.0f, 3, 4, 5, 1)}),
    /* divisors near zero: compared across backends only */
    RND_NOFD("div rows", dvd, 4, 2, {FR(0.5f, 2.0f, 2, 4, 7), F(1, 7)}),
    RND("scale", scale_m175, 1, 1, {F(2, 33, 31)}),
    /* activations */
    RND("gelu_tanh", gelu_tanh, 1, 1, {FR(-5, 5, 1, 2000)}),
    RND("gelu_erf", gelu_erf, 1, 1, {FR(-5, 5, 1, 2000)}),
    RND("silu", silu, 1, 1, {FR(-20, 20, 1, 2000)}),
    RND("relu", relu, 1, 1, {F(1, 2000)}),
    RND("leaky_relu", leaky, 1, 1, {F(1, 2000)}),
    RND("tanh", tanh_, 1, 1, {FR(-6, 6, 1, 2000)}),
    RND("sigmoid", sigmoid, 1, 1, {FR(-20, 20, 1, 2000)}),
    RND("tanh small", tanh_, 1, 1, {FR(-3, 3, 2, 7, 9)}),
    RND("sigmoid small", sigmoid, 1, 1, {FR(-6, 6, 2, 7, 9)}),
    RND("leaky_relu small", leaky, 1, 1, {F(2, 7, 9)}),
    /* reductions: block (rows, few outputs) and thread (many outputs) kernels */
    RND("sum all", sum_all, 100000, 1, {F(2, 200, 500)}),
    RND("sum axis 0", sum_0, 50, 1, {F(2, 50, 10000)}),
    RND("sum axis 1 keepdim", sum_1k, 7, 1, {F(3, 6, 7, 8)}),
    RND("sum last", sum_last, 5000, 1, {F(2, 3, 5000)}),
    RND("mean all", mean_all, 336, 1, {F(3, 6, 7, 8)}),
    RND("mean axis 0", mean_0k, 3000, 1, {F(2, 3000, 3)}),
    RND("mean axis 1", mean_1, 300, 1, {F(3, 64, 300, 40)}),
    RND_NOFD("max all", max_all, 1, 1, {FQ(2, 100, 300)}),
    RND_NOFD("max axis 0", max_0, 1, 1, {FQ(2, 50, 10000)}),
    RND_NOFD("max axis 1 ties", max_1k, 1, 1, {FQ(3, 2, 9000, 3)}),
    RND_NOFD("max axis 1 threads", max_1k, 1, 1, {FQ(3, 2, 30, 9000)}),
    RND_P("max nan ties", max_last, 1, 1, plant_max, {F(2, 4, 40)}),
    /* softmax: a warp per row, a block per row, masked rows */
    RND("softmax", softmax, 37, 1, {FR(-4, 4, 2, 5, 37)}),
    RND("softmax long", softmax, 3000, 1, {FR(-4, 4, 2, 3, 3000)}),
    RND_P("softmax masked", softmax, 10, 1, plant_softmax, {FR(-4, 4, 2, 4, 10)}),
    RND("log_softmax", log_softmax, 37, 1, {FR(-4, 4, 3, 2, 5, 37)}),
    RND("log_softmax long", log_softmax, 3000, 1, {FR(-4, 4, 2, 3, 3000)}),
    RND_P("log_softmax masked", log_softmax, 10, 1, plant_softmax, {FR(-4, 4, 2, 4, 10)}),
    /* shape ops */
    RND("reshape", reshape, 1, 1, {F(2, 4, 6)}),
    RND("permute", permute_3102, 1, 1, {F(4, 2, 3, 4, 5)}),
    RND("transpose", transpose, 1, 1, {F(3, 6, 7, 8)}),
    RND("concat", concat3_1, 1, 3, {F(3, 2, 3, 4), F(3, 2, 5, 4), F(3, 2, 1, 4)}),
    RND("slice", slice_127, 1, 1, {F(3, 4, 10, 3)}),
    /* gather / scatter: repeated indices add into one row (in position order) */
    RND("index_select", index_select_1, 9, 2, {F(3, 5, 7, 3), I32(0, 7, 1, 9)}),
    RND_P("index_copy", index_copy_1, 1, 3, plant_unique,
          {F(3, 5, 7, 3), I32(0, 7, 1, 3), F(3, 5, 3, 3)}),
    RND("index_add", index_add_0, 10, 3, {F(2, 6, 4), I32(0, 6, 1, 10), F(2, 10, 4)}),
    RND("embedding", embedding, 21, 2, {F(2, 50, 16), I32(0, 50, 2, 3, 7)}),
    /* casts: shared conversion code, so bit-exact; edge values planted */
    RND("cast f32", cast_f32, 1, 1, {F(1, 100)}),
    RND_P("cast bf16", cast_bf16, 1, 1, plant_convert, {FN(-1000, 1000, 1, 300)}),
    RND_P("cast f16", cast_f16, 1, 1, plant_convert, {FN(-1000, 1000, 1, 300)}),
    RND("cast i32", cast_i32, 1, 1, {FN(-1000, 1000, 1, 300)}),
    RND("cast i64", cast_i64, 1, 1, {FN(-1000, 1000, 1, 300)}),
    RND_P("cast bf16 f32", cast_bf16_f32, 1, 1, plant_convert, {FN(-1000, 1000, 1, 300)}),
    RND_P("cast f16 f32", cast_f16_f32, 1, 1, plant_convert, {FN(-1000, 1000, 1, 300)}),
    RND("cast i32 f32", cast_f32, 1, 1, {I32(-70000, 70000, 1, 300)}),
    RND("cast i32 i64", cast_i64, 1, 1, {I32(-70000, 70000, 1, 300)}),
    RND("cast i64 i32", cast_i32, 1, 1, {I64(-70000, 70000, 1, 300)}),
    /* 2- and 8-byte strided copies */
    RND("permute bf16", permute_bf16, 1, 1, {FN(-4, 4, 3, 3, 4, 5)}),
    RND("slice transpose i64", slice_i64, 1, 1, {FN(-100, 100, 2, 4, 7)}),
    RND("concat i32", concat2_0, 1, 2, {I32(-9, 9, 2, 2, 3), I32(-9, 9, 2, 4, 3)}),
    /* a small network end to end */
    RND("mlp", mlp, 64, 4, {F(3, 2, 9, 32), F(2, 32, 64), F(1, 64), F(2, 10, 64)}),
    /* (appended: a random case's seed is its row index, so new rows go last) attention from
     * the packed projection with RoPE (gen_attn_loss_fixtures.py): shared and per-sample
     * positions, GQA, segments and padding, and no RoPE */
    QKV("qkv_causal_gqa", Q_CAUSAL_GQA, ""),
    QKV("qkv_segments", Q_SEGMENTS, " lengths segments"),
    QKV("qkv_plain", Q_PLAIN, ""),
    {.name = "swiglu",
     .family = OT_CORE,
     .fn = swiglu,
     .fixture = "ops/fused.txt",
     .tol = T_CORE,
     .n_in = 1},
    /* odd rows and a width past the vector lanes, checked across backends and by differences */
    RND("swiglu rows", swiglu, 1, 1, {FR(-6, 6, 3, 3, 5, 38)}),
};

#define OT_N_CASES ((int)(sizeof OT_CASES / sizeof OT_CASES[0]))

#endif
