/* `vita plan`: memory per rank and FLOPs per step of a stage at a world size and ZeRO stage,
 * from the config alone (stages/stage_plan.h has the formulas), and whether it fits a
 * device's memory. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "autograd/fmt.h"
#include "cli/cli.h"
#include "cli/cmd_plan.h"
#include "train/zero_masters.h"

double cli_parse_bytes(const char *s) {
  char *end;
  double x = strtod(s, &end);
  if (end == s || !isfinite(x) || x < 0) return -1;
  while (*end == ' ') end++;
  static const struct {
    const char *unit;
    double scale;
  } units[] = {{"", 1},         {"B", 1},      {"KiB", 0x1p10}, {"MiB", 0x1p20}, {"GiB", 0x1p30},
               {"TiB", 0x1p40}, {"KB", 1e3},   {"MB", 1e6},     {"GB", 1e9},     {"TB", 1e12},
               {"K", 0x1p10},   {"M", 0x1p20}, {"G", 0x1p30},   {"T", 0x1p40}};
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
    if (!strcasecmp(end, units[i].unit)) return x * units[i].scale;
  return -1;
}

static const char *gib(double bytes, char *buf, size_t n) {
  snprintf(buf, n, "%.2f GiB", bytes / 0x1p30);
  return buf;
}

static const char *flops_str(double f, char *buf, size_t n) {
  static const char *const u[] = {"", "K", "M", "G", "T", "P", "E"};
  int i = 0;
  while (f >= 1000 && i < 6) f /= 1000, i++;
  snprintf(buf, n, "%.2f %sFLOP", f, u[i]);
  return buf;
}

/* Weights per rank: bf16 ZeRO shards the f32 masters of the shardable values (CPU ranks
 * return their pages, GPU ranks their 2 MiB chunks: cuda_vmm.cu). */
static double weights(const stage_plan *p, int zero) {
  if (!p->bf16 || zero < 1) return p->weights;
  return vt_zero_masters_plan(p->n_params, 0, p->n_shardable, p->world);
}

cli_plan_mem cli_plan_memory(const stage_plan *p, int zero, bool nccl) {
  cli_plan_mem m = {
      .zm = vt_zero_plan(weights(p, zero), p->n_trainable, p->moments, zero, p->world, nccl)};
  vt_zero_plan_overlap(&m.zm, zero, p->world, nccl, p->bucket_bytes, p->grad_accum);
  m.total = m.zm.total + p->act;
  m.total_recompute = m.zm.total + p->act_recompute;
  return m;
}

void cli_plan_print(FILE *f, const char *path, const stage_plan *p, int zero, bool nccl,
                    double memory) {
  char a[48], b[48], c[48];
  cli_plan_mem m = cli_plan_memory(p, zero, nccl);
  fprintf(f, "stage: %s (model %s)\n", path, p->model);
  fprintf(f, "  world %d (%s), ZeRO %d, %s; micro-batch %lld x %lld tokens", p->world,
          nccl ? "GPU ranks, NCCL" : "CPU ranks, MPI", zero,
          p->bf16 ? "bf16 compute over fp32 masters" : "fp32", (long long)p->shape.batch,
          (long long)p->shape.tokens);
  if (p->shape.tiles) fprintf(f, ", %lld tiles", (long long)p->shape.tiles);
  if (p->shape.audio) fprintf(f, ", %lld audio frames", (long long)p->shape.audio);
  if (p->shape.speech) fprintf(f, ", %lld codec tokens", (long long)p->shape.speech);
  fprintf(f, "; grad_accum %lld\n", (long long)p->grad_accum);
  fprintf(f, "parameters: %s, trainable %s\n", vt_group_digits(p->n_params, a, sizeof a),
          vt_group_digits(p->n_trainable, b, sizeof b));
  for (int i = 0; i < p->n_parts; i++) {
    const stage_plan_part *q = &p->parts[i];
    fprintf(f, "  %-15s %15s params, %15s trainable, forward %s/sample%s\n", q->cost.name,
            vt_group_digits(q->n_params, a, sizeof a), vt_group_digits(q->n_trainable, b, sizeof b),
            flops_str((q->cost.flops_weight + q->cost.flops_attn) / (double)p->shape.batch, c,
                      sizeof c),
            q->grad ? "" : " (no gradients reach it)");
  }
  fprintf(f, "memory per rank:\n");
  if (p->bf16)
    fprintf(f, "  weights     %s (bf16 copies %s + f32 masters %s%s)\n",
            gib(m.zm.weights, a, sizeof a), gib(2.0 * (double)p->n_params, b, sizeof b),
            gib(m.zm.weights - 2.0 * (double)p->n_params, c, sizeof c),
            m.zm.weights < p->weights ? ", of GEMM weights a shard" : "");
  else
    fprintf(f, "  weights     %s\n", gib(m.zm.weights, a, sizeof a));
  if (p->bf16 && nccl && m.zm.weights < p->weights) /* the rounding of CUDA VMM chunks */
    fprintf(f,
            "              (GPUs release masters in 2 MiB chunks: each of the %lld runs of kept\n"
            "              values keeps the chunks it touches, at most %s more; a GPU without\n"
            "              virtual memory management keeps them whole)\n",
            (long long)p->n_kept_runs, gib(2.0 * 0x1p21 * (double)p->n_kept_runs, a, sizeof a));
  if (m.zm.grads_idle != m.zm.grads)
    fprintf(f, "  gradients   %s at the peak of backward, %s between steps\n",
            gib(m.zm.grads, a, sizeof a), gib(m.zm.grads_idle, b, sizeof b));
  else
    fprintf(f, "  gradients   %s\n", gib(m.zm.grads, a, sizeof a));
  fprintf(f, "  optimizer   %s\n", gib(m.zm.optimizer, a, sizeof a));
  if (m.zm.comm > 0)
    fprintf(f, "  %s %s\n", nccl ? "NCCL pads  " : "MPI buffers", gib(m.zm.comm, a, sizeof a));
  if (p->n_parts) {
    fprintf(f, "  activations %s (%s with recompute)\n", gib(p->act, a, sizeof a),
            gib(p->act_recompute, b, sizeof b));
    fprintf(f, "  total       %s (%s with recompute)\n", gib(m.total, a, sizeof a),
            gib(m.total_recompute, b, sizeof b));
    fprintf(f, "FLOPs: %s per sample (forward + backward), %s per step\n",
            flops_str(p->flops_sample, a, sizeof a), flops_str(p->flops_step, b, sizeof b));
  } else {
    fprintf(f, "  activations: not estimated (the %s model has no cost hook)\n", p->model);
    fprintf(f, "  total       %s without activations\n", gib(m.total, a, sizeof a));
  }
  if (memory > 0) {
    bool fit = m.total <= memory, fit_rc = m.total_recompute <= memory;
    fprintf(f, "fits %s: %s\n", gib(memory, a, sizeof a),
            fit      ? "yes"
            : fit_rc ? "only with recompute (model.recompute: true)"
                     : "no");
  }
}

static const cli_opt opts[] = {
    {"config", CLI_OPT_STR, NULL, "the stage config (YAML)"},
    {"world", CLI_OPT_INT, "1", "ranks (GPUs or CPU processes)"},
    {"zero", CLI_OPT_INT, "0", "ZeRO stage: 0, 1 (optimizer state sharded) or 2 (and gradients)"},
    {"device", CLI_OPT_STR, NULL, "cpu or cuda (default: the config's)"},
    {"precision", CLI_OPT_STR, NULL,
     "fp32 or bf16 (bf16 compute copies over fp32 masters; default: the config's)"},
    {"memory", CLI_OPT_STR, NULL, "device memory to check against, e.g. 80GiB"},
    {"batch", CLI_OPT_INT, "0", "micro-batch (0: the config's train.batch_size)"},
    {"tokens", CLI_OPT_INT, "0", "sequence positions per sample (0: the config's data.max_len)"},
    {"tiles", CLI_OPT_INT, "0", "image tiles per sample (0: the model's default)"},
    {"audio-frames", CLI_OPT_INT, "0", "fbank frames per sample (0: the model's default)"},
    {"speech-tokens", CLI_OPT_INT, "0", "codec tokens per sample (0: the model's default)"},
    {NULL, 0, NULL, NULL}};

static int run(const cli_args *a) {
  const char *path = cli_args_str(a, "config");
  if (!path) {
    fprintf(stderr, "vita plan: --config STAGE.yaml is required\n");
    return CLI_EXIT_USAGE;
  }
  const char *prec = cli_args_str(a, "precision"), *dev = cli_args_str(a, "device");
  if (prec && strcmp(prec, "fp32") && strcmp(prec, "bf16")) {
    fprintf(stderr, "vita plan: --precision: expected fp32 or bf16, found \"%s\"\n", prec);
    return CLI_EXIT_USAGE;
  }
  if (dev && strcmp(dev, "cpu") && strncmp(dev, "cuda", 4)) {
    fprintf(stderr, "vita plan: --device: expected cpu or cuda, found \"%s\"\n", dev);
    return CLI_EXIT_USAGE;
  }
  double memory = 0;
  if (cli_args_str(a, "memory") && (memory = cli_parse_bytes(cli_args_str(a, "memory"))) <= 0) {
    fprintf(stderr, "vita plan: --memory: expected a size such as 80GiB, found \"%s\"\n",
            cli_args_str(a, "memory"));
    return CLI_EXIT_USAGE;
  }
  int64_t world = cli_args_int(a, "world"), zero = cli_args_int(a, "zero");
  if (world < 1 || world > 1 << 20) {
    fprintf(stderr, "vita plan: --world must be in [1, 1048576], found %lld\n", (long long)world);
    return CLI_EXIT_USAGE;
  }
  if (zero < 0 || zero > 2) {
    fprintf(stderr, "vita plan: --zero must be 0, 1 or 2, found %lld\n", (long long)zero);
    return CLI_EXIT_USAGE;
  }
  static const char *const dims[] = {"batch", "tokens", "tiles", "audio-frames", "speech-tokens"};
  int64_t d[5];
  for (int i = 0; i < 5; i++) {
    d[i] = cli_args_int(a, dims[i]);
    if (d[i] < 0 || d[i] > STAGE_MAX_TOKENS) {
      fprintf(stderr, "vita plan: --%s must be in [0, %lld]\n", dims[i],
              (long long)STAGE_MAX_TOKENS);
      return CLI_EXIT_USAGE;
    }
  }
  char err[2048];
  static stage_cfg cfg;
  if (stage_config_load(&cfg, path, err, sizeof err)) {
    fprintf(stderr, "vita plan: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  stage_plan_opts o = {.world = (int)world,
                       .bf16 = prec ? !strcmp(prec, "bf16") : cfg.precision == VT_BF16,
                       .shape = {d[0], d[1], d[2], d[3], d[4]}};
  stage_plan p;
  if (stage_plan_make(&cfg, &o, &p, err, sizeof err)) {
    fprintf(stderr, "vita plan: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  bool nccl = dev ? strncmp(dev, "cuda", 4) == 0 : cfg.device.type == VT_DEV_CUDA;
  cli_plan_print(stdout, path, &p, (int)zero, nccl, memory);
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_plan = {"plan",
                              "memory per rank and FLOPs per step of a stage at a world size and "
                              "ZeRO stage, and whether it fits",
                              NULL, opts, run};
