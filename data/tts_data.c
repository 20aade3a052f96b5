/* Stage 3.2 speech samples; see tts_data.h. */
#include "data/tts_data.h"
#include "autograd/fmt.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

bool tts_sample_is_speech(const void *json_object) {
  const json_t *o = json_object;
  return json_object_get(o, "text") || json_object_get(o, "codec");
}

sample_reason tts_sample_from_json(const void *json_object, int64_t codec_vocab, sample *s,
                                   char *err, size_t err_len) {
  const json_t *o = json_object;
  static const char *const not_here[] = {"conversations", "image", "video"};
  for (size_t i = 0; i < sizeof not_here / sizeof not_here[0]; i++)
    if (json_object_get(o, not_here[i])) {
      vt_seterr(err, err_len, "%s: %s: a speech sample (text + codec) has no %s", s->where,
                not_here[i], not_here[i]);
      return SAMPLE_BAD_FIELD;
    }
  const char *text = json_string_value(json_object_get(o, "text"));
  if (!text || !text[0]) {
    vt_seterr(err, err_len, "%s: text: expected a non-empty string", s->where);
    return SAMPLE_BAD_FIELD;
  }
  const json_t *codec = json_object_get(o, "codec"), *audio = json_object_get(o, "audio");
  if (audio && codec) {
    vt_seterr(err, err_len, "%s: audio: a speech sample has codec ids or audio, not both",
              s->where);
    return SAMPLE_BAD_FIELD;
  }
  if (audio) { /* the speech itself: vita prep --codec turns it into ids */
    if (!json_is_string(audio) || !json_string_value(audio)[0]) {
      vt_seterr(err, err_len, "%s: audio: expected the path of one audio file", s->where);
      return SAMPLE_BAD_FIELD;
    }
    s->text = text;
    return SAMPLE_OK;
  }
  size_t n = json_array_size(codec);
  if (!json_is_array(codec) || n == 0) {
    vt_seterr(err, err_len,
              "%s: codec: expected a non-empty list of codec token ids (or \"audio\": a path)",
              s->where);
    return SAMPLE_BAD_FIELD;
  }
  s->codec = malloc(n * sizeof *s->codec);
  if (!s->codec) {
    vt_seterr(err, err_len, "%s: out of memory", s->where);
    return SAMPLE_BAD_FIELD;
  }
  for (size_t i = 0; i < n; i++) {
    const json_t *v = json_array_get(codec, i);
    json_int_t x = json_is_integer(v) ? json_integer_value(v) : -1;
    if (!json_is_integer(v) || x < 0 || x >= codec_vocab) {
      if (json_is_integer(v))
        vt_seterr(err, err_len, "%s: codec[%zu]: %lld is not a codec id (expected 0 to %lld)",
                  s->where, i, (long long)x, (long long)codec_vocab - 1);
      else
        vt_seterr(err, err_len, "%s: codec[%zu]: expected an integer", s->where, i);
      return SAMPLE_BAD_FIELD;
    }
    s->codec[i] = (int32_t)x;
  }
  s->n_codec = n;
  s->text = text;
  return SAMPLE_OK;
}

int tts_sample_encode(tok_tokenizer *t, const sample *s, chat_sample *out, char *err,
                      size_t err_len) {
  chat_sample_reset(out);
  char msg[512];
  if (tok_encode(t, s->text, strlen(s->text), &out->ids, msg, sizeof msg)) {
    vt_seterr(err, err_len, "%s: text: %s", s->where, msg);
    return -1;
  }
  for (size_t i = 0; i < out->ids.n; i++)
    if (tok_ids_push(&out->labels, VT_IGNORE_INDEX)) {
      vt_seterr(err, err_len, "%s: out of memory", s->where);
      return -1;
    }
  return 0;
}
