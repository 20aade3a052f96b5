// ctest-labels: unit
/* Stage plans (stages/stage_plan.c, `vita plan`): for a small Qwen2 stage, the parameter
 * counts, the memory per rank at each ZeRO stage and precision, and the FLOPs per sample and
 * step equal values computed by hand from the dimensions; the activation estimate is within
 * 20% of the step arena's measured high-water mark of a real training step, with and without
 * recompute. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd_plan.h"
#include "stages/stage_model.h"
#include "stages/stage_plan.h"
#include "tests/testutil.h"
#include "train/zero.h"
#include "train/zero_masters.h"

static char tmp[] = "/tmp/vt_plan_XXXXXX";

static const char *write_file(const char *name, const char *text) {
  static char path[512];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

/* hidden 64, 4 heads of 16, 2 KV heads, FFN 128, 2 layers, vocabulary 256, untied */
static const char *config_json =
    "{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"intermediate_size\": 128,\n"
    " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,\n"
    " \"vocab_size\": 256, \"max_position_embeddings\": 128, \"rms_norm_eps\": 1e-6,\n"
    " \"rope_theta\": 10000.0, \"tie_word_embeddings\": false}\n";

static const char *stage_yaml(const char *name, const char *trainable, bool recompute) {
  static char body[2048];
  snprintf(body, sizeof body,
           "stage: plan\ndevice: cpu\n"
           "model:\n  config: config.json\n  recompute: %s\n"
           "data:\n  mixture: mixture.yaml\n  max_len: 32\n"
           "train:\n  steps: 1\n  batch_size: 2\n  grad_accum: 3\n  lr: 1.0e-3\n%s"
           "output: {dir: run}\n",
           recompute ? "true" : "false", trainable);
  return write_file(name, body);
}

/* The arena high-water mark of one training step (loss and backward) of the stage's model on
 * a [2, 32] batch. */
static double measured_step_bytes(const stage_cfg *cfg) {
  char err[1024];
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model *m =
      stage_model_open(cfg->model_name, cfg->model_config, &cfg->model_opts, &ps, err, sizeof err);
  CHECK_MSG(m != NULL, "%s", err);
  CHECK(!vt_params_alloc(&ps, err, sizeof err));
  CHECK(!stage_apply_trainable(cfg, &ps, err, sizeof err));
  CHECK(!vt_params_alloc_grads(&ps, err, sizeof err));
  vt_rng rng;
  vt_rng_seed(&rng, 3);
  CHECK(!m->ops->init_weights(m, &ps, &rng, err, sizeof err));
  vt_ctx *ctx =
      vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}, .arena_bytes = 1 << 16}, NULL);
  enum { B = 2, T = 32 };
  static int32_t ids[B * T], lens[B] = {T, T};
  for (int i = 0; i < B * T; i++) ids[i] = (int32_t)vt_rng_below(&rng, 256);
  vt_batch b = {.rows = B, .len = T, .label_tokens = B * (T - 1), .samples = B};
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, ids);
  b.labels = b.tokens;
  b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, lens);
  vt_model_step st = {.train = true};
  vt_model_loss out;
  CHECK(!m->ops->loss(m, ctx, &b, &st, &out));
  CHECK(vt_backward(ctx, out.terms[0].sum));
  double bytes = (double)vt_ctx_arena_high_water(ctx);
  vt_ctx_free(ctx);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return bytes;
}

int main(void) {
  CHECK(mkdtemp(tmp) != NULL);
  char err[2048];
  write_file("config.json", config_json);
  write_file("mixture.yaml", "datasets: []\n");
  static stage_cfg cfg;
  CHECK_MSG(!stage_config_load(
                &cfg, stage_yaml("layers.yaml", "  trainable: [\"model.layers.*\"]\n", false), err,
                sizeof err),
            "%s", err);

  /* by hand: per layer q 64x64+64, k and v 32x64+32 each, o 64x64, gate/up/down 64x128 each,
   * two norms of 64; embeddings and head 256x64 each; the final norm 64 */
  const double layer = 4160 + 2 * 2080 + 4096 + 3 * 8192 + 128, n = 2 * layer + 2 * 16384 + 64;
  const double nt = 2 * layer, shard3 = ceil(nt / 3);
  stage_plan p;
  stage_plan_opts o = {.world = 3};
  CHECK_MSG(!stage_plan_make(&cfg, &o, &p, err, sizeof err), "%s", err);
  CHECK(p.n_params == (int64_t)n && p.n_trainable == (int64_t)nt && p.moments == 2);
  CHECK(p.n_parts == 1 && p.parts[0].n_trainable == (int64_t)nt && p.parts[0].grad);
  CHECK(p.shape.batch == 2 && p.shape.tokens == 32 && p.grad_accum == 3);
  CHECK(p.weights == 4 * n);
  /* the ZeRO accounting of the trainer (train/zero.h) over these counts, as vita plan joins
   * them: moments sharded at stage 1, the gradient peak the full buffer */
  vt_zero_mem z = vt_zero_plan(p.weights, p.n_trainable, p.moments, 1, 3, false);
  CHECK(z.weights == 4 * n && z.grads == 4 * nt && z.optimizer == 8 * shard3);
  z = vt_zero_plan(p.weights, p.n_trainable, p.moments, 0, 3, false);
  CHECK(z.optimizer == 8 * nt);
  /* what the buckets add on CPU ranks (the config's bucket_mb, 25 MiB by default): MPI's two
   * buckets in flight; at ZeRO 2 the gradient peak stays the buffer with grad_accum 3 (the
   * first micro-batches write every page), and with one micro-batch it would be the shard
   * plus two buckets, capped at the buffer */
  CHECK(p.bucket_bytes == 25.0 * (1 << 20) && p.grad_accum == 3);
  z = vt_zero_plan(p.weights, p.n_trainable, p.moments, 2, 3, false);
  vt_zero_plan_overlap(&z, 2, 3, false, p.bucket_bytes, p.grad_accum);
  CHECK(z.grads == 4 * nt && z.comm == 2 * p.bucket_bytes);
  z = vt_zero_plan(p.weights, p.n_trainable, p.moments, 2, 3, false);
  vt_zero_plan_overlap(&z, 2, 3, false, 1000, 1);
  CHECK(z.grads == 4 * shard3 + 2000 && z.total == 4 * n + 4 * shard3 + 2000 + 8 * shard3 + 2000);
  o.bf16 = true;
  CHECK(!stage_plan_make(&cfg, &o, &p, err, sizeof err));
  CHECK(p.weights == 6 * n);
  /* bf16 ZeRO 1/2 on CPU ranks: the trainable 2-D weights (q, k, v, o, gate, up, down: 36864
   * values a layer) keep the f32 masters of one shard of 3; biases, norms and the frozen
   * embeddings and head keep theirs whole; the bf16 copies are whole */
  const double S = 2 * 36864, w3 = 2 * n + 4 * (n - S) + 4 * ceil(S / 3);
  CHECK(p.n_shardable == (int64_t)S);
  CHECK(vt_zero_masters_plan(p.n_params, 0, p.n_shardable, 3) == w3);
  CHECK(vt_zero_masters_plan(p.n_params, 0, p.n_shardable, 1) == 6 * n);
  /* GPU ranks count the same (their 2 MiB chunks go back, cuda_vmm.cu); the runs of kept values
   * that round up to chunks, in store order: embeddings + layer 0's first norm, then per layer
   * the q/k/v biases, the second norm, and the next layer's first norm (the last layer's with
   * the final norm and the frozen head), and the one phase's shard: 1 + 3 + 2 + 1 + 1 */
  CHECK(cli_plan_memory(&p, 1, true).zm.weights == w3 &&
        cli_plan_memory(&p, 1, false).zm.weights == w3);
  CHECK_MSG(p.n_kept_runs == 8, "%lld runs", (long long)p.n_kept_runs);

  /* FLOPs by hand, T = 32: forward GEMMs 2 T (2 layers x 36864 matrix weights + the 16384 of
   * the head); causal attention 2 layers x (QK^T + PV) x 2 x T^2/2 x 64; backward: the input
   * gradients (GEMMs again, attention twice) and the weight gradients of the trainable share */
  const double T = 32, gemm = 2 * T * (2 * 36864 + 16384), attn = 2 * 2 * 2 * (T * T / 2) * 64;
  const double sample = gemm + attn + gemm + 2 * attn + gemm * nt / n;
  CHECK_MSG(fabs(p.flops_sample / sample - 1) < 1e-12, "%.17g vs %.17g", p.flops_sample, sample);
  CHECK(fabs(p.flops_step / (sample * 2 * 3 * 3) - 1) < 1e-12);

  /* activations against a measured step (everything trains; then with recompute) */
  for (int rc = 0; rc < 2; rc++) {
    CHECK(!stage_config_load(&cfg, stage_yaml(rc ? "all_rc.yaml" : "all.yaml", "", rc), err,
                             sizeof err));
    o = (stage_plan_opts){.world = 1};
    CHECK(!stage_plan_make(&cfg, &o, &p, err, sizeof err));
    double est = rc ? p.act_recompute : p.act, got = measured_step_bytes(&cfg);
    printf("activations%s: plan %.0f bytes, measured arena high-water %.0f (%.3f)\n",
           rc ? " (recompute)" : "", est, got, est / got);
    CHECK_MSG(fabs(est / got - 1) < 0.2, "plan %.0f vs measured %.0f", est, got);
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_plan"); /* the exit code counts the failed checks */
}
