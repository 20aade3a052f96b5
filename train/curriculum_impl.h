/* Internals shared by curriculum.c (config, runner) and curriculum_summary.c (the table and
 * RUN/curriculum.json). */
#ifndef VT_CURRICULUM_IMPL_H
#define VT_CURRICULUM_IMPL_H

#include <jansson.h>

#include "data/yamlcfg.h"
#include "train/curriculum.h"

/* The trained parts of cfg by the names the config gives them ("adapter,llm", "all",
 * "all,-llm_embed"), cut with "..." to len. */
void curriculum_trained_parts(const stage_cfg *cfg, char *out, size_t len);
/* j (its reference taken; NULL: out of memory) written as DIR/FILE atomically. 0 or -1. */
int curriculum_write_json(const char *dir, const char *file, json_t *j, char *err, size_t err_len);
/* DIR/FILE parsed, or NULL when absent or not JSON. */
json_t *curriculum_read_json(const char *dir, const char *file);

/* A prep entry (a mapping with "prep") into c->stages[index] (curriculum_prep.c). */
int curriculum_prep_load(curriculum *c, ycfg *y, int index, yaml_node_t *e, char *err,
                         size_t err_len);
/* Runs prep step i on rank 0 (the other ranks wait for it); *interrupted when a stop request
 * (or o->stop_after sets of o->stop_stage) came before its last set. Returns 0 or -1. */
int curriculum_prep_run(const curriculum_opts *o, int i, bool *interrupted, char *err,
                        size_t err_len);

#endif
