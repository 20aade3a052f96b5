/* Micro-batches from the data mixture, on the host and then as a model-neutral vt_batch on
 * the device; see trainer_impl.h. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "autograd/dtype.h"
#include "data/tiling.h"
#include "train/trainer_impl.h"

/* Whether the model takes image tiles (and so image and video placeholders). */
static bool takes_images(const trainer *t) {
  return (t->model->media & VT_MEDIA_BIT(VT_MEDIA_IMAGE)) && t->model->image_tokens > 0;
}

static bool takes_codec(const trainer *t) { return t->model->media & VT_MEDIA_BIT(VT_MEDIA_CODEC); }
static bool takes_fbank(const trainer *t) { return t->model->media & VT_MEDIA_BIT(VT_MEDIA_FBANK); }
/* The model splices each clip at its <audio> placeholder (the VITA model), rather than taking
 * each row's first clip whole (the audio encoder of stage 2.1a). */
static bool splices_audio(const trainer *t) {
  return takes_fbank(t) && t->model->ops->audio_positions;
}
static bool takes_wave(const trainer *t) { return t->model->media & VT_MEDIA_BIT(VT_MEDIA_WAVE); }

/* Why the model cannot take a sample (its tokens, its media), or NULL. Image and video
 * placeholders are expanded into tile spans by expand_row. */
static const char *unusable(const trainer *t, const int32_t *ids, const int32_t *labels, size_t n,
                            size_t n_media, size_t n_codec, size_t n_clips) {
  if (n_media && !(t->model->media & ~VT_MEDIA_BIT(VT_MEDIA_CODEC)))
    return "it has image/video/audio placeholders this model does not take";
  if (takes_codec(t)) { /* a speech decoder: a text (any length) and its codec tokens */
    if (!n_codec) return "it has no codec tokens (the model learns to predict them)";
    if (n < 1) return "it has no text tokens";
    /* a cut text would no longer match its speech */
    if ((int64_t)n > t->cfg->max_len) return "its text is longer than data.max_len";
  } else if (takes_wave(t)) { /* a codec: the first clip's waveform is the sample */
    const shard_sample *s = &t->sample;
    if (!s->n_audio || s->wave_len[0] < 1)
      return "it has no stored waveform (vita prep --audio-features --wave-rate RATE)";
    if (t->model->wave_rate && s->wave_rate != t->model->wave_rate)
      return "its waveform's rate is not the model's (vita prep --wave-rate)";
    if (s->wave_len[0] > INT32_MAX) return "its waveform is longer than 2^31 samples";
  } else if (n < 2)
    return "it has fewer than 2 tokens";
  if (takes_fbank(t) && !splices_audio(t) && !t->sample.n_audio)
    return "it has no stored fbank (vita prep --audio-features)";
  int64_t v = t->model->vocab_size;
  size_t n_aud = 0;
  for (size_t i = 0; v && i < n; i++) {
    if (splices_audio(t) && ids[i] == CHAT_AUDIO_ID) {
      n_aud++;
      continue;
    }
    if (takes_images(t) && (ids[i] == CHAT_IMAGE_ID || ids[i] == CHAT_VIDEO_ID)) continue;
    if (ids[i] < 0 || ids[i] >= v) return "a token id is outside the model's vocabulary";
  }
  if (n_aud && n_aud > n_clips)
    return "an <audio> placeholder has no stored fbank (vita prep --audio-features)";
  /* a label the loss would index with is as bad as a token id: the sample is skipped and
   * counted, not the run aborted */
  for (size_t i = 0; v && labels && i < n; i++)
    if (labels[i] != VT_IGNORE_INDEX && (labels[i] < 0 || labels[i] >= v))
      return "a label is outside the model's vocabulary";
  return NULL;
}

/* What a row is built from: one sample, or a pack of several (starts: their boundaries), with
 * the tiles of its media in media order. */
typedef struct {
  const int32_t *ids, *labels;
  size_t n;
  const chat_media *media;
  const int32_t *n_tiles; /* per medium */
  size_t n_media;
  const uint8_t *tiles;
  int tile_size;
  const int64_t *starts; /* NULL: one sample */
  size_t n_seq;
  const shard_sample *audio; /* whose clips the <audio> placeholders take (NULL: none) */
} row_src;

/* Appends the source's k-th tile (normalised) to the batch's tiles with its span. */
static int add_tile(trainer *t, const row_src *s, int64_t k, int32_t row, int32_t start) {
  int sz = s->tile_size;
  size_t per = (size_t)3 * (size_t)sz * (size_t)sz;
  if (t->n_tiles && sz != t->tile_size) return -1;
  if (t->n_tiles == t->cap_tiles) {
    int64_t cap = t->cap_tiles ? 2 * t->cap_tiles : 16;
    float *nt = realloc(t->tiles, sizeof(float) * per * (size_t)cap);
    if (nt) t->tiles = nt;
    int32_t *ns = realloc(t->spans, sizeof(int32_t) * 3 * (size_t)cap);
    if (ns) t->spans = ns;
    if (!nt || !ns) return -1;
    t->cap_tiles = cap;
  }
  t->tile_size = sz;
  tile_normalize(s->tiles + (size_t)k * per, sz, t->tiles + (size_t)t->n_tiles * per);
  int32_t *sp = t->spans + 3 * t->n_tiles++;
  sp[0] = row, sp[1] = start, sp[2] = (int32_t)t->model->image_tokens;
  return 0;
}

/* Appends the sample's clip j (f16 fbank -> f32) to the batch's clips with its span. */
static int add_clip(trainer *t, const shard_sample *s, size_t j, int32_t row, int32_t start,
                    int32_t count) {
  size_t bins = (size_t)s->fbank_bins, off = 0;
  for (size_t q = 0; q < j; q++) off += (size_t)s->fbank_frames[q] * bins;
  size_t nf = (size_t)s->fbank_frames[j] * bins;
  if (t->n_au && s->fbank_bins != t->fb_bins) return -1;
  if (t->fb_n + nf > t->fb_cap) {
    size_t cap = 2 * (t->fb_n + nf);
    float *p = realloc(t->fb, cap * sizeof *p);
    if (!p) return -1;
    t->fb = p;
    t->fb_cap = cap;
  }
  if (t->n_au == t->cap_au) {
    int64_t cap = t->cap_au ? 2 * t->cap_au : 16;
    int32_t *nf2 = realloc(t->au_frames, sizeof(int32_t) * (size_t)cap);
    if (nf2) t->au_frames = nf2;
    int32_t *ns = realloc(t->au_spans, sizeof(int32_t) * 3 * (size_t)cap);
    if (ns) t->au_spans = ns;
    if (!nf2 || !ns) return -1;
    t->cap_au = cap;
  }
  for (size_t k = 0; k < nf; k++) t->fb[t->fb_n + k] = vt_f16_to_f32(s->fbank[off + k]);
  t->fb_n += nf;
  t->fb_bins = (int32_t)bins;
  t->au_frames[t->n_au] = (int32_t)s->fbank_frames[j];
  int32_t *sp = t->au_spans + 3 * t->n_au++;
  sp[0] = row, sp[1] = start, sp[2] = count;
  return 0;
}

/* Row i from src with each image / video placeholder expanded: per tile (frame) its
 * image_tokens positions then image_sep, labels ignored there (DESIGN.md §7); and, for a
 * model that splices audio, each <audio> as its clip's positions (src->audio's clips, in
 * <audio> order). A pack also gets its segments and positions in expanded coordinates
 * (positions restart per sample, no sample predicts the first token of the next). Returns
 * the length, or -1 when it does not fit max_len or its media are missing (why says which). */
static int64_t expand_row(trainer *t, int64_t i, const row_src *s, const char **why) {
  int64_t max_len = t->cfg->max_len, span = t->model->image_tokens, o = 0, first = t->n_tiles;
  int32_t *ids = t->ids + i * max_len, *labels = t->labels + i * max_len;
  int32_t *seg = t->segments + i * max_len, *pos = t->pos + i * max_len;
  int64_t tile0 = 0; /* index of the current medium's first tile in the source */
  size_t k = 0;      /* media are in position order */
  size_t q = 0;      /* the pack's sample holding position p */
  int64_t q0 = 0;    /* its first position in the row */
  int64_t first_au = t->n_au;
  size_t first_fb = t->fb_n, clip = 0;
  const shard_sample *au = s->audio;
  for (size_t p = 0; p < s->n; p++) {
    int64_t at = o;
    if (s->starts) {
      while (q + 1 < s->n_seq && (int64_t)p >= s->starts[q + 1]) q++;
      if ((int64_t)p == s->starts[q]) q0 = o;
    }
    int32_t id = s->ids[p];
    bool vis = id == CHAT_IMAGE_ID || id == CHAT_VIDEO_ID;
    while (vis && k < s->n_media && s->media[k].pos < (int64_t)p) tile0 += s->n_tiles[k++];
    if (id == CHAT_AUDIO_ID && splices_audio(t)) { /* clips are stored in <audio> order */
      int64_t cnt = au && clip < au->n_audio
                        ? t->model->ops->audio_positions(t->model, au->fbank_frames[clip])
                        : 0;
      if (cnt < 1) {
        *why = "an <audio> clip has no stored fbank, or too few frames for the encoder";
        goto fail;
      }
      if (o + cnt > max_len) goto too_long;
      if (add_clip(t, au, clip++, (int32_t)i, (int32_t)o, (int32_t)cnt)) {
        *why = "out of memory for audio clips (or clips of two fbank sizes)";
        goto fail;
      }
      for (int64_t r = 0; r < cnt; r++) ids[o + r] = 0, labels[o + r] = VT_IGNORE_INDEX;
      o += cnt;
    } else if (!vis) {
      if (o >= max_len) goto too_long;
      ids[o] = id, labels[o++] = s->labels[p];
    } else {
      if (k >= s->n_media || s->media[k].pos != (int64_t)p || s->n_tiles[k] < 1) {
        *why = "an image or video placeholder has no tiles in the shard (prep with media.decode)";
        goto fail;
      }
      for (int32_t j = 0; j < s->n_tiles[k]; j++) {
        if (o + span + 1 > max_len) goto too_long;
        if (add_tile(t, s, tile0 + j, (int32_t)i, (int32_t)o)) {
          *why = "out of memory for image tiles (or tiles of two sizes)";
          goto fail;
        }
        for (int64_t r = 0; r < span; r++) ids[o + r] = 0, labels[o + r] = VT_IGNORE_INDEX;
        o += span;
        ids[o] = t->model->image_sep, labels[o++] = VT_IGNORE_INDEX;
      }
    }
    if (s->starts) {
      if ((int64_t)p == s->starts[q]) labels[at] = VT_IGNORE_INDEX;
      for (int64_t r = at; r < o; r++) seg[r] = (int32_t)q, pos[r] = (int32_t)(r - q0);
    }
  }
  for (int64_t r = o; s->starts && r < max_len; r++) /* padding: one more run (pack.h) */
    seg[r] = (int32_t)s->n_seq, pos[r] = (int32_t)(r - o);
  t->batch_samples += s->starts ? (int64_t)s->n_seq : 1;
  return o;
too_long:
  *why = "longer than max_len once its images and audio are expanded";
fail:
  t->n_tiles = first;
  t->n_au = first_au;
  t->fb_n = first_fb;
  return -1;
}

static int skip(trainer *t, const char *id, const char *why, int tries, char *err, size_t err_len) {
  if (t->count_samples) {
    t->skipped_samples++;
    if (t->skipped_samples <= 10) fprintf(stderr, "warning: skipping %s: %s\n", id, why);
  }
  if (tries > 1000) {
    snprintf(err, err_len, "1000 samples in a row could not be used; last: %s", why);
    return -1;
  }
  return 0;
}

/* Row i (stride max_len) from the sample just read into t->sample; returns its length, -1
 * (why set) for a sample with images that cannot be expanded (skipped), or -2 out of memory. */
static int64_t put_sample(trainer *t, int64_t i, const char **why) {
  const shard_sample *sm = &t->sample;
  if ((takes_images(t) && sm->n_tiles_total > 0) || (splices_audio(t) && sm->n_audio > 0))
    return expand_row(t, i,
                      &(row_src){sm->ids.v, sm->labels.v, sm->ids.n, sm->media, sm->n_tiles,
                                 sm->n_media, sm->tiles, sm->tile_size, NULL, 0, sm},
                      why);
  int64_t max_len = t->cfg->max_len, n = (int64_t)t->sample.ids.n;
  if (n > max_len) {
    n = max_len;
    if (t->count_samples) t->truncated_samples++;
  }
  memcpy(t->ids + i * max_len, t->sample.ids.v, sizeof(int32_t) * (size_t)n);
  memcpy(t->labels + i * max_len, t->sample.labels.v, sizeof(int32_t) * (size_t)n);
  t->batch_samples++;
  if (takes_codec(t)) {
    size_t nc = t->sample.codec.n;
    if (t->codec_n + nc > t->codec_cap) {
      size_t cap = 2 * (t->codec_n + nc);
      int32_t *p = realloc(t->codec, cap * sizeof *p);
      if (!p) return -2;
      t->codec = p;
      t->codec_cap = cap;
    }
    memcpy(t->codec + t->codec_n, t->sample.codec.v, nc * sizeof(int32_t));
    t->codec_n += nc;
    t->codec_lens[i] = (int32_t)nc;
  }
  if (takes_fbank(t) && !splices_audio(t)) { /* the sample's first clip (an ASR pair has one) */
    size_t bins = (size_t)t->sample.fbank_bins, nf = (size_t)t->sample.fbank_frames[0] * bins;
    if (t->fb_n + nf > t->fb_cap) {
      size_t cap = 2 * (t->fb_n + nf);
      float *p = realloc(t->fb, cap * sizeof *p);
      if (!p) return -1;
      t->fb = p;
      t->fb_cap = cap;
    }
    for (size_t k = 0; k < nf; k++) t->fb[t->fb_n + k] = vt_f16_to_f32(t->sample.fbank[k]);
    t->fb_n += nf;
    t->fb_frames[i] = (int32_t)t->sample.fbank_frames[0];
    t->fb_bins = (int32_t)bins;
  }
  if (takes_wave(t)) { /* the sample's first clip, int16 PCM -> [-1, 1) */
    size_t nw = (size_t)t->sample.wave_len[0];
    if (t->wv_n + nw > t->wv_cap) {
      size_t cap = 2 * (t->wv_n + nw);
      float *p = realloc(t->wv, cap * sizeof *p);
      if (!p) return -2;
      t->wv = p;
      t->wv_cap = cap;
    }
    for (size_t k = 0; k < nw; k++) t->wv[t->wv_n + k] = (float)t->sample.wave[k] / 32768.0f;
    t->wv_n += nw;
    t->wv_lens[i] = (int32_t)nw;
  }
  return n;
}

/* The LLM positions of a clip of `frames` fbank frames, for packing (data/ knows no model). */
static int64_t pack_audio_tokens(void *user, int64_t frames) {
  const vt_model *m = user;
  return m->ops->audio_positions(m, frames);
}

/* Row i of the batch from the next usable sample or pack; returns its length, -1 on error. */
static int64_t next_row(trainer *t, mix *m, int64_t i, char *err, size_t err_len) {
  int64_t max_len = t->cfg->max_len;
  for (int tries = 0;; tries++) {
    if (t->mixcfg.pack && takes_fbank(t) && !splices_audio(t)) {
      snprintf(err, err_len,
               "packing (mixture pack: true) is not supported for a model that takes fbank "
               "items; set pack: false");
      return -1;
    }
    if (t->mixcfg.pack && takes_codec(t)) {
      snprintf(err, err_len,
               "packing (mixture pack: true) is not supported for a model that "
               "predicts codec tokens; set pack: false");
      return -1;
    }
    if (t->mixcfg.pack) {
      /* a vision model's rows hold each tile as image_tokens positions and a separator */
      mix_pack *pk = &t->pack;
      int64_t tile_tokens = takes_images(t) ? t->model->image_tokens + 1 : 0;
      /* and a model that splices audio each clip as its audio_positions */
      mix_pack_media how = {.tile_tokens = tile_tokens,
                            .audio_tokens = splices_audio(t) ? pack_audio_tokens : NULL,
                            .user = (void *)t->model};
      if (mix_next_packed_media(m, max_len, &how, pk, err, err_len)) return -1;
      if (t->count_samples && pk->n_dropped) {
        t->skipped_samples += pk->n_dropped;
        fprintf(stderr, "warning: skipping %lld sample(s) longer than max_len once expanded\n",
                (long long)pk->n_dropped);
      }
      const char *why =
          unusable(t, pk->ids.v, pk->labels.v, pk->ids.n, pk->n_media, 0, pk->n_audio);
      int64_t n = 0;
      /* the pack's clips as the sample-shaped view expand_row reads */
      shard_sample clips = {.n_audio = pk->n_audio,
                            .fbank_bins = pk->fbank_bins,
                            .fbank_frames = pk->fbank_frames,
                            .fbank = pk->fbank};
      if (!why && ((tile_tokens && pk->n_tiles_total > 0) || (how.audio_tokens && pk->n_audio)))
        n = expand_row(t, i,
                       &(row_src){pk->ids.v, pk->labels.v, pk->ids.n, pk->media, pk->n_tiles,
                                  pk->n_media, pk->tiles, pk->tile_size, pk->starts, pk->n_seq,
                                  pk->n_audio ? &clips : NULL},
                       &why);
      if (why) {
        if (skip(t, "a packed row", why, tries, err, err_len)) return -1;
        continue;
      }
      if (n > 0) {
        if (t->count_samples) t->truncated_samples += pk->n_truncated;
        return n;
      }
      n = (int64_t)t->pack.ids.n;
      int32_t *labels = t->labels + i * max_len;
      memcpy(t->ids + i * max_len, t->pack.ids.v, sizeof(int32_t) * (size_t)n);
      memcpy(labels, t->pack.labels.v, sizeof(int32_t) * (size_t)n);
      /* no sample predicts the first token of the next one */
      for (size_t k = 0; k < t->pack.n_seq; k++) labels[t->pack.starts[k]] = VT_IGNORE_INDEX;
      mix_pack_segments(&t->pack, (size_t)max_len, t->segments + i * max_len, t->pos + i * max_len);
      if (t->count_samples) t->truncated_samples += t->pack.n_truncated;
      t->batch_samples += (int64_t)t->pack.n_seq;
      return n;
    }
    mix_ref ref;
    if (mix_next(m, &t->sample, &ref, err, err_len)) return -1;
    const char *why = unusable(t, t->sample.ids.v, t->sample.labels.v, t->sample.ids.n,
                               t->sample.n_media, t->sample.codec.n, t->sample.n_audio);
    int64_t n = why ? -1 : put_sample(t, i, &why);
    if (n == -2) {
      snprintf(err, err_len, "out of memory for the codec tokens or waveforms of a batch");
      return -1;
    }
    if (n == -1) {
      char where[768];
      snprintf(where, sizeof where, "%.500s (dataset %s, sample %lld)",
               t->sample.id ? t->sample.id : "?",
               ref.dataset >= 0 && (size_t)ref.dataset < t->mixcfg.n_datasets
                   ? t->mixcfg.datasets[ref.dataset].name
                   : "?",
               (long long)ref.index);
      if (skip(t, where, why, tries, err, err_len)) return -1;
      continue;
    }
    return n;
  }
}

/* Moves row i from stride max_len to stride T (T <= max_len: never overwrites a later row). */
static void repack(int32_t *buf, int64_t i, int64_t max_len, int64_t T) {
  memmove(buf + i * T, buf + i * max_len, sizeof(int32_t) * (size_t)T);
}

static void begin_batch(trainer *t, bool packed) {
  t->batch_rows = t->batch_t = t->batch_tokens = t->batch_samples = 0;
  t->n_tiles = 0;
  t->codec_n = 0;
  t->fb_n = 0;
  t->n_au = 0;
  t->wv_n = 0;
  t->batch_packed = packed;
}

static void add_row(trainer *t, int64_t n) {
  int32_t *labels = t->labels + t->batch_rows * t->cfg->max_len;
  t->lengths[t->batch_rows++] = (int32_t)n;
  for (int64_t k = 1; k < n; k++) t->batch_tokens += labels[k] != VT_IGNORE_INDEX;
  if (n > t->batch_t) t->batch_t = n;
}

/* Appends one VT_MEDIA_FBANK item of n clips (their frames in order in t->fb, bins wide),
 * zero-padded to the longest, with their frame counts and spans. */
static void upload_fbank(trainer *t, vt_ctx *ctx, vt_batch *b, int64_t n, int64_t bins,
                         int32_t *frames, int32_t *spans) {
  int64_t Fr = 1;
  for (int64_t i = 0; i < n; i++) Fr = frames[i] > Fr ? frames[i] : Fr;
  size_t total = (size_t)(n * Fr * bins);
  if (total > t->fb_pad_cap) {
    float *p = realloc(t->fb_pad, sizeof(float) * total);
    if (!p) {
      vt_ctx_fail(ctx, "trainer", "out of memory for the fbank of a batch");
      return;
    }
    t->fb_pad = p;
    t->fb_pad_cap = total;
  }
  memset(t->fb_pad, 0, sizeof(float) * total);
  size_t off = 0;
  for (int64_t i = 0; i < n; i++) {
    size_t c = (size_t)frames[i] * (size_t)bins;
    memcpy(t->fb_pad + i * Fr * bins, t->fb + off, sizeof(float) * c);
    off += c;
  }
  b->media[b->n_media++] =
      (vt_media){.kind = VT_MEDIA_FBANK,
                 .n = n,
                 .data = vt_from_host(ctx, VT_F32, 3, (int64_t[]){n, Fr, bins}, t->fb_pad),
                 .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){n}, frames),
                 .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){n, 3}, spans)};
}

/* Pads to the longest row and repacks rows to a stride of batch_t. */
static void end_batch(trainer *t) {
  int64_t T = t->batch_t, max_len = t->cfg->max_len;
  for (int64_t i = 0; i < t->batch_rows; i++) {
    int64_t n = t->lengths[i];
    int32_t *ids = t->ids + i * max_len, *labels = t->labels + i * max_len;
    for (int64_t k = n; k < T; k++) {
      ids[k] = 0;
      labels[k] = VT_IGNORE_INDEX;
    }
    repack(t->ids, i, max_len, T);
    repack(t->labels, i, max_len, T);
    if (t->batch_packed) {
      repack(t->pos, i, max_len, T);
      repack(t->segments, i, max_len, T);
    }
  }
}

int trainer_next_batch(trainer *t, mix *m, char *err, size_t err_len) {
  begin_batch(t, t->mixcfg.pack);
  for (int64_t i = 0; i < t->cfg->batch_size; i++) {
    int64_t n = next_row(t, m, i, err, err_len);
    if (n < 0) return -1;
    add_row(t, n);
  }
  end_batch(t);
  return 0;
}

int trainer_eval_batch(trainer *t, mix *m, int64_t *slot, int64_t stride, int64_t end,
                       int64_t *skipped, char *err, size_t err_len) {
  /* one sample per row, unpacked: each sample is seen alone, exactly once */
  begin_batch(t, false);
  mix_cursor c = mix_get_cursor(m);
  while (t->batch_rows < t->cfg->batch_size && *slot < end) {
    c.epoch = 0;
    c.pos = *slot;
    *slot += stride;
    if (mix_set_cursor(m, &c, err, err_len) || mix_next(m, &t->sample, NULL, err, err_len))
      return -1;
    const char *why = unusable(t, t->sample.ids.v, t->sample.labels.v, t->sample.ids.n,
                               t->sample.n_media, t->sample.codec.n, t->sample.n_audio);
    int64_t n = why ? -1 : put_sample(t, t->batch_rows, &why);
    if (n == -1) {
      (*skipped)++;
      continue;
    }
    if (n < 0) {
      snprintf(err, err_len, "out of memory for the codec tokens or waveforms of a batch");
      return -1;
    }
    add_row(t, n);
  }
  end_batch(t);
  return 0;
}

void trainer_upload(trainer *t, vt_batch *b) {
  vt_ctx *ctx = t->ctx;
  int64_t B = t->batch_rows, T = t->batch_t;
  memset(b, 0, sizeof *b);
  b->rows = B;
  b->len = T;
  b->tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, t->ids);
  b->labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, t->labels);
  b->lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, t->lengths);
  if (t->batch_packed) {
    b->positions = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, t->pos);
    b->segments = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, T}, t->segments);
  }
  if (t->n_tiles) {
    int64_t n = t->n_tiles, sz = t->tile_size;
    b->media[0] = (vt_media){VT_MEDIA_IMAGE, n,
                             vt_from_host(ctx, VT_F32, 4, (int64_t[]){n, 3, sz, sz}, t->tiles),
                             NULL, vt_from_host(ctx, VT_I32, 2, (int64_t[]){n, 3}, t->spans)};
    b->n_media = 1;
  }
  b->label_tokens = t->batch_tokens;
  b->samples = t->batch_samples;
  if (takes_codec(t) && B > 0) { /* one codec item per row, padded to the longest */
    int64_t C = 1;
    for (int64_t i = 0; i < B; i++) C = t->codec_lens[i] > C ? t->codec_lens[i] : C;
    if ((size_t)(B * C) > t->codec_pad_cap) {
      int32_t *p = realloc(t->codec_pad, sizeof(int32_t) * (size_t)(B * C));
      if (!p) {
        vt_ctx_fail(ctx, "trainer", "out of memory for the codec tokens of a batch");
        return;
      }
      t->codec_pad = p;
      t->codec_pad_cap = (size_t)(B * C);
    }
    size_t off = 0;
    for (int64_t i = 0; i < B; i++) {
      int32_t n = t->codec_lens[i];
      memcpy(t->codec_pad + i * C, t->codec + off, sizeof(int32_t) * (size_t)n);
      for (int64_t k = n; k < C; k++) t->codec_pad[i * C + k] = 0;
      off += (size_t)n;
      t->codec_spans[3 * i] = (int32_t)i, t->codec_spans[3 * i + 1] = 0;
      t->codec_spans[3 * i + 2] = 0;
    }
    b->media[b->n_media++] =
        (vt_media){.kind = VT_MEDIA_CODEC,
                   .n = B,
                   .data = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, C}, t->codec_pad),
                   .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, t->codec_lens),
                   .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, 3}, t->codec_spans)};
  }
  if (splices_audio(t) && t->n_au > 0) /* every clip at its span */
    upload_fbank(t, ctx, b, t->n_au, t->fb_bins, t->au_frames, t->au_spans);
  if (takes_fbank(t) && !splices_audio(t) && B > 0) { /* one fbank item per row, the whole row */
    for (int64_t i = 0; i < B; i++)
      t->fb_spans[3 * i] = (int32_t)i, t->fb_spans[3 * i + 1] = 0, t->fb_spans[3 * i + 2] = 0;
    upload_fbank(t, ctx, b, B, t->fb_bins > 0 ? t->fb_bins : 1, t->fb_frames, t->fb_spans);
  }
  if (takes_wave(t) && B > 0) { /* one waveform per row, zero-padded to the longest */
    int64_t S = 1;
    for (int64_t i = 0; i < B; i++) S = t->wv_lens[i] > S ? t->wv_lens[i] : S;
    if ((size_t)(B * S) > t->wv_pad_cap) {
      float *p = realloc(t->wv_pad, sizeof(float) * (size_t)(B * S));
      if (!p) {
        vt_ctx_fail(ctx, "trainer", "out of memory for the waveforms of a batch");
        return;
      }
      t->wv_pad = p;
      t->wv_pad_cap = (size_t)(B * S);
    }
    size_t off = 0;
    for (int64_t i = 0; i < B; i++) {
      size_t n = (size_t)t->wv_lens[i];
      memcpy(t->wv_pad + i * S, t->wv + off, sizeof(float) * n);
      memset(t->wv_pad + i * S + n, 0, sizeof(float) * (size_t)(S - (int64_t)n));
      off += n;
      t->wv_spans[3 * i] = (int32_t)i, t->wv_spans[3 * i + 1] = 0, t->wv_spans[3 * i + 2] = 0;
    }
    b->media[b->n_media++] =
        (vt_media){.kind = VT_MEDIA_WAVE,
                   .n = B,
                   .data = vt_from_host(ctx, VT_F32, 2, (int64_t[]){B, S}, t->wv_pad),
                   .lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, t->wv_lens),
                   .spans = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, 3}, t->wv_spans)};
  }
}
