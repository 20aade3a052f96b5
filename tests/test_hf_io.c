// ctest-labels: e2e
/* HF import/export (checkpoints/hf_convert.c through stages/stage_hf.c) on the tiny Qwen2 saved by
 * transformers: the imported model gives HF's reference logits; a bf16 export (one file, or several
 * shards with an index) re-imports to exactly the logits of the model with its weights rounded to
 * bf16; tied embeddings export without lm_head; f16 sources convert; a source with missing,
 * unexpected, misshaped or corrupt tensors is refused naming every problem, leaving no output
 * behind. With VT_HF_IO_KEEP=DIR set, the sharded export and our logits are kept there for
 * tests/reference/check_export_loads.py. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "checkpoints/safetensors_index.h"
#include "checkpoints/safetensors_params.h"
#include "checkpoints/safetensors_write.h"
#include "model/qwen2.h"
#include "stages/stage_hf.h"
#include "tests/qwen2_config.h"
#include "tests/testutil.h"

/* f32 tolerance as in test_qwen2_parity.c: 256 ulps of the largest value. */
#define REL (256 * 1.1920929e-7)

static char tmp_root[256];

static const char *fixture_dir(void) {
  static char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/qwen2_tiny", dir ? dir : "tests/fixtures");
  return path;
}

static const char *path_in(const char *dir, const char *name) {
  static char bufs[4][1024];
  static int k;
  char *p = bufs[k++ % 4];
  snprintf(p, 1024, "%s/%s", dir, name);
  return p;
}

static const char *tmp_path(const char *name) {
  static char bufs[4][512];
  static int k;
  char *p = bufs[k++ % 4];
  snprintf(p, 512, "%s/%s", tmp_root, name);
  return p;
}

static bool exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(p);
}

/* A model loaded from a directory by name, as the trainer will load init weights. */
typedef struct {
  qwen2_cfg cfg;
  vt_params ps;
  qwen2 m;
} model;

static bool model_load(model *md, const char *dir) {
  char err[4096];
  memset(md, 0, sizeof *md);
  vt_params_init(&md->ps, (vt_device){VT_DEV_CPU, 0});
  bool ok = hf_qwen2_config_read(path_in(dir, "config.json"), &md->cfg, err, sizeof err) == 0;
  CHECK_MSG(ok, "%s", err);
  ok = ok && qwen2_init(&md->m, &md->ps, &md->cfg, err, sizeof err) == 0 &&
       vt_params_alloc(&md->ps, err, sizeof err) == 0;
  ok = ok && st_load_params_path(&md->ps, dir, 0, err, sizeof err) == 0;
  CHECK_MSG(ok, "loading %s: %s", dir, err);
  return ok;
}

static void model_free(model *md) {
  qwen2_free(&md->m);
  vt_params_free(&md->ps);
}

/* Rounds every weight through bf16, as a bf16 export stores it. */
static void round_bf16(model *md) {
  for (int i = 0; i < md->ps.n; i++) {
    vt_param *p = md->ps.items[i];
    float *x = p->t.data;
    for (int64_t k = 0; k < vt_numel(&p->t); k++) x[k] = vt_bf16_to_f32(vt_f32_to_bf16(x[k]));
  }
}

/* The fixture's batch and HF's logits for it. */
static int32_t *ref_ids;
static float *ref_logits;
static int64_t ref_b, ref_t, ref_n;

static void load_reference(void) {
  st_file f;
  char err[512];
  if (st_file_open(&f, path_in(fixture_dir(), "reference.safetensors"), err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  const st_tensor *ti = st_find(&f, "input_ids"), *tl = st_find(&f, "logits");
  if (!ti || !tl || ti->ndim != 2) {
    fprintf(stderr, "reference.safetensors: no input_ids [B, T] or logits\n");
    exit(1);
  }
  ref_b = ti->shape[0];
  ref_t = ti->shape[1];
  ref_n = tl->numel;
  ref_ids = malloc(sizeof(int32_t) * (size_t)ti->numel);
  ref_logits = malloc(sizeof(float) * (size_t)ref_n);
  if (st_tensor_read(ti, VT_I32, ref_ids, 4 * (size_t)ti->numel, err, sizeof err) ||
      st_tensor_read(tl, VT_F32, ref_logits, 4 * (size_t)ref_n, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  st_file_close(&f);
}

/* Logits of the fixture batch (malloc'd, ref_n floats). */
static float *logits_of(model *md) {
  vt_ctx *ctx = vt_test_cpu_ctx();
  vt_set_grad_enabled(ctx, false);
  vt_tensor *ids = vt_from_host(ctx, VT_I32, 2, (int64_t[]){ref_b, ref_t}, ref_ids);
  vt_tensor *pos = vt_new(ctx, VT_I32, 1, (int64_t[]){ref_t});
  for (int64_t i = 0; i < ref_t; i++) ((int32_t *)pos->data)[i] = (int32_t)i;
  qwen2 *m = &md->m;
  vt_tensor *l = qwen2_logits(
      m, ctx, qwen2_forward(m, ctx, qwen2_embed(m, ctx, ids), &(qwen2_layout){.pos = pos}));
  CHECK_MSG(!vt_ctx_failed(ctx), "%s", vt_ctx_error(ctx));
  float *out = calloc((size_t)ref_n, sizeof(float));
  if (!vt_ctx_failed(ctx) && vt_numel(l) == ref_n) vt_to_host(ctx, l, out);
  vt_ctx_free(ctx);
  return out;
}

static double max_abs(const float *x, int64_t n) {
  double m = 0;
  for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
  return m;
}

static bool same_file(const char *a, const char *b) {
  FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
  bool same = fa && fb;
  while (same) {
    int ca = fgetc(fa), cb = fgetc(fb);
    same = ca == cb;
    if (ca == EOF || cb == EOF) break;
  }
  if (fa) fclose(fa);
  if (fb) fclose(fb);
  return same;
}

/* Writes the fixture's tensors into dir/model.safetensors through edit, which may rename
 * (change *name), reshape, retype or drop (return false) each one; copies the config. */
typedef bool (*edit_fn)(st_entry *e, void *data, size_t nbytes);

static void write_source(const char *dir, edit_fn edit, const char *config_text) {
  char err[512];
  mkdir(dir, 0755);
  st_file f;
  CHECK_MSG(st_file_open(&f, path_in(fixture_dir(), "model.safetensors"), err, sizeof err) == 0,
            "%s", err);
  st_entry *es = calloc((size_t)f.n, sizeof *es);
  void **bufs = calloc((size_t)f.n, sizeof *bufs);
  int n = 0;
  for (int i = 0; i < f.n; i++) {
    const st_tensor *t = &f.tensors[i];
    st_entry e = {.name = t->name, .dtype = VT_F32, .ndim = t->ndim};
    memcpy(e.shape, t->shape, sizeof e.shape);
    void *buf = malloc((size_t)t->numel * 4);
    CHECK(st_tensor_read(t, VT_F32, buf, (size_t)t->numel * 4, err, sizeof err) == 0);
    if (edit && !edit(&e, buf, (size_t)t->numel * 4)) {
      free(buf);
      continue;
    }
    e.data = buf;
    bufs[n] = buf;
    es[n++] = e;
  }
  const st_kv meta[] = {{"format", "pt"}};
  CHECK_MSG(st_write(path_in(dir, "model.safetensors"), es, n, meta, 1, err, sizeof err) == 0, "%s",
            err);
  for (int i = 0; i < n; i++) free(bufs[i]);
  free(bufs);
  free(es);
  st_file_close(&f);
  if (config_text) {
    FILE *c = fopen(path_in(dir, "config.json"), "w");
    fputs(config_text, c);
    fclose(c);
  } else {
    char *text;
    json_t *j = json_load_file(path_in(fixture_dir(), "config.json"), 0, NULL);
    text = json_dumps(j, JSON_INDENT(2));
    FILE *c = fopen(path_in(dir, "config.json"), "w");
    fputs(text, c);
    fclose(c);
    free(text);
    json_decref(j);
  }
}

/* ---- import: HF's logits, bit-identical weights ---- */
static void test_import(const qwen2_cfg *cfg) {
  char err[4096];
  hf_io_stats s;
  hf_io_opts o = {.dtype = VT_F32};
  /* debris of an interrupted run is cleaned up */
  mkdir(tmp_path("imp.tmp"), 0755);
  FILE *junk = fopen(tmp_path("imp.tmp/model.safetensors.tmp"), "w");
  if (junk) fclose(junk);
  CHECK_MSG(stage_hf_import(fixture_dir(), tmp_path("imp"), &o, &s, err, sizeof err) == 0, "%s",
            err);
  CHECK(!exists(tmp_path("imp.tmp")));
  CHECK(s.n_tensors == 27 && s.n_shards == 1 && s.n_ignored == 0);
  CHECK(s.n_params == qwen2_param_count(cfg) && s.n_bytes == 4 * (uint64_t)s.n_params);
  CHECK(same_file(path_in(fixture_dir(), "config.json"), tmp_path("imp/config.json")));
  CHECK(same_file(path_in(fixture_dir(), "generation_config.json"),
                  tmp_path("imp/generation_config.json")));
  CHECK(s.n_files_copied == 1);
  CHECK(!exists(tmp_path("imp/model.safetensors.index.json")));
  /* missing parents of the output are created, a trailing slash is fine */
  CHECK_MSG(stage_hf_import(fixture_dir(), tmp_path("a/b/imp/"), NULL, NULL, err, sizeof err) == 0,
            "%s", err);
  CHECK(same_file(tmp_path("imp/model.safetensors"), tmp_path("a/b/imp/model.safetensors")));

  model md;
  if (!model_load(&md, tmp_path("imp"))) return;
  st_file f;
  CHECK(st_file_open(&f, path_in(fixture_dir(), "model.safetensors"), err, sizeof err) == 0);
  for (int i = 0; i < md.ps.n; i++) {
    vt_param *p = md.ps.items[i];
    const st_tensor *t = st_find(&f, p->name);
    CHECK_MSG(t && t->nbytes == vt_nbytes(&p->t) && !memcmp(t->data, p->t.data, t->nbytes),
              "imported %s differs from the HF file", p->name);
  }
  st_file_close(&f);
  float *got = logits_of(&md);
  CHECK_CLOSE("imported logits vs HF", got, ref_logits, (long)ref_n,
              REL * max_abs(ref_logits, ref_n), REL);
  free(got);
  model_free(&md);
}

/* ---- export to bf16 and back: exactly the logits of the bf16-rounded model ---- */
static void test_export_roundtrip(const qwen2_cfg *cfg, const char *tok_dir) {
  char err[4096];
  hf_io_stats s;
  hf_io_opts o = {.dtype = VT_BF16, .max_shard_bytes = 5000000000u, .tokenizer_dir = tok_dir};
  CHECK_MSG(stage_hf_export(tmp_path("imp"), tmp_path("exp"), &o, &s, err, sizeof err) == 0, "%s",
            err);
  CHECK(s.n_shards == 1 && s.n_tensors == 27 && s.n_bytes == 2 * (uint64_t)s.n_params);
  CHECK(exists(tmp_path("exp/model.safetensors")));
  CHECK(!exists(tmp_path("exp/model.safetensors.index.json")));
  CHECK(exists(tmp_path("exp/generation_config.json")));
  if (tok_dir) {
    CHECK(same_file(path_in(tok_dir, "tokenizer.json"), tmp_path("exp/tokenizer.json")));
    CHECK(same_file(path_in(tok_dir, "tokenizer_config.json"),
                    tmp_path("exp/tokenizer_config.json")));
  }
  st_file f;
  CHECK(st_file_open(&f, tmp_path("exp/model.safetensors"), err, sizeof err) == 0);
  CHECK(f.n == 27);
  for (int i = 0; i < f.n; i++) CHECK_MSG(f.tensors[i].dtype == VT_BF16, "%s", f.tensors[i].name);
  CHECK(st_metadata(&f, "format") && !strcmp(st_metadata(&f, "format"), "pt"));
  st_file_close(&f);

  /* the config reads back the same, says bfloat16, keeps what HF needs */
  qwen2_cfg back;
  CHECK_MSG(hf_qwen2_config_read(tmp_path("exp/config.json"), &back, err, sizeof err) == 0, "%s",
            err);
  CHECK(back.hidden_size == cfg->hidden_size && back.num_hidden_layers == cfg->num_hidden_layers &&
        back.num_key_value_heads == cfg->num_key_value_heads &&
        back.vocab_size == cfg->vocab_size && back.rope_theta == cfg->rope_theta &&
        back.rms_norm_eps == cfg->rms_norm_eps &&
        back.tie_word_embeddings == cfg->tie_word_embeddings);
  json_t *j = json_load_file(tmp_path("exp/config.json"), 0, NULL);
  CHECK(j && !strcmp(json_string_value(json_object_get(j, "torch_dtype")), "bfloat16"));
  CHECK(j && !strcmp(json_string_value(json_object_get(j, "model_type")), "qwen2"));
  json_decref(j);

  /* reference: the original model with every weight rounded to bf16 */
  model orig;
  if (!model_load(&orig, fixture_dir())) return;
  float *f32_logits = logits_of(&orig);
  round_bf16(&orig);
  float *want = logits_of(&orig);
  CHECK(memcmp(f32_logits, want, sizeof(float) * (size_t)ref_n) != 0); /* rounding is visible */

  CHECK_MSG(stage_hf_import(tmp_path("exp"), tmp_path("re"), &(hf_io_opts){.dtype = VT_F32}, &s,
                            err, sizeof err) == 0,
            "%s", err);
  model re;
  if (model_load(&re, tmp_path("re"))) {
    float *got = logits_of(&re);
    CHECK_MSG(!memcmp(got, want, sizeof(float) * (size_t)ref_n),
              "re-imported bf16 export: logits differ from the bf16-rounded model's");
    free(got);
    model_free(&re);
  }
  /* the bf16 export loads straight into f32 parameters too */
  model direct;
  if (model_load(&direct, tmp_path("exp"))) {
    float *got = logits_of(&direct);
    CHECK(!memcmp(got, want, sizeof(float) * (size_t)ref_n));
    free(got);
    model_free(&direct);
  }
  free(f32_logits);
  free(want);
  model_free(&orig);
}

/* ---- several shards: index total_size and weight_map, and the same logits ---- */
static void test_sharded(const char *tok_dir) {
  char err[4096];
  hf_io_stats s;
  const size_t max = 40000; /* the tiny model is 148,608 bytes in bf16 */
  hf_io_opts o = {.dtype = VT_BF16, .max_shard_bytes = max, .tokenizer_dir = tok_dir};
  CHECK_MSG(stage_hf_export(tmp_path("imp"), tmp_path("shard"), &o, &s, err, sizeof err) == 0, "%s",
            err);
  CHECK_MSG(s.n_shards >= 4, "%d shards", s.n_shards);
  CHECK(!exists(tmp_path("shard/model.safetensors")));
  json_error_t je;
  json_t *ix = json_load_file(tmp_path("shard/model.safetensors.index.json"), 0, &je);
  CHECK_MSG(ix, "index: %s", je.text);
  if (!ix) return;
  json_t *wm = json_object_get(ix, "weight_map");
  json_int_t total =
      json_integer_value(json_object_get(json_object_get(ix, "metadata"), "total_size"));
  CHECK(json_is_object(wm) && json_object_size(wm) == 27);
  CHECK_MSG(total == (json_int_t)(2 * s.n_params), "total_size %lld", (long long)total);
  /* every shard holds exactly the tensors the map gives it; sizes add up */
  uint64_t sum = 0;
  int n_seen = 0;
  for (int k = 1; k <= s.n_shards; k++) {
    char name[64];
    snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", k, s.n_shards);
    st_file f;
    if (st_file_open(&f, path_in(tmp_path("shard"), name), err, sizeof err)) {
      CHECK_MSG(0, "%s", err);
      continue;
    }
    uint64_t bytes = 0;
    for (int i = 0; i < f.n; i++) {
      const char *mapped = json_string_value(json_object_get(wm, f.tensors[i].name));
      CHECK_MSG(mapped && !strcmp(mapped, name), "%s in %s, index says %s", f.tensors[i].name, name,
                mapped ? mapped : "nothing");
      CHECK(f.tensors[i].dtype == VT_BF16);
      bytes += f.tensors[i].nbytes;
    }
    CHECK_MSG(bytes <= max || f.n == 1, "%s: %llu bytes", name, (unsigned long long)bytes);
    sum += bytes;
    n_seen += f.n;
    st_file_close(&f);
  }
  CHECK(n_seen == 27 && sum == (uint64_t)total);
  json_decref(ix);

  /* the sharded set re-imports to the single-file export's weights */
  CHECK_MSG(stage_hf_import(tmp_path("shard"), tmp_path("re_shard"), &(hf_io_opts){.dtype = VT_F32},
                            &s, err, sizeof err) == 0,
            "%s", err);
  model a, b;
  if (model_load(&a, tmp_path("re_shard")) && model_load(&b, tmp_path("re"))) {
    for (int i = 0; i < a.ps.n; i++)
      CHECK_MSG(!memcmp(a.ps.items[i]->t.data, b.ps.items[i]->t.data, vt_nbytes(&a.ps.items[i]->t)),
                "%s", a.ps.items[i]->name);
    model_free(&a);
    model_free(&b);
  }
}

/* ---- tied embeddings: lm_head.weight in the HF file is ignored; the export has none ---- */
static void test_tied(void) {
  char err[4096];
  json_t *j = json_load_file(path_in(fixture_dir(), "config.json"), 0, NULL);
  json_object_set_new(j, "tie_word_embeddings", json_true());
  char *text = json_dumps(j, JSON_INDENT(2));
  json_decref(j);
  write_source(tmp_path("tied_src"), NULL, text);
  free(text);
  hf_io_stats s;
  CHECK_MSG(stage_hf_import(tmp_path("tied_src"), tmp_path("tied"), &(hf_io_opts){.dtype = VT_F32},
                            &s, err, sizeof err) == 0,
            "%s", err);
  CHECK(s.n_tensors == 26 && s.n_ignored == 1);
  CHECK_MSG(stage_hf_export(tmp_path("tied"), tmp_path("tied_exp"), NULL, &s, err, sizeof err) == 0,
            "%s", err);
  st_index ix;
  CHECK(st_index_open(&ix, tmp_path("tied_exp"), err, sizeof err) == 0);
  CHECK(ix.n == 26 && !st_index_has(&ix, "lm_head.weight") &&
        st_index_has(&ix, "model.embed_tokens.weight"));
  st_index_close(&ix);
  qwen2_cfg c;
  CHECK(hf_qwen2_config_read(tmp_path("tied_exp/config.json"), &c, err, sizeof err) == 0);
  CHECK(c.tie_word_embeddings);
}

/* ---- f16 source: converted exactly ---- */
static bool to_f16(st_entry *e, void *data, size_t nbytes) {
  float *x = data;
  uint16_t *h = data; /* in place: h[i] is written after x[i] is read */
  for (size_t i = 0; i < nbytes / 4; i++) h[i] = vt_f32_to_f16(x[i]);
  e->dtype = VT_F16;
  return true;
}

static void test_f16_source(void) {
  char err[4096];
  write_source(tmp_path("f16_src"), to_f16, NULL);
  CHECK_MSG(stage_hf_import(tmp_path("f16_src"), tmp_path("f16"), NULL, NULL, err, sizeof err) == 0,
            "%s", err);
  model a, b;
  if (model_load(&a, tmp_path("f16")) && model_load(&b, fixture_dir())) {
    for (int i = 0; i < a.ps.n; i++) {
      const float *x = a.ps.items[i]->t.data, *y = b.ps.items[i]->t.data;
      bool same = true;
      for (int64_t k = 0; k < vt_numel(&a.ps.items[i]->t); k++)
        same = same && x[k] == vt_f16_to_f32(vt_f32_to_f16(y[k]));
      CHECK_MSG(same, "%s is not the f16 value", a.ps.items[i]->name);
    }
    model_free(&a);
    model_free(&b);
  }
}

/* ---- a wrong source: every problem listed by name, nothing written ---- */
static bool break_some(st_entry *e, void *data, size_t nbytes) {
  (void)data, (void)nbytes;
  if (!strcmp(e->name, "model.norm.weight")) e->name = "model.norm.weights";
  if (!strcmp(e->name, "model.layers.0.mlp.up_proj.weight")) return false;
  if (!strcmp(e->name, "model.layers.1.self_attn.q_proj.bias")) {
    e->ndim = 2;
    e->shape[0] = 2;
    e->shape[1] = 32;
  }
  if (!strcmp(e->name, "model.layers.0.input_layernorm.weight")) e->dtype = VT_I32;
  return true;
}

static void test_refused(void) {
  char err[8192];
  write_source(tmp_path("bad_src"), break_some, NULL);
  int rc = stage_hf_import(tmp_path("bad_src"), tmp_path("bad"), NULL, NULL, err, sizeof err);
  CHECK(rc == -1);
  const char *want[] = {
      "2 missing: ",
      "model.layers.0.mlp.up_proj.weight",
      "model.norm.weight",
      "1 unexpected: model.norm.weights",
      "2 mismatched: ",
      "model.layers.1.self_attn.q_proj.bias (expected [64] float, found [2, 32] F32)",
      "model.layers.0.input_layernorm.weight (expected [64] float, found [64] I32)",
      "bad_src",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    CHECK_MSG(rc && strstr(err, want[i]), "message lacks \"%s\": %s", want[i], err);
  CHECK(!exists(tmp_path("bad")) && !exists(tmp_path("bad.tmp")));
  CHECK(stage_hf_export(tmp_path("bad_src"), tmp_path("bad"), NULL, NULL, err, sizeof err) == -1);
  CHECK(strstr(err, "model.norm.weights") != NULL);

  /* the same list from hf_check_weights; cut short safely in a small buffer */
  qwen2_cfg cfg;
  CHECK(hf_qwen2_config_read(path_in(fixture_dir(), "config.json"), &cfg, err, sizeof err) == 0);
  char err2[8192], small[64];
  CHECK(stage_hf_check(tmp_path("bad_src"), path_in(fixture_dir(), "config.json"), NULL, err2,
                       sizeof err2) == -1);
  CHECK(strstr(err2, "1 unexpected: model.norm.weights") != NULL);
  CHECK(stage_hf_check(tmp_path("bad_src"), path_in(fixture_dir(), "config.json"), NULL, small,
                       sizeof small) == -1);
  CHECK(strlen(small) < sizeof small && strstr(small, "(truncated)"));
  CHECK(stage_hf_check(fixture_dir(), path_in(fixture_dir(), "config.json"), NULL, err2,
                       sizeof err2) == 0);

  /* truncated weights, missing config, missing source, occupied output */
  mkdir(tmp_path("trunc_src"), 0755);
  FILE *in = fopen(path_in(fixture_dir(), "model.safetensors"), "rb");
  FILE *out = fopen(tmp_path("trunc_src/model.safetensors"), "wb");
  char buf[4096];
  size_t got = fread(buf, 1, sizeof buf, in);
  fwrite(buf, 1, got, out);
  fclose(in);
  fclose(out);
  write_source(tmp_path("noweights_src"), NULL, NULL);
  unlink(tmp_path("noweights_src/model.safetensors"));
  rename(tmp_path("noweights_src/config.json"), tmp_path("trunc_src/config.json"));
  CHECK(stage_hf_import(tmp_path("trunc_src"), tmp_path("bad"), NULL, NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "trunc_src/model.safetensors"), "%s", err);
  CHECK(stage_hf_import(tmp_path("noweights_src"), tmp_path("bad"), NULL, NULL, err, sizeof err) ==
        -1);
  CHECK_MSG(strstr(err, "noweights_src/config.json"), "%s", err);
  CHECK(stage_hf_import(tmp_path("nowhere"), tmp_path("bad"), NULL, NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "nowhere"), "%s", err);
  CHECK(stage_hf_export(tmp_path("imp"), tmp_path("exp"), NULL, NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "already exists"), "%s", err);
  CHECK(stage_hf_export(tmp_path("imp"), tmp_path("x"),
                        &(hf_io_opts){.dtype = VT_BF16, .tokenizer_dir = tmp_path("trunc_src")},
                        NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "no tokenizer files"), "%s", err);
  CHECK(!exists(tmp_path("bad")) && !exists(tmp_path("x")) && !exists(tmp_path("x.tmp")));

  /* an OUT.tmp holding someone else's files is not ours to clear */
  mkdir(tmp_path("y.tmp"), 0755);
  FILE *notes = fopen(tmp_path("y.tmp/notes.txt"), "w");
  if (notes) fclose(notes);
  CHECK(stage_hf_import(fixture_dir(), tmp_path("y"), NULL, NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "not ours"), "%s", err);
  CHECK(exists(tmp_path("y.tmp/notes.txt")) && !exists(tmp_path("y")));
}

static void copy_to(const char *from, const char *to) {
  FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
  CHECK_MSG(in && out, "copy %s -> %s", from, to);
  char buf[65536];
  size_t n;
  while (in && out && (n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, out);
  if (in) fclose(in);
  if (out) fclose(out);
}

/* ---- export from a training run: its newest complete checkpoint, manifest verified ---- */
static void test_from_checkpoint(void) {
  char err[4096];
  ckpt_writer w;
  CHECK_MSG(ckpt_begin(&w, tmp_path("run/checkpoints"), 7, err, sizeof err) == 0, "%s", err);
  copy_to(tmp_path("imp/model.safetensors"), path_in(w.tmp, "model.safetensors"));
  copy_to(tmp_path("imp/config.json"), path_in(w.tmp, "config.json"));
  FILE *f = fopen(path_in(w.tmp, "optim.safetensors"), "w"); /* not weights: ignored */
  if (f) fclose(f);
  CHECK_MSG(ckpt_commit(&w, 0, err, sizeof err) == 0, "%s", err);
  hf_io_stats s;
  CHECK_MSG(stage_hf_export(tmp_path("run"), tmp_path("run_exp"), NULL, &s, err, sizeof err) == 0,
            "%s", err);
  CHECK_MSG(strstr(s.source, "run/checkpoints/step-00000007"), "exported from %s", s.source);
  CHECK(same_file(tmp_path("run_exp/model.safetensors"), tmp_path("exp/model.safetensors")));
  CHECK(!s.has_tokenizer);

  /* a damaged checkpoint is refused by its manifest, naming the file */
  const char *w_path = path_in(w.final, "model.safetensors");
  FILE *d = fopen(w_path, "r+b");
  if (d) {
    fseek(d, -3, SEEK_END);
    fputc('x', d);
    fclose(d);
  }
  CHECK(stage_hf_export(w.final, tmp_path("run_bad"), NULL, NULL, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "model.safetensors"), "%s", err);
  CHECK(!exists(tmp_path("run_bad")) && !exists(tmp_path("run_bad.tmp")));
}

/* VT_HF_IO_KEEP=DIR: DIR/export (sharded bf16) and DIR/logits.safetensors (our logits of the
 * bf16-rounded model on the fixture batch) for tests/reference/check_export_loads.py. */
static void keep_for_python(const char *dir, const char *tok_dir) {
  char err[4096];
  mkdir(dir, 0755);
  hf_io_opts o = {.dtype = VT_BF16, .max_shard_bytes = 60000, .tokenizer_dir = tok_dir};
  CHECK_MSG(stage_hf_export(tmp_path("imp"), path_in(dir, "export"), &o, NULL, err, sizeof err) ==
                0,
            "%s", err);
  model md;
  if (!model_load(&md, fixture_dir())) return;
  round_bf16(&md);
  float *l = logits_of(&md);
  const st_entry es[] = {
      {.name = "input_ids", .dtype = VT_I32, .ndim = 2, .shape = {ref_b, ref_t}, .data = ref_ids},
      {.name = "logits",
       .dtype = VT_F32,
       .ndim = 3,
       .shape = {ref_b, ref_t, ref_n / (ref_b * ref_t)},
       .data = l},
  };
  CHECK_MSG(st_write(path_in(dir, "logits.safetensors"), es, 2, NULL, 0, err, sizeof err) == 0,
            "%s", err);
  printf("kept %s/export and %s/logits.safetensors\n", dir, dir);
  free(l);
  model_free(&md);
}

int main(void) {
  snprintf(tmp_root, sizeof tmp_root, "/tmp/vt_hf_io_XXXXXX");
  if (!mkdtemp(tmp_root)) {
    perror("mkdtemp");
    return 1;
  }
  load_reference();
  qwen2_cfg cfg;
  char err[512];
  if (hf_qwen2_config_read(path_in(fixture_dir(), "config.json"), &cfg, err, sizeof err)) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  /* the real Qwen tokenizer when the shared data is there (not in the repo: 11 MB) */
  const char *shared = getenv("VT_SHARED_DIR");
  static char tok[1024];
  const char *tok_dir = NULL;
  if (shared) {
    snprintf(tok, sizeof tok, "%s/data/qwen-tokenizer", shared);
    if (exists(path_in(tok, "tokenizer.json"))) tok_dir = tok;
  }
  if (!tok_dir) printf("no VT_SHARED_DIR/data/qwen-tokenizer: tokenizer copy not checked\n");

  test_import(&cfg);
  test_export_roundtrip(&cfg, tok_dir);
  test_sharded(NULL);
  test_tied();
  test_from_checkpoint();
  test_f16_source();
  test_refused();
  const char *keep = getenv("VT_HF_IO_KEEP");
  if (keep && *keep) keep_for_python(keep, tok_dir);

  nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(ref_ids);
  free(ref_logits);
  return vt_test_finish("test_hf_io");
}
