/* The VITA-1.5 release layout, its model-neutral half (stages/stage_release.h combines the
 * models): where the weights of an export come from (a curriculum run, a stage run, a
 * checkpoint or a model directory), which parameters the run trained (from the optimizer state
 * its checkpoints hold), and the small files of the side directories the release's own loader
 * opens (an InternViT config directory, the audio encoder's train.yaml and global_cmvn, the
 * speech decoder's model.json), written atomically. */
#ifndef VT_RELEASE_H
#define VT_RELEASE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RELEASE_PATH 4096
#define RELEASE_MAX_SRC 32

/* One weight set found in a source. */
typedef struct {
  char dir[RELEASE_PATH]; /* a directory with config.json + weights (checkpoint or model dir) */
  char model_type[64];    /* its config.json's model_type */
  char stage[128];        /* the run directory's name ("3-1.3"), or the directory's */
  bool has_optim;         /* a training checkpoint: optim.safetensors says what trained */
} release_src;

typedef struct {
  release_src src[RELEASE_MAX_SRC];
  int n; /* in stage order: a curriculum's stages by their number */
} release_sources;

/* Resolves path into its weight sets:
 *  - a model directory (config.json + weights) or a checkpoint (its manifest verified): itself;
 *  - a run directory (RUN/checkpoints/step-N): its newest complete checkpoint;
 *  - a curriculum run (RUN/<n>-<stage>/, each a run directory): the newest complete
 *    checkpoint of every stage, in the order of <n>.
 * Returns 0, or -1 with err naming the directory and what it lacks. */
int release_find_sources(const char *path, release_sources *out, char *err, size_t err_len);

/* The latest source whose model_type is one of types (NULL-ended), or NULL. */
const release_src *release_last_of(const release_sources *s, const char *const *types);

/* Whether the sources of the given model types trained a parameter matching globs
 * (comma-separated fnmatch patterns): 1 when a checkpoint among them holds optimizer state for
 * one, or when one of them is a model directory without optimizer state (an import or an
 * export: its weights are taken as given); 0 when none did; -1 with err when a file cannot be
 * read. */
int release_trained(const release_sources *s, const char *const *types, const char *globs,
                    char *err, size_t err_len);

/* Whether name matches one of the comma-separated fnmatch globs. */
bool release_globs_match(const char *globs, const char *name);

/* Small files, written as PATH.tmp, fsync'd and renamed (parent directories created). */
int release_write_json(const char *path, const json_t *j, char *err, size_t err_len);
int release_write_text(const char *path, const char *text, char *err, size_t err_len);

/* global_cmvn in the JSON stats format the release reads ({"mean_stat", "var_stat",
 * "frame_num"}) that gives back mean and istd: frame_num 1, mean_stat = mean, var_stat =
 * 1/istd^2 + mean^2 (the loader's var = var_stat/n - mean^2, istd = 1/sqrt(var)). */
int release_write_cmvn(const char *path, const float *mean, const float *istd, int n, char *err,
                       size_t err_len);

/* The speech decoder's model.json: [idim, odim, {args}]. */
int release_write_model_json(const char *path, long long idim, long long odim, const json_t *args,
                             char *err, size_t err_len);

/* Copies every tensor of the weights at src (a directory, index or file) whose name starts
 * with prefix into one safetensors file out_file, named without the prefix, in dtype (an
 * InternViT directory's model.safetensors from the release's model.vision_tower.vision_tower.*).
 * *n_out counts the tensors. Returns 0, or -1 with err (none found is an error). */
int release_copy_renamed(const char *src, const char *prefix, const char *out_file, int dtype,
                         int *n_out, char *err, size_t err_len);

/* Reads tensor name of the weights at src as n floats into out. Returns 0, or -1 with err
 * naming the tensor, its shape and the count expected. */
int release_read_f32(const char *src, const char *name, float *out, int64_t n, char *err,
                     size_t err_len);

/* Reads a JSON file (at most 64 MB) into a new reference, or NULL with err naming the file. */
json_t *release_read_json(const char *path, char *err, size_t err_len);

#endif
