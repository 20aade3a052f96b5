/* HF import and export (`vita import`, `vita export`) and model descriptions (`vita info`)
 * through the model interface: the source's config.json names the model (its model_type),
 * the model registers its parameters and says which source tensors to ignore and which
 * config.json to write, and checkpoints/hf_convert.h does the model-neutral rest. */
#ifndef VT_STAGE_HF_H
#define VT_STAGE_HF_H

#include "checkpoints/hf_convert.h"

/* HF model directory src_dir -> out_dir (weights in opts->dtype, f32 by default, under the
 * same names; the source's config.json as it was; tokenizer files). */
int stage_hf_import(const char *src_dir, const char *out_dir, const hf_io_opts *opts,
                    hf_io_stats *stats, char *err, size_t err_len);
/* A model, checkpoint or run directory -> a HF-loadable directory (bf16 shards of at most
 * 5 GB when opts is NULL), with the model's export config.json. */
int stage_hf_export(const char *src_dir, const char *out_dir, const hf_io_opts *opts,
                    hf_io_stats *stats, char *err, size_t err_len);
/* Import (export false) or export as above, leaving out the model's parameters that match
 * exclude (comma-separated globs; NULL: none): they are neither written nor expected, and a
 * source tensor of that name is skipped (a part of the release not exported). config, when
 * not NULL, replaces the source's config.json (an import writes it: the release's config
 * completed with its side directories' fields). */
int stage_hf_convert_sel(const char *src_dir, const char *out_dir, const hf_io_opts *opts,
                         bool export, const char *exclude, const json_t *config, hf_io_stats *stats,
                         char *err, size_t err_len);
/* Checks the weights at src against the model of the config at config_path (see
 * hf_check_weights). */
int stage_hf_check(const char *src, const char *config_path, int *n_ignored, char *err,
                   size_t err_len);

typedef struct {
  char model[64];         /* the registered model */
  char arch[512];         /* its describe() line */
  int64_t n_params;       /* elements, exact */
  int64_t n_phase_params; /* of them, in some phase (what training updates; the rest, like the
                           * speech decoder's LLM table, are frozen inputs) */
  int n_tensors;
  int n_phases, n_terms;
  char terms[256]; /* "lm" */
} stage_model_info;

/* Describes the model of the config at path (a file or a directory with config.json) without
 * allocating its weights. Returns 0 or -1 with err. */
int stage_model_describe(const char *path, stage_model_info *info, char *err, size_t err_len);

#endif
