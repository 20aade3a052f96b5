/* Mixture config (libyaml via data/yamlcfg.h), epoch orders and rank slices. */
#include "data/mixture.h"
#include "autograd/checked.h"
#include "autograd/fmt.h"
#include "data/yamlcfg.h"

#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- config ------------------------------------------------------------------------------ */

void mix_config_free(mix_config *c) {
  for (size_t d = 0; d < c->n_datasets; d++) {
    free(c->datasets[d].name);
    for (size_t i = 0; i < c->datasets[d].n_shards; i++) free(c->datasets[d].shards[i]);
    free(c->datasets[d].shards);
  }
  free(c->datasets);
  memset(c, 0, sizeof *c);
  c->verify = true;
}

int mix_config_add(mix_config *c, const char *name, double ratio, const char *const *shards,
                   size_t n_shards) {
  mix_dataset *ds = realloc(c->datasets, (c->n_datasets + 1) * sizeof *ds);
  if (!ds) return -1;
  c->datasets = ds;
  mix_dataset *d = &ds[c->n_datasets];
  *d = (mix_dataset){.name = strdup(name), .ratio = ratio};
  d->shards = calloc(n_shards ? n_shards : 1, sizeof *d->shards);
  c->n_datasets++; /* counted now, so mix_config_free releases what was copied */
  if (!d->name || !d->shards) return -1;
  for (size_t i = 0; i < n_shards; i++) {
    if (!(d->shards[i] = strdup(shards[i]))) return -1;
    d->n_shards = i + 1;
  }
  return 0;
}

/* Expands one entry: a directory (its *.h5), a glob, or a file. Appends to list. */
static int expand(const char *pat, char ***list, size_t *n) {
  char buf[8300];
  struct stat st;
  if (stat(pat, &st) == 0 && S_ISDIR(st.st_mode))
    snprintf(buf, sizeof buf, "%s/*.h5", pat);
  else
    snprintf(buf, sizeof buf, "%s", pat);
  glob_t g;
  int rc = glob(buf, 0, NULL, &g);
  if (rc == GLOB_NOMATCH) return 0;
  if (rc != 0) return -1;
  char **l = realloc(*list, (*n + g.gl_pathc + 1) * sizeof *l);
  if (!l) {
    globfree(&g);
    return -1;
  }
  *list = l;
  rc = 0;
  for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
    if (!(l[*n] = strdup(g.gl_pathv[i])))
      rc = -1;
    else
      (*n)++;
  globfree(&g);
  return rc;
}

int mix_config_load(mix_config *c, const char *path, char *err, size_t err_len) {
  static const char *const keys[] = {"seed", "verify", "pack", "max_len", "datasets", NULL};
  static const char *const ds_keys[] = {"name", "shards", "ratio", NULL};
  mix_config_free(c);
  ycfg y;
  if (ycfg_load(&y, path, err, err_len)) return -1;
  int rc = -1;
  yaml_node_t *root = ycfg_root(&y), *n, *list;
  if (!root || ycfg_check_keys(&y, root, keys, "the mixture config", err, err_len)) {
    if (!root) vt_seterr(err, err_len, "%s: empty config", path);
    goto done;
  }
  long long seed = 0;
  if ((n = ycfg_get(&y, root, "seed")) &&
      ycfg_int_range(&y, n, "seed", 0, INT64_MAX, &seed, err, err_len))
    goto done;
  c->seed = (uint64_t)seed;
  if ((n = ycfg_get(&y, root, "verify")) && ycfg_bool(&y, n, "verify", &c->verify, err, err_len))
    goto done;
  if ((n = ycfg_get(&y, root, "pack")) && ycfg_bool(&y, n, "pack", &c->pack, err, err_len))
    goto done;
  long long max_len = 0;
  if ((n = ycfg_get(&y, root, "max_len")) &&
      ycfg_int_range(&y, n, "max_len", 0, MIX_MAX_LEN, &max_len, err, err_len))
    goto done;
  c->max_len = max_len;
  list = ycfg_get(&y, root, "datasets");
  if (!list || list->type != YAML_SEQUENCE_NODE) {
    vt_seterr(err, err_len, "%s: datasets: expected a list of {name, shards, ratio}", path);
    goto done;
  }
  for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
       it++) {
    yaml_node_t *d = yaml_document_get_node(&y.doc, *it);
    char where[64];
    snprintf(where, sizeof where, "datasets[%d]", (int)(it - list->data.sequence.items.start));
    if (ycfg_check_keys(&y, d, ds_keys, where, err, err_len)) goto done;
    const char *name = where, *s;
    double ratio = 1.0;
    if ((n = ycfg_get(&y, d, "name")) && ycfg_str(&y, n, "name", &name, err, err_len)) goto done;
    if ((n = ycfg_get(&y, d, "ratio")) && ycfg_float(&y, n, "ratio", &ratio, err, err_len))
      goto done;
    if (!(ratio >= 0 && ratio <= MIX_MAX_RATIO)) {
      vt_seterr(err, err_len, "%s: %s.ratio: expected a number in [0, %g], found %g", path, name,
                MIX_MAX_RATIO, ratio);
      goto done;
    }
    char **files = NULL;
    size_t nf = 0;
    n = ycfg_get(&y, d, "shards");
    size_t n_items = !n ? 0
                     : n->type == YAML_SEQUENCE_NODE
                         ? (size_t)(n->data.sequence.items.top - n->data.sequence.items.start)
                         : 1;
    for (size_t k = 0; k < n_items; k++) {
      yaml_node_t *e = n->type == YAML_SEQUENCE_NODE
                           ? yaml_document_get_node(&y.doc, n->data.sequence.items.start[k])
                           : n;
      char full[8200];
      if (ycfg_str(&y, e, "shards", &s, err, err_len)) goto fail_files;
      ycfg_resolve(&y, s, full, sizeof full);
      if (expand(full, &files, &nf)) {
        vt_seterr(err, err_len, "%s: %s.shards: cannot expand %s", path, name, full);
        goto fail_files;
      }
    }
    if (nf == 0) {
      vt_seterr(err, err_len, "%s: %s.shards: no shard files found", path, name);
      goto fail_files;
    }
    if (mix_config_add(c, name, ratio, (const char *const *)files, nf)) {
      vt_seterr(err, err_len, "%s: %s: out of memory for %zu shard paths", path, name, nf);
      goto fail_files;
    }
    for (size_t i = 0; i < nf; i++) free(files[i]);
    free(files);
    continue;
  fail_files:
    for (size_t i = 0; i < nf; i++) free(files[i]);
    free(files);
    goto done;
  }
  rc = 0;
done:
  ycfg_free(&y);
  return rc;
}

/* ---- cursor ---------------------------------------------------------------------------- */

void mix_cursor_format(const mix_cursor *c, char buf[MIX_CURSOR_LEN]) {
  snprintf(buf, MIX_CURSOR_LEN,
           "mix-cursor v1 seed=%" PRIu64 " epoch=%" PRId64 " pos=%" PRId64 " rank=%d world=%d",
           c->seed, c->epoch, c->pos, c->rank, c->world);
}

int mix_cursor_parse(mix_cursor *c, const char *s, char *err, size_t err_len) {
  mix_cursor x;
  int used = 0;
  if (sscanf(s,
             "mix-cursor v1 seed=%" SCNu64 " epoch=%" SCNd64 " pos=%" SCNd64 " rank=%d world=%d%n",
             &x.seed, &x.epoch, &x.pos, &x.rank, &x.world, &used) != 5 ||
      x.epoch < 0 || x.epoch > MIX_MAX_EPOCH || x.pos < 0 || x.pos > MIX_MAX_EPOCH || x.world < 1 ||
      x.rank < 0 || x.rank >= x.world) {
    vt_seterr(err, err_len,
              "cursor: expected \"mix-cursor v1 seed=S epoch=E pos=P rank=R world=W\" with "
              "0 <= epoch, pos <= 2^62 and 0 <= rank < world, found \"%.80s\"",
              s);
    return -1;
  }
  *c = x;
  return 0;
}

/* ---- the mixture -------------------------------------------------------------------------- */

typedef struct {
  shard **shards;
  int64_t *cum; /* cum[i] = samples in shards before i; cum[n_shards] = total */
  size_t n_shards;
  int64_t base; /* first global index of this dataset */
  double ratio;
} mix_ds;

struct mix {
  mix_ds *ds;
  size_t n_ds;
  uint64_t seed;
  int rank, world;
  int64_t epoch, pos;
  int64_t *order, n_order, order_epoch;
  int64_t *scratch;
};

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static uint64_t below(uint64_t *s, uint64_t n) { /* uniform in [0, n) */
  uint64_t lim = UINT64_MAX - UINT64_MAX % n, x;
  do x = splitmix(s);
  while (x >= lim);
  return x % n;
}

static void shuffle(int64_t *a, int64_t n, uint64_t *s) {
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)below(s, (uint64_t)i + 1), t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

static int64_t ds_count(const mix_ds *d) { return d->cum[d->n_shards]; }

/* Slots of one epoch: whole repeats plus the rounded fraction of each dataset. Checked: a
 * huge ratio times a huge dataset is an error, not a wrapped count. Returns -1 on overflow. */
static int64_t epoch_total(const mix *m) {
  int64_t t = 0;
  for (size_t d = 0; d < m->n_ds; d++) {
    int64_t n = ds_count(&m->ds[d]), rep;
    double whole = floor(m->ds[d].ratio);
    int64_t part = (int64_t)floor((m->ds[d].ratio - whole) * (double)n + 0.5);
    if (vt_mul_i64_overflows((int64_t)whole, n, &rep) || vt_add_i64_overflows(t, rep, &t) ||
        vt_add_i64_overflows(t, part, &t))
      return -1;
  }
  return t;
}

static void build_order(mix *m, int64_t epoch) {
  int64_t k = 0;
  for (size_t d = 0; d < m->n_ds; d++) {
    mix_ds *ds = &m->ds[d];
    int64_t n = ds_count(ds);
    double whole = floor(ds->ratio);
    for (int64_t w = 0; w < (int64_t)whole; w++)
      for (int64_t i = 0; i < n; i++) m->order[k++] = ds->base + i;
    int64_t part = (int64_t)floor((ds->ratio - whole) * (double)n + 0.5);
    if (part > 0) { /* a fresh seeded subset each epoch */
      uint64_t s = m->seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(epoch + 1)) ^ (d + 1) * 0xABCDEF;
      for (int64_t i = 0; i < n; i++) m->scratch[i] = i;
      for (int64_t i = 0; i < part; i++) { /* partial Fisher-Yates */
        int64_t j = i + (int64_t)below(&s, (uint64_t)(n - i)), t = m->scratch[i];
        m->scratch[i] = m->scratch[j];
        m->scratch[j] = t;
        m->order[k++] = ds->base + m->scratch[i];
      }
    }
  }
  uint64_t s = m->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
  shuffle(m->order, k, &s);
  m->order_epoch = epoch;
}

int mix_open(mix **out, const mix_config *cfg, int rank, int world, char *err, size_t err_len) {
  *out = NULL;
  if (world < 1 || rank < 0 || rank >= world || cfg->n_datasets == 0) {
    vt_seterr(err, err_len, "mixture: need at least one dataset and 0 <= rank < world (%d, %d)",
              rank, world);
    return -1;
  }
  mix *m = calloc(1, sizeof *m);
  if (!m || !(m->ds = calloc(cfg->n_datasets, sizeof *m->ds))) {
    free(m);
    vt_seterr(err, err_len, "mixture: out of memory for %zu datasets", cfg->n_datasets);
    return -1;
  }
  m->n_ds = cfg->n_datasets;
  m->seed = cfg->seed;
  m->rank = rank;
  m->world = world;
  m->order_epoch = -1;
  int64_t base = 0, largest = 0;
  for (size_t d = 0; d < cfg->n_datasets; d++) {
    const mix_dataset *c = &cfg->datasets[d];
    mix_ds *ds = &m->ds[d];
    ds->ratio = c->ratio;
    ds->shards = calloc(c->n_shards ? c->n_shards : 1, sizeof *ds->shards);
    ds->cum = calloc(c->n_shards + 1, sizeof *ds->cum);
    ds->base = base;
    if (!ds->shards || !ds->cum) {
      vt_seterr(err, err_len, "mixture: dataset %s: out of memory for %zu shards", c->name,
                c->n_shards);
      mix_close(m);
      return -1;
    }
    for (size_t i = 0; i < c->n_shards; i++) {
      if (shard_open(&ds->shards[i], c->shards[i], cfg->verify, err, err_len)) {
        mix_close(m);
        return -1;
      }
      ds->n_shards = i + 1;
      ds->cum[i + 1] = ds->cum[i] + shard_n_samples(ds->shards[i]); /* each < file size */
    }
    if (vt_add_i64_overflows(base, ds_count(ds), &base)) {
      vt_seterr(err, err_len, "mixture: dataset %s: sample count overflows", c->name);
      mix_close(m);
      return -1;
    }
    if (ds_count(ds) > largest) largest = ds_count(ds);
  }
  m->n_order = epoch_total(m);
  if (m->n_order < 0) {
    vt_seterr(err, err_len, "mixture: the ratios times the dataset sizes overflow an epoch");
    mix_close(m);
    return -1;
  }
  if (m->n_order / world == 0) {
    vt_seterr(err, err_len, "mixture: an epoch has %lld samples, fewer than %d ranks",
              (long long)m->n_order, world);
    mix_close(m);
    return -1;
  }
  size_t ob, sb;
  if (vt_bytes_overflows(m->n_order, sizeof *m->order, &ob) ||
      vt_bytes_overflows(largest ? largest : 1, sizeof *m->scratch, &sb) ||
      !(m->order = malloc(ob)) || !(m->scratch = malloc(sb))) {
    vt_seterr(err, err_len,
              "mixture: out of memory for the order of an epoch of %lld samples (%lld in the "
              "largest dataset)",
              (long long)m->n_order, (long long)largest);
    mix_close(m);
    return -1;
  }
  *out = m;
  return 0;
}

void mix_close(mix *m) {
  if (!m) return;
  for (size_t d = 0; d < m->n_ds; d++) {
    for (size_t i = 0; i < m->ds[d].n_shards; i++) shard_close(m->ds[d].shards[i]);
    free(m->ds[d].shards);
    free(m->ds[d].cum);
  }
  free(m->ds);
  free(m->order);
  free(m->scratch);
  free(m);
}

int64_t mix_epoch_len(const mix *m) { return m->n_order / m->world; }
int64_t mix_epoch_total(const mix *m) { return m->n_order; }

/* The global index of this rank's slot at the cursor (rolling over to a new epoch). */
static int64_t current(mix *m) {
  if (m->pos >= mix_epoch_len(m)) {
    m->epoch++;
    m->pos = 0;
  }
  if (m->order_epoch != m->epoch) build_order(m, m->epoch);
  return m->order[m->rank + (int64_t)m->world * m->pos];
}

static void locate(const mix *m, int64_t g, size_t *d, size_t *sh, int64_t *local) {
  size_t k = 0;
  while (k + 1 < m->n_ds && g >= m->ds[k + 1].base) k++;
  const mix_ds *ds = &m->ds[k];
  int64_t i = g - ds->base;
  size_t lo = 0, hi = ds->n_shards; /* last shard with cum <= i */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (ds->cum[mid] <= i)
      lo = mid;
    else
      hi = mid;
  }
  *d = k;
  *sh = lo;
  *local = i - ds->cum[lo];
}

int64_t mix_peek_len(mix *m) {
  size_t d, sh;
  int64_t local;
  locate(m, current(m), &d, &sh, &local);
  return shard_sample_len(m->ds[d].shards[sh], local);
}

int mix_next(mix *m, shard_sample *out, mix_ref *ref, char *err, size_t err_len) {
  int64_t g = current(m);
  size_t d, sh;
  int64_t local;
  locate(m, g, &d, &sh, &local);
  if (shard_read_sample(m->ds[d].shards[sh], local, out, err, err_len)) return -1;
  if (ref)
    *ref = (mix_ref){.dataset = (int32_t)d,
                     .index = g - m->ds[d].base,
                     .epoch = m->epoch,
                     .slot = m->rank + (int64_t)m->world * m->pos};
  m->pos++;
  return 0;
}

int mix_peek(mix *m, shard_sample *out, char *err, size_t err_len) {
  size_t d, sh;
  int64_t local;
  locate(m, current(m), &d, &sh, &local);
  return shard_read_sample(m->ds[d].shards[sh], local, out, err, err_len);
}

void mix_skip(mix *m) {
  current(m); /* rolls over to the next epoch first, as mix_next does */
  m->pos++;
}

mix_cursor mix_get_cursor(const mix *m) {
  return (mix_cursor){m->seed, m->epoch, m->pos, m->rank, m->world};
}

int mix_set_cursor(mix *m, const mix_cursor *c, char *err, size_t err_len) {
  if (c->seed != m->seed) {
    vt_seterr(err, err_len, "cursor: seed %" PRIu64 " does not match the mixture's %" PRIu64,
              c->seed, m->seed);
    return -1;
  }
  if (c->world < 1 || c->epoch < 0 || c->epoch > MIX_MAX_EPOCH || c->pos < 0) {
    vt_seterr(err, err_len, "cursor: epoch %lld, pos %lld, world %d out of range",
              (long long)c->epoch, (long long)c->pos, c->world);
    return -1;
  }
  /* After every rank of the old world took pos samples, exactly the first pos * world slots
   * of the epoch are consumed; continue from there with this world's stride. */
  int64_t consumed;
  if (vt_mul_i64_overflows(c->pos, c->world, &consumed) || consumed / m->world > mix_epoch_len(m)) {
    vt_seterr(err, err_len,
              "cursor: pos %lld of world %d is beyond the epoch length %lld (other data?)",
              (long long)c->pos, c->world, (long long)mix_epoch_len(m));
    return -1;
  }
  int64_t pos = consumed / m->world;
  m->epoch = c->epoch;
  m->pos = pos;
  return 0;
}

/* ---- samples drawn per dataset -------------------------------------------------------------- */

size_t mix_n_datasets(const mix *m) { return m->n_ds; }
int64_t mix_dataset_size(const mix *m, size_t d) { return d < m->n_ds ? ds_count(&m->ds[d]) : 0; }

int64_t mix_dataset_per_epoch(const mix *m, size_t d) {
  if (d >= m->n_ds) return 0;
  int64_t n = ds_count(&m->ds[d]);
  double whole = floor(m->ds[d].ratio);
  return (int64_t)whole * n + (int64_t)floor((m->ds[d].ratio - whole) * (double)n + 0.5);
}

static size_t dataset_of(const mix *m, int64_t g) {
  size_t k = 0;
  while (k + 1 < m->n_ds && g >= m->ds[k + 1].base) k++;
  return k;
}

int mix_drawn(mix *m, const mix_cursor *c, int64_t *counts, char *err, size_t err_len) {
  if (c->seed != m->seed || c->world != m->world || c->epoch < 0 || c->pos < 0 ||
      c->pos > mix_epoch_len(m)) {
    vt_seterr(err, err_len,
              "samples drawn: cursor (seed %" PRIu64 ", epoch %lld, pos %lld, world %d) is not "
              "one of this mixture (seed %" PRIu64 ", world %d, %lld per epoch and rank)",
              c->seed, (long long)c->epoch, (long long)c->pos, c->world, m->seed, m->world,
              (long long)mix_epoch_len(m));
    return -1;
  }
  for (size_t d = 0; d < m->n_ds; d++) counts[d] = 0;
  /* the ranks together consume the first world * epoch_len slots of an epoch's order */
  int64_t whole_slots = (int64_t)m->world * mix_epoch_len(m);
  for (int64_t e = 0; e <= c->epoch; e++) {
    int64_t used = e < c->epoch ? whole_slots : (int64_t)m->world * c->pos;
    if (used == 0) continue;
    if (used == m->n_order) { /* the whole epoch: its composition does not depend on the order */
      for (size_t d = 0; d < m->n_ds; d++) counts[d] += mix_dataset_per_epoch(m, d);
      if (e < c->epoch && whole_slots == m->n_order) { /* every later whole epoch alike */
        for (size_t d = 0; d < m->n_ds; d++)
          counts[d] += (c->epoch - 1 - e) * mix_dataset_per_epoch(m, d);
        e = c->epoch - 1;
      }
      continue;
    }
    if (m->order_epoch != e) build_order(m, e);
    for (int64_t i = 0; i < used; i++) counts[dataset_of(m, m->order[i])]++;
  }
  return 0;
}
