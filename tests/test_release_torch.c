// ctest-labels: unit
/* `vita import` of a release whose speech decoder and codec ship as torch pickles, the way the
 * public VITA-1.5 release has them (vita_tts_ckpt/decoder/{model.json, final.pt} with
 * LLM2TTSCodecAR's argument names, vita_tts_ckpt/codec/{model.json, final.pt} with TiCodec's
 * hyper-parameters and the keys generator, quantizer, encoder). The fixture
 * tests/fixtures/torch_release/ holds both forms of one tiny seeded decoder and codec: st/, our
 * bf16 safetensors export, and pt/, the same tensors re-saved with torch.save under the public
 * names by tests/reference/gen_torch_release_fixture.py. Each is put beside the LLM of
 * tests/fixtures/vita_release and imported; the two imports must give bit-identical weights,
 * speech-decoder logits on a batch, codec tokens of a wave and the wave decoded from them.
 * Refusals: final.pt without model.json, a model.json of the wrong form, a prefix-tuned decoder.
 *
 *   build/tests/test_release_torch --write DIR   writes DIR/rel, the export the fixture is made
 *                                                from (then run the generator on it) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/release.h"
#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_params.h"
#include "cli/cli_codec.h"
#include "model/tts.h"
#include "model/tts_generate.h"
#include "stages/stage_release.h"
#include "tests/testutil.h"

static const char *tts_config =
    "{\"model_type\": \"tts_decoder\", \"hidden_size\": 12, \"num_attention_heads\": 2, "
    "\"intermediate_size\": 24, \"nar_layers\": 1, \"ar_layers\": 2, \"codec_vocab\": 1024, "
    "\"llm_vocab_size\": 64, \"llm_hidden_size\": 24}";
static const char *codec_config =
    "{\"model_type\": \"ticodec\", \"sampling_rate\": 24000, \"upsample_rates\": [8, 5, 5, 3], "
    "\"upsample_kernel_sizes\": [16, 11, 11, 5], \"upsample_initial_channel\": 32, "
    "\"resblock_kernel_sizes\": [3], \"resblock_dilation_sizes\": [[1, 3]], "
    "\"encoder_channels\": 2, \"group_channels\": 2, \"n_codes\": 1024, \"global_code_num\": 8, "
    "\"global_feature_conv\": [8, 8, 8, 3, 1], \"segment_size\": 4800, "
    "\"mpd_periods\": [2, 3], \"mpd_channels\": [2, 4, 4, 4, 4], \"msd_scales\": 1, "
    "\"msd_channels\": [2, 2, 4, 4, 4, 4, 4], \"msd_groups\": [1, 1, 1, 1, 1, 1, 1], "
    "\"stft_n_ffts\": [256], \"stft_hops\": [64], \"stft_filters\": 2}";

static char fixtures[2048];

/* A model directory of a seeded model of config (config.json + f32 model.safetensors). */
static int write_seeded(const char *config, const char *dir, uint64_t seed) {
  char err[4096], p[4400];
  json_t *cj = json_loads(config, 0, NULL);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = cj ? vt_model_create(NULL, cj, "seeded", &mo, &ps, err, sizeof err) : NULL;
  json_decref(cj);
  int rc = m ? 0 : -1;
  vt_rng rng;
  vt_rng_seed(&rng, seed);
  if (!rc) rc = vt_params_alloc(&ps, err, sizeof err);
  if (!rc) rc = m->ops->init_weights(m, &ps, &rng, err, sizeof err);
  json_t *oc = rc ? NULL : m->ops->config_json(m);
  snprintf(p, sizeof p, "%s/config.json", dir);
  if (!rc) rc = release_write_json(p, oc, err, sizeof err);
  json_decref(oc);
  snprintf(p, sizeof p, "%s/model.safetensors", dir);
  if (!rc) rc = st_save_params(&ps, p, NULL, err, sizeof err);
  if (rc) fprintf(stderr, "%s\n", err);
  vt_model_destroy(m);
  vt_params_free(&ps);
  return rc;
}

static int write_fixture_source(const char *out) {
  char err[8192], tts[4200], codec[4200], rel[4200], llm[4200];
  snprintf(tts, sizeof tts, "%s/tts", out);
  snprintf(codec, sizeof codec, "%s/codec", out);
  snprintf(rel, sizeof rel, "%s/rel", out);
  snprintf(llm, sizeof llm, "%s/vita_release", fixtures);
  if (write_seeded(tts_config, tts, 5) || write_seeded(codec_config, codec, 6)) return 1;
  stage_release_opts o = {.io = {.dtype = VT_BF16}, .tts = tts, .codec = codec};
  stage_release_stats st;
  if (stage_release_export(llm, rel, &o, &st, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  printf("wrote %s (now: python3 tests/reference/gen_torch_release_fixture.py %s)\n", rel, rel);
  return 0;
}

/* DIR: the LLM of vita_release (linked) + vita_tts_ckpt from the fixture's form. */
static void make_release(const char *dir, const char *form) {
  static const char *const llm[] = {"config.json", "model.safetensors", "InternViT-300M-448px",
                                    "audio-encoder"};
  char a[4400], b[4400], err[512];
  CHECK(ckpt_mkdirs(dir, err, sizeof err) == 0);
  for (size_t i = 0; i < sizeof llm / sizeof llm[0]; i++) {
    snprintf(a, sizeof a, "%s/vita_release/%s", fixtures, llm[i]);
    snprintf(b, sizeof b, "%s/%s", dir, llm[i]);
    CHECK_MSG(symlink(a, b) == 0, "%s: %s", b, strerror(errno));
  }
  snprintf(a, sizeof a, "%s/torch_release/%s/vita_tts_ckpt", fixtures, form);
  snprintf(b, sizeof b, "%s/vita_tts_ckpt", dir);
  CHECK_MSG(symlink(a, b) == 0, "%s: %s", b, strerror(errno));
}

enum { ROWS = 2, TXT = 3, COD = 5, WAVE = 2400 };

typedef struct {
  float logits[ROWS * (COD + 1) * 1028];
  int32_t *tokens;
  int64_t n_tokens;
  float *wave;
  int64_t n_wave;
} outputs;

/* The decoder's logits on a fixed batch (the frozen LLM table, which the release does not
 * carry, filled the same for both) and the codec's tokens of a wave and its decoding. */
static void run(const char *imported, outputs *o) {
  char p[4400], err[4096];
  snprintf(p, sizeof p, "%s/%s/config.json", imported, STAGE_RELEASE_TTS_DIR);
  json_t *cj = release_read_json(p, err, sizeof err);
  CHECK_MSG(cj != NULL, "%s", err);
  vt_params ps;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  vt_model_opts mo = {0};
  vt_model *m = cj ? vt_model_create(NULL, cj, p, &mo, &ps, err, sizeof err) : NULL;
  json_decref(cj);
  CHECK_MSG(m != NULL, "%s", err);
  snprintf(p, sizeof p, "%s/%s", imported, STAGE_RELEASE_TTS_DIR);
  if (m && !vt_params_alloc(&ps, err, sizeof err) &&
      !st_load_params_path(&ps, p, ST_LOAD_ALLOW_MISSING, err, sizeof err)) {
    vt_param *tab = vt_params_find(&ps, "model.embed_tokens.weight");
    CHECK(tab != NULL);
    for (int64_t i = 0; tab && i < vt_numel(&tab->t); i++)
      ((float *)tab->t.data)[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    static const int32_t text[ROWS * TXT] = {5, 9, 63, 1, 2, 3}, text_lens[ROWS] = {3, 2};
    static const int32_t codes[ROWS * COD] = {0, 1023, 17, 400, 3, 9, 8, 7, 6, 5};
    static const int32_t codec_lens[ROWS] = {5, 3};
    tts_batch b = {ROWS, text, text_lens, TXT, codes, codec_lens, COD};
    vt_ctx *ctx = vt_test_cpu_ctx();
    vt_set_grad_enabled(ctx, false);
    tts *t = tts_model_decoder(m);
    tts_out out = tts_forward(t, ctx, &b);
    vt_tensor *lg = vt_ctx_failed(ctx) ? NULL : tts_logits(t, ctx, out.hidden);
    CHECK_MSG(!vt_ctx_failed(ctx) && out.rows == 10, "%s", vt_ctx_error(ctx));
    if (!vt_ctx_failed(ctx)) vt_to_host(ctx, lg, o->logits);
    vt_ctx_free(ctx);
  } else
    CHECK_MSG(0, "%s", err);
  vt_model_destroy(m);
  vt_params_free(&ps);
  cli_codec c = {0};
  snprintf(p, sizeof p, "%s/%s", imported, STAGE_RELEASE_CODEC_DIR);
  int rc = cli_codec_open(&c, p, true, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  static float x[WAVE];
  for (int i = 0; i < WAVE; i++) x[i] = 0.4f * (float)((i * 7919) % 200 - 100) / 100.0f;
  int32_t g[8];
  if (!rc && !(rc = cli_codec_encode(&c, x, WAVE, &o->tokens, &o->n_tokens, g, err, sizeof err)))
    o->wave = cli_codec_decode(&c, o->tokens, o->n_tokens, g, &o->n_wave, err, sizeof err);
  CHECK_MSG(rc == 0 && o->wave && o->n_tokens == WAVE / 600, "%s", err);
  cli_codec_close(&c);
}

static const char *import(const char *T, const char *form, char *out, size_t len) {
  char rel[4200], err[8192];
  snprintf(rel, sizeof rel, "%s/rel_%s", T, form);
  snprintf(out, len, "%s/imp_%s", T, form);
  make_release(rel, form);
  hf_io_opts io = {.dtype = VT_F32};
  stage_release_stats st;
  int rc = stage_release_import(rel, out, &io, &st, err, sizeof err);
  CHECK_MSG(rc == 0 && st.tts_done && st.codec_done, "import %s: %s", form, rc ? err : st.notes);
  /* the pickles' optimizer states (beside "model" for the decoder, "optim_g" in the codec's)
   * and a BatchNorm step counter are not read */
  if (!rc && !strcmp(form, "pt"))
    CHECK_MSG(strstr(st.notes, "final.pt: 2 tensors skipped") &&
                  strstr(st.notes, "read from the torch pickle"),
              "%s", st.notes);
  return rc ? NULL : out;
}

/* The same tensors under the same names, bit for bit. */
static void same_weights(const char *a, const char *b, const char *sub) {
  char pa[4400], pb[4400], err[1024];
  snprintf(pa, sizeof pa, "%s/%s/model.safetensors", a, sub);
  snprintf(pb, sizeof pb, "%s/%s/model.safetensors", b, sub);
  st_file fa, fb;
  CHECK_MSG(st_file_open(&fa, pa, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(st_file_open(&fb, pb, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(fa.n == fb.n && fa.n > 0, "%s: %d vs %d tensors", sub, fa.n, fb.n);
  for (int i = 0; i < fa.n; i++) {
    const st_tensor *x = &fa.tensors[i], *y = st_find(&fb, x->name);
    CHECK_MSG(y && y->nbytes == x->nbytes && !memcmp(x->data, y->data, x->nbytes), "%s: %s", sub,
              x->name);
  }
  st_file_close(&fa);
  st_file_close(&fb);
}

/* A release whose decoder directory is changed by edit (a shell command run in it) is refused
 * with a message holding what. */
static void refused(const char *T, const char *name, const char *edit, const char *what) {
  char rel[4200], out[4200], cmd[9000], err[8192];
  snprintf(rel, sizeof rel, "%s/bad_%s", T, name);
  snprintf(out, sizeof out, "%s/bad_%s_out", T, name);
  make_release(rel, "pt");
  snprintf(cmd, sizeof cmd,
           "cd %s && rm vita_tts_ckpt && mkdir -p vita_tts_ckpt && cp -r %s/torch_release/pt/"
           "vita_tts_ckpt/* vita_tts_ckpt/ && cd vita_tts_ckpt/decoder && %s",
           rel, fixtures, edit);
  CHECK(system(cmd) == 0);
  hf_io_opts io = {.dtype = VT_F32};
  stage_release_stats st;
  int rc = stage_release_import(rel, out, &io, &st, err, sizeof err);
  CHECK_MSG(rc != 0 && strstr(err, what), "%s: %s", name, rc ? err : "accepted");
  struct stat sb;
  CHECK_MSG(stat(out, &sb) != 0, "%s: a refused import left %s", name, out);
}

static outputs o_st, o_pt;

int main(int argc, char **argv) {
  const char *fx = getenv("VT_FIXTURES");
  snprintf(fixtures, sizeof fixtures, "%s", fx ? fx : "tests/fixtures");
  if (argc == 3 && !strcmp(argv[1], "--write")) return write_fixture_source(argv[2]);
  char tmpl[] = "/tmp/vt_release_torch_XXXXXX", a[4200], b[4200];
  const char *T = mkdtemp(tmpl);
  CHECK(T != NULL);
  if (!T) return vt_test_finish("test_release_torch");
  const char *st = import(T, "st", a, sizeof a), *pt = import(T, "pt", b, sizeof b);
  if (st && pt) {
    same_weights(st, pt, STAGE_RELEASE_TTS_DIR);
    same_weights(st, pt, STAGE_RELEASE_CODEC_DIR);
    run(st, &o_st);
    run(pt, &o_pt);
    size_t nd = 0;
    for (size_t i = 0; i < sizeof o_st.logits / sizeof(float); i++)
      nd += memcmp(&o_st.logits[i], &o_pt.logits[i], sizeof(float)) != 0;
    CHECK_MSG(nd == 0, "%zu decoder logits differ", nd);
    bool nonzero = false;
    for (size_t i = 0; i < 1028; i++) nonzero |= o_st.logits[i] != 0;
    CHECK(nonzero);
    CHECK(o_st.n_tokens == o_pt.n_tokens && o_st.tokens && o_pt.tokens &&
          !memcmp(o_st.tokens, o_pt.tokens, sizeof(int32_t) * (size_t)o_st.n_tokens));
    CHECK(o_st.n_wave == o_pt.n_wave && o_st.n_wave == WAVE && o_st.wave && o_pt.wave &&
          !memcmp(o_st.wave, o_pt.wave, sizeof(float) * (size_t)o_st.n_wave));
    printf("decoder logits, %lld codec tokens and %lld samples identical\n",
           (long long)o_st.n_tokens, (long long)o_st.n_wave);
  }
  free(o_st.tokens), free(o_pt.tokens), free(o_st.wave), free(o_pt.wave);
  refused(T, "no_json", "rm model.json", "final.pt without model.json");
  refused(T, "form", "echo '{\"idim\": 12}' > model.json", "expected [idim, odim, {args}]");
  refused(T, "prefix",
          "sed -i 's/\"kv_cache_prefix_finetune\": 0/\"kv_cache_prefix_finetune\": 1/' model.json",
          "kv_cache_prefix_finetune");
  refused(T, "pickle", "printf 'PK\\003\\004junk' > final.pt", "final.pt");
  char err[512];
  ckpt_remove_tree(T, err, sizeof err);
  return vt_test_finish("test_release_torch");
}
