/* InternViT tower and mlp2x_gelu adapter from the model/ blocks; see vit.h. */
#include "model/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

vit_cfg vit_cfg_300m(void) {
  return (vit_cfg){.image_size = 448,
                   .patch_size = 14,
                   .hidden_size = 1024,
                   .intermediate_size = 4096,
                   .num_hidden_layers = 24,
                   .num_attention_heads = 16,
                   .layer_norm_eps = 1e-6,
                   .drop_path_rate = 0.1,
                   .initializer_range = 0.02,
                   .initializer_factor = 0.1,
                   .downsample = 2,
                   .feature_scale = 0.5f};
}

int vit_cfg_check(const vit_cfg *c, char *err, size_t err_len) {
  const struct {
    const char *name;
    int64_t v;
  } pos[] = {{"image_size", c->image_size},
             {"patch_size", c->patch_size},
             {"hidden_size", c->hidden_size},
             {"intermediate_size", c->intermediate_size},
             {"num_hidden_layers", c->num_hidden_layers},
             {"num_attention_heads", c->num_attention_heads}};
  for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
    if (pos[i].v <= 0) {
      snprintf(err, err_len, "vision config: %s must be positive, got %lld", pos[i].name,
               (long long)pos[i].v);
      return -1;
    }
  if (c->image_size % c->patch_size) {
    snprintf(err, err_len, "vision config: image_size %lld is not a multiple of patch_size %lld",
             (long long)c->image_size, (long long)c->patch_size);
    return -1;
  }
  if (c->hidden_size % c->num_attention_heads) {
    snprintf(err, err_len,
             "vision config: hidden_size %lld is not a multiple of num_attention_heads %lld",
             (long long)c->hidden_size, (long long)c->num_attention_heads);
    return -1;
  }
  if (c->downsample != 2) {
    snprintf(err, err_len, "vision config: downsample must be 2 (the 0.5 pixel shuffle), got %lld",
             (long long)c->downsample);
    return -1;
  }
  if (!(c->layer_norm_eps > 0) || c->drop_path_rate < 0 || c->drop_path_rate >= 1) {
    snprintf(err, err_len,
             "vision config: layer_norm_eps must be > 0 and drop_path_rate in [0, 1), got %g, %g",
             c->layer_norm_eps, c->drop_path_rate);
    return -1;
  }
  return 0;
}

int64_t vit_param_count(const vit_cfg *c) {
  int64_t h = c->hidden_size, f = c->intermediate_size, p = c->patch_size;
  int64_t g = c->image_size / p;
  int64_t embed = h + (1 + g * g) * h + h * 3 * p * p + h;
  int64_t layer = 4 * h                   /* norm1, norm2 (weight, bias) */
                  + h * 3 * h + 3 * h     /* qkv */
                  + h * h + h             /* proj */
                  + h * f + f + f * h + h /* fc1, fc2 */
                  + 2 * h;                /* ls1, ls2 */
  return embed + c->num_hidden_layers * layer;
}

int vit_init(vit *m, vt_params *ps, const vit_cfg *cfg, const char *prefix, char *err,
             size_t err_len) {
  *m = (vit){.cfg = *cfg, .ps = ps};
  if (vit_cfg_check(cfg, err, err_len)) return -1;
  int64_t h = cfg->hidden_size, p = cfg->patch_size, g = cfg->image_size / p;
  int64_t L = cfg->num_hidden_layers;
  m->layers = calloc((size_t)L, sizeof *m->layers);
  if (!m->layers) {
    snprintf(err, err_len, "vit: out of memory");
    return -1;
  }
  nn_reg r = nn_reg_make(ps, err, err_len);
  char pre[256];
  nn_name(&r, pre, sizeof pre, prefix, "embeddings", NULL);
  m->cls = nn_param(&r, pre, "class_embedding", NULL, 3, (int64_t[]){1, 1, h});
  m->patch_w = nn_param(&r, pre, "patch_embedding", "weight", 4, (int64_t[]){h, 3, p, p});
  m->patch_b = nn_param(&r, pre, "patch_embedding", "bias", 1, (int64_t[]){h});
  m->pos = nn_param(&r, pre, "position_embedding", NULL, 3, (int64_t[]){1, 1 + g * g, h});
  nn_layer_cfg lc = nn_layer_cfg_internvit(h, cfg->num_attention_heads, cfg->intermediate_size,
                                           cfg->layer_norm_eps);
  lc.recompute = cfg->recompute;
  for (int64_t l = 0; l < L && !nn_reg_failed(&r); l++) {
    /* torch.linspace(0, rate, L): layer 0 gets 0, the last the full rate */
    lc.drop_path = L > 1 ? (float)(cfg->drop_path_rate * (double)l / (double)(L - 1)) : 0.0f;
    char lp[256], idx[32];
    snprintf(idx, sizeof idx, "%lld", (long long)l);
    nn_name(&r, lp, sizeof lp, prefix, "encoder.layers", idx);
    nn_layer_init(&m->layers[l], &r, lp, &lc);
  }
  return nn_reg_failed(&r) ? -1 : 0;
}

void vit_free(vit *m) {
  free(m->layers);
  m->layers = NULL;
}

void vit_init_weights(vit *m, vt_rng *rng) {
  const vt_params *ps = m->ps;
  float s = (float)m->cfg.initializer_range, ls = (float)m->cfg.initializer_factor;
  nn_init_normal(ps, m->cls, rng, 0, s);
  nn_init_normal(ps, m->patch_w, rng, 0, s);
  nn_init_const(ps, m->patch_b, 0);
  nn_init_normal(ps, m->pos, rng, 0, s);
  for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++) {
    nn_layer *y = &m->layers[l];
    nn_linear *lin[] = {&y->attn.qkv, &y->attn.o, &y->mlp.fc1, &y->mlp.fc2};
    for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
      nn_init_normal(ps, lin[i]->w, rng, 0, s);
      nn_init_const(ps, lin[i]->b, 0);
    }
    nn_norm_init_weights(&y->norm1, ps);
    nn_norm_init_weights(&y->norm2, ps);
    nn_init_const(ps, y->ls1, ls);
    nn_init_const(ps, y->ls2, ls);
  }
}

/* PyTorch's bicubic weights for one output index (upsample_bicubic2d, align_corners false,
 * A = -0.75): source index floor(src) - 1 .. + 2, clamped to the input. */
static void cubic_row(int64_t out_i, int64_t in_n, int64_t out_n, float *row) {
  const double A = -0.75;
  double scale = (double)in_n / (double)out_n;
  double src = ((double)out_i + 0.5) * scale - 0.5; /* not clamped at 0: cubic */
  double f = floor(src), t = src - f;
  double w[4];
  double x1 = t + 1, x2 = 1 - t, x3 = 2 - t;
  w[0] = ((A * x1 - 5 * A) * x1 + 8 * A) * x1 - 4 * A;
  w[1] = ((A + 2) * t - (A + 3)) * t * t + 1;
  w[2] = ((A + 2) * x2 - (A + 3)) * x2 * x2 + 1;
  w[3] = ((A * x3 - 5 * A) * x3 + 8 * A) * x3 - 4 * A;
  for (int64_t j = 0; j < in_n; j++) row[j] = 0;
  for (int k = 0; k < 4; k++) {
    int64_t j = (int64_t)f - 1 + k;
    j = j < 0 ? 0 : j >= in_n ? in_n - 1 : j;
    row[j] += (float)w[k];
  }
}

/* The [out_n, in_n] matrix of 1-D bicubic resizing, in ctx's step (stack rows: no heap). */
static vt_tensor *cubic_matrix(vt_ctx *ctx, int64_t in_n, int64_t out_n) {
  vt_tensor *a = vt_new(ctx, VT_F32, 2, (int64_t[]){out_n, in_n});
  if (vt_ctx_failed(ctx)) return a;
  if (in_n > 4096)
    return vt_ctx_fail(ctx, "vit_pos_embed", "grid of %lld too large", (long long)in_n);
  float row[4096];
  for (int64_t i = 0; i < out_n; i++) {
    cubic_row(i, in_n, out_n, row);
    vt_write_host(ctx, a, i * in_n, in_n, row);
  }
  return a;
}

vt_tensor *vit_pos_embed(const vit *m, vt_ctx *ctx, int64_t gh, int64_t gw) {
  int64_t h = m->cfg.hidden_size, g = m->cfg.image_size / m->cfg.patch_size;
  vt_tensor *pos = vt_reshape(ctx, m->pos, 2, (int64_t[]){1 + g * g, h});
  if (gh == g && gw == g) return pos;
  vt_tensor *cls = vt_slice(ctx, pos, 0, 0, 1);
  vt_tensor *grid = vt_reshape(ctx, vt_slice(ctx, pos, 0, 1, 1 + g * g), 2, (int64_t[]){g, g * h});
  /* rows: Ah [gh, g] @ P [g, g * h]; columns: per row, P^T [h, g] @ Aw^T [g, gw] */
  vt_tensor *rows = vt_matmul(ctx, cubic_matrix(ctx, g, gh), grid, false, false);
  rows = vt_reshape(ctx, rows, 3, (int64_t[]){gh, g, h});
  vt_tensor *cols = vt_matmul(ctx, rows, cubic_matrix(ctx, g, gw), true, true); /* [gh, h, gw] */
  cols = vt_permute(ctx, cols, (const int[]){0, 2, 1});
  cols = vt_reshape(ctx, cols, 2, (int64_t[]){gh * gw, h});
  return vt_concat(ctx, (vt_tensor *const[]){cls, cols}, 2, 0);
}

vt_tensor *vit_hidden(const vit *m, vt_ctx *ctx, vt_tensor *px, const nn_fwd *f) {
  if (vt_ctx_failed(ctx)) return px;
  int64_t p = m->cfg.patch_size, h = m->cfg.hidden_size;
  if (px->ndim != 4 || px->shape[1] != 3 || px->shape[2] % p || px->shape[3] % p ||
      px->shape[2] < 2 * p || px->shape[3] < 2 * p) {
    char s[96];
    return vt_ctx_fail(ctx, "vit_hidden",
                       "pixels %s must be [N, 3, H, W] with H, W multiples of %lld",
                       vt_shape_str(px, s, sizeof s), (long long)p);
  }
  int64_t n = px->shape[0], gh = px->shape[2] / p, gw = px->shape[3] / p, np = gh * gw;
  /* the conv as a GEMM: patches [N, gh * gw, 3 * p * p] in the weight's (c, ky, kx) order */
  vt_tensor *x = vt_reshape(ctx, px, 5, (int64_t[]){n * 3, gh, p, gw, p});
  x = vt_permute(ctx, x, (const int[]){0, 1, 3, 2, 4});
  x = vt_reshape(ctx, x, 4, (int64_t[]){n, 3, np, p * p});
  x = vt_permute(ctx, x, (const int[]){0, 2, 1, 3});
  x = vt_reshape(ctx, x, 3, (int64_t[]){n, np, 3 * p * p});
  vt_tensor *w = vt_reshape(ctx, m->patch_w, 2, (int64_t[]){h, 3 * p * p});
  x = vt_add(ctx, vt_matmul(ctx, x, w, false, true), m->patch_b);
  /* [CLS, patches] + positions */
  vt_tensor *cls = vt_add(ctx, vt_zeros(ctx, VT_F32, 3, (int64_t[]){n, 1, h}),
                          vt_reshape(ctx, m->cls, 1, (int64_t[]){h}));
  x = vt_concat(ctx, (vt_tensor *const[]){cls, x}, 2, 1);
  x = vt_add(ctx, x, vit_pos_embed(m, ctx, gh, gw));
  nn_fwd plain = {0};
  for (int64_t l = 0; l < m->cfg.num_hidden_layers; l++)
    x = nn_layer_forward(&m->layers[l], ctx, x, f ? f : &plain);
  return x;
}

vt_tensor *vit_pixel_shuffle(vt_ctx *ctx, vt_tensor *x, int64_t gh, int64_t gw) {
  if (vt_ctx_failed(ctx)) return x;
  if (x->ndim != 3 || x->shape[1] != gh * gw || gh % 2 || gw % 2) {
    char s[96];
    return vt_ctx_fail(ctx, "vit_pixel_shuffle", "x %s must be [N, %lld x %lld (even), C]",
                       vt_shape_str(x, s, sizeof s), (long long)gh, (long long)gw);
  }
  int64_t n = x->shape[0], c = x->shape[2];
  /* patch (2Y + a, 2X + b): [N * gh/2, a, gw/2, (b, c)] -> [N * gh/2, X, a, (b, c)] */
  x = vt_reshape(ctx, x, 4, (int64_t[]){n * (gh / 2), 2, gw / 2, 2 * c});
  x = vt_permute(ctx, x, (const int[]){0, 2, 1, 3});
  return vt_reshape(ctx, x, 3, (int64_t[]){n, (gh / 2) * (gw / 2), 4 * c});
}

vt_tensor *vit_features(const vit *m, vt_ctx *ctx, vt_tensor *hidden, int64_t gh, int64_t gw) {
  if (vt_ctx_failed(ctx)) return hidden;
  vt_tensor *x = vt_slice(ctx, hidden, 1, 1, 1 + gh * gw);
  x = vt_scale(ctx, x, m->cfg.feature_scale);
  return vit_pixel_shuffle(ctx, x, gh, gw);
}

int vit_adapter_init(vit_adapter *a, vt_params *ps, const char *prefix, int64_t in, int64_t out,
                     char *err, size_t err_len) {
  *a = (vit_adapter){.ps = ps};
  if (in <= 0 || out <= 0) {
    snprintf(err, err_len, "vision adapter: sizes must be positive, got %lld -> %lld",
             (long long)in, (long long)out);
    return -1;
  }
  nn_reg r = nn_reg_make(ps, err, err_len);
  nn_linear_init(&a->fc1, &r, prefix, "0", in, out, true);
  nn_linear_init(&a->fc2, &r, prefix, "2", out, out, true);
  return nn_reg_failed(&r) ? -1 : 0;
}

int64_t vit_adapter_param_count(int64_t in, int64_t out) {
  return in * out + out + out * out + out;
}

void vit_adapter_init_weights(vit_adapter *a, vt_rng *rng, float std) {
  nn_init_normal(a->ps, a->fc1.w, rng, 0, std);
  nn_init_const(a->ps, a->fc1.b, 0);
  nn_init_normal(a->ps, a->fc2.w, rng, 0, std);
  nn_init_const(a->ps, a->fc2.b, 0);
}

vt_tensor *vit_adapter_forward(const vit_adapter *a, vt_ctx *ctx, vt_tensor *x) {
  x = nn_linear_forward(&a->fc1, ctx, x);
  return nn_linear_forward(&a->fc2, ctx, vt_gelu_erf(ctx, x));
}
