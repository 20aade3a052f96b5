/* HF checkpoint conversion, the model-neutral half of `vita import` and `vita export`: a
 * model directory (config.json + safetensors weights, one file or shards with an index) is
 * checked tensor by tensor against the parameters a model registered (missing, unexpected,
 * mismatched: all listed by name), then streamed into a new directory in another dtype, with
 * a config.json and the tokenizer files, written atomically. What is per model -- which
 * parameters, which source tensors to ignore, the config written -- comes from the caller
 * through hf_model_part (stages/stage_hf.h builds it from the model interface). */
#ifndef VT_HF_CONVERT_H
#define VT_HF_CONVERT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "autograd/dtype.h"
#include "autograd/params.h"

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
  int n_ignored;      /* source tensors the model does not load (rotary inv_freq, ...) */
  int n_files_copied; /* tokenizer and generation files */
  bool has_tokenizer; /* tokenizer.json or vocab.json among them */
  char model[64];     /* the model's name */
  char source[4096];  /* the directory read (export: the checkpoint found in a run directory) */
} hf_io_stats;

/* What a model expects of a weight set. */
typedef struct {
  const char *model_name;                         /* for messages */
  const vt_params *params;                        /* registered (need not be allocated) */
  bool (*ignored)(void *arg, const char *tensor); /* source tensors that are not errors; NULL */
  void *arg;
  json_t *config; /* the config.json to write (owned by the part); NULL: copy the source's */
} hf_spec;

/* The per-model half: open() reads the source's config.json at config_path and fills spec
 * (for export, with the config written in `dtype`), close() releases what open made. */
typedef struct {
  int (*open)(void *arg, const char *config_path, vt_dtype dtype, bool export, hf_spec *spec,
              char *err, size_t err_len);
  void (*close)(void *arg, hf_spec *spec);
  void *arg;
} hf_model_part;

/* The tokenizer and generation files copied along with the weights (NULL-terminated). */
extern const char *const hf_tokenizer_files[];

/* Checks the weights under src (a directory, an index or a single .safetensors file) against
 * spec: returns 0, or -1 with err listing every missing tensor, every unexpected one and every
 * shape or dtype mismatch by name (expected vs found), as many as fit in err_len. Tensors the
 * spec ignores are not errors; *n_ignored counts them when not NULL. */
int hf_check_weights(const char *src, const hf_spec *spec, int *n_ignored, char *err,
                     size_t err_len);

/* src_dir -> out_dir. Import (export false): src_dir is a HF model directory. Export: a
 * trained or imported directory (optimizer and trainer files beside the weights are ignored;
 * a checkpoint's COMPLETE manifest is verified first), or a run directory, whose newest
 * complete checkpoint is taken. The weights are written in opts->dtype, as shards + index
 * above opts->max_shard_bytes, with the part's config.json and the tokenizer files. out_dir
 * must not exist or be empty; it is written as out_dir.tmp and renamed, so it is either
 * complete or absent. Returns 0 (stats filled when not NULL) or -1 with err naming the file
 * and the tensor. */
int hf_convert(const char *src_dir, const char *out_dir, const hf_io_opts *opts, bool export,
               const hf_model_part *part, hf_io_stats *stats, char *err, size_t err_len);

/* "f32", "bf16", "f16" (or their safetensors names) -> dtype; -1 for anything else. */
int hf_dtype_parse(const char *name);
/* One line for the console: "339 tensors, 1,234,567 parameters, 4.9 MB (bf16) in 1 file, ...". */
void hf_io_describe(const hf_io_stats *s, vt_dtype dtype, char *buf, size_t len);

#endif
