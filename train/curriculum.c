/* The curriculum config and the runner; see curriculum.h. The summary is in
 * curriculum_summary.c. */
#include "train/curriculum.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "train/curriculum_impl.h"
#include "train/metrics.h"
#include "train/trainer.h"

/* ---- the config ---------------------------------------------------------------------------- */

/* Keys of a stage entry that are the curriculum's, not the stage config's. */
static const char *const entry_keys[] = {"config", "metric", "chance", "from_previous", NULL};

static bool is_entry_key(const char *k) {
  for (int i = 0; entry_keys[i]; i++)
    if (!strcmp(k, entry_keys[i])) return true;
  return false;
}

static int node_id(ycfg *y, yaml_node_t *n) { return (int)(n - y->doc.nodes.start) + 1; }
static yaml_node_t *node(ycfg *y, int id) { return yaml_document_get_node(&y->doc, id); }
static const char *scalar_of(ycfg *y, int id) {
  yaml_node_t *n = node(y, id);
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The value id of key in mapping map_id, or 0. */
static int find_pair(ycfg *y, int map_id, const char *key) {
  yaml_node_t *m = node(y, map_id);
  if (!m || m->type != YAML_MAPPING_NODE) return 0;
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    const char *k = scalar_of(y, p->key);
    if (k && !strcmp(k, key)) return p->value;
  }
  return 0;
}

static int add_key(ycfg *y, const char *s, size_t n) {
  return yaml_document_add_scalar(&y->doc, NULL, (yaml_char_t *)s, (int)n, YAML_PLAIN_SCALAR_STYLE);
}

/* Puts (key, value) into map_id: a mapping value merges into a mapping already there (so
 * "train: {...}" and "train.lr: ..." combine); any other clash is an error. Node pointers
 * move as the document grows: only ids are kept across additions. */
static int put_pair(ycfg *y, int map_id, int key_id, const char *key, int value_id, int line,
                    char *err, size_t err_len) {
  int have = find_pair(y, map_id, key);
  if (!have) return yaml_document_append_mapping_pair(&y->doc, map_id, key_id, value_id) ? 0 : -1;
  yaml_node_t *a = node(y, have), *b = node(y, value_id);
  if (a->type != YAML_MAPPING_NODE || b->type != YAML_MAPPING_NODE) {
    vt_seterr(err, err_len, "%s:%d: override %s given twice", y->path, line, key);
    return -1;
  }
  int n = (int)(b->data.mapping.pairs.top - b->data.mapping.pairs.start);
  yaml_node_pair_t *snap = malloc(sizeof *snap * (size_t)(n ? n : 1));
  if (!snap) return -1;
  memcpy(snap, b->data.mapping.pairs.start, sizeof *snap * (size_t)n);
  int rc = 0;
  for (int i = 0; !rc && i < n; i++) {
    const char *k = scalar_of(y, snap[i].key);
    rc = k ? put_pair(y, have, snap[i].key, k, snap[i].value, line, err, err_len) : -1;
  }
  free(snap);
  return rc;
}

/* A mapping of the stage config's keys from an entry (or defaults): the curriculum's own
 * keys left out, dotted keys ("train.steps") made nested. Returns its id, or 0 with err. */
static int overlay_of(ycfg *y, int entry_id, char *err, size_t err_len) {
  int out = yaml_document_add_mapping(&y->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
  yaml_node_t *e = node(y, entry_id);
  int n = (int)(e->data.mapping.pairs.top - e->data.mapping.pairs.start);
  yaml_node_pair_t *snap = malloc(sizeof *snap * (size_t)(n ? n : 1));
  if (!out || !snap) {
    free(snap);
    vt_seterr(err, err_len, "%s: out of memory", y->path);
    return 0;
  }
  memcpy(snap, e->data.mapping.pairs.start, sizeof *snap * (size_t)n);
  int rc = 0;
  for (int i = 0; !rc && i < n; i++) {
    const char *k = scalar_of(y, snap[i].key);
    int line = (int)node(y, snap[i].key)->start_mark.line + 1;
    if (!k) {
      vt_seterr(err, err_len, "%s:%d: a stage entry's keys must be names", y->path, line);
      rc = -1;
      break;
    }
    if (is_entry_key(k)) continue;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", k);
    int map = out;
    char *seg = buf, *dot;
    while (!rc && (dot = strchr(seg, '.'))) { /* walk or create the sections */
      *dot = '\0';
      int sub = find_pair(y, map, seg);
      if (!sub) {
        sub = yaml_document_add_mapping(&y->doc, NULL, YAML_BLOCK_MAPPING_STYLE);
        int kid = add_key(y, seg, strlen(seg));
        rc = sub && kid && yaml_document_append_mapping_pair(&y->doc, map, kid, sub) ? 0 : -1;
      } else if (node(y, sub)->type != YAML_MAPPING_NODE) {
        vt_seterr(err, err_len, "%s:%d: override %s: %s is not a section", y->path, line, k, seg);
        rc = -1;
      }
      map = sub;
      seg = dot + 1;
    }
    if (rc) break;
    int kid = seg == buf ? snap[i].key : add_key(y, seg, strlen(seg));
    rc = kid ? put_pair(y, map, kid, seg, snap[i].value, line, err, err_len) : -1;
  }
  free(snap);
  if (rc && !err[0]) vt_seterr(err, err_len, "%s: out of memory", y->path);
  return rc ? 0 : out;
}

void curriculum_free(curriculum *c) {
  for (int i = 0; i < c->n_stages; i++) free(c->stages[i].cfg), free(c->stages[i].prep);
  free(c->stages);
  memset(c, 0, sizeof *c);
}

/* A stage's name as a directory name: path separators and blanks become '_'. */
static void dir_name(const char *name, char *out, size_t len) {
  snprintf(out, len, "%s", name);
  for (char *p = out; *p; p++)
    if (*p == '/' || *p == ' ' || *p == '\t') *p = '_';
}

/* "configs/x/../../runs/r" as "runs/r": the run dir is printed on every line that names a
 * file. Only "NAME/.." pairs of plain names are dropped (lexically; no links are followed). */
static void tidy_path(char *p) {
  char *seg[512], buf[STAGE_PATH];
  int n = 0;
  bool abs = p[0] == '/';
  snprintf(buf, sizeof buf, "%s", p);
  for (char *t = strtok(buf, "/"); t && n < 512; t = strtok(NULL, "/")) {
    if (!strcmp(t, ".")) continue;
    if (!strcmp(t, "..") && n > 0 && strcmp(seg[n - 1], "..")) {
      n--;
      continue;
    }
    seg[n++] = t;
  }
  size_t o = 0;
  p[0] = '\0';
  if (abs) p[o++] = '/', p[o] = '\0';
  for (int i = 0; i < n; i++)
    o += (size_t)snprintf(p + o, STAGE_PATH - o, "%s%s", i ? "/" : "", seg[i]);
  if (!o) snprintf(p, STAGE_PATH, ".");
}

/* The chance level of an entry: a number, an eval metric's name, or FILE.json:key. */
static int read_chance(ycfg *y, yaml_node_t *v, curriculum_stage *s, char *err, size_t err_len) {
  const char *txt;
  if (ycfg_str(y, v, "chance", &txt, err, err_len)) return -1;
  char *end;
  double x = strtod(txt, &end);
  if (*txt && !*end) {
    s->chance = x;
    return 0;
  }
  if (!strcmp(txt, "start")) { /* the metric of the stage's initial weights */
    if (!s->metric[0]) {
      vt_seterr(err, err_len, "%s:%d: chance: start needs the metric named (metric: NAME)", y->path,
                (int)v->start_mark.line + 1);
      return -1;
    }
    s->chance_start = true;
    snprintf(s->chance_metric, sizeof s->chance_metric, "start_%s", s->metric);
    return 0;
  }
  const char *colon = strrchr(txt, ':');
  if (!colon || colon - txt < 6 || strncmp(colon - 5, ".json", 5)) {
    snprintf(s->chance_metric, sizeof s->chance_metric, "%s", txt);
    return 0;
  }
  char file[STAGE_PATH], rel[STAGE_PATH];
  snprintf(rel, sizeof rel, "%.*s", (int)(colon - txt), txt);
  ycfg_resolve(y, rel, file, sizeof file);
  char why[1024];
  char *text = ckpt_read_text(file, why, sizeof why);
  json_t *j = text ? json_loads(text, 0, NULL) : NULL;
  json_t *val = json_object_get(j, colon + 1);
  int rc = 0;
  if (!json_is_number(val)) {
    vt_seterr(err, err_len, "%s:%d: chance: %s has no number \"%s\"%s%s", y->path,
              (int)v->start_mark.line + 1, file, colon + 1, text ? "" : ": ", text ? "" : why);
    rc = -1;
  } else {
    s->chance = json_number_value(val);
  }
  json_decref(j);
  free(text);
  return rc;
}

/* from_previous: a bool, or parts / globs (one or a list; parts are expanded once the stage
 * config is loaded, into raw until then). */
static int read_previous(ycfg *y, yaml_node_t *v, curriculum_stage *s, char *raw, char *err,
                         size_t err_len) {
  const char *txt;
  if (v->type == YAML_SCALAR_NODE && (!strcmp((const char *)v->data.scalar.value, "true") ||
                                      !strcmp((const char *)v->data.scalar.value, "false")))
    return ycfg_bool(y, v, "from_previous", &s->from_previous, err, err_len);
  size_t o = 0;
  int n = v->type == YAML_SEQUENCE_NODE
              ? (int)(v->data.sequence.items.top - v->data.sequence.items.start)
              : 1;
  for (int i = 0; i < n; i++) {
    yaml_node_t *e = v->type == YAML_SEQUENCE_NODE
                         ? yaml_document_get_node(&y->doc, v->data.sequence.items.start[i])
                         : v;
    if (ycfg_str(y, e, "from_previous", &txt, err, err_len)) return -1;
    o +=
        (size_t)snprintf(raw + o, o < STAGE_GLOBS ? STAGE_GLOBS - o : 0, "%s%s", o ? "," : "", txt);
  }
  if (!o || o >= STAGE_GLOBS) {
    vt_seterr(err, err_len,
              "%s:%d: from_previous: expected true, false, or parts / name globs (at most %d "
              "characters)",
              y->path, (int)v->start_mark.line + 1, STAGE_GLOBS - 1);
    return -1;
  }
  return 0;
}

/* raw (comma-separated parts or globs) with the stage's parts replaced by their globs. */
static int expand_parts(const stage_cfg *cfg, const char *raw, char *out, size_t len) {
  char buf[STAGE_GLOBS];
  snprintf(buf, sizeof buf, "%s", raw);
  size_t o = 0;
  out[0] = '\0';
  for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    const char *g = t;
    for (int k = 0; k < cfg->n_parts; k++)
      if (!strcmp(cfg->parts[k].name, t)) g = cfg->parts[k].globs;
    o += (size_t)snprintf(out + o, o < len ? len - o : 0, "%s%s", o ? "," : "", g);
  }
  return o < len ? 0 : -1;
}

/* RUN/<n>-<name> of stage index. */
static int stage_dir(curriculum *c, int index, ycfg *y, char *err, size_t err_len) {
  curriculum_stage *s = &c->stages[index];
  char dn[160];
  dir_name(s->name, dn, sizeof dn);
  int w = snprintf(s->dir, sizeof s->dir, "%s/%d-%s", c->run_dir, index + 1, dn);
  if (w < 0 || (size_t)w >= sizeof s->dir) {
    vt_seterr(err, err_len, "%s: output.dir: too long", y->path);
    return -1;
  }
  return 0;
}

static int load_stage(curriculum *c, ycfg *y, int index, yaml_node_t *e, int defaults_id, char *err,
                      size_t err_len) {
  curriculum_stage *s = &c->stages[index];
  if (e->type == YAML_MAPPING_NODE && ycfg_get(y, e, "prep"))
    return curriculum_prep_load(c, y, index, e, err, err_len)
               ? -1
               : stage_dir(c, index, y, err, err_len);
  char raw[STAGE_GLOBS] = "";
  s->chance = NAN;
  s->from_previous = true;
  int line = (int)e->start_mark.line + 1;
  const char *cfg_path = NULL;
  int entry_id = node_id(y, e), over = 0;
  if (e->type == YAML_SCALAR_NODE) {
    cfg_path = (const char *)e->data.scalar.value;
  } else if (e->type == YAML_MAPPING_NODE) {
    yaml_node_t *v = ycfg_get(y, e, "config");
    if (!v || ycfg_str(y, v, "config", &cfg_path, err, err_len)) {
      if (!v)
        vt_seterr(err, err_len, "%s:%d: stages[%d]: config (the stage config file) is required",
                  y->path, line, index);
      return -1;
    }
    const char *metric = NULL;
    if ((v = ycfg_get(y, e, "metric")) && ycfg_str(y, v, "metric", &metric, err, err_len))
      return -1;
    if (metric) snprintf(s->metric, sizeof s->metric, "%s", metric);
    if ((v = ycfg_get(y, e, "chance")) && read_chance(y, v, s, err, err_len)) return -1;
    if ((v = ycfg_get(y, e, "from_previous")) && read_previous(y, v, s, raw, err, err_len))
      return -1;
    if (!(over = overlay_of(y, entry_id, err, err_len))) return -1;
  } else {
    vt_seterr(err, err_len, "%s:%d: stages[%d]: expected a stage config path or {config, ...}",
              y->path, line, index);
    return -1;
  }
  char path[STAGE_PATH];
  ycfg_resolve(y, cfg_path, path, sizeof path);
  if (!(s->cfg = malloc(sizeof *s->cfg))) {
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  yaml_node_t *maps[2] = {defaults_id ? node(y, defaults_id) : NULL, over ? node(y, over) : NULL};
  char why[3072];
  if (stage_config_load_with(s->cfg, path, y, maps, 2, NULL, why, sizeof why)) {
    vt_seterr(err, err_len, "%s: stages[%d]: %s", y->path, index, why);
    return -1;
  }
  s->name = s->cfg->name;
  if (stage_dir(c, index, y, err, err_len)) return -1;
  snprintf(s->cfg->out_dir, sizeof s->cfg->out_dir, "%s", s->dir);
  if (raw[0] && expand_parts(s->cfg, raw, s->previous_globs, sizeof s->previous_globs)) {
    vt_seterr(err, err_len, "%s: stages[%d]: from_previous: too many patterns", y->path, index);
    return -1;
  }
  return 0;
}

int curriculum_load(curriculum *c, const char *path, const char *run_dir, char *err,
                    size_t err_len) {
  static const char *const keys[] = {"name", "output", "save_initial", "defaults", "stages", NULL};
  static const char *const out_keys[] = {"dir", NULL};
  memset(c, 0, sizeof *c);
  snprintf(c->path, sizeof c->path, "%s", path);
  const char *base = strrchr(path, '/');
  snprintf(c->name, sizeof c->name, "%s", base ? base + 1 : path);
  char *dot = strrchr(c->name, '.');
  if (dot && dot != c->name) *dot = '\0';
  ycfg y;
  if (ycfg_load(&y, path, err, err_len)) return -1;
  int rc = -1;
  yaml_node_t *root = ycfg_root(&y), *v, *out, *list;
  if (!root || ycfg_check_keys(&y, root, keys, "the curriculum", err, err_len)) {
    if (!root) vt_seterr(err, err_len, "%s: the curriculum is empty", path);
    goto done;
  }
  const char *s;
  if ((v = ycfg_get(&y, root, "name")) && !ycfg_str(&y, v, "name", &s, err, err_len))
    snprintf(c->name, sizeof c->name, "%s", s);
  else if (v)
    goto done;
  if ((v = ycfg_get(&y, root, "save_initial")) &&
      ycfg_bool(&y, v, "save_initial", &c->save_initial, err, err_len))
    goto done;
  out = ycfg_get(&y, root, "output");
  if (out && ycfg_check_keys(&y, out, out_keys, "output", err, err_len)) goto done;
  if (run_dir && *run_dir) {
    snprintf(c->run_dir, sizeof c->run_dir, "%s", run_dir);
  } else if ((v = ycfg_get(&y, out, "dir")) && !ycfg_str(&y, v, "output.dir", &s, err, err_len)) {
    ycfg_resolve(&y, s, c->run_dir, sizeof c->run_dir);
  } else {
    if (!v) vt_seterr(err, err_len, "%s: output.dir (the run directory) is required", path);
    goto done;
  }
  tidy_path(c->run_dir);
  int defaults_id = 0;
  if ((v = ycfg_get(&y, root, "defaults"))) {
    if (v->type != YAML_MAPPING_NODE) {
      vt_seterr(err, err_len, "%s:%d: defaults: expected a mapping of stage config keys", path,
                (int)v->start_mark.line + 1);
      goto done;
    }
    if (!(defaults_id = overlay_of(&y, node_id(&y, v), err, err_len))) goto done;
  }
  list = ycfg_get(&y, root, "stages");
  int n = list && list->type == YAML_SEQUENCE_NODE
              ? (int)(list->data.sequence.items.top - list->data.sequence.items.start)
              : 0;
  if (n < 1) {
    vt_seterr(err, err_len, "%s: stages: expected a list of stage configs (at least one)", path);
    goto done;
  }
  int list_id = node_id(&y, list);
  if (!(c->stages = calloc((size_t)n, sizeof *c->stages))) {
    vt_seterr(err, err_len, "out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++) {
    /* re-fetched every time: overlays add nodes, which may move the node array */
    yaml_node_t *l = node(&y, list_id);
    int item = l->data.sequence.items.start[i];
    c->n_stages = i + 1;
    if (load_stage(c, &y, i, node(&y, item), defaults_id, err, err_len)) goto done;
  }
  rc = 0;
done:
  ycfg_free(&y);
  if (rc) curriculum_free(c);
  return rc;
}

/* ---- running -------------------------------------------------------------------------------- */

/* The final checkpoints of the stages before `index` that it starts from, newest first. */
static int bases_of(const curriculum *c, int index, char (*paths)[STAGE_PATH], const char **ptrs,
                    int *n, char *err, size_t err_len) {
  *n = 0;
  if (!c->stages[index].from_previous) return 0;
  for (int k = index - 1; k >= 0 && *n < STAGE_MAX_BASES; k--) {
    if (c->stages[k].prep) continue; /* a prep step holds no weights */
    char root[STAGE_PATH + 16];
    int64_t step;
    snprintf(root, sizeof root, "%s/checkpoints", c->stages[k].dir);
    int f = ckpt_find_latest(root, paths[*n], STAGE_PATH, &step, err, err_len);
    if (f < 0) return -1;
    if (!f) {
      vt_seterr(err, err_len, "stage %d (%s) starts from stage %d, which has no checkpoint in %s",
                index + 1, c->stages[index].name, k + 1, root);
      return -1;
    }
    ptrs[*n] = paths[*n];
    (*n)++;
  }
  return 0;
}

/* The trained parts as the config names them: a trainable entry equal to a part's globs is
 * that part; "all" when nothing is listed; frozen entries follow as "-name". */
void curriculum_trained_parts(const stage_cfg *cfg, char *out, size_t len) {
  size_t o = 0;
  out[0] = '\0';
#define PUT(...) o += (size_t)snprintf(out + o, o < len ? len - o : 0, __VA_ARGS__)
  if (!cfg->n_trainable) PUT("all");
  for (int pass = 0; pass < 2; pass++) {
    int n = pass ? cfg->n_frozen : cfg->n_trainable;
    for (int i = 0; i < n; i++) {
      const char *g = pass ? cfg->frozen[i] : cfg->trainable[i], *name = g;
      for (int k = 0; k < cfg->n_parts; k++)
        if (!strcmp(cfg->parts[k].globs, g)) name = cfg->parts[k].name;
      PUT("%s%s%s", o ? "," : "", pass ? "-" : "", name);
    }
  }
#undef PUT
  if (o >= len && len > 4) memcpy(out + len - 4, "...", 4);
}

/* The eval metrics of the final step from metrics.jsonl ("eval_NAME" values), as a JSON
 * object; empty when the stage evaluated nothing there. */
static json_t *final_eval(const char *dir, int64_t step) {
  json_t *res = json_object();
  char path[STAGE_PATH + 32], why[512];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  char *text = ckpt_read_text(path, why, sizeof why);
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    json_t *j = json_loads(line, 0, NULL);
    json_t *st = json_object_get(j, "step");
    const char *k;
    json_t *v;
    if (json_is_integer(st) && json_integer_value(st) == step)
      json_object_foreach(j, k, v) if (!strncmp(k, "eval_", 5) && json_is_number(v))
          json_object_set(res, k + 5, v);
    json_decref(j);
    if (!next) break;
  }
  free(text);
  return res;
}

/* stage.json of a stage after an attempt (rank 0). */
static int write_stage_json(const curriculum *c, int i, const vt_train_result *tr, double wall,
                            json_t *eval, char *err, size_t err_len) {
  const curriculum_stage *s = &c->stages[i];
  char parts[1024];
  curriculum_trained_parts(s->cfg, parts, sizeof parts);
  json_t *j = json_pack(
      "{s:s, s:i, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:f}", "stage", s->name, "index", i + 1,
      "config", s->cfg->path, "status", tr->interrupted ? "interrupted" : "done", "trained", parts,
      "params", (json_int_t)tr->params, "trainable_params", (json_int_t)tr->trainable_params,
      "step", (json_int_t)tr->step, "total_steps", (json_int_t)tr->total_steps, "checkpoint",
      tr->checkpoint, "wall_s", wall);
  if (j && eval) json_object_set(j, "eval", eval);
  return curriculum_write_json(s->dir, "stage.json", j, err, err_len);
}

int curriculum_write_json(const char *dir, const char *file, json_t *j, char *err, size_t err_len) {
  char path[STAGE_PATH + 64];
  char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  json_decref(j);
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int rc = text ? ckpt_write_text(path, text, err, err_len) : -1;
  if (!text) vt_seterr(err, err_len, "%s: out of memory", path);
  free(text);
  return rc;
}

json_t *curriculum_read_json(const char *dir, const char *file) {
  char path[STAGE_PATH + 64], why[512];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  char *text = ckpt_read_text(path, why, sizeof why);
  json_t *j = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  return j;
}

/* chance: start: the held-out metrics of the stage's initial weights, as "start_NAME". */
static int start_eval(const curriculum_stage *s, const char *init_path, const vt_dist *dist,
                      json_t *eval, char *err, size_t err_len) {
  vt_eval_result er;
  if (!s->cfg->eval_mixture[0]) {
    vt_seterr(err, err_len, "stage %s: chance: start needs data.eval_mixture", s->name);
    return -1;
  }
  if (vt_eval(s->cfg, init_path, s->cfg->eval_mixture, dist, &er, err, err_len)) return -1;
  for (int k = 0; k < er.n_metrics; k++) {
    char key[128];
    snprintf(key, sizeof key, "start_%s", er.metrics[k].name);
    json_object_set_new(eval, key, json_real(vt_eval_value(&er, er.metrics[k].name)));
  }
  return 0;
}

int curriculum_run(const curriculum_opts *o, curriculum_result *r, char *err, size_t err_len) {
  const curriculum *c = o->cur;
  vt_dist solo = {.rank = 0, .world = 1};
  const vt_dist *d = o->dist ? o->dist : &solo;
  FILE *con = d->rank == 0 ? o->console : NULL;
  memset(r, 0, sizeof *r);
  if (!o->resume && d->rank == 0) { /* afresh: what an earlier run left goes */
    char p[STAGE_PATH + 32];
    snprintf(p, sizeof p, "%s/curriculum.json", c->run_dir);
    bool had = !remove(p);
    for (int i = 0; i < c->n_stages; i++)
      if (ckpt_remove_tree(c->stages[i].dir, err, err_len)) return -1;
    if (had && con)
      fprintf(con,
              "starting afresh in %s (the stages of an earlier run removed; --resume "
              "continues one)\n",
              c->run_dir);
  }
  vt_dist_barrier(d);
  static char paths[STAGE_MAX_BASES][STAGE_PATH];
  const char *bases[STAGE_MAX_BASES];
  for (int i = 0; i < c->n_stages; i++) {
    const curriculum_stage *s = &c->stages[i];
    r->stage = i + 1;
    json_t *prev = curriculum_read_json(s->dir, "stage.json");
    const char *status = json_string_value(json_object_get(prev, "status"));
    double wall0 = json_number_value(json_object_get(prev, "wall_s"));
    int64_t had = json_integer_value(json_object_get(prev, "total_steps"));
    bool done = status && !strcmp(status, "done");
    json_decref(prev);
    if (done) {
      if (con)
        fprintf(con, "stage %d/%d %s: finished before, skipped\n", i + 1, c->n_stages, s->name);
      /* a finished stage is never redone, even when its config changed since */
      if (con && s->cfg && s->cfg->steps > 0 && had != s->cfg->steps)
        fprintf(con,
                "warning: stage %s finished with %lld steps; its config now says %lld (run "
                "without --resume to start afresh)\n",
                s->name, (long long)had, (long long)s->cfg->steps);
      r->done++;
      continue;
    }
    if (con) {
      fprintf(con, "\n== stage %d/%d %s (%s) ==\n", i + 1, c->n_stages, s->name, s->dir);
      fflush(con);
    }
    if (s->prep) { /* not done: (re)done from the start */
      bool stopped;
      if (curriculum_prep_run(o, i, &stopped, err, err_len) ||
          (d->rank == 0 && curriculum_summary(c, con, err, err_len)))
        return -1;
      r->ran++;
      if (stopped) {
        r->interrupted = true;
        return 0;
      }
      r->done++;
      continue;
    }
    int nb = 0;
    char init_path[STAGE_PATH + 32];
    snprintf(init_path, sizeof init_path, "%s/initial.safetensors", s->dir);
    if (bases_of(c, i, paths, bases, &nb, err, err_len) ||
        (d->rank == 0 && ckpt_mkdirs(s->dir, err, err_len)))
      return -1;
    vt_dist_barrier(d);
    /* resume is always asked of the trainer: a stage dir without a checkpoint starts afresh
     * (and without --resume the dirs were emptied above) */
    vt_trainer_opts to = {.cfg = s->cfg,
                          .resume = true,
                          .dist = o->dist,
                          .console = con,
                          .stop = o->stop,
                          .stop_after = o->stop_stage == i + 1 ? o->stop_after : 0,
                          .base_weights = bases,
                          .n_base_weights = nb,
                          .base_globs = s->previous_globs[0] ? s->previous_globs : NULL,
                          .save_initial = c->save_initial || s->chance_start ? init_path : NULL};
    vt_train_result tr;
    double t0 = vt_now();
    if (vt_train(&to, &tr, err, err_len)) return -1;
    double wall = (wall0 > 0 ? wall0 : 0) + (vt_now() - t0);
    r->ran++;
    json_t *eval = NULL;
    if (!tr.interrupted) {
      eval = final_eval(s->dir, tr.step);
      /* no eval line at the last step: one pass over the eval set now */
      if (!json_object_size(eval) && s->cfg->eval_mixture[0]) {
        /* rank 0 wrote the checkpoint: every rank finds it once written */
        char ck[STAGE_PATH], root[STAGE_PATH + 16];
        int64_t step;
        vt_dist_barrier(d);
        snprintf(root, sizeof root, "%s/checkpoints", s->dir);
        vt_eval_result er;
        if (ckpt_find_latest(root, ck, sizeof ck, &step, err, err_len) != 1 ||
            vt_eval(s->cfg, ck, s->cfg->eval_mixture, o->dist, &er, err, err_len)) {
          if (!err[0]) vt_seterr(err, err_len, "%s: no checkpoint to evaluate", root);
          json_decref(eval);
          return -1;
        }
        for (int k = 0; k < er.n_metrics; k++)
          json_object_set_new(eval, er.metrics[k].name,
                              json_real(vt_eval_value(&er, er.metrics[k].name)));
      }
      if (s->chance_start && start_eval(s, init_path, o->dist, eval, err, err_len)) {
        json_decref(eval);
        return -1;
      }
    }
    int rc = d->rank == 0 ? write_stage_json(c, i, &tr, wall, eval, err, err_len) : 0;
    json_decref(eval);
    if (rc || (d->rank == 0 && curriculum_summary(c, con, err, err_len))) return -1;
    vt_dist_barrier(d);
    if (tr.interrupted) {
      r->interrupted = true;
      return 0;
    }
    r->done++;
  }
  /* everything had finished before: the summary once */
  if (!r->ran && d->rank == 0 && curriculum_summary(c, con, err, err_len)) return -1;
  return 0;
}
