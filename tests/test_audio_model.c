// ctest-labels: unit
/* The audio encoder + CTC head behind the model interface ("audio_ctc"): created from its JSON
 * config through the registry, the "ctc" term of a batch (one fbank item per row, the
 * transcript as the row's labels, items in any row order) equals the per-sample CTC losses
 * divided by their target lengths, summed; eval gives cer and wer counts over the targets;
 * AdamW steps on one batch bring its loss down and its CER to 0; bad configs name the field. */
#include "model/model.h"
#include "tests/testutil.h"
#include "train/optim.h"

#include <stdlib.h>
#include <string.h>

static const char *CFG = "{\"model_type\": \"vita_audio_encoder\", \"n_mels\": 20, "
                         "\"hidden_size\": 32, \"num_attention_heads\": 2, "
                         "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"ctc_vocab\": 8, "
                         "\"chunk_mode\": \"full\", \"dropout\": 0.0, \"word_sep_id\": 1}";

enum { B = 2, T = 40, F = 20, L = 6 };

/* Item 0 belongs to row 1 and item 1 to row 0 (spans name the rows). */
static void make_batch(vt_ctx *ctx, vt_batch *b, const float *feats, const int32_t *labels) {
  static const int32_t lens[B] = {40, 31}, spans[3 * B] = {1, 0, 0, 0, 0, 0};
  memset(b, 0, sizeof *b);
  b->rows = B;
  b->len = L;
  b->tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, L}, labels);
  b->labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, L}, labels);
  b->media[0] = (vt_media){.kind = VT_MEDIA_FBANK,
                           .n = B,
                           .data = vt_from_host(ctx, VT_F32, 3, (int64_t[]){B, T, F}, feats),
                           .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, lens),
                           .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, 3}, spans)};
  b->n_media = 1;
  b->samples = B;
}

int main(void) {
  char err[512];
  json_error_t je;
  json_t *cfg = json_loads(CFG, 0, &je);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = vt_model_create(NULL, cfg, "test", &mo, &ps, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  if (!m) return vt_test_finish("test_audio_model");
  CHECK(strcmp(m->ops->name, "audio_ctc") == 0 && m->vocab_size == 0 &&
        m->media == VT_MEDIA_BIT(VT_MEDIA_FBANK));
  CHECK(vt_params_alloc(&ps, err, sizeof err) == 0);
  vt_params_set_trainable(&ps, "*global_cmvn*", false);
  CHECK(vt_params_alloc_grads(&ps, err, sizeof err) == 0);
  vt_rng rng;
  vt_rng_seed(&rng, 3);
  CHECK(m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0);

  /* row 0: clip of 31 frames, transcript 2 1 3 (labels -100 and ids >= 8 are no targets);
   * row 1: 40 frames, 4 5 5 6 */
  int32_t labels[B * L] = {-100, 2, 1, 3, 9, -100, -100, 4, 5, 5, 6, -100};
  float *feats = malloc(sizeof(float) * B * T * F);
  for (int i = 0; i < B * T * F; i++) feats[i] = 4.0f * vt_rng_uniform(&rng) - 2.0f;

  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_batch b;
  make_batch(ctx, &b, feats, labels);
  vt_model_step st = {.train = false};
  vt_model_loss lo;
  CHECK_MSG(m->ops->loss(m, ctx, &b, &st, &lo) == 0, "%s", vt_ctx_error(ctx));
  CHECK(lo.n_terms == 1 && strcmp(lo.terms[0].name, "ctc") == 0 && lo.count == 2);
  float sum = vt_item(ctx, lo.terms[0].sum);
  /* the same clips one at a time, each in row order: loss_r / len_r, summed */
  float parts = 0;
  for (int r = 0; r < B; r++) {
    int item = r == 0 ? 1 : 0, frames = r == 0 ? 31 : 40;
    vt_batch one;
    memset(&one, 0, sizeof one);
    one.rows = 1;
    one.len = L;
    one.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){1, L}, labels + r * L);
    one.tokens = one.labels;
    one.media[0] =
        (vt_media){.kind = VT_MEDIA_FBANK,
                   .n = 1,
                   .data = vt_from_host(ctx, VT_F32, 3, (int64_t[]){1, T, F}, feats + item * T * F),
                   .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){1}, &frames)};
    one.n_media = 1;
    vt_model_loss l1;
    CHECK(m->ops->loss(m, ctx, &one, &st, &l1) == 0);
    parts += vt_item(ctx, l1.terms[0].sum);
  }
  CHECK_MSG(fabsf(sum - parts) < 1e-4f * fmaxf(1.0f, fabsf(parts)), "batch %.6f, one by one %.6f",
            sum, parts);
  vt_metric mt[8];
  int nm = 0;
  CHECK(m->ops->eval(m, ctx, &b, mt, &nm) == 0 && nm == 3);
  CHECK(strcmp(mt[1].name, "cer") == 0 && mt[1].count == 7 && mt[1].sum >= 0);
  /* words at id 1: "2 | 3" and "4 5 5 6": 3 words */
  CHECK(strcmp(mt[2].name, "wer") == 0 && mt[2].count == 3);
  vt_ctx_free(ctx);

  /* AdamW on this one batch: the loss falls and greedy decoding becomes exact */
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 3e-3;
  oc.weight_decay = 0;
  vt_optim opt;
  CHECK_MSG(vt_optim_init(&opt, &ps, &oc, err, sizeof err) == 0, "%s", err);
  float first = 0, last = 0;
  double cer = 1;
  for (int s = 0; s < 150; s++) {
    ctx = vt_test_cpu_ctx();
    make_batch(ctx, &b, feats, labels);
    vt_params_zero_grad(&ps);
    st.train = true;
    st.rng = &rng;
    CHECK(m->ops->loss(m, ctx, &b, &st, &lo) == 0);
    float v = vt_item(ctx, lo.terms[0].sum);
    if (s == 0) first = v;
    last = v;
    CHECK(vt_backward(ctx, lo.terms[0].sum));
    vt_optim_stats os;
    CHECK(vt_optim_step(&opt, 1.0, s, &os, err, sizeof err) == 0);
    if (s == 149) {
      CHECK(m->ops->eval(m, ctx, &b, mt, &nm) == 0);
      cer = mt[1].sum / mt[1].count;
    }
    vt_ctx_free(ctx);
  }
  printf("ctc sum %.3f -> %.3f over 150 steps, CER %.2f\n", first, last, cer);
  CHECK_MSG(last < 0.2f * first && cer == 0.0, "loss %.3f -> %.3f, CER %.2f", first, last, cer);
  vt_optim_free(&opt);
  free(feats);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cfg);

  /* bad configs */
  const char *bad[][2] = {
      {"{\"model_type\": \"vita_audio_encoder\", \"hidden\": 4}", "\"hidden\""},
      {"{\"model_type\": \"vita_audio_encoder\", \"chunk_mode\": \"wide\"}", "chunk_mode"},
      {"{\"model_type\": \"vita_audio_encoder\", \"num_attention_heads\": 5}", "hidden"},
      {"{\"model_type\": \"vita_audio_encoder\", \"ctc_vocab\": \"x\"}", "ctc_vocab"}};
  for (int i = 0; i < 4; i++) {
    json_t *c = json_loads(bad[i][0], 0, &je);
    vt_params p2;
    vt_params_init(&p2, (vt_device){VT_DEV_CPU, 0});
    vt_model *x = vt_model_create(NULL, c, "bad.json", &mo, &p2, err, sizeof err);
    CHECK_MSG(!x && strstr(err, bad[i][1]) && strstr(err, "bad.json"), "case %d: %s", i, err);
    if (x) vt_model_destroy(x);
    vt_params_free(&p2);
    json_decref(c);
  }
  return vt_test_finish("test_audio_model");
}
