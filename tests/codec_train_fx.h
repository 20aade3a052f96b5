/* Helpers of the codec tests that train (tests/test_codec_model.c, test_codec_restart.c): one
 * Adam (betas 0.5, 0.9, TiCodec's) per phase, each over its phase's parameters, and one
 * phase's loss on a batch of waveforms with only that phase's parameters taking gradients, as
 * the trainer's phases run them. */
#ifndef VT_CODEC_TRAIN_FX_H
#define VT_CODEC_TRAIN_FX_H

#include <stdlib.h>

#include "model/model.h"
#include "tests/testutil.h"
#include "train/optim.h"

typedef struct {
  bool *only[2]; /* per phase: the parameters it updates */
  vt_optim opt[2];
} codec_phases;

static inline void codec_phases_init(codec_phases *c, const vt_model *m, vt_params *ps,
                                     double lr_disc, double lr_gen) {
  char err[512];
  for (int p = 0; p < 2; p++) {
    c->only[p] = calloc((size_t)ps->n + 1, sizeof(bool));
    for (int i = 0; i < ps->n; i++)
      c->only[p][i] = ps->items[i]->trainable && vt_model_phase_has(m, p, ps->items[i]->name);
    vt_optim_cfg oc = vt_optim_defaults(VT_OPTIM_ADAM);
    oc.lr = p ? lr_gen : lr_disc;
    oc.beta1 = 0.5;
    oc.beta2 = 0.9;
    oc.only = c->only[p];
    CHECK_MSG(vt_optim_init(&c->opt[p], ps, &oc, err, sizeof err) == 0, "%s", err);
  }
}

/* A created model's store allocated (with gradients) and initialised from rng, then the
 * phases' optimizers. */
static inline void codec_phases_start(codec_phases *c, vt_model *m, vt_params *ps, vt_rng *rng,
                                      double lr_disc, double lr_gen) {
  char err[512];
  CHECK_MSG(!vt_params_alloc(ps, err, sizeof err) && !vt_params_alloc_grads(ps, err, sizeof err) &&
                !m->ops->init_weights(m, ps, rng, err, sizeof err),
            "%s", err);
  codec_phases_init(c, m, ps, lr_disc, lr_gen);
}

static inline void codec_phases_free(codec_phases *c) {
  for (int p = 0; p < 2; p++) {
    vt_optim_free(&c->opt[p]);
    free(c->only[p]);
  }
}

/* Phase p's loss terms on the waveforms w [n, len] (a training step drawing from rng). */
static inline void codec_phases_loss(const codec_phases *c, vt_model *m, vt_params *ps, vt_ctx *ctx,
                                     int p, const float *w, int n, int len, vt_rng *rng,
                                     vt_model_loss *l) {
  for (int i = 0; i < ps->n; i++)
    if (ps->items[i]->trainable) ps->items[i]->t.requires_grad = c->only[p][i];
  vt_batch b = {.n_media = 1};
  b.media[0] = (vt_media){
      .kind = VT_MEDIA_WAVE, .n = n, .data = vt_from_host(ctx, VT_F32, 2, (int64_t[]){n, len}, w)};
  vt_model_step st = {.phase = p, .train = true, .rng = rng};
  CHECK_MSG(m->ops->loss(m, ctx, &b, &st, l) == 0, "loss: %s", vt_ctx_error(ctx));
}

#endif
