/* Byte-level BPE tokenizer (Qwen2): tokenizer.json via jansson, regex via PCRE2 (JIT),
 * NFC via utf8proc. Vocabulary and word cache are open-addressing hash maps over byte
 * strings; merges are a hash map from the id pair to (rank, merged id). */
#include "data/tokenizer.h"
#include "autograd/fmt.h"
#include "autograd/regfile.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* Ids are int32 everywhere (shards, labels); the table stays below 2^31 entries. */
#define TOK_MAX_ID INT32_MAX
/* A real tokenizer.json is a few MB (Qwen2's: 7 MB). */
#define TOK_MAX_JSON_BYTES (512u << 20)

/* ---- small growable arrays ---------------------------------------------------------- */

int tok_ids_push(tok_ids *a, int32_t x) { return tok_ids_append(a, &x, 1); }

int tok_ids_append(tok_ids *a, const int32_t *x, size_t n) {
  if (a->n + n > a->cap) {
    size_t cap = a->cap ? a->cap : 64;
    while (cap < a->n + n) cap *= 2;
    int32_t *v = realloc(a->v, cap * sizeof *v);
    if (!v) return -1;
    a->v = v;
    a->cap = cap;
  }
  memcpy(a->v + a->n, x, n * sizeof *x);
  a->n += n;
  return 0;
}

void tok_ids_free(tok_ids *a) {
  free(a->v);
  *a = (tok_ids){0};
}

void tok_bytes_free(tok_bytes *b) {
  free(b->p);
  *b = (tok_bytes){0};
}

static int bytes_append(tok_bytes *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
  return 0;
}

/* ---- byte-string hash map --------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, s, 8);
    h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    h ^= h >> 31;
    s += 8;
    n -= 8;
  }
  uint64_t w = 0;
  memcpy(&w, s, n);
  h = (h ^ w) * 0x94d049bb133111ebull;
  h ^= h >> 29;
  return h;
}

typedef struct {
  uint32_t off, len; /* key bytes in the arena; off == UINT32_MAX: empty */
  int32_t val;
  uint32_t aux;
} str_slot;

typedef struct {
  str_slot *slots;
  size_t mask, count;
  char *arena;
  size_t arena_n, arena_cap;
} strmap;

static int strmap_init(strmap *m, size_t expect) {
  size_t cap = 16;
  while (cap < expect * 2) cap *= 2;
  *m = (strmap){0};
  m->slots = malloc(cap * sizeof *m->slots);
  if (!m->slots) return -1;
  for (size_t i = 0; i < cap; i++) m->slots[i].off = UINT32_MAX;
  m->mask = cap - 1;
  return 0;
}

static void strmap_free(strmap *m) {
  free(m->slots);
  free(m->arena);
  *m = (strmap){0};
}

static void strmap_clear(strmap *m) {
  for (size_t i = 0; i <= m->mask; i++) m->slots[i].off = UINT32_MAX;
  m->count = 0;
  m->arena_n = 0;
}

static str_slot *strmap_find(const strmap *m, const char *k, size_t n) {
  size_t i = hash_bytes(k, n) & m->mask;
  for (;;) {
    str_slot *s = &m->slots[i];
    if (s->off == UINT32_MAX) return NULL;
    if (s->len == n && memcmp(m->arena + s->off, k, n) == 0) return s;
    i = (i + 1) & m->mask;
  }
}

static int strmap_grow(strmap *m) {
  strmap g;
  if (strmap_init(&g, (m->mask + 1)) != 0) return -1;
  for (size_t i = 0; i <= m->mask; i++) {
    str_slot *s = &m->slots[i];
    if (s->off == UINT32_MAX) continue;
    size_t j = hash_bytes(m->arena + s->off, s->len) & g.mask;
    while (g.slots[j].off != UINT32_MAX) j = (j + 1) & g.mask;
    g.slots[j] = *s;
  }
  free(m->slots);
  m->slots = g.slots;
  m->mask = g.mask;
  return 0;
}

/* Inserts (or finds) key; returns its slot, NULL on out of memory. */
static str_slot *strmap_put(strmap *m, const char *k, size_t n, int32_t val, uint32_t aux) {
  str_slot *s = strmap_find(m, k, n);
  if (s) return s;
  if ((m->count + 1) * 2 > m->mask + 1 && strmap_grow(m) != 0) return NULL;
  if (m->arena_n + n > m->arena_cap) {
    size_t cap = m->arena_cap ? m->arena_cap : 4096;
    while (cap < m->arena_n + n) cap *= 2;
    char *a = realloc(m->arena, cap);
    if (!a) return NULL;
    m->arena = a;
    m->arena_cap = cap;
  }
  if (n) memcpy(m->arena + m->arena_n, k, n);
  size_t i = hash_bytes(k, n) & m->mask;
  while (m->slots[i].off != UINT32_MAX) i = (i + 1) & m->mask;
  s = &m->slots[i];
  *s = (str_slot){.off = (uint32_t)m->arena_n, .len = (uint32_t)n, .val = val, .aux = aux};
  m->arena_n += n;
  m->count++;
  return s;
}

/* ---- merges: (left id, right id) -> (rank, merged id) ------------------------------- */

typedef struct {
  uint64_t key;
  uint32_t rank; /* UINT32_MAX: empty */
  int32_t id;
} merge_slot;

static inline uint64_t pair_key(int32_t a, int32_t b) {
  return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
}
static inline size_t pair_hash(uint64_t k) { return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20); }

/* ---- the tokenizer ------------------------------------------------------------------ */

typedef struct {
  char *text;
  size_t len;
  int32_t id;
  bool special;
} added_token;

struct tok_tokenizer {
  strmap vocab;     /* raw bytes -> id */
  uint32_t *id_off; /* id -> bytes in vocab.arena (or added token text) */
  uint32_t *id_len;
  const char **id_text; /* added tokens: their text; NULL for BPE tokens */
  bool *id_special;
  int32_t n_ids;
  int32_t byte_id[256]; /* id of each single byte */
  merge_slot *merges;
  size_t merge_mask;
  added_token *added; /* sorted longest first */
  int n_added;
  bool added_first[256];
  pcre2_code *re;
  pcre2_match_data *md;
  bool jit;
  strmap cache; /* word bytes -> (offset into cache_ids, count) */
  tok_ids cache_ids;
  int32_t eos_id, pad_id;
};

static inline bool merge_get(const tok_tokenizer *t, int32_t a, int32_t b, uint32_t *rank,
                             int32_t *id) {
  uint64_t k = pair_key(a, b);
  size_t i = pair_hash(k) & t->merge_mask;
  for (;;) {
    const merge_slot *s = &t->merges[i];
    if (s->rank == UINT32_MAX) return false;
    if (s->key == k) {
      *rank = s->rank;
      *id = s->id;
      return true;
    }
    i = (i + 1) & t->merge_mask;
  }
}

/* GPT-2 byte-level alphabet: printable bytes map to themselves, the rest to 256+n. */
static void byte_alphabet(uint32_t cp_of_byte[256]) {
  int n = 0;
  for (int b = 0; b < 256; b++) {
    bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    cp_of_byte[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
  }
}

/* Converts a byte-level token string into raw bytes (dst has room for strlen(s)). Returns
 * the byte count, or -1 when a character is outside the alphabet. */
static long unmap_token(const char *s, const int16_t *byte_of_cp, char *dst) {
  const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
  long n = 0;
  utf8proc_ssize_t left = (utf8proc_ssize_t)strlen(s);
  while (left > 0) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(p, left, &cp);
    if (k <= 0 || cp < 0 || cp >= 324 || byte_of_cp[cp] < 0) return -1;
    dst[n++] = (char)byte_of_cp[cp];
    p += k;
    left -= k;
  }
  return n;
}

bool tok_utf8_valid(const char *s, size_t n, size_t *bad_at) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate(p + i, (utf8proc_ssize_t)(n - i), &cp);
    if (k <= 0) {
      if (bad_at) *bad_at = i;
      return false;
    }
    i += (size_t)k;
  }
  return true;
}

/* tokenizer_config.json is optional; when present it must parse, and its eos/pad tokens must
 * be tokens of this vocabulary. */
static int read_config(tok_tokenizer *t, const char *dir, char *err, size_t err_len) {
  char path[4200];
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  size_t len;
  char *text = vt_read_regular(path, TOK_MAX_JSON_BYTES, &len, err, err_len);
  if (!text) return -1;
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  free(text);
  if (!root) {
    vt_seterr(err, err_len, "%s: line %d: %s", path, je.line, je.text);
    return -1;
  }
  /* eos_token / pad_token are a string or an AddedToken object {"content": ...} */
  static const char *const keys[2] = {"eos_token", "pad_token"};
  int32_t *dst[2] = {&t->eos_id, &t->pad_id};
  int rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    json_t *v = json_object_get(root, keys[k]);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!v || json_is_null(v)) continue;
    if (!json_is_string(v)) {
      vt_seterr(err, err_len, "%s: %s: expected a string or null", path, keys[k]);
      rc = -1;
    } else {
      *dst[k] = tok_token_id(t, json_string_value(v));
    }
  }
  json_decref(root);
  return rc;
}

/* Finds the Split regex in pre_tokenizer (directly or inside a Sequence). */
static const char *find_split_regex(json_t *pre) {
  const char *type = json_string_value(json_object_get(pre, "type"));
  if (!type) return NULL;
  if (strcmp(type, "Split") == 0)
    return json_string_value(json_object_get(json_object_get(pre, "pattern"), "Regex"));
  if (strcmp(type, "Sequence") == 0) {
    json_t *list = json_object_get(pre, "pretokenizers");
    for (size_t i = 0; i < json_array_size(list); i++) {
      const char *r = find_split_regex(json_array_get(list, i));
      if (r) return r;
    }
  }
  return NULL;
}

static int cmp_added(const void *a, const void *b) {
  const added_token *x = a, *y = b;
  return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static int load_json(tok_tokenizer *t, const char *file, const char *text, size_t text_len,
                     char *err, size_t err_len) {
  json_error_t je;
  json_t *root = json_loadb(text, text_len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    vt_seterr(err, err_len, "%s: line %d: %s", file, je.line, je.text);
    return -1;
  }
  int rc = -1;
  json_t *model = json_object_get(root, "model");
  const char *mtype = json_string_value(json_object_get(model, "type"));
  json_t *vocab = json_object_get(model, "vocab");
  json_t *merges = json_object_get(model, "merges");
  json_t *added = json_object_get(root, "added_tokens");
  if (!mtype || strcmp(mtype, "BPE") != 0 || !json_is_object(vocab) || !json_is_array(merges)) {
    vt_seterr(err, err_len, "%s: model: expected a BPE model with vocab and merges", file);
    goto done;
  }
  const char *norm =
      json_string_value(json_object_get(json_object_get(root, "normalizer"), "type"));
  if (norm && strcmp(norm, "NFC") != 0) {
    vt_seterr(err, err_len, "%s: normalizer.type: expected NFC or null, found %s", file, norm);
    goto done;
  }
  const char *pattern = find_split_regex(json_object_get(root, "pre_tokenizer"));
  if (!pattern) {
    vt_seterr(err, err_len, "%s: pre_tokenizer: expected a Split with a Regex pattern", file);
    goto done;
  }
  int ec;
  PCRE2_SIZE eo;
  t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo,
                        NULL);
  if (!t->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(ec, msg, sizeof msg);
    vt_seterr(err, err_len, "%s: pre_tokenizer regex at %zu: %s", file, (size_t)eo, (char *)msg);
    goto done;
  }
  t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
  t->md = pcre2_match_data_create_from_pattern(t->re, NULL);

  uint32_t cp_of_byte[256];
  int16_t byte_of_cp[324];
  byte_alphabet(cp_of_byte);
  for (int i = 0; i < 324; i++) byte_of_cp[i] = -1;
  for (int b = 0; b < 256; b++) byte_of_cp[cp_of_byte[b]] = (int16_t)b;

  /* vocabulary: ids are checked before any table is sized by them, and the table is bounded
   * by the entries the file holds (ids may leave a few gaps, not a 2^31 hole) */
  if (added && !json_is_array(added)) {
    vt_seterr(err, err_len, "%s: added_tokens: expected a list", file);
    goto done;
  }
  json_int_t max_id = -1;
  const char *key;
  json_t *val;
  json_object_foreach(vocab, key, val) {
    json_int_t id = json_integer_value(val);
    if (!json_is_integer(val) || id < 0 || id >= TOK_MAX_ID) {
      char found[32] = "a non-integer";
      if (json_is_integer(val)) snprintf(found, sizeof found, "%lld", (long long)id);
      vt_seterr(err, err_len, "%s: model.vocab[\"%.40s\"]: expected an id in [0, %d), found %s",
                file, key, TOK_MAX_ID, found);
      goto done;
    }
    if (id > max_id) max_id = id;
  }
  for (size_t i = 0; i < json_array_size(added); i++) {
    json_t *idv = json_object_get(json_array_get(added, i), "id");
    json_int_t id = json_integer_value(idv);
    if (!json_is_integer(idv) || id < 0 || id >= TOK_MAX_ID) {
      vt_seterr(err, err_len, "%s: added_tokens[%zu].id: expected an id in [0, %d)", file, i,
                TOK_MAX_ID);
      goto done;
    }
    if (id > max_id) max_id = id;
  }
  size_t entries = json_object_size(vocab) + json_array_size(added);
  if ((size_t)max_id >= 2 * entries + 1024) {
    vt_seterr(err, err_len,
              "%s: model.vocab: largest id %lld for only %zu tokens: the id table would be "
              "mostly empty",
              file, (long long)max_id, entries);
    goto done;
  }
  t->n_ids = (int32_t)max_id + 1;
  t->id_off = calloc((size_t)t->n_ids, sizeof *t->id_off);
  t->id_len = calloc((size_t)t->n_ids, sizeof *t->id_len);
  t->id_text = calloc((size_t)t->n_ids, sizeof *t->id_text);
  t->id_special = calloc((size_t)t->n_ids, sizeof *t->id_special);
  if (!t->id_off || !t->id_len || !t->id_text || !t->id_special ||
      strmap_init(&t->vocab, json_object_size(vocab)) != 0) {
    vt_seterr(err, err_len, "%s: out of memory for %d ids", file, t->n_ids);
    goto done;
  }
  for (int32_t i = 0; i < t->n_ids; i++) t->id_len[i] = UINT32_MAX; /* unused id */
  char buf[1024];
  json_object_foreach(vocab, key, val) {
    if (strlen(key) >= sizeof buf) {
      vt_seterr(err, err_len, "%s: model.vocab: token too long: %.40s...", file, key);
      goto done;
    }
    long n = unmap_token(key, byte_of_cp, buf);
    json_int_t id = json_integer_value(val);
    if (n <= 0 || !json_is_integer(val) || id < 0) { /* n == 0: an empty token */
      vt_seterr(err, err_len, "%s: model.vocab: bad entry \"%s\"", file, key);
      goto done;
    }
    if (strmap_find(&t->vocab, buf, (size_t)n)) {
      vt_seterr(err, err_len, "%s: model.vocab: \"%.40s\" is the same bytes as another token", file,
                key);
      goto done;
    }
    if (t->id_len[id] != UINT32_MAX) {
      vt_seterr(err, err_len, "%s: model.vocab[\"%.40s\"]: id %lld is already another token's",
                file, key, (long long)id);
      goto done;
    }
    str_slot *s = strmap_put(&t->vocab, buf, (size_t)n, (int32_t)id, 0);
    if (!s) {
      vt_seterr(err, err_len, "%s: out of memory", file);
      goto done;
    }
    t->id_off[id] = s->off;
    t->id_len[id] = s->len;
  }
  for (int b = 0; b < 256; b++) {
    char c = (char)b;
    str_slot *s = strmap_find(&t->vocab, &c, 1);
    if (!s) {
      vt_seterr(err, err_len, "%s: model.vocab: no token for byte 0x%02x", file, b);
      goto done;
    }
    t->byte_id[b] = s->val;
  }

  /* merges, either ["a", "b"] pairs or "a b" strings */
  size_t nm = json_array_size(merges), cap = 16;
  while (cap < nm * 2) cap *= 2;
  t->merges = malloc(cap * sizeof *t->merges);
  if (!t->merges) {
    vt_seterr(err, err_len, "%s: out of memory", file);
    goto done;
  }
  t->merge_mask = cap - 1;
  for (size_t i = 0; i < cap; i++) t->merges[i].rank = UINT32_MAX;
  for (size_t r = 0; r < nm; r++) {
    json_t *m = json_array_get(merges, r);
    char a[1024], b[1024];
    if (json_is_array(m) && json_array_size(m) == 2) {
      const char *x = json_string_value(json_array_get(m, 0));
      const char *y = json_string_value(json_array_get(m, 1));
      if (!x || !y || strlen(x) >= sizeof a || strlen(y) >= sizeof b) goto bad_merge;
      strcpy(a, x);
      strcpy(b, y);
    } else if (json_is_string(m)) {
      const char *x = json_string_value(m), *sp = strchr(x, ' ');
      if (!sp || (size_t)(sp - x) >= sizeof a || strlen(sp + 1) >= sizeof b) goto bad_merge;
      memcpy(a, x, (size_t)(sp - x));
      a[sp - x] = 0;
      strcpy(b, sp + 1);
    } else {
      goto bad_merge;
    }
    char ra[1024], rb[1024], ab[2048];
    long na = unmap_token(a, byte_of_cp, ra), nb = unmap_token(b, byte_of_cp, rb);
    if (na < 0 || nb < 0) goto bad_merge;
    memcpy(ab, ra, (size_t)na);
    memcpy(ab + na, rb, (size_t)nb);
    str_slot *sa = strmap_find(&t->vocab, ra, (size_t)na);
    str_slot *sb = strmap_find(&t->vocab, rb, (size_t)nb);
    str_slot *sab = strmap_find(&t->vocab, ab, (size_t)(na + nb));
    if (!sa || !sb || !sab) goto bad_merge;
    uint64_t k = pair_key(sa->val, sb->val);
    size_t j = pair_hash(k) & t->merge_mask;
    while (t->merges[j].rank != UINT32_MAX && t->merges[j].key != k) j = (j + 1) & t->merge_mask;
    if (t->merges[j].rank == UINT32_MAX) /* first (lowest) rank wins */
      t->merges[j] = (merge_slot){.key = k, .rank = (uint32_t)r, .id = sab->val};
    continue;
  bad_merge:
    vt_seterr(err, err_len,
              "%s: model.merges[%zu]: expected two vocabulary tokens whose "
              "concatenation is a token",
              file, r);
    goto done;
  }

  /* added tokens */
  t->added = calloc(json_array_size(added) + 1, sizeof *t->added);
  if (!t->added) {
    vt_seterr(err, err_len, "%s: out of memory", file);
    goto done;
  }
  for (size_t i = 0; i < json_array_size(added); i++) {
    json_t *a = json_array_get(added, i);
    const char *content = json_string_value(json_object_get(a, "content"));
    json_t *idv = json_object_get(a, "id"), *sp = json_object_get(a, "special");
    if (!content || !*content || !json_is_integer(idv) || (sp && !json_is_boolean(sp))) {
      vt_seterr(err, err_len,
                "%s: added_tokens[%zu]: expected a non-empty string content, an integer id "
                "and a boolean special",
                file, i);
      goto done;
    }
    int32_t id = (int32_t)json_integer_value(idv); /* range-checked above */
    size_t clen = strlen(content);
    if (t->id_len[id] != UINT32_MAX && !t->id_text[id] &&
        (t->id_len[id] != clen || memcmp(t->vocab.arena + t->id_off[id], content, clen) != 0)) {
      vt_seterr(err, err_len,
                "%s: added_tokens[%zu].id: %d is a vocabulary token with other bytes than "
                "\"%.40s\"",
                file, i, id, content);
      goto done;
    }
    if (t->id_text[id]) {
      vt_seterr(err, err_len, "%s: added_tokens[%zu].id: %d is already added token \"%.40s\"", file,
                i, id, t->id_text[id]);
      goto done;
    }
    added_token *at = &t->added[t->n_added];
    at->text = strdup(content);
    if (!at->text) {
      vt_seterr(err, err_len, "%s: out of memory", file);
      goto done;
    }
    t->n_added++;
    at->len = strlen(content);
    at->id = id;
    at->special = json_is_true(sp);
    t->added_first[(unsigned char)content[0]] = true;
    t->id_text[id] = at->text;
    t->id_len[id] = (uint32_t)at->len;
    t->id_special[id] = at->special;
  }
  qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
  rc = 0;
done:
  json_decref(root);
  return rc;
}

static int init_from(tok_tokenizer **out, const char *file, const char *text, size_t len,
                     const char *dir, char *err, size_t err_len) {
  tok_tokenizer *t = calloc(1, sizeof *t);
  if (!t) {
    vt_seterr(err, err_len, "%s: out of memory", file);
    return -1;
  }
  t->eos_id = t->pad_id = -1;
  if (load_json(t, file, text, len, err, err_len) != 0) {
    tok_free(t);
    return -1;
  }
  if (strmap_init(&t->cache, 1 << 14) != 0) {
    vt_seterr(err, err_len, "%s: out of memory", file);
    tok_free(t);
    return -1;
  }
  if (dir && read_config(t, dir, err, err_len) != 0) {
    tok_free(t);
    return -1;
  }
  *out = t;
  return 0;
}

int tok_init(tok_tokenizer **out, const char *path, char *err, size_t err_len) {
  *out = NULL;
  char dir[4096], file[4200];
  struct stat st;
  if (stat(path, &st) != 0) {
    vt_seterr(err, err_len, "%s: no such file or directory", path);
    return -1;
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(file, sizeof file, "%s/tokenizer.json", path);
  } else {
    snprintf(file, sizeof file, "%s", path);
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
      *slash = 0;
    else
      strcpy(dir, ".");
  }
  size_t len;
  char *text = vt_read_regular(file, TOK_MAX_JSON_BYTES, &len, err, err_len);
  if (!text) return -1;
  int rc = init_from(out, file, text, len, dir, err, err_len);
  free(text);
  return rc;
}

int tok_init_mem(tok_tokenizer **out, const char *name, const char *json, size_t len, char *err,
                 size_t err_len) {
  *out = NULL;
  return init_from(out, name, json, len, NULL, err, err_len);
}

void tok_free(tok_tokenizer *t) {
  if (!t) return;
  strmap_free(&t->vocab);
  strmap_free(&t->cache);
  tok_ids_free(&t->cache_ids);
  free(t->id_off);
  free(t->id_len);
  free(t->id_text);
  free(t->id_special);
  free(t->merges);
  for (int i = 0; i < t->n_added; i++) free(t->added[i].text);
  free(t->added);
  pcre2_match_data_free(t->md);
  pcre2_code_free(t->re);
  free(t);
}

int32_t tok_token_id(const tok_tokenizer *t, const char *text) {
  size_t n = strlen(text);
  for (int i = 0; i < t->n_added; i++)
    if (t->added[i].len == n && memcmp(t->added[i].text, text, n) == 0) return t->added[i].id;
  str_slot *s = strmap_find(&t->vocab, text, n);
  return s ? s->val : -1;
}

int32_t tok_vocab_size(const tok_tokenizer *t) { return t->n_ids; }
int32_t tok_eos_id(const tok_tokenizer *t) { return t->eos_id; }
int32_t tok_pad_id(const tok_tokenizer *t) { return t->pad_id; }

/* ---- BPE on one pre-token ------------------------------------------------------------ */

/* Short words: repeatedly merge the leftmost lowest-rank pair in a flat array. */
static size_t bpe_small(const tok_tokenizer *t, int32_t *sym, size_t n) {
  for (;;) {
    uint32_t best = UINT32_MAX, r;
    size_t at = 0;
    int32_t best_id = -1, id;
    for (size_t i = 0; i + 1 < n; i++)
      if (merge_get(t, sym[i], sym[i + 1], &r, &id) && r < best) {
        best = r;
        at = i;
        best_id = id;
      }
    if (best == UINT32_MAX) return n;
    sym[at] = best_id;
    memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof *sym);
    n--;
  }
}

/* Long words: linked list of symbols and a min-heap of candidate pairs ordered by (rank,
 * position), the same order as the flat version. */
typedef struct {
  uint32_t rank;
  uint32_t pos;
  int32_t left, right;
} heap_ent;

static inline bool heap_less(const heap_ent *a, const heap_ent *b) {
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(heap_ent *h, size_t *n, heap_ent e) {
  size_t i = (*n)++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!heap_less(&e, &h[p])) break;
    h[i] = h[p];
    i = p;
  }
  h[i] = e;
}

static heap_ent heap_pop(heap_ent *h, size_t *n) {
  heap_ent top = h[0], last = h[--(*n)];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && heap_less(&h[c + 1], &h[c])) c++;
    if (!heap_less(&h[c], &last)) break;
    h[i] = h[c];
    i = c;
  }
  h[i] = last;
  return top;
}

static int bpe_large(const tok_tokenizer *t, int32_t *sym, size_t n, size_t *n_out) {
  int64_t *next = malloc(n * sizeof *next), *prev = malloc(n * sizeof *prev);
  heap_ent *h = malloc((n * 3 + 1) * sizeof *h);
  if (!next || !prev || !h) {
    free(next), free(prev), free(h);
    return -1;
  }
  size_t hn = 0;
  uint32_t r;
  int32_t id = 0;
  for (size_t i = 0; i < n; i++) {
    next[i] = i + 1 < n ? (int64_t)i + 1 : -1;
    prev[i] = (int64_t)i - 1;
    if (i + 1 < n && merge_get(t, sym[i], sym[i + 1], &r, &id))
      heap_push(h, &hn, (heap_ent){r, (uint32_t)i, sym[i], sym[i + 1]});
  }
  while (hn) {
    heap_ent e = heap_pop(h, &hn);
    size_t i = e.pos;
    if (sym[i] != e.left || next[i] < 0 || sym[next[i]] != e.right) continue; /* stale */
    merge_get(t, e.left, e.right, &r, &id);
    size_t j = (size_t)next[i];
    sym[i] = id;
    sym[j] = -1;
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = (int64_t)i;
    if (prev[i] >= 0 && merge_get(t, sym[prev[i]], sym[i], &r, &id))
      heap_push(h, &hn, (heap_ent){r, (uint32_t)prev[i], sym[prev[i]], sym[i]});
    if (next[i] >= 0 && merge_get(t, sym[i], sym[next[i]], &r, &id))
      heap_push(h, &hn, (heap_ent){r, (uint32_t)i, sym[i], sym[next[i]]});
  }
  size_t k = 0;
  for (int64_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
  *n_out = k;
  free(next), free(prev), free(h);
  return 0;
}

#define CACHE_MAX_WORD 128
#define CACHE_MAX_ENTRIES (1u << 18)

static int bpe_word(tok_tokenizer *t, const char *w, size_t n, tok_ids *out) {
  if (n <= CACHE_MAX_WORD) {
    str_slot *s = strmap_find(&t->cache, w, n);
    if (s) return tok_ids_append(out, t->cache_ids.v + s->val, s->aux);
  }
  int32_t small[CACHE_MAX_WORD];
  int32_t *sym = n <= CACHE_MAX_WORD ? small : malloc(n * sizeof *sym);
  if (!sym) return -1;
  for (size_t i = 0; i < n; i++) sym[i] = t->byte_id[(unsigned char)w[i]];
  size_t k;
  int rc = 0;
  if (n <= 32)
    k = bpe_small(t, sym, n);
  else
    rc = bpe_large(t, sym, n, &k);
  if (rc == 0) rc = tok_ids_append(out, sym, k);
  if (rc == 0 && n <= CACHE_MAX_WORD) {
    if (t->cache.count >= CACHE_MAX_ENTRIES) {
      strmap_clear(&t->cache);
      t->cache_ids.n = 0;
    }
    size_t off = t->cache_ids.n;
    if (tok_ids_append(&t->cache_ids, sym, k) == 0)
      strmap_put(&t->cache, w, n, (int32_t)off, (uint32_t)k);
  }
  if (sym != small) free(sym);
  return rc;
}

/* ---- encode / decode -------------------------------------------------------------------- */

/* Text between added tokens: NFC, regex split, BPE per piece. */
static int encode_plain(tok_tokenizer *t, const char *s, size_t n, size_t base, tok_ids *out,
                        char *err, size_t err_len) {
  if (n == 0) return 0;
  bool ascii = true;
  for (size_t i = 0; i < n && ascii; i++) ascii = (unsigned char)s[i] < 0x80;
  utf8proc_uint8_t *nfc = NULL;
  if (!ascii) {
    size_t bad;
    if (!tok_utf8_valid(s, n, &bad)) {
      vt_seterr(err, err_len, "text is not UTF-8 at byte %zu", base + bad);
      return -1;
    }
    utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &nfc,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (m < 0) {
      vt_seterr(err, err_len, "NFC at byte %zu: %s", base, utf8proc_errmsg(m));
      return -1;
    }
    s = (const char *)nfc;
    n = (size_t)m;
  }
  int rc = 0;
  size_t start = 0;
  while (start < n && rc == 0) {
    int m = t->jit
                ? pcre2_jit_match(t->re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, t->md, NULL)
                : pcre2_match(t->re, (PCRE2_SPTR)s, n, start, PCRE2_NO_UTF_CHECK, t->md, NULL);
    if (m == PCRE2_ERROR_NOMATCH) { /* no further match: the rest is one gap piece */
      rc = bpe_word(t, s + start, n - start, out);
      break;
    }
    if (m < 0) { /* e.g. a JIT stack or match limit: refuse rather than split wrongly */
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(m, msg, sizeof msg);
      vt_seterr(err, err_len, "pre-tokenizer regex at byte %zu: %s", base + start, (char *)msg);
      free(nfc);
      return -1;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
    size_t ms = ov[0], me = ov[1];
    if (ms > start) rc = bpe_word(t, s + start, ms - start, out);
    if (rc == 0 && me > ms) rc = bpe_word(t, s + ms, me - ms, out);
    if (me == ms) { /* empty match: step over one character */
      me = ms + 1;
      while (me < n && ((unsigned char)s[me] & 0xC0) == 0x80) me++;
      if (rc == 0) rc = bpe_word(t, s + ms, me - ms, out);
    }
    start = me;
  }
  if (rc != 0) vt_seterr(err, err_len, "out of memory");
  free(nfc);
  return rc;
}

int tok_encode(tok_tokenizer *t, const char *text, size_t len, tok_ids *out, char *err,
               size_t err_len) {
  size_t pos = 0, seg = 0;
  while (pos < len) {
    if (!t->added_first[(unsigned char)text[pos]]) {
      pos++;
      continue;
    }
    const added_token *hit = NULL;
    for (int i = 0; i < t->n_added; i++) {
      const added_token *a = &t->added[i];
      if (a->len <= len - pos && memcmp(text + pos, a->text, a->len) == 0) {
        hit = a;
        break;
      }
    }
    if (!hit) {
      pos++;
      continue;
    }
    if (encode_plain(t, text + seg, pos - seg, seg, out, err, err_len) != 0) return -1;
    if (tok_ids_push(out, hit->id) != 0) {
      vt_seterr(err, err_len, "out of memory");
      return -1;
    }
    pos += hit->len;
    seg = pos;
  }
  return encode_plain(t, text + seg, len - seg, seg, out, err, err_len);
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, bool skip_special,
               tok_bytes *out, char *err, size_t err_len) {
  if (bytes_append(out, "", 0) != 0) return -1;
  for (size_t i = 0; i < n; i++) {
    int32_t id = ids[i];
    if (id < 0 || id >= t->n_ids || t->id_len[id] == UINT32_MAX) {
      vt_seterr(err, err_len, "decode: id %d at position %zu is not in the vocabulary", id, i);
      return -1;
    }
    if (t->id_special[id] && skip_special) continue;
    const char *p = t->id_text[id] ? t->id_text[id] : t->vocab.arena + t->id_off[id];
    if (bytes_append(out, p, t->id_len[id]) != 0) {
      vt_seterr(err, err_len, "out of memory");
      return -1;
    }
  }
  return 0;
}
