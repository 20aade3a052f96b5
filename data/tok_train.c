/* Byte-level BPE training over a closed vocabulary; see tok_train.h. The texts are split with
 * the Qwen2 pre-tokenizer regex (the one tokenizer.c applies), each distinct pre-token is a word
 * weighted by its count, and the most frequent adjacent pair is merged until no word has two
 * symbols left. Ties go to the smallest (left, right) symbol ids, so the result depends only on
 * the texts. */
#include "data/tok_train.h"
#include "autograd/fmt.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/tokenizer.h"

/* The Qwen2 pre-tokenizer (tokenizer.json's Split regex). */
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct {
  char *bytes; /* the pre-token's raw bytes */
  size_t len;
  long count;
  int *sym; /* current segmentation */
  size_t n_sym;
} word;

typedef struct {
  char *s; /* raw bytes of a symbol */
  size_t len;
} symbol;

typedef struct {
  word *w;
  size_t n, cap;
  symbol *sy;
  size_t n_sy, cap_sy;
  int (*merges)[2];
  size_t n_merges, cap_merges;
} trainer;

static void trainer_free(trainer *t) {
  for (size_t i = 0; i < t->n; i++) free(t->w[i].bytes), free(t->w[i].sym);
  for (size_t i = 0; i < t->n_sy; i++) free(t->sy[i].s);
  free(t->w), free(t->sy), free(t->merges);
}

static int add_word(trainer *t, const char *p, size_t len) {
  for (size_t i = 0; i < t->n; i++)
    if (t->w[i].len == len && !memcmp(t->w[i].bytes, p, len)) return t->w[i].count++, 0;
  if (t->n == t->cap) {
    size_t cap = t->cap ? 2 * t->cap : 256;
    word *w = realloc(t->w, cap * sizeof *w);
    if (!w) return -1;
    t->w = w, t->cap = cap;
  }
  word *w = &t->w[t->n];
  *w = (word){.bytes = malloc(len), .len = len, .count = 1, .sym = malloc(len * sizeof(int))};
  if (!w->bytes || !w->sym) return free(w->bytes), free(w->sym), -1;
  t->n++;
  memcpy(w->bytes, p, len);
  for (size_t k = 0; k < len; k++) w->sym[k] = (unsigned char)p[k];
  w->n_sym = len;
  return 0;
}

/* Symbol id of the bytes a + b: an existing one when two merges spell the same string. */
static int symbol_of(trainer *t, int a, int b) {
  size_t la = t->sy[a].len, lb = t->sy[b].len;
  for (size_t i = 0; i < t->n_sy; i++)
    if (t->sy[i].len == la + lb && !memcmp(t->sy[i].s, t->sy[a].s, la) &&
        !memcmp(t->sy[i].s + la, t->sy[b].s, lb))
      return (int)i;
  if (t->n_sy == t->cap_sy) {
    size_t cap = 2 * t->cap_sy;
    symbol *s = realloc(t->sy, cap * sizeof *s);
    if (!s) return -1;
    t->sy = s, t->cap_sy = cap;
  }
  char *s = malloc(la + lb);
  if (!s) return -1;
  memcpy(s, t->sy[a].s, la);
  memcpy(s + la, t->sy[b].s, lb);
  t->sy[t->n_sy] = (symbol){s, la + lb};
  return (int)t->n_sy++;
}

/* One merge step: the most frequent pair, replaced left to right in every word. Returns 1
 * when a merge was made, 0 when every word is one symbol, -1 out of memory. */
static int merge_once(trainer *t) {
  /* the pair table is small (closed vocabulary): a flat list searched linearly */
  size_t cap = 0, n = 0;
  struct {
    int a, b;
    long c;
  } *pairs = NULL;
  for (size_t i = 0; i < t->n; i++) {
    word *w = &t->w[i];
    for (size_t k = 0; k + 1 < w->n_sym; k++) {
      size_t j = 0;
      while (j < n && (pairs[j].a != w->sym[k] || pairs[j].b != w->sym[k + 1])) j++;
      if (j == n) {
        if (n == cap) {
          cap = cap ? 2 * cap : 1024;
          void *p = realloc(pairs, cap * sizeof *pairs);
          if (!p) return free(pairs), -1;
          pairs = p;
        }
        pairs[n].a = w->sym[k], pairs[n].b = w->sym[k + 1], pairs[n].c = 0;
        n++;
      }
      pairs[j].c += w->count;
    }
  }
  if (n == 0) return free(pairs), 0;
  size_t best = 0;
  for (size_t j = 1; j < n; j++)
    if (pairs[j].c > pairs[best].c ||
        (pairs[j].c == pairs[best].c &&
         (pairs[j].a < pairs[best].a ||
          (pairs[j].a == pairs[best].a && pairs[j].b < pairs[best].b))))
      best = j;
  int a = pairs[best].a, b = pairs[best].b;
  free(pairs);
  int m = symbol_of(t, a, b);
  if (m < 0) return -1;
  if (t->n_merges == t->cap_merges) {
    size_t c2 = t->cap_merges ? 2 * t->cap_merges : 256;
    void *p = realloc(t->merges, c2 * sizeof *t->merges);
    if (!p) return -1;
    t->merges = p, t->cap_merges = c2;
  }
  t->merges[t->n_merges][0] = a, t->merges[t->n_merges][1] = b;
  t->n_merges++;
  for (size_t i = 0; i < t->n; i++) {
    word *w = &t->w[i];
    size_t o = 0;
    for (size_t k = 0; k < w->n_sym; k++) {
      if (k + 1 < w->n_sym && w->sym[k] == a && w->sym[k + 1] == b) {
        w->sym[o++] = m;
        k++;
      } else {
        w->sym[o++] = w->sym[k];
      }
    }
    w->n_sym = o;
  }
  return 1;
}

/* The GPT-2 byte alphabet: printable bytes stand for themselves, the rest map past 255. */
static void byte_alphabet(uint32_t cp[256]) {
  int n = 0;
  for (int b = 0; b < 256; b++) {
    int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    cp[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
  }
}

/* The byte-level spelling of raw bytes (UTF-8 of the alphabet's code points), into buf. */
static const char *spell(const uint32_t *cp, const char *s, size_t len, char *buf, size_t cap) {
  size_t o = 0;
  for (size_t i = 0; i < len && o + 3 < cap; i++) {
    uint32_t c = cp[(unsigned char)s[i]];
    if (c < 0x80) {
      buf[o++] = (char)c;
    } else {
      buf[o++] = (char)(0xC0 | (c >> 6));
      buf[o++] = (char)(0x80 | (c & 0x3F));
    }
  }
  buf[o] = '\0';
  return buf;
}

static int write_json(const char *path, json_t *o, char *err, size_t err_len) {
  int rc = json_dump_file(o, path, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
  if (rc) vt_seterr(err, err_len, "%s: cannot write: %s", path, strerror(errno));
  return rc ? -1 : 0;
}

static json_t *tokenizer_json(const trainer *t, const tok_added *added, size_t n_added) {
  uint32_t cp[256];
  byte_alphabet(cp);
  json_t *vocab = json_object(), *merges = json_array(), *adds = json_array();
  char a[1024], b[1024];
  for (size_t i = 0; i < t->n_sy; i++)
    json_object_set_new(vocab, spell(cp, t->sy[i].s, t->sy[i].len, a, sizeof a),
                        json_integer((json_int_t)i));
  for (size_t i = 0; i < t->n_merges; i++) {
    const symbol *x = &t->sy[t->merges[i][0]], *y = &t->sy[t->merges[i][1]];
    json_array_append_new(merges, json_pack("[ss]", spell(cp, x->s, x->len, a, sizeof a),
                                            spell(cp, y->s, y->len, b, sizeof b)));
  }
  for (size_t i = 0; i < n_added; i++)
    json_array_append_new(adds, json_pack("{s:I, s:s, s:b, s:b, s:b, s:b, s:b}", "id",
                                          (json_int_t)(t->n_sy + i), "content", added[i].content,
                                          "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized",
                                          0, "special", added[i].special));
  return json_pack(
      "{s:s, s:n, s:n, s:o, s:{s:s}, s:{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}, "
      "s:n, s:{s:s, s:b, s:b, s:b}, s:{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}}",
      "version", "1.0", "truncation", "padding", "added_tokens", adds, "normalizer", "type", "NFC",
      "pre_tokenizer", "type", "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
      qwen2_regex, "behavior", "Isolated", "invert", 0, "type", "ByteLevel", "add_prefix_space", 0,
      "trim_offsets", 0, "use_regex", 0, "post_processor", "decoder", "type", "ByteLevel",
      "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0, "model", "type", "BPE", "dropout",
      "unk_token", "continuing_subword_prefix", "", "end_of_word_suffix", "", "fuse_unk", 0,
      "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges", merges);
}

int tok_train_write(const char *dir, const char *const *texts, size_t n, const tok_added *added,
                    size_t n_added, const char *eos, const char *pad, char *err, size_t err_len) {
  trainer t = {0};
  int rc = -1, ec;
  PCRE2_SIZE eo;
  pcre2_code *re = pcre2_compile((PCRE2_SPTR)qwen2_regex, PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
  pcre2_match_data *md = re ? pcre2_match_data_create_from_pattern(re, NULL) : NULL;
  json_t *tj = NULL, *cj = NULL;
  if (!md) {
    vt_seterr(err, err_len, "tokenizer training: the pre-tokenizer regex did not compile");
    goto done;
  }
  for (size_t i = 0; i < n; i++) {
    size_t len = strlen(texts[i]), bad;
    if (!tok_utf8_valid(texts[i], len, &bad)) {
      vt_seterr(err, err_len, "tokenizer training: text %zu: not UTF-8 at byte %zu", i, bad);
      goto done;
    }
    size_t off = 0;
    while (off < len) {
      int m = pcre2_match(re, (PCRE2_SPTR)texts[i], len, off, 0, md, NULL);
      if (m < 0) break;
      PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
      if (ov[1] == ov[0]) break; /* the regex always consumes; guard anyway */
      if (add_word(&t, texts[i] + ov[0], ov[1] - ov[0])) goto oom;
      off = ov[1];
    }
  }
  t.cap_sy = 512;
  if (!(t.sy = calloc(t.cap_sy, sizeof *t.sy))) goto oom;
  for (int b = 0; b < 256; b++) {
    if (!(t.sy[b].s = malloc(1))) goto oom;
    t.sy[b].s[0] = (char)b, t.sy[b].len = 1;
    t.n_sy++;
  }
  for (;;) {
    int r = merge_once(&t);
    if (r < 0) goto oom;
    if (r == 0) break;
  }
  if (mkdir(dir, 0755) && errno != EEXIST) {
    vt_seterr(err, err_len, "%s: cannot create: %s", dir, strerror(errno));
    goto done;
  }
  char path[4200];
  if (!(tj = tokenizer_json(&t, added, n_added))) goto oom;
  snprintf(path, sizeof path, "%s/tokenizer.json", dir);
  if (write_json(path, tj, err, err_len)) goto done;
  cj = json_pack("{s:s, s:b, s:I}", "tokenizer_class", "Qwen2Tokenizer",
                 "clean_up_tokenization_spaces", 0, "model_max_length", (json_int_t)32768);
  if (!cj) goto oom;
  json_object_set_new(cj, "eos_token", eos ? json_string(eos) : json_null());
  json_object_set_new(cj, "pad_token", pad ? json_string(pad) : json_null());
  snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
  if (write_json(path, cj, err, err_len)) goto done;
  rc = (int)(t.n_sy + n_added);
  goto done;
oom:
  vt_seterr(err, err_len, "tokenizer training: out of memory");
done:
  json_decref(tj);
  json_decref(cj);
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  trainer_free(&t);
  return rc;
}
