// ctest-labels: unit
/* Checkpoint directories: atomic commit with a manifest, newest-complete lookup that skips
 * unfinished (.tmp), manifest-less and corrupt checkpoints, last-K retention, and refusal of
 * a flipped byte or a truncated file with a message naming the file. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoints/ckpt.h"
#include "tests/testutil.h"

static void write_file(const char *dir, const char *name, const char *text) {
  char p[CKPT_PATH_MAX], err[256];
  snprintf(p, sizeof p, "%s/%s", dir, name);
  CHECK(ckpt_write_text(p, text, err, sizeof err) == 0);
}

static void save(const char *root, int64_t step, int keep) {
  ckpt_writer w;
  char err[512];
  CHECK_MSG(ckpt_begin(&w, root, step, err, sizeof err) == 0, "%s", err);
  char text[64];
  snprintf(text, sizeof text, "{\"step\": %lld}", (long long)step);
  write_file(w.tmp, "trainer.json", text);
  write_file(w.tmp, "model.bin", "0123456789abcdef");
  CHECK_MSG(ckpt_commit(&w, keep, err, sizeof err) == 0, "%s", err);
}

static bool exists(const char *root, const char *name) {
  char p[CKPT_PATH_MAX];
  snprintf(p, sizeof p, "%s/%s", root, name);
  struct stat st;
  return stat(p, &st) == 0;
}

int main(void) {
  char root[] = "/tmp/vt_ckpt_XXXXXX";
  CHECK(mkdtemp(root) != NULL);
  char dir[CKPT_PATH_MAX], err[1024];
  int64_t step = -1;
  CHECK(ckpt_find_latest(root, dir, sizeof dir, &step, err, sizeof err) == 0);

  save(root, 10, 2);
  save(root, 20, 2);
  save(root, 30, 2);
  CHECK(!exists(root, "step-00000010") && exists(root, "step-00000020") &&
        exists(root, "step-00000030"));
  CHECK(ckpt_find_latest(root, dir, sizeof dir, &step, err, sizeof err) == 1 && step == 30);
  CHECK(ckpt_verify(dir, err, sizeof err) == 0);
  char *t = ckpt_read_text(strcat(strcpy((char[CKPT_PATH_MAX]){0}, dir), "/trainer.json"), err,
                           sizeof err);
  CHECK(t && strcmp(t, "{\"step\": 30}") == 0);
  free(t);

  /* an unfinished checkpoint (crash before commit) is not picked */
  ckpt_writer w;
  CHECK(ckpt_begin(&w, root, 40, err, sizeof err) == 0);
  write_file(w.tmp, "model.bin", "half");
  CHECK(ckpt_find_latest(root, dir, sizeof dir, &step, err, sizeof err) == 1 && step == 30);
  ckpt_abort(&w);
  CHECK(!exists(root, "step-00000040.tmp"));

  /* a flipped byte: refused by name, and the previous checkpoint is used */
  char p[CKPT_PATH_MAX];
  snprintf(p, sizeof p, "%s/step-00000030/model.bin", root);
  FILE *f = fopen(p, "r+b");
  fseek(f, 3, SEEK_SET);
  fputc('X', f);
  fclose(f);
  snprintf(p, sizeof p, "%s/step-00000030", root);
  CHECK(ckpt_verify(p, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "model.bin") && strstr(err, "corrupt"), "%s", err);
  CHECK(ckpt_find_latest(root, dir, sizeof dir, &step, err, sizeof err) == 1 && step == 20);

  /* a truncated file */
  snprintf(p, sizeof p, "%s/step-00000020/model.bin", root);
  CHECK(truncate(p, 5) == 0);
  snprintf(p, sizeof p, "%s/step-00000020", root);
  CHECK(ckpt_verify(p, err, sizeof err) == -1 && strstr(err, "5 bytes"));
  CHECK(ckpt_find_latest(root, dir, sizeof dir, &step, err, sizeof err) == 0);

  /* a missing file and a directory without a manifest */
  save(root, 50, 0);
  snprintf(p, sizeof p, "%s/step-00000050/trainer.json", root);
  unlink(p);
  snprintf(p, sizeof p, "%s/step-00000050", root);
  CHECK(ckpt_verify(p, err, sizeof err) == -1 && strstr(err, "trainer.json"));
  snprintf(p, sizeof p, "%s/step-00000060", root);
  mkdir(p, 0755);
  CHECK(ckpt_verify(p, err, sizeof err) == -1 && strstr(err, "never completed"));

  /* a file the manifest does not list, a manifest of another step, a FIFO in place of a file */
  save(root, 70, 0);
  snprintf(p, sizeof p, "%s/step-00000070", root);
  CHECK(ckpt_verify(p, err, sizeof err) == 0);
  write_file(p, "extra.bin", "sneaked in");
  CHECK(ckpt_verify(p, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "extra.bin: not listed in the manifest"), "%s", err);
  snprintf(p, sizeof p, "%s/step-00000070/extra.bin", root);
  unlink(p);
  char moved[CKPT_PATH_MAX];
  snprintf(p, sizeof p, "%s/step-00000070", root);
  snprintf(moved, sizeof moved, "%s/step-00000013", root);
  CHECK(rename(p, moved) == 0);
  CHECK(ckpt_verify(moved, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "says step 70, the directory is step 13"), "%s", err);
  CHECK(rename(moved, p) == 0);
  snprintf(p, sizeof p, "%s/step-00000070/trainer.json", root);
  unlink(p);
  CHECK(mkfifo(p, 0600) == 0);
  snprintf(p, sizeof p, "%s/step-00000070", root);
  CHECK(ckpt_verify(p, err, sizeof err) == -1); /* at once: the FIFO is never opened to read */
  CHECK_MSG(strstr(err, "trainer.json: cannot open: not a regular file"), "%s", err);

  /* the manifest parser itself */
  static const struct {
    const char *text, *want;
  } bad[] = {
      {"vita-train checkpoint v2\nstep 1\nfile a 1 00000000\n", "line 1: expected"},
      {"vita-train checkpoint v1\nfile a 1 00000000\n", "no \"step N\" line"},
      {"vita-train checkpoint v1\nstep 1\nstep 2\nfile a 1 00000000\n", "line 3"},
      {"vita-train checkpoint v1\nstep -1\nfile a 1 00000000\n", "line 2"},
      {"vita-train checkpoint v1\nstep 1\nfile a -1 00000000\n", "line 3"},
      {"vita-train checkpoint v1\nstep 1\nfile a 18446744073709551616 00000000\n", "line 3"},
      {"vita-train checkpoint v1\nstep 1\nfile ../x 1 00000000\n", "line 3"},
      {"vita-train checkpoint v1\nstep 1\nfile COMPLETE 1 00000000\n", "line 3"},
      {"vita-train checkpoint v1\nstep 1\nfile a 1 0000000g\n", "line 3"},
      {"vita-train checkpoint v1\nstep 1\nfile a 1 00000000\nfile a 2 00000000\n",
       "a is listed twice"},
      {"vita-train checkpoint v1\nstep 1\n", "lists no files"},
      {"vita-train checkpoint v1\nstep 1\n\nfile a 1 00000000\n", "line 3"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    ckpt_manifest m;
    CHECK_MSG(ckpt_manifest_parse(bad[i].text, strlen(bad[i].text), "M", &m, err, sizeof err) ==
                      -1 &&
                  strstr(err, bad[i].want),
              "case %zu: %s", i, err);
    ckpt_manifest_free(&m);
  }
  ckpt_manifest m;
  const char *good =
      "vita-train checkpoint v1\nstep 12\nfile b.bin 3 0000abcd\nfile a 0 ffffffff\n";
  CHECK_MSG(ckpt_manifest_parse(good, strlen(good), "M", &m, err, sizeof err) == 0, "%s", err);
  CHECK(m.step == 12 && m.n_files == 2 && !strcmp(m.files[0].name, "a") &&
        m.files[0].crc == 0xffffffffu && m.files[1].size == 3 && m.files[1].crc == 0xabcd);
  ckpt_manifest_free(&m);

  char cmd[CKPT_PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_ckpt");
}
