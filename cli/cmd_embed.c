/* `vita embed --weights DIR --image FILE`: an image's tiles through the vision tower (and the
 * adapter), for checks against other implementations and for users who cache features. DIR is
 * a VITA checkpoint (config.json model_type "vita-Qwen2": the tower and the projector under the
 * release names; the LLM's tensors are not read) or an InternViT directory (model_type
 * "intern_vit_6b", HF names: the tower only). Writes vision_hidden [N, 1 + P, hidden] (the last
 * hidden state) and vision_tokens [N, 256, llm hidden] (the adapter output; for a tower alone,
 * the pixel-shuffled features [N, 256, 4 hidden] under vision_features). */
#include "checkpoints/safetensors_params.h"
#include "cli/cli.h"
#include "data/tiling.h"
#include "model/vita_model.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt opts[] = {
    {"weights", CLI_OPT_STR, NULL,
     "VITA checkpoint or InternViT directory (config.json + weights)"},
    {"image", CLI_OPT_STR, NULL, "the image (JPEG, PNG, BMP, GIF)"},
    {"out", CLI_OPT_STR, NULL, "write vision_tokens and vision_hidden to this .safetensors"},
    {"max-tiles", CLI_OPT_INT, "12", "most tiles of the dynamic grid"},
    {"aspect", CLI_OPT_STR, "square", "image_aspect_ratio: square or pad"},
    {NULL, 0, NULL, NULL},
};

/* Loads the tower (and adapter) of dir into a new store. Returns 0 or -1 with err. */
static int load(const char *dir, vt_params *ps, vit *tower, vit_adapter *ad, bool *has_ad,
                char *err, size_t err_len) {
  char path[4200];
  snprintf(path, sizeof path, "%s/config.json", dir);
  json_error_t je;
  json_t *root = json_load_file(path, 0, &je);
  if (!root) {
    snprintf(err, err_len, "%s: %s (line %d)", path, je.text, je.line);
    return -1;
  }
  const char *type = json_string_value(json_object_get(root, "model_type"));
  bool vita = type && !strcmp(type, "vita-Qwen2");
  int rc = -1;
  vit_cfg vc;
  if (!vita && !(type && !strcmp(type, "intern_vit_6b"))) {
    snprintf(err, err_len,
             "%s: field \"model_type\": expected \"vita-Qwen2\" or \"intern_vit_6b\", found %s",
             path, type ? type : "none");
    goto done;
  }
  json_t *vj = vita ? json_object_get(root, "vision_config") : root;
  json_t *empty = json_object();
  int bad = vit_cfg_from_json(vj ? vj : empty, path, &vc, err, err_len);
  json_decref(empty);
  if (bad) goto done;
  if (vit_init(tower, ps, &vc, vita ? "model.vision_tower.vision_tower" : "", err, err_len))
    goto done;
  *has_ad = vita;
  if (vita) {
    json_t *h = json_object_get(root, "hidden_size");
    if (!json_is_integer(h)) {
      snprintf(err, err_len, "%s: field \"hidden_size\": expected the LLM's hidden size", path);
      goto done;
    }
    if (vit_adapter_init(ad, ps, "model.mm_projector", 4 * vc.hidden_size, json_integer_value(h),
                         err, err_len))
      goto done;
  }
  if (vt_params_alloc(ps, err, err_len)) goto done;
  st_index ix;
  if (st_index_open(&ix, dir, err, err_len)) goto done;
  int loaded = 0;
  st_load_sel sel = {.n_loaded = &loaded};
  /* a VITA checkpoint also holds the LLM (and audio): only the vision tensors are read */
  rc = st_load_params_sel(ps, &ix, &sel, ST_LOAD_ALLOW_UNEXPECTED, err, err_len);
  st_index_close(&ix);
done:
  json_decref(root);
  return rc;
}

static int run(const cli_args *a) {
  const char *dir = cli_args_str(a, "weights"), *file = cli_args_str(a, "image");
  const char *out = cli_args_str(a, "out"), *aspect = cli_args_str(a, "aspect");
  if (!dir || !file || a->n_positional) {
    fprintf(stderr, "vita embed: give --weights DIR and --image FILE (see vita embed --help)\n");
    return CLI_EXIT_USAGE;
  }
  if (strcmp(aspect, "square") && strcmp(aspect, "pad")) {
    fprintf(stderr, "vita embed: --aspect: expected square or pad, found '%s'\n", aspect);
    return CLI_EXIT_USAGE;
  }
  static char err[1 << 16];
  vt_params ps = {0};
  vit tower = {0};
  vit_adapter ad = {0};
  bool has_ad = false;
  int rc = CLI_EXIT_FAIL;
  img_rgb im = {0};
  tile_set ts = {0};
  float *px = NULL, *hid = NULL, *tok = NULL;
  vt_ctx *ctx = NULL;
  vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0});
  if (load(dir, &ps, &tower, &ad, &has_ad, err, sizeof err)) {
    fprintf(stderr, "vita embed: %s\n", err);
    goto done;
  }
  img_status st = img_decode_file(file, 0, &im, err, sizeof err);
  if (st) {
    fprintf(stderr, "vita embed: %s: %s\n", img_status_name(st), err);
    goto done;
  }
  tile_cfg tc = tile_cfg_default();
  tc.size = (int)tower.cfg.image_size;
  tc.max_tiles = (int)cli_args_int(a, "max-tiles");
  tc.pad = !strcmp(aspect, "pad");
  if (tc.max_tiles < 1 || tile_image(&im, &tc, &ts)) {
    fprintf(stderr, "vita embed: %s: cannot tile (max-tiles %d)\n", file, tc.max_tiles);
    goto done;
  }
  int64_t n = ts.n, s = tc.size, g = s / tower.cfg.patch_size, h = tower.cfg.hidden_size;
  size_t per = (size_t)(3 * s * s);
  px = malloc(sizeof(float) * per * (size_t)n);
  const char *why = NULL;
  ctx = px ? vt_ctx_init(&(vt_ctx_opts){.device = {VT_DEV_CPU, 0}}, &why) : NULL;
  if (!ctx) {
    fprintf(stderr, "vita embed: %s\n", why ? why : "out of memory");
    goto done;
  }
  for (int64_t t = 0; t < n; t++)
    tile_normalize(ts.px + (size_t)t * per, (int)s, px + (size_t)t * per);
  vt_set_grad_enabled(ctx, false);
  vt_tensor *x = vt_from_host(ctx, VT_F32, 4, (int64_t[]){n, 3, s, s}, px);
  vt_tensor *last = vit_hidden(&tower, ctx, x, NULL);
  vt_tensor *feat = vit_features(&tower, ctx, last, g, g);
  vt_tensor *y = has_ad ? vit_adapter_forward(&ad, ctx, feat) : feat;
  if (vt_ctx_failed(ctx)) {
    fprintf(stderr, "vita embed: %s\n", vt_ctx_error(ctx));
    goto done;
  }
  printf("%s: %d tiles (grid %dx%d%s) -> %s [%lld, %lld, %lld]\n", file, ts.n, ts.cols, ts.rows,
         ts.n > ts.cols * ts.rows ? " + thumbnail" : "",
         has_ad ? "vision_tokens" : "vision_features", (long long)y->shape[0],
         (long long)y->shape[1], (long long)y->shape[2]);
  if (out) {
    hid = malloc(sizeof(float) * (size_t)vt_numel(last));
    tok = malloc(sizeof(float) * (size_t)vt_numel(y));
    if (!hid || !tok) {
      fprintf(stderr, "vita embed: out of memory\n");
      goto done;
    }
    vt_to_host(ctx, last, hid);
    vt_to_host(ctx, y, tok);
    st_entry e[2] = {{"vision_hidden", VT_F32, 3, {n, 1 + g * g, h}, hid},
                     {has_ad ? "vision_tokens" : "vision_features",
                      VT_F32,
                      3,
                      {y->shape[0], y->shape[1], y->shape[2]},
                      tok}};
    st_kv meta = {"format", "pt"};
    if (st_write(out, e, 2, &meta, 1, err, sizeof err)) {
      fprintf(stderr, "vita embed: %s\n", err);
      goto done;
    }
    printf("wrote %s\n", out);
  }
  rc = CLI_EXIT_OK;
done:
  vt_ctx_free(ctx);
  free(px), free(hid), free(tok);
  tile_set_free(&ts);
  img_free(&im);
  vit_free(&tower);
  vt_params_free(&ps);
  return rc;
}

const cli_cmd cli_cmd_embed = {"embed", "an image's tiles through the vision tower and adapter",
                               NULL, opts, run};
