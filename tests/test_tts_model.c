// ctest-labels: unit
/* The speech decoder behind the model interface ("tts_decoder"): created from its JSON config
 * through the registry, it computes the reference's summed loss from a model-neutral batch
 * (text ids as token rows, codec ids as VT_MEDIA_CODEC items, given in another row order),
 * counts its codec rows, evaluates loss / token_acc / unigram_acc, writes a config that reads
 * back to the same model, keeps the LLM table out of its phase, and refuses bad configs and
 * batches with messages naming the field. Training steps on a fixed batch lower the loss and
 * take no more heap memory for the arena or tape after the first. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "model/model.h"
#include "model/tts.h"
#include "tests/testutil.h"

static const char *fixture(const char *name) {
  static char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/tts_tiny/%s", dir ? dir : "tests/fixtures", name);
  return path;
}

static void *read_ref(const st_file *f, const char *name, int64_t *numel) {
  const st_tensor *t = st_find(f, name);
  void *buf = malloc((size_t)t->numel * 4);
  char err[256];
  if (st_tensor_read(t, t->dtype == VT_I32 ? VT_I32 : VT_F32, buf, (size_t)t->numel * 4, err,
                     sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  if (numel) *numel = t->numel;
  return buf;
}

static void load(vt_params *ps) {
  char err[256];
  const char *files[2] = {"model.safetensors", "llm_embed.safetensors"};
  for (int k = 0; k < 2; k++) {
    st_file f;
    CHECK_MSG(st_file_open(&f, fixture(files[k]), err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < f.n; i++) {
      vt_param *p = vt_params_find(ps, f.tensors[i].name);
      CHECK_MSG(p, "%s is no parameter", f.tensors[i].name);
      if (p) st_tensor_read(&f.tensors[i], VT_F32, p->t.data, vt_nbytes(&p->t), err, sizeof err);
    }
    st_file_close(&f);
  }
}

static vt_model *create(json_t *cfg, vt_params *ps, char *err, size_t err_len) {
  vt_params_init(ps, (vt_device){VT_DEV_CPU, 0});
  return vt_model_create(NULL, cfg, "config.json", NULL, ps, err, err_len);
}

static void via_interface(void) {
  json_error_t je;
  json_t *cfg = json_load_file(fixture("config.json"), 0, &je);
  CHECK_MSG(cfg, "config.json: %s", je.text);
  char err[512];
  vt_params ps;
  vt_model *m = create(cfg, &ps, err, sizeof err);
  CHECK_MSG(m && !strcmp(m->ops->name, "tts_decoder"), "%s", err);
  if (!m) return;
  CHECK(m->media == VT_MEDIA_BIT(VT_MEDIA_CODEC) && m->vocab_size == 40);
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  int in_phase = 0;
  for (int i = 0; i < ps.n; i++) {
    bool has = vt_model_phase_has(m, 0, ps.items[i]->name);
    in_phase += has;
    if (!strcmp(ps.items[i]->name, "model.embed_tokens.weight")) CHECK(!has);
  }
  CHECK_MSG(in_phase == ps.n - 1, "%d of %d parameters in the phase", in_phase, ps.n);
  vt_rng rng;
  vt_rng_seed(&rng, 1);
  CHECK(m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0);
  load(&ps);

  st_file ref;
  CHECK(st_file_open(&ref, fixture("reference.safetensors"), err, sizeof err) == 0);
  int64_t nt, nc;
  int32_t *text = read_ref(&ref, "text", &nt), *tlen = read_ref(&ref, "text_lens", NULL);
  int32_t *codec = read_ref(&ref, "codec", &nc), *clen = read_ref(&ref, "codec_lens", NULL);
  float *want = read_ref(&ref, "loss", NULL);
  int64_t B = st_find(&ref, "text")->shape[0], T = nt / B, C = nc / B;
  /* codec items in reverse row order: the spans name the rows */
  int32_t *items = malloc(sizeof(int32_t) * (size_t)nc), ilen[8], spans[24];
  for (int64_t i = 0; i < B; i++) {
    int64_t r = B - 1 - i;
    memcpy(items + i * C, codec + r * C, sizeof(int32_t) * (size_t)C);
    ilen[i] = clen[r];
    spans[3 * i] = (int32_t)r, spans[3 * i + 1] = spans[3 * i + 2] = 0;
  }
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_batch b = {.rows = B, .len = T, .n_media = 1, .samples = B};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, text);
  b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, tlen);
  b.media[0] = (vt_media){.kind = VT_MEDIA_CODEC,
                          .n = B,
                          .data = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, C}, items),
                          .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, ilen),
                          .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, 3}, spans)};
  vt_model_loss l = {0};
  vt_model_step st = {.train = true};
  CHECK_MSG(m->ops->loss(m, ctx, &b, &st, &l) == 0, "%s", vt_ctx_error(ctx));
  int64_t rows = 0;
  for (int64_t i = 0; i < B; i++) rows += clen[i] + 1;
  CHECK(l.n_terms == 1 && !strcmp(l.terms[0].name, "speech_ce") && l.count == (double)rows);
  float got = vt_item(ctx, l.terms[0].sum);
  CHECK_MSG(fabs(got - want[0]) <= 256 * 1.2e-7 * fabs(want[0]), "loss %.8g, torch %.8g", got,
            want[0]);
  vt_set_grad_enabled(ctx, false);
  vt_metric mt[VT_MODEL_MAX_METRICS];
  int n = 0;
  CHECK_MSG(m->ops->eval(m, ctx, &b, mt, &n) == 0, "%s", vt_ctx_error(ctx));
  CHECK(n == 3 && !strcmp(mt[0].name, "loss") && !strcmp(mt[1].name, "token_acc") &&
        !strcmp(mt[2].name, "unigram_acc"));
  CHECK(fabs(mt[0].sum - want[0]) <= 1e-4 * want[0] && mt[0].count == (double)rows);
  CHECK(mt[1].sum >= 0 && mt[1].sum <= mt[1].count && mt[1].count == (double)rows);
  /* three EOS targets are the most frequent class of this batch unless a codec id repeats */
  CHECK_MSG(mt[2].sum >= 3 && mt[2].count == (double)rows, "unigram %g / %g", mt[2].sum,
            mt[2].count);

  /* a batch whose codec items do not cover the rows is an error naming the item */
  spans[3] = 0; /* item 1 names row 0, which item 2 names too */
  b.media[0].spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, 3}, spans);
  CHECK(m->ops->loss(m, ctx, &b, &st, &l) == -1 && strstr(vt_ctx_error(ctx), "codec item 2"));
  vt_ctx_free(ctx);

  /* the config written reads back to the same model */
  json_t *back = m->ops->config_json(m);
  vt_params ps2;
  vt_model *m2 = create(back, &ps2, err, sizeof err);
  CHECK_MSG(m2 && ps2.n == ps.n && vt_params_count(&ps2, false) == vt_params_count(&ps, false),
            "%s", err);
  char line[512];
  m->ops->describe(m, line, sizeof line);
  CHECK_MSG(strstr(line, "2 NAR + 2 AR") && strstr(line, "2 vectors per token"), "%s", line);
  json_t *hf = m->ops->hf_config(m, NULL, VT_BF16);
  CHECK(json_integer_value(json_object_get(hf, "transformer_attention_dim")) == 32 &&
        json_integer_value(json_object_get(hf, "odim")) == 1024);
  CHECK(m->ops->hf_ignored(m, "rotary_emb.inv_freq") && !m->ops->hf_ignored(m, "norm.weight"));
  json_decref(hf);
  json_decref(back);
  vt_model_destroy(m2);
  vt_params_free(&ps2);

  /* bad configs name the field */
  struct {
    const char *key;
    json_t *value;
    const char *want;
  } bad[] = {{"llm_hidden_size", json_integer(70), "70 is not a multiple"},
             {"hidden_size", json_string("32"), "\"hidden_size\": expected an integer"},
             {"hidden_sise", json_integer(32), "\"hidden_sise\": not a tts_decoder field"},
             {"rope_theta", json_string("x"), "\"rope_theta\": expected a number"},
             {"ar_layers", NULL, "\"ar_layers\": expected an integer, missing"}};
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    json_t *c = json_deep_copy(cfg);
    if (bad[k].value)
      json_object_set_new(c, bad[k].key, bad[k].value);
    else
      json_object_del(c, bad[k].key);
    vt_params p3;
    vt_model *m3 = create(c, &p3, err, sizeof err);
    CHECK_MSG(!m3 && strstr(err, bad[k].want) && strstr(err, "config.json"), "%s: got '%s'",
              bad[k].want, m3 ? "a model" : err);
    vt_model_destroy(m3);
    vt_params_free(&p3);
    json_decref(c);
  }
  vt_model_destroy(m);
  vt_params_free(&ps);
  st_file_close(&ref);
  json_decref(cfg);
  free(text), free(tlen), free(codec), free(clen), free(want), free(items);
}

/* Training steps on one batch through the interface: the loss falls, and after the first
 * step neither the step arena nor the tape takes more memory from the heap. */
static void steps(void) {
  json_error_t je;
  json_t *cfg = json_load_file(fixture("config.json"), 0, &je);
  char err[512];
  vt_params ps;
  vt_model *m = create(cfg, &ps, err, sizeof err);
  CHECK_MSG(m, "%s", err);
  if (!m) return;
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_params_set_trainable(&ps, "model.embed_tokens.weight", false) == 1);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 7);
  m->ops->init_weights(m, &ps, &rng, err, sizeof err);
  int32_t text[2 * 3] = {3, 9, 1, 4, 0, 0}, tlen[2] = {3, 2};
  int32_t codec[2 * 5] = {10, 11, 12, 13, 14, 500, 7, 0, 0, 0}, clen[2] = {5, 2};
  int32_t spans[6] = {0, 0, 0, 1, 0, 0};
  vt_ctx *ctx = vt_test_cpu_ctx();
  float first = 0, last = 0;
  int64_t blocks = 0;
  for (int s = 0; s < 8; s++) {
    vt_batch b = {.rows = 2, .len = 3, .n_media = 1, .samples = 2};
    b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 3}, text);
    b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, tlen);
    b.media[0] = (vt_media){.kind = VT_MEDIA_CODEC,
                            .n = 2,
                            .data = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 5}, codec),
                            .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){2}, clen),
                            .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){2, 3}, spans)};
    vt_model_loss l = {0};
    vt_model_step st = {.train = true};
    vt_params_zero_grad(&ps);
    CHECK(m->ops->loss(m, ctx, &b, &st, &l) == 0 && l.count == 9);
    last = vt_item(ctx, l.terms[0].sum) / (float)l.count;
    if (s == 0) first = last;
    CHECK_MSG(vt_backward(ctx, l.terms[0].sum), "%s", vt_ctx_error(ctx));
    for (size_t i = 0; i < ps.grad_numel; i++) ps.grad[i] *= 1.0f / (float)l.count;
    for (int i = 0; i < ps.n; i++) { /* plain SGD on the host (the CPU store) */
      vt_param *p = ps.items[i];
      if (!p->trainable) continue;
      float *w = p->t.data;
      for (int64_t k = 0; k < vt_numel(&p->t); k++) w[k] -= 0.5f * ps.grad[p->grad_offset + k];
    }
    vt_ctx_reset(ctx);
    if (s == 0) blocks = vt_ctx_heap_allocs(ctx);
  }
  CHECK_MSG(vt_ctx_heap_allocs(ctx) == blocks, "arena/tape blocks grew from %lld to %lld",
            (long long)blocks, (long long)vt_ctx_heap_allocs(ctx));
  CHECK_MSG(last < 0.95f * first, "loss %g -> %g", first, last);
  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cfg);
}

int main(void) {
  via_interface();
  steps();
  return vt_test_finish("test_tts_model");
}
