/* The codec in VITA-1.5's release layout (DESIGN.md §8): vita_tts_ckpt/codec/ holds model.json
 * (TiCodec's config keys) and the weights of the encoder, quantizer and generator under
 * TiCodec's state-dict names (weight-normed convolutions as weight_g / weight_v; the public
 * release ships them as a torch pickle, final.pt, we as model.safetensors). Export writes that
 * directory from a codec checkpoint (a `vita train` checkpoint of stage 3.1 or `vita codec
 * init`'s output); import reads either form back into a checkpoint directory (config.json +
 * model.safetensors) whose discriminators, absent from a release, are freshly initialised from a
 * seed. The mapping of the public form (model.json -> our config, which of final.pt's tensors
 * are the codec's) is here, and the release import of stages/stage_release.h uses it too. */
#ifndef VT_STAGE_CODEC_H
#define VT_STAGE_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes out_dir/model.json and out_dir/model.safetensors (f32) from the codec checkpoint at
 * src (a directory with config.json and model.safetensors). *n_tensors: tensors written (may
 * be NULL). Returns 0, or -1 with err. */
int stage_codec_export(const char *src, const char *out_dir, int *n_tensors, char *err,
                       size_t err_len);

typedef struct {
  int n_tensors;  /* release tensors loaded */
  bool torch;     /* the weights came from a torch pickle */
  int n_skipped;  /* of the pickle's tensors, those that are not the codec's (see below) */
  char src[4200]; /* the weights file or directory read */
} stage_codec_import_stats;

/* Reads a release codec into out_dir (config.json + model.safetensors), the discriminators
 * initialised from seed. src is
 *  - a directory with model.json and model.safetensors (or a sharded index): our export;
 *  - a directory with model.json and final.pt: the public release's torch pickle
 *    (checkpoints/torch_pt.h; safetensors win when a directory has both);
 *  - a file: *.safetensors or *.safetensors.index.json, else a torch pickle, with model.json
 *    beside it.
 * Every release tensor must be there with its shape; other tensors are ignored. stats may be
 * NULL. Returns 0, or -1 with err naming the file and the field or tensor; nothing is left in
 * out_dir then (created only when it did not exist, and removed again). */
int stage_codec_import(const char *src, const char *out_dir, uint64_t seed,
                       stage_codec_import_stats *stats, char *err, size_t err_len);

/* Reads the public release's model.json at path (TiCodec's hyper-parameters, which are our
 * ticodec config's keys; the model ignores the training ones) as our config: the same object
 * with model_type "ticodec" when it has none. Returns a new reference, or NULL with err naming
 * the file. */
json_t *stage_codec_read_config(const char *path, char *err, size_t err_len);
/* Whether a tensor of the release's final.pt (named as torch_pt_write_safetensors writes it) is
 * the codec's: the generator, quantizer and encoder (codec_model_release_param), without
 * BatchNorm's num_batches_tracked (our codec keeps no step counter). A torch_pt_select_fn; arg
 * is unused. */
bool stage_codec_torch_tensor(const char *name, void *arg);

#endif
