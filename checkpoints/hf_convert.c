/* The model-neutral half of HF import and export: check a weight set against the parameters
 * a model registered, then stream it tensor by tensor (one tensor's bytes in memory at a time,
 * zero-copy when the dtype already matches) into shards written in a temporary directory that
 * is renamed into place once the weights, config and tokenizer files are all there. */
#include "checkpoints/hf_convert.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/fmt.h"
#include "autograd/params.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_index.h"
#include "checkpoints/safetensors_write.h"

const char *const hf_tokenizer_files[] = {"tokenizer.json",
                                          "tokenizer_config.json",
                                          "vocab.json",
                                          "merges.txt",
                                          "special_tokens_map.json",
                                          "added_tokens.json",
                                          "generation_config.json",
                                          "chat_template.jinja",
                                          NULL};

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static bool is_float(vt_dtype t) { return t == VT_F32 || t == VT_BF16 || t == VT_F16; }

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The name/shape check of hf_check_weights on an open set. */
static int check_index(st_index *ix, const hf_spec *spec, int *n_ignored, char *err,
                       size_t err_len) {
  const vt_params *ps = spec->params;
  vt_strbuf missing = {0}, unexpected = {0}, mismatch = {0}, msg = {0};
  int n_missing = 0, n_unexpected = 0, n_mismatch = 0, n_ign = 0, rc = -1;
  for (int i = 0; i < ps->n; i++) {
    const vt_param *p = ps->items[i];
    const st_tensor *t;
    if (st_index_get(ix, p->name, &t, err, err_len)) goto done;
    if (!t) {
      vt_strbuf_addf(&missing, "%s%s", n_missing++ ? ", " : "", p->name);
      continue;
    }
    bool ok = t->ndim == p->t.ndim && is_float(t->dtype);
    for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == p->t.shape[d];
    if (!ok) {
      char want[160], got[160];
      vt_strbuf_addf(&mismatch, "%s%s (expected %s float, found %s %s)", n_mismatch++ ? ", " : "",
                     p->name, st_shape_str(p->t.ndim, p->t.shape, want, sizeof want),
                     st_shape_str(t->ndim, t->shape, got, sizeof got), st_dtype_name(t->dtype));
    }
  }
  for (int i = 0; i < ix->n; i++) {
    const char *name = ix->names[i];
    if (vt_params_find(ps, name)) continue;
    if (spec->ignored && spec->ignored(spec->arg, name)) {
      n_ign++;
      continue;
    }
    vt_strbuf_addf(&unexpected, "%s%s", n_unexpected++ ? ", " : "", name);
  }
  if (n_missing || n_unexpected || n_mismatch) {
    vt_strbuf_addf(&msg, "%s: the weights do not match the %s config:", ix->path, spec->model_name);
    if (n_missing) vt_strbuf_addf(&msg, " %d missing: %s;", n_missing, missing.s);
    if (n_unexpected) vt_strbuf_addf(&msg, " %d unexpected: %s;", n_unexpected, unexpected.s);
    if (n_mismatch) vt_strbuf_addf(&msg, " %d mismatched: %s;", n_mismatch, mismatch.s);
    if (msg.s && msg.len) msg.s[--msg.len] = '\0'; /* the last ';' */
    vt_strbuf_give(&msg, err, err_len);
    goto done;
  }
  if (n_ignored) *n_ignored = n_ign;
  rc = 0;
done:
  free(missing.s);
  free(unexpected.s);
  free(mismatch.s);
  free(msg.s);
  return rc;
}

int hf_check_weights(const char *src, const hf_spec *spec, int *n_ignored, char *err,
                     size_t err_len) {
  st_index ix;
  if (st_index_open(&ix, src, err, err_len)) return -1;
  int rc = check_index(&ix, spec, n_ignored, err, err_len);
  st_index_close(&ix);
  return rc;
}

/* ---- files and directories ---- */

static int read_file(const char *path, char **buf, size_t *len, char *err, size_t err_len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    vt_seterr(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  while (b) {
    n += fread(b + n, 1, cap - n, f);
    if (n < cap) break;
    char *nb = realloc(b, cap *= 2);
    if (!nb) free(b);
    b = nb;
  }
  int bad = ferror(f);
  fclose(f);
  if (!b || bad) {
    vt_seterr(err, err_len, "%s: %s", path, b ? "read failed" : "out of memory");
    free(b);
    return -1;
  }
  *buf = b;
  *len = n;
  return 0;
}

static int copy_file(const char *from, const char *to, char *err, size_t err_len) {
  char *buf;
  size_t len;
  if (read_file(from, &buf, &len, err, err_len)) return -1;
  int rc = st_write_file_atomic(to, buf, len, err, err_len);
  free(buf);
  return rc;
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static bool is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* 1 when dir holds nothing but "." and "..", 0 when it holds something, -1 when unreadable. */
static int dir_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  struct dirent *e;
  int empty = 1;
  while (empty && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = 0;
  closedir(d);
  return empty;
}

/* Whether name is a file convert() writes (possibly as its NAME.tmp). */
static bool our_file(const char *name) {
  char base[256];
  snprintf(base, sizeof base, "%s", name);
  size_t l = strlen(base);
  if (l > 4 && !strcmp(base + l - 4, ".tmp")) base[l - 4] = '\0';
  if (!strcmp(base, "config.json")) return true;
  for (int i = 0; hf_tokenizer_files[i]; i++)
    if (!strcmp(base, hf_tokenizer_files[i])) return true;
  return !strncmp(base, "model", 5) &&
         (ends_with(base, ".safetensors") || ends_with(base, ".safetensors.index.json"));
}

/* Removes our temporary output directory: only when it holds nothing but files we write
 * (someone else's OUT.tmp is left alone). Returns 0, or -1 with errno set. */
static int remove_tmp_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return errno == ENOENT ? 0 : -1;
  struct dirent *e;
  int rc = 0;
  while (rc == 0 && (e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !our_file(e->d_name)) {
      errno = ENOTEMPTY;
      rc = -1;
    }
  rewinddir(d);
  while (rc == 0 && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    char *p = join(dir, e->d_name);
    if (!p || unlink(p)) rc = -1;
    free(p);
  }
  closedir(d);
  return rc || rmdir(dir) ? -1 : 0;
}

/* mkdir -p of the directory holding path. Returns 0 or -1 with errno. */
static int make_parents(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) && errno != EEXIST) return -1;
    *p = '/';
  }
  return 0;
}

static void fsync_path(const char *path) {
  int fd = open(path, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* The directory holding path ("." for a bare name), into buf. */
static void parent_of(const char *path, char *buf, size_t len) {
  snprintf(buf, len, "%s", path);
  char *slash = strrchr(buf, '/');
  while (slash && slash > buf && slash[1] == '\0') { /* trailing slashes */
    *slash = '\0';
    slash = strrchr(buf, '/');
  }
  if (!slash)
    snprintf(buf, len, ".");
  else if (slash == buf)
    buf[1] = '\0';
  else
    *slash = '\0';
}

/* ---- the conversion ---- */

typedef struct {
  st_index *ix;
  const st_entry *entries;
  char *err_path; /* for messages */
} produce_ctx;

/* Gives the bytes of entries[i] in the dtype to write: a view of the mapping when the source
 * already has that dtype (and alignment), else converted into scratch. */
static const void *produce(void *vctx, int i, void *scratch, char *err, size_t err_len) {
  produce_ctx *c = vctx;
  const st_entry *e = &c->entries[i];
  const st_tensor *t;
  if (st_index_get(c->ix, e->name, &t, err, err_len)) return NULL;
  if (!t) {
    vt_seterr(err, err_len, "%s: tensor \"%s\" disappeared", c->err_path, e->name);
    return NULL;
  }
  const void *view = st_tensor_data(t, e->dtype);
  if (view) return view;
  size_t nb = (size_t)t->numel * vt_dtype_size(e->dtype);
  char m[512];
  if (st_tensor_read(t, e->dtype, scratch, nb, m, sizeof m)) {
    vt_seterr(err, err_len, "%s: %s", c->err_path, m);
    return NULL;
  }
  return scratch;
}

/* The fewest digits (15 or 17) that print every real of a flat object exactly, so that 1e-06
 * reads as 1e-06 as Python writes it, not 9.9999999999999995e-07. */
static size_t real_precision(json_t *obj) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    if (!json_is_real(v)) continue;
    char buf[64];
    snprintf(buf, sizeof buf, "%.15g", json_real_value(v));
    if (strtod(buf, NULL) != json_real_value(v)) return JSON_REAL_PRECISION(17);
  }
  return JSON_REAL_PRECISION(15);
}

/* Writes a config object as HF does: sorted keys, two-space indent, a final newline. */
static int write_config(const char *path, json_t *cfg, char *err, size_t err_len) {
  char *text = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS | real_precision(cfg));
  if (!text) {
    vt_seterr(err, err_len, "%s: cannot build the config JSON", path);
    return -1;
  }
  size_t n = strlen(text);
  text[n] = '\n'; /* in place of the NUL: a final newline, as HF writes it */
  int rc = st_write_file_atomic(path, text, n + 1, err, err_len);
  free(text);
  return rc;
}

/* Copies the tokenizer files into dir: each from tok_dir when there, else from src_dir. */
static int copy_tokenizer(const char *tok_dir, const char *src_dir, const char *dir, hf_io_stats *s,
                          char *err, size_t err_len) {
  int n = 0, from_tok = 0;
  for (int i = 0; hf_tokenizer_files[i]; i++) {
    const char *name = hf_tokenizer_files[i];
    char *from = NULL;
    if (tok_dir) {
      from = join(tok_dir, name);
      if (from && !exists(from)) {
        free(from);
        from = NULL;
      } else if (from) {
        from_tok++;
      }
    }
    if (!from) {
      from = join(src_dir, name);
      if (from && !exists(from)) {
        free(from);
        continue;
      }
    }
    char *to = join(dir, name);
    int rc = !from || !to ? -1 : copy_file(from, to, err, err_len);
    if (!from || !to) vt_seterr(err, err_len, "%s: out of memory", dir);
    free(from);
    free(to);
    if (rc) return -1;
    n++;
    if (!strcmp(name, "tokenizer.json") || !strcmp(name, "vocab.json")) s->has_tokenizer = true;
  }
  if (tok_dir && !from_tok) {
    vt_seterr(err, err_len,
              "%s: no tokenizer files there (looked for tokenizer.json, "
              "tokenizer_config.json, vocab.json, merges.txt, ...)",
              tok_dir);
    return -1;
  }
  s->n_files_copied = n;
  return 0;
}

int hf_convert(const char *src_dir, const char *out_arg, const hf_io_opts *opts, bool export,
               const hf_model_part *part, hf_io_stats *stats, char *err, size_t err_len) {
  hf_io_stats s = {0};
  char out_dir[4096]; /* without trailing slashes, so that out_dir.tmp is its sibling */
  if (snprintf(out_dir, sizeof out_dir, "%s", out_arg) >= (int)sizeof out_dir || !out_dir[0]) {
    vt_seterr(err, err_len, "output path empty or too long");
    return -1;
  }
  for (size_t l = strlen(out_dir); l > 1 && out_dir[l - 1] == '/'; l--) out_dir[l - 1] = '\0';
  vt_dtype dtype = opts ? opts->dtype : VT_F32;
  size_t max_shard = opts && opts->max_shard_bytes ? opts->max_shard_bytes : SIZE_MAX;
  const char *tok_dir = opts ? opts->tokenizer_dir : NULL;
  if (!is_float(dtype)) {
    vt_seterr(err, err_len, "cannot write weights as %s (f32, bf16 or f16)", vt_dtype_name(dtype));
    return -1;
  }
  if (!is_dir(src_dir)) {
    vt_seterr(err, err_len, "%s: not a directory (%s)", src_dir,
              exists(src_dir) ? "a file" : strerror(ENOENT));
    return -1;
  }
  if (tok_dir && !is_dir(tok_dir)) {
    vt_seterr(err, err_len, "%s: tokenizer directory not found", tok_dir);
    return -1;
  }
  snprintf(s.source, sizeof s.source, "%s", src_dir);
  if (export) {
    /* a run directory: its newest complete checkpoint; a checkpoint: its manifest verified */
    char *cfg = join(src_dir, "config.json"), *man = join(src_dir, "COMPLETE");
    char *state = join(src_dir, "trainer.json");
    bool has_cfg = cfg && exists(cfg), has_man = man && exists(man);
    bool is_ckpt = state && exists(state); /* the trainer's checkpoints hold trainer.json */
    free(cfg);
    free(man);
    free(state);
    int64_t step;
    /* a training checkpoint is exported only when its manifest verifies: one without it was
     * never completed (a crash while saving), and its weights may be half written */
    if ((has_man || is_ckpt) && ckpt_verify(src_dir, err, err_len)) return -1;
    if (!has_cfg && !has_man) { /* RUN/checkpoints/step-N (the trainer's layout) or ROOT/step-N */
      char *root = join(src_dir, "checkpoints");
      int found = ckpt_find_latest(root && is_dir(root) ? root : src_dir, s.source, sizeof s.source,
                                   &step, err, err_len);
      free(root);
      if (found < 0) return -1;
      if (found == 0) snprintf(s.source, sizeof s.source, "%s", src_dir);
    }
    src_dir = s.source;
  }
  if (exists(out_dir) && (!is_dir(out_dir) || dir_empty(out_dir) != 1)) {
    vt_seterr(err, err_len,
              "%s: already exists and is not an empty directory; remove it or choose "
              "another output",
              out_dir);
    return -1;
  }
  char *cfg_path = join(src_dir, "config.json");
  size_t tl = strlen(out_dir) + 5;
  char *tmp = malloc(tl);
  st_entry *es = NULL;
  hf_spec spec = {0};
  st_index ix;
  bool ix_open = false, registered = false, made_tmp = false;
  int rc = -1;
  if (!cfg_path || !tmp) {
    vt_seterr(err, err_len, "out of memory");
    goto done;
  }
  snprintf(tmp, tl, "%s.tmp", out_dir);
  if (part->open(part->arg, cfg_path, dtype, export, &spec, err, err_len)) goto done;
  registered = true;
  snprintf(s.model, sizeof s.model, "%s", spec.model_name);
  if (st_index_open(&ix, src_dir, err, err_len)) goto done;
  ix_open = true;
  if (check_index(&ix, &spec, &s.n_ignored, err, err_len)) goto done;

  /* a stale temporary directory is the debris of an interrupted run of ours */
  if (exists(tmp) && remove_tmp_dir(tmp)) {
    vt_seterr(err, err_len, "%s: cannot remove the stale temporary directory: %s", tmp,
              errno == ENOTEMPTY ? "it holds files that are not ours" : strerror(errno));
    goto done;
  }
  if (make_parents(tmp) || mkdir(tmp, 0755)) {
    vt_seterr(err, err_len, "%s: cannot create: %s", tmp, strerror(errno));
    goto done;
  }
  made_tmp = true;

  es = calloc((size_t)spec.params->n + 1, sizeof *es);
  if (!es) {
    vt_seterr(err, err_len, "out of memory");
    goto done;
  }
  for (int i = 0; i < spec.params->n; i++) {
    const vt_param *p = spec.params->items[i];
    es[i] = (st_entry){.name = p->name, .dtype = dtype, .ndim = p->t.ndim};
    for (int d = 0; d < p->t.ndim; d++) es[i].shape[d] = p->t.shape[d];
    s.n_params += vt_numel(&p->t);
  }
  s.n_tensors = spec.params->n;
  s.n_bytes = (uint64_t)s.n_params * vt_dtype_size(dtype);
  produce_ctx pc = {.ix = &ix, .entries = es, .err_path = (char *)src_dir};
  const st_kv meta[] = {{"format", "pt"}};
  if (st_write_sharded_fn(tmp, es, spec.params->n, max_shard, meta, 1, produce, &pc, &s.n_shards,
                          err, err_len))
    goto done;

  char *cfg_out = join(tmp, "config.json");
  if (!cfg_out) {
    vt_seterr(err, err_len, "out of memory");
    goto done;
  }
  int crc = spec.config ? write_config(cfg_out, spec.config, err, err_len)
                        : copy_file(cfg_path, cfg_out, err, err_len);
  free(cfg_out);
  if (crc) goto done;
  if (copy_tokenizer(tok_dir, src_dir, tmp, &s, err, err_len)) goto done;

  fsync_path(tmp);
  if (exists(out_dir) && rmdir(out_dir)) { /* empty: checked above */
    vt_seterr(err, err_len, "%s: cannot replace: %s", out_dir, strerror(errno));
    goto done;
  }
  if (rename(tmp, out_dir)) {
    vt_seterr(err, err_len, "%s: cannot rename %s into place: %s", out_dir, tmp, strerror(errno));
    goto done;
  }
  made_tmp = false;
  char parent[4096];
  parent_of(out_dir, parent, sizeof parent);
  fsync_path(parent);
  if (stats) *stats = s;
  rc = 0;
done:
  if (made_tmp) remove_tmp_dir(tmp);
  if (registered) part->close(part->arg, &spec);
  if (ix_open) st_index_close(&ix);
  free(es);
  free(tmp);
  free(cfg_path);
  return rc;
}

int hf_dtype_parse(const char *name) {
  static const struct {
    const char *name;
    vt_dtype dtype;
  } names[] = {{"f32", VT_F32},       {"float32", VT_F32}, {"bf16", VT_BF16},
               {"bfloat16", VT_BF16}, {"f16", VT_F16},     {"float16", VT_F16}};
  for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp(name, names[i].name) == 0) return (int)names[i].dtype;
  return -1;
}

void hf_io_describe(const hf_io_stats *s, vt_dtype dtype, char *buf, size_t len) {
  char num[48];
  double mb = (double)s->n_bytes / 1e6;
  int o = snprintf(buf, len, "%d tensors, %s parameters, %.*f %s %s in %d %s", s->n_tensors,
                   vt_group_digits(s->n_params, num, sizeof num), mb >= 1000 ? 2 : 1,
                   mb >= 1000 ? mb / 1000 : mb, mb >= 1000 ? "GB" : "MB", vt_dtype_name(dtype),
                   s->n_shards, s->n_shards == 1 ? "file" : "shards");
  if (o < 0 || (size_t)o >= len) return;
  o += snprintf(buf + o, len - (size_t)o, ", %d tokenizer/generation file%s copied",
                s->n_files_copied, s->n_files_copied == 1 ? "" : "s");
  if (s->n_ignored && o > 0 && (size_t)o < len)
    snprintf(buf + o, len - (size_t)o, ", %d source tensor%s ignored (%s does not load %s)",
             s->n_ignored, s->n_ignored == 1 ? "" : "s", s->model[0] ? s->model : "the model",
             s->n_ignored == 1 ? "it" : "them");
}
