/* libyaml document helpers for data configs. */
#include "data/yamlcfg.h"
#include "data/data_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int ycfg_load(ycfg *c, const char *path, char *err, size_t err_len) {
  memset(c, 0, sizeof *c);
  snprintf(c->path, sizeof c->path, "%s", path);
  snprintf(c->dir, sizeof c->dir, "%s", path);
  char *slash = strrchr(c->dir, '/');
  if (slash)
    *slash = 0;
  else
    strcpy(c->dir, ".");
  FILE *f = fopen(path, "rb");
  if (!f) {
    data_seterr(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  yaml_parser_t p;
  yaml_parser_initialize(&p);
  yaml_parser_set_input_file(&p, f);
  int ok = yaml_parser_load(&p, &c->doc);
  if (!ok)
    data_seterr(err, err_len, "%s:%zu: YAML: %s", path, p.problem_mark.line + 1,
                p.problem ? p.problem : "parse error");
  yaml_parser_delete(&p);
  fclose(f);
  if (!ok) return -1;
  c->loaded = true;
  return 0;
}

void ycfg_free(ycfg *c) {
  if (c->loaded) yaml_document_delete(&c->doc);
  c->loaded = false;
}

yaml_node_t *ycfg_root(ycfg *c) { return yaml_document_get_root_node(&c->doc); }

static const char *scalar(yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

yaml_node_t *ycfg_get(ycfg *c, yaml_node_t *map, const char *key) {
  if (!map || map->type != YAML_MAPPING_NODE) return NULL;
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    const char *k = scalar(yaml_document_get_node(&c->doc, p->key));
    if (k && strcmp(k, key) == 0) return yaml_document_get_node(&c->doc, p->value);
  }
  return NULL;
}

int ycfg_check_keys(ycfg *c, yaml_node_t *map, const char *const *allowed, const char *where,
                    char *err, size_t err_len) {
  if (!map || map->type != YAML_MAPPING_NODE) {
    data_seterr(err, err_len, "%s:%zu: %s: expected a mapping", c->path,
                map ? map->start_mark.line + 1 : 1, where);
    return -1;
  }
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *kn = yaml_document_get_node(&c->doc, p->key);
    const char *k = scalar(kn);
    bool ok = false;
    for (int i = 0; k && allowed[i]; i++) ok |= strcmp(k, allowed[i]) == 0;
    if (!ok) {
      char list[512] = "";
      for (int i = 0; allowed[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, allowed[i], sizeof list - strlen(list) - 1);
      }
      data_seterr(err, err_len, "%s:%zu: unknown key '%s' in %s (known: %s)", c->path,
                  kn->start_mark.line + 1, k ? k : "?", where, list);
      return -1;
    }
  }
  return 0;
}

static int expect(ycfg *c, yaml_node_t *n, const char *key, const char *what, char *err,
                  size_t err_len) {
  const char *s = scalar(n);
  data_seterr(err, err_len, "%s:%zu: %s: expected %s, found %s", c->path,
              n ? n->start_mark.line + 1 : 0, key, what, s ? s : "a list or mapping");
  return -1;
}

int ycfg_str(ycfg *c, yaml_node_t *n, const char *key, const char **out, char *err,
             size_t err_len) {
  const char *s = scalar(n);
  if (!s) return expect(c, n, key, "a string", err, err_len);
  *out = s;
  return 0;
}

int ycfg_int(ycfg *c, yaml_node_t *n, const char *key, long long *out, char *err, size_t err_len) {
  const char *s = scalar(n);
  char *end;
  errno = 0;
  long long v = s ? strtoll(s, &end, 10) : 0;
  if (!s || end == s || *end || errno) return expect(c, n, key, "an integer", err, err_len);
  *out = v;
  return 0;
}

int ycfg_float(ycfg *c, yaml_node_t *n, const char *key, double *out, char *err, size_t err_len) {
  const char *s = scalar(n);
  char *end;
  double v = s ? strtod(s, &end) : 0;
  if (!s || end == s || *end) return expect(c, n, key, "a number", err, err_len);
  *out = v;
  return 0;
}

int ycfg_bool(ycfg *c, yaml_node_t *n, const char *key, bool *out, char *err, size_t err_len) {
  const char *s = scalar(n);
  if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1")))
    *out = true;
  else if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0")))
    *out = false;
  else
    return expect(c, n, key, "true or false", err, err_len);
  return 0;
}

void ycfg_resolve(const ycfg *c, const char *p, char *out, size_t out_len) {
  if (p[0] == '/')
    snprintf(out, out_len, "%s", p);
  else
    snprintf(out, out_len, "%s/%s", c->dir, p);
}
