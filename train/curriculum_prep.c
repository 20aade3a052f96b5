/* A curriculum's prep steps (see curriculum.h): `vita prep` of JSON files between two stages,
 * with the final checkpoint of an earlier stage as the speech codec (stage 3.2's pairs as the
 * tokens of the codec that 3.1 trained). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "data/tokenizer.h"
#include "train/curriculum_impl.h"
#include "train/metrics.h"

/* One {input, out} of sets. */
static int load_set(ycfg *y, yaml_node_t *e, curriculum_prep *p, int k, char *err, size_t err_len) {
  static const char *const keys[] = {"input", "out", NULL};
  const char *in, *out;
  yaml_node_t *vi = ycfg_get(y, e, "input"), *vo = ycfg_get(y, e, "out");
  if (!e || e->type != YAML_MAPPING_NODE || !vi || !vo) {
    vt_seterr(err, err_len, "%s:%d: %s: sets[%d]: expected {input: FILE.json, out: DIR}", y->path,
              e ? (int)e->start_mark.line + 1 : 0, p->name, k);
    return -1;
  }
  if (ycfg_check_keys(y, e, keys, "a prep set", err, err_len) ||
      ycfg_str(y, vi, "input", &in, err, err_len) || ycfg_str(y, vo, "out", &out, err, err_len))
    return -1;
  ycfg_resolve(y, in, p->sets[k].input, sizeof p->sets[k].input);
  ycfg_resolve(y, out, p->sets[k].out, sizeof p->sets[k].out);
  const char *base = strrchr(p->sets[k].out, '/');
  snprintf(p->sets[k].name, sizeof p->sets[k].name, "%s", base && base[1] ? base + 1 : out);
  return 0;
}

int curriculum_prep_load(curriculum *c, ycfg *y, int index, yaml_node_t *e, char *err,
                         size_t err_len) {
  static const char *const keys[] = {"prep", "codec", "config", "sets", NULL};
  curriculum_stage *s = &c->stages[index];
  int line = (int)e->start_mark.line + 1;
  curriculum_prep *p = s->prep = calloc(1, sizeof *s->prep);
  if (!p) {
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  s->name = p->name;
  s->chance = NAN;
  const char *name, *codec, *cfg;
  yaml_node_t *v;
  if (ycfg_check_keys(y, e, keys, "a prep step", err, err_len) ||
      ycfg_str(y, ycfg_get(y, e, "prep"), "prep", &name, err, err_len))
    return -1;
  snprintf(p->name, sizeof p->name, "%s", name);
  if (!(v = ycfg_get(y, e, "codec")) || ycfg_str(y, v, "codec", &codec, err, err_len) ||
      !(v = ycfg_get(y, e, "config")) || ycfg_str(y, v, "config", &cfg, err, err_len)) {
    if (!err[0])
      vt_seterr(err, err_len,
                "%s:%d: stages[%d]: prep %s: codec (an earlier stage's name) and config (the "
                "data config) are required",
                y->path, line, index, p->name);
    return -1;
  }
  ycfg_resolve(y, cfg, p->config, sizeof p->config);
  p->codec_stage = -1;
  for (int k = index - 1; k >= 0 && p->codec_stage < 0; k--)
    if (c->stages[k].cfg && !strcmp(c->stages[k].name, codec)) p->codec_stage = k;
  if (p->codec_stage < 0) {
    vt_seterr(err, err_len, "%s:%d: stages[%d]: prep %s: codec: no stage %s before it", y->path,
              line, index, p->name, codec);
    return -1;
  }
  v = ycfg_get(y, e, "sets");
  int n = v && v->type == YAML_SEQUENCE_NODE
              ? (int)(v->data.sequence.items.top - v->data.sequence.items.start)
              : 0;
  if (n < 1 || n > CURRICULUM_PREP_SETS) {
    vt_seterr(err, err_len,
              "%s:%d: stages[%d]: prep %s: sets: expected a list of 1 to %d {input, out} "
              "(found %d)",
              y->path, line, index, p->name, CURRICULUM_PREP_SETS, n);
    return -1;
  }
  int list_id = (int)(v - y->doc.nodes.start) + 1;
  for (int k = 0; k < n; k++) {
    yaml_node_t *l = yaml_document_get_node(&y->doc, list_id);
    if (load_set(y, yaml_document_get_node(&y->doc, l->data.sequence.items.start[k]), p, k, err,
                 err_len))
      return -1;
  }
  p->n_sets = n;
  return 0;
}

/* stage.json of a prep step (rank 0). */
static int write_prep_json(const curriculum *c, int i, const char *codec, json_t *sets,
                           int64_t written, int64_t skipped, int64_t tokens, bool done, double wall,
                           char *err, size_t err_len) {
  const curriculum_stage *s = &c->stages[i];
  json_t *j = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:O, s:f, s:{s:I, s:I, s:I}}", "stage",
                        s->name, "kind", "prep", "index", i + 1, "config", s->prep->config,
                        "status", done ? "done" : "interrupted", "codec_stage",
                        c->stages[s->prep->codec_stage].name, "checkpoint", codec, "sets", sets,
                        "wall_s", wall, "eval", "written", (json_int_t)written, "skipped",
                        (json_int_t)skipped, "codec_tokens", (json_int_t)tokens);
  return curriculum_write_json(s->dir, "stage.json", j, err, err_len);
}

/* The work of prep step i on rank 0: every set afresh (its out directory emptied first). */
static int prep_sets(const curriculum_opts *o, int i, bool *stopped, char *err, size_t err_len) {
  const curriculum *c = o->cur;
  const curriculum_stage *s = &c->stages[i];
  const curriculum_prep *p = s->prep;
  FILE *con = o->console;
  char ck[STAGE_PATH], root[STAGE_PATH + 16];
  int64_t step;
  snprintf(root, sizeof root, "%s/checkpoints", c->stages[p->codec_stage].dir);
  int f = ckpt_find_latest(root, ck, sizeof ck, &step, err, err_len);
  if (f != 1) {
    if (!f)
      vt_seterr(err, err_len, "prep %s: its codec stage %s has no checkpoint in %s", p->name,
                c->stages[p->codec_stage].name, root);
    return -1;
  }
  if (!o->codec_open || !o->codec_close) {
    vt_seterr(err, err_len, "prep %s: this program cannot open a codec (no codec_open given)",
              p->name);
    return -1;
  }
  sample_config cfg;
  sample_config_default(&cfg);
  tok_tokenizer *tok = NULL;
  prep_codec pc = {0};
  json_t *sets = json_array();
  int64_t written = 0, skipped = 0, tokens = 0;
  double t0 = vt_now();
  int rc = -1;
  if (sample_config_load(&cfg, p->config, err, err_len) ||
      tok_init(&tok, cfg.tokenizer, err, err_len))
    goto done;
  if (o->codec_open(ck, &pc, err, err_len)) {
    char why[2048];
    snprintf(why, sizeof why, "%s", err);
    vt_seterr(err, err_len, "prep %s: codec %s: %s", p->name, ck, why);
    goto done;
  }
  if (con)
    fprintf(con, "prep %s: encoding speech with the codec of %s (%s)\n", p->name,
            c->stages[p->codec_stage].name, ck);
  for (int k = 0; k < p->n_sets; k++) {
    if (ckpt_remove_tree(p->sets[k].out, err, err_len)) goto done;
    const char *inputs[1] = {p->sets[k].input};
    prep_opts po = {.cfg = &cfg,
                    .tok = tok,
                    .inputs = inputs,
                    .n_inputs = 1,
                    .out_dir = p->sets[k].out,
                    .codec = &pc};
    prep_stats st;
    int prc = prep_run(&po, &st, err, err_len);
    int64_t skip = st.n_read - st.n_written;
    if (!prc && st.n_written == 0) {
      vt_seterr(err, err_len, "prep %s: %s: no sample written (%lld read; first skip: %s)", p->name,
                p->sets[k].input, (long long)st.n_read, st.n_skips ? st.skips[0].message : "-");
      prc = -1;
    }
    if (!prc && con) {
      fprintf(con, "prep %s: %s -> %s: %lld written, %lld skipped, %lld codec tokens\n", p->name,
              p->sets[k].input, p->sets[k].out, (long long)st.n_written, (long long)skip,
              (long long)st.n_codec);
      if (st.n_skips) fprintf(con, "  first skip: %s\n", st.skips[0].message);
    }
    if (!prc)
      json_array_append_new(sets,
                            json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "name", p->sets[k].name,
                                      "input", p->sets[k].input, "out", p->sets[k].out, "written",
                                      (json_int_t)st.n_written, "skipped", (json_int_t)skip,
                                      "codec_tokens", (json_int_t)st.n_codec));
    written += st.n_written, skipped += skip, tokens += st.n_codec;
    prep_stats_free(&st);
    if (prc) goto done;
    if ((o->stop && *o->stop) || (o->stop_stage == i + 1 && o->stop_after == k + 1)) {
      *stopped = true;
      break;
    }
  }
  rc = write_prep_json(c, i, ck, sets, written, skipped, tokens, !*stopped, vt_now() - t0, err,
                       err_len);
done:
  if (pc.ctx) o->codec_close(&pc);
  json_decref(sets);
  tok_free(tok);
  sample_config_free(&cfg);
  return rc;
}

int curriculum_prep_run(const curriculum_opts *o, int i, bool *interrupted, char *err,
                        size_t err_len) {
  vt_dist solo = {.rank = 0, .world = 1};
  const vt_dist *d = o->dist ? o->dist : &solo;
  const curriculum_stage *s = &o->cur->stages[i];
  *interrupted = false;
  int rc = 0;
  if (d->rank == 0) {
    char path[STAGE_PATH + 32];
    snprintf(path, sizeof path, "%s/stage.json", s->dir);
    remove(path); /* a redone step is not done until it is */
    rc = ckpt_mkdirs(s->dir, err, err_len) ? -1 : prep_sets(o, i, interrupted, err, err_len);
  }
  /* every rank learns whether rank 0 finished (the stages after it read its shards) */
  int flag = d->rank == 0 ? (rc ? 2 : *interrupted ? 1 : 0) : 0;
  if (vt_dist_broadcast(d, &flag, sizeof flag)) {
    if (!err[0]) vt_seterr(err, err_len, "prep %s: broadcast failed", s->name);
    return -1;
  }
  if (flag == 2) {
    if (!err[0]) vt_seterr(err, err_len, "prep %s failed on rank 0", s->name);
    return -1;
  }
  *interrupted = flag == 1;
  return 0;
}
