/* vt_model: the one interface between the trainer and every model. A model is a vtable
 * (vt_model_ops) found by name in a registry; it is created from its JSON config (model/
 * reads no files: the caller hands over a jansson object), registers its parameters under
 * their export names, initialises them, writes its config back, computes named loss terms and
 * eval metrics from a model-neutral vt_batch, and says which parameters each phase of a step
 * updates (LM stages: one phase; a GAN codec: discriminator, then generator). The per-model
 * part of HF import/export (config fields, tensor names) lives here too; the trainer and the
 * commands never name a model.
 *
 * Adding a model: implement vt_model_ops in model/NAME_model.c and list it in model/model.c
 * (tests may vt_model_register their own). */
#ifndef VT_MODEL_H
#define VT_MODEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "autograd/vt.h"
#include "model/batch.h"

#define VT_MODEL_MAX_TERMS 8
#define VT_MODEL_MAX_PHASES 4
#define VT_MODEL_MAX_METRICS 8

/* Training options the stage config gives every model (not part of the model's config). */
typedef struct {
  bool recompute;        /* recompute each layer's activations in backward */
  int64_t ce_chunk_rows; /* rows of logits alive at once in a vocabulary loss (0: automatic) */
} vt_model_opts;

/* A phase of an optimizer step: its own loss terms, parameters, optimizer state, learning
 * rate and schedule. The trainer runs the phases of a step in order. */
typedef struct {
  const char *name;   /* "main"; "disc", "gen" */
  const char *params; /* comma-separated fnmatch globs of the parameters it updates ("*") */
} vt_model_phase;

/* A loss term the model computes, and the phase whose backward it drives. */
typedef struct {
  const char *name; /* "lm", "ctc", "speech_ce", "disc_adv", ... (metrics.jsonl keys) */
  int phase;
} vt_model_term;

/* Per-forward state (a model keeps none of it in its fields). */
typedef struct {
  int phase;         /* the phase being computed */
  bool train;        /* a training step: dropout and drop path on; false: evaluation */
  bool frozen_train; /* frozen modules run in train mode too (stage key frozen_mode: train) */
  vt_rng *rng;       /* dropout masks; NULL when the step draws nothing */
} vt_model_step;

/* The loss terms of one batch for one phase. Each term is a SUM over the batch's units (not a
 * mean): the trainer weights the terms, backpropagates, all-reduces the sums and divides by
 * the global `count` in one place, so every unit of a step weighs the same however it is
 * split into micro-batches and ranks. */
typedef struct {
  struct {
    const char *name;
    vt_tensor *sum; /* f32 scalar, on the tape when grad is enabled */
  } terms[VT_MODEL_MAX_TERMS];
  int n_terms;
  double count; /* units the sums run over: counted label tokens, samples, frames */
} vt_model_loss;

/* An eval metric over a whole set is sum / count after summing over batches and ranks. */
typedef struct {
  const char *name; /* "loss", "token_acc", later "cer", "wer" */
  double sum, count;
} vt_metric;

/* The size of one micro-batch at a stage's configured lengths, for cost estimates. Zeros ask
 * the model for its default (documented by each model's cost hook). */
typedef struct {
  int64_t batch;  /* samples */
  int64_t tokens; /* sequence positions of a sample: LLM tokens, speech-decoder text
                     tokens, audio-encoder fbank frames, codec waveform samples */
  int64_t tiles;  /* image tiles of a sample (vision models) */
  int64_t audio;  /* fbank frames of a sample's audio clips (models with audio) */
  int64_t speech; /* codec tokens of a sample (the speech decoder) */
} vt_model_shape;

/* One part of a model's forward, in data-flow order, at a vt_model_shape. Gradients reach a
 * part when it or a part it reads trains; a part that gets none runs off the tape. */
typedef struct {
  char name[32];                   /* "vision", "adapter", "llm" */
  char params[256];                /* comma-separated globs of the part's parameters */
  unsigned inputs;                 /* bit k: it reads part k's output; 0: the part before it */
  double flops_weight, flops_attn; /* forward FLOPs: GEMMs against weights; attention */
  double act_bytes;                /* step arena bytes on the tape, no recompute */
  double act_bytes_recompute;      /* with per-layer recompute */
  double act_bytes_frozen;         /* off the tape: the layers' outputs and one layer's values */
  int phase; /* the model phase it runs in (0 for one phase): the trainer resets the step arena
                between phases, so a step's activations are those of its largest phase */
} vt_model_cost;

#define VT_MODEL_MAX_COST_PARTS 8
#define VT_MODEL_COST_ROOT (1u << 31) /* vt_model_cost.inputs: reads only the batch */

typedef struct vt_model vt_model;

typedef struct vt_model_ops {
  const char *name;               /* registry name ("qwen2") */
  const char *const *model_types; /* config.json "model_type" values it reads; NULL-ended */

  /* Reads config (the model's JSON config, e.g. a HF config.json object) and registers every
   * parameter in ps (not yet allocated) under its export name. `where` names the config's
   * source in messages (a file path). Returns the model, or NULL with err naming the field,
   * what was expected and what was found. */
  vt_model *(*create)(const json_t *config, const char *where, const vt_model_opts *opts,
                      vt_params *ps, char *err, size_t err_len);
  void (*destroy)(vt_model *m);
  /* Fills the allocated parameters with the model's initialisation from rng (through the
   * store's backend: the weights may live on a GPU). Returns 0 or -1 with err. */
  int (*init_weights)(vt_model *m, vt_params *ps, vt_rng *rng, char *err, size_t err_len);
  /* The config as written into checkpoints (config.json): create() reads it back. New ref. */
  json_t *(*config_json)(const vt_model *m);
  /* Loss terms of phase st->phase for batch b. Returns 0, or -1 (the ctx error says why). */
  int (*loss)(vt_model *m, vt_ctx *ctx, const vt_batch *b, const vt_model_step *st,
              vt_model_loss *out);
  /* Eval metrics of batch b (grad is off): fills out[0..*n). Returns 0 or -1 (ctx error). */
  int (*eval)(vt_model *m, vt_ctx *ctx, const vt_batch *b, vt_metric *out, int *n);
  /* One line for `vita info` (architecture in words), into buf. */
  void (*describe)(const vt_model *m, char *buf, size_t len);

  /* HF import/export, the per-model part (the model-neutral part is checkpoints/hf_convert.h):
   * a tensor of a source checkpoint that is not a parameter but is no error either (HF's
   * rotary inv_freq, the lm_head of a tied model); NULL: none are. */
  bool (*hf_ignored)(const vt_model *m, const char *tensor_name);
  /* A parameter the model registers but does not own (the speech decoder's frozen copy of the
   * LLM's input embeddings, which another model exports): not written by an export, not
   * expected by an import. NULL: the model owns every parameter. */
  bool (*hf_external)(const vt_model *m, const char *param_name);
  /* The config.json of an export from the model's config and the source's (token ids and
   * the like are kept from src, which may be NULL); dtype names the weights written. */
  json_t *(*hf_config)(const vt_model *m, const json_t *src, vt_dtype dtype);

  /* Cost of one micro-batch of shape s (zeros filled with the model's defaults, written back)
   * as parts[0..n), n <= VT_MODEL_MAX_COST_PARTS, for `vita plan`. Returns n, or 0 when the
   * model gives no estimate. NULL: none. */
  int (*cost)(const vt_model *m, vt_model_shape *s, vt_model_cost *parts);

  /* Audio spliced into the token sequence: the positions one <audio> clip of `frames` fbank
   * frames fills (the batch builder expands each placeholder into that many, labels ignored,
   * and gives each clip a VT_MEDIA_FBANK item with its span). NULL: a model that takes fbank
   * takes each row's first clip whole (stage 2.1a), with no span. */
  int64_t (*audio_positions)(const vt_model *m, int64_t frames);
} vt_model_ops;

/* The common head of every model (the first member of its own struct), filled by create. */
struct vt_model {
  const vt_model_ops *ops;
  int64_t vocab_size;   /* a batch's token ids lie in [0, vocab_size); 0: the model reads none */
  unsigned media;       /* VT_MEDIA_BIT of each medium it consumes; others are skipped samples */
  int64_t image_tokens; /* positions one image tile (or video frame) fills; 0: none */
  int32_t image_sep;    /* the token after each tile's span (Qwen2's "\n", 198) */
  int wave_rate;        /* samples a second of the VT_MEDIA_WAVE it takes; 0: any */
  vt_model_phase phases[VT_MODEL_MAX_PHASES];
  int n_phases;
  vt_model_term terms[VT_MODEL_MAX_TERMS];
  int n_terms;
};

/* ---- the registry ---- */

/* The model registered under name, or NULL. */
const vt_model_ops *vt_model_find(const char *name);
/* The model whose model_types hold config's "model_type" (or whose name it is), or NULL with
 * err naming the type found and the models known. */
const vt_model_ops *vt_model_for_config(const json_t *config, const char *where, char *err,
                                        size_t err_len);
/* Adds a model (tests; later plug-ins). Returns 0, or -1 when the name is taken or the
 * registry is full. */
int vt_model_register(const vt_model_ops *ops);
/* "qwen2, tts_decoder" into buf: the names known, for messages. */
const char *vt_model_names(char *buf, size_t len);

/* ---- helpers for models and callers ---- */

/* Creates a model through ops after checking what every model must fill (phases, terms).
 * ops NULL: found from config's model_type. Returns NULL with err. */
vt_model *vt_model_create(const vt_model_ops *ops, const json_t *config, const char *where,
                          const vt_model_opts *opts, vt_params *ps, char *err, size_t err_len);
void vt_model_destroy(vt_model *m);
/* Index of the term or phase called name, or -1. */
int vt_model_term_index(const vt_model *m, const char *name);
int vt_model_phase_index(const vt_model *m, const char *name);
/* Whether a parameter name is one phase p updates (its globs). */
bool vt_model_phase_has(const vt_model *m, int p, const char *param_name);

/* ---- the pieces models share (model/NAME_model.c) ---- */

/* A model's own struct of size bytes, zeroed (its create's first step), or NULL with err
 * "NAME: out of memory". */
void *vt_model_alloc(size_t size, const char *name, char *err, size_t err_len);
/* A head with one phase, "main" over the globs params, and one loss term of it (LM stages,
 * the speech decoder, the audio encoder). */
void vt_model_one_phase(vt_model *m, const char *params, const char *term);
/* The torch dtype name of an export's weights: "bfloat16", "float16" or "float32". */
const char *vt_model_torch_dtype(vt_dtype dtype);
/* Copies src's token ids (bos_token_id, eos_token_id, pad_token_id; where set and not null)
 * into out, an export's config.json. src NULL: nothing. */
void vt_model_keep_token_ids(json_t *out, const json_t *src);

/* Rows of logits on the host at once in vt_model_argmax_rows. */
#define VT_MODEL_ARGMAX_ROWS 256
/* Eval argmax: best[r] = argmax over k of logits[r, k] (the first of equal maxima) for the
 * R rows of x [R, *], VT_MODEL_ARGMAX_ROWS rows at a time. head non-NULL: x holds hidden
 * states [R, H] and the logits of a chunk are x[r0:r1] head^T (an LM head [V, H]); NULL: x
 * holds the logits. Returns 0, or -1 with the ctx error (op names the caller in it). */
int vt_model_argmax_rows(vt_ctx *ctx, vt_tensor *x, vt_tensor *head, int32_t *best, const char *op);

#endif
