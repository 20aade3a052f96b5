/* `vita plot RUN_DIR`: draws a metric of RUN_DIR/metrics.jsonl (the loss by default) against
 * the step to a PNG, raw and EMA-smoothed. RUN_DIR may also be the .jsonl file itself. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "train/plot.h"

static const cli_opt opts[] = {
    {"out", CLI_OPT_STR, NULL, "PNG to write (default RUN_DIR/METRIC.png, e.g. RUN_DIR/loss.png)"},
    {"metric", CLI_OPT_STR, "loss", "key of metrics.jsonl to plot against \"step\""},
    {"log-y", CLI_OPT_FLAG, NULL, "logarithmic y axis"},
    {"smooth", CLI_OPT_FLOAT, "0.9",
     "EMA factor of the smoothed curve, in [0, 1), capped at 1 - 5/points; 0 = none"},
    {"width", CLI_OPT_INT, "800", "image width in pixels"},
    {"height", CLI_OPT_INT, "500", "image height in pixels"},
    {NULL, 0, NULL, NULL}};

static int run(const cli_args *a) {
  if (a->n_positional != 1) {
    fprintf(stderr, "vita plot: give one run directory (or its metrics.jsonl)\n");
    return CLI_EXIT_USAGE;
  }
  const char *metric = cli_args_str(a, "metric");
  double smooth = cli_args_float(a, "smooth");
  int64_t w = cli_args_int(a, "width"), h = cli_args_int(a, "height");
  if (!metric || !*metric) {
    fprintf(stderr, "vita plot: --metric is empty\n");
    return CLI_EXIT_USAGE;
  }
  if (!(smooth >= 0 && smooth < 1)) {
    fprintf(stderr, "vita plot: --smooth %g is outside [0, 1)\n", smooth);
    return CLI_EXIT_USAGE;
  }
  if (w < 200 || w > 8192 || h < 150 || h > 8192) {
    fprintf(stderr, "vita plot: --width/--height must be within 200..8192 x 150..8192\n");
    return CLI_EXIT_USAGE;
  }
  const char *in = a->positional[0];
  struct stat st;
  bool is_dir = stat(in, &st) == 0 && S_ISDIR(st.st_mode);
  char metrics[4096], out[4096], err[1024];
  if (is_dir) {
    snprintf(metrics, sizeof metrics, "%s/metrics.jsonl", in);
  } else {
    snprintf(metrics, sizeof metrics, "%s", in);
  }
  if (cli_args_given(a, "out")) {
    snprintf(out, sizeof out, "%s", cli_args_str(a, "out"));
  } else if (is_dir) {
    snprintf(out, sizeof out, "%s/%s.png", in, metric);
  } else { /* beside the file */
    const char *slash = strrchr(in, '/');
    int dir_len = slash ? (int)(slash - in + 1) : 0;
    snprintf(out, sizeof out, "%.*s%s.png", dir_len, in, metric);
  }
  plot_opts o = {
      .width = (int)w, .height = (int)h, .log_y = cli_args_flag(a, "log-y"), .smooth = smooth};
  plot_series s;
  plot_layout l;
  int rc = plot_metrics(metrics, metric, out, &o, &s, &l, err, sizeof err);
  if (s.n_malformed)
    fprintf(stderr, "vita plot: warning: skipped %lld malformed line%s of %s (first: line %lld)\n",
            (long long)s.n_malformed, s.n_malformed == 1 ? "" : "s", metrics,
            (long long)s.first_malformed_line);
  if (rc) {
    fprintf(stderr, "vita plot: %s\n", err);
    return CLI_EXIT_FAIL;
  }
  if (o.log_y && l.n_drawn < s.n)
    fprintf(stderr, "vita plot: warning: %lld values <= 0 left out of the log scale\n",
            (long long)(s.n - l.n_drawn));
  printf("wrote %s (%lld points of \"%s\", steps %g to %g)\n", out, (long long)s.n, metric, l.xmin,
         l.xmax);
  return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_plot = {"plot", "draw a run's loss (or another metric) curve to a PNG",
                              "RUN_DIR|METRICS.jsonl", opts, run};
