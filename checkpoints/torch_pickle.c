/* The restricted unpickler of torch.save's data.pkl; see torch_pickle.h. */
#include "checkpoints/torch_pickle.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "autograd/checked.h"
#include "autograd/fmt.h"

/* Limits against hostile input: a real data.pkl is ~100 bytes per tensor. */
#define MAX_VALUES (1 << 22)
#define MAX_MEMO (1 << 24)
#define MAX_DEPTH 64

/* ---- pickle values ---- */

typedef enum {
  PV_NONE,
  PV_BOOL,
  PV_INT,
  PV_FLOAT,
  PV_STR,
  PV_TUPLE,
  PV_LIST,
  PV_DICT, /* items hold key, value pairs */
  PV_GLOBAL,
  PV_STORAGE, /* i: index into the storages */
  PV_TENSOR,  /* i: index into the records */
  PV_MARK,
} pv_kind;

/* The globals a torch state dict needs, and nothing else. */
typedef enum {
  G_ODICT,
  G_REBUILD_TENSOR,
  G_REBUILD_PARAM,
  G_STORAGE, /* i: the torch_pt_dtype */
} g_kind;

typedef struct pv {
  pv_kind k;
  int64_t i;
  double f;
  char *s; /* PV_STR (NUL-terminated), PV_GLOBAL's dotted name */
  struct pv **items;
  size_t n, cap;
} pv;

typedef struct {
  const unsigned char *p;
  size_t len, pos;
  const char *where; /* "FILE: NAME/data.pkl" */
  pv **pool;         /* every value, freed at the end */
  size_t n_pool, cap_pool;
  pv **stack;
  size_t n_stack, cap_stack;
  pv **memo;
  size_t n_memo;   /* slots */
  size_t memo_len; /* entries set (MEMOIZE's next index) */
  torch_pt_file *f;
  torch_pt_tensor *recs; /* tensor records, named when the flattening finds them */
  int n_recs, cap_recs;
  char *err;
  size_t err_len;
} unpickler;

static const struct {
  const char *name;
  torch_pt_dtype dtype;
  size_t size;
} storage_types[] = {
    {"FloatStorage", TORCH_PT_F32, 4}, {"DoubleStorage", TORCH_PT_F64, 8},
    {"HalfStorage", TORCH_PT_F16, 2},  {"BFloat16Storage", TORCH_PT_BF16, 2},
    {"LongStorage", TORCH_PT_I64, 8},  {"IntStorage", TORCH_PT_I32, 4},
    {"ShortStorage", TORCH_PT_I16, 2}, {"CharStorage", TORCH_PT_I8, 1},
    {"ByteStorage", TORCH_PT_U8, 1},   {"BoolStorage", TORCH_PT_BOOL, 1},
};
#define N_STORAGE_TYPES (sizeof storage_types / sizeof storage_types[0])

size_t torch_pt_dtype_size(torch_pt_dtype t) {
  for (size_t i = 0; i < N_STORAGE_TYPES; i++)
    if (storage_types[i].dtype == t) return storage_types[i].size;
  return 1;
}

const char *torch_pt_dtype_name(torch_pt_dtype t) {
  static const char *const names[] = {"F32", "F64", "F16", "BF16", "I64",
                                      "I32", "I16", "I8",  "U8",   "BOOL"};
  return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

static int fail(unpickler *u, const char *fmt, const char *a) {
  char m[512];
  snprintf(m, sizeof m, fmt, a);
  vt_seterr(u->err, u->err_len, "%s: at byte %zu: %s", u->where, u->pos, m);
  return -1;
}

/* Room for one more pointer in *arr (n of *cap used; first: the first capacity). */
static int grow(unpickler *u, pv ***arr, size_t n, size_t *cap, size_t first) {
  if (n < *cap) return 0;
  size_t c = *cap ? 2 * *cap : first;
  pv **p = realloc(*arr, c * sizeof *p);
  if (!p) return fail(u, "%s", "out of memory");
  *arr = p, *cap = c;
  return 0;
}

static pv *new_value(unpickler *u, pv_kind k) {
  if (u->n_pool >= MAX_VALUES) {
    fail(u, "more than %s values: refused", "4M");
    return NULL;
  }
  if (grow(u, &u->pool, u->n_pool, &u->cap_pool, 256)) return NULL;
  pv *v = calloc(1, sizeof *v);
  if (!v) {
    fail(u, "%s", "out of memory");
    return NULL;
  }
  v->k = k;
  u->pool[u->n_pool++] = v;
  return v;
}

static int add_item(unpickler *u, pv *c, pv *item) {
  if (grow(u, &c->items, c->n, &c->cap, 4)) return -1;
  c->items[c->n++] = item;
  return 0;
}

static int push(unpickler *u, pv *v) {
  if (!v || grow(u, &u->stack, u->n_stack, &u->cap_stack, 64)) return -1;
  u->stack[u->n_stack++] = v;
  return 0;
}

static pv *top(unpickler *u) {
  if (!u->n_stack || u->stack[u->n_stack - 1]->k == PV_MARK) {
    fail(u, "%s", "stack underflow: the pickle is corrupt");
    return NULL;
  }
  return u->stack[u->n_stack - 1];
}

static pv *pop(unpickler *u) {
  pv *v = top(u);
  if (v) u->n_stack--;
  return v;
}

/* The index of the topmost mark, or -1 (with err). */
static long find_mark(unpickler *u) {
  for (size_t i = u->n_stack; i > 0; i--)
    if (u->stack[i - 1]->k == PV_MARK) return (long)(i - 1);
  fail(u, "%s", "no MARK on the stack: the pickle is corrupt");
  return -1;
}

/* The topmost mark, which must have the container op fills below it; -1 with err. */
static long mark_above_container(unpickler *u, const char *op) {
  long m = find_mark(u);
  if (m == 0) fail(u, "%s without a list or dict below its MARK", op);
  return m < 1 ? -1 : m;
}

static int need(unpickler *u, size_t n) {
  if (u->len - u->pos < n) return fail(u, "%s", "truncated pickle");
  return 0;
}

/* The opcode's n argument bytes as a little-endian number, advancing past them; -1 when
 * truncated (err set). */
static int take(unpickler *u, int n, uint64_t *v) {
  if (need(u, (size_t)n)) return -1;
  *v = torch_pt_le(u->p + u->pos, n);
  u->pos += (size_t)n;
  return 0;
}

static pv *make_int(unpickler *u, int64_t x) {
  pv *v = new_value(u, PV_INT);
  if (v) v->i = x;
  return v;
}

static pv *make_str(unpickler *u, const unsigned char *s, size_t n) {
  pv *v = new_value(u, PV_STR);
  if (!v) return NULL;
  v->s = malloc(n + 1);
  if (!v->s) {
    fail(u, "%s", "out of memory");
    return NULL;
  }
  memcpy(v->s, s, n);
  v->s[n] = 0;
  v->n = n;
  return v;
}

static int memo_put(unpickler *u, uint64_t idx) {
  pv *v = top(u);
  if (!v) return -1;
  if (idx >= MAX_MEMO) return fail(u, "%s", "memo index beyond 16M: refused");
  if (idx >= u->n_memo) {
    size_t n = u->n_memo ? u->n_memo : 64;
    while (n <= idx) n *= 2;
    pv **m = realloc(u->memo, n * sizeof *m);
    if (!m) return fail(u, "%s", "out of memory");
    memset(m + u->n_memo, 0, (n - u->n_memo) * sizeof *m);
    u->memo = m, u->n_memo = n;
  }
  if (!u->memo[idx]) u->memo_len++;
  u->memo[idx] = v;
  return 0;
}

static int memo_get(unpickler *u, uint64_t idx) {
  if (idx >= u->n_memo || !u->memo[idx]) return fail(u, "%s", "memo entry read before it was set");
  return push(u, u->memo[idx]);
}

/* GLOBAL module.name: the allow-list. */
static pv *make_global(unpickler *u, const char *mod, size_t ml, const char *name, size_t nl) {
  char full[256];
  snprintf(full, sizeof full, "%.*s.%.*s", (int)(ml < 120 ? ml : 120), mod,
           (int)(nl < 120 ? nl : 120), name);
  pv *v = NULL;
  int64_t g = -1;
  if (!strcmp(full, "collections.OrderedDict")) g = G_ODICT;
  if (!strcmp(full, "torch._utils._rebuild_tensor_v2")) g = G_REBUILD_TENSOR;
  if (!strcmp(full, "torch._utils._rebuild_parameter")) g = G_REBUILD_PARAM;
  for (size_t i = 0; i < N_STORAGE_TYPES && g < 0; i++)
    if (ml == 5 && !strncmp(mod, "torch", 5) && strlen(storage_types[i].name) == nl &&
        !strncmp(name, storage_types[i].name, nl))
      g = G_STORAGE + 16 * (int64_t)storage_types[i].dtype;
  if (g < 0) {
    fail(u,
         "global %s: not allowed (only collections.OrderedDict, torch._utils._rebuild_tensor_v2, "
         "torch._utils._rebuild_parameter and torch.*Storage are: a torch pickle of other "
         "objects is refused, nothing is executed)",
         full);
    return NULL;
  }
  if (!(v = new_value(u, PV_GLOBAL))) return NULL;
  v->i = g;
  v->s = strdup(full);
  if (!v->s) {
    fail(u, "%s", "out of memory");
    return NULL;
  }
  return v;
}

static bool is_global(const pv *v, g_kind g) { return v->k == PV_GLOBAL && (v->i & 15) == g; }

static bool int_tuple(const pv *v, int64_t *out, int max, int *n) {
  if (v->k != PV_TUPLE || v->n > (size_t)max) return false;
  for (size_t i = 0; i < v->n; i++) {
    if (v->items[i]->k != PV_INT) return false;
    out[i] = v->items[i]->i;
  }
  *n = (int)v->n;
  return true;
}

/* persistent_load: ('storage', torch.XStorage, KEY, LOCATION, NUMEL) -> a storage. */
static pv *load_storage(unpickler *u, pv *pid) {
  torch_pt_file *f = u->f;
  if (pid->k != PV_TUPLE || pid->n != 5 || pid->items[0]->k != PV_STR ||
      strcmp(pid->items[0]->s, "storage") || !is_global(pid->items[1], G_STORAGE) ||
      pid->items[2]->k != PV_STR || pid->items[4]->k != PV_INT) {
    fail(u, "%s", "persistent id: expected ('storage', torch.<Type>Storage, key, location, numel)");
    return NULL;
  }
  const char *key = pid->items[2]->s;
  torch_pt_dtype dt = (torch_pt_dtype)(pid->items[1]->i >> 4);
  int64_t numel = pid->items[4]->i;
  int idx = -1;
  for (int i = 0; i < f->n_storages && idx < 0; i++)
    if (!strcmp(f->storages[i].key, key)) idx = i;
  if (idx >= 0 && (f->storages[idx].dtype != dt || f->storages[idx].numel != numel)) {
    fail(u, "storage %s: recorded twice with different types or sizes", key);
    return NULL;
  }
  if (idx < 0) {
    size_t bytes;
    if (!key[0] || strchr(key, '/') || strstr(key, "..") || numel < 0 ||
        vt_bytes_overflows(numel, torch_pt_dtype_size(dt), &bytes)) {
      fail(u, "storage %s: bad key or element count", key);
      return NULL;
    }
    char entry[1024];
    snprintf(entry, sizeof entry, "%s/data/%s", f->prefix, key);
    zip_stat_t st;
    zip_int64_t zi = zip_name_locate(f->zip, entry, 0);
    if (zi < 0 || zip_stat_index(f->zip, (zip_uint64_t)zi, 0, &st) || !(st.valid & ZIP_STAT_SIZE)) {
      fail(u, "storage %s: no such entry in the archive (missing storage)", entry);
      return NULL;
    }
    if (st.size < bytes) {
      char m[700];
      snprintf(m, sizeof m, "%s: %llu bytes, but the record claims %lld %s elements (%zu bytes)",
               entry, (unsigned long long)st.size, (long long)numel, torch_pt_dtype_name(dt),
               bytes);
      fail(u, "storage %s", m);
      return NULL;
    }
    if (f->n_storages % 64 == 0) {
      torch_pt_storage *s = realloc(f->storages, (size_t)(f->n_storages + 64) * sizeof *s);
      if (!s) {
        fail(u, "%s", "out of memory");
        return NULL;
      }
      f->storages = s;
    }
    torch_pt_storage *s = &f->storages[f->n_storages];
    if (!(s->key = strdup(key))) {
      fail(u, "%s", "out of memory");
      return NULL;
    }
    s->dtype = dt, s->numel = numel, s->entry = zi;
    idx = f->n_storages++;
  }
  pv *v = new_value(u, PV_STORAGE);
  if (v) v->i = idx;
  return v;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]). */
static pv *rebuild_tensor(unpickler *u, pv *args) {
  torch_pt_tensor r = {0};
  if (args->k != PV_TUPLE || args->n < 4 || args->n > 7 || args->items[0]->k != PV_STORAGE ||
      args->items[1]->k != PV_INT ||
      !int_tuple(args->items[2], r.shape, TORCH_PT_MAX_DIMS, &r.ndim)) {
    fail(u, "%s",
         "_rebuild_tensor_v2: expected (storage, offset, size, stride, ...) with at most 8 "
         "dimensions");
    return NULL;
  }
  int nst = 0;
  if (!int_tuple(args->items[3], r.stride, TORCH_PT_MAX_DIMS, &nst) || nst != r.ndim) {
    fail(u, "%s", "_rebuild_tensor_v2: the stride does not match the size");
    return NULL;
  }
  r.storage = (int)args->items[0]->i;
  r.offset = args->items[1]->i;
  const torch_pt_storage *s = &u->f->storages[r.storage];
  /* the last element read: offset + sum (size-1) * stride, inside the storage */
  int64_t last = r.offset, numel = 1;
  bool bad = r.offset < 0;
  for (int d = 0; d < r.ndim && !bad; d++) {
    int64_t span;
    bad = r.shape[d] < 0 || r.stride[d] < 0 || vt_mul_i64_overflows(numel, r.shape[d], &numel);
    if (!bad && r.shape[d] > 0)
      bad = vt_mul_i64_overflows(r.shape[d] - 1, r.stride[d], &span) ||
            vt_add_i64_overflows(last, span, &last);
  }
  if (bad || (numel > 0 && last >= s->numel)) {
    char m[256];
    snprintf(m, sizeof m,
             "%s (%lld elements) is too short for the tensor's size, stride and offset", s->key,
             (long long)s->numel);
    fail(u, "storage %s", m);
    return NULL;
  }
  r.numel = numel;
  if (u->n_recs == u->cap_recs) {
    int cap = u->cap_recs ? 2 * u->cap_recs : 64;
    torch_pt_tensor *p = realloc(u->recs, (size_t)cap * sizeof *p);
    if (!p) {
      fail(u, "%s", "out of memory");
      return NULL;
    }
    u->recs = p, u->cap_recs = cap;
  }
  u->recs[u->n_recs] = r;
  pv *v = new_value(u, PV_TENSOR);
  if (v) v->i = u->n_recs++;
  return v;
}

static pv *reduce(unpickler *u, pv *fn, pv *args) {
  if (is_global(fn, G_ODICT)) {
    if (args->k != PV_TUPLE || args->n) {
      fail(u, "%s", "OrderedDict(...): only the empty constructor is read");
      return NULL;
    }
    return new_value(u, PV_DICT);
  }
  if (is_global(fn, G_REBUILD_TENSOR)) return rebuild_tensor(u, args);
  if (is_global(fn, G_REBUILD_PARAM)) {
    if (args->k != PV_TUPLE || args->n < 1 || args->items[0]->k != PV_TENSOR) {
      fail(u, "%s", "_rebuild_parameter: expected (tensor, requires_grad, hooks)");
      return NULL;
    }
    return args->items[0];
  }
  fail(u, "REDUCE of %s: only OrderedDict and the tensor rebuilds are called",
       fn->k == PV_GLOBAL ? fn->s : "a non-global");
  return NULL;
}

static int set_items(unpickler *u, pv *d, size_t from) {
  if (d->k != PV_DICT) return fail(u, "%s", "SETITEM(S) on something that is not a dict");
  for (size_t i = from; i + 1 < u->n_stack; i += 2)
    if (add_item(u, d, u->stack[i]) || add_item(u, d, u->stack[i + 1])) return -1;
  return 0;
}

/* Runs the pickle to STOP; returns the result or NULL (err set). */
static pv *unpickle(unpickler *u) {
  while (u->pos < u->len) {
    unsigned char op = u->p[u->pos++];
    const unsigned char *a = u->p + u->pos;
    int rc = 0;
    switch (op) {
    case 0x80: /* PROTO */
      if (need(u, 1)) return NULL;
      if (a[0] < 2 || a[0] > 5) {
        fail(u, "pickle protocol %s: expected 2 to 5", a[0] < 2 ? "0/1" : "6+");
        return NULL;
      }
      u->pos += 1;
      break;
    case 0x95: /* FRAME */
      if (need(u, 8)) return NULL;
      u->pos += 8;
      break;
    case '.': /* STOP */
    {
      pv *r = pop(u);
      return r;
    }
    case '(': rc = push(u, new_value(u, PV_MARK)); break;
    case 'N': rc = push(u, new_value(u, PV_NONE)); break;
    case 0x88:
    case 0x89: {
      pv *v = new_value(u, PV_BOOL);
      if (v) v->i = op == 0x88;
      rc = push(u, v);
      break;
    }
    case 'K':
    case 'M':
    case 'J': {
      uint64_t x;
      if (take(u, op == 'K' ? 1 : op == 'M' ? 2 : 4, &x)) return NULL;
      rc = push(u, make_int(u, op == 'J' ? (int32_t)(uint32_t)x : (int64_t)x));
      break;
    }
    case 0x8a: /* LONG1: n little-endian two's-complement bytes */
    {
      if (need(u, 1) || need(u, 1 + (size_t)a[0])) return NULL;
      int n = a[0];
      if (n > 8) {
        fail(u, "%s", "an integer wider than 64 bits");
        return NULL;
      }
      uint64_t x = n ? torch_pt_le(a + 1, n) : 0;
      if (n && n < 8 && (a[n] & 0x80)) x |= ~(uint64_t)0 << (8 * n);
      u->pos += 1 + (size_t)n;
      rc = push(u, make_int(u, (int64_t)x));
      break;
    }
    case 'G': {
      if (need(u, 8)) return NULL;
      uint64_t b = 0;
      for (int i = 0; i < 8; i++) b = b << 8 | a[i];
      double d;
      memcpy(&d, &b, 8);
      u->pos += 8;
      pv *v = new_value(u, PV_FLOAT);
      if (v) v->f = d;
      rc = push(u, v);
      break;
    }
    case 'X':   /* BINUNICODE */
    case 0x8c:  /* SHORT_BINUNICODE */
    case 'B':   /* BINBYTES */
    case 'C': { /* SHORT_BINBYTES */
      int w = op == 'X' || op == 'B' ? 4 : 1;
      if (need(u, (size_t)w)) return NULL;
      uint64_t n = torch_pt_le(a, w);
      u->pos += (size_t)w;
      if (need(u, n)) return NULL;
      rc = push(u, make_str(u, u->p + u->pos, n));
      u->pos += n;
      break;
    }
    case 'c': /* GLOBAL "module\nname\n" */
    {
      const unsigned char *nl1 = memchr(a, '\n', u->len - u->pos);
      const unsigned char *nl2 =
          nl1 ? memchr(nl1 + 1, '\n', u->len - u->pos - (size_t)(nl1 + 1 - a)) : NULL;
      if (!nl2) {
        fail(u, "%s", "truncated GLOBAL");
        return NULL;
      }
      rc = push(u, make_global(u, (const char *)a, (size_t)(nl1 - a), (const char *)nl1 + 1,
                               (size_t)(nl2 - nl1 - 1)));
      u->pos += (size_t)(nl2 + 1 - a);
      break;
    }
    case 0x93: /* STACK_GLOBAL */
    {
      pv *name = pop(u), *mod = name ? pop(u) : NULL;
      if (!mod) return NULL;
      if (mod->k != PV_STR || name->k != PV_STR) {
        fail(u, "%s", "STACK_GLOBAL: expected two strings");
        return NULL;
      }
      rc = push(u, make_global(u, mod->s, mod->n, name->s, name->n));
      break;
    }
    case ')': rc = push(u, new_value(u, PV_TUPLE)); break;
    case ']': rc = push(u, new_value(u, PV_LIST)); break;
    case '}': rc = push(u, new_value(u, PV_DICT)); break;
    case 0x85:
    case 0x86:
    case 0x87: {
      size_t n = (size_t)(op - 0x84);
      if (u->n_stack < n) {
        fail(u, "%s", "stack underflow: the pickle is corrupt");
        return NULL;
      }
      pv *t = new_value(u, PV_TUPLE);
      if (!t) return NULL;
      for (size_t i = u->n_stack - n; i < u->n_stack && !rc; i++) {
        if (u->stack[i]->k == PV_MARK) rc = fail(u, "%s", "a MARK inside TUPLEn");
        if (!rc) rc = add_item(u, t, u->stack[i]);
      }
      u->n_stack -= n;
      if (!rc) rc = push(u, t);
      break;
    }
    case 't':   /* TUPLE */
    case 'l': { /* LIST */
      long m = find_mark(u);
      if (m < 0) return NULL;
      pv *t = new_value(u, op == 't' ? PV_TUPLE : PV_LIST);
      if (!t) return NULL;
      for (size_t i = (size_t)m + 1; i < u->n_stack && !rc; i++) rc = add_item(u, t, u->stack[i]);
      u->n_stack = (size_t)m;
      if (!rc) rc = push(u, t);
      break;
    }
    case 'd': { /* DICT */
      long m = find_mark(u);
      if (m < 0) return NULL;
      pv *d = new_value(u, PV_DICT);
      if (!d || ((u->n_stack - (size_t)m - 1) & 1)) {
        if (d) fail(u, "%s", "DICT: an odd number of keys and values");
        return NULL;
      }
      rc = set_items(u, d, (size_t)m + 1);
      u->n_stack = (size_t)m;
      if (!rc) rc = push(u, d);
      break;
    }
    case 'a': { /* APPEND */
      pv *v = pop(u), *l = v ? top(u) : NULL;
      if (!l) return NULL;
      if (l->k != PV_LIST) rc = fail(u, "%s", "APPEND to something that is not a list");
      if (!rc) rc = add_item(u, l, v);
      break;
    }
    case 'e': { /* APPENDS */
      long m = mark_above_container(u, "APPENDS");
      if (m < 0) return NULL;
      pv *l = u->stack[m - 1];
      if (l->k != PV_LIST) rc = fail(u, "%s", "APPENDS to something that is not a list");
      for (size_t i = (size_t)m + 1; i < u->n_stack && !rc; i++) rc = add_item(u, l, u->stack[i]);
      u->n_stack = (size_t)m;
      break;
    }
    case 's': { /* SETITEM */
      pv *v = pop(u), *k = v ? pop(u) : NULL, *d = k ? top(u) : NULL;
      if (!d) return NULL;
      if (d->k != PV_DICT) rc = fail(u, "%s", "SETITEM on something that is not a dict");
      if (!rc) rc = add_item(u, d, k);
      if (!rc) rc = add_item(u, d, v);
      break;
    }
    case 'u': { /* SETITEMS */
      long m = mark_above_container(u, "SETITEMS");
      if (m < 0) return NULL;
      if ((u->n_stack - (size_t)m - 1) & 1) {
        fail(u, "%s", "SETITEMS: an odd number of keys and values");
        return NULL;
      }
      rc = set_items(u, u->stack[m - 1], (size_t)m + 1);
      u->n_stack = (size_t)m;
      break;
    }
    case 'q':
    case 'r':
    case 'h':
    case 'j': {
      uint64_t x;
      if (take(u, op == 'q' || op == 'h' ? 1 : 4, &x)) return NULL;
      rc = op == 'q' || op == 'r' ? memo_put(u, x) : memo_get(u, x);
      break;
    }
    case 0x94: rc = memo_put(u, u->memo_len); break; /* MEMOIZE */
    case 'Q': {                                      /* BINPERSID */
      pv *pid = pop(u);
      if (!pid) return NULL;
      rc = push(u, load_storage(u, pid));
      break;
    }
    case 'R': { /* REDUCE */
      pv *args = pop(u), *fn = args ? pop(u) : NULL;
      if (!fn) return NULL;
      rc = push(u, reduce(u, fn, args));
      break;
    }
    case 'b': { /* BUILD: an OrderedDict's state (its _metadata) is dropped */
      pv *state = pop(u), *obj = state ? top(u) : NULL;
      if (!obj) return NULL;
      if (obj->k != PV_DICT && obj->k != PV_TENSOR)
        rc = fail(u, "%s", "BUILD of something that is not a dict or a tensor");
      break;
    }
    case 0x81: /* NEWOBJ */
    case 0x92: /* NEWOBJ_EX */
      fail(u, "%s",
           "NEWOBJ: objects other than dicts and tensors are refused (nothing is executed)");
      return NULL;
    default: {
      char o[8];
      snprintf(o, sizeof o, "0x%02x", op);
      u->pos--;
      fail(u, "opcode %s: not one torch.save emits (corrupt, or not a torch checkpoint)", o);
      return NULL;
    }
    }
    if (rc) return NULL;
  }
  fail(u, "%s", "truncated pickle: no STOP");
  return NULL;
}

/* ---- names: the dict paths to tensors ---- */

static int add_tensor(unpickler *u, const torch_pt_tensor *r, const char *name) {
  torch_pt_file *f = u->f;
  if (f->n % 256 == 0) {
    torch_pt_tensor *t = realloc(f->tensors, (size_t)(f->n + 256) * sizeof *t);
    if (!t) return fail(u, "%s", "out of memory");
    f->tensors = t;
  }
  f->tensors[f->n] = *r;
  if (!(f->tensors[f->n].name = strdup(name))) return fail(u, "%s", "out of memory");
  f->n++;
  return 0;
}

static int flatten(unpickler *u, const pv *d, const char *path, int depth) {
  if (depth > MAX_DEPTH) return fail(u, "dicts nested deeper than %s (or a cycle)", "64");
  for (size_t i = 0; i + 1 < d->n; i += 2) {
    const pv *k = d->items[i], *v = d->items[i + 1];
    char kb[32];
    const char *key = k->k == PV_STR ? k->s : NULL;
    if (k->k == PV_INT) snprintf(kb, sizeof kb, "%lld", (long long)k->i), key = kb;
    if (!key || (v->k != PV_TENSOR && v->k != PV_DICT)) continue; /* scalars, strings, lists */
    size_t n = strlen(path) + strlen(key) + 2;
    char *name = malloc(n);
    if (!name) return fail(u, "%s", "out of memory");
    snprintf(name, n, "%s%s%s", path, path[0] ? "." : "", key);
    int rc =
        v->k == PV_TENSOR ? add_tensor(u, &u->recs[v->i], name) : flatten(u, v, name, depth + 1);
    free(name);
    if (rc) return -1;
  }
  return 0;
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const torch_pt_tensor *)a)->name, ((const torch_pt_tensor *)b)->name);
}

static void free_values(unpickler *u) {
  for (size_t i = 0; i < u->n_pool; i++) {
    free(u->pool[i]->items);
    free(u->pool[i]->s);
    free(u->pool[i]);
  }
  free(u->pool), free(u->stack), free(u->memo), free(u->recs);
}

bool torch_pt_is_float(torch_pt_dtype t) {
  return t == TORCH_PT_F32 || t == TORCH_PT_F64 || t == TORCH_PT_F16 || t == TORCH_PT_BF16;
}

int torch_pickle_load(torch_pt_file *f, const unsigned char *p, size_t pl, const char *where,
                      char *err, size_t err_len) {
  unpickler u = {.p = p, .len = pl, .where = where, .f = f, .err = err, .err_len = err_len};
  pv *root = unpickle(&u);
  int rc = root ? 0 : -1;
  if (!rc && root->k != PV_DICT)
    rc = fail(&u, "%s", "the pickled object is not a dict (a state dict or a dict of them)");
  if (!rc) {
    const char *sd = "";
    for (size_t i = 0; i + 1 < root->n && !sd[0]; i += 2) {
      const pv *k = root->items[i];
      if (k->k == PV_STR && root->items[i + 1]->k == PV_DICT &&
          (!strcmp(k->s, "model") || !strcmp(k->s, "state_dict")))
        sd = !strcmp(k->s, "model") ? "model." : "state_dict.";
    }
    rc = flatten(&u, root, "", 0);
    if (!rc && !(f->sd_prefix = strdup(sd))) rc = fail(&u, "%s", "out of memory");
  }
  if (!rc && f->n) {
    torch_pt_tensor *s = malloc((size_t)f->n * sizeof *s);
    if (!s) rc = fail(&u, "%s", "out of memory");
    if (s) {
      memcpy(s, f->tensors, (size_t)f->n * sizeof *s);
      qsort(s, (size_t)f->n, sizeof *s, by_name);
      for (int i = 1; i < f->n && !rc; i++)
        if (!strcmp(s[i - 1].name, s[i].name)) rc = fail(&u, "tensor %s: appears twice", s[i].name);
      free(s);
    }
  }
  free_values(&u);
  return rc;
}
