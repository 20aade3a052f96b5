/* The VITA model's audio path; see audio_llm.h. */
#include "model/audio_llm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/audio_cfg.h"
#include "model/model_cfg.h"
#include "model/nn_reg.h"

/* The state markers of the Qwen2.5 template (data/chat.h; model/ does not include data/). */
static const int64_t default_states[3] = {144766, 146164, 145789};
static const float default_weights[3] = {1.0f, 5.0f, 1.0f};

static int read_head(audio_llm *a, const json_t *h, const char *where, int64_t vocab, char *err,
                     size_t err_len) {
  a->n_classes = 3;
  memcpy(a->class_w, default_weights, sizeof default_weights);
  memcpy(a->state_ids, default_states, sizeof default_states);
  if (!json_is_object(h)) {
    snprintf(err, err_len, "%s: field \"modality_head\": expected an object, found %s", where,
             model_cfg_type_name(h));
    return -1;
  }
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)h, key, v) {
    if (strcmp(key, "num_classes") && strcmp(key, "class_weights") &&
        strcmp(key, "state_token_ids")) {
      snprintf(err, err_len,
               "%s: modality_head field \"%s\": expected num_classes, class_weights "
               "or state_token_ids",
               where, key);
      return -1;
    }
  }
  int64_t nc = 3;
  if (model_cfg_int(h, where, "num_classes", false, 2, AUDIO_LLM_MAX_CLASSES, &nc, err, err_len))
    return -1;
  a->n_classes = (int)nc;
  json_t *w = json_object_get(h, "class_weights");
  if (w) {
    if (!json_is_array(w) || json_array_size(w) != (size_t)nc) {
      snprintf(err, err_len,
               "%s: modality_head field \"class_weights\": expected a list of %d "
               "numbers (one per class)",
               where, (int)nc);
      return -1;
    }
    for (int i = 0; i < nc; i++) {
      json_t *x = json_array_get(w, (size_t)i);
      if (!json_is_number(x) || !(json_number_value(x) >= 0)) {
        snprintf(err, err_len,
                 "%s: modality_head field \"class_weights\"[%d]: expected a number "
                 ">= 0",
                 where, i);
        return -1;
      }
      a->class_w[i] = (float)json_number_value(x);
    }
  } else
    for (int i = 3; i < nc; i++) a->class_w[i] = 1.0f;
  json_t *s = json_object_get(h, "state_token_ids");
  if (s) {
    if (!json_is_array(s) || json_array_size(s) != (size_t)nc) {
      snprintf(err, err_len,
               "%s: modality_head field \"state_token_ids\": expected a list of %d "
               "token ids (the marker of each class)",
               where, (int)nc);
      return -1;
    }
    for (int i = 0; i < nc; i++) {
      json_t *x = json_array_get(s, (size_t)i);
      if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) >= vocab) {
        snprintf(err, err_len,
                 "%s: modality_head field \"state_token_ids\"[%d]: expected a token "
                 "id in [0, %lld)",
                 where, i, (long long)vocab);
        return -1;
      }
      a->state_ids[i] = json_integer_value(x);
    }
  } else if (nc != 3) {
    snprintf(err, err_len, "%s: modality_head: %d classes need their \"state_token_ids\"", where,
             (int)nc);
    return -1;
  }
  return 0;
}

int audio_llm_init(audio_llm *a, vt_params *ps, const json_t *config, const char *where,
                   int64_t llm_hidden, bool recompute, char *err, size_t err_len) {
  memset(a, 0, sizeof *a);
  const json_t *ac = json_object_get(config, "audio_config");
  const json_t *hc = json_object_get(config, "modality_head");
  if (hc && !ac) {
    snprintf(err, err_len,
             "%s: field \"modality_head\" needs an \"audio_config\" (its labels sit "
             "at the audio clips)",
             where);
    return -1;
  }
  if (!ac || json_is_null(ac)) return 0;
  audio_enc_cfg c;
  audio_adapter_cfg d;
  int64_t sep;
  char w2[300];
  snprintf(w2, sizeof w2, "%s: audio_config", where);
  if (audio_enc_cfg_from_json(ac, w2, &c, &d, &sep, err, err_len)) return -1;
  if (c.ctc_vocab > 0) {
    snprintf(err, err_len,
             "%s: field \"ctc_vocab\": the vita model has no CTC head (stage 2.1a "
             "trains it in the audio_ctc model); expected 0, found %lld",
             w2, (long long)c.ctc_vocab);
    return -1;
  }
  if (d.llm_dim && d.llm_dim != llm_hidden) {
    snprintf(err, err_len,
             "%s: field \"llm_hidden_size\": expected the LLM's hidden_size %lld, "
             "found %lld",
             w2, (long long)llm_hidden, (long long)d.llm_dim);
    return -1;
  }
  d.llm_dim = llm_hidden;
  c.recompute = recompute;
  a->on = true;
  if (audio_enc_init(&a->enc, ps, &c, err, err_len) ||
      audio_adapter_init(&a->ad, ps, &d, err, err_len))
    return -1;
  if (hc && !json_is_null(hc)) {
    int64_t vocab = INT32_MAX;
    model_cfg_int(config, where, "vocab_size", false, 1, INT64_MAX, &vocab, err, err_len);
    if (read_head(a, hc, where, vocab, err, err_len)) return -1;
    nn_reg r = nn_reg_make(ps, err, err_len);
    nn_linear_init(&a->cls, &r, AUDIO_LLM_HEAD, "", llm_hidden, a->n_classes, true);
    if (nn_reg_failed(&r)) return -1;
    a->head = true;
  }
  return 0;
}

void audio_llm_free(audio_llm *a) {
  if (a->on) audio_enc_free(&a->enc);
  a->on = false;
}

void audio_llm_init_weights(audio_llm *a, vt_rng *rng, float init_range) {
  if (!a->on) return;
  audio_enc_init_weights(&a->enc, rng);
  audio_adapter_init_weights(&a->ad, rng);
  if (a->head) nn_linear_init_normal(&a->cls, a->enc.ps, rng, init_range);
}

void audio_llm_to_json(const audio_llm *a, json_t *o) {
  if (!a->on) return;
  audio_adapter_cfg d = a->ad.cfg;
  json_t *ac = audio_enc_cfg_to_json(&a->enc.cfg, &d, -1);
  json_object_del(ac, "ctc_vocab");
  json_object_set_new(o, "audio_config", ac);
  if (!a->head) return;
  json_t *w = json_array(), *s = json_array();
  for (int i = 0; i < a->n_classes; i++) {
    json_array_append_new(w, json_real(a->class_w[i]));
    json_array_append_new(s, json_integer(a->state_ids[i]));
  }
  json_object_set_new(o, "modality_head",
                      json_pack("{s:i, s:o, s:o}", "num_classes", a->n_classes, "class_weights", w,
                                "state_token_ids", s));
}

int64_t audio_llm_positions(const audio_llm *a, int64_t frames) {
  if (!a->on) return 0;
  return audio_adapter_out_len(&a->ad.cfg, audio_enc_out_len(frames));
}

/* The host copies of a batch's fbank items: lengths and spans. */
typedef struct {
  int64_t n;
  int32_t *len, *spans;
} clips;

static int get_clips(vt_ctx *ctx, const vt_media *fm, clips *c) {
  c->n = fm->n;
  c->len = malloc(sizeof(int32_t) * (size_t)fm->n);
  c->spans = malloc(sizeof(int32_t) * 3 * (size_t)fm->n);
  if (!c->len || !c->spans) {
    free(c->len), free(c->spans);
    vt_ctx_fail(ctx, "audio", "out of host memory for %lld clips", (long long)fm->n);
    return -1;
  }
  if (!fm->spans) {
    free(c->len), free(c->spans);
    vt_ctx_fail(ctx, "audio", "fbank items need spans (row, start, count) to be spliced");
    return -1;
  }
  vt_to_host(ctx, fm->spans, c->spans);
  if (fm->lengths)
    vt_to_host(ctx, fm->lengths, c->len);
  else
    for (int64_t i = 0; i < fm->n; i++) c->len[i] = (int32_t)fm->data->shape[1];
  return 0;
}

static bool trains(const vt_tensor *w) { return w && w->requires_grad; }

vt_tensor *audio_llm_splice(audio_llm *a, vt_ctx *ctx, vt_tensor *emb, const vt_batch *b,
                            const nn_fwd *f, bool frozen_train) {
  const vt_media *fm = vt_batch_media(b, VT_MEDIA_FBANK);
  if (!fm || fm->n == 0 || vt_ctx_failed(ctx)) return emb;
  if (!a->on)
    return vt_ctx_fail(ctx, "vita",
                       "the batch has audio clips but the model has no "
                       "audio_config");
  int64_t B = b->rows, T = b->len, H = a->ad.cfg.llm_dim, n = fm->n;
  if (!fm->data || fm->data->ndim != 3 || fm->data->shape[0] != n ||
      fm->data->shape[2] != a->enc.cfg.n_mels) {
    char s[96];
    return vt_ctx_fail(ctx, "vita", "fbank items %s must be [%lld, frames, %lld]",
                       fm->data ? vt_shape_str(fm->data, s, sizeof s) : "(none)", (long long)n,
                       (long long)a->enc.cfg.n_mels);
  }
  clips c;
  if (get_clips(ctx, fm, &c)) return emb;
  int32_t *el = malloc(sizeof(int32_t) * (size_t)n), *al = malloc(sizeof(int32_t) * (size_t)n);
  int32_t *src = NULL, *dst = NULL;
  vt_tensor *out = emb;
  if (!el || !al) {
    out = vt_ctx_fail(ctx, "vita", "out of host memory for %lld clips", (long long)n);
    goto done;
  }
  audio_enc_fwd af = {.training = f && f->training && (frozen_train || trains(a->enc.embed.w)),
                      .rng = f ? f->rng : NULL};
  if (af.training && !af.rng) af.training = false;
  vt_tensor *h = audio_enc_forward(&a->enc, ctx, fm->data, c.len, el, &af);
  vt_tensor *x = audio_adapter_forward(&a->ad, ctx, h, el, al);
  if (vt_ctx_failed(ctx)) goto done;
  int64_t L = x->shape[1], total = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t row = c.spans[3 * i], start = c.spans[3 * i + 1], count = c.spans[3 * i + 2];
    if (row < 0 || row >= B || start < 0 || count != al[i] || (int64_t)start + count > T) {
      out =
          vt_ctx_fail(ctx, "vita",
                      "audio clip %lld (%d frames): span (row %d, start %d, count %d) outside "
                      "the batch [%lld, %lld] or not its %d positions",
                      (long long)i, c.len[i], row, start, count, (long long)B, (long long)T, al[i]);
      goto done;
    }
    total += count;
  }
  if (total == 0) goto done;
  src = malloc(sizeof(int32_t) * (size_t)total);
  dst = malloc(sizeof(int32_t) * (size_t)total);
  if (!src || !dst) {
    out = vt_ctx_fail(ctx, "vita", "out of host memory for %lld audio positions", (long long)total);
    goto done;
  }
  int64_t k = 0;
  for (int64_t i = 0; i < n; i++)
    for (int32_t j = 0; j < c.spans[3 * i + 2]; j++) {
      src[k] = (int32_t)(i * L + j);
      dst[k++] = c.spans[3 * i] * (int32_t)T + c.spans[3 * i + 1] + j;
    }
  vt_tensor *rows = vt_index_select(ctx, vt_reshape(ctx, x, 2, (int64_t[]){n * L, H}), 0,
                                    vt_from_host(ctx, VT_I32, 1, (int64_t[]){total}, src));
  vt_tensor *flat = vt_reshape(ctx, emb, 2, (int64_t[]){B * T, H});
  flat = vt_index_copy(ctx, flat, 0, vt_from_host(ctx, VT_I32, 1, (int64_t[]){total}, dst), rows);
  out = vt_reshape(ctx, flat, 3, (int64_t[]){B, T, H});
done:
  free(c.len), free(c.spans), free(el), free(al), free(src), free(dst);
  return out;
}

vt_tensor *audio_llm_modality_loss(audio_llm *a, vt_ctx *ctx, vt_tensor *hidden, const vt_batch *b,
                                   int64_t *counted, int64_t *correct) {
  *counted = *correct = 0;
  const vt_media *fm = vt_batch_media(b, VT_MEDIA_FBANK);
  if (!a->head || !fm || fm->n == 0 || vt_ctx_failed(ctx)) return vt_zeros(ctx, VT_F32, 0, NULL);
  int64_t B = b->rows, T = b->len, H = hidden->shape[2];
  clips c;
  if (get_clips(ctx, fm, &c)) return vt_zeros(ctx, VT_F32, 0, NULL);
  int32_t *tok = malloc(sizeof(int32_t) * (size_t)(B * T)),
          *len = malloc(sizeof(int32_t) * (size_t)B),
          *seg = b->segments ? malloc(sizeof(int32_t) * (size_t)(B * T)) : NULL;
  int32_t *idx = malloc(sizeof(int32_t) * (size_t)c.n),
          *lab = malloc(sizeof(int32_t) * (size_t)c.n);
  vt_tensor *loss = NULL;
  if (!tok || !len || !idx || !lab || (b->segments && !seg)) {
    loss = vt_ctx_fail(ctx, "vita", "out of host memory for the modality labels");
    goto done;
  }
  vt_to_host(ctx, b->tokens, tok);
  if (seg) vt_to_host(ctx, b->segments, seg);
  if (b->lengths)
    vt_to_host(ctx, b->lengths, len);
  else
    for (int64_t r = 0; r < B; r++) len[r] = (int32_t)T;
  int64_t m = 0;
  for (int64_t i = 0; i < c.n; i++) {
    int32_t row = c.spans[3 * i], end = c.spans[3 * i + 1] + c.spans[3 * i + 2];
    if (row < 0 || row >= B || end < 1 || end > T) continue; /* the splice has refused it */
    int k = -1;
    /* in a packed row the answer is looked for within the clip's own sample */
    for (int64_t t = end;
         t < len[row] && k < 0 && (!seg || seg[row * T + t] == seg[row * T + end - 1]); t++)
      for (int j = 0; j < a->n_classes; j++)
        if (tok[row * T + t] == a->state_ids[j]) k = j;
    if (k < 0) continue; /* no answer follows this clip in the row */
    idx[m] = row * (int32_t)T + end - 1;
    lab[m++] = k;
  }
  *counted = m;
  if (m == 0) {
    loss = vt_zeros(ctx, VT_F32, 0, NULL);
    goto done;
  }
  vt_tensor *hs = vt_index_select(ctx, vt_reshape(ctx, hidden, 2, (int64_t[]){B * T, H}), 0,
                                  vt_from_host(ctx, VT_I32, 1, (int64_t[]){m}, idx));
  vt_tensor *logits = nn_linear_forward(&a->cls, ctx, hs);
  vt_tensor *w = vt_from_host(ctx, VT_F32, 1, (int64_t[]){a->n_classes}, a->class_w);
  loss = vt_cross_entropy(ctx, logits, vt_from_host(ctx, VT_I32, 1, (int64_t[]){m}, lab), w,
                          VT_IGNORE_INDEX, VT_LOSS_MEAN);
  if (vt_ctx_failed(ctx)) goto done;
  float *lg = malloc(sizeof(float) * (size_t)(m * a->n_classes));
  if (!lg) {
    loss = vt_ctx_fail(ctx, "vita", "out of host memory for the modality logits");
    goto done;
  }
  vt_to_host(ctx, logits, lg);
  for (int64_t i = 0; i < m; i++) {
    int best = 0;
    for (int j = 1; j < a->n_classes; j++)
      if (lg[i * a->n_classes + j] > lg[i * a->n_classes + best]) best = j;
    *correct += best == lab[i];
  }
  free(lg);
done:
  free(c.len), free(c.spans), free(tok), free(len), free(idx), free(lab), free(seg);
  return loss;
}
