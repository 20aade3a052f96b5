/* Encode throughput of data/tokenizer.c next to HF tokenizers in the same run.
 * Generates a few MB of mixed text (English-like words, Chinese, code, numbers, emoji,
 * whitespace runs), encodes it line by line single-threaded, then runs
 * bench/bench_tokenizer.py on the same file for the HF figure and prints the ratio.
 * Usage: bench_tokenizer [tokenizer_dir] [megabytes]   (defaults: ../shared/..., 4) */
#include "data/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t rng_state = 0x1234567ull;
static uint32_t rnd(uint32_t n) {
  rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
  return (uint32_t)(rng_state % n);
}

static void put_utf8(FILE *f, uint32_t cp) {
  if (cp < 0x80)
    fputc((int)cp, f);
  else if (cp < 0x800)
    fputc(0xC0 | (cp >> 6), f), fputc(0x80 | (cp & 63), f);
  else if (cp < 0x10000)
    fputc(0xE0 | (cp >> 12), f), fputc(0x80 | ((cp >> 6) & 63), f), fputc(0x80 | (cp & 63), f);
  else
    fputc(0xF0 | (cp >> 18), f), fputc(0x80 | ((cp >> 12) & 63), f),
        fputc(0x80 | ((cp >> 6) & 63), f), fputc(0x80 | (cp & 63), f);
}

static const char *syl[] = {"the", "an", "ing", "tion", "re",   "con", "pro", "ex", "er",  "al",
                            "in",  "de", "com", "ly",   "ment", "ous", "ate", "st", "ar",  "ic",
                            "o",   "a",  "i",   "u",    "ba",   "ko",  "zi",  "mu", "ter", "ver"};
static const char *code[] = {"def f(x):\n    return x * 2\n",
                             "for (int i = 0; i < n; i++) {\n",
                             "  if (a[i] != b[i]) return -1;\n",
                             "}\n",
                             "import numpy as np\n",
                             "x = {'key': [1, 2, 3], \"v\": None}\n",
                             "\t\tprintf(\"%d\\n\", y);\n"};
static const char *emoji[] = {"😀", "🎉", "❤️", "👍", "🚀", "👨‍👩‍👧", "☞", "☜", "☟"};

static void gen_text(const char *path, size_t bytes) {
  FILE *f = fopen(path, "w");
  while ((size_t)ftell(f) < bytes) {
    int words = 5 + (int)rnd(60);
    for (int w = 0; w < words; w++) {
      uint32_t k = rnd(100);
      if (k < 50) { /* English-like word */
        if (rnd(8) == 0) fputc('A' + (int)rnd(26), f);
        int s = 1 + (int)rnd(3);
        for (int i = 0; i < s; i++) fputs(syl[rnd(30)], f);
        fputs(rnd(10) == 0 ? ", " : rnd(12) == 0 ? ". " : " ", f);
      } else if (k < 75) { /* Chinese run (common CJK range) */
        int n = 2 + (int)rnd(12);
        for (int i = 0; i < n; i++) put_utf8(f, 0x4E00 + rnd(3000));
        fputs(rnd(3) ? "，" : "。", f);
      } else if (k < 85) {
        fputs(code[rnd(7)], f);
      } else if (k < 93) {
        fprintf(f, "%u.%u ", rnd(1000000000), rnd(1000));
      } else if (k < 97) {
        fputs(emoji[rnd(9)], f);
        fputc(' ', f);
      } else {
        fputs(rnd(2) ? "   " : "\t \t", f);
      }
    }
    fputc('\n', f);
  }
  fclose(f);
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "../shared/data/qwen-tokenizer";
  double mb = argc > 2 ? atof(argv[2]) : 4.0;
  char err[512];
  tok_tokenizer *t;
  if (tok_init(&t, dir, err, sizeof err) != 0) {
    fprintf(stderr, "bench_tokenizer: %s\n", err);
    return 1;
  }
  char path[] = "/tmp/vt_bench_tok_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 1;
  gen_text(path, (size_t)(mb * 1e6));
  FILE *f = fopen(path, "r");
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  rewind(f);
  char *text = malloc((size_t)size + 1);
  size_t got = fread(text, 1, (size_t)size, f);
  fclose(f);
  text[got] = 0;

  tok_ids ids = {0};
  size_t n_tokens = 0;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (char *line = text, *end; *line; line = end + 1) {
    end = strchr(line, '\n');
    if (!end) end = line + strlen(line);
    ids.n = 0;
    if (tok_encode(t, line, (size_t)(end - line), &ids, err, sizeof err) != 0) {
      fprintf(stderr, "bench_tokenizer: %s\n", err);
      return 1;
    }
    n_tokens += ids.n;
    if (!*end) break;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  double ours = (double)got / 1e6 / sec;
  /* ~64 KB chunks cut after a newline, as bench_tokenizer.py does; a fresh tokenizer so the
   * word cache starts cold again */
  tok_free(t);
  if (tok_init(&t, dir, err, sizeof err) != 0) return 1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (size_t start = 0; start < got;) {
    char *nl = start + 65536 < got ? strchr(text + start + 65536, '\n') : NULL;
    size_t end = nl ? (size_t)(nl - text) + 1 : got;
    ids.n = 0;
    tok_encode(t, text + start, end - start, &ids, err, sizeof err);
    start = end;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double sec2 = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  double ours_chunk = (double)got / 1e6 / sec2;
  printf("text: %.2f MB, %zu tokens\n", (double)got / 1e6, n_tokens);
  printf("                 per line     64 KB chunks   (MB/s, single thread)\n");
  printf("vita tokenizer: %8.2f       %8.2f\n", ours, ours_chunk);
  fflush(stdout);

  /* HF tokenizers on the same file, if python3 and tokenizers are present */
  char cmd[8192];
  const char *src = getenv("VT_SOURCE_DIR");
  snprintf(cmd, sizeof cmd, "python3 %s/bench/bench_tokenizer.py --hf-only %s %s 2>&1",
           src ? src : ".", dir, path);
  FILE *p = popen(cmd, "r");
  double hf = 0, hf_chunk = 0;
  char line[1024];
  while (p && fgets(line, sizeof line, p)) {
    if (sscanf(line, "hf_mb_s %lf", &hf) == 1) continue;
    if (sscanf(line, "hf_chunk_mb_s %lf", &hf_chunk) == 1) continue;
    fputs(line, stdout);
  }
  if (p) pclose(p);
  if (hf > 0 && hf_chunk > 0) {
    printf("HF tokenizers:  %8.2f       %8.2f\n", hf, hf_chunk);
    printf("ratio vita/HF:  %8.2f       %8.2f\n", ours / hf, ours_chunk / hf_chunk);
  } else {
    printf("HF tokenizers:  not measured (needs python3 with the tokenizers package; set "
           "VT_SOURCE_DIR to the repo root)\n");
  }
  tok_ids_free(&ids);
  free(text);
  unlink(path);
  tok_free(t);
  return 0;
}
