/* Loading and saving a whole vt_params store by parameter name through safetensors: every
 * parameter found by name, shape-checked and converted into its buffer; every missing,
 * unexpected or mismatched tensor listed by name in one error. */
#ifndef VT_ST_SAFETENSORS_PARAMS_H
#define VT_ST_SAFETENSORS_PARAMS_H

#include "autograd/params.h"
#include "checkpoints/safetensors_index.h"
#include "checkpoints/safetensors_write.h"

enum {
  ST_LOAD_ALLOW_MISSING = 1u << 0,    /* parameters absent from the file keep their values */
  ST_LOAD_ALLOW_UNEXPECTED = 1u << 1, /* tensors without a parameter are ignored */
};

/* Fills every parameter of ps (allocated) from src, converting the dtype (f32/bf16/f16,
 * i32/i64). A parameter whose f32 masters this rank holds only in part (sharded under bf16
 * ZeRO, vt_params_shard_masters) gets only the elements [keep_lo, keep_hi) it holds, checked
 * for NaN and read from the file alone: its released pages stay released (so a load on
 * several ranks may fail on some and not others). Checks names, shapes and dtype kinds before
 * writing anything: on such a failure ps is untouched and err lists all missing tensors, unexpected
 * tensors and shape or dtype mismatches by name (cut to err_len with "(truncated)"); only an I64
 * value out of I32 range is found while copying. Returns 0 or -1. */
int st_load_params(vt_params *ps, st_index *src, unsigned flags, char *err, size_t err_len);
/* Which parameters to fill and under which names the source holds them. */
typedef struct {
  const char *prefix; /* a parameter's source name is its name without this prefix (and a
                       * parameter without the prefix is missing); NULL: "" */
  bool (*select)(const vt_param *p, void *arg); /* NULL: every parameter */
  void *arg;
  int *n_loaded; /* parameters filled (when not NULL) */
} st_load_sel;

/* st_load_params over the parameters sel selects, read under their source names. Source
 * tensors no selected parameter reads are ignored when a selection or a prefix is given. */
int st_load_params_sel(vt_params *ps, st_index *src, const st_load_sel *sel, unsigned flags,
                       char *err, size_t err_len);
/* The same from a path as st_index_open takes it. */
int st_load_params_path(vt_params *ps, const char *path, unsigned flags, char *err, size_t err_len);

typedef struct {
  int dtype;              /* -1: each parameter's own dtype; else float params stored as it */
  size_t max_shard_bytes; /* 0: one file at path; else path is a directory of shards */
  const st_kv *meta;      /* "__metadata__" of every file, e.g. {"format", "pt"} */
  int n_meta;
  /* The values of a parameter whose f32 masters this rank holds only in part (sharded under
   * bf16 ZeRO, vt_param_has_masters): fetch fills host (host memory, numel values of its
   * dtype) and returns 0, or -1 with a message. NULL: such a parameter is an error. */
  int (*fetch)(void *ctx, const vt_param *p, void *host, char *err, size_t err_len);
  void *fetch_ctx;
} st_save_opts;

/* Writes every parameter of ps under its name, atomically (see st_write, st_write_sharded),
 * in the Python library's order. opts may be NULL (own dtypes, one file). */
int st_save_params(const vt_params *ps, const char *path, const st_save_opts *opts, char *err,
                   size_t err_len);

#endif
