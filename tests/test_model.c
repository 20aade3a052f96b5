// ctest-labels: unit
/* The model interface on Qwen2 (model/model.h, model/qwen2_model.c) against HF transformers'
 * outputs for the tiny fixture (tests/reference/gen_qwen2_fixtures.py): the registry finds
 * it by name and by model_type; its "lm" term is the summed loss over the counted labels;
 * its eval metrics count every label and give the next-token accuracy of HF's logits; its config
 * round-trips; its weight initialisation (through the backend) draws exactly what
 * qwen2_init_weights draws. And frozen parts cost nothing in backward: with a frozen prefix
 * the tape records no op of the frozen modules. */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_params.h"
#include "model/qwen2_model.h"
#include "stages/stage_model.h"
#include "tests/testutil.h"

static const char *fixture(const char *name) {
  static char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/qwen2_tiny/%s", dir ? dir : "tests/fixtures", name);
  return path;
}

static void *read_ref(const st_file *f, const char *name, vt_dtype dtype, int64_t *numel) {
  const st_tensor *t = st_find(f, name);
  CHECK(t != NULL);
  void *buf = malloc((size_t)t->numel * 4);
  char err[256];
  CHECK_MSG(st_tensor_read(t, dtype, buf, (size_t)t->numel * 4, err, sizeof err) == 0, "%s", err);
  *numel = t->numel;
  return buf;
}

typedef struct {
  vt_params ps;
  vt_model *m;
} built;

static void build(built *b, const vt_model_opts *opts) {
  char err[1024];
  CHECK(vt_params_init(&b->ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  b->m = stage_model_open(NULL, fixture("config.json"), opts, &b->ps, err, sizeof err);
  CHECK_MSG(b->m != NULL, "%s", err);
  CHECK(vt_params_alloc(&b->ps, err, sizeof err) == 0);
  CHECK_MSG(st_load_params_path(&b->ps, fixture("model.safetensors"), 0, err, sizeof err) == 0,
            "%s", err);
}

static void unbuild(built *b) {
  vt_model_destroy(b->m);
  vt_params_free(&b->ps);
}

/* Tape length of the loss forward with the parameters matching `frozen` frozen. */
static int64_t tape_with_frozen(const char *const *frozen, int n, int64_t *grads) {
  built b;
  build(&b, NULL);
  char err[256];
  for (int i = 0; i < n; i++) CHECK(vt_params_set_trainable(&b.ps, frozen[i], false) > 0);
  CHECK(vt_params_alloc_grads(&b.ps, err, sizeof err) == 0);
  *grads = (int64_t)b.ps.grad_numel;
  vt_ctx *ctx = vt_test_cpu_ctx();
  int32_t ids[2 * 12], labels[2 * 12];
  for (int i = 0; i < 24; i++) ids[i] = labels[i] = (i * 7) % 96;
  vt_batch batch = {.rows = 2, .len = 12, .label_tokens = 22, .samples = 2};
  batch.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 12}, ids);
  batch.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 12}, labels);
  vt_model_loss out;
  vt_model_step st = {.train = true};
  CHECK(b.m->ops->loss(b.m, ctx, &batch, &st, &out) == 0);
  int64_t n_ops = vt_tape_len(ctx);
  CHECK(vt_backward(ctx, out.terms[0].sum)); /* and backward runs over what was recorded */
  vt_ctx_free(ctx);
  unbuild(&b);
  return n_ops;
}

int main(void) {
  char err[1024];
  /* the registry */
  CHECK(vt_model_find("qwen2") == &qwen2_model_ops && vt_model_find("llama") == NULL);
  json_t *j = json_pack("{s:s}", "model_type", "vita-Qwen2");
  /* VITA's release config is the omni model (model/vita_model.h), which holds a Qwen2 */
  CHECK(vt_model_for_config(j, "x.json", err, sizeof err) == vt_model_find("vita"));
  json_object_set_new(j, "model_type", json_string("qwen2"));
  CHECK(vt_model_for_config(j, "x.json", err, sizeof err) == &qwen2_model_ops);
  json_object_set_new(j, "model_type", json_string("bert"));
  CHECK(vt_model_for_config(j, "x.json", err, sizeof err) == NULL);
  CHECK_MSG(strstr(err, "x.json") && strstr(err, "\"bert\"") && strstr(err, "qwen2"), "%s", err);
  json_decref(j);

  /* loss and eval metrics of the HF batch */
  built b;
  build(&b, NULL);
  CHECK(b.m->n_phases == 1 && b.m->n_terms == 1 && !strcmp(b.m->terms[0].name, "lm"));
  st_file ref;
  CHECK_MSG(st_file_open(&ref, fixture("reference.safetensors"), err, sizeof err) == 0, "%s", err);
  int64_t n_ids, n_lab, n_logits, n_loss;
  int32_t *ids = read_ref(&ref, "input_ids", VT_I32, &n_ids);
  int32_t *labels = read_ref(&ref, "labels", VT_I32, &n_lab);
  float *logits = read_ref(&ref, "logits", VT_F32, &n_logits);
  float *hf_loss = read_ref(&ref, "loss", VT_F32, &n_loss);
  const st_tensor *ti = st_find(&ref, "input_ids");
  int64_t B = ti->shape[0], T = ti->shape[1], V = n_logits / (B * T);
  /* HF: mean CE over labels[t + 1] != -100. For the accuracy, acc_labels asks for HF's own
   * argmax at every other counted position, so about half are right */
  int64_t counted = 0, correct = 0;
  int32_t *acc_labels = malloc(sizeof(int32_t) * (size_t)n_lab);
  memcpy(acc_labels, labels, sizeof(int32_t) * (size_t)n_lab);
  for (int64_t r = 0; r < B; r++)
    for (int64_t t = 0; t + 1 < T; t++) {
      int32_t *want = &acc_labels[r * T + t + 1];
      if (*want == -100) continue;
      const float *x = logits + (r * T + t) * V;
      int32_t best = 0;
      for (int32_t v = 1; v < V; v++)
        if (x[v] > x[best]) best = v;
      if (t % 2 == 0) *want = best;
      counted++;
      correct += best == *want;
    }
  CHECK(correct * 3 > counted);
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_batch batch = {.rows = B, .len = T, .label_tokens = counted, .samples = B};
  batch.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, ids);
  batch.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, labels);
  vt_model_loss out;
  vt_model_step st = {.train = true};
  CHECK(b.m->ops->loss(b.m, ctx, &batch, &st, &out) == 0);
  double sum = vt_item(ctx, out.terms[0].sum);
  CHECK(out.n_terms == 1 && !strcmp(out.terms[0].name, "lm") && out.count == (double)counted);
  double tol = 256 * 1.1920929e-7 * fabs(hf_loss[0]);
  CHECK_MSG(fabs(sum / out.count - hf_loss[0]) <= tol, "lm %.7f, HF %.7f", sum / out.count,
            hf_loss[0]);
  vt_ctx_reset(ctx); /* the step's tensors go with it: upload the batch again */
  vt_set_grad_enabled(ctx, false);
  batch.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, ids);
  batch.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, acc_labels);
  vt_metric met[VT_MODEL_MAX_METRICS];
  int nm = 0;
  CHECK(b.m->ops->eval(b.m, ctx, &batch, met, &nm) == 0 && nm == 2);
  CHECK(!strcmp(met[0].name, "loss") && !strcmp(met[1].name, "token_acc"));
  CHECK(met[0].count == (double)counted && met[0].sum > 0);
  CHECK_MSG(met[1].count == (double)counted && met[1].sum == (double)correct,
            "token_acc %g/%g, HF logits give %lld/%lld", met[1].sum, met[1].count,
            (long long)correct, (long long)counted);
  printf("lm %.6f (HF %.6f), token_acc %lld/%lld as HF's argmax\n", sum / out.count, hf_loss[0],
         (long long)correct, (long long)counted);
  vt_ctx_free(ctx);
  free(ids);
  free(labels);
  free(acc_labels);
  free(logits);
  free(hf_loss);
  st_file_close(&ref);

  /* the config round-trips: a model from config_json has the same parameters */
  json_t *cj = b.m->ops->config_json(b.m);
  vt_params ps2;
  CHECK(vt_params_init(&ps2, (vt_device){VT_DEV_CPU, 0}) == 0);
  vt_model *m2 = vt_model_create(NULL, cj, "(config_json)", NULL, &ps2, err, sizeof err);
  CHECK_MSG(m2 != NULL, "%s", err);
  CHECK(ps2.n == b.ps.n && vt_params_count(&ps2, false) == vt_params_count(&b.ps, false));
  json_decref(cj);

  /* init through the backend draws what qwen2_init_weights draws */
  CHECK(vt_params_alloc(&ps2, err, sizeof err) == 0);
  vt_rng r1, r2;
  vt_rng_seed(&r1, 9);
  vt_rng_seed(&r2, 9);
  CHECK(m2->ops->init_weights(m2, &ps2, &r1, err, sizeof err) == 0);
  qwen2 q;
  qwen2_cfg qc;
  json_t *cj2 = b.m->ops->config_json(b.m);
  CHECK(qwen2_cfg_from_json(cj2, "(config_json)", &qc, err, sizeof err) == 0);
  json_decref(cj2);
  vt_params ps3;
  CHECK(vt_params_init(&ps3, (vt_device){VT_DEV_CPU, 0}) == 0);
  memset(&q, 0, sizeof q);
  CHECK(qwen2_init(&q, &ps3, &qc, err, sizeof err) == 0 &&
        vt_params_alloc(&ps3, err, sizeof err) == 0);
  qwen2_init_weights(&q, &r2);
  bool same = ps3.numel[VT_F32] == ps2.numel[VT_F32] &&
              memcmp(ps3.data[VT_F32], ps2.data[VT_F32], sizeof(float) * ps2.numel[VT_F32]) == 0;
  CHECK_MSG(same, "init_weights differs from qwen2_init_weights");
  qwen2_free(&q);
  vt_params_free(&ps3);
  vt_model_destroy(m2);
  vt_params_free(&ps2);
  unbuild(&b);

  /* frozen parts cost nothing in backward: no tape entries through a frozen prefix */
  int64_t g_all, g_emb, g_l0, g_head;
  const char *emb[] = {"model.embed_tokens.weight"};
  const char *emb_l0[] = {"model.embed_tokens.weight", "model.layers.0.*"};
  const char *all_but_head[] = {"model.embed_tokens.weight", "model.layers.*"};
  int64_t t_all = tape_with_frozen(NULL, 0, &g_all);
  int64_t t_emb = tape_with_frozen(emb, 1, &g_emb);
  int64_t t_l0 = tape_with_frozen(emb_l0, 2, &g_l0);
  int64_t t_head = tape_with_frozen(all_but_head, 2, &g_head);
  int64_t per_layer = t_emb - t_l0;
  printf("tape ops: all trainable %lld, embedding frozen %lld, + layer 0 %lld, only norm + head "
         "trainable %lld\n",
         (long long)t_all, (long long)t_emb, (long long)t_l0, (long long)t_head);
  CHECK(g_all > g_emb && g_emb > g_l0 && g_l0 > g_head); /* no gradient buffers either */
  CHECK(t_emb == t_all - 1);                             /* the embedding lookup */
  CHECK(per_layer > 5 && t_l0 - t_head == per_layer);    /* each layer alike: none recorded */
  CHECK(t_head <= 3);                                    /* final norm and the loss */
  return vt_test_finish("test_model");
}
