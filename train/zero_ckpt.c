/* Optimizer state in checkpoints, by parameter name, whatever the sharding; see trainer_impl.h.
 *
 * Each tensor is the state of one parameter or of a piece of one: "exp_avg.NAME" (the whole
 * parameter, in its shape), or "exp_avg.NAME@FIRST" (a 1-D run of its values starting at
 * element FIRST, where ZeRO cut the parameter between two ranks' shards); "exp_avg_sq." and
 * "momentum_buffer." likewise, prefixed with "PHASE." when the model has several phases.
 * Unsharded, rank 0 writes everything to optim.safetensors; sharded (ZeRO 1/2), every rank
 * writes its own pieces to optim-rank-R-of-N.safetensors in the same checkpoint directory (a
 * filesystem all ranks share). A restore reads every optim*.safetensors the manifest lists
 * and takes, for each piece this rank now holds, the overlapping parts of the pieces saved,
 * checking that they cover it exactly: so a checkpoint of N ranks at ZeRO stage S resumes on
 * M ranks at any stage. */
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_write.h"
#include "train/trainer_impl.h"

static const char *kind_name(const trainer *t, int p, int k) {
  return k == 1                                      ? "exp_avg_sq"
         : t->phases[p].opt.cfg.kind == VT_OPTIM_SGD ? "momentum_buffer"
                                                     : "exp_avg";
}

/* The base name (no piece suffix) of moment k of parameter i in phase p. */
static void base_name(const trainer *t, int p, int k, int i, char *buf, size_t len) {
  const char *param = t->ps.items[i]->name;
  if (t->n_phases > 1)
    snprintf(buf, len, "%s.%s.%s", t->model->phases[p].name, kind_name(t, p, k), param);
  else
    snprintf(buf, len, "%s.%s", kind_name(t, p, k), param);
}

bool trainer_state_sharded(const trainer *t) {
  for (int p = 0; p < t->n_phases; p++)
    if (t->phases[p].opt.shard_world > 1) return true;
  return false;
}

typedef struct {
  const vt_backend *be;
  st_entry *e;
  char *names;
  int n, cap;
  size_t used, names_cap;
} entry_list;

static const void *produce_state(void *vctx, int i, void *scratch, char *err, size_t err_len) {
  (void)err, (void)err_len;
  const entry_list *l = vctx;
  const st_entry *e = &l->e[i];
  size_t numel = 1;
  for (int d = 0; d < e->ndim; d++) numel *= (size_t)e->shape[d];
  vt_buf_to_host(l->be, scratch, e->data, numel * sizeof(float));
  return scratch;
}

int trainer_save_optim(trainer *t, const char *dir, char *err, size_t err_len) {
  bool sharded = trainer_state_sharded(t);
  if (!sharded && t->dist->rank != 0) return 0;
  char path[CKPT_PATH_MAX + 64];
  if (sharded)
    snprintf(path, sizeof path, "%s/optim-rank-%05d-of-%05d.safetensors", dir, t->dist->rank,
             t->dist->world);
  else
    snprintf(path, sizeof path, "%s/optim.safetensors", dir);
  entry_list l = {.be = t->ps.be, .cap = 2 * t->ps.n * t->n_phases + 1};
  for (int i = 0; i < t->ps.n; i++)
    l.names_cap += 2 * (size_t)t->n_phases * (strlen(t->ps.items[i]->name) + 128);
  l.e = malloc(sizeof *l.e * (size_t)l.cap);
  l.names = malloc(l.names_cap + 1);
  int rc = -1;
  if (!l.e || !l.names) {
    vt_seterr(err, err_len, "checkpoint: out of memory");
    goto done;
  }
  for (int p = 0; p < t->n_phases; p++)
    for (int i = 0; i < t->ps.n; i++) {
      float *mv[2];
      int64_t first, n;
      if (!vt_optim_piece(&t->phases[p].opt, i, &mv[0], &mv[1], &first, &n)) continue;
      const vt_param *prm = t->ps.items[i];
      bool whole = first == 0 && n == vt_numel(&prm->t);
      for (int k = 0; k < 2; k++) {
        if (!mv[k]) continue;
        char name[1400];
        base_name(t, p, k, i, name, sizeof name);
        if (!whole)
          snprintf(name + strlen(name), sizeof name - strlen(name), "@%lld", (long long)first);
        size_t len = strlen(name) + 1;
        st_entry *e = &l.e[l.n++];
        memcpy(l.names + l.used, name, len);
        *e = (st_entry){.name = l.names + l.used, .dtype = VT_F32, .data = mv[k]};
        if (whole) {
          e->ndim = prm->t.ndim;
          memcpy(e->shape, prm->t.shape, sizeof(int64_t) * (size_t)prm->t.ndim);
        } else {
          e->ndim = 1;
          e->shape[0] = n;
        }
        l.used += len;
      }
    }
  rc = 0;
  if (l.n > 0) {
    st_kv meta[1] = {{"format", "pt"}};
    st_sort_entries(l.e, l.n);
    rc = st_write_fn(path, l.e, l.n, meta, 1, produce_state, &l, err, err_len);
  }
done:
  free(l.e);
  free(l.names);
  return rc;
}

/* Splits a saved name into phase, moment kind, parameter and first element; false when it
 * names no state of this trainer (another model's, a phase it does not have). */
static bool parse_name(const trainer *t, const char *name, int *p, int *k, int *i, int64_t *first) {
  char buf[1400];
  snprintf(buf, sizeof buf, "%s", name);
  char *at = strrchr(buf, '@');
  *first = 0;
  if (at) {
    char *end = NULL;
    long long f = strtoll(at + 1, &end, 10);
    if (!end || *end || end == at + 1 || f < 0) return false;
    *first = f;
    *at = '\0';
  }
  const char *rest = buf;
  *p = 0;
  if (t->n_phases > 1) {
    *p = -1;
    for (int q = 0; q < t->n_phases && *p < 0; q++) {
      size_t len = strlen(t->model->phases[q].name);
      if (!strncmp(rest, t->model->phases[q].name, len) && rest[len] == '.')
        *p = q, rest += len + 1;
    }
    if (*p < 0) return false;
  }
  for (*k = 0; *k < 2; (*k)++) {
    const char *kn = kind_name(t, *p, *k);
    size_t len = strlen(kn);
    if (!strncmp(rest, kn, len) && rest[len] == '.') {
      *i = vt_params_index(&t->ps, rest + len + 1);
      return *i >= 0;
    }
  }
  return false;
}

/* Copies the parts of one saved tensor that overlap pieces this rank holds. */
static int take_tensor(trainer *t, const char *path, const st_tensor *st, float *host, int64_t *got,
                       char *err, size_t err_len) {
  int p, k, i;
  int64_t first;
  if (!parse_name(t, st->name, &p, &k, &i, &first)) return 0; /* not state of this run */
  const vt_param *prm = t->ps.items[i];
  int64_t numel = vt_numel(&prm->t);
  bool piece = strrchr(st->name, '@') != NULL;
  if (st->dtype != VT_F32 ||
      (piece ? st->ndim != 1 || first + st->numel > numel : st->numel != numel)) {
    vt_seterr(err, err_len,
              "%s: %s: expected f32 %s of parameter %s (%lld values), found %lld values from "
              "element %lld",
              path, st->name, piece ? "a piece" : "the state", prm->name, (long long)numel,
              (long long)st->numel, (long long)first);
    return -1;
  }
  float *mv[2];
  int64_t mine, n;
  if (!vt_optim_piece(&t->phases[p].opt, i, &mv[0], &mv[1], &mine, &n) || !mv[k]) return 0;
  int64_t lo = first > mine ? first : mine;
  int64_t hi = first + st->numel < mine + n ? first + st->numel : mine + n;
  if (hi <= lo) return 0;
  int64_t bad = st_first_nonfinite(st);
  if (bad >= 0) {
    vt_seterr(err, err_len, "%s: %s: element %lld is not finite (NaN or Inf)", path, st->name,
              (long long)bad);
    return -1;
  }
  if (st_tensor_read(st, VT_F32, host, (size_t)st->numel * sizeof(float), err, err_len)) return -1;
  vt_buf_from_host(t->ps.be, mv[k] + (lo - mine), host + (lo - first),
                   (size_t)(hi - lo) * sizeof(float));
  got[((size_t)p * (size_t)t->ps.n + (size_t)i) * 2 + (size_t)k] += hi - lo;
  return 0;
}

int trainer_restore_optim(trainer *t, const char *dir, char *err, size_t err_len) {
  ckpt_manifest man;
  if (ckpt_manifest_read(dir, &man, err, err_len)) return -1;
  size_t largest = 1;
  for (int i = 0; i < t->ps.n; i++)
    if ((size_t)vt_numel(&t->ps.items[i]->t) > largest)
      largest = (size_t)vt_numel(&t->ps.items[i]->t);
  size_t slots = (size_t)t->n_phases * (size_t)t->ps.n * 2;
  float *host = malloc(largest * sizeof(float));
  int64_t *got = calloc(slots + 1, sizeof *got);
  int rc = -1;
  if (!host || !got) {
    vt_seterr(err, err_len, "%s: out of host memory for %zu moments", dir, largest);
    goto done;
  }
  for (size_t f = 0; f < man.n_files; f++) {
    const char *fn = man.files[f].name;
    size_t len = strlen(fn);
    if (strncmp(fn, "optim", 5) || len < 12 || strcmp(fn + len - 12, ".safetensors")) continue;
    char path[CKPT_PATH_MAX + 300];
    snprintf(path, sizeof path, "%s/%s", dir, fn);
    st_file sf;
    if (st_file_open(&sf, path, err, err_len)) goto done;
    int r = 0;
    for (int q = 0; q < sf.n && !r; q++)
      r = take_tensor(t, path, &sf.tensors[q], host, got, err, err_len);
    st_file_close(&sf);
    if (r) goto done;
  }
  /* every piece this rank holds must be covered exactly by what was saved */
  for (int p = 0; p < t->n_phases; p++)
    for (int i = 0; i < t->ps.n; i++) {
      float *mv[2];
      int64_t first, n;
      if (!vt_optim_piece(&t->phases[p].opt, i, &mv[0], &mv[1], &first, &n)) continue;
      for (int k = 0; k < 2; k++) {
        int64_t g = got[((size_t)p * (size_t)t->ps.n + (size_t)i) * 2 + (size_t)k];
        if (!mv[k] || g == n) continue;
        char name[1400];
        base_name(t, p, k, i, name, sizeof name);
        vt_seterr(err, err_len,
                  "%s: optimizer state %s: %lld of the %lld values [%lld, %lld) this rank "
                  "holds are %s (was the trainable set or the optimizer changed since the "
                  "checkpoint?)",
                  dir, name, (long long)(g < n ? n - g : g - n), (long long)n, (long long)first,
                  (long long)(first + n), g < n ? "missing" : "saved twice");
        goto done;
      }
    }
  rc = 0;
done:
  free(host);
  free(got);
  ckpt_manifest_free(&man);
  return rc;
}
