/* VITA JSON sample reader (jansson). The file is mapped (mmap); bytes that are not UTF-8 are
 * replaced by '?' (same length, so offsets stay) and remembered, so the item that held them
 * is skipped as SAMPLE_NOT_UTF8 while the others still parse. Arrays are decoded one element
 * at a time (JSON_DISABLE_EOF_CHECK); after a malformed element the reader resynchronises at
 * the next ',' outside strings and brackets. */
#include "data/sample.h"
#include "autograd/fmt.h"
#include "autograd/regfile.h"
#include "data/tts_data.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const reason_names[SAMPLE_N_REASONS] = {
    "ok",           "malformed JSON", "not UTF-8",     "bad field",
    "unknown role", "unknown set",    "missing media", "placeholder count mismatch",
    "bad template", "too long",       "bad media"};

const char *sample_reason_name(sample_reason r) {
  return r >= 0 && r < SAMPLE_N_REASONS ? reason_names[r] : "?";
}

struct sample_reader {
  char path[4096], dir[4096];
  char *buf;
  size_t len, pos;
  bool mapped; /* buf is an mmap (else malloc'd) */
  size_t *bad; /* offsets of non-UTF-8 bytes, ascending */
  size_t n_bad;
  bool array, done;
  size_t index;           /* items seen */
  size_t lc_pos, lc_line; /* line counting resumes here (items come in file order) */
};

/* JSON whitespace only: a NUL byte is not space (strchr(" \t\r\n", 0) would say it is). */
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Everything after the bytes are in r->buf: mark what is not UTF-8, find the start. */
static int reader_start(sample_reader *r, const char *path, char *err, size_t err_len) {
  snprintf(r->path, sizeof r->path, "%s", path);
  snprintf(r->dir, sizeof r->dir, "%s", path);
  char *slash = strrchr(r->dir, '/');
  if (slash)
    *slash = 0;
  else
    strcpy(r->dir, ".");
  /* replace bytes that are not UTF-8 by '?' and remember where they were */
  size_t at = 0, cap = 0;
  while (at < r->len) {
    size_t bad;
    if (tok_utf8_valid(r->buf + at, r->len - at, &bad)) break;
    if (r->n_bad == cap) {
      cap = cap ? cap * 2 : 16;
      size_t *nb = realloc(r->bad, cap * sizeof *r->bad);
      if (!nb) {
        vt_seterr(err, err_len, "%s: out of memory", path);
        return -1;
      }
      r->bad = nb;
    }
    r->bad[r->n_bad++] = at + bad;
    r->buf[at + bad] = '?';
    at += bad + 1;
  }
  size_t i = 0;
  /* a byte-order mark only when all three bytes are one */
  if (r->len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) i = 3;
  while (i < r->len && is_space(r->buf[i])) i++;
  r->lc_line = 1;
  r->array = i < r->len && r->buf[i] == '[';
  r->pos = r->array ? i + 1 : i;
  return 0;
}

int sample_reader_open(sample_reader **out, const char *path, char *err, size_t err_len) {
  *out = NULL;
  int64_t size = 0;
  int fd = vt_open_regular(path, &size, err, err_len);
  if (fd < 0) return -1;
  sample_reader *r = calloc(1, sizeof *r);
  if (!r) {
    close(fd);
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  /* mapped privately: pages are read on demand and dropped under memory pressure, and the
   * '?' written over bad bytes stays in this process */
  r->len = (size_t)size;
  if (r->len > 0) {
    r->buf = mmap(NULL, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (r->buf == MAP_FAILED) {
      vt_seterr(err, err_len, "%s: cannot map: %s", path, strerror(errno));
      close(fd);
      free(r);
      return -1;
    }
    r->mapped = true;
    posix_madvise(r->buf, r->len, POSIX_MADV_SEQUENTIAL);
  }
  close(fd);
  if (reader_start(r, path, err, err_len)) {
    sample_reader_close(r);
    return -1;
  }
  *out = r;
  return 0;
}

int sample_reader_open_mem(sample_reader **out, const char *name, const char *data, size_t len,
                           char *err, size_t err_len) {
  *out = NULL;
  sample_reader *r = calloc(1, sizeof *r);
  if (!r || !(r->buf = malloc(len ? len : 1))) {
    free(r);
    vt_seterr(err, err_len, "%s: out of memory", name);
    return -1;
  }
  if (len) memcpy(r->buf, data, len);
  r->len = len;
  if (reader_start(r, name, err, err_len)) {
    sample_reader_close(r);
    return -1;
  }
  *out = r;
  return 0;
}

void sample_reader_progress(const sample_reader *r, size_t *done, size_t *total) {
  *done = r->done ? r->len : r->pos;
  *total = r->len;
}

void sample_reader_close(sample_reader *r) {
  if (!r) return;
  if (r->mapped)
    munmap(r->buf, r->len);
  else
    free(r->buf);
  free(r->bad);
  free(r);
}

void sample_free(sample *s) {
  for (int k = 0; k < 3; k++) {
    for (size_t i = 0; i < s->n_media[k]; i++) free(s->media[k][i]);
    free(s->media[k]);
  }
  free(s->turns);
  free(s->codec);
  json_decref((json_t *)s->json_);
  memset(s, 0, sizeof *s);
}

static size_t line_of(sample_reader *r, size_t off) {
  if (off < r->lc_pos) r->lc_pos = 0, r->lc_line = 1;
  for (; r->lc_pos < off && r->lc_pos < r->len; r->lc_pos++)
    r->lc_line += r->buf[r->lc_pos] == '\n';
  return r->lc_line;
}

static bool has_bad_byte(const sample_reader *r, size_t a, size_t b) {
  size_t lo = 0, hi = r->n_bad; /* first bad offset >= a (the offsets ascend) */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r->bad[mid] < a)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < r->n_bad && r->bad[lo] < b;
}

/* From off, skips a value up to the next ',' or ']' at depth 0 (strings respected). */
static size_t resync(const sample_reader *r, size_t off) {
  int depth = 0;
  bool str = false;
  for (size_t i = off; i < r->len; i++) {
    char c = r->buf[i];
    if (str) {
      if (c == '\\')
        i++;
      else if (c == '"')
        str = false;
    } else if (c == '"')
      str = true;
    else if (c == '{' || c == '[')
      depth++;
    else if (c == '}' || c == ']') {
      if (depth == 0) return i;
      depth--;
    } else if (c == ',' && depth == 0)
      return i;
  }
  return r->len;
}

/* From off (a malformed element), finds where the next element starts: the first '{' after
 * a ',' that parses as an object with conversations and is followed by ',' or ']'. A missing
 * closing bracket makes the JSON parser read the following elements as part of the broken
 * one, and counting brackets never finds its end, so each candidate is tried instead. Falls
 * back to counting brackets after a bounded number of tries. */
static size_t next_element(const sample_reader *r, size_t off) {
  int tries = 0;
  for (size_t q = off + 1; q < r->len && tries < 4096; q++) {
    if (r->buf[q] != '{') continue;
    size_t p = q;
    while (p > off && is_space(r->buf[p - 1])) p--;
    if (p == off || r->buf[p - 1] != ',') continue;
    tries++;
    json_error_t je;
    json_t *o = json_loadb(r->buf + q, r->len - q, JSON_DISABLE_EOF_CHECK, &je);
    bool ok = json_is_object(o) && json_object_get(o, "conversations");
    json_decref(o);
    if (!ok) continue;
    size_t e = q + (size_t)je.position;
    while (e < r->len && is_space(r->buf[e])) e++;
    if (e < r->len && (r->buf[e] == ',' || r->buf[e] == ']')) return q;
  }
  return resync(r, off);
}

static int add_media(sample *s, int kind, const char *path) {
  char **m = realloc(s->media[kind], (s->n_media[kind] + 1) * sizeof *m);
  if (!m) return -1;
  s->media[kind] = m;
  m[s->n_media[kind]] = strdup(path);
  return m[s->n_media[kind]++] ? 0 : -1;
}

/* The audio path of a speech sample without codec ids (resolved as other media are: the set's
 * audio folder, else the JSON file's directory) as its one audio medium. */
static sample_reason speech_audio(const sample_reader *r, const sample_config *cfg,
                                  const char *name, sample *s, char *err, size_t err_len) {
  const sample_set *st = NULL;
  for (size_t i = 0; s->set && cfg && i < cfg->n_sets; i++)
    if (!strcmp(cfg->sets[i].name, s->set)) st = &cfg->sets[i];
  const char *folder = st && st->folder[CHAT_MEDIA_AUDIO] ? st->folder[CHAT_MEDIA_AUDIO] : r->dir;
  char path[8192];
  if (name[0] == '/')
    snprintf(path, sizeof path, "%s", name);
  else
    snprintf(path, sizeof path, "%s/%s", folder, name);
  if (add_media(s, CHAT_MEDIA_AUDIO, path)) {
    vt_seterr(err, err_len, "out of memory");
    return SAMPLE_BAD_FIELD;
  }
  struct stat sb;
  if ((!cfg || cfg->check_media) && (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))) {
    vt_seterr(err, err_len, "%s: audio: file not found: %s", s->where, path);
    return SAMPLE_MISSING_MEDIA;
  }
  return SAMPLE_OK;
}

static int count_tag(const char *v, const char *tag) {
  int n = 0;
  for (const char *p = v; (p = strstr(p, tag)); p += strlen(tag)) n++;
  return n;
}

/* Fills s from the parsed object; returns SAMPLE_OK or a reason with err set. */
static sample_reason from_json(const sample_reader *r, const sample_config *cfg, json_t *o,
                               bool not_utf8, sample *s, char *err, size_t err_len) {
  static const char *const kind_key[3] = {"image", "video", "audio"};
  static const char *const kind_tag[3] = {"<image>", "<video>", "<audio>"};
  json_t *id = json_object_get(o, "id");
  if (json_is_string(id) && json_string_value(id)[0]) /* an empty id keeps FILE:LINE */
    snprintf(s->id, sizeof s->id, "%s", json_string_value(id));
  else if (json_is_integer(id))
    snprintf(s->id, sizeof s->id, "%lld", json_integer_value(id));
  if (not_utf8) {
    vt_seterr(err, err_len, "%s: text is not UTF-8", s->where);
    return SAMPLE_NOT_UTF8;
  }
  json_t *set = json_object_get(o, "set");
  if (set && !json_is_string(set)) {
    vt_seterr(err, err_len, "%s: set: expected a string", s->where);
    return SAMPLE_BAD_FIELD;
  }
  s->set = json_string_value(set);
  if (s->set && cfg && cfg->n_sets) {
    bool known = false;
    for (size_t i = 0; i < cfg->n_sets; i++) known |= !strcmp(cfg->sets[i].name, s->set);
    if (!known && tts_sample_is_speech(o)) {
      vt_seterr(err, err_len, "%s: set: '%s' is not in the data config", s->where, s->set);
      return SAMPLE_UNKNOWN_SET;
    }
  }
  if (tts_sample_is_speech(o)) { /* no turns: nothing is inserted, nothing ends a turn */
    s->inserted_id = -1;
    s->end_tag = true;
    sample_reason why =
        tts_sample_from_json(o, cfg ? cfg->codec_vocab : TTS_DATA_CODEC_VOCAB, s, err, err_len);
    if (why != SAMPLE_OK || s->codec) return why;
    return speech_audio(r, cfg, json_string_value(json_object_get(o, "audio")), s, err, err_len);
  }
  json_t *conv = json_object_get(o, "conversations");
  if (!json_is_array(conv) || json_array_size(conv) == 0) {
    vt_seterr(err, err_len, "%s: conversations: expected a non-empty list", s->where);
    return SAMPLE_BAD_FIELD;
  }
  s->n_turns = json_array_size(conv);
  s->turns = calloc(s->n_turns, sizeof *s->turns);
  if (!s->turns) {
    vt_seterr(err, err_len, "%s: conversations: out of memory for %zu turns", s->where, s->n_turns);
    return SAMPLE_BAD_FIELD;
  }
  int tags[3] = {0, 0, 0};
  for (size_t i = 0; i < s->n_turns; i++) {
    json_t *t = json_array_get(conv, i);
    const char *from = json_string_value(json_object_get(t, "from"));
    const char *value = json_string_value(json_object_get(t, "value"));
    if (!from || !value) {
      vt_seterr(err, err_len, "%s: conversations[%zu]: expected string fields from and value",
                s->where, i);
      return SAMPLE_BAD_FIELD;
    }
    if (!strcmp(from, "human") || !strcmp(from, "user"))
      s->turns[i].from = CHAT_FROM_HUMAN;
    else if (!strcmp(from, "gpt") || !strcmp(from, "assistant"))
      s->turns[i].from = CHAT_FROM_GPT;
    else {
      vt_seterr(err, err_len,
                "%s: conversations[%zu].from: unknown role '%s' (expected human or "
                "gpt)",
                s->where, i, from);
      return SAMPLE_UNKNOWN_ROLE;
    }
    s->turns[i].value = value;
    if (s->turns[i].from == CHAT_FROM_HUMAN)
      for (int k = 0; k < 3; k++) tags[k] += count_tag(value, kind_tag[k]);
  }
  json_t *ins = json_object_get(o, "inserted_id");
  s->inserted_id = -1;
  if (ins && !json_is_null(ins)) {
    json_int_t v = json_integer_value(ins);
    if (!json_is_integer(ins) || v < 0 || (size_t)v >= s->n_turns) {
      vt_seterr(err, err_len, "%s: inserted_id: expected a turn index in [0, %zu)", s->where,
                s->n_turns);
      return SAMPLE_BAD_FIELD;
    }
    s->inserted_id = (int)json_integer_value(ins);
  }
  json_t *et = json_object_get(o, "end_tag");
  s->end_tag = true;
  if (et && !json_is_null(et)) {
    if (!json_is_boolean(et)) {
      vt_seterr(err, err_len, "%s: end_tag: expected true or false", s->where);
      return SAMPLE_BAD_FIELD;
    }
    s->end_tag = json_is_true(et);
  }
  /* media: folders from the set, else the JSON file's directory */
  const sample_set *st = NULL;
  if (s->set && cfg)
    for (size_t i = 0; i < cfg->n_sets; i++)
      if (!strcmp(cfg->sets[i].name, s->set)) st = &cfg->sets[i];
  if (s->set && cfg && cfg->n_sets && !st) {
    vt_seterr(err, err_len, "%s: set: '%s' is not in the data config", s->where, s->set);
    return SAMPLE_UNKNOWN_SET;
  }
  for (int k = 0; k < 3; k++) {
    json_t *m = json_object_get(o, kind_key[k]);
    size_t n = json_is_array(m) ? json_array_size(m) : (m && !json_is_null(m)) ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
      json_t *e = json_is_array(m) ? json_array_get(m, i) : m;
      const char *name = json_string_value(e);
      if (!name) {
        vt_seterr(err, err_len, "%s: %s: expected a path or a list of paths", s->where,
                  kind_key[k]);
        return SAMPLE_BAD_FIELD;
      }
      char path[8192];
      const char *folder = st && st->folder[k] ? st->folder[k] : r->dir;
      if (name[0] == '/')
        snprintf(path, sizeof path, "%s", name);
      else
        snprintf(path, sizeof path, "%s/%s", folder, name);
      if (add_media(s, k, path)) {
        vt_seterr(err, err_len, "out of memory");
        return SAMPLE_BAD_FIELD;
      }
      struct stat sb;
      if ((!cfg || cfg->check_media) && (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))) {
        /* a directory (or a device) where a medium belongs is a missing medium */
        vt_seterr(err, err_len, "%s: %s: file not found: %s", s->where, kind_key[k], path);
        return SAMPLE_MISSING_MEDIA;
      }
    }
    if ((size_t)tags[k] != s->n_media[k]) {
      vt_seterr(err, err_len, "%s: %d %s placeholder(s) in the human turns but %zu %s file(s)",
                s->where, tags[k], kind_tag[k], s->n_media[k], kind_key[k]);
      return SAMPLE_PLACEHOLDER_MISMATCH;
    }
  }
  return SAMPLE_OK;
}

int sample_reader_next(sample_reader *r, const sample_config *cfg, sample *out, sample_reason *why,
                       char *err, size_t err_len) {
  memset(out, 0, sizeof *out);
  *why = SAMPLE_OK;
  size_t start, end;
  json_t *o = NULL;
  json_error_t je;
  for (;;) {
    if (r->done) return 0;
    while (r->pos < r->len && is_space(r->buf[r->pos])) r->pos++;
    if (r->pos >= r->len) {
      r->done = true;
      if (r->array) { /* an array that never closed */
        snprintf(out->id, sizeof out->id, "%.480s:%zu", r->path, line_of(r, r->len));
        snprintf(out->where, sizeof out->where, "%s", out->id);
        vt_seterr(err, err_len, "%s: the JSON array is not closed with ']'", out->where);
        *why = SAMPLE_BAD_JSON;
        return 2;
      }
      return 0;
    }
    start = r->pos;
    if (r->array) {
      if (r->buf[start] == ']') {
        r->done = true;
        return 0;
      }
      o = json_loadb(r->buf + start, r->len - start, JSON_DISABLE_EOF_CHECK, &je);
      if (o) {
        end = r->pos = start + (size_t)je.position;
        while (r->pos < r->len && is_space(r->buf[r->pos])) r->pos++;
        if (r->pos < r->len && r->buf[r->pos] == ',') {
          r->pos++;
        } else if (r->pos < r->len && r->buf[r->pos] == ']') {
          r->done = true;
        } else { /* element not followed by , or ]: the element is malformed */
          json_decref(o);
          o = NULL;
          je = (json_error_t){0};
          snprintf(je.text, sizeof je.text, "expected ',' or ']' after the element");
          end = r->pos = next_element(r, r->pos);
        }
      } else {
        end = r->pos = next_element(r, start);
      }
      if (end <= start) end = r->pos = start + 1;
      if (r->pos < r->len && r->buf[r->pos] == ',') r->pos++;
    } else {
      const char *nl = memchr(r->buf + start, '\n', r->len - start);
      end = nl ? (size_t)(nl - r->buf) : r->len;
      r->pos = end + (nl ? 1 : 0);
      o = json_loadb(r->buf + start, end - start, 0, &je);
    }
    break;
  }
  r->index++;
  size_t line = line_of(r, start);
  snprintf(out->where, sizeof out->where, "%.480s:%zu", r->path, line);
  snprintf(out->id, sizeof out->id, "%.500s", out->where);
  if (!o || !json_is_object(o)) {
    vt_seterr(err, err_len, "%s: %s", out->where, o ? "expected a JSON object" : je.text);
    json_decref(o);
    *why = SAMPLE_BAD_JSON;
    return 2;
  }
  out->json_ = o;
  sample_reason rs = from_json(r, cfg, o, has_bad_byte(r, start, end), out, err, err_len);
  if (rs != SAMPLE_OK) {
    char id[512];
    snprintf(id, sizeof id, "%s", out->id);
    sample_free(out);
    snprintf(out->id, sizeof out->id, "%s", id);
    snprintf(out->where, sizeof out->where, "%.480s:%zu", r->path, line);
    *why = rs;
    return 2;
  }
  return 1;
}
