// ctest-labels: unit
/* Import and export of the speech decoder under the VITA-1.5 release names: importing the
 * fixture's decoder (embedding, layers_pre_nn.N.*, layers.N.*, norm, out_fnn, exactly the
 * names PyTorch's state_dict gives) keeps every tensor bit for bit; exporting a training
 * checkpoint, which also holds the frozen LLM table, writes the decoder alone (bf16 rounding
 * of the same values) with a config that carries the release's model.json keys and reads
 * back; a decoder missing a tensor is refused, naming it. */
#include <stdlib.h>
#include <string.h>

#include "checkpoints/safetensors.h"
#include "checkpoints/safetensors_write.h"
#include "stages/stage_hf.h"
#include "tests/testutil.h"

static const char *fixture(const char *name) {
  static char path[1024];
  const char *dir = getenv("VT_FIXTURES");
  snprintf(path, sizeof path, "%s/tts_tiny/%s", dir ? dir : "tests/fixtures", name);
  return path;
}

static float bf16_round(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  memcpy(&x, &u, 4);
  return x;
}

/* Every tensor of want is in got under the same name and shape with the same values (after
 * bf16 rounding when bf16), and got has nothing else. */
static void same_tensors(const char *got_path, const st_file *want, bool bf16) {
  st_file got;
  char err[512];
  CHECK_MSG(st_file_open(&got, got_path, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(got.n == want->n, "%s: %d tensors, want %d", got_path, got.n, want->n);
  for (int i = 0; i < want->n; i++) {
    const st_tensor *w = &want->tensors[i], *g = st_find(&got, w->name);
    CHECK_MSG(g, "%s: no %s", got_path, w->name);
    if (!g) continue;
    CHECK(g->ndim == w->ndim && g->numel == w->numel && g->dtype == (bf16 ? VT_BF16 : VT_F32));
    float *a = malloc(sizeof(float) * (size_t)w->numel),
          *b = malloc(sizeof(float) * (size_t)w->numel);
    st_tensor_read(w, VT_F32, a, sizeof(float) * (size_t)w->numel, err, sizeof err);
    st_tensor_read(g, VT_F32, b, sizeof(float) * (size_t)w->numel, err, sizeof err);
    bool eq = true;
    for (int64_t k = 0; k < w->numel; k++) eq &= (bf16 ? bf16_round(a[k]) : a[k]) == b[k];
    CHECK_MSG(eq, "%s: %s values differ", got_path, w->name);
    free(a);
    free(b);
  }
  st_file_close(&got);
}

static void copy_config(const char *dir) {
  char path[512], cmd[1200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  snprintf(cmd, sizeof cmd, "mkdir -p %s && cp %s %s", dir, fixture("config.json"), path);
  CHECK(system(cmd) == 0);
}

int main(void) {
  char dir[] = "/tmp/vt_test_tts_io_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char err[1024], out[512], src[512], path[600];
  st_file dec, llm;
  CHECK(st_file_open(&dec, fixture("model.safetensors"), err, sizeof err) == 0);
  CHECK(st_file_open(&llm, fixture("llm_embed.safetensors"), err, sizeof err) == 0);
  /* the release names, as the reference's state_dict has them */
  const char *names[] = {"embedding.weight",
                         "layers_pre_nn.0.self_attn.q_proj.weight",
                         "layers_pre_nn.1.mlp.down_proj.weight",
                         "layers.0.input_layernorm.weight",
                         "layers.1.post_attention_layernorm.weight",
                         "layers.1.self_attn.o_proj.weight",
                         "norm.weight",
                         "out_fnn.weight",
                         "out_fnn.bias"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    CHECK_MSG(st_find(&dec, names[i]), "fixture has no %s", names[i]);

  /* import: the release-named decoder (the fixture directory) as it is */
  hf_io_stats s;
  snprintf(out, sizeof out, "%s/imported", dir);
  hf_io_opts f32 = {.dtype = VT_F32};
  char fx_dir[600];
  snprintf(fx_dir, sizeof fx_dir, "%s", fixture(""));
  CHECK_MSG(stage_hf_import(fx_dir, out, &f32, &s, err, sizeof err) == 0, "%s", err);
  CHECK(!strcmp(s.model, "tts_decoder") && s.n_tensors == dec.n);
  snprintf(path, sizeof path, "%s/model.safetensors", out);
  same_tensors(path, &dec, false);

  /* export: a checkpoint-like directory holding the decoder and the LLM table */
  snprintf(src, sizeof src, "%s/ckpt", dir);
  copy_config(src);
  st_entry *es = calloc((size_t)(dec.n + llm.n), sizeof *es);
  for (int i = 0; i < dec.n + llm.n; i++) {
    const st_tensor *t = i < dec.n ? &dec.tensors[i] : &llm.tensors[i - dec.n];
    es[i] = (st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
    memcpy(es[i].shape, t->shape, sizeof t->shape);
  }
  st_sort_entries(es, dec.n + llm.n);
  snprintf(path, sizeof path, "%s/model.safetensors", src);
  CHECK_MSG(st_write(path, es, dec.n + llm.n, NULL, 0, err, sizeof err) == 0, "%s", err);
  free(es);
  snprintf(out, sizeof out, "%s/export", dir);
  CHECK_MSG(stage_hf_export(src, out, NULL, &s, err, sizeof err) == 0, "%s", err);
  CHECK_MSG(s.n_tensors == dec.n && s.n_ignored == 1, "%d tensors, %d ignored", s.n_tensors,
            s.n_ignored);
  snprintf(path, sizeof path, "%s/model.safetensors", out);
  same_tensors(path, &dec, true); /* the decoder alone, in bf16 */
  snprintf(path, sizeof path, "%s/config.json", out);
  json_error_t je;
  json_t *cfg = json_load_file(path, 0, &je);
  CHECK(cfg && json_integer_value(json_object_get(cfg, "transformer_num_blocks")) == 2 &&
        json_integer_value(json_object_get(cfg, "transformer_attention_dim")) == 32 &&
        !strcmp(json_string_value(json_object_get(cfg, "torch_dtype")), "bfloat16"));
  json_decref(cfg);
  /* and it imports again (its config keeps the release keys) */
  snprintf(src, sizeof src, "%s/reimported", dir);
  CHECK_MSG(stage_hf_import(out, src, &f32, &s, err, sizeof err) == 0, "%s", err);

  /* a decoder without out_fnn.bias is refused by name */
  snprintf(src, sizeof src, "%s/broken", dir);
  copy_config(src);
  es = calloc((size_t)dec.n, sizeof *es);
  int n = 0;
  for (int i = 0; i < dec.n; i++) {
    const st_tensor *t = &dec.tensors[i];
    if (!strcmp(t->name, "out_fnn.bias")) continue;
    es[n] = (st_entry){.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .data = t->data};
    memcpy(es[n++].shape, t->shape, sizeof t->shape);
  }
  snprintf(path, sizeof path, "%s/model.safetensors", src);
  CHECK(st_write(path, es, n, NULL, 0, err, sizeof err) == 0);
  free(es);
  snprintf(out, sizeof out, "%s/broken-out", dir);
  CHECK(stage_hf_import(src, out, &f32, &s, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "1 missing: out_fnn.bias"), "%s", err);

  st_file_close(&dec);
  st_file_close(&llm);
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd)) fprintf(stderr, "could not remove %s\n", dir);
  return vt_test_finish("test_tts_io");
}
