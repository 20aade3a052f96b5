/* Import and export of HF Qwen2 / Qwen2.5 checkpoints (`vita import`, `vita export`): a model
 * directory (config.json + safetensors weights, one file or shards with an index) is checked
 * tensor by tensor against the Qwen2 parameters its config describes, then streamed into a new
 * directory in another dtype, with its config and tokenizer files, written atomically. */
#ifndef VT_HF_IO_H
#define VT_HF_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/dtype.h"
#include "model/qwen2.h"

typedef struct {
  vt_dtype dtype;            /* dtype of the weights written (VT_F32, VT_BF16 or VT_F16) */
  size_t max_shard_bytes;    /* 0: one model.safetensors; else shards + index when larger */
  const char *tokenizer_dir; /* tokenizer files copied from here; NULL: from the source dir */
} hf_io_opts;

typedef struct {
  int n_tensors;      /* tensors written */
  int64_t n_params;   /* elements written */
  uint64_t n_bytes;   /* tensor bytes written */
  int n_shards;       /* 1: a single model.safetensors */
  int n_ignored;      /* source tensors skipped (rotary inv_freq, lm_head of a tied model) */
  int n_files_copied; /* tokenizer and generation files */
  bool has_tokenizer; /* tokenizer.json or vocab.json among them */
  qwen2_cfg cfg;      /* the model's config */
  char source[4096];  /* the directory read (export: the checkpoint found in a run directory) */
} hf_io_stats;

/* The tokenizer and generation files copied along with the weights (NULL-terminated). */
extern const char *const hf_tokenizer_files[];

/* Checks the weights under src (a directory, an index or a single .safetensors file) against
 * the Qwen2 parameters of cfg: returns 0, or -1 with err listing every missing tensor, every
 * unexpected one and every shape or dtype mismatch by name (expected vs found), as many as fit
 * in err_len. Tensors HF itself ignores on load (rotary_emb.inv_freq, lm_head.weight of a
 * tied model) are not errors; *n_ignored counts them when not NULL. */
int hf_check_weights(const char *src, const qwen2_cfg *cfg, int *n_ignored, char *err,
                     size_t err_len);

/* `vita import`: HF checkpoint directory src_dir -> out_dir holding model.safetensors (or
 * shards) in opts->dtype under the HF names, src_dir's config.json as it was, and the
 * tokenizer files found. out_dir must not exist or be empty; it is written as out_dir.tmp and
 * renamed, so it is either complete or absent. Returns 0 (stats filled when not NULL) or -1
 * with err naming the file and the tensor. */
int hf_import(const char *src_dir, const char *out_dir, const hf_io_opts *opts, hf_io_stats *stats,
              char *err, size_t err_len);

/* `vita export`: a trained or imported directory (config.json + weights; optimizer and
 * trainer files beside them are ignored; a checkpoint's COMPLETE manifest is verified first),
 * or a run directory, whose newest complete checkpoint (ckpt_find_latest) is taken, -> a
 * HF-loadable Qwen2 checkpoint in out_dir: weights in opts->dtype (bf16 for release), shards +
 * model.safetensors.index.json above opts->max_shard_bytes, config.json written by
 * hf_qwen2_config_write (keeping the source's token ids), tokenizer files. No lm_head.weight when
 * the embeddings are tied. Atomic like hf_import. */
int hf_export(const char *src_dir, const char *out_dir, const hf_io_opts *opts, hf_io_stats *stats,
              char *err, size_t err_len);

/* "f32", "bf16", "f16" (or their safetensors names) -> dtype; -1 for anything else. */
int hf_dtype_parse(const char *name);
/* One line for the console: "339 tensors, 1,234,567 parameters, 4.9 MB (bf16) in 1 file, ...". */
void hf_io_describe(const hf_io_stats *s, vt_dtype dtype, char *buf, size_t len);

#endif
