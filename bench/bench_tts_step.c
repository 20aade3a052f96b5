/* One training step (forward + backward) of the speech decoder at full size (DESIGN.md §4:
 * 4 NAR + 4 AR layers of 896, conditioned on Qwen2.5-7B's 152064 x 3584 table) on random
 * text and codec ids: time per step, codec tokens per second and the model FLOP/s (6 x the
 * decoder's matrix parameters x the rows each stack sees, plus attention).
 *   bench_tts_step [batch=4] [text_tokens=16] [codec_tokens=160] [steps=3] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/tts.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int64_t B = argc > 1 ? atoll(argv[1]) : 4, Tt = argc > 2 ? atoll(argv[2]) : 16;
  int64_t Ty = argc > 3 ? atoll(argv[3]) : 160, steps = argc > 4 ? atoll(argv[4]) : 3;
  tts_cfg cfg = tts_cfg_full();
  char err[512];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  tts m;
  if (tts_init(&m, &ps, &cfg, err, sizeof err) || vt_params_alloc(&ps, err, sizeof err) ||
      vt_params_set_trainable(&ps, "model.embed_tokens.weight", false) != 1 ||
      vt_params_alloc_grads(&ps, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  vt_rng rng;
  vt_rng_seed(&rng, 1);
  tts_init_weights(&m, &ps, &rng, true);
  int32_t *text = malloc(sizeof(int32_t) * (size_t)(B * Tt)),
          *tl = malloc(sizeof(int32_t) * (size_t)B);
  int32_t *codec = malloc(sizeof(int32_t) * (size_t)(B * Ty)),
          *cl = malloc(sizeof(int32_t) * (size_t)B);
  for (int64_t i = 0; i < B * Tt; i++)
    text[i] = (int32_t)vt_rng_below(&rng, (uint64_t)cfg.llm_vocab_size);
  for (int64_t i = 0; i < B * Ty; i++)
    codec[i] = (int32_t)vt_rng_below(&rng, (uint64_t)cfg.codec_vocab);
  for (int64_t i = 0; i < B; i++) tl[i] = (int32_t)Tt, cl[i] = (int32_t)Ty;
  tts_batch b = {B, text, tl, Tt, codec, cl, Ty};
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, NULL);
  /* FLOPs: 2 per multiply-add forward, 4 backward, over the rows of each stack */
  int64_t h = cfg.hidden_size, k = cfg.llm_hidden_size / h, tx = Tt * k, tar = tx + 1 + Ty + 1;
  double layer = 4.0 * h * h + 3.0 * h * cfg.intermediate_size;
  double rows_nar = (double)(B * tx), rows_ar = (double)(B * tar);
  double flops =
      6.0 * layer * (rows_nar * cfg.nar_layers + rows_ar * cfg.ar_layers) +
      6.0 * h * (cfg.codec_vocab + 4) * (double)(B * (Ty + 1)) +
      3.0 * 4.0 * h *
          (B * ((double)tx * tx * cfg.nar_layers + 0.5 * (double)tar * tar * cfg.ar_layers));
  double best = 1e30;
  for (int64_t s = 0; s <= steps; s++) {
    vt_params_zero_grad(&ps);
    double t0 = now();
    vt_tensor *loss = tts_loss(&m, ctx, &b);
    float l = vt_item(ctx, loss);
    if (!vt_backward(ctx, loss)) {
      fprintf(stderr, "%s\n", vt_ctx_error(ctx));
      return 1;
    }
    double dt = now() - t0;
    vt_ctx_reset(ctx);
    if (s == 0) continue; /* the first step sizes the arena */
    if (dt < best) best = dt;
    printf("step %lld: loss %.1f, %.3f s\n", (long long)s, l, dt);
  }
  printf("full-size decoder (%lld parameters), batch %lld x (%lld text -> %lld conditioning + "
         "%lld codec): best %.3f s/step, %.0f codec tokens/s, %.1f GFLOP/s\n",
         (long long)tts_param_count(&cfg), (long long)B, (long long)Tt, (long long)tx,
         (long long)Ty, best, (double)(B * (Ty + 1)) / best, flops / best * 1e-9);
  vt_ctx_free(ctx);
  tts_free(&m);
  vt_params_free(&ps);
  free(text), free(tl), free(codec), free(cl);
  return 0;
}
