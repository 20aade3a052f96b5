/* metrics.jsonl and the progress line; see metrics.h. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double vt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Keeps the lines of path whose "step" is <= keep_step (and drops a torn last line). */
static int trim_jsonl(const char *path, int64_t keep_step, char *err, size_t err_len) {
  FILE *in = fopen(path, "r");
  if (!in) return errno == ENOENT ? 0 : -1;
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *out = fopen(tmp, "w");
  if (!out) {
    fclose(in);
    snprintf(err, err_len, "%s: cannot write: %s", tmp, strerror(errno));
    return -1;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  while ((n = getline(&line, &cap, in)) > 0) {
    if (line[n - 1] != '\n') break; /* torn by a crash */
    const char *s = strstr(line, "\"step\":");
    long long step = s ? strtoll(s + 7, NULL, 10) : 0;
    if (step <= keep_step) fputs(line, out);
  }
  free(line);
  fclose(in);
  if (fclose(out) || rename(tmp, path)) {
    snprintf(err, err_len, "%s: cannot rewrite: %s", path, strerror(errno));
    return -1;
  }
  return 0;
}

int vt_metrics_open(vt_metrics *m, const char *run_dir, int64_t resume_step, int64_t total_steps,
                    FILE *console, char *err, size_t err_len) {
  memset(m, 0, sizeof *m);
  char path[4200];
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  if (trim_jsonl(path, resume_step, err, err_len)) return -1;
  m->jsonl = fopen(path, "a");
  if (!m->jsonl) {
    snprintf(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  m->console = console;
  /* redraw in place only on a real terminal: launchers (mpirun, srun) hand ranks a pty
   * whose output ends up in logs, where carriage returns and escapes are noise */
  bool launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("SLURM_JOB_ID");
  m->tty = console && isatty(fileno(console)) && !launched;
  m->total_steps = total_steps;
  m->start_time = vt_now();
  m->start_step = resume_step;
  return 0;
}

static void fmt_duration(double s, char *buf, size_t len) {
  if (!isfinite(s) || s < 0)
    snprintf(buf, len, "?");
  else if (s < 60)
    snprintf(buf, len, "%.0fs", s);
  else if (s < 3600)
    snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
  else
    snprintf(buf, len, "%dh%02dm", (int)s / 3600, (int)s % 3600 / 60);
}

/* A number as JSON: NaN and Inf have no JSON form, so they are written as null (a skipped
 * step's grad_norm), and every line of metrics.jsonl stays valid JSON. */
typedef struct {
  char s[32];
} json_num;

static json_num jnum(double v, int digits) {
  json_num n;
  if (isfinite(v))
    snprintf(n.s, sizeof n.s, "%.*g", digits, v);
  else
    snprintf(n.s, sizeof n.s, "null");
  return n;
}

void vt_metrics_step(vt_metrics *m, const vt_step_metrics *s, bool print) {
  char extra[1024];
  size_t o = 0;
  for (int i = 0; i < s->n_terms && o < sizeof extra; i++)
    o += (size_t)snprintf(extra + o, sizeof extra - o, ", \"loss_%s\": %s", s->term_names[i],
                          jnum(s->term_values[i], 9).s);
  for (int i = 0; i < s->n_phases && o < sizeof extra; i++)
    o += (size_t)snprintf(extra + o, sizeof extra - o, ", \"lr_%s\": %s, \"grad_norm_%s\": %s",
                          s->phase_names[i], jnum(s->phase_lr[i], 9).s, s->phase_names[i],
                          jnum(s->phase_grad_norm[i], 9).s);
  if (!o) extra[0] = '\0';
  if (m->jsonl) {
    fprintf(m->jsonl,
            "{\"step\": %lld, \"loss\": %s, \"lr\": %s, \"grad_norm\": %s, \"tokens\": "
            "%lld, \"tokens_per_s\": %s%s%s}\n",
            (long long)s->step, jnum(s->loss, 9).s, jnum(s->lr, 9).s, jnum(s->grad_norm, 9).s,
            (long long)s->tokens, jnum(s->tokens_per_s, 6).s, extra,
            s->skipped ? ", \"skipped\": true" : "");
    fflush(m->jsonl);
  }
  if (!print || !m->console) return;
  double el = vt_now() - m->start_time;
  int64_t done = s->step - m->start_step, left = m->total_steps - s->step;
  char eta[32];
  fmt_duration(done > 0 ? el / (double)done * (double)left : NAN, eta, sizeof eta);
  int width = 24, filled = m->total_steps ? (int)(width * s->step / m->total_steps) : 0;
  char bar[32];
  for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
  bar[width] = '\0';
  char terms[512] = "";
  o = 0;
  for (int i = 0; i < s->n_terms && o < sizeof terms; i++)
    o += (size_t)snprintf(terms + o, sizeof terms - o, "%s%s %.4f", i ? ", " : " (",
                          s->term_names[i], s->term_values[i]);
  if (o && o < sizeof terms) snprintf(terms + o, sizeof terms - o, ")");
  fprintf(m->console,
          "%s[%s] step %lld/%lld | loss %.4f%s | lr %.2e | grad %.3f | %.0f tok/s | "
          "ETA %s%s%s",
          m->tty ? "\r" : "", bar, (long long)s->step, (long long)m->total_steps, s->loss, terms,
          s->lr, s->grad_norm, s->tokens_per_s, eta, s->skipped ? " | skipped (non-finite)" : "",
          m->tty ? "\033[K" : "\n");
  fflush(m->console);
}

void vt_metrics_note(vt_metrics *m, const char *fmt, ...) {
  if (!m->console) return;
  if (m->tty) fputs("\r\033[K", m->console);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(m->console, fmt, ap);
  va_end(ap);
  fputc('\n', m->console);
  fflush(m->console);
}

void vt_metrics_value(vt_metrics *m, int64_t step, const char *key, double value) {
  if (!m->jsonl) return;
  fprintf(m->jsonl, "{\"step\": %lld, \"%s\": %s}\n", (long long)step, key, jnum(value, 9).s);
  fflush(m->jsonl);
}

void vt_metrics_close(vt_metrics *m) {
  if (m->console && m->tty) fputc('\n', m->console);
  if (m->jsonl) fclose(m->jsonl);
  m->jsonl = NULL;
}
