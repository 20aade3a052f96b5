/* One fuzz input through the shared YAML reader (data/yamlcfg.h) and the data config on top
 * of it: loaded from memory, every node read as each scalar type (refused with a message or
 * read), keys checked, and the same bytes loaded as a data config from a file. Shared by the
 * libFuzzer target and the corpus replay; returns 0 when it behaved. */
#ifndef VT_YAML_FUZZ_ONE_H
#define VT_YAML_FUZZ_ONE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/sample.h"
#include "data/yamlcfg.h"

static int yaml_fuzz_read_all(ycfg *y) {
  static const char *const keys[] = {"seed", "datasets", "name", "ratio", NULL};
  char err[512];
  int bad = 0;
  for (yaml_node_t *n = y->doc.nodes.start; n < y->doc.nodes.top; n++) {
    long long i;
    double f;
    bool b;
    const char *s;
    err[0] = 0;
    if (ycfg_int(y, n, "k", &i, err, sizeof err) && !err[0]) bad = 1;
    err[0] = 0;
    if (ycfg_float(y, n, "k", &f, err, sizeof err) == 0 && (f != f || f - f != 0)) bad = 1;
    if (ycfg_bool(y, n, "k", &b, err, sizeof err) && !err[0]) bad = 1;
    if (ycfg_str(y, n, "k", &s, err, sizeof err) == 0 && !s) bad = 1;
    (void)ycfg_int_range(y, n, "k", -5, 5, &i, err, sizeof err);
    (void)ycfg_check_keys(y, n, keys, "fuzz", err, sizeof err);
    if (n->type == YAML_MAPPING_NODE) { /* no key twice after a successful load */
      yaml_node_pair_t *a0 = n->data.mapping.pairs.start, *top = n->data.mapping.pairs.top;
      if (top - a0 <= 64)
        for (yaml_node_pair_t *a = a0; a < top; a++)
          for (yaml_node_pair_t *c = a + 1; c < top; c++) {
            yaml_node_t *ka = yaml_document_get_node(&y->doc, a->key);
            yaml_node_t *kc = yaml_document_get_node(&y->doc, c->key);
            if (ka && kc && ka->type == YAML_SCALAR_NODE && kc->type == YAML_SCALAR_NODE &&
                !strcmp((char *)ka->data.scalar.value, (char *)kc->data.scalar.value))
              bad = 1;
          }
      (void)ycfg_get(y, n, "datasets");
    }
  }
  return bad;
}

static int yaml_fuzz_one(const uint8_t *data, size_t size) {
  ycfg y;
  char err[512] = "";
  int bad = 0;
  if (ycfg_load_mem(&y, "fuzz.yaml", (const char *)data, size, err, sizeof err) == 0) {
    bad |= yaml_fuzz_read_all(&y);
    ycfg_free(&y);
  } else if (!err[0]) {
    bad = 1;
  }
  /* the data config reads the same bytes from a file (paths are only resolved, never opened) */
  char path[64];
  snprintf(path, sizeof path, "/tmp/vt_fuzz_yaml_%d.yaml", (int)getpid());
  FILE *f = fopen(path, "wb");
  if (f) {
    fwrite(data, 1, size, f);
    fclose(f);
    sample_config c;
    sample_config_default(&c);
    err[0] = 0;
    if (sample_config_load(&c, path, err, sizeof err) == 0) {
      if (c.max_len < 1 || c.shard_samples < 1) bad = 1;
      for (size_t i = 0; i < c.n_sets; i++)
        if (!c.sets[i].name) bad = 1;
    } else if (!err[0]) {
      bad = 1;
    }
    sample_config_free(&c);
    unlink(path);
  }
  return bad;
}

#endif
