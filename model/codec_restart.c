/* The codec's codebook initialisation and dead-code re-seeding; see codec_restart.h. */
#include "model/codec_restart.h"

#include <stdlib.h>
#include <string.h>

void codec_restart_init(codec_restart *s, nn_reg *r, const codec_restart_cfg *cfg,
                        int64_t n_codes) {
  memset(s, 0, sizeof *s);
  s->cfg = *cfg;
  s->n_codes = n_codes;
  if (!codec_restart_on(cfg)) return;
  int64_t one = 1;
  s->age = nn_param(r, "quantizer_state", "code_age", NULL, 1, &n_codes);
  s->ready = nn_param(r, "quantizer_state", "initialised", NULL, 1, &one);
}

void codec_restart_freeze_buffers(vt_params *ps) { vt_params_set_buffer(ps, "quantizer_state.*"); }

void codec_restart_reset(const codec_restart *s, const vt_params *ps, bool ready) {
  if (!s->age) return;
  nn_init_const(ps, s->age, 0.0f);
  nn_init_const(ps, s->ready, ready ? 1.0f : 0.0f);
}

/* The nearest of k means [k, d] to row x [d] (squared distance; the first on a tie). */
static int64_t nearest(const float *x, const float *means, int64_t k, int64_t d) {
  int64_t best = 0;
  double best_d = 0;
  for (int64_t c = 0; c < k; c++) {
    double s = 0;
    for (int64_t j = 0; j < d; j++) {
      double e = (double)x[j] - means[c * d + j];
      s += e * e;
    }
    if (c == 0 || s < best_d) best = c, best_d = s;
  }
  return best;
}

bool codec_kmeans(const float *x, int64_t n, int64_t d, int64_t k, int iters, const int64_t *init,
                  float *means, int64_t *bins) {
  double *sum = malloc(sizeof(double) * (size_t)(k * d));
  int64_t *cnt = malloc(sizeof(int64_t) * (size_t)k);
  if (!sum || !cnt) {
    free(sum), free(cnt);
    return false;
  }
  for (int64_t c = 0; c < k; c++) memcpy(means + c * d, x + init[c] * d, sizeof(float) * (size_t)d);
  memset(cnt, 0, sizeof(int64_t) * (size_t)k);
  for (int it = 0; it < iters; it++) {
    memset(sum, 0, sizeof(double) * (size_t)(k * d));
    memset(cnt, 0, sizeof(int64_t) * (size_t)k);
    for (int64_t i = 0; i < n; i++) {
      int64_t c = nearest(x + i * d, means, k, d);
      cnt[c]++;
      for (int64_t j = 0; j < d; j++) sum[c * d + j] += x[i * d + j];
    }
    for (int64_t c = 0; c < k; c++)
      if (cnt[c])
        for (int64_t j = 0; j < d; j++) means[c * d + j] = (float)(sum[c * d + j] / (double)cnt[c]);
  }
  if (bins) memcpy(bins, cnt, sizeof(int64_t) * (size_t)k);
  free(sum), free(cnt);
  return true;
}

void codec_sample_rows(vt_rng *rng, int64_t n, int64_t k, int64_t *out) {
  if (n >= k) {
    /* the first k of a random permutation (a partial Fisher-Yates over 0..n-1) */
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n);
    if (perm) {
      for (int64_t i = 0; i < n; i++) perm[i] = i;
      for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)vt_rng_below(rng, (uint64_t)(n - i));
        int64_t t = perm[i];
        perm[i] = perm[j], perm[j] = t;
        out[i] = perm[i];
      }
      free(perm);
      return;
    }
  }
  for (int64_t i = 0; i < k; i++) out[i] = (int64_t)vt_rng_below(rng, (uint64_t)n);
}

/* Whether latent is [B, d, T] (n: its B * T frames); false with the ctx failed. */
static bool frames_shape(vt_ctx *ctx, const vt_tensor *latent, int64_t d, int64_t *n) {
  if (vt_ctx_failed(ctx)) return false;
  if (latent->ndim != 3 || latent->shape[1] != d) {
    char s[96];
    vt_ctx_fail(ctx, "codec_restart", "latent %s must be [B, %lld, T]",
                vt_shape_str(latent, s, sizeof s), (long long)d);
    return false;
  }
  *n = latent->shape[0] * latent->shape[2];
  return true;
}

/* The frames of latent [B, d, T] as host rows [B * T, d]; NULL with the ctx failed. */
static float *frames(vt_ctx *ctx, vt_tensor *latent, int64_t d, int64_t *n) {
  if (!frames_shape(ctx, latent, d, n)) return NULL;
  int64_t B = latent->shape[0], T = latent->shape[2];
  float *h = malloc(sizeof(float) * (size_t)(B * d * T)),
        *x = malloc(sizeof *x * (size_t)(B * d * T));
  if (!h || !x) {
    free(h), free(x);
    vt_ctx_fail(ctx, "codec_restart", "out of host memory for %lld frames", (long long)(B * T));
    return NULL;
  }
  vt_to_host(ctx, latent, h);
  for (int64_t b = 0; b < B; b++)
    for (int64_t j = 0; j < d; j++)
      for (int64_t t = 0; t < T; t++) x[(b * T + t) * d + j] = h[(b * d + j) * T + t];
  free(h);
  return x;
}

/* Writes host values into a parameter in place (the codebook, the state buffers). */
static void put(vt_ctx *ctx, vt_tensor *t, const float *host) {
  if (vt_ctx_failed(ctx)) return;
  if (t->dtype != VT_F32) {
    vt_ctx_fail(ctx, "codec_restart", "the codebook and its state must be f32 parameters");
    return;
  }
  const vt_backend *be = vt_ctx_backend(ctx);
  be->copy(be, t->data, host, sizeof(float) * (size_t)vt_numel(t), VT_COPY_H2D);
}

static bool check_codebook(const codec_restart *s, vt_ctx *ctx, const vt_tensor *cb,
                           const vt_rng *rng) {
  if (vt_ctx_failed(ctx)) return false;
  if (!rng) {
    vt_ctx_fail(ctx, "codec_restart", "a training batch without an rng to draw frames from");
    return false;
  }
  if (cb->ndim != 2 || cb->shape[0] != s->n_codes) {
    char sh[96];
    vt_ctx_fail(ctx, "codec_restart", "codebook %s must be [%lld, d]",
                vt_shape_str(cb, sh, sizeof sh), (long long)s->n_codes);
    return false;
  }
  return true;
}

bool codec_restart_pending(const codec_restart *s, vt_ctx *ctx) {
  if (!s->cfg.kmeans_init || !s->ready || vt_ctx_failed(ctx)) return false;
  float ready = 1.0f;
  vt_to_host(ctx, s->ready, &ready);
  return ready == 0.0f;
}

void codec_restart_first(const codec_restart *s, vt_ctx *ctx, vt_tensor *codebook,
                         vt_tensor *latent, vt_rng *rng) {
  if (!codec_restart_pending(s, ctx) || !check_codebook(s, ctx, codebook, rng)) return;
  int64_t k = s->n_codes, d = codebook->shape[1], n = 0;
  float *x = frames(ctx, latent, d, &n), *means = malloc(sizeof(float) * (size_t)(k * d));
  int64_t *init = malloc(sizeof(int64_t) * (size_t)k);
  if (x) {
    bool ok = means && init;
    if (ok) codec_sample_rows(rng, n, k, init);
    if (!ok || !codec_kmeans(x, n, d, k, s->cfg.kmeans_iters, init, means, NULL))
      vt_ctx_fail(ctx, "codec_restart", "out of host memory for the k-means of %lld codes",
                  (long long)k);
    put(ctx, codebook, means);
    put(ctx, s->ready, (float[]){1.0f});
  }
  free(x), free(means), free(init);
}

int codec_restart_update(const codec_restart *s, vt_ctx *ctx, vt_tensor *codebook,
                         vt_tensor *latent, vt_tensor *idx, vt_rng *rng) {
  if (s->cfg.dead_batches <= 0 || !s->age) return 0;
  if (!check_codebook(s, ctx, codebook, rng)) return -1;
  int64_t k = s->n_codes, d = codebook->shape[1], n = 0, n_dead = 0;
  if (!frames_shape(ctx, latent, d, &n)) return -1;
  /* the frames and the codebook come to the host only in a batch that re-seeds */
  float *x = NULL, *age = malloc(sizeof(float) * (size_t)k), *cb = NULL;
  int32_t *codes = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
  int64_t *dead = malloc(sizeof(int64_t) * (size_t)k), *rows = malloc(sizeof(int64_t) * (size_t)k);
  int rc = -1;
  if (!age || !codes || !dead || !rows) {
    vt_ctx_fail(ctx, "codec_restart", "out of host memory for %lld codes", (long long)k);
    goto done;
  }
  if (idx->dtype != VT_I32 || vt_numel(idx) != n) {
    char sh[96];
    vt_ctx_fail(ctx, "codec_restart", "codes %s: expected i32 with %lld entries",
                vt_shape_str(idx, sh, sizeof sh), (long long)n);
    goto done;
  }
  vt_to_host(ctx, s->age, age);
  vt_to_host(ctx, idx, codes);
  for (int64_t c = 0; c < k; c++) age[c] += 1.0f;
  for (int64_t i = 0; i < n; i++)
    if (codes[i] >= 0 && codes[i] < k) age[codes[i]] = 0.0f;
  for (int64_t c = 0; c < k; c++)
    if (age[c] >= (float)s->cfg.dead_batches) dead[n_dead++] = c;
  if (n_dead) {
    if (!(x = frames(ctx, latent, d, &n))) goto done;
    if (!(cb = malloc(sizeof(float) * (size_t)(k * d)))) {
      vt_ctx_fail(ctx, "codec_restart", "out of host memory for %lld codes", (long long)k);
      goto done;
    }
    vt_to_host(ctx, codebook, cb);
    codec_sample_rows(rng, n, n_dead, rows);
    for (int64_t i = 0; i < n_dead; i++) {
      memcpy(cb + dead[i] * d, x + rows[i] * d, sizeof(float) * (size_t)d);
      age[dead[i]] = 0.0f;
    }
    put(ctx, codebook, cb);
  }
  put(ctx, s->age, age);
  rc = vt_ctx_failed(ctx) ? -1 : (int)n_dead;
done:
  free(x), free(age), free(cb), free(codes), free(dead), free(rows);
  return rc;
}
