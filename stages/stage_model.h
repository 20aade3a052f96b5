/* A stage's model: its JSON config read from a file, the model created through the registry
 * into a parameter store, and its initial weights loaded from several sources, each filling
 * the parameters it selects under their names there (ours = prefix + theirs). Used by the
 * trainer, `vita eval`, and the import/export/info commands. */
#ifndef VT_STAGE_MODEL_H
#define VT_STAGE_MODEL_H

#include <jansson.h>
#include <stdio.h>

#include "model/model.h"
#include "stages/stage_config.h"

/* Reads the JSON object of path (a file, or a directory holding config.json); the path read
 * goes into resolved when not NULL. Returns a new reference, or NULL with err. */
json_t *stage_read_json(const char *path, char *resolved, size_t resolved_len, char *err,
                        size_t err_len);

/* Creates the model of the config at path (a file or a directory with config.json) in ps
 * (initialised by the caller, parameters registered, nothing allocated). name: a registered
 * model, or NULL / "" to go by the config's model_type. Returns NULL with err. */
vt_model *stage_model_open(const char *name, const char *path, const vt_model_opts *opts,
                           vt_params *ps, char *err, size_t err_len);

/* Loads cfg's init sources in order into the allocated ps (later sources win where they
 * overlap); every parameter a source selects must be there with its shape, and tensors of
 * the source no selected parameter reads are ignored. Returns 0, or
 * -1 with err naming the config line, the source and the tensors. A note per source goes to
 * log when not NULL. */
int stage_load_init(const stage_cfg *cfg, vt_params *ps, FILE *log, char *err, size_t err_len);

/* Initial weights in a curriculum: every parameter one of `bases` holds (checkpoint or model
 * directories of earlier stages, newest first; the newest holding a name wins) comes from
 * there, and cfg's own sources fill only the rest (a source all of whose parameters the bases
 * hold is not opened). base_globs (comma-separated; NULL: all) limits what is taken from the
 * bases. The bases' other tensors are ignored. With no bases this is stage_load_init. Returns
 * 0 or -1 with err. */
int stage_load_init_over(const stage_cfg *cfg, vt_params *ps, const char *const *bases, int n_bases,
                         const char *base_globs, FILE *log, char *err, size_t err_len);

/* Whether name matches one of the comma-separated fnmatch globs. */
bool stage_globs_match(const char *globs, const char *name);

#endif
