/* vita prep: read samples, apply the chat template, write shards of shard_samples samples. */
#include "data/prep.h"
#include "autograd/fmt.h"
#include "data/shard.h"
#include "data/tts_data.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void prep_stats_free(prep_stats *st) {
  for (size_t i = 0; i < st->n_skips; i++) free(st->skips[i].id), free(st->skips[i].message);
  free(st->skips);
  memset(st, 0, sizeof *st);
}

static void add_skip(prep_stats *st, sample_reason why, const char *id, const char *msg) {
  st->n_skipped[why]++;
  if (st->n_skips == st->cap_skips) {
    size_t cap = st->cap_skips ? st->cap_skips * 2 : 64;
    prep_skip *s = realloc(st->skips, cap * sizeof *s);
    if (!s) return; /* counted, id lost */
    st->skips = s;
    st->cap_skips = cap;
  }
  st->skips[st->n_skips++] = (prep_skip){why, strdup(id), strdup(msg)};
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
  size_t done_before, total; /* bytes of earlier inputs, of all inputs */
  double last;
  bool on;
} progress;

static void show(progress *p, const prep_stats *st, size_t done, bool final) {
  if (!p->on) return;
  double t = now();
  if (!final && t - p->last < 0.1) return;
  p->last = t;
  double frac = p->total ? (double)done / (double)p->total : 1.0;
  if (frac > 1) frac = 1;
  char bar[31];
  int filled = (int)(frac * 30);
  for (int i = 0; i < 30; i++) bar[i] = i < filled ? '#' : '.';
  bar[30] = 0;
  int64_t skipped = 0;
  for (int r = 0; r < SAMPLE_N_REASONS; r++) skipped += st->n_skipped[r];
  fprintf(stderr, "\rprep [%s] %3d%%  %lld written  %lld skipped  %lld tokens", bar,
          (int)(frac * 100), (long long)st->n_written, (long long)skipped, (long long)st->n_tokens);
  if (final) fputc('\n', stderr);
  fflush(stderr);
}

static int flush_shard(shard_writer **w, prep_stats *st, char *err, size_t err_len) {
  if (!*w) return 0;
  int rc = shard_writer_close(*w, err, err_len);
  *w = NULL;
  if (rc == 0) st->n_shards++;
  return rc;
}

/* The fbank (and waveforms) of the sample's <audio> clips, in placeholder order, into in. Returns
 * true, or false with msg (a bad clip: the sample is skipped). */
static bool audio_clips(aud_prep *ap, const aud_prep_opts *ao, const chat_sample *cs,
                        const char **paths, shard_sample_in *in, char *msg, size_t len) {
  const char *clips[64];
  size_t n = 0;
  for (size_t k = 0; k < cs->n_media; k++) {
    if (cs->media[k].kind != CHAT_MEDIA_AUDIO) continue;
    if (n == 64) {
      snprintf(msg, len, "more than 64 audio clips in one sample");
      return false;
    }
    clips[n++] = paths[k];
  }
  if (n == 0) return true;
  if (aud_prep_clips(ap, ao, clips, n, msg, len) != AUD_OK) return false;
  in->n_audio = n;
  in->fbank_bins = ao->fbank.num_mel_bins;
  in->fbank_frames = ap->frames;
  in->fbank = ap->fbank;
  in->wave = ao->wave_rate > 0 ? (const int16_t *const *)ap->wave : NULL;
  in->wave_len = ap->wave_len;
  in->wave_rate = ao->wave_rate;
  return true;
}

/* A CTC sample from the chat sample cs: [<audio>, character ids of the transcript], the
 * characters trained, its one audio medium at position 0. Returns 0, or -1 with msg. */
typedef struct {
  int32_t *ids, *labels, *chars;
  size_t cap, cap_chars;
  chat_media media;
} ctc_buf;

static int ctc_sample(const aud_chars *v, const sample *s, const chat_sample *cs, ctc_buf *b,
                      size_t *n, char *msg, size_t len) {
  if (cs->n_media != 1 || cs->media[0].kind != CHAT_MEDIA_AUDIO) {
    vt_seterr(msg, len,
              "a CTC sample (--ctc-chars) needs exactly one <audio> and no other media, "
              "found %zu media",
              cs->n_media);
    return -1;
  }
  const char *t = aud_chars_transcript(s);
  int64_t k = t ? aud_chars_encode(v, t, &b->chars, &b->cap_chars, msg, len) : -1;
  if (!t) vt_seterr(msg, len, "a CTC sample (--ctc-chars) needs an answer: its transcript");
  if (k < 0) return -1;
  if (k == 0) {
    vt_seterr(msg, len, "an empty transcript (CTC needs at least one character)");
    return -1;
  }
  if ((size_t)k + 1 > b->cap) {
    size_t cap = 2 * ((size_t)k + 1);
    int32_t *a = realloc(b->ids, cap * sizeof *a),
            *l = a ? realloc(b->labels, cap * sizeof *l) : NULL;
    if (a) b->ids = a;
    if (l) b->labels = l;
    if (!a || !l) {
      vt_seterr(msg, len, "out of memory for a CTC sample");
      return -1;
    }
    b->cap = cap;
  }
  b->ids[0] = CHAT_AUDIO_ID, b->labels[0] = VT_IGNORE_INDEX;
  memcpy(b->ids + 1, b->chars, (size_t)k * sizeof(int32_t));
  memcpy(b->labels + 1, b->chars, (size_t)k * sizeof(int32_t));
  b->media = cs->media[0];
  b->media.pos = 0;
  *n = (size_t)k + 1;
  return 0;
}

int prep_run(const prep_opts *o, prep_stats *st, char *err, size_t err_len) {
  memset(st, 0, sizeof *st);
  const char *prefix = o->prefix ? o->prefix : "shard";
  if (mkdir(o->out_dir, 0755) != 0 && errno != EEXIST) {
    vt_seterr(err, err_len, "%s: cannot create the output directory: %s", o->out_dir,
              strerror(errno));
    return -1;
  }
  progress pg = {.on = o->progress};
  for (size_t i = 0; i < o->n_inputs; i++) {
    struct stat sb;
    if (stat(o->inputs[i], &sb) == 0) pg.total += (size_t)sb.st_size;
  }
  shard_writer *w = NULL;
  chat_sample cs = {0};
  media_tiles tiles = {0};
  int rc = 0;
  char msg[1024];
  aud_prep ap = {0};
  ctc_buf cb = {0};
  if (o->audio && aud_prep_init(&ap, o->audio, err, err_len)) return -1;
  for (size_t i = 0; i < o->n_inputs && rc == 0; i++) {
    sample_reader *r;
    if (sample_reader_open(&r, o->inputs[i], err, err_len)) {
      rc = -1;
      break;
    }
    sample s;
    sample_reason why;
    int got;
    while (rc == 0 && (got = sample_reader_next(r, o->cfg, &s, &why, msg, sizeof msg)) != 0) {
      st->n_read++;
      size_t done, total;
      sample_reader_progress(r, &done, &total);
      show(&pg, st, pg.done_before + done, false);
      if (got == 2) {
        add_skip(st, why, s.id, msg);
        continue;
      }
      if (s.text ? tts_sample_encode(o->tok, &s, &cs, msg, sizeof msg)
                 : chat_encode(o->tok, &o->cfg->prompts, s.turns, s.n_turns, s.inserted_id,
                               s.end_tag, &cs, msg, sizeof msg)) {
        char full[1600];
        snprintf(full, sizeof full, "%s: %s", s.where, msg);
        add_skip(st, SAMPLE_BAD_TEMPLATE, s.id, full);
        sample_free(&s);
        continue;
      }
      if ((long long)cs.ids.n > o->cfg->max_len) {
        snprintf(msg, sizeof msg, "%s: %zu tokens, max_len is %lld", s.where, cs.ids.n,
                 o->cfg->max_len);
        add_skip(st, SAMPLE_TOO_LONG, s.id, msg);
        sample_free(&s);
        continue;
      }
      size_t n_ctc = 0;
      if (o->ctc_chars && ctc_sample(o->ctc_chars, &s, &cs, &cb, &n_ctc, msg, sizeof msg)) {
        char full[1600];
        snprintf(full, sizeof full, "%s: %s", s.where, msg);
        add_skip(st, SAMPLE_BAD_TEMPLATE, s.id, full);
        sample_free(&s);
        continue;
      }
      const char **paths = malloc((cs.n_media ? cs.n_media : 1) * sizeof *paths);
      int32_t *n_tiles = calloc(cs.n_media ? cs.n_media : 1, sizeof *n_tiles);
      for (size_t k = 0; paths && k < cs.n_media; k++)
        paths[k] = s.media[cs.media[k].kind][cs.media[k].item];
      /* images and videos become uint8 tiles now; one that does not decode skips the sample */
      tiles.n_tiles = 0;
      bool bad = false;
      for (size_t k = 0; paths && n_tiles && o->cfg->media.decode && k < cs.n_media && !bad; k++) {
        if (!media_add_tiles(&o->cfg->media, cs.media[k].kind, paths[k], &tiles, &n_tiles[k], msg,
                             sizeof msg))
          continue;
        char full[1600];
        snprintf(full, sizeof full, "%s: %s", s.where, msg);
        add_skip(st, SAMPLE_BAD_MEDIA, s.id, full);
        bad = true;
      }
      if (bad) {
        free(paths);
        free(n_tiles);
        sample_free(&s);
        continue;
      }
      shard_sample_in in = {.id = s.id,
                            .ids = cs.ids.v,
                            .labels = cs.labels.v,
                            .n = cs.ids.n,
                            .media = cs.media,
                            .media_path = paths,
                            .n_media = cs.n_media,
                            .codec = s.codec,
                            .n_codec = s.n_codec,
                            .n_tiles = n_tiles,
                            .tiles = tiles.px,
                            .tile_size = tiles.size};
      if (o->ctc_chars) {
        in.ids = cb.ids, in.labels = cb.labels, in.n = n_ctc;
        in.media = &cb.media;
      }
      if (paths && o->audio && !audio_clips(&ap, o->audio, &cs, paths, &in, msg, sizeof msg)) {
        char full[1600];
        snprintf(full, sizeof full, "%s: %s", s.where, msg);
        add_skip(st, SAMPLE_BAD_MEDIA, s.id, full);
        free(paths);
        free(n_tiles);
        sample_free(&s);
        continue;
      }
      if (!w) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s-%05lld.h5", o->out_dir, prefix, (long long)st->n_shards);
        rc = shard_writer_open(&w, path, err, err_len);
      }
      if (rc == 0 && (!paths || !n_tiles || shard_write_sample(w, &in, err, err_len))) rc = -1;
      free(paths);
      free(n_tiles);
      if (rc == 0) {
        st->n_written++;
        st->n_tokens += (int64_t)in.n;
        for (size_t k = 0; k < in.n; k++) st->n_trained += in.labels[k] != VT_IGNORE_INDEX;
        st->n_codec += (int64_t)s.n_codec;
        st->n_audio += (int64_t)in.n_audio;
        for (size_t k = 0; k < in.n_audio; k++) st->n_audio_frames += in.fbank_frames[k];
        if (shard_writer_samples(w) >= o->cfg->shard_samples)
          rc = flush_shard(&w, st, err, err_len);
      }
      sample_free(&s);
    }
    size_t done, total;
    sample_reader_progress(r, &done, &total);
    pg.done_before += total;
    sample_reader_close(r);
  }
  if (rc == 0)
    rc = flush_shard(&w, st, err, err_len);
  else
    shard_writer_abort(w); /* never a half shard */
  show(&pg, st, pg.total, true);
  chat_sample_free(&cs);
  media_tiles_free(&tiles);
  aud_prep_free(&ap);
  free(cb.ids), free(cb.labels), free(cb.chars);
  return rc;
}

void prep_print_summary(FILE *f, const prep_stats *st, const char *out_dir, int max_ids) {
  int64_t skipped = 0;
  for (int r = 0; r < SAMPLE_N_REASONS; r++) skipped += st->n_skipped[r];
  fprintf(f, "prep: %lld samples read, %lld written to %lld shard(s) in %s, %lld skipped\n",
          (long long)st->n_read, (long long)st->n_written, (long long)st->n_shards, out_dir,
          (long long)skipped);
  fprintf(f, "prep: %lld tokens, %lld trained (labels != -100)\n", (long long)st->n_tokens,
          (long long)st->n_trained);
  if (st->n_codec) fprintf(f, "prep: %lld codec tokens\n", (long long)st->n_codec);
  if (st->n_audio)
    fprintf(f, "prep: %lld audio clips, %lld fbank frames (%.1f h)\n", (long long)st->n_audio,
            (long long)st->n_audio_frames, (double)st->n_audio_frames / 360000.0);
  for (int r = 1; r < SAMPLE_N_REASONS; r++) {
    if (!st->n_skipped[r]) continue;
    fprintf(f, "skipped %-28s %6lld:", sample_reason_name((sample_reason)r),
            (long long)st->n_skipped[r]);
    int shown = 0;
    for (size_t i = 0; i < st->n_skips; i++) {
      if (st->skips[i].reason != (sample_reason)r) continue;
      if (shown == max_ids) {
        fprintf(f, " ...");
        break;
      }
      fprintf(f, " %s", st->skips[i].id);
      shown++;
    }
    fputc('\n', f);
  }
}
