/* The curriculum's summary: one row per stage built from its run dir (stage.json,
 * samples.json, metrics.jsonl), printed as a table and written as RUN/curriculum.json; see
 * curriculum.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "train/curriculum_impl.h"

/* First and last loss of metrics.jsonl (the lines with a "loss"), and the last step. */
static void read_losses(const char *dir, double *first, double *last, int64_t *last_step) {
  *first = *last = NAN;
  *last_step = 0;
  char path[STAGE_PATH + 32], why[256];
  snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
  char *text = ckpt_read_text(path, why, sizeof why);
  int64_t first_step = INT64_MAX;
  for (char *line = text, *next; line && *line; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = '\0';
    json_t *j = json_loads(line, 0, NULL), *st = json_object_get(j, "step");
    json_t *loss = json_object_get(j, "loss");
    if (json_is_integer(st) && json_is_number(loss)) {
      int64_t s = json_integer_value(st);
      if (s < first_step) first_step = s, *first = json_number_value(loss);
      if (s >= *last_step) *last_step = s, *last = json_number_value(loss);
    }
    json_decref(j);
    if (!next) break;
  }
  free(text);
}

/* The metric the summary reports: the configured one, else the first besides loss. */
static const char *pick_metric(const curriculum_stage *s, json_t *eval) {
  if (s->metric[0]) return s->metric;
  const char *k, *any = NULL;
  json_t *v;
  json_object_foreach(eval, k, v) {
    if (strcmp(k, "loss")) return k;
    any = k;
  }
  return any;
}

static json_t *num_or_null(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* One stage's row as JSON. */
static json_t *stage_row(const curriculum *c, int i) {
  const curriculum_stage *s = &c->stages[i];
  json_t *st = curriculum_read_json(s->dir, "stage.json");
  json_t *sm = curriculum_read_json(s->dir, "samples.json");
  char parts[1024];
  if (s->cfg)
    curriculum_trained_parts(s->cfg, parts, sizeof parts);
  else
    snprintf(parts, sizeof parts, "- (prep, codec of %s)", c->stages[s->prep->codec_stage].name);
  double first, last;
  int64_t last_step;
  read_losses(s->dir, &first, &last, &last_step);
  const char *status = json_string_value(json_object_get(st, "status"));
  if (!status) status = last_step > 0 ? "interrupted" : "pending";
  json_t *row = json_pack("{s:i, s:s, s:s, s:s, s:s}", "index", i + 1, "stage", s->name, "dir",
                          s->dir, "status", status, "trained", parts);
  const char *copy[] = {"params", "trainable_params", "total_steps", "checkpoint", "wall_s"};
  for (size_t k = 0; k < sizeof copy / sizeof *copy; k++) {
    json_t *v = json_object_get(st, copy[k]);
    json_object_set(row, copy[k], v ? v : json_null());
  }
  json_object_set_new(row, "steps", json_integer(last_step));
  json_t *ds = json_object_get(sm, "datasets");
  if (s->prep) { /* the samples a prep step wrote per set */
    json_t *sets = json_object_get(st, "sets"), *e;
    size_t k;
    ds = json_array();
    json_array_foreach(sets, k, e)
        json_array_append_new(ds, json_pack("{s:O, s:O}", "name", json_object_get(e, "name"),
                                            "drawn", json_object_get(e, "written")));
    json_object_set_new(row, "kind", json_string("prep"));
    json_object_set_new(row, "samples", ds);
  } else {
    json_object_set_new(row, "samples", ds ? json_incref(ds) : json_array());
  }
  json_object_set_new(row, "loss_first", num_or_null(first));
  json_object_set_new(row, "loss_last", num_or_null(last));
  json_t *eval = json_object_get(st, "eval");
  const char *metric = eval ? pick_metric(s, eval) : NULL;
  double value = metric ? json_number_value(json_object_get(eval, metric)) : NAN;
  if (metric && !json_is_number(json_object_get(eval, metric))) value = NAN;
  double chance = s->chance;
  if (!isfinite(chance) && s->chance_metric[0]) {
    json_t *cv = json_object_get(eval, s->chance_metric);
    chance = json_is_number(cv) ? json_number_value(cv) : NAN;
  }
  json_object_set_new(row, "eval",
                      metric ? json_pack("{s:s, s:o, s:o}", "metric", metric, "value",
                                         num_or_null(value), "chance", num_or_null(chance))
                             : json_null());
  json_object_set_new(row, "eval_all", eval ? json_incref(eval) : json_object());
  json_decref(st);
  json_decref(sm);
  return row;
}

static void fmt_wall(double s, char *buf, size_t len) {
  if (!isfinite(s) || s <= 0)
    snprintf(buf, len, "-");
  else if (s < 60)
    snprintf(buf, len, "%.1fs", s);
  else if (s < 3600)
    snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    snprintf(buf, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

#define N_COLS 9
#define CELL 256

/* The printed cells of a row. */
static void row_cells(json_t *row, char cells[N_COLS][CELL]) {
  char a[64], b[64];
  snprintf(cells[0], CELL, "%d", (int)json_integer_value(json_object_get(row, "index")));
  snprintf(cells[1], CELL, "%s", json_string_value(json_object_get(row, "stage")));
  snprintf(cells[2], CELL, "%s", json_string_value(json_object_get(row, "status")));
  snprintf(cells[3], CELL, "%s", json_string_value(json_object_get(row, "trained")));
  json_t *tp = json_object_get(row, "trainable_params");
  if (json_is_integer(tp))
    vt_group_digits(json_integer_value(tp), cells[4], CELL);
  else
    snprintf(cells[4], CELL, "-");
  json_t *tot = json_object_get(row, "total_steps");
  snprintf(a, sizeof a, "%lld", (long long)json_integer_value(json_object_get(row, "steps")));
  if (json_is_integer(tot))
    snprintf(cells[5], CELL, "%s/%lld", a, (long long)json_integer_value(tot));
  else
    snprintf(cells[5], CELL, "%s", a);
  size_t o = 0;
  size_t k;
  json_t *d;
  cells[6][0] = '\0';
  json_array_foreach(json_object_get(row, "samples"), k, d) {
    if (o < CELL)
      o += (size_t)snprintf(cells[6] + o, CELL - o, "%s%s %lld", k ? ", " : "",
                            json_string_value(json_object_get(d, "name")),
                            (long long)json_integer_value(json_object_get(d, "drawn")));
  }
  if (!o) snprintf(cells[6], CELL, "-");
  double f = json_number_value(json_object_get(row, "loss_first"));
  double l = json_number_value(json_object_get(row, "loss_last"));
  if (json_is_number(json_object_get(row, "loss_first")))
    snprintf(cells[7], CELL, "%.4f -> %.4f", f, l);
  else
    snprintf(cells[7], CELL, "-");
  json_t *ev = json_object_get(row, "eval");
  if (json_is_object(ev)) {
    json_t *ch = json_object_get(ev, "chance");
    snprintf(b, sizeof b, " (chance %.4g)", json_number_value(ch));
    double v = json_number_value(json_object_get(ev, "value"));
    bool count = json_object_get(row, "kind") != NULL; /* a prep step's samples written */
    snprintf(cells[8], CELL, count ? "%s %.0f%s" : "%s %.4f%s",
             json_string_value(json_object_get(ev, "metric")), v, json_is_number(ch) ? b : "");
  } else {
    snprintf(cells[8], CELL, "-");
  }
}

int curriculum_summary(const curriculum *c, FILE *out, char *err, size_t err_len) {
  json_t *rows = json_array();
  double wall = 0;
  int done = 0;
  for (int i = 0; i < c->n_stages; i++) {
    json_t *row = stage_row(c, i);
    wall += json_number_value(json_object_get(row, "wall_s"));
    done += !strcmp(json_string_value(json_object_get(row, "status")), "done");
    json_array_append_new(rows, row);
  }
  json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:f, s:o}", "curriculum", c->name, "config",
                        c->path, "run_dir", c->run_dir, "n_stages", c->n_stages, "stages_done",
                        done, "wall_s", wall, "stages", rows);
  char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  char path[STAGE_PATH + 32];
  snprintf(path, sizeof path, "%s/curriculum.json", c->run_dir);
  int rc = text && !ckpt_mkdirs(c->run_dir, err, err_len)
               ? ckpt_write_text(path, text, err, err_len)
               : -1;
  if (!text) vt_seterr(err, err_len, "%s: out of memory", path);
  free(text);
  if (!rc && out) {
    static const char *const head[N_COLS] = {
        "#",         "stage", "status",        "trained",
        "trainable", "steps", "samples drawn", "loss first -> last",
        "eval"};
    char(*cells)[N_COLS][CELL] = calloc((size_t)c->n_stages, sizeof *cells);
    int w[N_COLS + 1];
    for (int k = 0; k < N_COLS; k++) w[k] = (int)strlen(head[k]);
    for (int i = 0; cells && i < c->n_stages; i++) {
      row_cells(json_array_get(rows, (size_t)i), cells[i]);
      for (int k = 0; k < N_COLS; k++)
        if ((int)strlen(cells[i][k]) > w[k]) w[k] = (int)strlen(cells[i][k]);
    }
    char wb[32];
    fmt_wall(wall, wb, sizeof wb);
    fprintf(out, "\ncurriculum %s: %d/%d stages done, wall %s (%s)\n", c->name, done, c->n_stages,
            wb, path);
    for (int k = 0; k < N_COLS; k++) fprintf(out, "%-*s  ", w[k], head[k]);
    fprintf(out, "wall\n");
    for (int i = 0; cells && i < c->n_stages; i++) {
      for (int k = 0; k < N_COLS; k++) fprintf(out, "%-*s  ", w[k], cells[i][k]);
      fmt_wall(json_number_value(json_object_get(json_array_get(rows, (size_t)i), "wall_s")), wb,
               sizeof wb);
      fprintf(out, "%s\n", wb);
    }
    fflush(out);
    free(cells);
  }
  json_decref(j);
  return rc;
}
