/* Internals shared by curriculum.c (config, runner) and curriculum_summary.c (the table and
 * RUN/curriculum.json). */
#ifndef VT_CURRICULUM_IMPL_H
#define VT_CURRICULUM_IMPL_H

#include <jansson.h>

#include "train/curriculum.h"

/* The trained parts of cfg by the names the config gives them ("adapter,llm", "all",
 * "all,-llm_embed"), cut with "..." to len. */
void curriculum_trained_parts(const stage_cfg *cfg, char *out, size_t len);
/* DIR/FILE parsed, or NULL when absent or not JSON. */
json_t *curriculum_read_json(const char *dir, const char *file);

#endif
