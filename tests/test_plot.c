// ctest-labels: unit
/* `vita plot`'s library (train/plot.c): a metrics.jsonl with a known decreasing curve, an eval
 * line, a repeated step, a broken line and a truncated last line is read (bad lines counted,
 * not fatal) and drawn; the PNG written is decoded back and checked: signature, IHDR size,
 * curve colours at the first and last step where the values put them, the EMA above the raw
 * curve at the end, background where no curve can be, tick labels in the margin. The same
 * with a log y axis; then the EMA formula and its cap, the canvas primitives and the errors. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/check.h"
#include "train/plot.h"

/* stb_image declares a few functions it never defines: the warning comes at the end of the
 * file, so it stays off for the whole file. */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#include <stb/stb_image.h>
#pragma GCC diagnostic pop

#define N_STEPS 200
#define W 640
#define H 400

/* A straight decline, 11 at step 1 to 1.05 at step 200: steep enough at the end for the EMA to
 * lag visibly above it (about 9 steps x 0.05 = 0.45, a dozen rows). */
static double curve(int step) { return 11.0 - 0.05 * (step - 1); }

static char dir[256];

static const char *path_in(const char *name) {
  static char buf[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  fputs(text, f);
  fclose(f);
}

/* The metrics file: steps 1..N_STEPS with curve(), plus noise the reader must survive. */
static void write_metrics(const char *path) {
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    exit(1);
  }
  for (int s = 1; s <= N_STEPS; s++) {
    if (s == 30) fprintf(f, "{\"step\": 30, \"loss\": 99.0, \"lr\": 0.001}\n"); /* resumed */
    fprintf(f,
            "{\"step\":%d,\"loss\":%.17g,\"lr\":0.001,\"grad_norm\":1.5,\"tokens\":%d,"
            "\"tokens_per_s\":512.5}\n",
            s, curve(s), s * 1024);
    if (s == 50) fprintf(f, "{\"step\": 50, \"eval_loss\": 3.25}\n"); /* no "loss" */
    if (s == 100) fprintf(f, "{\"step\": 101, \"loss\": [oops\n");    /* broken */
    if (s == 120) fprintf(f, "\n");                                   /* blank: ignored */
  }
  fprintf(f, "{\"step\": %d, \"loss\": 0.5", N_STEPS + 1); /* truncated last line */
  fclose(f);
}

static bool same(plot_rgb a, plot_rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

static plot_rgb px_at(const unsigned char *img, int x, int y) {
  const unsigned char *p = img + ((size_t)y * W + (size_t)x) * 3;
  return (plot_rgb){p[0], p[1], p[2]};
}

/* Whether colour col appears in column x within +-tol rows of y. */
static bool near(const unsigned char *img, int x, double y, int tol, plot_rgb col) {
  for (int yy = (int)y - tol; yy <= (int)y + tol; yy++)
    if (yy >= 0 && yy < H && same(px_at(img, x, yy), col)) return true;
  return false;
}

/* The topmost row of column x with colour col, or -1. */
static int top_row(const unsigned char *img, int x, plot_rgb col) {
  for (int y = 0; y < H; y++)
    if (same(px_at(img, x, y), col)) return y;
  return -1;
}

static uint32_t be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads a PNG back: checks the signature and the IHDR, decodes the pixels (RGB). */
static unsigned char *read_png(const char *path) {
  FILE *f = fopen(path, "rb");
  CHECK_MSG(f != NULL, "%s not written", path);
  if (!f) return NULL;
  unsigned char head[33];
  size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  CHECK(got == sizeof head);
  static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  CHECK_MSG(memcmp(head, sig, 8) == 0, "PNG signature");
  CHECK(be32(head + 8) == 13 && memcmp(head + 12, "IHDR", 4) == 0);
  CHECK_MSG(be32(head + 16) == W && be32(head + 20) == H, "IHDR %u x %u, want %d x %d",
            be32(head + 16), be32(head + 20), W, H);
  CHECK_MSG(head[24] == 8 && head[25] == 2, "bit depth %d colour type %d, want 8-bit RGB", head[24],
            head[25]);
  int w, h, comp;
  unsigned char *img = stbi_load(path, &w, &h, &comp, 3);
  CHECK_MSG(img && w == W && h == H, "decoded %d x %d", w, h);
  return img && w == W && h == H ? img : NULL;
}

static void check_chart(bool log_y) {
  const char *png = path_in(log_y ? "log.png" : "loss.png");
  plot_opts o = {.width = W, .height = H, .log_y = log_y, .smooth = 0.9};
  plot_series s;
  plot_layout l;
  char err[512];
  int rc = plot_metrics(path_in("metrics.jsonl"), "loss", png, &o, &s, &l, err, sizeof err);
  CHECK_MSG(rc == 0, "%s", err);
  if (rc) return;
  CHECK_MSG(s.n == N_STEPS, "points %lld, want %d (step 30 once)", (long long)s.n, N_STEPS);
  CHECK_MSG(s.n_malformed == 2, "malformed %lld, want 2", (long long)s.n_malformed);
  CHECK_MSG(s.first_malformed_line == 103, "first malformed line %lld, want 103",
            (long long)s.first_malformed_line);
  CHECK_MSG(s.n_missing == 1, "lines without loss %lld, want 1", (long long)s.n_missing);
  CHECK(l.n_drawn == N_STEPS);
  CHECK(l.xmin == 1 && l.xmax == N_STEPS);
  /* the y range covers the data with a margin; step 30's 99.0 was replaced by the later line */
  double lo = log_y ? log10(curve(N_STEPS)) : curve(N_STEPS);
  double hi = log_y ? log10(curve(1)) : curve(1);
  CHECK_MSG(l.ymin < lo && l.ymin > lo - 0.1 * (hi - lo) && l.ymax > hi &&
                l.ymax < hi + 0.1 * (hi - lo),
            "y range [%g, %g] for data [%g, %g]", l.ymin, l.ymax, lo, hi);
  CHECK(l.x0 > 20 && l.x1 < W && l.y0 > 10 && l.y1 < H - 20);

  unsigned char *img = read_png(png);
  if (!img) return;
  /* The pixel of a value, computed here from the layout's ranges, not by the library. */
  double sx = (double)(l.x1 - l.x0) / (l.xmax - l.xmin), sy = (l.y1 - l.y0) / (l.ymax - l.ymin);
#define PX(step) ((int)lround(l.x0 + ((step)-l.xmin) * sx))
#define PY(v) (l.y1 - ((log_y ? log10(v) : (v)) - l.ymin) * sy)
  /* first step: the EMA equals the value and is drawn on top */
  CHECK_MSG(near(img, PX(1), PY(curve(1)), 2, PLOT_SMOOTH), "EMA not at step 1 (x %d, y %.1f)",
            PX(1), PY(curve(1)));
  /* last step: the raw value where it belongs, the lagging EMA above it (higher loss) */
  int xl = PX(N_STEPS);
  CHECK_MSG(near(img, xl, PY(curve(N_STEPS)), 2, PLOT_RAW), "raw curve not at the last step");
  double ema[N_STEPS], y[N_STEPS];
  for (int i = 0; i < N_STEPS; i++) y[i] = curve(i + 1);
  plot_ema(y, N_STEPS, 0.9, ema);
  CHECK_MSG(near(img, xl, PY(ema[N_STEPS - 1]), 2, PLOT_SMOOTH), "EMA not at the last step");
  int ye = top_row(img, xl, PLOT_SMOOTH), yr = top_row(img, xl - 2, PLOT_RAW);
  CHECK_MSG(ye >= 0 && yr >= 0 && ye + 2 < yr, "EMA row %d not above raw row %d", ye, yr);
  /* mid-curve: step 100's value is drawn at its row */
  CHECK_MSG(near(img, PX(100), PY(curve(100)), 3, PLOT_SMOOTH) ||
                near(img, PX(100), PY(curve(100)), 3, PLOT_RAW),
            "no curve at step 100");
  /* no curve in the lower-left of the plot (the curve is high there): first 10% of the steps,
   * bottom 25% of the rows */
  int n_curve = 0, n_bg = 0;
  for (int yy = l.y1 - (l.y1 - l.y0) / 4; yy < l.y1; yy++)
    for (int xx = l.x0 + 2; xx < l.x0 + (l.x1 - l.x0) / 10; xx++) {
      plot_rgb p = px_at(img, xx, yy);
      n_curve += same(p, PLOT_RAW) || same(p, PLOT_SMOOTH);
      n_bg += same(p, PLOT_BG);
    }
  CHECK_MSG(n_curve == 0, "%d curve pixels in the empty lower-left corner", n_curve);
  CHECK_MSG(n_bg > 100, "only %d background pixels in the lower-left corner", n_bg);
  /* margins: background in the corner, dark text (tick labels) left of the y axis and under
   * the x axis, the axis line itself */
  CHECK(same(px_at(img, 1, H - 2), PLOT_BG));
  int n_text_left = 0, n_text_below = 0;
  for (int yy = l.y0; yy <= l.y1; yy++)
    for (int xx = 0; xx < l.x0 - 6; xx++) n_text_left += same(px_at(img, xx, yy), PLOT_FG);
  for (int yy = l.y1 + 6; yy < H; yy++)
    for (int xx = l.x0; xx < l.x1; xx++) n_text_below += same(px_at(img, xx, yy), PLOT_FG);
  CHECK_MSG(n_text_left > 40, "y tick labels: %d text pixels", n_text_left);
  CHECK_MSG(n_text_below > 40, "x tick labels: %d text pixels", n_text_below);
  CHECK(same(px_at(img, l.x0 - 1, (l.y0 + l.y1) / 2), PLOT_FG));
  CHECK(same(px_at(img, (l.x0 + l.x1) / 2, l.y1 + 1), PLOT_FG));
#undef PX
#undef PY
  stbi_image_free(img);
}

static void check_ema(void) {
  double y[4] = {4, 2, 2, 8}, e[4];
  plot_ema(y, 4, 0.5, e);
  /* m: 2, 2, 2, 5; divided by 1 - 0.5^k: 4, 2.6667, 2.2857, 5.3333 */
  CHECK(fabs(e[0] - 4) < 1e-12);
  CHECK(fabs(e[1] - 2.0 / 0.75) < 1e-12);
  CHECK(fabs(e[2] - 2.0 / 0.875) < 1e-12);
  CHECK(fabs(e[3] - 5.0 / 0.9375) < 1e-12);
  /* the factor is capped for short curves, none at all for 5 points or fewer */
  CHECK(plot_ema_factor(0.9, 200) == 0.9);
  CHECK(fabs(plot_ema_factor(0.9, 12) - (1 - 5.0 / 12)) < 1e-12);
  CHECK(plot_ema_factor(0.9, 5) == 0 && plot_ema_factor(0.9, 1) == 0);
}

static void check_canvas(void) {
  plot_canvas c;
  CHECK(plot_canvas_init(&c, 40, 20, PLOT_BG) == 0);
  plot_line(&c, 2, 3, 30, 3, 1, PLOT_RAW);
  CHECK(same(plot_get_pixel(&c, 2, 3), PLOT_RAW) && same(plot_get_pixel(&c, 30, 3), PLOT_RAW));
  CHECK(same(plot_get_pixel(&c, 31, 3), PLOT_BG) && same(plot_get_pixel(&c, 16, 4), PLOT_BG));
  plot_line(&c, 5, 5, 15, 15, 1, PLOT_FG); /* diagonal: every (k, k) */
  int diag = 0;
  for (int k = 5; k <= 15; k++) diag += same(plot_get_pixel(&c, k, k), PLOT_FG);
  CHECK(diag == 11);
  plot_canvas_clip(&c, 0, 0, 10, 10); /* drawing outside the clip is dropped */
  plot_line(&c, 0, 12, 39, 12, 3, PLOT_SMOOTH);
  CHECK(same(plot_get_pixel(&c, 20, 12), PLOT_BG));
  plot_canvas_unclip(&c);
  plot_line(&c, -1e12, 18, 1e12, 18, 1, PLOT_SMOOTH); /* far ends are fine */
  CHECK(same(plot_get_pixel(&c, 0, 18), PLOT_SMOOTH) &&
        same(plot_get_pixel(&c, 39, 18), PLOT_SMOOTH));
  /* text: "1" is the glyph 0x04 0x0C 0x04 ..., the third column inked in the first row */
  plot_text(&c, 30, 8, "1", 1, PLOT_FG);
  CHECK(same(plot_get_pixel(&c, 32, 8), PLOT_FG) && same(plot_get_pixel(&c, 31, 8), PLOT_BG));
  CHECK(plot_text_width("10", 2) == 22);
  plot_canvas_free(&c);
  CHECK(plot_canvas_init(&c, 0, 10, PLOT_BG) == -1);
}

static void check_errors(void) {
  char err[512] = "";
  plot_series s;
  plot_layout l;
  plot_opts o = {.width = W, .height = H};
  CHECK(plot_metrics(path_in("nope.jsonl"), "loss", path_in("x.png"), &o, &s, &l, err,
                     sizeof err) == -1);
  CHECK_MSG(strstr(err, "nope.jsonl") != NULL, "error names the file: %s", err);
  write_file(path_in("bad.jsonl"), "garbage\n{\"step\": 1, \"lr\": 0.1}\n[1,2]\n{\"step\": 2");
  CHECK(plot_metrics(path_in("bad.jsonl"), "loss", path_in("x.png"), &o, &s, &l, err, sizeof err) ==
        -1);
  CHECK_MSG(strstr(err, "bad.jsonl") && strstr(err, "\"loss\""), "error names file and key: %s",
            err);
  CHECK(s.n_malformed == 3 && s.n_missing == 1 && s.first_malformed_line == 1);
  CHECK(access(path_in("x.png"), F_OK) != 0);
  /* log scale with nothing positive */
  write_file(path_in("neg.jsonl"), "{\"step\": 1, \"loss\": -1}\n{\"step\": 2, \"loss\": 0}\n");
  o.log_y = true;
  CHECK(plot_metrics(path_in("neg.jsonl"), "loss", path_in("x.png"), &o, &s, &l, err, sizeof err) ==
        -1);
  CHECK_MSG(strstr(err, "log") != NULL, "%s", err);
  /* a directory that does not exist for the PNG */
  o.log_y = false;
  CHECK(plot_metrics(path_in("neg.jsonl"), "loss", path_in("no/dir/x.png"), &o, &s, &l, err,
                     sizeof err) == -1);
  CHECK_MSG(strstr(err, "no/dir/x.png") != NULL, "%s", err);
  /* one point draws (a flat range is widened) */
  write_file(path_in("one.jsonl"), "{\"step\": 7, \"loss\": 2.5}\n");
  CHECK(plot_metrics(path_in("one.jsonl"), "loss", path_in("one.png"), &o, &s, &l, err,
                     sizeof err) == 0);
  CHECK(s.n == 1 && l.xmin < 7 && l.xmax > 7 && l.ymin < 2.5 && l.ymax > 2.5);
}

int main(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/test_plot.XXXXXX", tmp && *tmp ? tmp : "/tmp");
  if (!mkdtemp(dir)) {
    perror(dir);
    return 1;
  }
  write_metrics(path_in("metrics.jsonl"));
  check_chart(false);
  check_chart(true);
  check_ema();
  check_canvas();
  check_errors();
  if (vt_test_failures == 0) { /* keep the files of a failing run to look at */
    const char *names[] = {"metrics.jsonl", "loss.png",  "log.png", "bad.jsonl",
                           "neg.jsonl",     "one.jsonl", "one.png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(path_in(names[i]));
    rmdir(dir);
  } else {
    fprintf(stderr, "files kept in %s\n", dir);
  }
  return vt_test_finish("test_plot");
}
