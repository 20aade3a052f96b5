/* The CTC character vocabulary; see audio_chars.h. */
#include "data/audio_chars.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/fmt.h"

/* The next code point of s (advanced), 0 at the end, or -1 on bad UTF-8. */
static int64_t next_cp(const unsigned char **s) {
  const unsigned char *p = *s;
  if (!*p) return 0;
  uint32_t c = p[0];
  int n = c < 0x80             ? 0
          : (c & 0xe0) == 0xc0 ? 1
          : (c & 0xf0) == 0xe0 ? 2
          : (c & 0xf8) == 0xf0 ? 3
                               : -1;
  if (n < 0) return -1;
  if (n) c &= 0x3fu >> n;
  for (int i = 1; i <= n; i++) {
    if ((p[i] & 0xc0) != 0x80) return -1;
    c = (c << 6) | (p[i] & 0x3f);
  }
  *s = p + n + 1;
  return c;
}

static bool is_space(uint32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Calls f on each normalised code point of text; returns 0, or -1 on bad UTF-8. */
typedef int (*cp_fn)(void *ctx, uint32_t cp);
static int each_cp(const char *text, cp_fn f, void *ctx) {
  const unsigned char *s = (const unsigned char *)text;
  bool pending_space = false, any = false;
  for (;;) {
    int64_t c = next_cp(&s);
    if (c < 0) return -1;
    if (c == 0) return 0;
    if (is_space((uint32_t)c)) {
      pending_space = any;
      continue;
    }
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (pending_space && f(ctx, ' ')) return -2;
    pending_space = false;
    any = true;
    if (f(ctx, (uint32_t)c)) return -2;
  }
}

void aud_chars_free(aud_chars *v) {
  free(v->cp);
  memset(v, 0, sizeof *v);
}

int32_t aud_chars_id(const aud_chars *v, uint32_t cp) {
  size_t lo = 0, hi = v->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (v->cp[mid] == cp) return (int32_t)mid + 1;
    if (v->cp[mid] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

static int add_cp(void *ctx, uint32_t cp) {
  aud_chars *v = ctx;
  size_t lo = 0, hi = v->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (v->cp[mid] == cp) return 0;
    if (v->cp[mid] < cp)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (v->n == v->cap) {
    size_t cap = v->cap ? 2 * v->cap : 64;
    uint32_t *p = realloc(v->cp, cap * sizeof *p);
    if (!p) return -1;
    v->cp = p;
    v->cap = cap;
  }
  memmove(v->cp + lo + 1, v->cp + lo, (v->n - lo) * sizeof *v->cp);
  v->cp[lo] = cp;
  v->n++;
  return 0;
}

int aud_chars_add_text(aud_chars *v, const char *utf8, char *err, size_t err_len) {
  int rc = each_cp(utf8, add_cp, v);
  if (rc == -1) vt_seterr(err, err_len, "transcript \"%.80s\": not UTF-8", utf8);
  if (rc == -2) vt_seterr(err, err_len, "out of memory for the character vocabulary");
  return rc ? -1 : 0;
}

typedef struct {
  const aud_chars *v;
  int32_t **out;
  size_t *cap, n;
  uint32_t missing;
  bool oom;
} enc_ctx;

static int enc_cp(void *c, uint32_t cp) {
  enc_ctx *e = c;
  int32_t id = aud_chars_id(e->v, cp);
  if (id < 0) {
    e->missing = cp;
    return -1;
  }
  if (e->n == *e->cap) {
    size_t cap = *e->cap ? 2 * *e->cap : 64;
    int32_t *p = realloc(*e->out, cap * sizeof *p);
    if (!p) {
      e->oom = true;
      return -1;
    }
    *e->out = p;
    *e->cap = cap;
  }
  (*e->out)[e->n++] = id;
  return 0;
}

int64_t aud_chars_encode(const aud_chars *v, const char *utf8, int32_t **out, size_t *cap,
                         char *err, size_t err_len) {
  enc_ctx e = {.v = v, .out = out, .cap = cap};
  int rc = each_cp(utf8, enc_cp, &e);
  if (rc == -1) {
    vt_seterr(err, err_len, "transcript \"%.80s\": not UTF-8", utf8);
    return -1;
  }
  if (rc == -2) {
    if (e.oom)
      vt_seterr(err, err_len, "out of memory for a transcript");
    else
      vt_seterr(err, err_len,
                "transcript \"%.80s\": character U+%04X is not in the CTC vocabulary (%zu "
                "characters)",
                utf8, (unsigned)e.missing, v->n);
    return -1;
  }
  return (int64_t)e.n;
}

static size_t put_utf8(uint32_t c, char *o) {
  if (c < 0x80) return o[0] = (char)c, 1;
  if (c < 0x800) return o[0] = (char)(0xc0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3f)), 2;
  if (c < 0x10000)
    return o[0] = (char)(0xe0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3f)),
           o[2] = (char)(0x80 | (c & 0x3f)), 3;
  o[0] = (char)(0xf0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((c >> 6) & 0x3f)), o[3] = (char)(0x80 | (c & 0x3f));
  return 4;
}

void aud_chars_decode(const aud_chars *v, const int32_t *ids, size_t n, char *buf, size_t len) {
  size_t o = 0;
  for (size_t i = 0; i < n && len > 0; i++) {
    if (ids[i] < 1 || (size_t)ids[i] > v->n) continue;
    char u[4];
    size_t k = put_utf8(v->cp[ids[i] - 1], u);
    if (o + k + 1 > len) break;
    memcpy(buf + o, u, k);
    o += k;
  }
  if (len) buf[o] = 0;
}

int aud_chars_load(aud_chars *v, const char *path, char *err, size_t err_len) {
  memset(v, 0, sizeof *v);
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root) {
    vt_seterr(err, err_len, "%s: %s (line %d)", path, je.text, je.line);
    return -1;
  }
  json_t *chars = json_object_get(root, "chars"), *blank = json_object_get(root, "blank");
  int rc = -1;
  if (!json_is_array(chars) || json_array_size(chars) == 0) {
    vt_seterr(err, err_len, "%s: field \"chars\": expected a non-empty list of characters", path);
    goto done;
  }
  if (blank && (!json_is_integer(blank) || json_integer_value(blank) != 0)) {
    vt_seterr(err, err_len, "%s: field \"blank\": expected 0 (the blank is id 0)", path);
    goto done;
  }
  for (size_t i = 0; i < json_array_size(chars); i++) {
    const char *s = json_string_value(json_array_get(chars, i));
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    int64_t c = s ? next_cp(&p) : -1;
    if (c <= 0 || *p) {
      vt_seterr(err, err_len, "%s: field \"chars\"[%zu]: expected one character", path, i);
      goto done;
    }
    if (v->n && (uint32_t)c <= v->cp[v->n - 1]) {
      vt_seterr(err, err_len,
                "%s: field \"chars\"[%zu]: expected characters in increasing code-point order, "
                "without repeats (ids are positions)",
                path, i);
      goto done;
    }
    if (add_cp(v, (uint32_t)c)) {
      vt_seterr(err, err_len, "%s: out of memory", path);
      goto done;
    }
  }
  rc = 0;
done:
  json_decref(root);
  if (rc) aud_chars_free(v);
  return rc;
}

int aud_chars_save(const aud_chars *v, const char *path, char *err, size_t err_len) {
  json_t *chars = json_array();
  for (size_t i = 0; i < v->n; i++) {
    char u[5];
    u[put_utf8(v->cp[i], u)] = 0;
    json_array_append_new(chars, json_string(u));
  }
  json_t *root = json_pack("{s:i, s:b, s:o}", "blank", 0, "lowercase", 1, "chars", chars);
  int rc = json_dump_file(root, path, JSON_INDENT(0) | JSON_ENSURE_ASCII);
  json_decref(root);
  if (rc) vt_seterr(err, err_len, "%s: cannot write the CTC vocabulary", path);
  return rc ? -1 : 0;
}

const char *aud_chars_transcript(const sample *s) {
  for (size_t i = s->n_turns; i-- > 0;)
    if (s->turns[i].from == CHAT_FROM_GPT) return s->turns[i].value ? s->turns[i].value : "";
  return NULL;
}

int aud_chars_from_inputs(aud_chars *v, const char *const *inputs, size_t n_inputs,
                          const sample_config *cfg, char *err, size_t err_len) {
  char msg[1024];
  for (size_t i = 0; i < n_inputs; i++) {
    sample_reader *r;
    if (sample_reader_open(&r, inputs[i], err, err_len)) return -1;
    sample s;
    sample_reason why;
    int got, rc = 0;
    while (rc == 0 && (got = sample_reader_next(r, cfg, &s, &why, msg, sizeof msg)) != 0) {
      if (got == 2) continue;
      const char *t = aud_chars_transcript(&s);
      if (t && aud_chars_add_text(v, t, msg, sizeof msg) && strstr(msg, "memory")) {
        vt_seterr(err, err_len, "%s", msg);
        rc = -1;
      }
      sample_free(&s);
    }
    sample_reader_close(r);
    if (rc) return -1;
  }
  if (!v->n) {
    vt_seterr(err, err_len, "no transcript in the inputs to derive a character vocabulary from");
    return -1;
  }
  return 0;
}
