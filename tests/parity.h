/* Helpers of the PyTorch parity tests (test_qwen2_parity, test_bf16_qwen2,
 * test_model_qwen2_gemm_pack, test_tts_parity, test_vit_parity): the files of a fixture
 * directory under $VT_FIXTURES, reference tensors of a safetensors file, a model's weights
 * from the fixture, gradients against the reference's, and the Qwen2 fixture's model and
 * batch. Failures are counted checks (tests/check.h); a missing reference tensor exits. */
#ifndef VT_TESTS_PARITY_H
#define VT_TESTS_PARITY_H

#include <stdbool.h>
#include <stdint.h>

#include "autograd/vt.h"
#include "checkpoints/safetensors.h"
#include "model/qwen2.h"

/* $VT_FIXTURES/dir/name (tests/fixtures when unset), in a buffer the next call reuses. */
const char *parity_path(const char *dir, const char *name);
/* Opens dir/name as f (a counted check: false when it fails). */
bool parity_open(st_file *f, const char *dir, const char *name);
/* The reference tensor name of f as dtype (VT_F32 or VT_I32) in a new buffer (free() it);
 * numel (may be NULL) gets its element count. Exits the test when it is missing or
 * unreadable. */
void *parity_read(const st_file *f, const char *name, vt_dtype dtype, int64_t *numel);

/* The largest |x[i]| (tolerances scale with the values compared), and max |a[i] - b[i]|. */
double parity_max_abs(const float *x, int64_t n);
double parity_max_diff(const float *a, const float *b, int64_t n);

/* Every parameter of ps (allocated) from the first of dir's files (NULL-ended names) that
 * holds its name, read as f32 through the store; a missing or misshaped one fails a check.
 * Returns the number of tensors in the files (the caller checks it against ps->n). */
int parity_load_weights(vt_params *ps, const char *dir, const char *const *files);
/* The gradient of each trainable parameter NAME of ps against ref's tensor PREFIXNAME within
 * rel * max |want| + rel * |want| (CHECK_CLOSE); parameters the reference has no tensor for
 * are skipped. Returns how many were compared. */
int parity_check_grads(vt_ctx *ctx, const vt_params *ps, const st_file *ref, const char *prefix,
                       double rel);

/* ---- the Qwen2 fixture (tests/reference/gen_qwen2_fixtures.py, qwen2_tiny/) ---- */

#define PARITY_QWEN2 "qwen2_tiny"

/* Its config.json. */
qwen2_cfg parity_qwen2_cfg(void);
/* A CPU store ps (initialised here) with m built from cfg and allocated. */
void parity_qwen2_init(qwen2 *m, vt_params *ps, const qwen2_cfg *cfg);

/* The reference batch: input_ids and labels [b, t]. */
typedef struct {
  int32_t *ids, *labels;
  int64_t b, t;
} parity_qwen2_batch;
parity_qwen2_batch parity_qwen2_batch_read(const st_file *ref);
void parity_qwen2_batch_free(parity_qwen2_batch *bt);
/* The logits [b, t, vocab] of the batch's ids off the tape (positions 0..t-1), in a new
 * buffer; the ctx is reset after. Exits the test when the forward fails. */
float *parity_qwen2_logits(qwen2 *m, vt_ctx *ctx, const parity_qwen2_batch *bt);
/* The mean loss of the batch on the tape (the caller runs backward). */
vt_tensor *parity_qwen2_loss(qwen2 *m, vt_ctx *ctx, const parity_qwen2_batch *bt);

#endif
