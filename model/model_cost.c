/* Cost counts of the model families (see model_cost.h). */
#include <stdio.h>

#include "model/model_cost.h"
#include "model/nn_cost.h"

void model_cost_part(vt_model_cost *p, const char *name, const char *params, nn_cost layer,
                     int64_t n_layers, int64_t hidden, int64_t rows, nn_cost rest, double fused) {
  snprintf(p->name, sizeof p->name, "%s", name);
  snprintf(p->params, sizeof p->params, "%s", params);
  double L = (double)n_layers;
  p->flops_weight = L * layer.flops_weight + rest.flops_weight;
  p->flops_attn = L * layer.flops_attn + rest.flops_attn;
  double fwd = L * layer.act_floats + rest.act_floats, rest_step = 2.0 * rest.act_floats - fused;
  double layer_step = 2.0 * layer.act_floats - layer.nograd_floats; /* values + gradients */
  p->act_bytes = 4.0 * (L * layer_step + rest_step);
  p->act_bytes_recompute = 4.0 * (2.0 * L * (double)hidden * (double)rows + layer_step + rest_step);
  /* off the tape each layer's values are freed as it ends (nn_layer_forward, vt_transient):
   * the layers' outputs stay, with one layer's values and one staged output at a time */
  double freed =
      (L + 1) * (double)hidden * (double)rows + (L > 0 ? layer.act_floats : 0) + rest.act_floats;
  p->act_bytes_frozen = 4.0 * (freed < fwd ? freed : fwd);
}

void model_cost_qwen2(const qwen2_cfg *c, const vt_model_shape *s, const char *params,
                      vt_model_cost *llm) {
  int64_t rows = s->batch * s->tokens, h = c->hidden_size, v = c->vocab_size;
  nn_layer_cfg lc = nn_layer_cfg_llama(h, c->num_attention_heads, c->num_key_value_heads,
                                       c->intermediate_size, c->rope_theta, c->rms_norm_eps, true);
  lc.attn.pack = lc.mlp.pack = !c->unpacked;
  nn_cost layer = nn_cost_scale(nn_cost_layer(&lc, s->tokens, true), (double)s->batch);
  /* embedding rows, the final norm and its statistic, one chunk of logits at a time */
  int64_t chunk = c->ce_chunk_rows > 0 ? c->ce_chunk_rows : ((int64_t)16 << 20) / (v ? v : 1);
  double logits = (double)(rows < chunk ? rows : chunk) * (double)v;
  nn_cost rest = {2.0 * (double)h * (double)v * (double)rows, 0,
                  (double)rows * (3.0 * (double)h + 1) + logits, 0};
  model_cost_part(llm, "llm", params, layer, c->num_hidden_layers, h, rows, rest, logits);
}

void model_cost_vit(const vit_cfg *c, int64_t llm_hidden, const vt_model_shape *s,
                    const char *vision_params, const char *adapter_params, vt_model_cost *vision,
                    vt_model_cost *adapter) {
  int64_t g = c->image_size / c->patch_size, seq = 1 + g * g, h = c->hidden_size;
  int64_t tiles = s->batch * s->tiles, rows = tiles * seq;
  nn_layer_cfg lc =
      nn_layer_cfg_internvit(h, c->num_attention_heads, c->intermediate_size, c->layer_norm_eps);
  nn_cost layer = nn_cost_scale(nn_cost_layer(&lc, seq, false), (double)tiles);
  /* the patches cut out of the pixels (two permuted copies), the patch convolution, the
   * class row, the position add */
  nn_cost rest = nn_cost_linear(3 * c->patch_size * c->patch_size, h, true, tiles * g * g);
  rest.act_floats += 2.0 * (double)rows * (double)h +
                     2.0 * (double)tiles * 3 * (double)(c->image_size * c->image_size);
  model_cost_part(vision, "vision", vision_params, layer, c->num_hidden_layers, h, rows, rest, 0);
  /* feature scale and pixel shuffle (two copies), fc1 + bias, GELU, fc2 + bias */
  int64_t d = c->downsample, out_rows = tiles * (g / d) * (g / d), in = h * d * d;
  nn_cost ad = nn_cost_linear(in, llm_hidden, true, out_rows);
  ad.act_floats += 2.0 * (double)out_rows * (double)in + (double)out_rows * (double)llm_hidden;
  nn_cost_add(&ad, nn_cost_linear(llm_hidden, llm_hidden, true, out_rows));
  model_cost_part(adapter, "adapter", adapter_params, (nn_cost){0}, 0, 0, 0, ad, 0);
}

void model_cost_audio_enc(const audio_enc_cfg *c, int64_t batch, int64_t frames, const char *params,
                          vt_model_cost *enc) {
  int64_t h = c->hidden, t1 = (frames - 1) / 2, t = audio_enc_out_len(frames);
  int64_t f1 = (c->n_mels - 1) / 2, fo = audio_enc_freq_out(c->n_mels), rows = batch * t;
  nn_layer_cfg lc = nn_layer_cfg_wenet(h, c->heads, c->ffn, c->norm_eps, c->dropout);
  nn_cost layer = nn_cost_scale(nn_cost_layer(&lc, t, false), (double)batch);
  /* conv 1 -> h (3x3, stride 2), ReLU, conv h -> h, ReLU, flatten -> Linear, embed Linear,
   * LayerNorm, ReLU, scaling, dropouts; the final LayerNorm; the CTC head */
  nn_cost rest = nn_cost_linear(9, h, true, batch * t1 * f1);
  rest.act_floats += (double)(batch * t1 * f1 * h);
  nn_cost_add(&rest, nn_cost_linear(9 * h, h, true, rows * fo));
  rest.act_floats += (double)(rows * fo * h) * 2.0;
  nn_cost_add(&rest, nn_cost_linear(h * fo, h, true, rows));
  nn_cost_add(&rest, nn_cost_linear(h, h, true, rows));
  rest.act_floats += 6.0 * (double)(rows * h);
  if (c->ctc_vocab > 0) {
    nn_cost_add(&rest, nn_cost_linear(h, c->ctc_vocab, true, rows));
    rest.act_floats += (double)(rows * c->ctc_vocab); /* log-softmax */
  }
  model_cost_part(enc, "audio_encoder", params, layer, c->layers, h, rows, rest, 0);
}

void model_cost_audio_adapter(const audio_adapter_cfg *c, int64_t batch, int64_t frames,
                              const char *params, vt_model_cost *ad) {
  int64_t rows = batch * ((frames + 1) / 2), w = 2 * c->enc_dim;
  /* the padded input, the conv's output, LayerNorm (output, normalised input), GELU, project */
  nn_cost r = nn_cost_linear(c->kernel * c->enc_dim, w, true, rows);
  r.act_floats += (double)(batch * (frames + 4) * c->enc_dim) + 3.0 * (double)(rows * w);
  nn_cost_add(&r, nn_cost_linear(w, c->llm_dim, true, rows));
  model_cost_part(ad, "audio_adapter", params, (nn_cost){0}, 0, 0, 0, r, 0);
}

void model_cost_tts(const tts_cfg *c, const vt_model_shape *s, const char *params,
                    vt_model_cost *dec) {
  int64_t h = c->hidden_size, per = c->llm_hidden_size / h;
  int64_t cond = 1 + s->tokens * per, seq = cond + 1 + s->speech, b = s->batch;
  nn_layer_cfg lc = nn_layer_cfg_llama(h, c->num_attention_heads, c->num_attention_heads,
                                       c->intermediate_size, c->rope_theta, c->rms_norm_eps, false);
  /* the NAR layers over the conditioning; the AR layers over [BOS, NAR out, SOS, y] with the
   * conditioning bidirectional: counted as a full square, an upper bound */
  nn_cost nar = nn_cost_scale(nn_cost_layer(&lc, cond, false), (double)b);
  nn_cost ar = nn_cost_scale(nn_cost_layer(&lc, seq, false), (double)b);
  double nl = (double)(c->nar_layers + c->ar_layers);
  nn_cost layer = nn_cost_scale(nar, (double)c->nar_layers / nl);
  nn_cost_add(&layer, nn_cost_scale(ar, (double)c->ar_layers / nl));
  int64_t classes = c->codec_vocab + 4, rows = b * seq;
  nn_cost rest = nn_cost_linear(h, classes, true, b * (s->speech + 1));
  rest.act_floats += (double)(rows * h) * 3.0 + (double)(b * cond * h); /* embeds, norms */
  model_cost_part(dec, "speech_decoder", params, layer, c->nar_layers + c->ar_layers, h, rows, rest,
                  0);
}
