// ctest-labels: unit
/* Stochastic rounding of bf16 weight copies (vt_f32_to_bf16_sr, vt_sr_bits in
 * autograd/kernels_optim.h; the backend's convert_sr; vt_params_set_rounding):
 *  - every output is one of the two bf16 neighbours of x (truncation, or one ulp up in
 *    magnitude), exact values stay exact, NaN stays NaN, infinities stay;
 *  - the mean of N roundings of x equals x within 5 standard deviations of a Bernoulli mean,
 *    5 gap sqrt(p (1 - p) / N) with p = x's distance from the lower neighbour over the gap,
 *    and the frequency of rounding up is p within the same bound;
 *  - the bits depend only on (key, flat index): one call equals two calls over halves;
 *  - the store: rounding off gives exactly the round-to-nearest-even copies (the bits of
 *    vt_f32_to_bf16, as before); on, the same step gives the same bits, another step other
 *    bits, and a parameter write makes the same bits for its range as a whole-store refresh. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/kernels_optim.h"
#include "autograd/params.h"
#include "tests/check.h"

/* Copies a and b agree at the n store offsets at[] (the values, not the padding). */
static bool same_copies(const uint16_t *a, const uint16_t *b, const int *at, int n) {
  for (int i = 0; i < n; i++)
    if (a[at[i]] != b[at[i]]) return false;
  return true;
}

static float lower_bf16(float x) { /* truncation toward zero */
  uint32_t u = vt_f32_bits(x) & 0xffff0000u;
  return vt_bits_f32(u);
}

static float bf16f(uint16_t h) { return vt_bf16_to_f32(h); }

static void check_mean(float x, int n) {
  float lo = lower_bf16(x);
  float hi = bf16f((uint16_t)((vt_f32_bits(x) >> 16) + 1u));
  double gap = fabs((double)hi - lo), p = fabs((double)x - lo) / gap;
  double sum = 0;
  int ups = 0, others = 0;
  uint64_t key = vt_sr_key(7, 11);
  for (int i = 0; i < n; i++) {
    float y = bf16f(vt_f32_to_bf16_sr(x, vt_sr_bits(key, (uint64_t)i)));
    if (y == hi)
      ups++;
    else if (y != lo)
      others++;
    sum += y;
  }
  double sd = gap * sqrt(p * (1 - p) / n), mean = sum / n;
  CHECK_MSG(others == 0, "x = %.9g: %d outputs are not a neighbour (%.9g, %.9g)", x, others, lo,
            hi);
  CHECK_MSG(fabs(mean - x) <= 5 * sd + 1e-12 * fabs((double)x),
            "x = %.9g: mean of %d roundings %.9g, off by %.3g > 5 sd = %.3g", x, n, mean,
            fabs(mean - x), 5 * sd);
  CHECK_MSG(fabs((double)ups / n - p) <= 5 * sqrt(p * (1 - p) / n) + 1e-12,
            "x = %.9g: rounded up %d of %d times, expected p = %.4f", x, ups, n, p);
}

int main(void) {
  /* neighbours, mean, frequency */
  const float xs[] = {1.0f + 0x1.0p-10f, 1.0f + 0x1.8p-9f, -3.14159265f, 1e-3f, -7.77e5f, 0.1f,
                      1.0f + 0x1.0p-20f, 6.5e-39f /* subnormal */};
  for (size_t i = 0; i < sizeof xs / sizeof *xs; i++) check_mean(xs[i], 40000);
  /* exact values, NaN, infinities */
  uint64_t key = vt_sr_key(1, 2);
  const float exact[] = {0.0f, -0.0f, 1.0f, -2.5f, 0x1.fep127f, 3.0f};
  for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
    for (uint64_t j = 0; j < 64; j++)
      CHECK(vt_f32_to_bf16_sr(exact[i], vt_sr_bits(key, j)) == vt_f32_to_bf16(exact[i]));
  CHECK(isnan(bf16f(vt_f32_to_bf16_sr(NAN, 0xffffu))));
  CHECK(bf16f(vt_f32_to_bf16_sr(INFINITY, 0xffffu)) == INFINITY);
  CHECK(bf16f(vt_f32_to_bf16_sr(-INFINITY, 0xffffu)) == -INFINITY);
  /* the backend kernel: chunking does not matter, and it is the shared function */
  const vt_backend *be = vt_backend_cpu();
  CHECK(be->convert_sr != NULL);
  enum { N = 50001 };
  float *src = malloc(sizeof(float) * N);
  uint16_t *a = malloc(2 * N), *b = malloc(2 * N);
  for (int i = 0; i < N; i++) src[i] = sinf((float)i * 0.37f) * (1.0f + (float)i / N);
  be->convert_sr(be, N, src, a, key, 100);
  be->convert_sr(be, 20000, src, b, key, 100);
  be->convert_sr(be, N - 20000, src + 20000, b + 20000, key, 100 + 20000);
  CHECK(memcmp(a, b, 2 * N) == 0);
  int diff_rne = 0;
  for (int i = 0; i < N; i++) {
    CHECK(a[i] == vt_f32_to_bf16_sr(src[i], vt_sr_bits(key, 100 + (uint64_t)i)));
    diff_rne += a[i] != vt_f32_to_bf16(src[i]);
  }
  CHECK_MSG(diff_rne > N / 10, "only %d of %d values differ from round to nearest", diff_rne, N);
  /* the store */
  char err[256];
  vt_params ps;
  CHECK(vt_params_init(&ps, (vt_device){VT_DEV_CPU, 0}) == 0);
  vt_tensor *w1 = vt_params_add(&ps, "w1", VT_F32, 2, (int64_t[]){100, 7}, err, sizeof err);
  vt_tensor *w2 = vt_params_add(&ps, "w2", VT_F32, 1, (int64_t[]){333}, err, sizeof err);
  CHECK(w1 && w2 && vt_params_alloc(&ps, err, sizeof err) == 0);
  CHECK(vt_param_write_f32(&ps, w1, src, err, sizeof err) == 0);
  CHECK(vt_param_write_f32(&ps, w2, src + 700, err, sizeof err) == 0);
  CHECK(vt_params_enable_lowp(&ps, VT_BF16, err, sizeof err) == 0);
  /* the store's offsets of the two parameters' values (the alignment padding between them
   * holds no value, and its copies are never written) */
  int n = 0, at[1033];
  for (int k = 0; k < ps.n; k++)
    for (int64_t j = 0; j < vt_numel(&ps.items[k]->t); j++)
      at[n++] = (int)(ps.items[k]->offset + (size_t)j);
  CHECK(n == 1033);
  const int span = at[n - 1] + 1;
  uint16_t *copy = ps.lowp, *s1 = calloc((size_t)span, 2), *s2 = calloc((size_t)span, 2);
  const float *master = ps.data[VT_F32];
  int rne_bad = 0;
  for (int i = 0; i < n; i++) rne_bad += copy[at[i]] != vt_f32_to_bf16(master[at[i]]);
  CHECK_MSG(rne_bad == 0, "rounding off: %d copies differ from round to nearest even", rne_bad);
  vt_params_sync_lowp_step(&ps, 5); /* still off: unchanged */
  rne_bad = 0;
  for (int i = 0; i < n; i++) rne_bad += copy[at[i]] != vt_f32_to_bf16(master[at[i]]);
  CHECK(rne_bad == 0);
  CHECK(vt_params_set_rounding(&ps, true, 42, err, sizeof err) == 0);
  vt_params_sync_lowp_step(&ps, 3);
  for (int i = 0; i < n; i++) s1[at[i]] = copy[at[i]];
  uint64_t k3 = vt_sr_key(42, 3);
  int bad = 0, differs = 0;
  for (int i = 0; i < n; i++) {
    int o = at[i];
    bad += s1[o] != vt_f32_to_bf16_sr(master[o], vt_sr_bits(k3, (uint64_t)o));
    differs += s1[o] != vt_f32_to_bf16(master[o]);
  }
  CHECK_MSG(bad == 0, "%d copies are not vt_f32_to_bf16_sr under (seed, step, index)", bad);
  CHECK(differs > n / 10);
  vt_params_sync_lowp_step(&ps, 4);
  CHECK(!same_copies(s1, copy, at, n));
  vt_params_sync_lowp_step(&ps, 3);
  CHECK(same_copies(s1, copy, at, n)); /* reproducible: a resume at step 3 */
  for (int i = 0; i < n; i++) s2[at[i]] = copy[at[i]];
  CHECK(vt_param_write_f32(&ps, w2, src + 700, err, sizeof err) == 0); /* same values again */
  CHECK(same_copies(s2, copy, at, n)); /* the write's own refresh: same bits for its range */
  CHECK(vt_params_set_rounding(&ps, false, 0, err, sizeof err) == 0);
  vt_params_sync_lowp(&ps);
  rne_bad = 0;
  for (int i = 0; i < n; i++) rne_bad += copy[at[i]] != vt_f32_to_bf16(master[at[i]]);
  CHECK(rne_bad == 0);
  /* a backend without the kernel refuses, naming it */
  vt_backend nosr = *vt_backend_cpu();
  nosr.name = "cpu-nosr";
  nosr.convert_sr = NULL;
  vt_params ps2;
  vt_params_init_backend(&ps2, &nosr);
  CHECK(vt_params_set_rounding(&ps2, true, 1, err, sizeof err) == -1 && strstr(err, "cpu-nosr"));
  vt_params_free(&ps2);
  vt_params_free(&ps);
  free(src);
  free(a);
  free(b);
  free(s1);
  free(s2);
  return vt_test_finish("test_stochastic_rounding");
}
