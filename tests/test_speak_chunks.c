// ctest-labels: unit
/* `vita speak`'s text chunks (cli_speak_chunks), cut as VITA-1.5's web demo cuts its TTS
 * input: the first chunk at the first punctuation mark with its commas as full stops, later
 * ones at a mark once they hold 5 characters (code points, so CJK counts per character),
 * lowercased, blank ones dropped; bad UTF-8 is an error, not a crash. */
#include <string.h>

#include "cli/cli_codec.h"
#include "tests/testutil.h"

static void expect(const char *text, int n_want, const char *const *want) {
  char **c = NULL, err[256] = "";
  int n = -1;
  CHECK_MSG(cli_speak_chunks(text, &c, &n, err, sizeof err) == 0, "\"%s\": %s", text, err);
  CHECK_MSG(n == n_want, "\"%s\": %d chunks, want %d", text, n, n_want);
  for (int i = 0; i < n && i < n_want; i++)
    CHECK_MSG(!strcmp(c[i], want[i]), "\"%s\" chunk %d: \"%s\", want \"%s\"", text, i, c[i],
              want[i]);
  cli_speak_chunks_free(c, n);
}

int main(void) {
  expect("Hello, world. How are you today? Fine!", 4,
         (const char *[]){"hello。", " world.", " how are you today?", " fine!"});
  /* " a," has 3 characters: the cut waits for the next mark */
  expect("Hi, a, b. ok", 3, (const char *[]){"hi。", " a, b.", " ok"});
  expect("你好，世界。今天天气很好！", 2, (const char *[]){"你好。", "世界。今天天气很好！"});
  expect("One two three.", 1, (const char *[]){"one two three."});
  expect("No marks at all", 1, (const char *[]){"no marks at all"});
  expect("Line one is here\nline two", 2, (const char *[]){"line one is here\n", "line two"});
  expect("   \n ", 0, NULL);
  expect("Done.   ", 1, (const char *[]){"done."});
  char **c = NULL, err[256] = "";
  int n = -1;
  CHECK(cli_speak_chunks("ok \xC3( bad", &c, &n, err, sizeof err) == -1);
  CHECK_MSG(strstr(err, "invalid UTF-8") && strstr(err, "byte 3"), "error: %s", err);
  CHECK(c == NULL && n == 0);
  return vt_test_finish("test_speak_chunks");
}
