/* The two-phase model of the trainer's phase tests (tests/test_phases.c,
 * test_dist_phases.c), registered by each test as "two_phase" (the trainer never names it):
 * an embedding "generator" with an LM head and a linear "discriminator" scoring embeddings,
 * as a GAN codec has. Phase "disc" trains disc.* on term "disc"; phase "gen" trains gen.* on
 * "lm" and "adv". Config: {"model_type": "two_phase", "vocab_size": V, "dim": D}, and with
 * "fixed": true a vector gen.fixed.weight [D] that scales the embeddings (one to freeze). */
#ifndef VT_TESTS_TWO_PHASE_FX_H
#define VT_TESTS_TWO_PHASE_FX_H

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "model/model.h"
#include "model/nn_reg.h"

typedef struct {
  vt_model base;
  int64_t vocab, dim;
  vt_tensor *embed, *head, *disc, *fixed; /* fixed NULL without "fixed": true */
  int first, last;
} tp_model;

static vt_model *tp_create(const json_t *config, const char *where, const vt_model_opts *opts,
                           vt_params *ps, char *err, size_t err_len) {
  (void)opts;
  tp_model *m = calloc(1, sizeof *m);
  m->vocab = json_integer_value(json_object_get(config, "vocab_size"));
  m->dim = json_integer_value(json_object_get(config, "dim"));
  if (m->vocab < 2 || m->dim < 1) {
    snprintf(err, err_len, "%s: vocab_size and dim must be positive integers", where);
    free(m);
    return NULL;
  }
  bool fixed = json_is_true(json_object_get(config, "fixed"));
  m->first = ps->n;
  m->embed =
      vt_params_add(ps, "gen.embed.weight", VT_F32, 2, (int64_t[]){m->vocab, m->dim}, err, err_len);
  if (fixed)
    m->fixed = vt_params_add(ps, "gen.fixed.weight", VT_F32, 1, (int64_t[]){m->dim}, err, err_len);
  m->head =
      vt_params_add(ps, "gen.head.weight", VT_F32, 2, (int64_t[]){m->vocab, m->dim}, err, err_len);
  m->disc = vt_params_add(ps, "disc.score.weight", VT_F32, 2, (int64_t[]){1, m->dim}, err, err_len);
  m->last = ps->n;
  if (!m->embed || !m->head || !m->disc || (fixed && !m->fixed)) {
    free(m);
    return NULL;
  }
  m->base.vocab_size = m->vocab;
  m->base.phases[0] = (vt_model_phase){"disc", "disc.*"};
  m->base.phases[1] = (vt_model_phase){"gen", "gen.*"};
  m->base.n_phases = 2;
  m->base.terms[0] = (vt_model_term){"disc", 0};
  m->base.terms[1] = (vt_model_term){"lm", 1};
  m->base.terms[2] = (vt_model_term){"adv", 1};
  m->base.n_terms = 3;
  return &m->base;
}

static void tp_destroy(vt_model *m) { free(m); }

static int tp_init(vt_model *base, vt_params *ps, vt_rng *rng, char *err, size_t err_len) {
  (void)err, (void)err_len;
  tp_model *m = (tp_model *)base;
  for (int i = m->first; i < m->last; i++) nn_init_normal(ps, &ps->items[i]->t, rng, 0.0f, 0.1f);
  return 0;
}

static json_t *tp_config(const vt_model *base) {
  const tp_model *m = (const tp_model *)base;
  json_t *o = json_pack("{s:s, s:I, s:I}", "model_type", "two_phase", "vocab_size",
                        (json_int_t)m->vocab, "dim", (json_int_t)m->dim);
  if (m->fixed) json_object_set_new(o, "fixed", json_true());
  return o;
}

/* disc: squared error of the scores of (detached) real embeddings against 1, summed over
 * tokens; gen: the LM sum, and the summed score of its embeddings (the disc frozen). The
 * embeddings are scaled by the fixed vector when there is one. */
static int tp_loss(vt_model *base, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
                   vt_model_loss *out) {
  tp_model *m = (tp_model *)base;
  out->count = (double)b->label_tokens;
  vt_tensor *x = vt_embedding(ctx, m->embed, b->tokens); /* [B, T, D] */
  if (m->fixed) x = vt_mul(ctx, x, m->fixed);
  if (st->phase == 0) {
    vt_tensor *s = vt_matmul(ctx, vt_detach(ctx, x), m->disc, false, true); /* [B, T, 1] */
    vt_tensor *ones = vt_full(ctx, 3, (int64_t[]){b->rows, b->len, 1}, 1.0f);
    out->terms[0].name = "disc";
    out->terms[0].sum = vt_mse_loss(ctx, s, ones, VT_LOSS_SUM);
    out->n_terms = 1;
  } else {
    vt_lm_ce_opts o = {0};
    vt_tensor *mean = vt_lm_cross_entropy(ctx, x, m->head, b->labels, &o);
    out->terms[0].name = "lm";
    out->terms[0].sum = vt_scale(ctx, mean, (float)b->label_tokens);
    out->terms[1].name = "adv";
    out->terms[1].sum = vt_sum(ctx, vt_matmul(ctx, x, m->disc, false, true), VT_ALL_AXES, false);
    out->n_terms = 2;
  }
  return vt_ctx_failed(ctx) ? -1 : 0;
}

static int tp_eval(vt_model *base, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n) {
  vt_model_loss l;
  vt_model_step st = {.phase = 1};
  if (tp_loss(base, ctx, b, &st, &l)) return -1;
  out[0] = (vt_metric){"loss", vt_item(ctx, l.terms[0].sum), l.count};
  *n = 1;
  return 0;
}

static const char *const tp_types[] = {"two_phase", NULL};
static const vt_model_ops tp_ops = {.name = "two_phase",
                                    .model_types = tp_types,
                                    .create = tp_create,
                                    .destroy = tp_destroy,
                                    .init_weights = tp_init,
                                    .config_json = tp_config,
                                    .loss = tp_loss,
                                    .eval = tp_eval};

#endif
