/* Greedy packing of mixture samples into sequences of at most max_len tokens. */
#include "data/pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mix_pack_free(mix_pack *p) {
  tok_ids_free(&p->ids);
  tok_ids_free(&p->labels);
  for (size_t i = 0; i < p->n_media; i++) free(p->media_path[i]);
  free(p->media_path);
  free(p->media);
  free(p->media_seq);
  free(p->n_tiles);
  free(p->tiles);
  free(p->starts);
  free(p->fbank_frames);
  free(p->fbank);
  memset(p, 0, sizeof *p);
}

static void reset(mix_pack *p) {
  p->ids.n = p->labels.n = 0;
  for (size_t i = 0; i < p->n_media; i++) free(p->media_path[i]);
  p->n_media = 0;
  p->n_seq = 0;
  p->n_truncated = p->n_dropped = 0;
  p->n_tiles_total = 0;
  p->tile_size = 0;
  p->n_audio = 0;
  p->fbank_bins = 0;
}

static bool is_visual(const chat_media *m) {
  return m->kind == CHAT_MEDIA_IMAGE || m->kind == CHAT_MEDIA_VIDEO;
}

/* Tokens of the first n of s once each tile of its visual media takes tile_tokens positions
 * and each <audio> its clip's audio_tokens; *media says whether any was expanded. */
static int64_t expanded_len(const shard_sample *s, int64_t n, const mix_pack_media *how,
                            bool *media) {
  int64_t len = n;
  *media = false;
  for (size_t k = 0; how->tile_tokens > 0 && s->n_tiles && k < s->n_media; k++)
    if (s->media[k].pos < n && is_visual(&s->media[k]) && s->n_tiles[k] > 0) {
      len += (int64_t)s->n_tiles[k] * how->tile_tokens - 1;
      *media = true;
    }
  size_t clip = 0; /* clips are stored in <audio> order */
  for (int64_t i = 0; how->audio_tokens && i < n; i++)
    if (s->ids.v[i] == CHAT_AUDIO_ID && clip < s->n_audio) {
      int64_t c = how->audio_tokens(how->user, s->fbank_frames[clip++]);
      if (c > 0) len += c - 1;
      *media = true;
    }
  return len;
}

/* Appends the clips of s whose <audio> lies in its first n tokens; -2 for another fbank
 * width than the pack's. */
static int add_clips(mix_pack *p, const shard_sample *s, int64_t n) {
  size_t k = 0, off = 0, bins = (size_t)s->fbank_bins;
  for (int64_t i = 0; i < n && k < s->n_audio; i++) {
    if (s->ids.v[i] != CHAT_AUDIO_ID) continue;
    if (p->n_audio && s->fbank_bins != p->fbank_bins) return -2;
    size_t nf = (size_t)s->fbank_frames[k] * bins, have = 0;
    for (size_t j = 0; j < p->n_audio; j++) have += (size_t)p->fbank_frames[j];
    have *= bins;
    if (p->n_audio == p->cap_audio) {
      size_t cap = p->cap_audio ? 2 * p->cap_audio : 16;
      int64_t *f = realloc(p->fbank_frames, cap * sizeof *f);
      if (!f) return -1;
      p->fbank_frames = f;
      p->cap_audio = cap;
    }
    if (have + nf > p->cap_fbank) {
      size_t cap = 2 * (have + nf);
      uint16_t *f = realloc(p->fbank, cap * sizeof *f);
      if (!f) return -1;
      p->fbank = f;
      p->cap_fbank = cap;
    }
    memcpy(p->fbank + have, s->fbank + off, nf * sizeof *p->fbank);
    off += nf;
    p->fbank_frames[p->n_audio++] = s->fbank_frames[k++];
    p->fbank_bins = s->fbank_bins;
  }
  return 0;
}

/* Appends tiles [first, first + n) of s; -2 for a tile size other than the pack's. */
static int add_tiles(mix_pack *p, const shard_sample *s, int64_t first, int64_t n) {
  if (p->n_tiles_total && s->tile_size != p->tile_size) return -2;
  size_t per = (size_t)3 * (size_t)s->tile_size * (size_t)s->tile_size;
  size_t need = (size_t)(p->n_tiles_total + n) * per;
  if (need > p->tiles_cap) {
    size_t cap = p->tiles_cap ? 2 * p->tiles_cap : need;
    if (cap < need) cap = need;
    uint8_t *t = realloc(p->tiles, cap);
    if (!t) return -1;
    p->tiles = t;
    p->tiles_cap = cap;
  }
  memcpy(p->tiles + (size_t)p->n_tiles_total * per, s->tiles + (size_t)first * per,
         (size_t)n * per);
  p->n_tiles_total += n;
  p->tile_size = s->tile_size;
  return 0;
}

static int add_sample(mix_pack *p, const shard_sample *s, int64_t n, bool clips) {
  int64_t at = (int64_t)p->ids.n;
  if (p->n_seq + 2 > p->cap_seq) {
    size_t cap = p->cap_seq ? p->cap_seq * 2 : 16;
    int64_t *st = realloc(p->starts, cap * sizeof *st);
    if (!st) return -1;
    p->starts = st;
    p->cap_seq = cap;
  }
  if (tok_ids_append(&p->ids, s->ids.v, (size_t)n) ||
      tok_ids_append(&p->labels, s->labels.v, (size_t)n))
    return -1;
  for (size_t k = 0; k < s->n_media; k++) {
    if (s->media[k].pos >= n) continue; /* cut off */
    int rc;
    if (p->n_media == p->cap_media) {
      size_t cap = p->cap_media ? p->cap_media * 2 : 16;
      chat_media *m = realloc(p->media, cap * sizeof *m);
      if (m) p->media = m;
      char **mp = m ? realloc(p->media_path, cap * sizeof *mp) : NULL;
      if (mp) p->media_path = mp;
      int32_t *ms = mp ? realloc(p->media_seq, cap * sizeof *ms) : NULL;
      if (ms) p->media_seq = ms;
      int32_t *nt = ms ? realloc(p->n_tiles, cap * sizeof *nt) : NULL;
      if (!nt) return -1;
      p->n_tiles = nt;
      p->cap_media = cap;
    }
    /* the medium's tiles follow the earlier media's in the sample */
    int64_t first = 0, nt = s->n_tiles ? s->n_tiles[k] : 0;
    for (size_t j = 0; j < k && s->n_tiles; j++) first += s->n_tiles[j];
    if (nt > 0 && (rc = add_tiles(p, s, first, nt))) return rc;
    p->n_tiles[p->n_media] = (int32_t)nt;
    p->media[p->n_media] = s->media[k];
    p->media[p->n_media].pos += at;
    p->media_path[p->n_media] = strdup(s->media_path[k]);
    p->media_seq[p->n_media++] = (int32_t)p->n_seq;
  }
  int rc;
  if (clips && (rc = add_clips(p, s, n))) return rc;
  p->starts[p->n_seq] = at;
  p->starts[++p->n_seq] = (int64_t)p->ids.n;
  return 0;
}

int mix_next_packed(mix *m, int64_t max_len, mix_pack *out, char *err, size_t err_len) {
  return mix_next_packed_tiles(m, max_len, 0, out, err, err_len);
}

int mix_next_packed_tiles(mix *m, int64_t max_len, int64_t tile_tokens, mix_pack *out, char *err,
                          size_t err_len) {
  mix_pack_media how = {.tile_tokens = tile_tokens};
  return mix_next_packed_media(m, max_len, &how, out, err, err_len);
}

int mix_next_packed_media(mix *m, int64_t max_len, const mix_pack_media *how, mix_pack *out,
                          char *err, size_t err_len) {
  reset(out);
  shard_sample s = {0};
  int rc = 0;
  int64_t used = 0; /* the pack's length with tiles expanded */
  for (;;) {
    if (out->n_seq > 0 && mix_get_cursor(m).pos >= mix_epoch_len(m)) break; /* epoch end */
    int64_t len, n;
    /* the length then depends on the sample's tiles and clips */
    bool read = how->tile_tokens > 0 || how->audio_tokens, media = false;
    if (read) {
      if ((rc = mix_peek(m, &s, err, err_len))) break;
      n = (int64_t)s.ids.n;
      len = expanded_len(&s, n, how, &media);
    } else {
      n = len = mix_peek_len(m);
    }
    if (out->n_seq > 0 && used + len > max_len) break;
    if (read)
      mix_skip(m);
    else if ((rc = mix_next(m, &s, NULL, err, err_len)))
      break;
    if (len > max_len && media) {
      if (++out->n_dropped > 1000) {
        snprintf(err, err_len,
                 "packing: 1000 samples in a row are longer than max_len %lld once their images "
                 "and audio are expanded",
                 (long long)max_len);
        rc = -1;
        break;
      }
      continue;
    }
    if (len > max_len) { /* no expanded media: cut */
      n = len = max_len;
      out->n_truncated++;
    }
    if ((rc = add_sample(out, &s, n, how->audio_tokens != NULL))) {
      if (rc == -2 && out->n_tiles_total && s.n_tiles_total && s.tile_size != out->tile_size)
        snprintf(err, err_len,
                 "packing: tiles of %d and %d pixels in one pack (one tile size "
                 "per mixture)",
                 out->tile_size, s.tile_size);
      else if (rc == -2)
        snprintf(err, err_len,
                 "packing: fbank of %d and %d bins in one pack (one fbank width per mixture)",
                 out->fbank_bins, s.fbank_bins);
      else
        snprintf(err, err_len, "packing: out of memory");
      rc = -1;
      break;
    }
    used += len;
    if (used >= max_len) break;
  }
  if (out->n_seq == 0 && out->starts == NULL) { /* keep starts valid for an empty pack */
    out->starts = calloc(1, sizeof *out->starts);
    out->cap_seq = 1;
  }
  shard_sample_free(&s);
  return rc;
}

void mix_pack_segments(const mix_pack *p, size_t T, int32_t *segment, int32_t *position) {
  size_t k = 0;
  for (size_t i = 0; i < T; i++) {
    while (k < p->n_seq && (int64_t)i >= p->starts[k + 1]) k++;
    int64_t start = k < p->n_seq ? p->starts[k] : (int64_t)p->ids.n;
    if (segment) segment[i] = (int32_t)k;
    if (position) position[i] = (int32_t)((int64_t)i - start);
  }
}
