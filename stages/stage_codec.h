/* The codec in VITA-1.5's release layout (DESIGN.md §8): vita_tts_ckpt/codec/ holds model.json
 * (TiCodec's config keys) and the weights of the encoder, quantizer and generator under
 * TiCodec's state-dict names (weight-normed convolutions as weight_g / weight_v; the release
 * ships them as a torch pickle, we as model.safetensors). Export writes that directory from a
 * codec checkpoint (a `vita train` checkpoint of stage 3.1 or `vita codec init`'s output);
 * import reads it back into a checkpoint directory (config.json + model.safetensors) whose
 * discriminators, absent from a release, are freshly initialised from a seed. The release
 * helper's `vita export` / `vita import` call these for the codec part. */
#ifndef VT_STAGE_CODEC_H
#define VT_STAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* Writes out_dir/model.json and out_dir/model.safetensors (f32) from the codec checkpoint at
 * src (a directory with config.json and model.safetensors). *n_tensors: tensors written (may
 * be NULL). Returns 0, or -1 with err. */
int stage_codec_export(const char *src, const char *out_dir, int *n_tensors, char *err,
                       size_t err_len);
/* Reads a release codec directory (model.json + model.safetensors; every release tensor must
 * be there with its shape, other tensors are ignored) into out_dir (config.json +
 * model.safetensors), the discriminators initialised from seed. Returns 0, or -1 with err. */
int stage_codec_import(const char *src, const char *out_dir, uint64_t seed, int *n_tensors,
                       char *err, size_t err_len);

#endif
