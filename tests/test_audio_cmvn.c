// ctest-labels: unit
/* Global CMVN: stats over a clip's fbank give WeNet's load_cmvn mean and istd (fixture from
 * gen_fbank_fixtures.py); the JSON round-trips exactly and reads a WeNet-written file; merging is
 * adding; applying normalises the clip's frames only; bad JSON is refused naming file and field. */
#include "data/audio.h"
#include "data/cmvn.h"
#include "data/fbank.h"
#include "tests/check.h"
#include "tests/fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static void write_text(const char *path, const char *s) {
  FILE *f = fopen(path, "w");
  fputs(s, f);
  fclose(f);
}

static void test_stats(void) {
  vt_fixture *fx = vt_fixture_load("audio/fbank.txt");
  char path[4096], err[512];
  snprintf(path, sizeof path, "%s/audio/chirp16k.wav", getenv("VT_FIXTURES"));
  aud_wave w;
  aud_load_opts lo = aud_load_opts_default();
  CHECK(aud_load(path, &lo, &w, err, sizeof err) == AUD_OK);
  for (size_t i = 0; i < w.n; i++) w.data[i] *= 32768.0f;
  fbank_opts fo = fbank_opts_default();
  fbank_plan *p;
  CHECK(fbank_plan_init(&p, &fo, err, sizeof err) == 0);
  size_t T = fbank_num_frames(p, w.n);
  float *feat = malloc(sizeof(float) * T * 80);
  CHECK(fbank_compute(p, w.data, w.n, feat, NULL) == 0);

  /* two halves merged = the whole */
  cmvn_stats s, a, b;
  CHECK(cmvn_stats_init(&s, 80) == 0 && cmvn_stats_init(&a, 80) == 0 &&
        cmvn_stats_init(&b, 80) == 0);
  cmvn_stats_add(&s, feat, T);
  cmvn_stats_add(&a, feat, 40);
  cmvn_stats_add(&b, feat + 40 * 80, T - 40);
  CHECK(cmvn_stats_merge(&a, &b) == 0 && a.frames == (int64_t)T);
  double worst = 0;
  for (int d = 0; d < 80; d++) worst = fmax(worst, fabs(a.sum[d] - s.sum[d]) / fabs(s.sum[d]));
  CHECK(worst < 1e-12);
  cmvn_stats c3;
  CHECK(cmvn_stats_init(&c3, 3) == 0 && cmvn_stats_merge(&a, &c3) == -1);
  cmvn_stats_free(&c3);

  cmvn c;
  CHECK(cmvn_from_stats(&c, &s, err, sizeof err) == 0 && c.dim == 80);
  /* the features differ from torchaudio's by < 2e-4, so mean within that and istd relatively */
  CHECK_CLOSE("cmvn_mean", c.mean, vt_fixture_get(fx, "cmvn_mean")->f, 80, 2e-4, 0);
  CHECK_CLOSE("cmvn_istd", c.istd, vt_fixture_get(fx, "cmvn_istd")->f, 80, 0, 1e-3);

  /* save -> load: the same doubles */
  char js[4400];
  snprintf(js, sizeof js, "%s/global_cmvn", tmpdir);
  CHECK_MSG(cmvn_stats_save(&s, js, err, sizeof err) == 0, "%s", err);
  cmvn_stats l;
  CHECK_MSG(cmvn_stats_load(&l, js, err, sizeof err) == 0, "%s", err);
  CHECK(l.dim == 80 && l.frames == s.frames);
  CHECK(memcmp(l.sum, s.sum, 80 * sizeof(double)) == 0 &&
        memcmp(l.sumsq, s.sumsq, 80 * sizeof(double)) == 0);
  cmvn_stats_free(&l);

  /* apply: normalised frames have mean 0 and variance 1; frames past the clip are untouched */
  float *buf = malloc(sizeof(float) * (T + 2) * 80);
  memcpy(buf, feat, sizeof(float) * T * 80);
  for (int i = 0; i < 160; i++) buf[T * 80 + (size_t)i] = 0.0f;
  cmvn_apply(&c, buf, T);
  double m0 = 0, v0 = 0;
  for (size_t t = 0; t < T; t++) m0 += buf[t * 80 + 5] / (double)T;
  for (size_t t = 0; t < T; t++) v0 += pow(buf[t * 80 + 5] - m0, 2) / (double)T;
  CHECK_MSG(fabs(m0) < 1e-4 && fabs(v0 - 1) < 1e-3, "bin 5: mean %.2e var %.6f", m0, v0);
  CHECK(buf[T * 80] == 0.0f && buf[T * 80 + 159] == 0.0f);
  free(buf);

  cmvn_free(&c);
  cmvn_stats_free(&s);
  cmvn_stats_free(&a);
  cmvn_stats_free(&b);
  free(feat);
  fbank_plan_free(p);
  aud_wave_free(&w);
  vt_fixture_free(fx);
}

static void test_json(void) {
  char p[4400], err[512];
  cmvn_stats s;
  /* a file as WeNet's compute_cmvn_stats.py writes it: integers allowed, var floored */
  snprintf(p, sizeof p, "%s/wenet.json", tmpdir);
  write_text(p, "{\"mean_stat\": [20, 40, 5], \"var_stat\": [200, 800, 2.5], \"frame_num\": 10}");
  CHECK_MSG(cmvn_stats_load(&s, p, err, sizeof err) == 0, "%s", err);
  cmvn c;
  CHECK(cmvn_from_stats(&c, &s, err, sizeof err) == 0);
  /* means 2, 4, 0.5; var 16, 64, 0 -> floored at 1e-20 */
  CHECK(c.mean[0] == 2.0f && c.mean[1] == 4.0f && c.mean[2] == 0.5f);
  CHECK(c.istd[0] == 0.25f && c.istd[1] == 0.125f && fabsf(c.istd[2] - 1e10f) < 1e4f);
  cmvn_free(&c);
  cmvn_stats_free(&s);

  const struct {
    const char *json, *want;
  } bad[] = {
      {"{\"var_stat\": [1], \"frame_num\": 3}", "mean_stat"},
      {"{\"mean_stat\": [1, 2], \"var_stat\": [1], \"frame_num\": 3}", "var_stat: expected 2"},
      {"{\"mean_stat\": [1, \"x\"], \"var_stat\": [1, 2], \"frame_num\": 3}", "mean_stat[1]"},
      {"{\"mean_stat\": [1], \"var_stat\": [1], \"frame_num\": 0}", "frame_num"},
      {"{\"mean_stat\": [1], \"var_stat\": [1]}",
       "frame_num: expected a positive number, found no"},
      {"{\"mean_stat\": [], \"var_stat\": [], \"frame_num\": 1}", "var_stat"},
      {"[1, 2]", "expected a JSON object"},
      {"{\"mean_stat\": [1,", "expected CMVN JSON"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(p, sizeof p, "%s/bad%zu.json", tmpdir, i);
    write_text(p, bad[i].json);
    err[0] = 0;
    int rc = cmvn_stats_load(&s, p, err, sizeof err);
    CHECK_MSG(rc == -1 && strstr(err, p) && strstr(err, bad[i].want), "case %zu: '%s'", i, err);
    cmvn_stats_free(&s);
  }
  snprintf(p, sizeof p, "%s/none.json", tmpdir);
  CHECK(cmvn_stats_load(&s, p, err, sizeof err) == -1 && strstr(err, "none.json"));
  cmvn_stats_init(&s, 4);
  CHECK(cmvn_from_stats(&c, &s, err, sizeof err) == -1 && strstr(err, "0 frames"));
  cmvn_stats_free(&s);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vt_test_cmvn_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  test_stats();
  test_json();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return vt_test_finish("test_audio_cmvn");
}
