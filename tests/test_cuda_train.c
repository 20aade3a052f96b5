// ctest-labels: unit cuda
/* Training parity between the CPU and the GPU: ten AdamW steps (global-norm clip on) of four
 * small models behind the model interface -- a Qwen2, the VITA model with its vision tower on
 * image tiles, the audio encoder with its CTC head, and the speech decoder -- from the same
 * initial weights on the same batch, once with the parameters and the step on the CPU and once
 * on cuda:0. Every step's loss must agree within a tolerance for f32 training (the kernels sum
 * in different orders, and ten optimizer steps amplify that a little), the gradient norms
 * too, and the loss must fall on both. Skips (77) without a GPU.
 * The Qwen2 also trains with bf16 mixed precision on the second device (bf16 GEMMs, f32
 * masters), against the CPU's f32 within a bf16 tolerance, and so does one with head dim 64
 * over 80 positions, whose attention on the GPU is then the tensor-core flash kernel.
 * `test_cuda_train --cpu-twice` runs the second pass on the CPU too (the harness itself,
 * which must then agree bit for bit), for machines without a GPU. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tests/testutil.h"
#include "train/optim.h"

#define STEPS 10

static bool g_cpu_twice;

/* A model's batch, built on the host once and uploaded into each ctx. */
typedef struct {
  int64_t B, T;
  int32_t *tokens, *labels, *lengths; /* lengths may be NULL */
  int n_media;
  struct {
    vt_media_kind kind;
    int64_t n;
    vt_dtype dtype;
    int ndim;
    int64_t shape[4];
    void *data;
    int32_t *lengths, *spans;
  } media[2];
  int64_t label_tokens;
} host_batch;

static void host_batch_free(host_batch *h) {
  free(h->tokens);
  free(h->labels);
  free(h->lengths);
  for (int i = 0; i < h->n_media; i++) {
    free(h->media[i].data);
    free(h->media[i].lengths);
    free(h->media[i].spans);
  }
}

static vt_batch upload(vt_ctx *ctx, const host_batch *h) {
  vt_batch b = {.rows = h->B, .len = h->T, .label_tokens = h->label_tokens, .samples = h->B};
  int64_t bt[2] = {h->B, h->T};
  b.tokens = vt_from_host(ctx, VT_I32, 2, bt, h->tokens);
  if (h->labels) b.labels = vt_from_host(ctx, VT_I32, 2, bt, h->labels);
  if (h->lengths) b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){h->B}, h->lengths);
  for (int i = 0; i < h->n_media; i++) {
    int64_t n = h->media[i].n;
    b.media[i] =
        (vt_media){.kind = h->media[i].kind,
                   .n = n,
                   .data = vt_from_host(ctx, h->media[i].dtype, h->media[i].ndim, h->media[i].shape,
                                        h->media[i].data),
                   .lengths = h->media[i].lengths ? vt_from_host(ctx, VT_I32, 1, (int64_t[]){n},
                                                                 h->media[i].lengths)
                                                  : NULL,
                   .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){n, 3}, h->media[i].spans)};
  }
  b.n_media = h->n_media;
  return b;
}

/* Losses (sum / count) and gradient norms of STEPS steps on `dev`; false after a message. */
static bool train(const char *name, const char *config, const host_batch *hb, vt_device dev,
                  bool bf16, double *loss, double *gnorm) {
  char err[1024];
  json_error_t je;
  json_t *cfg = json_loads(config, 0, &je);
  CHECK_MSG(cfg != NULL, "%s: config: %s", name, je.text);
  if (!cfg) return false;
  vt_params ps;
  if (vt_params_init(&ps, dev)) {
    CHECK_MSG(false, "%s: no backend for the device", name);
    json_decref(cfg);
    return false;
  }
  vt_model_opts mo = {0};
  vt_model *m = vt_model_create(NULL, cfg, name, &mo, &ps, err, sizeof err);
  json_decref(cfg);
  bool ok = m != NULL;
  CHECK_MSG(ok, "%s: %s", name, err);
  vt_rng rng;
  vt_rng_seed(&rng, 11);
  ok = ok && vt_params_alloc(&ps, err, sizeof err) == 0;
  if (ok) vt_params_set_trainable(&ps, "*global_cmvn*", false);
  ok = ok && vt_params_alloc_grads(&ps, err, sizeof err) == 0 &&
       m->ops->init_weights(m, &ps, &rng, err, sizeof err) == 0;
  CHECK_MSG(ok || !m, "%s: %s", name, err);
  vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAMW);
  oc.lr = 2e-3;
  oc.max_grad_norm = 1.0;
  vt_optim opt;
  bool have_opt = ok && vt_optim_init(&opt, &ps, &oc, err, sizeof err) == 0;
  CHECK_MSG(have_opt || !ok, "%s: %s", name, err);
  ok = ok && have_opt;
  const char *cerr = NULL;
  vt_ctx *ctx = ok ? vt_ctx_init(&(vt_ctx_opts){.backend = ps.be}, &cerr) : NULL;
  CHECK_MSG(ctx || !ok, "%s: ctx: %s", name, cerr);
  ok = ok && ctx;
  if (ok && bf16) { /* mixed precision: bf16 GEMMs on the store's bf16 copies, f32 masters */
    ok = vt_ctx_set_gemm_dtype(ctx, VT_BF16, NULL, 0, err, sizeof err) == 0 &&
         vt_params_enable_lowp(&ps, VT_BF16, err, sizeof err) == 0;
    CHECK_MSG(ok, "%s in bf16 on %s: %s", name, ps.be->name, err);
  }
  for (int s = 0; ok && s < STEPS; s++) {
    vt_params_zero_grad(&ps);
    vt_batch b = upload(ctx, hb);
    vt_model_step st = {.train = true, .rng = &rng};
    vt_model_loss lo = {0};
    ok = m->ops->loss(m, ctx, &b, &st, &lo) == 0 && lo.n_terms >= 1 && lo.count > 0;
    vt_tensor *l = ok ? lo.terms[0].sum : NULL;
    for (int t = 1; ok && t < lo.n_terms; t++) l = vt_add(ctx, l, lo.terms[t].sum);
    if (ok) l = vt_scale(ctx, l, (float)(1.0 / lo.count));
    ok = ok && vt_backward(ctx, l) && !vt_ctx_failed(ctx);
    CHECK_MSG(ok, "%s step %d on %s: %s", name, s, ps.be->name, vt_ctx_error(ctx));
    if (!ok) break;
    loss[s] = vt_item(ctx, l);
    vt_optim_stats os;
    ok = vt_optim_step(&opt, 1.0, s, &os, err, sizeof err) == 0;
    CHECK_MSG(ok, "%s step %d: %s", name, s, err);
    gnorm[s] = os.grad_norm;
    vt_ctx_reset(ctx);
  }
  if (ctx) vt_ctx_free(ctx);
  if (have_opt) vt_optim_free(&opt);
  if (m) m->ops->destroy(m);
  vt_params_free(&ps);
  return ok;
}

/* bf16: the second run uses bf16 GEMMs (mixed precision) against the CPU's f32. */
static void parity_in(const char *name, const char *config, const host_batch *hb, bool bf16) {
  double lc[STEPS], gc[STEPS], lg[STEPS], gg[STEPS];
  vt_device cpu = {VT_DEV_CPU, 0}, gpu = {g_cpu_twice ? VT_DEV_CPU : VT_DEV_CUDA, 0};
  if (!train(name, config, hb, cpu, false, lc, gc) || !train(name, config, hb, gpu, bf16, lg, gg))
    return;
  /* f32 on both sides: the first step agrees to rounding; later ones drift by what AdamW's
   * normalised updates make of those roundings. bf16 GEMM inputs carry 2^-8 relative
   * rounding each: under a percent on the loss over ten steps (2e-4 on the CPU). */
  double tol = bf16 ? 1e-2 : g_cpu_twice ? 0.0 : 2e-3;
  for (int s = 0; s < STEPS; s++) {
    double dl = fabs(lg[s] - lc[s]) / fmax(fabs(lc[s]), 1e-3);
    double dn = fabs(gg[s] - gc[s]) / fmax(fabs(gc[s]), 1e-3);
    CHECK_MSG(dl <= tol && dn <= 10 * tol,
              "%s step %d: loss cpu %.7g gpu %.7g (rel %.2g), grad norm cpu %.6g gpu %.6g", name, s,
              lc[s], lg[s], dl, gc[s], gg[s]);
  }
  CHECK_MSG(lc[STEPS - 1] < lc[0] && lg[STEPS - 1] < lg[0], "%s: loss did not fall (%g -> %g)",
            name, lc[0], lc[STEPS - 1]);
  printf("%s: loss %.6f -> %.6f on the CPU, %.6f -> %.6f on %s%s\n", name, lc[0], lc[STEPS - 1],
         lg[0], lg[STEPS - 1], g_cpu_twice ? "the CPU again" : "cuda:0", bf16 ? " in bf16" : "");
}

static void parity(const char *name, const char *config, const host_batch *hb) {
  parity_in(name, config, hb, false);
}

static int32_t *ids(vt_rng *r, int64_t n, int64_t vocab) {
  int32_t *p = malloc(sizeof(int32_t) * (size_t)n);
  for (int64_t i = 0; i < n; i++) p[i] = (int32_t)vt_rng_below(r, (uint64_t)vocab);
  return p;
}

static void qwen2_case(vt_rng *r) {
  static const char *cfg =
      "{\"model_type\": \"qwen2\", \"vocab_size\": 96, \"hidden_size\": 64, "
      "\"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 4, "
      "\"num_key_value_heads\": 2, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0}";
  host_batch h = {.B = 2, .T = 24};
  h.tokens = ids(r, h.B * h.T, 96);
  h.labels = malloc(sizeof(int32_t) * (size_t)(h.B * h.T));
  memcpy(h.labels, h.tokens, sizeof(int32_t) * (size_t)(h.B * h.T));
  h.labels[0] = h.labels[h.T] = VT_IGNORE_INDEX;
  h.label_tokens = h.B * (h.T - 1);
  parity("qwen2", cfg, &h);
  /* bf16 mixed precision on the second device, where it has bf16 GEMM units */
  char info[256];
  const vt_backend *be = g_cpu_twice ? vt_backend_cpu() : NULL;
  vt_backend *gpu = g_cpu_twice ? NULL : vt_backend_cuda(0, NULL);
  if (gpu) be = gpu;
  /* head dim 64 and 80 positions (more than one 64-row tile): on the GPU, bf16 runs the
   * tensor-core flash attention (cuda_attn_flash.cu) inside a real training step */
  static const char *cfg64 =
      "{\"model_type\": \"qwen2\", \"vocab_size\": 96, \"hidden_size\": 128, "
      "\"intermediate_size\": 128, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
      "\"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0}";
  host_batch h64 = {.B = 2, .T = 80};
  h64.tokens = ids(r, h64.B * h64.T, 96);
  h64.labels = malloc(sizeof(int32_t) * (size_t)(h64.B * h64.T));
  memcpy(h64.labels, h64.tokens, sizeof(int32_t) * (size_t)(h64.B * h64.T));
  h64.labels[0] = h64.labels[h64.T] = VT_IGNORE_INDEX;
  h64.label_tokens = h64.B * (h64.T - 1);
  if (be && vt_backend_bf16_gemm(be, info, sizeof info)) {
    parity_in("qwen2", cfg, &h, true);
    parity_in("qwen2 head dim 64", cfg64, &h64, true);
  } else {
    printf("qwen2 in bf16: not run (%s)\n", be ? info : "no backend");
  }
  vt_backend_free(gpu);
  host_batch_free(&h);
  host_batch_free(&h64);
}

/* The VITA model: 3 image tiles of 56 x 56 (16 patches, 4 tokens after the pixel shuffle)
 * spliced into two rows. */
static void vision_case(vt_rng *r) {
  static const char *cfg =
      "{\"model_type\": \"vita-Qwen2\", \"vocab_size\": 64, \"hidden_size\": 24, "
      "\"intermediate_size\": 48, \"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
      "\"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, "
      "\"mm_projector_type\": \"mlp2x_gelu\", \"mm_hidden_size\": 128, "
      "\"vision_config\": {\"image_size\": 56, \"patch_size\": 14, \"hidden_size\": 32, "
      "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2}}";
  enum { B = 2, T = 20, N = 3 };
  static const int32_t spans[N * 3] = {0, 3, 4, 1, 2, 4, 1, 8, 4};
  host_batch h = {.B = B, .T = T, .n_media = 1};
  h.tokens = ids(r, B * T, 64);
  h.labels = malloc(sizeof(int32_t) * B * T);
  for (int i = 0; i < B * T; i++) h.labels[i] = i % T > 12 ? h.tokens[i] : VT_IGNORE_INDEX;
  h.label_tokens = B * (T - 13);
  h.media[0].kind = VT_MEDIA_IMAGE;
  h.media[0].n = N;
  h.media[0].dtype = VT_F32;
  h.media[0].ndim = 4;
  memcpy(h.media[0].shape, (int64_t[]){N, 3, 56, 56}, sizeof(int64_t) * 4);
  h.media[0].data = malloc(sizeof(float) * N * 3 * 56 * 56);
  vt_test_fill_uniform(r, h.media[0].data, N * 3 * 56 * 56, -2, 2);
  h.media[0].spans = malloc(sizeof spans);
  memcpy(h.media[0].spans, spans, sizeof spans);
  parity("vita (vision tower)", cfg, &h);
  host_batch_free(&h);
}

/* The audio encoder + CTC: two clips of 40 and 31 frames of 20 mels, transcripts as labels. */
static void audio_case(vt_rng *r) {
  static const char *cfg = "{\"model_type\": \"vita_audio_encoder\", \"n_mels\": 20, "
                           "\"hidden_size\": 32, \"num_attention_heads\": 2, "
                           "\"intermediate_size\": 64, \"num_hidden_layers\": 2, \"ctc_vocab\": 8, "
                           "\"chunk_mode\": \"full\", \"dropout\": 0.0, \"word_sep_id\": 1}";
  enum { B = 2, T = 40, F = 20, L = 6 };
  static const int32_t labels[B * L] = {-100, 2, 1, 3, 9, -100, -100, 4, 5, 5, 6, -100};
  static const int32_t lens[B] = {40, 31}, spans[3 * B] = {1, 0, 0, 0, 0, 0};
  host_batch h = {.B = B, .T = L, .n_media = 1};
  h.tokens = malloc(sizeof labels);
  h.labels = malloc(sizeof labels);
  memcpy(h.tokens, labels, sizeof labels);
  memcpy(h.labels, labels, sizeof labels);
  h.media[0].kind = VT_MEDIA_FBANK;
  h.media[0].n = B;
  h.media[0].dtype = VT_F32;
  h.media[0].ndim = 3;
  memcpy(h.media[0].shape, (int64_t[]){B, T, F}, sizeof(int64_t) * 3);
  h.media[0].data = malloc(sizeof(float) * B * T * F);
  vt_test_fill_uniform(r, h.media[0].data, B * T * F, -2, 2);
  h.media[0].lengths = malloc(sizeof lens);
  memcpy(h.media[0].lengths, lens, sizeof lens);
  h.media[0].spans = malloc(sizeof spans);
  memcpy(h.media[0].spans, spans, sizeof spans);
  parity("audio encoder + CTC", cfg, &h);
  host_batch_free(&h);
}

/* The speech decoder: text rows with their lengths, codec token items naming their rows. */
static void tts_case(vt_rng *r) {
  static const char *cfg =
      "{\"model_type\": \"tts_decoder\", \"hidden_size\": 32, \"num_attention_heads\": 4, "
      "\"intermediate_size\": 48, \"nar_layers\": 2, \"ar_layers\": 2, \"codec_vocab\": 1024, "
      "\"llm_vocab_size\": 40, \"llm_hidden_size\": 64, \"rope_theta\": 10000.0, "
      "\"rms_norm_eps\": 1e-06, \"initializer_range\": 0.02}";
  enum { B = 2, T = 7, C = 9 };
  static const int32_t tlen[B] = {7, 5}, clen[B] = {9, 6}, spans[3 * B] = {1, 0, 0, 0, 0, 0};
  host_batch h = {.B = B, .T = T, .n_media = 1};
  h.tokens = ids(r, B * T, 40);
  h.lengths = malloc(sizeof tlen);
  memcpy(h.lengths, tlen, sizeof tlen);
  h.media[0].kind = VT_MEDIA_CODEC;
  h.media[0].n = B;
  h.media[0].dtype = VT_I32;
  h.media[0].ndim = 2;
  memcpy(h.media[0].shape, (int64_t[]){B, C}, sizeof(int64_t) * 2);
  h.media[0].data = ids(r, B * C, 1024);
  h.media[0].lengths = malloc(sizeof clen);
  memcpy(h.media[0].lengths, clen, sizeof clen);
  h.media[0].spans = malloc(sizeof spans);
  memcpy(h.media[0].spans, spans, sizeof spans);
  parity("speech decoder", cfg, &h);
  host_batch_free(&h);
}

int main(int argc, char **argv) {
  g_cpu_twice = argc > 1 && !strcmp(argv[1], "--cpu-twice");
  if (!g_cpu_twice && vt_cuda_device_count() == 0) {
    printf("test_cuda_train: no GPU, skipped\n");
    return 77;
  }
  vt_rng r;
  vt_rng_seed(&r, 2024);
  qwen2_case(&r);
  vision_case(&r);
  audio_case(&r);
  tts_case(&r);
  return vt_test_finish("test_cuda_train");
}
