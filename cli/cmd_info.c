/* `vita info`: what a model config describes — architecture, exact parameter count and the
 * memory full training needs — computed from the config alone, nothing allocated. */
#include <stdio.h>
#include <sys/stat.h>

#include "autograd/fmt.h"
#include "cli/cli.h"
#include "train/hf_config.h"

static const cli_opt opts[] = {{NULL, 0, NULL, NULL}};

static int run(const cli_args *a) {
  if (a->n_positional != 1) {
    fprintf(stderr, "vita info: give one model config.json (or a directory holding one)\n");
    return CLI_EXIT_USAGE;
  }
  char path[4096], err[512], num[48];
  struct stat st;
  bool is_dir = stat(a->positional[0], &st) == 0 && S_ISDIR(st.st_mode);
  snprintf(path, sizeof path, is_dir ? "%s/config.json" : "%s", a->positional[0]);
  qwen2_cfg cfg;
  if (hf_qwen2_config_read(path, &cfg, err, sizeof err)) {
    fprintf(stderr, "vita info: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  int64_t n = qwen2_param_count(&cfg);
  printf("model: qwen2 (%s)\n", path);
  printf("  layers %lld, hidden %lld, heads %lld (kv %lld, head dim %lld), ffn %lld, vocab %lld,"
         " rope theta %g, %s LM head\n",
         (long long)cfg.num_hidden_layers, (long long)cfg.hidden_size,
         (long long)cfg.num_attention_heads, (long long)cfg.num_key_value_heads,
         (long long)(cfg.hidden_size / cfg.num_attention_heads), (long long)cfg.intermediate_size,
         (long long)cfg.vocab_size, cfg.rope_theta, cfg.tie_word_embeddings ? "tied" : "untied");
  printf("parameters: %s\n", vt_group_digits(n, num, sizeof num));
  const double gib = 1024.0 * 1024.0 * 1024.0;
  printf("memory for full training (one rank, no sharding): weights f32 %.1f GiB, gradients "
         "f32 %.1f GiB, AdamW moments %.1f GiB; bf16 weights alone %.1f GiB\n",
         4.0 * n / gib, 4.0 * n / gib, 8.0 * n / gib, 2.0 * n / gib);
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_info = {"info",
                              "describe a model config: architecture, parameter count, memory",
                              "CONFIG.json|MODEL_DIR", opts, run};
