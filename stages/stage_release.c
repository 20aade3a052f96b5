/* The VITA-1.5 release layout over the model interface; see stage_release.h. */
#include "stages/stage_release.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/fmt.h"
#include "checkpoints/ckpt.h"
#include "checkpoints/release.h"
#include "checkpoints/torch_pt.h"
#include "data/yamlcfg.h"
#include "stages/stage_codec.h"
#include "stages/stage_hf.h"
#include "stages/stage_model.h"

#define MARKER ".vita-release-partial"
#define VITA_TOWER_PREFIX "model.vision_tower.vision_tower."
#define AUDIO_PREFIX "model.audio_encoder."

static const char *const vita_types[] = {"vita-Qwen2", NULL};
static const char *const tts_types[] = {"tts_decoder", "LLM2TTSCodecAR", NULL};
static const char *const codec_types[] = {"ticodec", NULL};
/* stages that train the audio encoder: the vita model's, and stage 2.1a's audio_ctc model */
static const char *const audio_types[] = {"vita-Qwen2", "vita_audio_encoder", NULL};

static bool is_type(const char *t, const char *const *types) {
  for (int i = 0; types[i]; i++)
    if (!strcmp(t, types[i])) return true;
  return false;
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int dir_is_empty(const char *p) {
  int n = 0;
  DIR *d = opendir(p);
  if (!d) return -1;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n == 0;
}

/* "a,b" holds word */
static bool list_has(const char *list, const char *word) {
  size_t n = strlen(word);
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    if ((size_t)(e - p) == n && !strncmp(p, word, n)) return true;
    p = e;
  }
  return false;
}

static int check_parts(const char *list, char *err, size_t err_len) {
  static const char *const known[] = {"llm", "vision", "audio", "tts", "codec", NULL};
  for (const char *p = list; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    bool ok = e == p;
    for (int k = 0; known[k] && !ok; k++)
      ok = (size_t)(e - p) == strlen(known[k]) && !strncmp(p, known[k], (size_t)(e - p));
    if (!ok) {
      vt_seterr(err, err_len,
                "--parts: unknown part \"%.*s\": expected llm, vision, audio, tts, codec",
                (int)(e - p), p);
      return -1;
    }
    p = e;
  }
  return 0;
}

/* Whether the model of config.json at dir registers a parameter matching globs. */
static int model_has(const char *dir, const char *globs, char *err, size_t err_len) {
  char path[RELEASE_PATH + 16];
  snprintf(path, sizeof path, "%s/config.json", dir);
  vt_params ps;
  if (vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0})) {
    vt_seterr(err, err_len, "cannot create a CPU parameter store");
    return -1;
  }
  vt_model *m = stage_model_open(NULL, path, NULL, &ps, err, err_len);
  int has = m ? 0 : -1;
  for (int i = 0; m && i < ps.n && !has; i++) has = stage_globs_match(globs, ps.items[i]->name);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return has;
}

/* The staging directory out.part: a stale one is removed when it carries our marker. */
static int begin_stage(const char *out, char *part, size_t len, char *err, size_t err_len) {
  if (snprintf(part, len, "%s.part", out) >= (int)len) {
    vt_seterr(err, err_len, "%s: path too long", out);
    return -1;
  }
  if (exists(out) && (!is_dir(out) || dir_is_empty(out) != 1)) {
    vt_seterr(err, err_len,
              "%s: already exists and is not an empty directory; remove it or choose another "
              "output",
              out);
    return -1;
  }
  if (exists(part)) {
    char m[RELEASE_PATH + 64];
    snprintf(m, sizeof m, "%s/%s", part, MARKER);
    if (!exists(m)) {
      vt_seterr(err, err_len, "%s: exists and is not a partial output of ours; remove it", part);
      return -1;
    }
    if (ckpt_remove_tree(part, err, err_len)) return -1;
  }
  return 0;
}

static int mark(const char *part, char *err, size_t err_len) {
  char m[RELEASE_PATH + 64];
  snprintf(m, sizeof m, "%s/%s", part, MARKER);
  return release_write_text(m, "vita release being written\n", err, err_len);
}

static int finish_stage(const char *part, const char *out, char *err, size_t err_len) {
  char m[RELEASE_PATH + 64];
  snprintf(m, sizeof m, "%s/%s", part, MARKER);
  if (unlink(m)) {
    vt_seterr(err, err_len, "%s: cannot remove: %s", m, strerror(errno));
    return -1;
  }
  if (exists(out) && rmdir(out)) {
    vt_seterr(err, err_len, "%s: cannot replace: %s", out, strerror(errno));
    return -1;
  }
  if (rename(part, out)) {
    vt_seterr(err, err_len, "%s: cannot rename %s into place: %s", out, part, strerror(errno));
    return -1;
  }
  return 0;
}

/* The absolute path the side directory `name` will have once the output is in place (the
 * release's loader opens mm_vision_tower and mm_audio_encoder as paths). */
static json_t *final_path(const char *out, const char *name) {
  char cwd[RELEASE_PATH], buf[2 * RELEASE_PATH + 256];
  if (out[0] == '/' || !getcwd(cwd, sizeof cwd))
    snprintf(buf, sizeof buf, "%s/%s", out, name);
  else
    snprintf(buf, sizeof buf, "%s/%s/%s", cwd, out[0] == '.' && out[1] == '/' ? out + 2 : out,
             name);
  return json_string(buf);
}

/* mm_vision_tower: the tower's config.json, CLIPImageProcessor settings and weights. */
static int write_vision_dir(const char *part, const char *src, json_t *cfg, vt_dtype dtype,
                            char *err, size_t err_len) {
  char p[RELEASE_PATH + 128];
  json_t *vc = json_object_get(cfg, "vision_config");
  json_t *tc = vc ? json_deep_copy(vc) : json_object();
  json_object_set_new(tc, "architectures", json_pack("[s]", "InternVisionModel"));
  json_object_set_new(tc, "model_type", json_string("intern_vit_6b"));
  json_object_set_new(tc, "torch_dtype",
                      json_string(dtype == VT_BF16  ? "bfloat16"
                                  : dtype == VT_F16 ? "float16"
                                                    : "float32"));
  json_t *size = json_object_get(tc, "image_size");
  json_int_t px = json_is_integer(size) ? json_integer_value(size) : 448;
  snprintf(p, sizeof p, "%s/%s/config.json", part, STAGE_RELEASE_VISION_DIR);
  int rc = release_write_json(p, tc, err, err_len);
  json_decref(tc);
  if (rc) return -1;
  /* the per-tile preprocessing of DESIGN §4: shortest edge to image_size, bicubic (3), centre
   * crop, 1/255, ImageNet mean and std */
  json_t *pp = json_pack(
      "{s:{s:I, s:I}, s:b, s:b, s:b, s:b, s:b, s:[f,f,f], s:[f,f,f], s:i, s:f, s:{s:I}, s:s}",
      "crop_size", "height", px, "width", px, "do_center_crop", 1, "do_convert_rgb", 1,
      "do_normalize", 1, "do_rescale", 1, "do_resize", 1, "image_mean", 0.485, 0.456, 0.406,
      "image_std", 0.229, 0.224, 0.225, "resample", 3, "rescale_factor", 1.0 / 255.0, "size",
      "shortest_edge", px, "image_processor_type", "CLIPImageProcessor");
  snprintf(p, sizeof p, "%s/%s/preprocessor_config.json", part, STAGE_RELEASE_VISION_DIR);
  rc = release_write_json(p, pp, err, err_len);
  json_decref(pp);
  if (rc) return -1;
  snprintf(p, sizeof p, "%s/%s/model.safetensors", part, STAGE_RELEASE_VISION_DIR);
  return release_copy_renamed(src, VITA_TOWER_PREFIX, p, dtype, NULL, err, err_len);
}

/* mm_audio_encoder: train.yaml in the release's keys, global_cmvn from the CMVN buffers, and
 * the encoder + adapter weights named as the release's audioEncoder module has them. */
static json_int_t int_of(const json_t *o, const char *key, json_int_t dflt) {
  const json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int write_audio_dir(const char *part, const char *src, const json_t *cfg, vt_dtype dtype,
                           char *err, size_t err_len) {
  const json_t *ac = json_object_get(cfg, "audio_config");
  json_int_t mels = int_of(ac, "n_mels", 80), hid = int_of(ac, "hidden_size", 1024);
  json_int_t llm = int_of(cfg, "hidden_size", 3584);
  const char *mode = json_string_value(json_object_get(ac, "chunk_mode"));
  const json_t *dr = json_object_get(ac, "dropout");
  double drop = json_is_number(dr) ? json_number_value(dr) : 0.1;
  bool dyn = !mode || !strcmp(mode, "dynamic");
  json_int_t chunk = mode && !strcmp(mode, "static") ? int_of(ac, "chunk_size", 4) : -1;
  /* the release's whaleEncoder reads its sizes from train.yaml: a subsampling component then a
   * transformer with the relative-position attention; audioEncoder's model_conf the adapter */
  char *y = malloc(8192);
  if (!y) {
    vt_seterr(err, err_len, "out of memory");
    return -1;
  }
  snprintf(
      y, 8192,
      "# The audio encoder of this export in the layout of VITA-1.5's audio-encoder directory\n"
      "# (written by vita export; its weights are model.safetensors here and in the release\n"
      "# shards as model.audio_encoder.*; global_cmvn holds the CMVN of the encoder's buffers).\n"
      "input_dim: %lld\n"
      "is_json_cmvn: true\n"
      "cmvn_file: global_cmvn\n"
      "encoder_conf:\n"
      "  overview_conf:\n"
      "    encoder-input-dim: %lld\n"
      "    encoder-output-dim: %lld\n"
      "    encoder-layer-config: subsampling-transformer\n"
      "  para_conf:\n"
      "    subsampling:\n"
      "      subsampling-rate: 4\n"
      "      subsampling-input-dim: %lld\n"
      "      subsampling-output-dim: %lld\n"
      "      subsampling-dropout-rate: %g\n"
      "    transformer:\n"
      "      transformer-input-dim: %lld\n"
      "      transformer-output-dim: %lld\n"
      "      transformer-attention-dim: %lld\n"
      "      transformer-attention-heads: %lld\n"
      "      transformer-linear-units: %lld\n"
      "      transformer-num-blocks: %lld\n"
      "      transformer-dropout-rate: %g\n"
      "      transformer-attention-dropout-rate: 0.0\n"
      "      transformer-positional-dropout-rate: %g\n"
      "      transformer-input-layer: linear\n"
      "      transformer-pos-enc-class: rel-enc\n"
      "      transformer-normalize-before: true\n"
      "      transformer-concat-after: false\n"
      "      transformer-positionwise-layer-type: linear\n"
      "      transformer-positionwise-conv-kernel_size: 1\n"
      "      transformer-chunk_size: %lld\n"
      "      transformer-left_chunks: %lld\n"
      "      transformer-dynamic-chunks: %s\n"
      "model_conf:\n"
      "  enc_out_dim: %lld\n"
      "  llm_embed_dim: %lld\n"
      "  kernel_size: 5\n"
      "  adpter_type: subsampling\n"
      "  activation_func: gelu\n"
      "  norm: layer\n"
      "  llm_path: null\n"
      "  freeze_llm: true\n"
      "  add_audio_bos_eos: false\n"
      "  audio_prompt_finetune: %s\n"
      "  audio_prompt_num: %lld\n"
      "dataset_conf:\n"
      "  resample_conf:\n"
      "    resample_rate: 16000\n"
      "  fbank_conf:\n"
      "    num_mel_bins: %lld\n"
      "    frame_length: 25\n"
      "    frame_shift: 10\n"
      "    dither: 0.0\n",
      (long long)mels, (long long)mels, (long long)hid, (long long)mels, (long long)hid, drop,
      (long long)hid, (long long)hid, (long long)hid,
      (long long)int_of(ac, "num_attention_heads", 16),
      (long long)int_of(ac, "intermediate_size", 4096),
      (long long)int_of(ac, "num_hidden_layers", 24), drop, drop, (long long)chunk,
      (long long)int_of(ac, "left_chunks", -1), dyn ? "true" : "false", (long long)hid,
      (long long)llm, int_of(ac, "audio_prompt_num", 0) > 0 ? "true" : "false",
      (long long)int_of(ac, "audio_prompt_num", 0), (long long)mels);
  char p[RELEASE_PATH + 128];
  snprintf(p, sizeof p, "%s/%s/train.yaml", part, STAGE_RELEASE_AUDIO_DIR);
  int rc = release_write_text(p, y, err, err_len);
  free(y);
  if (rc) return -1;
  float *mean = malloc(sizeof(float) * (size_t)mels), *istd = malloc(sizeof(float) * (size_t)mels);
  rc = !mean || !istd ? -1 : 0;
  if (rc) vt_seterr(err, err_len, "out of memory");
  if (!rc)
    rc = release_read_f32(src, AUDIO_PREFIX "encoder.global_cmvn.mean", mean, mels, err, err_len);
  if (!rc)
    rc = release_read_f32(src, AUDIO_PREFIX "encoder.global_cmvn.istd", istd, mels, err, err_len);
  snprintf(p, sizeof p, "%s/%s/global_cmvn", part, STAGE_RELEASE_AUDIO_DIR);
  if (!rc) rc = release_write_cmvn(p, mean, istd, (int)mels, err, err_len);
  free(mean), free(istd);
  if (rc) return -1;
  snprintf(p, sizeof p, "%s/%s/model.safetensors", part, STAGE_RELEASE_AUDIO_DIR);
  return release_copy_renamed(src, AUDIO_PREFIX, p, dtype, NULL, err, err_len);
}

static void note(stage_release_stats *st, const char *fmt, const char *a) {
  size_t l = strlen(st->notes);
  snprintf(st->notes + l, sizeof st->notes - l, fmt, a);
}

/* A side model (speech decoder, codec): from `given` (its flag's directory), else the latest
 * stage of that model in S when it trained or the part is asked for. */
static int pick_side(const release_sources *S, const char *src, const char *given, const char *part,
                     const char *what, const char *const *types, const char *globs,
                     release_sources *G, stage_release_opts o, stage_release_stats *st,
                     const release_src **out, char *err, size_t err_len) {
  bool ask = o.all || list_has(o.parts, part);
  *out = NULL;
  if (given) {
    if (release_find_sources(given, G, err, err_len)) return -1;
    *out = release_last_of(G, types);
    if (!*out) {
      vt_seterr(err, err_len, "--%s %s: no %s there (model %s)", part, given, what,
                G->src[G->n - 1].model_type);
      return -1;
    }
    return 0;
  }
  *out = release_last_of(S, types);
  int tr = *out ? release_trained(S, types, globs, err, err_len) : 0;
  if (tr < 0) return -1;
  if (*out && !tr && !ask) {
    size_t l = strlen(st->notes);
    snprintf(st->notes + l, sizeof st->notes - l,
             "%s not exported: no stage of %s trained it (--parts %s)\n", what, src, part);
    *out = NULL;
  }
  if (list_has(o.parts, part) && !*out) {
    vt_seterr(err, err_len, "%s: --parts %s: no %s (no %s stage there); give --%s DIR", src, part,
              what, types[0], part);
    return -1;
  }
  return 0;
}

int stage_release_export(const char *src, const char *out, const stage_release_opts *opts,
                         stage_release_stats *st, char *err, size_t err_len) {
  memset(st, 0, sizeof *st);
  stage_release_opts o = *opts;
  if (check_parts(o.parts, err, err_len)) return -1;
  static release_sources S, T, C; /* large: not on the stack */
  if (release_find_sources(src, &S, err, err_len)) return -1;
  const release_src *main = release_last_of(&S, vita_types);
  if (!main) {
    if (o.parts || o.all || o.tts || o.codec) {
      vt_seterr(err, err_len, "%s: --parts, --all, --tts and --codec need a vita model (found %s)",
                src, S.src[S.n - 1].model_type);
      return -1;
    }
    /* another model: its plain HF export (of a curriculum, the latest stage of a main model) */
    const release_src *last = &S.src[S.n - 1];
    for (int i = S.n - 1; i >= 0; i--)
      if (!is_type(S.src[i].model_type, tts_types) && !is_type(S.src[i].model_type, codec_types)) {
        last = &S.src[i];
        break;
      }
    return stage_hf_export(S.n > 1 ? last->dir : src, out, &o.io, &st->main, err, err_len);
  }
  st->release = true;
  bool ask_audio = o.all || list_has(o.parts, "audio");
  int has_audio = model_has(main->dir, STAGE_RELEASE_AUDIO_GLOBS, err, err_len);
  if (has_audio < 0) return -1;
  int trained =
      has_audio ? release_trained(&S, audio_types, STAGE_RELEASE_AUDIO_GLOBS, err, err_len) : 0;
  if (trained < 0) return -1;
  if (list_has(o.parts, "audio") && !has_audio) {
    vt_seterr(err, err_len, "%s: --parts audio: the model has no audio encoder", main->dir);
    return -1;
  }
  st->audio = has_audio && (ask_audio || trained);
  if (has_audio && !st->audio)
    note(st, "audio encoder + adapter not exported: no stage of %s trained them (--parts audio)\n",
         src);
  /* the speech decoder and the codec: --tts / --codec, else the latest such stage */
  const release_src *tts = NULL, *codec = NULL;
  if (pick_side(&S, src, o.tts, "tts", "speech decoder", tts_types, "*", &T, o, st, &tts, err,
                err_len) ||
      pick_side(&S, src, o.codec, "codec", "codec", codec_types, STAGE_RELEASE_CODEC_GLOBS, &C, o,
                st, &codec, err, err_len))
    return -1;
  st->codec_done = codec != NULL;
  st->tts_done = tts != NULL;

  char part[RELEASE_PATH + 8], p[RELEASE_PATH + 128];
  if (begin_stage(out, part, sizeof part, err, err_len)) return -1;
  int rc = -1;
  json_t *cfg = NULL;
  int has_head = model_has(main->dir, STAGE_RELEASE_HEAD_GLOBS, err, err_len);
  if (has_head < 0) return -1;
  if (has_head)
    note(st, "%s", "modality head not exported (the release has none; it is a training aid)\n");
  const char *excl =
      st->audio ? STAGE_RELEASE_HEAD_GLOBS : STAGE_RELEASE_AUDIO_GLOBS "," STAGE_RELEASE_HEAD_GLOBS;
  if (stage_hf_convert_sel(main->dir, part, &o.io, true, excl, NULL, &st->main, err, err_len))
    return -1;
  if (mark(part, err, err_len)) goto done;
  snprintf(p, sizeof p, "%s/config.json", part);
  if (!(cfg = release_read_json(p, err, err_len))) goto done;
  if (write_vision_dir(part, main->dir, cfg, o.io.dtype, err, err_len)) goto done;
  json_object_set_new(cfg, "mm_vision_tower", final_path(out, STAGE_RELEASE_VISION_DIR));
  if (st->audio) {
    if (write_audio_dir(part, main->dir, cfg, o.io.dtype, err, err_len)) goto done;
    json_object_set_new(cfg, "mm_audio_encoder", final_path(out, STAGE_RELEASE_AUDIO_DIR));
  } else {
    json_object_del(cfg, "mm_audio_encoder");
    json_object_del(cfg, "audio_config");
  }
  json_object_del(cfg, "modality_head");
  if (!json_object_get(cfg, "image_aspect_ratio"))
    json_object_set_new(cfg, "image_aspect_ratio", json_string("square"));
  if (release_write_json(p, cfg, err, err_len)) goto done;
  if (tts) {
    hf_io_opts to = o.io;
    to.tokenizer_dir = NULL;
    snprintf(p, sizeof p, "%s/%s", part, STAGE_RELEASE_TTS_DIR);
    if (stage_hf_convert_sel(tts->dir, p, &to, true, NULL, NULL, &st->tts, err, err_len)) goto done;
    snprintf(p, sizeof p, "%s/%s/config.json", part, STAGE_RELEASE_TTS_DIR);
    json_t *tc = release_read_json(p, err, err_len);
    if (!tc) goto done;
    json_int_t idim = json_integer_value(json_object_get(tc, "idim"));
    json_int_t odim = json_integer_value(json_object_get(tc, "odim"));
    snprintf(p, sizeof p, "%s/%s/model.json", part, STAGE_RELEASE_TTS_DIR);
    int mrc = release_write_model_json(p, idim, odim, tc, err, err_len);
    json_decref(tc);
    if (mrc) goto done;
  }
  if (codec) { /* inference needs the generator, quantizer and encoder, not the discriminators */
    hf_io_opts co = o.io;
    co.tokenizer_dir = NULL;
    snprintf(p, sizeof p, "%s/%s", part, STAGE_RELEASE_CODEC_DIR);
    if (stage_hf_convert_sel(codec->dir, p, &co, true, STAGE_RELEASE_DISC_GLOBS, NULL, &st->codec,
                             err, err_len))
      goto done;
    snprintf(p, sizeof p, "%s/%s/config.json", part, STAGE_RELEASE_CODEC_DIR);
    json_t *cc = release_read_json(p, err, err_len);
    if (!cc) goto done;
    snprintf(p, sizeof p, "%s/%s/model.json", part, STAGE_RELEASE_CODEC_DIR);
    int mrc = release_write_json(p, cc, err, err_len);
    json_decref(cc);
    if (mrc) goto done;
  }
  rc = finish_stage(part, out, err, err_len);
done:
  json_decref(cfg);
  if (rc) {
    char why[256];
    ckpt_remove_tree(part, why, sizeof why);
  }
  return rc;
}

/* The tower's sizes of a public release (no vision_config): from its mm_vision_tower directory
 * when found (the path as given, or its last component inside the release). */
static int complete_vision(const char *src, json_t *cfg, stage_release_stats *st, char *err,
                           size_t err_len) {
  if (json_object_get(cfg, "vision_config")) return 0;
  const char *v = json_string_value(json_object_get(cfg, "mm_vision_tower"));
  char c[3][RELEASE_PATH + 300];
  int n = 0;
  if (v) {
    const char *base = strrchr(v, '/');
    base = base ? base + 1 : v;
    snprintf(c[n++], sizeof c[0], "%s/config.json", v);
    snprintf(c[n++], sizeof c[0], "%s/%s/config.json", src, base);
  }
  snprintf(c[n++], sizeof c[0], "%s/%s/config.json", src, STAGE_RELEASE_VISION_DIR);
  for (int i = 0; i < n; i++) {
    if (!exists(c[i])) continue;
    json_t *vc = release_read_json(c[i], err, err_len);
    if (!vc) return -1;
    json_object_set_new(cfg, "vision_config", vc);
    return 0;
  }
  note(st, "%s: no mm_vision_tower directory found: the tower is InternViT-300M-448px's\n", src);
  return 0;
}

/* A public release names an audio encoder (mm_audio_encoder) but has no audio_config: the
 * sizes come from that directory's train.yaml (found by its path, its last component inside the
 * release, or ours), else they are the full-size encoder's. */
static long long yaml_int(ycfg *y, yaml_node_t *map, const char *key, long long dflt) {
  long long v;
  char e[256];
  yaml_node_t *n = ycfg_get(y, map, key);
  return n && !ycfg_int(y, n, key, &v, e, sizeof e) ? v : dflt;
}

static bool yaml_bool(ycfg *y, yaml_node_t *map, const char *key, bool dflt) {
  bool v;
  char e[256];
  yaml_node_t *n = ycfg_get(y, map, key);
  return n && !ycfg_bool(y, n, key, &v, e, sizeof e) ? v : dflt;
}

static int complete_audio(const char *src, json_t *cfg, stage_release_stats *st, char *err,
                          size_t err_len) {
  const char *a = json_string_value(json_object_get(cfg, "mm_audio_encoder"));
  if (!a || json_object_get(cfg, "audio_config")) return 0;
  const char *base = strrchr(a, '/');
  base = base ? base + 1 : a;
  char c[3][RELEASE_PATH + 300];
  snprintf(c[0], sizeof c[0], "%s/train.yaml", a);
  snprintf(c[1], sizeof c[0], "%s/%s/train.yaml", src, base);
  snprintf(c[2], sizeof c[0], "%s/%s/train.yaml", src, STAGE_RELEASE_AUDIO_DIR);
  json_t *ac = json_object();
  json_object_set_new(cfg, "audio_config", ac);
  for (int i = 0; i < 3; i++) {
    if (!exists(c[i])) continue;
    ycfg y;
    if (ycfg_load(&y, c[i], err, err_len)) return -1;
    yaml_node_t *r = ycfg_root(&y);
    yaml_node_t *tr =
        ycfg_get(&y, ycfg_get(&y, ycfg_get(&y, r, "encoder_conf"), "para_conf"), "transformer");
    yaml_node_t *mc = ycfg_get(&y, r, "model_conf");
    long long hid = yaml_int(&y, tr, "transformer-attention-dim", -1);
    if (!tr || hid <= 0) {
      ycfg_free(&y);
      vt_seterr(err, err_len,
                "%s: field \"encoder_conf.para_conf.transformer.transformer-attention-dim\": "
                "expected a positive integer (the encoder's width)",
                c[i]);
      return -1;
    }
    json_object_set_new(ac, "n_mels", json_integer(yaml_int(&y, r, "input_dim", 80)));
    json_object_set_new(ac, "hidden_size", json_integer(hid));
    json_object_set_new(ac, "num_attention_heads",
                        json_integer(yaml_int(&y, tr, "transformer-attention-heads", 16)));
    json_object_set_new(ac, "intermediate_size",
                        json_integer(yaml_int(&y, tr, "transformer-linear-units", 4096)));
    json_object_set_new(ac, "num_hidden_layers",
                        json_integer(yaml_int(&y, tr, "transformer-num-blocks", 24)));
    bool dyn = yaml_bool(&y, tr, "transformer-dynamic-chunks", true);
    long long chunk = yaml_int(&y, tr, "transformer-chunk_size", -1);
    json_object_set_new(ac, "chunk_mode",
                        json_string(dyn         ? "dynamic"
                                    : chunk > 0 ? "static"
                                                : "full"));
    if (!dyn && chunk > 0) {
      json_object_set_new(ac, "chunk_size", json_integer(chunk));
      json_object_set_new(ac, "left_chunks",
                          json_integer(yaml_int(&y, tr, "transformer-left_chunks", -1)));
    }
    if (yaml_bool(&y, mc, "audio_prompt_finetune", false))
      json_object_set_new(ac, "audio_prompt_num",
                          json_integer(yaml_int(&y, mc, "audio_prompt_num", 25)));
    ycfg_free(&y);
    return 0;
  }
  note(st, "%s: no mm_audio_encoder train.yaml found: the audio encoder is the full-size one\n",
       src);
  return 0;
}

/* The public release's speech decoder model.json, [idim, odim, {args}] with LLM2TTSCodecAR's
 * argument names, as our tts_decoder config: hidden_size = transformer_attention_dim,
 * num_attention_heads = transformer_attention_heads, intermediate_size =
 * transformer_linear_units, ar_layers = transformer_num_blocks, nar_layers = half of it (the
 * public pre-NN stack), codec_vocab = odim, and the conditioning table of the release's LLM
 * (llm_vocab_size / llm_hidden_size: its vocab_size / hidden_size). Our own keys in args win
 * (our export writes both). Returns a new config or NULL with err. */
static json_t *tts_config_of(const json_t *mj, const json_t *main_cfg, const char *where, char *err,
                             size_t err_len) {
  const json_t *args = json_array_get(mj, 2);
  if (!json_is_array(mj) || json_array_size(mj) != 3 || !json_is_integer(json_array_get(mj, 0)) ||
      !json_is_integer(json_array_get(mj, 1)) || !json_is_object(args)) {
    vt_seterr(err, err_len, "%s: expected [idim, odim, {args}] (LLM2TTSCodecAR's model.json)",
              where);
    return NULL;
  }
  static const char *const map[][2] = {
      {"hidden_size", "transformer_attention_dim"},
      {"num_attention_heads", "transformer_attention_heads"},
      {"intermediate_size", "transformer_linear_units"},
      {"ar_layers", "transformer_num_blocks"},
      {"nar_layers", "transformer_num_blocks"}, /* halved */
      {"codec_vocab", "odim"},
      {"llm_vocab_size", NULL},  /* the LLM's vocab_size */
      {"llm_hidden_size", NULL}, /* the LLM's hidden_size */
  };
  json_t *c = json_pack("{s:s}", "model_type", "tts_decoder");
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
    const char *ours = map[i][0], *pub = map[i][1];
    const json_t *v = json_object_get(args, ours);
    json_int_t x = 0;
    if (json_is_integer(v))
      x = json_integer_value(v);
    else if (pub && json_is_integer(json_object_get(args, pub)))
      x = json_integer_value(json_object_get(args, pub)) / (strcmp(ours, "nar_layers") ? 1 : 2);
    else if (!strcmp(ours, "codec_vocab"))
      x = json_integer_value(json_array_get(mj, 1));
    else if (!pub && json_is_integer(json_object_get(main_cfg, ours + 4)))
      x = json_integer_value(json_object_get(main_cfg, ours + 4)); /* vocab_size, hidden_size */
    else {
      vt_seterr(err, err_len, "%s: field \"%s\": expected an integer (our %s)%s", where,
                pub ? pub : ours, ours,
                pub ? "" : "; the release's config.json has no integer for it either");
      json_decref(c);
      return NULL;
    }
    json_object_set_new(c, ours, json_integer(x));
  }
  static const char *const nums[] = {"rope_theta", "rms_norm_eps", "initializer_range"};
  for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
    if (json_is_number(json_object_get(args, nums[i])))
      json_object_set(c, nums[i], json_object_get(args, nums[i]));
  json_int_t hid = json_integer_value(json_object_get(c, "hidden_size"));
  const json_t *od = json_object_get(args, "encoder_output_dim");
  const json_t *kv = json_object_get(args, "kv_cache_prefix_finetune");
  const char *bad = NULL;
  if (json_integer_value(json_array_get(mj, 0)) != hid)
    bad = "idim: the embedding width must be transformer_attention_dim";
  else if (od && json_integer_value(od) != hid)
    bad = "encoder_output_dim: the head's input must be transformer_attention_dim";
  else if (json_is_true(kv) || (json_is_integer(kv) && json_integer_value(kv)))
    bad = "kv_cache_prefix_finetune: the KV-cache prefix layers (layers_prefix.*) are not part "
          "of our decoder";
  if (bad) {
    vt_seterr(err, err_len, "%s: field %s (hidden %lld)", where, bad, (long long)hid);
    json_decref(c);
    return NULL;
  }
  return c;
}

/* A side model of the release (speech decoder, codec) at src/sub -> part/sub: a safetensors one
 * (config.json + weights) as it is; the public one (model.json + final.pt, a torch pickle) through
 * a staging directory part/.torch-<name> holding the config mapped from model.json and the
 * pickle's tensors as f32 safetensors, converted and checked the same way, then removed. */
static int import_side(const char *src, const char *part, const char *sub, const char *exclude,
                       const json_t *main_cfg, const hf_io_opts *io, hf_io_stats *hs, bool *done,
                       stage_release_stats *st, char *err, size_t err_len) {
  char dir[RELEASE_PATH + 64], p[RELEASE_PATH + 128], to[RELEASE_PATH + 64];
  char stage[RELEASE_PATH + 64];
  snprintf(dir, sizeof dir, "%s/%s", src, sub);
  snprintf(to, sizeof to, "%s/%s", part, sub);
  hf_io_opts t = *io;
  t.tokenizer_dir = NULL;
  snprintf(p, sizeof p, "%s/config.json", dir);
  if (exists(p)) {
    if (stage_hf_convert_sel(dir, to, &t, false, exclude, NULL, hs, err, err_len)) return -1;
    *done = true;
    return 0;
  }
  snprintf(p, sizeof p, "%s/final.pt", dir);
  if (!exists(p)) return 0;
  bool decoder = !strcmp(sub, STAGE_RELEASE_TTS_DIR);
  const char *base = strrchr(sub, '/');
  snprintf(stage, sizeof stage, "%s/.torch-%s", part, base ? base + 1 : sub);
  if (ckpt_mkdirs(stage, err, err_len)) return -1;
  snprintf(p, sizeof p, "%s/model.json", dir);
  if (!exists(p)) {
    vt_seterr(err, err_len, "%s: final.pt without model.json (the %s's sizes)", dir,
              decoder ? "speech decoder" : "codec");
    return -1;
  }
  json_t *c = NULL;
  if (decoder) {
    json_t *mj = release_read_json(p, err, err_len);
    c = mj ? tts_config_of(mj, main_cfg, p, err, err_len) : NULL;
    json_decref(mj);
  } else
    c = stage_codec_read_config(p, err, err_len); /* shared with `vita codec import` */
  snprintf(p, sizeof p, "%s/config.json", stage);
  int rc = c ? release_write_json(p, c, err, err_len) : -1;
  json_decref(c);
  torch_pt_file f;
  snprintf(p, sizeof p, "%s/final.pt", dir);
  if (!rc && !(rc = torch_pt_open(&f, p, err, err_len))) {
    int n = 0, skipped = 0;
    snprintf(p, sizeof p, "%s/model.safetensors", stage);
    /* the codec's pickle may carry more than its three parts (TiCodec's optimizer states) */
    rc = torch_pt_write_safetensors(&f, p, decoder ? NULL : stage_codec_torch_tensor, NULL, &n,
                                    &skipped, err, err_len);
    if (!rc && skipped) {
      char m[RELEASE_PATH + 200];
      snprintf(m, sizeof m,
               "%s/final.pt: %d tensors skipped (outside generator, quantizer and encoder, or "
               "BatchNorm's num_batches_tracked)\n",
               dir, skipped);
      note(st, "%s", m);
    }
    torch_pt_close(&f);
  }
  if (!rc) rc = stage_hf_convert_sel(stage, to, &t, false, exclude, NULL, hs, err, err_len);
  char why[256];
  if (ckpt_remove_tree(stage, why, sizeof why) && !rc) {
    vt_seterr(err, err_len, "%s", why);
    rc = -1;
  }
  if (!rc) {
    *done = true;
    note(st, "%s: read from the torch pickle final.pt and model.json\n", dir);
  }
  return rc;
}

int stage_release_import(const char *src, const char *out, const hf_io_opts *io,
                         stage_release_stats *st, char *err, size_t err_len) {
  memset(st, 0, sizeof *st);
  char p[RELEASE_PATH + 128], part[RELEASE_PATH + 8];
  snprintf(p, sizeof p, "%s/config.json", src);
  json_t *cfg = exists(p) ? release_read_json(p, err, err_len) : NULL;
  if (exists(p) && !cfg) return -1;
  const char *mt = cfg ? json_string_value(json_object_get(cfg, "model_type")) : NULL;
  if (!mt || strcmp(mt, vita_types[0])) {
    json_decref(cfg);
    return stage_hf_import(src, out, io, &st->main, err, err_len);
  }
  st->release = true;
  int rc = -1;
  bool staged = false;
  if (complete_audio(src, cfg, st, err, err_len) || complete_vision(src, cfg, st, err, err_len) ||
      begin_stage(out, part, sizeof part, err, err_len))
    goto done;
  if (stage_hf_convert_sel(src, part, io, false, NULL, cfg, &st->main, err, err_len)) goto done;
  staged = true;
  if (mark(part, err, err_len)) goto done;
  /* the release's codec is the inference part: no discriminators to expect */
  if (import_side(src, part, STAGE_RELEASE_TTS_DIR, NULL, cfg, io, &st->tts, &st->tts_done, st, err,
                  err_len) ||
      import_side(src, part, STAGE_RELEASE_CODEC_DIR, STAGE_RELEASE_DISC_GLOBS, cfg, io, &st->codec,
                  &st->codec_done, st, err, err_len))
    goto done;
  st->audio = json_object_get(cfg, "mm_audio_encoder") != NULL;
  rc = finish_stage(part, out, err, err_len);
done:
  json_decref(cfg);
  if (rc && staged) {
    char why[256];
    ckpt_remove_tree(part, why, sizeof why);
  }
  return rc;
}
