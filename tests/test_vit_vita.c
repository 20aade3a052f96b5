// ctest-labels: unit grad
/* The VITA model's vision path through the model interface: the parameters under the release
 * names, the loss of a batch with image tiles equal to splicing the adapter outputs into the
 * embeddings by hand on the host, the tokens under a span not mattering, gradients reaching the
 * tower and the adapter, and a batch without images recording exactly the tape of Qwen2 alone
 * (no vision work), with no gradient in the vision parameters. */
#include <stdlib.h>
#include <string.h>

#include "model/qwen2_model.h"
#include "model/vita_model.h"
#include "tests/testutil.h"

static const char *config =
    "{\"model_type\": \"vita-Qwen2\", \"vocab_size\": 64, \"hidden_size\": 24, "
    "\"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
    "\"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, "
    "\"mm_projector_type\": \"mlp2x_gelu\", \"mm_hidden_size\": 128, "
    "\"vision_config\": {\"image_size\": 56, \"patch_size\": 14, \"hidden_size\": 32, "
    "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2}}";

enum { B = 2, T = 20, PER = 4, N_TILES = 3 };
static const int32_t spans[N_TILES * 3] = {0, 3, PER, 1, 2, PER, 1, 8, PER};

static bool in_span(int r, int t) {
  for (int i = 0; i < N_TILES; i++)
    if (spans[i * 3] == r && t >= spans[i * 3 + 1] && t < spans[i * 3 + 1] + PER) return true;
  return false;
}

typedef struct {
  int32_t tokens[B * T], labels[B * T];
  float *px;
  int64_t label_tokens;
} batch_host;

static void make_host(batch_host *h, vt_rng *rng) {
  h->px = malloc(sizeof(float) * N_TILES * 3 * 56 * 56);
  vt_test_fill_uniform(rng, h->px, N_TILES * 3 * 56 * 56, -2, 2);
  h->label_tokens = 0;
  for (int r = 0; r < B; r++)
    for (int t = 0; t < T; t++) {
      h->tokens[r * T + t] = in_span(r, t) ? 0 : (r * 7 + t * 3) % 64;
      bool lab = !in_span(r, t) && t > 12;
      h->labels[r * T + t] = lab ? (r * 5 + t) % 64 : VT_IGNORE_INDEX;
      h->label_tokens += lab && t > 0;
    }
}

static vt_batch to_batch(vt_ctx *ctx, const batch_host *h, bool images) {
  vt_batch b = {.rows = B, .len = T, .label_tokens = h->label_tokens, .samples = B};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, h->tokens);
  b.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, h->labels);
  if (images) {
    b.media[0] = (vt_media){VT_MEDIA_IMAGE, N_TILES,
                            vt_from_host(ctx, VT_F32, 4, (int64_t[]){N_TILES, 3, 56, 56}, h->px),
                            NULL, vt_from_host(ctx, VT_I32, 2, (int64_t[]){N_TILES, 3}, spans)};
    b.n_media = 1;
  }
  return b;
}

static float loss_of(vt_model *m, vt_ctx *ctx, const vt_batch *b) {
  vt_model_loss out = {0};
  vt_model_step st = {0};
  CHECK_MSG(m->ops->loss(m, ctx, b, &st, &out) == 0, "%s", vt_ctx_error(ctx));
  return vt_ctx_failed(ctx) ? NAN : vt_item(ctx, out.terms[0].sum);
}

/* The loss with the tiles' adapter outputs written into the embeddings on the host. */
static float by_hand(vt_model *m, vt_ctx *ctx, const batch_host *h) {
  vita_vision v = vita_model_vision(m);
  vt_tensor *px = vt_from_host(ctx, VT_F32, 4, (int64_t[]){N_TILES, 3, 56, 56}, h->px);
  vt_tensor *tok = vit_adapter_forward(
      v.adapter, ctx, vit_features(v.tower, ctx, vit_hidden(v.tower, ctx, px, NULL), 4, 4));
  float vis[N_TILES * PER * 24], emb[B * T * 24];
  vt_to_host(ctx, tok, vis);
  /* the LLM's embedding table and head are the parameters named so */
  vt_params *ps = (vt_params *)v.tower->ps;
  vt_tensor *table = &vt_params_find(ps, "model.embed_tokens.weight")->t;
  vt_tensor *head = &vt_params_find(ps, "lm_head.weight")->t;
  float *tab = malloc(sizeof(float) * 64 * 24);
  vt_to_host(ctx, table, tab);
  for (int i = 0; i < B * T; i++) memcpy(emb + i * 24, tab + h->tokens[i] * 24, 24 * sizeof(float));
  for (int i = 0; i < N_TILES; i++)
    for (int k = 0; k < PER; k++)
      memcpy(emb + (spans[i * 3] * T + spans[i * 3 + 1] + k) * 24, vis + (i * PER + k) * 24,
             24 * sizeof(float));
  free(tab);
  /* the decoder of a qwen2 built over the same store's LLM parameters */
  qwen2 q;
  qwen2_cfg qc;
  char err[256];
  json_t *cj = json_loads(config, 0, NULL);
  CHECK(qwen2_cfg_from_json(cj, "test", &qc, err, sizeof err) == 0);
  json_decref(cj);
  vt_params tmp;
  vt_params_init(&tmp, (vt_device){VT_DEV_CPU, 0});
  CHECK(qwen2_init(&q, &tmp, &qc, err, sizeof err) == 0);
  CHECK(vt_params_alloc(&tmp, err, sizeof err) == 0);
  for (int i = 0; i < tmp.n; i++) {
    vt_param *src = vt_params_find(ps, tmp.items[i]->name);
    CHECK(src != NULL);
    if (src) memcpy(tmp.items[i]->t.data, src->t.data, vt_nbytes(&src->t));
  }
  vt_tensor *hid =
      qwen2_forward(&q, ctx, vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, 24}, emb), NULL);
  vt_lm_ce_opts o = {0};
  vt_tensor *lab = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, h->labels);
  float l = vt_item(ctx, vt_lm_cross_entropy(ctx, hid, head, lab, &o)) * (float)h->label_tokens;
  (void)head;
  qwen2_free(&q);
  vt_params_free(&tmp);
  return l;
}

int main(void) {
  char err[1024];
  json_t *cj = json_loads(config, 0, NULL);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts opts = {0};
  vt_model *m = vt_model_create(NULL, cj, "test config", &opts, &ps, err, sizeof err);
  CHECK_MSG(m && !strcmp(m->ops->name, "vita"), "%s", err);
  if (!m) return vt_test_finish("test_vit_vita");
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 7);
  CHECK(m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0);
  /* give the tower and adapter some scale: the default 0.02 makes every tile look alike */
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    if (strncmp(p->name, "model.vision_tower", 18) && strncmp(p->name, "model.mm_projector", 18))
      continue;
    float *x = p->t.data;
    for (int64_t k = 0; k < vt_numel(&p->t); k++) x[k] += 0.2f * (vt_rng_uniform(&rng) - 0.5f);
  }
  CHECK(vt_params_find(&ps, "model.vision_tower.vision_tower.embeddings.class_embedding"));
  CHECK(vt_params_find(&ps, "model.vision_tower.vision_tower.encoder.layers.1.attn.qkv.weight"));
  CHECK(vt_params_find(&ps, "model.mm_projector.2.bias"));
  vit_cfg vc;
  qwen2_cfg qc;
  CHECK(vit_cfg_from_json(json_object_get(cj, "vision_config"), "t", &vc, err, sizeof err) == 0);
  CHECK(qwen2_cfg_from_json(cj, "t", &qc, err, sizeof err) == 0);
  CHECK((int64_t)vt_params_count(&ps, false) ==
        qwen2_param_count(&qc) + vit_param_count(&vc) + vit_adapter_param_count(128, 24));

  batch_host h;
  make_host(&h, &rng);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  vt_batch b = to_batch(ctx, &h, true);
  float l = loss_of(m, ctx, &b);
  float want = by_hand(m, ctx, &h);
  printf("loss with 3 tiles: %.7g, spliced by hand: %.7g\n", l, want);
  CHECK_MSG(fabsf(l - want) <= 1e-5f * fabsf(want), "%.8g vs %.8g", l, want);
  /* the token ids under a span are replaced: they do not matter; a pixel does */
  batch_host h2 = h;
  for (int i = 0; i < B * T; i++)
    if (in_span(i / T, i % T)) h2.tokens[i] = 33;
  b = to_batch(ctx, &h2, true);
  CHECK(loss_of(m, ctx, &b) == l);
  h2.px[5] += 1.0f;
  b = to_batch(ctx, &h2, true);
  CHECK(loss_of(m, ctx, &b) != l);
  h2.px[5] -= 1.0f;
  vt_ctx_reset(ctx);

  /* gradients reach the tower and the adapter */
  vt_set_grad_enabled(ctx, true);
  vt_params_zero_grad(&ps);
  b = to_batch(ctx, &h, true);
  vt_model_loss out = {0};
  vt_model_step st = {0};
  CHECK(m->ops->loss(m, ctx, &b, &st, &out) == 0);
  CHECK_MSG(vt_backward(ctx, out.terms[0].sum), "%s", vt_ctx_error(ctx));
  const char *const reached[] = {
      "model.vision_tower.vision_tower.embeddings.patch_embedding.weight",
      "model.vision_tower.vision_tower.encoder.layers.0.ls1", "model.mm_projector.0.weight",
      "model.mm_projector.2.bias"};
  for (int k = 0; k < 4; k++) {
    vt_param *p = vt_params_find(&ps, reached[k]);
    float *g = malloc(sizeof(float) * (size_t)vt_numel(&p->t));
    vt_grad_to_host(ctx, &p->t, g);
    double s = 0;
    for (int64_t i = 0; i < vt_numel(&p->t); i++) s += fabs(g[i]);
    CHECK_MSG(s > 0, "no gradient in %s", reached[k]);
    free(g);
  }
  vt_ctx_reset(ctx);

  /* no images: the tape of Qwen2 alone, and no vision gradient */
  vt_params_zero_grad(&ps);
  b = to_batch(ctx, &h, false);
  int64_t before = vt_tape_len(ctx);
  CHECK(m->ops->loss(m, ctx, &b, &st, &out) == 0);
  int64_t vita_tape = vt_tape_len(ctx) - before;
  CHECK(vt_backward(ctx, out.terms[0].sum));
  for (int i = 0; i < ps.n; i++) {
    vt_param *p = ps.items[i];
    if (strncmp(p->name, "model.vision_tower", 18) && strncmp(p->name, "model.mm_projector", 18))
      continue;
    float *g = malloc(sizeof(float) * (size_t)vt_numel(&p->t));
    vt_grad_to_host(ctx, &p->t, g);
    int64_t nz = 0;
    for (int64_t k = 0; k < vt_numel(&p->t); k++) nz += g[k] != 0;
    CHECK_MSG(nz == 0, "%s has a gradient without images", p->name);
    free(g);
  }
  vt_ctx_reset(ctx);
  json_t *qj = json_deep_copy(cj);
  json_object_set_new(qj, "model_type", json_string("qwen2"));
  vt_params qps;
  vt_params_init(&qps, (vt_device){VT_DEV_CPU, 0});
  vt_model *qm = vt_model_create(&qwen2_model_ops, qj, "qwen2", &opts, &qps, err, sizeof err);
  CHECK_MSG(qm && vt_params_alloc(&qps, err, sizeof err) == 0, "%s", err);
  b = to_batch(ctx, &h, false);
  before = vt_tape_len(ctx);
  CHECK(qm->ops->loss(qm, ctx, &b, &st, &out) == 0);
  int64_t qwen_tape = vt_tape_len(ctx) - before;
  printf("tape without images: vita %lld ops, qwen2 %lld ops\n", (long long)vita_tape,
         (long long)qwen_tape);
  CHECK(vita_tape == qwen_tape && vita_tape > 0);
  vt_ctx_reset(ctx);

  /* a span that does not fit is an error naming it, not a write out of bounds */
  int32_t bad[3] = {1, 18, PER};
  b = to_batch(ctx, &h, true);
  b.media[0].n = 1;
  b.media[0].data = vt_slice(ctx, b.media[0].data, 0, 0, 1);
  b.media[0].spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, 3}, bad);
  CHECK(m->ops->loss(m, ctx, &b, &st, &out) == -1 &&
        strstr(vt_ctx_error(ctx), "outside the batch"));

  vt_model_destroy(qm);
  vt_params_free(&qps);
  json_decref(qj);
  vt_ctx_free(ctx);
  free(h.px);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cj);
  return vt_test_finish("test_vit_vita");
}
