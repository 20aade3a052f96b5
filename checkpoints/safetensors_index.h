/* st_index: a set of safetensors tensors spread over files, as HF stores a model: either a
 * sharded set described by model.safetensors.index.json ({"metadata": {"total_size": N},
 * "weight_map": {name: file}}, shards opened lazily on first use) or one .safetensors file. */
#ifndef VT_ST_SAFETENSORS_INDEX_H
#define VT_ST_SAFETENSORS_INDEX_H

#include "checkpoints/safetensors.h"

typedef struct {
  char *path;   /* what was opened (index file or single file) */
  char *dir;    /* directory the shard names are relative to */
  int n_files;  /* distinct shard files */
  char **files; /* shard file names as in the index */
  st_file *shards;
  bool *opened;
  int n;              /* tensors */
  char **names;       /* sorted */
  int *file_of;       /* names[i] lives in files[file_of[i]] */
  int64_t total_size; /* metadata.total_size, or -1 when absent */
} st_index;

/* Opens path: a model.safetensors.index.json, a single .safetensors file, or a directory
 * holding either (the index preferred). Validates the index (an object "weight_map" of
 * strings; shard names relative, without ".."); shards are opened and validated on first use.
 * Returns 0 or -1 with err. */
int st_index_open(st_index *ix, const char *path, char *err, size_t err_len);
void st_index_close(st_index *ix);

/* Looks up name. Returns 0 with *out set (NULL when the set has no such tensor), or -1 with
 * err when its shard cannot be opened or does not hold the tensor the index promises. */
int st_index_get(st_index *ix, const char *name, const st_tensor **out, char *err, size_t err_len);
bool st_index_has(const st_index *ix, const char *name);

#endif
