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

  char cmd[CKPT_PATH_MAX + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", root);
  CHECK(system(cmd) == 0);
  return vt_test_finish("test_ckpt");
}
