/* libyaml document helpers for data configs. */
#include "data/yamlcfg.h"
#include "autograd/fmt.h"
#include "autograd/regfile.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Configs are small: a bigger file is a mistake, and reading it whole is then cheap. */
#define YCFG_MAX_BYTES (16u << 20)
/* libyaml's scanner does work proportional to the open nesting for every token, so a deep
 * document costs depth^2; nothing a config needs comes near this. */
#define YCFG_MAX_DEPTH 64

/* First pass over the events: refuses nesting deeper than YCFG_MAX_DEPTH before the document
 * loader ever sees it (stopping at the first level too deep keeps the pass linear). */
static int check_depth(const char *name, const unsigned char *buf, size_t len, char *err,
                       size_t err_len) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    vt_seterr(err, err_len, "%s: out of memory", name);
    return -1;
  }
  yaml_parser_set_input_string(&p, buf, len);
  int depth = 0, rc = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(&p, &ev)) break; /* the loader reports the syntax error */
    yaml_event_type_t t = ev.type;
    size_t line = ev.start_mark.line + 1;
    yaml_event_delete(&ev);
    if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
      if (++depth > YCFG_MAX_DEPTH) {
        vt_seterr(err, err_len, "%s:%zu: nesting deeper than %d levels", name, line,
                  YCFG_MAX_DEPTH);
        rc = -1;
        break;
      }
    } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
      depth--;
    } else if (t == YAML_STREAM_END_EVENT) {
      break;
    }
  }
  yaml_parser_delete(&p);
  return rc;
}

typedef struct {
  const char *key;
  size_t line;
} key_line;

static int cmp_key_line(const void *a, const void *b) {
  const key_line *x = a, *y = b;
  int c = strcmp(x->key, y->key);
  return c ? c : x->line < y->line ? -1 : x->line > y->line;
}

/* Every mapping of the document, each once (the node table, not the tree, so aliases cost
 * nothing): a key given twice is an error naming both lines. Sorting keeps it n log n. */
static int check_duplicates(ycfg *c, char *err, size_t err_len) {
  key_line *kl = NULL;
  size_t cap = 0;
  int rc = 0;
  for (yaml_node_t *n = c->doc.nodes.start; n < c->doc.nodes.top && rc == 0; n++) {
    if (n->type != YAML_MAPPING_NODE) continue;
    size_t k = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start), m = 0;
    if (k < 2) continue;
    if (k > cap) {
      key_line *nk = realloc(kl, k * sizeof *kl);
      if (!nk) {
        vt_seterr(err, err_len, "%s: out of memory", c->path);
        rc = -1;
        break;
      }
      kl = nk;
      cap = k;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
      yaml_node_t *kn = yaml_document_get_node(&c->doc, p->key);
      if (kn && kn->type == YAML_SCALAR_NODE)
        kl[m++] = (key_line){(const char *)kn->data.scalar.value, kn->start_mark.line + 1};
    }
    qsort(kl, m, sizeof *kl, cmp_key_line);
    for (size_t i = 1; i < m; i++)
      if (strcmp(kl[i - 1].key, kl[i].key) == 0) {
        vt_seterr(err, err_len, "%s:%zu: duplicate key '%.200s' (first given at line %zu)", c->path,
                  kl[i].line, kl[i].key, kl[i - 1].line);
        rc = -1;
        break;
      }
  }
  free(kl);
  return rc;
}

int ycfg_load_mem(ycfg *c, const char *name, const char *buf, size_t len, char *err,
                  size_t err_len) {
  memset(c, 0, sizeof *c);
  snprintf(c->path, sizeof c->path, "%s", name);
  snprintf(c->dir, sizeof c->dir, "%s", name);
  char *slash = strrchr(c->dir, '/');
  if (slash)
    *slash = 0;
  else
    strcpy(c->dir, ".");
  if (memchr(buf, 0, len)) {
    vt_seterr(err, err_len, "%s: a NUL byte at offset %zu: not a text file", name,
              (size_t)((const char *)memchr(buf, 0, len) - buf));
    return -1;
  }
  if (check_depth(name, (const unsigned char *)buf, len, err, err_len)) return -1;
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p)) {
    vt_seterr(err, err_len, "%s: out of memory", name);
    return -1;
  }
  yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
  int ok = yaml_parser_load(&p, &c->doc);
  if (!ok)
    vt_seterr(err, err_len, "%s:%zu: YAML: %s", name, p.problem_mark.line + 1,
              p.problem ? p.problem : "parse error");
  yaml_parser_delete(&p);
  if (!ok) return -1;
  c->loaded = true;
  if (check_duplicates(c, err, err_len)) {
    ycfg_free(c);
    return -1;
  }
  return 0;
}

int ycfg_load(ycfg *c, const char *path, char *err, size_t err_len) {
  memset(c, 0, sizeof *c);
  size_t len = 0;
  char *buf = vt_read_regular(path, YCFG_MAX_BYTES, &len, err, err_len);
  if (!buf) return -1;
  int rc = ycfg_load_mem(c, path, buf, len, err, err_len);
  free(buf);
  return rc;
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
    vt_seterr(err, err_len, "%s:%zu: %s: expected a mapping", c->path,
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
      vt_seterr(err, err_len, "%s:%zu: unknown key '%s' in %s (known: %s)", c->path,
                kn->start_mark.line + 1, k ? k : "?", where, list);
      return -1;
    }
  }
  return 0;
}

static int expect(ycfg *c, yaml_node_t *n, const char *key, const char *what, char *err,
                  size_t err_len) {
  const char *s = scalar(n);
  vt_seterr(err, err_len, "%s:%zu: %s: expected %s, found %s", c->path,
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

/* Numbers and booleans are plain scalars: `lr: "1e-4"` is a string in YAML, and taking it as
 * a number would hide a config that means something else to every other YAML reader. */
static const char *plain(yaml_node_t *n) {
  return n && n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE
             ? (const char *)n->data.scalar.value
             : NULL;
}

static int expect_plain(ycfg *c, yaml_node_t *n, const char *key, const char *what, char *err,
                        size_t err_len) {
  if (scalar(n) && !plain(n)) {
    vt_seterr(err, err_len, "%s:%zu: %s: expected %s, found the quoted string \"%.80s\"", c->path,
              n->start_mark.line + 1, key, what, scalar(n));
    return -1;
  }
  return expect(c, n, key, what, err, err_len);
}

int ycfg_int(ycfg *c, yaml_node_t *n, const char *key, long long *out, char *err, size_t err_len) {
  const char *s = plain(n);
  char *end;
  errno = 0;
  long long v = s ? strtoll(s, &end, 10) : 0;
  if (!s || end == s || *end) return expect_plain(c, n, key, "an integer", err, err_len);
  if (errno == ERANGE) {
    vt_seterr(err, err_len, "%s:%zu: %s: %.80s is outside the 64-bit integer range", c->path,
              n->start_mark.line + 1, key, s);
    return -1;
  }
  *out = v;
  return 0;
}

int ycfg_int_range(ycfg *c, yaml_node_t *n, const char *key, long long lo, long long hi,
                   long long *out, char *err, size_t err_len) {
  long long v;
  if (ycfg_int(c, n, key, &v, err, err_len)) return -1;
  if (v < lo || v > hi) {
    vt_seterr(err, err_len, "%s:%zu: %s: expected an integer in [%lld, %lld], found %lld", c->path,
              n->start_mark.line + 1, key, lo, hi, v);
    return -1;
  }
  *out = v;
  return 0;
}

int ycfg_float(ycfg *c, yaml_node_t *n, const char *key, double *out, char *err, size_t err_len) {
  const char *s = plain(n);
  char *end;
  double v = s ? strtod(s, &end) : 0;
  if (!s || end == s || *end) return expect_plain(c, n, key, "a number", err, err_len);
  if (!isfinite(v)) { /* inf, nan, and 1e400 (which strtod turns into inf) */
    vt_seterr(err, err_len, "%s:%zu: %s: expected a finite number, found %.80s", c->path,
              n->start_mark.line + 1, key, s);
    return -1;
  }
  *out = v;
  return 0;
}

int ycfg_bool(ycfg *c, yaml_node_t *n, const char *key, bool *out, char *err, size_t err_len) {
  const char *s = plain(n);
  if (s && (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1")))
    *out = true;
  else if (s && (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0")))
    *out = false;
  else
    return expect_plain(c, n, key, "true or false", err, err_len);
  return 0;
}

void ycfg_resolve(const ycfg *c, const char *p, char *out, size_t out_len) {
  if (p[0] == '/')
    snprintf(out, out_len, "%s", p);
  else
    snprintf(out, out_len, "%s/%s", c->dir, p);
}
