/* The training losses, each a differentiable op returning a scalar [1]: chunked LM
 * cross-entropy from hidden states and the LM head, plain / weighted / speech-token CE, CTC,
 * L1, MSE, cosine and the VQ loss. Reductions follow PyTorch's definitions. */
#ifndef VT_OPS_LOSS_H
#define VT_OPS_LOSS_H

#include "autograd/ctx.h"
#include "autograd/ignore.h"

typedef enum { VT_LOSS_MEAN = 0, VT_LOSS_SUM } vt_loss_reduction;

#define VT_SPEECH_PAD 1027 /* PAD of the speech decoder's 1028 codec classes */

/* Cross-entropy of logits [..., C] against i32 targets with the leading shape (same number of
 * rows). class_weights (f32 [C], constant) or NULL; rows whose target is ignore_index do not
 * count. MEAN divides by the summed weights of counted rows (the count when unweighted), as
 * PyTorch's weighted mean; when nothing counts the loss is 0 (PyTorch: NaN). */
vt_tensor *vt_cross_entropy(vt_ctx *ctx, vt_tensor *logits, vt_tensor *targets,
                            vt_tensor *class_weights, int32_t ignore_index,
                            vt_loss_reduction reduction);
/* The speech decoder's loss: cross-entropy summed over tokens, pad (VT_SPEECH_PAD) ignored. */
vt_tensor *vt_speech_token_ce(vt_ctx *ctx, vt_tensor *logits, vt_tensor *targets, int32_t pad);

/* Zero-initialised: chunk chosen from the vocab, labels shifted, mean. */
typedef struct {
  int64_t chunk_rows;  /* rows whose logits exist at once (<= 0: about 64 MiB of logits) */
  bool labels_shifted; /* labels already give the next token of each row: do not shift */
  vt_loss_reduction reduction;
} vt_lm_ce_opts;

/* LM cross-entropy from hidden [B, T, D] (or [T, D]) and the LM head weight [V, D] against i32
 * labels [B, T] (ignore index -100): row (b, t) predicts labels[b, t + 1]. Logits are formed
 * chunk_rows x V at a time, only for rows with a counted label, in forward and again in
 * backward, so peak memory holds one chunk of logits. Gradients flow to hidden and weight. */
vt_tensor *vt_lm_cross_entropy(vt_ctx *ctx, vt_tensor *hidden, vt_tensor *weight, vt_tensor *labels,
                               const vt_lm_ce_opts *opts);

/* Zero-initialised: blank 0, mean, infinite losses kept. */
typedef struct {
  int32_t blank;
  vt_loss_reduction reduction; /* MEAN: each loss / its target length, then the batch mean */
  bool zero_infinity;          /* impossible alignments give 0 loss and 0 gradient */
} vt_ctc_opts;

/* CTC loss of log_probs [B, T, C] (log-softmax outputs, batch first) against padded i32
 * targets [B, S] with i32 input_lengths [B] (<= T) and target_lengths [B] (<= S). The
 * gradient is the exact d loss / d log_probs; PyTorch's ctc_loss instead returns the gradient
 * with respect to the logits before log_softmax, so both agree after a log-softmax. */
vt_tensor *vt_ctc_loss(vt_ctx *ctx, vt_tensor *log_probs, vt_tensor *targets,
                       vt_tensor *input_lengths, vt_tensor *target_lengths,
                       const vt_ctc_opts *opts);

/* Elementwise distances of equal-shape a and b: mean or sum of |a - b| or (a - b)^2. */
vt_tensor *vt_l1_loss(vt_ctx *ctx, vt_tensor *a, vt_tensor *b, vt_loss_reduction reduction);
vt_tensor *vt_mse_loss(vt_ctx *ctx, vt_tensor *a, vt_tensor *b, vt_loss_reduction reduction);
/* mean over rows of 1 - cos(a, b) along the last dim (eps 1e-8 on the norms, as PyTorch). */
vt_tensor *vt_cosine_loss(vt_ctx *ctx, vt_tensor *a, vt_tensor *b);
/* VQ codebook + commitment loss: mse(zq, sg(x)) + beta mse(sg(zq), x) (beta 0.25 usually):
 * the value is (1 + beta) mse(zq, x); zq gets the codebook gradient, x the commitment one. */
vt_tensor *vt_vq_loss(vt_ctx *ctx, vt_tensor *zq, vt_tensor *x, float beta);

#endif
