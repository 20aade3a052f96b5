/* `vita tokenize`: UTF-8 text on stdin -> one line of space-separated ids per input line;
 * with --decode, lines of ids -> text. For scripts and checks against other tokenizers. */
#include "cli/cli.h"
#include "data/tokenizer.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cli_opt opts[] = {
    {"tokenizer", CLI_OPT_STR, NULL, "directory with tokenizer.json (or the file itself)"},
    {"decode", CLI_OPT_FLAG, NULL, "read lines of ids, print the decoded text"},
    {"skip-special", CLI_OPT_FLAG, NULL, "with --decode: drop special tokens"},
    {NULL, 0, NULL, NULL},
};

static int run(const cli_args *a) {
  const char *dir = cli_args_str(a, "tokenizer");
  if (!dir) {
    fprintf(stderr, "vita tokenize: --tokenizer DIR is required\n");
    return CLI_EXIT_USAGE;
  }
  char err[512];
  tok_tokenizer *t;
  if (tok_init(&t, dir, err, sizeof err)) {
    fprintf(stderr, "vita tokenize: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  bool decode = cli_args_flag(a, "decode"), skip = cli_args_flag(a, "skip-special");
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  long lineno = 0;
  int rc = CLI_EXIT_OK;
  tok_ids ids = {0};
  tok_bytes text = {0};
  while ((n = getline(&line, &cap, stdin)) >= 0) {
    lineno++;
    if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
    ids.n = 0;
    if (decode) {
      char *s = line, *end;
      bool range_ok = true;
      for (;;) {
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s) break;
        if (errno || v < 0 || v > INT32_MAX) { /* not wrapped into another id */
          fprintf(stderr, "vita tokenize: line %ld: id %.*s is outside [0, 2^31)\n", lineno,
                  (int)(end - s), s);
          range_ok = false;
          break;
        }
        if (tok_ids_push(&ids, (int32_t)v)) {
          fprintf(stderr, "vita tokenize: line %ld: out of memory\n", lineno);
          range_ok = false;
          break;
        }
        s = end;
      }
      if (!range_ok) {
        rc = CLI_EXIT_FAIL;
        break;
      }
      while (*s == ' ' || *s == '\t' || *s == '\r') s++;
      text.n = 0;
      if (*s) {
        fprintf(stderr, "vita tokenize: line %ld: expected ids, found '%.20s'\n", lineno, s);
        rc = CLI_EXIT_FAIL;
        break;
      }
      if (tok_decode(t, ids.v, ids.n, skip, &text, err, sizeof err)) {
        fprintf(stderr, "vita tokenize: line %ld: %s\n", lineno, err);
        rc = CLI_EXIT_FAIL;
        break;
      }
      fwrite(text.p, 1, text.n, stdout);
      fputc('\n', stdout);
    } else {
      if (tok_encode(t, line, (size_t)n, &ids, err, sizeof err)) {
        fprintf(stderr, "vita tokenize: line %ld: %s\n", lineno, err);
        rc = CLI_EXIT_FAIL;
        break;
      }
      for (size_t i = 0; i < ids.n; i++) printf(i ? " %d" : "%d", ids.v[i]);
      fputc('\n', stdout);
    }
  }
  free(line);
  tok_ids_free(&ids);
  tok_bytes_free(&text);
  tok_free(t);
  return rc;
}

const cli_cmd cli_cmd_tokenize = {
    "tokenize", "text on stdin -> token ids per line (--decode: ids -> text)", NULL, opts, run};
