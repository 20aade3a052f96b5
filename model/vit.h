/* vit: the InternViT-300M-448px vision tower and VITA's mlp2x_gelu adapter (DESIGN.md §4), from
 * the model/ blocks. The tower: patch embedding (Conv2d(3, hidden, p, stride p) done as one
 * GEMM over the patches), a class token, learned position embeddings (resized bicubically,
 * align_corners false, when the grid differs from the pretrained one), pre-norm nn_layers with
 * layer scale and a linear drop-path schedule, no final norm. Features: the last hidden state
 * without CLS, times 0.5, pixel-shuffled 2x2 -> [N, P / 4, 4 hidden]. The adapter:
 * Linear(4 hidden -> llm), GELU (erf), Linear(llm -> llm), named "0" and "2" under its prefix. */
#ifndef VT_VIT_H
#define VT_VIT_H

#include "autograd/vt.h"
#include "model/nn_layer.h"

typedef struct {
  int64_t image_size, patch_size; /* 448, 14: the grid of the position table (32 x 32) */
  int64_t hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
  double layer_norm_eps;     /* 1e-6 */
  double drop_path_rate;     /* 0.1; layer l gets rate * l / (layers - 1) */
  double initializer_range;  /* 0.02 (matrices, class and position embeddings) */
  double initializer_factor; /* 0.1: ls1 / ls2 start at this value */
  int64_t downsample;        /* 2: pixel shuffle of 2x2 patches (scale 0.5) */
  float feature_scale;       /* 0.5: features are multiplied by it before the shuffle */
  bool recompute;            /* recompute each layer's activations in backward */
} vit_cfg;

typedef struct {
  vit_cfg cfg;
  const vt_params *ps;
  vt_tensor *cls;     /* embeddings.class_embedding [1, 1, hidden] */
  vt_tensor *pos;     /* embeddings.position_embedding [1, 1 + g * g, hidden] */
  vt_tensor *patch_w; /* embeddings.patch_embedding.weight [hidden, 3, p, p] */
  vt_tensor *patch_b; /* embeddings.patch_embedding.bias [hidden] */
  nn_layer *layers;   /* encoder.layers.N */
} vit;

/* InternViT-300M-448px. */
vit_cfg vit_cfg_300m(void);
/* Checks sizes; 0, or -1 with a message naming the field. */
int vit_cfg_check(const vit_cfg *c, char *err, size_t err_len);
int64_t vit_param_count(const vit_cfg *c);

/* Registers the tower's parameters under prefix ("" for the HF InternViT names,
 * "model.vision_tower.vision_tower" in VITA). Returns 0, or -1 with err; vit_free is safe
 * after a failure. */
int vit_init(vit *m, vt_params *ps, const vit_cfg *cfg, const char *prefix, char *err,
             size_t err_len);
void vit_free(vit *m);
/* normal(0, initializer_range) for matrices and the class / position tables, zero biases,
 * unit norms, ls = initializer_factor. */
void vit_init_weights(vit *m, vt_rng *rng);

/* The last hidden state [N, 1 + gh * gw, hidden] of pixels [N, 3, gh * p, gw * p] (normalised
 * tiles). f: training mode (drop path) and its rng; NULL: eval. */
vt_tensor *vit_hidden(const vit *m, vt_ctx *ctx, vt_tensor *pixels, const nn_fwd *f);
/* Features of a last hidden state of a gh x gw grid: CLS dropped, times feature_scale, pixel
 * shuffled -> [N, (gh / 2) * (gw / 2), 4 hidden]. */
vt_tensor *vit_features(const vit *m, vt_ctx *ctx, vt_tensor *hidden, int64_t gh, int64_t gw);
/* The shuffle alone: x [N, gh * gw, C] (row-major patches) -> [N, (gh / 2) * (gw / 2), 4 C],
 * token Y * (gw / 2) + X holding channels (y % 2) * 2C + (x % 2) * C + c of patch (y, x). */
vt_tensor *vit_pixel_shuffle(vt_ctx *ctx, vt_tensor *x, int64_t gh, int64_t gw);
/* The position table for a gh x gw grid: [1 + gh * gw, hidden], the patch part resized
 * bicubically (PyTorch's F.interpolate, a = -0.75, align_corners false) when the grid is not
 * the table's. */
vt_tensor *vit_pos_embed(const vit *m, vt_ctx *ctx, int64_t gh, int64_t gw);

/* mlp2x_gelu: model.mm_projector.{0,2} in VITA. */
typedef struct {
  nn_linear fc1, fc2;
  const vt_params *ps;
} vit_adapter;

int vit_adapter_init(vit_adapter *a, vt_params *ps, const char *prefix, int64_t in, int64_t out,
                     char *err, size_t err_len);
int64_t vit_adapter_param_count(int64_t in, int64_t out);
void vit_adapter_init_weights(vit_adapter *a, vt_rng *rng, float std);
/* x [..., in] -> [..., out]. */
vt_tensor *vit_adapter_forward(const vit_adapter *a, vt_ctx *ctx, vt_tensor *x);

#endif
