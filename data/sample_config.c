/* The data (prep) config: YAML via libyaml (data/yamlcfg.h). */
#include "data/sample.h"
#include "data/yamlcfg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sample_config_default(sample_config *c) {
  memset(c, 0, sizeof *c);
  c->max_len = 6200;
  c->shard_samples = 8192;
  c->codec_vocab = 1024;
  c->check_media = true;
  c->media = media_cfg_default();
}

void sample_config_free(sample_config *c) {
  free(c->tokenizer);
  free((char *)c->prompts.image);
  free((char *)c->prompts.video);
  free((char *)c->prompts.language);
  for (size_t i = 0; i < c->n_sets; i++) {
    free(c->sets[i].name);
    for (int k = 0; k < 3; k++) free(c->sets[i].folder[k]);
  }
  free(c->sets);
  for (size_t i = 0; i < c->n_inputs; i++) free(c->inputs[i]);
  free(c->inputs);
  sample_config_default(c);
}

static char *resolved(ycfg *y, const char *p) {
  char buf[8192];
  ycfg_resolve(y, p, buf, sizeof buf);
  return strdup(buf);
}

static int load_sets(ycfg *y, yaml_node_t *sets, sample_config *c, char *err, size_t err_len) {
  static const char *const set_keys[] = {"folder", "image_folder", "video_folder", "audio_folder",
                                         NULL};
  if (!sets) return 0;
  if (sets->type != YAML_MAPPING_NODE) {
    snprintf(err, err_len, "%s:%zu: sets: expected a mapping of set name to folders", y->path,
             sets->start_mark.line + 1);
    return -1;
  }
  size_t n = (size_t)(sets->data.mapping.pairs.top - sets->data.mapping.pairs.start);
  c->sets = calloc(n ? n : 1, sizeof *c->sets);
  if (!c->sets) {
    snprintf(err, err_len, "%s: sets: out of memory for %zu sets", y->path, n);
    return -1;
  }
  for (yaml_node_pair_t *p = sets->data.mapping.pairs.start; p < sets->data.mapping.pairs.top;
       p++) {
    yaml_node_t *kn = yaml_document_get_node(&y->doc, p->key);
    yaml_node_t *vn = yaml_document_get_node(&y->doc, p->value);
    const char *name;
    if (ycfg_str(y, kn, "sets", &name, err, err_len)) return -1;
    char where[256];
    snprintf(where, sizeof where, "sets.%s", name);
    if (ycfg_check_keys(y, vn, set_keys, where, err, err_len)) return -1;
    sample_set *s = &c->sets[c->n_sets++];
    if (!(s->name = strdup(name))) {
      snprintf(err, err_len, "%s: sets.%s: out of memory", y->path, name);
      return -1;
    }
    const char *all = NULL, *v;
    yaml_node_t *f = ycfg_get(y, vn, "folder");
    if (f && ycfg_str(y, f, "folder", &all, err, err_len)) return -1;
    for (int k = 0; k < 3; k++) {
      f = ycfg_get(y, vn, set_keys[k + 1]);
      v = all;
      if (f && ycfg_str(y, f, set_keys[k + 1], &v, err, err_len)) return -1;
      if (v && !(s->folder[k] = resolved(y, v))) {
        snprintf(err, err_len, "%s: %s: out of memory", y->path, where);
        return -1;
      }
    }
  }
  return 0;
}

int sample_config_load(sample_config *c, const char *path, char *err, size_t err_len) {
  static const char *const keys[] = {"tokenizer",      "max_len", "shard_samples", "check_media",
                                     "system_prompts", "sets",    "inputs",        "codec_vocab",
                                     "media",          NULL};
  static const char *const prompt_keys[] = {"image", "video", "language", NULL};
  ycfg y;
  if (ycfg_load(&y, path, err, err_len)) return -1;
  int rc = -1;
  yaml_node_t *root = ycfg_root(&y), *n;
  if (!root) {
    snprintf(err, err_len, "%s: empty config", path);
    goto done;
  }
  if (ycfg_check_keys(&y, root, keys, "the data config", err, err_len)) goto done;
  const char *s;
  if ((n = ycfg_get(&y, root, "tokenizer"))) {
    if (ycfg_str(&y, n, "tokenizer", &s, err, err_len)) goto done;
    if (!(c->tokenizer = resolved(&y, s))) goto oom;
  }
  /* lengths are int32 token counts, shards are held in memory while written */
  if ((n = ycfg_get(&y, root, "max_len")) &&
      ycfg_int_range(&y, n, "max_len", 1, SAMPLE_MAX_LEN, &c->max_len, err, err_len))
    goto done;
  if ((n = ycfg_get(&y, root, "shard_samples")) &&
      ycfg_int_range(&y, n, "shard_samples", 1, SAMPLE_MAX_SHARD_SAMPLES, &c->shard_samples, err,
                     err_len))
    goto done;
  if ((n = ycfg_get(&y, root, "codec_vocab")) &&
      ycfg_int_range(&y, n, "codec_vocab", 1, INT32_MAX, &c->codec_vocab, err, err_len))
    goto done;
  if ((n = ycfg_get(&y, root, "check_media")) &&
      ycfg_bool(&y, n, "check_media", &c->check_media, err, err_len))
    goto done;
  if ((n = ycfg_get(&y, root, "system_prompts"))) {
    if (ycfg_check_keys(&y, n, prompt_keys, "system_prompts", err, err_len)) goto done;
    const char **dst[3] = {&c->prompts.image, &c->prompts.video, &c->prompts.language};
    for (int k = 0; k < 3; k++) {
      yaml_node_t *p = ycfg_get(&y, n, prompt_keys[k]);
      if (!p) continue;
      if (ycfg_str(&y, p, prompt_keys[k], &s, err, err_len)) goto done;
      if (!(*dst[k] = strdup(s))) goto oom;
    }
  }
  if ((n = ycfg_get(&y, root, "media")) && media_cfg_load(&y, n, &c->media, err, err_len))
    goto done;
  if (load_sets(&y, ycfg_get(&y, root, "sets"), c, err, err_len)) goto done;
  if ((n = ycfg_get(&y, root, "inputs"))) {
    if (n->type != YAML_SEQUENCE_NODE) {
      snprintf(err, err_len, "%s:%zu: inputs: expected a list of JSON files", path,
               n->start_mark.line + 1);
      goto done;
    }
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    c->inputs = calloc(cnt ? cnt : 1, sizeof *c->inputs);
    if (!c->inputs) goto oom;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
      if (ycfg_str(&y, yaml_document_get_node(&y.doc, *it), "inputs[]", &s, err, err_len))
        goto done;
      if (!(c->inputs[c->n_inputs] = resolved(&y, s))) goto oom;
      c->n_inputs++;
    }
  }
  rc = 0;
  goto done;
oom:
  snprintf(err, err_len, "%s: out of memory", path);
done:
  ycfg_free(&y);
  return rc;
}
