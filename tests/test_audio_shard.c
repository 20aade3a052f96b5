// ctest-labels: unit
/* Audio in the shards (format 3): fbank clips (f16) and waveforms (int16) written and read back
 * exactly, covered by the checksum; `vita prep` (prep_run) stores each <audio> clip's fbank
 * as `vita features audio` computes it and the waveform at 24 kHz, and skips and counts a
 * sample whose audio is corrupt. */
#include "autograd/dtype.h"
#include "data/audio_feat.h"
#include "data/prep.h"
#include "data/shard.h"
#include "tests/check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

static void test_roundtrip(void) {
  char path[512], err[512];
  snprintf(path, sizeof path, "%s/a.h5", tmpdir);
  int32_t ids[3] = {1, 2, 3}, lab[3] = {-100, 5, 6};
  uint16_t fb0[2 * 7 * 4], fb2[3 * 4];
  for (int i = 0; i < 2 * 7 * 4; i++) fb0[i] = vt_f32_to_f16(0.25f * (float)i - 3.0f);
  for (int i = 0; i < 3 * 4; i++) fb2[i] = vt_f32_to_f16(-(float)i);
  int64_t fr0[2] = {7, 7}, fr2[1] = {3}, wl0[2] = {5, 2}, wl2[1] = {4};
  int16_t w00[5] = {1, -2, 3, -32768, 32767}, w01[2] = {9, 8}, w20[4] = {0, 1, 2, 3};
  const int16_t *wv0[2] = {w00, w01}, *wv2[1] = {w20};
  shard_sample_in in[3] = {
      {.id = "two",
       .ids = ids,
       .labels = lab,
       .n = 3,
       .n_audio = 2,
       .fbank_bins = 4,
       .fbank_frames = fr0,
       .fbank = fb0,
       .wave = wv0,
       .wave_len = wl0,
       .wave_rate = 24000},
      {.id = "none", .ids = ids, .labels = lab, .n = 2},
      {.id = "one",
       .ids = ids,
       .labels = lab,
       .n = 3,
       .n_audio = 1,
       .fbank_bins = 4,
       .fbank_frames = fr2,
       .fbank = fb2,
       .wave = wv2,
       .wave_len = wl2,
       .wave_rate = 24000},
  };
  shard_writer *w;
  CHECK(shard_writer_open(&w, path, err, sizeof err) == 0);
  for (int i = 0; i < 3; i++)
    CHECK_MSG(shard_write_sample(w, &in[i], err, sizeof err) == 0, "%s", err);
  /* one shard, one bin count */
  shard_sample_in odd = in[2];
  odd.fbank_bins = 5;
  CHECK(shard_write_sample(w, &odd, err, sizeof err) == -1 && strstr(err, "fbank bins 5"));
  CHECK_MSG(shard_writer_close(w, err, sizeof err) == 0, "%s", err);
  shard *s;
  CHECK_MSG(shard_open(&s, path, true, err, sizeof err) == 0, "%s", err);
  shard_sample o = {0};
  CHECK(shard_read_sample(s, 0, &o, err, sizeof err) == 0);
  CHECK(o.n_audio == 2 && o.fbank_bins == 4 && o.wave_rate == 24000);
  CHECK(o.fbank_frames[0] == 7 && o.fbank_frames[1] == 7 && memcmp(o.fbank, fb0, sizeof fb0) == 0);
  CHECK(o.wave_len[0] == 5 && o.wave_len[1] == 2 && memcmp(o.wave, w00, sizeof w00) == 0 &&
        memcmp(o.wave + 5, w01, sizeof w01) == 0);
  CHECK(shard_read_sample(s, 1, &o, err, sizeof err) == 0 && o.n_audio == 0);
  CHECK(shard_read_sample(s, 2, &o, err, sizeof err) == 0 && o.n_audio == 1);
  CHECK(o.fbank_frames[0] == 3 && memcmp(o.fbank, fb2, sizeof fb2) == 0 && o.wave_len[0] == 4 &&
        memcmp(o.wave, w20, sizeof w20) == 0);
  shard_sample_free(&o);
  shard_close(s);

  /* a flipped byte inside the fbank data fails the checksum */
  FILE *f = fopen(path, "rb");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  unsigned char *buf = malloc((size_t)n);
  fseek(f, 0, SEEK_SET);
  CHECK(fread(buf, 1, (size_t)n, f) == (size_t)n);
  fclose(f);
  long hit = -1;
  for (long i = 0; i + 4 <= n && hit < 0; i++) /* fb0[5..6] as little-endian bytes */
    if (memcmp(buf + i, fb0 + 5, 4) == 0) hit = i;
  CHECK(hit >= 0);
  if (hit >= 0) {
    buf[hit] ^= 0x40;
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad.h5", tmpdir);
    f = fopen(bad, "wb");
    fwrite(buf, 1, (size_t)n, f);
    fclose(f);
    CHECK(shard_open(&s, bad, true, err, sizeof err) == -1 && strstr(err, "checksum"));
  }
  free(buf);
}

static void test_prep(void) {
  char err[1024], json[512], out[512], tokdir[4096], cmd[2048];
  const char *fx = getenv("VT_FIXTURES"), *shared = getenv("VT_SHARED_DIR");
  snprintf(tokdir, sizeof tokdir, "%s/data/qwen-tokenizer", shared ? shared : "../shared");
  snprintf(cmd, sizeof cmd, "cp '%s/audio/chirp16k.wav' '%s/audio/espeak_hello.wav' '%s/'", fx, fx,
           tmpdir);
  CHECK(system(cmd) == 0);
  snprintf(cmd, sizeof cmd, "printf 'RIFF0000WAVEfmt junk' > '%s/cut.wav'", tmpdir);
  CHECK(system(cmd) == 0);
  snprintf(json, sizeof json, "%s/data.jsonl", tmpdir);
  FILE *f = fopen(json, "w");
  const char *q = "\"conversations\": [{\"from\": \"human\", \"value\": \"<audio>\\nWhat?\"}, "
                  "{\"from\": \"gpt\", \"value\": \"Words.\"}]";
  fprintf(f, "{\"id\": \"a\", \"audio\": \"chirp16k.wav\", %s}\n", q);
  fprintf(f, "{\"id\": \"b\", \"audio\": \"espeak_hello.wav\", %s}\n", q);
  fprintf(f, "{\"id\": \"c\", \"audio\": \"cut.wav\", %s}\n", q);
  fprintf(f, "{\"id\": \"d\", \"conversations\": [{\"from\": \"human\", \"value\": \"Hi\"}, "
             "{\"from\": \"gpt\", \"value\": \"Hello.\"}]}\n");
  fclose(f);
  tok_tokenizer *tok;
  if (tok_init(&tok, tokdir, err, sizeof err)) {
    CHECK_MSG(false, "%s", err);
    return;
  }
  sample_config cfg;
  sample_config_default(&cfg);
  aud_prep_opts ao = aud_prep_opts_default();
  ao.wave_rate = 24000;
  snprintf(out, sizeof out, "%s/shards", tmpdir);
  const char *inputs[1] = {json};
  prep_opts o = {
      .cfg = &cfg, .tok = tok, .inputs = inputs, .n_inputs = 1, .out_dir = out, .audio = &ao};
  prep_stats st;
  CHECK_MSG(prep_run(&o, &st, err, sizeof err) == 0, "%s", err);
  CHECK(st.n_read == 4 && st.n_written == 3 && st.n_skipped[SAMPLE_BAD_MEDIA] == 1);
  CHECK(st.n_audio == 2 && st.n_audio_frames == 98 + 101);
  CHECK(st.n_skips == 1 && strcmp(st.skips[0].id, "c") == 0 &&
        strstr(st.skips[0].message, "cut.wav"));
  prep_stats_free(&st);

  char sp[600];
  snprintf(sp, sizeof sp, "%s/shard-00000.h5", out);
  shard *s;
  CHECK_MSG(shard_open(&s, sp, true, err, sizeof err) == 0, "%s", err);
  shard_sample o2 = {0};
  CHECK(shard_read_sample(s, 0, &o2, err, sizeof err) == 0);
  CHECK(o2.n_audio == 1 && o2.fbank_frames[0] == 98 && o2.fbank_bins == 80);
  CHECK(o2.wave_len[0] == 24000 && o2.wave_rate == 24000);
  /* the stored features are `vita features audio`'s, rounded to f16 */
  fbank_opts fo = fbank_opts_default();
  fbank_plan *plan;
  fbank_plan_init(&plan, &fo, err, sizeof err);
  aud_load_opts lo = aud_load_opts_default();
  float *feats;
  size_t T;
  char wav[600];
  snprintf(wav, sizeof wav, "%s/chirp16k.wav", tmpdir);
  CHECK(aud_fbank_file(wav, &lo, plan, NULL, 1, &feats, &T, NULL, err, sizeof err) == AUD_OK);
  int bad = 0;
  for (size_t i = 0; i < T * 80; i++) bad += o2.fbank[i] != vt_f32_to_f16(feats[i]);
  CHECK_MSG(T == 98 && bad == 0, "%zu frames, %d values differ", T, bad);
  free(feats);
  fbank_plan_free(plan);
  CHECK(shard_read_sample(s, 1, &o2, err, sizeof err) == 0);
  CHECK(o2.n_audio == 1 && o2.fbank_frames[0] == 101);
  /* espeak's 22050 Hz clip: 22675 samples -> round(22675 * 24000 / 22050) = 24680 */
  CHECK_MSG(o2.wave_len[0] == 24680, "espeak at 24 kHz: %lld samples", (long long)o2.wave_len[0]);
  CHECK(shard_read_sample(s, 2, &o2, err, sizeof err) == 0 && o2.n_audio == 0);
  shard_sample_free(&o2);
  shard_close(s);
  tok_free(tok);
  sample_config_free(&cfg);
}

int main(void) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/vt_test_audio_shard_XXXXXX");
  if (!mkdtemp(tmpdir)) return 1;
  test_roundtrip();
  test_prep();
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
  return vt_test_finish("test_audio_shard");
}
