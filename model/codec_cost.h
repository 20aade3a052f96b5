/* codec_cost: the codec's cost hook (`vita plan`, vt_model_ops.cost): the FLOPs and step-arena
 * values of one micro-batch of both phases, counted layer by layer from the registered
 * blocks (model/codec.h, model/disc.h) at the model's segment length, in the order their
 * forwards run. The parts, each with its phase (the trainer resets the arena between phases,
 * so a step peaks at its larger one):
 *   disc.codec          phase 0: encoder, quantizer, generator off the tape
 *   disc.discriminators phase 0: MPD, MSD, MS-STFT on the real and the generated segment
 *   gen.codec           phase 1: the same codec on the tape, plus the consistency target
 *   gen.disc_fake       phase 1: the discriminators on the generated segment (input gradients)
 *   gen.disc_real       phase 1: on the real segment, off the tape (feature-matching targets)
 *   gen.mel             phase 1: the three log-mel spectrograms of both segments
 * The codec does not recompute (the recompute figures equal the others). */
#ifndef VT_CODEC_COST_H
#define VT_CODEC_COST_H

#include "model/codec_loss.h"
#include "model/model.h"

/* s->batch (0: 1) items of one `segment` each (s->tokens is set to it). Returns the parts. */
int codec_cost_parts(const codec *m, const disc *d, const codec_gan_cfg *g, int segment,
                     vt_model_shape *s, vt_model_cost *parts);

#endif
