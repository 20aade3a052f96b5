/* The VITA-1.5 release layout (`vita export` / `vita import` of the vita model): the LLM,
 * vision tower, projector and (when exported) audio encoder + adapter as bf16 shards under the
 * release names with a config.json the release's loader reads; the side directories that
 * loader opens (an InternViT directory for mm_vision_tower, an audio-encoder directory with
 * train.yaml and global_cmvn for mm_audio_encoder); the speech decoder in
 * vita_tts_ckpt/decoder with its model.json, the codec in vita_tts_ckpt/codec. The source may be a
 * curriculum run, a stage run, a checkpoint or a model directory (checkpoints/release.h finds the
 * weights). Sources of other models (a plain Qwen2) take the plain HF path of stages/stage_hf.h. */
#ifndef VT_STAGE_RELEASE_H
#define VT_STAGE_RELEASE_H

#include <stdbool.h>

#include "checkpoints/hf_convert.h"

#define STAGE_RELEASE_VISION_DIR "InternViT-300M-448px"
#define STAGE_RELEASE_AUDIO_DIR "audio-encoder"
#define STAGE_RELEASE_TTS_DIR "vita_tts_ckpt/decoder"
#define STAGE_RELEASE_CODEC_DIR "vita_tts_ckpt/codec"
/* The codec's trained parts (a 3.1 stage trained the codec when one of them has optimizer
 * state) and its discriminators, which inference does not use and the release leaves out. */
#define STAGE_RELEASE_CODEC_GLOBS "generator.*,quantizer.*,encoder.*"
#define STAGE_RELEASE_DISC_GLOBS "mpd.*,msd.*,mstftd.*"

/* The parameters of each part of the vita model. The LLM and the vision part are always
 * exported; audio, tts and codec only when the source trained them or when asked. */
#define STAGE_RELEASE_AUDIO_GLOBS "model.audio_encoder.*"
/* The modality head, a training aid the release does not have: never exported. */
#define STAGE_RELEASE_HEAD_GLOBS "model.predict_head.*"

typedef struct {
  hf_io_opts io;     /* dtype (bf16 by default), shard size, tokenizer directory */
  const char *parts; /* optional parts asked for: "audio", "tts" (comma-separated); NULL none */
  bool all;          /* every part, trained or not */
  const char *tts;   /* the speech decoder's source; NULL: the latest tts stage of the source */
  const char *codec; /* the codec's source; NULL: the latest ticodec stage of the source */
} stage_release_opts;

typedef struct {
  bool release;                     /* a VITA release layout (false: a plain HF export/import) */
  hf_io_stats main;                 /* the LLM + encoders' weights */
  hf_io_stats tts;                  /* the speech decoder's, when written */
  hf_io_stats codec;                /* the codec's (generator, quantizer, encoder), when written */
  bool audio, tts_done, codec_done; /* parts written */
  char notes[1024];                 /* parts left out and why, one per line, for the console */
} stage_release_stats;

/* src (see above) -> out_dir, written as out_dir.part and renamed (out_dir must not exist or
 * be empty). Returns 0 (stats filled) or -1 with err. */
int stage_release_export(const char *src, const char *out_dir, const stage_release_opts *opts,
                         stage_release_stats *stats, char *err, size_t err_len);

/* A release directory (ours or the public one: a config.json without "vision_config" reads
 * the tower's sizes from its mm_vision_tower directory when one is found, else InternViT-300M's)
 * -> our layout: OUT/model.safetensors (f32 by default) + config.json with vision_config,
 * tokenizer files, and the speech decoder and the codec as OUT/vita_tts_ckpt/{decoder,codec}:
 * from safetensors (config.json + weights), or from the public release's model.json + final.pt
 * (a torch pickle, read by checkpoints/torch_pt.h; the decoder's LLM2TTSCodecAR arguments mapped
 * to our config). Other models' directories take stage_hf_import. Returns 0 or -1 with err. */
int stage_release_import(const char *src, const char *out_dir, const hf_io_opts *io,
                         stage_release_stats *stats, char *err, size_t err_len);

#endif
