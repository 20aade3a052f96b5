// ctest-labels: e2e grad
/* Packed rows with audio: a tiny VITA model with an audio encoder, adapter (with prompts) and
 * the modality head trains one SGD step (lr 1, no momentum, decay or clipping: the update is
 * the mean gradient of LM CE + the modality term) on the same six samples, packed three to a
 * row into two rows, and unpacked one to a row. The samples carry no clip, one, two, a clip at
 * the very start, clips of three lengths, with or without a state token after them; each
 * packed row carries its samples' clips in <audio> order, expanded to their encoder positions,
 * the encoder runs once over the batch's clips, segments keep the samples apart and positions
 * restart per sample. Loss and every parameter's gradient agree to f32 reduction tolerance and
 * the audio encoder's gradients are not zero. With max_len below a sample's expanded length,
 * samples with clips are skipped and counted, not cut through their clip's positions.
 * Then at the model: one hand-built packed row of three samples (a clip without a state token
 * followed by a sample with one) against the three as rows gives the same LM and modality
 * sums, and the same row with its segment ids broken (all one segment) does not. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/dtype.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors.h"
#include "data/chat.h"
#include "data/shard.h"
#include "model/model.h"
#include "tests/check.h"
#include "tests/pack_fx.h"
#include "train/trainer.h"

static char T[] = "/tmp/vt_pack_aud_XXXXXX";

enum { MELS = 20, L = 28, NS = 6, STATE0 = 250 };

static const char *model_json =
    "{\"model_type\": \"vita-Qwen2\", \"vocab_size\": 256, \"hidden_size\": 32,\n"
    " \"intermediate_size\": 64, \"num_hidden_layers\": 2, \"num_attention_heads\": 2,\n"
    " \"num_key_value_heads\": 1, \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0,\n"
    " \"tie_word_embeddings\": false, \"image_newline_token_id\": 10,\n"
    " \"mm_projector_type\": \"mlp2x_gelu\", \"mm_hidden_size\": 64,\n"
    " \"vision_config\": {\"image_size\": 28, \"patch_size\": 14, \"hidden_size\": 16,\n"
    "   \"intermediate_size\": 32, \"num_hidden_layers\": 1, \"num_attention_heads\": 2},\n"
    " \"audio_config\": {\"n_mels\": 20, \"hidden_size\": 16, \"num_attention_heads\": 2,\n"
    "   \"intermediate_size\": 24, \"num_hidden_layers\": 2, \"chunk_mode\": \"full\",\n"
    "   \"dropout\": 0.0, \"audio_prompt_num\": 2},\n"
    " \"modality_head\": {\"num_classes\": 3, \"class_weights\": [1.0, 3.0, 1.0],\n"
    "   \"state_token_ids\": [250, 251, 252]}}\n";

/* The six samples: clips (frames, token index of their <audio>), and the state token that
 * ends the answer (-1: none, so the head has no label for its clips). */
static const struct {
  int n_clips, frames[2], at[2], state;
} KIND[NS] = {{0, {0, 0}, {0, 0}, -1},  {1, {40, 0}, {2, 0}, -1}, {1, {52, 0}, {3, 0}, 1},
              {2, {40, 64}, {1, 5}, 0}, {1, {64, 0}, {0, 0}, 2},  {1, {46, 0}, {4, 0}, -1}};

/* One sample laid out: tokens (placeholders unexpanded), labels, and its fbank. */
typedef struct {
  int n;
  int32_t ids[L], labels[L];
  int64_t frames[2];
  uint16_t *fbank; /* all clips back to back, [frames, MELS] f16 */
} sample;

static sample S[NS];

/* Builds the samples so that each is L positions once its clips are expanded (pos: the
 * model's positions for a clip of f frames). */
static void make_samples(const vt_model *m) {
  uint32_t rng = 11;
  for (int s = 0; s < NS; s++) {
    sample *x = &S[s];
    int n = L;
    size_t fr = 0;
    for (int k = 0; k < KIND[s].n_clips; k++) {
      n -= (int)m->ops->audio_positions(m, KIND[s].frames[k]) - 1;
      x->frames[k] = KIND[s].frames[k];
      fr += (size_t)KIND[s].frames[k];
    }
    x->n = n;
    for (int i = 0; i < n; i++) {
      rng = rng * 1664525u + 1013904223u;
      x->ids[i] = 11 + (int32_t)(rng >> 8) % 230;
      x->labels[i] = i < n / 3 ? VT_IGNORE_INDEX : x->ids[i]; /* a prompt, then the answer */
    }
    for (int k = 0; k < KIND[s].n_clips; k++) {
      x->ids[KIND[s].at[k]] = CHAT_AUDIO_ID;
      x->labels[KIND[s].at[k]] = VT_IGNORE_INDEX;
    }
    if (KIND[s].state >= 0) x->ids[n - 2] = x->labels[n - 2] = STATE0 + KIND[s].state;
    x->fbank = malloc(sizeof(uint16_t) * fr * MELS + 1);
    for (size_t i = 0; i < fr * MELS; i++) {
      rng = rng * 1664525u + 1013904223u;
      x->fbank[i] = vt_f32_to_f16(4.0f * ((float)(rng >> 8) / 16777216.0f) - 2.0f);
    }
  }
}

static void write_shard(void) {
  shard_writer *w = pack_fx_shard_open(T);
  for (int s = 0; s < NS; s++) {
    chat_media media[2];
    const char *paths[2] = {"a.wav", "b.wav"};
    for (int k = 0; k < KIND[s].n_clips; k++)
      media[k] = (chat_media){KIND[s].at[k], CHAT_MEDIA_AUDIO, k};
    char id[16];
    snprintf(id, sizeof id, "s%d", s);
    shard_sample_in in = {.id = id,
                          .ids = S[s].ids,
                          .labels = S[s].labels,
                          .n = (size_t)S[s].n,
                          .media = KIND[s].n_clips ? media : NULL,
                          .media_path = KIND[s].n_clips ? paths : NULL,
                          .n_media = (size_t)KIND[s].n_clips,
                          .n_audio = (size_t)KIND[s].n_clips,
                          .fbank_bins = MELS,
                          .fbank_frames = S[s].frames,
                          .fbank = S[s].fbank};
    pack_fx_shard_add(w, &in);
  }
  pack_fx_shard_close(w);
}

static const pack_fx_data data = {"aud", 3 * L, ", losses: {lm: 1.0, modality: 1.0}", NS};

/* Packing with max_len 20: every sample with clips is 28 positions once expanded, so it is
 * skipped and counted, never cut through its clip's positions; the text-only sample (28
 * tokens) is cut to 20 and packed alone. One step of one row draws until that sample. */
static void too_long(void) { pack_fx_too_long(T, 20, "audio"); }

static void trainer_packed_vs_unpacked(void) {
  double lp = pack_fx_step(T, &data, "packed", true, 2),
         lu = pack_fx_step(T, &data, "unpacked", false, NS);
  printf("step-1 loss: packed %.7f, unpacked %.7f\n", lp, lu);
  CHECK_MSG(fabs(lp - lu) <= 1e-5 * fabs(lu) && lu > 1, "loss packed %.9g vs unpacked %.9g", lp,
            lu);
  int moved[2];
  double worst;
  int compared = pack_fx_grads_agree(
      T, (const char *const[]){"model.audio_encoder.encoder.enc.", "model.predict_head.", NULL},
      moved, &worst);
  if (!compared) return;
  CHECK_MSG(moved[0] > 10, "only %d audio encoder tensors have a gradient", moved[0]);
  CHECK_MSG(moved[1] > 0, "the modality head has no gradient");
  printf("gradients of %d tensors agree (largest difference beyond the update's rounding: %.2g "
         "of the tensor's largest gradient); %d audio encoder tensors have one\n",
         compared, worst, moved[0]);
}

/* Host arrays of a hand-built batch: rows of the given samples (several a row when packed). */
typedef struct {
  int64_t rows, len, n_clips, max_frames;
  int32_t *tok, *lab, *pos, *seg, *lens, *spans, *clip_len;
  float *fb;
} host_batch;

static void lay_out(const vt_model *m, const int *which, int n, int per_row, bool broken,
                    host_batch *h) {
  memset(h, 0, sizeof *h);
  h->rows = (n + per_row - 1) / per_row;
  h->len = (int64_t)per_row * L;
  size_t cells = (size_t)(h->rows * h->len);
  h->tok = calloc(cells, 4), h->lab = calloc(cells, 4), h->pos = calloc(cells, 4);
  h->seg = calloc(cells, 4), h->lens = calloc((size_t)h->rows, 4);
  h->spans = calloc(3 * 8, 4), h->clip_len = calloc(8, 4);
  for (int i = 0; i < n; i++)
    for (int k = 0; k < KIND[which[i]].n_clips; k++)
      if (KIND[which[i]].frames[k] > h->max_frames) h->max_frames = KIND[which[i]].frames[k];
  h->fb = calloc((size_t)(8 * h->max_frames * MELS), sizeof(float));
  for (int i = 0; i < n; i++) {
    const sample *x = &S[which[i]];
    int64_t r = i / per_row, o = h->lens[r], o0 = o;
    int32_t *tok = h->tok + r * h->len, *lab = h->lab + r * h->len;
    size_t clip = 0, off = 0;
    for (int p = 0; p < x->n; p++) {
      int64_t at = o;
      if (x->ids[p] == CHAT_AUDIO_ID) {
        int64_t cnt = m->ops->audio_positions(m, x->frames[clip]);
        int32_t *sp = h->spans + 3 * h->n_clips;
        sp[0] = (int32_t)r, sp[1] = (int32_t)o, sp[2] = (int32_t)cnt;
        h->clip_len[h->n_clips] = (int32_t)x->frames[clip];
        for (int64_t f = 0; f < x->frames[clip] * MELS; f++)
          h->fb[h->n_clips * h->max_frames * MELS + f] = vt_f16_to_f32(x->fbank[off + f]);
        off += (size_t)(x->frames[clip++] * MELS);
        h->n_clips++;
        for (int64_t q = 0; q < cnt; q++) tok[o + q] = 0, lab[o + q] = VT_IGNORE_INDEX;
        o += cnt;
      } else {
        tok[o] = x->ids[p], lab[o++] = x->labels[p];
      }
      if (p == 0) lab[at] = VT_IGNORE_INDEX; /* as the trainer: no sample predicts the next */
    }
    for (int64_t q = o0; q < o; q++) {
      h->seg[r * h->len + q] = broken ? 0 : i % per_row;
      h->pos[r * h->len + q] = (int32_t)(q - o0);
    }
    h->lens[r] = (int32_t)o;
  }
}

static void free_host(host_batch *h) {
  free(h->tok), free(h->lab), free(h->pos), free(h->seg), free(h->lens), free(h->spans);
  free(h->clip_len), free(h->fb);
}

/* The LM and modality sums of a hand-built batch. */
static void loss_of(vt_model *m, vt_ctx *ctx, const host_batch *h, bool packed, double *lm,
                    double *mod) {
  int64_t B = h->rows, Tn = h->len;
  vt_batch b = {.rows = B, .len = Tn, .samples = B};
  for (int64_t r = 0; r < B; r++) /* position t predicts label t + 1 */
    for (int64_t t = 1; t < Tn; t++) b.label_tokens += h->lab[r * Tn + t] != VT_IGNORE_INDEX;
  b.tokens = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, Tn}, h->tok);
  b.labels = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, Tn}, h->lab);
  b.lengths = vt_from_host(ctx, VT_I32, 1, (int64_t[]){B}, h->lens);
  if (packed) {
    b.positions = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, Tn}, h->pos);
    b.segments = vt_from_host(ctx, VT_I32, 2, (int64_t[]){B, Tn}, h->seg);
  }
  b.media[b.n_media++] =
      (vt_media){VT_MEDIA_FBANK, h->n_clips,
                 vt_from_host(ctx, VT_F32, 3, (int64_t[]){h->n_clips, h->max_frames, MELS}, h->fb),
                 vt_from_host(ctx, VT_I32, 1, (int64_t[]){h->n_clips}, h->clip_len),
                 vt_from_host(ctx, VT_I32, 2, (int64_t[]){h->n_clips, 3}, h->spans)};
  vt_model_loss out = {0};
  vt_model_step st = {0};
  *lm = *mod = NAN;
  if (m->ops->loss(m, ctx, &b, &st, &out)) {
    CHECK_MSG(0, "%s", vt_ctx_error(ctx));
    return;
  }
  *lm = vt_item(ctx, out.terms[0].sum);
  *mod = out.n_terms > 1 ? vt_item(ctx, out.terms[1].sum) : NAN;
  vt_ctx_reset(ctx);
}

static void model_segments(vt_model *m) {
  const char *cerr = NULL;
  vt_ctx *ctx = vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &cerr);
  vt_set_grad_enabled(ctx, false);
  /* sample 1's clip has no state token after it; sample 2's answer ends in one */
  const int which[3] = {0, 1, 2};
  host_batch rows, packed, broken;
  lay_out(m, which, 3, 1, false, &rows);
  lay_out(m, which, 3, 3, false, &packed);
  lay_out(m, which, 3, 3, true, &broken);
  double lr, mr, lp, mp, lb, mb;
  loss_of(m, ctx, &rows, false, &lr, &mr);
  loss_of(m, ctx, &packed, true, &lp, &mp);
  loss_of(m, ctx, &broken, true, &lb, &mb);
  printf("model: lm sum rows %.7f, packed %.7f, segments broken %.7f; modality sum rows %.7f, "
         "packed %.7f\n",
         lr, lp, lb, mr, mp);
  CHECK_MSG(fabs(lp - lr) <= 1e-5 * fabs(lr) && lr > 1, "lm packed %.9g vs rows %.9g", lp, lr);
  CHECK_MSG(fabs(mp - mr) <= 1e-5 * fabs(mr) + 1e-6 && mr > 0, "modality packed %.9g vs rows %.9g",
            mp, mr);
  /* attention across samples moves the loss well beyond the tolerance above (by 2.7e-4 of
   * it when this was written: 27 times the tolerance) */
  CHECK_MSG(fabs(lb - lr) > 1e-4 * fabs(lr), "lm with broken segments %.9g vs rows %.9g", lb, lr);
  free_host(&rows), free_host(&packed), free_host(&broken);
  vt_ctx_free(ctx);
}

int main(void) {
  if (!mkdtemp(T)) return 1;
  char p[600], e[512];
  json_t *cj = json_loads(model_json, 0, NULL);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = vt_model_create(NULL, cj, "model.json", &mo, &ps, e, sizeof e);
  if (!m || vt_params_alloc(&ps, e, sizeof e)) {
    CHECK_MSG(0, "%s", e);
    return vt_test_finish("test_pack_audio");
  }
  vt_rng rng;
  vt_rng_seed(&rng, 9);
  if (m->ops->init_weights(m, &ps, &rng, e, sizeof e)) CHECK_MSG(0, "%s", e);
  make_samples(m);
  write_shard();
  pack_fx_write_file(T, "model.json", model_json);
  trainer_packed_vs_unpacked();
  too_long();
  model_segments(m);
  vt_model_destroy(m);
  vt_params_free(&ps);
  json_decref(cj);
  for (int s = 0; s < NS; s++) free(S[s].fbank);
  if (!vt_test_failures) ckpt_remove_tree(T, p, sizeof p);
  return vt_test_finish("test_pack_audio");
}
