/* fbank throughput: seconds of audio per second of compute for Kaldi fbank (data/fbank.c) over
 * clips of real speech (Debian's alsa-utils recording resampled to 16 kHz, tiled to the clip
 * length). bench/run_fbank_vs_torchaudio.sh runs it beside torchaudio's compliance.kaldi.fbank.
 * Usage: bench_fbank [CLIP_SECONDS=10] [CLIPS=30] [REPS=3]; threads from OMP_NUM_THREADS. */
#include "data/audio.h"
#include "data/fbank.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  double clip_s = argc > 1 ? atof(argv[1]) : 10.0;
  int clips = argc > 2 ? atoi(argv[2]) : 30, reps = argc > 3 ? atoi(argv[3]) : 3;
  const char *src =
      getenv("BENCH_WAV") ? getenv("BENCH_WAV") : "/usr/share/sounds/alsa/Front_Center.wav";
  char err[512];
  aud_wave w;
  aud_load_opts lo = aud_load_opts_default();
  if (aud_load(src, &lo, &w, err, sizeof err) != AUD_OK) {
    fprintf(stderr, "bench_fbank: %s\n", err);
    return 1;
  }
  size_t n = (size_t)(clip_s * 16000);
  float *x = malloc(sizeof(float) * n);
  for (size_t i = 0; i < n; i++) x[i] = 32768.0f * w.data[i % w.n];
  fbank_opts o = fbank_opts_default();
  fbank_plan *p;
  if (fbank_plan_init(&p, &o, err, sizeof err)) {
    fprintf(stderr, "bench_fbank: %s\n", err);
    return 1;
  }
  size_t T = fbank_num_frames(p, n);
  float *out = malloc(sizeof(float) * T * 80);
  fbank_compute(p, x, n, out, NULL); /* warm-up */
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    for (int c = 0; c < clips; c++) fbank_compute(p, x, n, out, NULL);
    double dt = now() - t0;
    if (dt < best) best = dt;
  }
  double audio = clip_s * clips;
  printf("c fbank: %d clips x %.1f s, %d threads: %.4f s -> %.0f s of audio per s\n", clips, clip_s,
         omp_get_max_threads(), best, audio / best);
  fbank_plan_free(p);
  free(out);
  free(x);
  aud_wave_free(&w);
  return 0;
}
