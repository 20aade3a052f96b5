/* plot: metric curves of a run (RUN_DIR/metrics.jsonl) drawn to a PNG. A small RGB raster
 * canvas (lines, rectangles, 5x8 bitmap text) draws axes with tick labels, a title, the raw
 * curve and its EMA; plot_metrics() reads the JSON lines and writes the PNG (`vita plot`). */
#ifndef VT_PLOT_H
#define VT_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- canvas ---------------------------------------------------------------------------- */

typedef struct {
  uint8_t r, g, b;
} plot_rgb;

typedef struct {
  int w, h;
  uint8_t *px;                            /* w * h * 3 bytes, row-major RGB, top row first */
  int clip_x0, clip_y0, clip_x1, clip_y1; /* drawing is limited to [x0, x1) x [y0, y1) */
} plot_canvas;

/* Allocates a w x h canvas filled with bg. Returns 0, or -1 when out of memory or the size is
 * not positive. plot_canvas_free releases the pixels. */
int plot_canvas_init(plot_canvas *c, int w, int h, plot_rgb bg);
void plot_canvas_free(plot_canvas *c);
/* Limits drawing to a rectangle (clamped to the canvas); plot_canvas_unclip resets it. */
void plot_canvas_clip(plot_canvas *c, int x0, int y0, int x1, int y1);
void plot_canvas_unclip(plot_canvas *c);
void plot_pixel(plot_canvas *c, int x, int y, plot_rgb col);
plot_rgb plot_get_pixel(const plot_canvas *c, int x, int y); /* black outside the canvas */
void plot_fill_rect(plot_canvas *c, int x0, int y0, int x1, int y1, plot_rgb col);
/* A line between pixel centres, `width` pixels thick (1 or more). */
void plot_line(plot_canvas *c, double x0, double y0, double x1, double y1, int width, plot_rgb col);
/* Text with its top-left corner at (x, y), each font pixel drawn as scale x scale; characters
 * outside printable ASCII draw as '?'. plot_text_width is the width it takes. */
void plot_text(plot_canvas *c, int x, int y, const char *s, int scale, plot_rgb col);
int plot_text_width(const char *s, int scale);
/* Writes the canvas as an 8-bit RGB PNG (through a temporary file and a rename). Returns 0, or
 * -1 with a message naming the path. */
int plot_canvas_write_png(const plot_canvas *c, const char *path, char *err, size_t err_len);

#define PLOT_FONT_W 5
#define PLOT_FONT_H 8
/* ASCII 32..126, 8 rows each (the last for descenders); bit 4 is the leftmost column. */
extern const uint8_t plot_font_5x8[95][PLOT_FONT_H];

/* ---- series and charts ----------------------------------------------------------------- */

typedef struct {
  double *x, *y; /* n points, x (step) strictly increasing; owned: plot_series_free */
  int64_t n;
  int64_t n_lines;              /* non-empty lines read */
  int64_t n_malformed;          /* lines that were not a JSON object with a numeric "step" */
  int64_t first_malformed_line; /* 1-based line number of the first one (0: none) */
  int64_t n_missing;            /* well-formed lines without a finite numeric value of the metric */
} plot_series;

/* Reads `metric` against "step" from a JSON-lines file. Malformed lines (a truncated last
 * line, a broken record) are skipped and counted, not fatal; lines without the metric (e.g.
 * eval lines) are skipped and counted in n_missing. When a step appears more than once (a
 * resumed run logging again after its checkpoint) the last record wins. Returns 0, or -1 with
 * a message naming the file when it cannot be read or holds no value of the metric. */
int plot_series_read(plot_series *s, const char *path, const char *metric, char *err,
                     size_t err_len);
void plot_series_free(plot_series *s);

/* Debiased exponential moving average (TensorBoard's smoothing): out[0] = y[0], then
 * m = a * m + (1 - a) * y[i], out[i] = m / (1 - a^(i+1)) with m starting at 0. */
void plot_ema(const double *y, int64_t n, double a, double *out);
/* The factor a chart uses for n points: `a`, capped at 1 - 5 / n so that the EMA's window
 * (about 1 / (1 - a) points) stays within a fifth of the curve (a short run is not flattened). */
double plot_ema_factor(double a, int64_t n);

typedef struct {
  int width, height; /* pixels; 0 = 800 x 500 */
  bool log_y;        /* logarithmic y axis (values <= 0 are left out) */
  double smooth;     /* EMA factor in [0, 1) (see plot_ema_factor); 0 = no smoothed curve */
  const char *title; /* NULL = the metric's name */
  const char *x_label, *y_label;
} plot_opts;

/* Where a chart put things, so callers (and tests) can map values to pixels. */
typedef struct {
  int x0, y0, x1, y1; /* plot area: data pixels lie in [x0, x1] x [y0, y1] */
  double xmin, xmax;  /* x at the pixel columns x0 and x1 */
  double ymin, ymax;  /* y at rows y1 and y0 (log10 of the values when log_y) */
  bool log_y;
  int64_t n_drawn; /* points drawn (log_y leaves out values <= 0) */
} plot_layout;

/* Colours of the chart's parts. */
extern const plot_rgb PLOT_BG, PLOT_FG, PLOT_GRID, PLOT_RAW, PLOT_SMOOTH;

/* Pixel position of a data value in a layout (x column, y row), as doubles. */
double plot_map_x(const plot_layout *l, double x);
double plot_map_y(const plot_layout *l, double y);

/* Draws the chart of n points onto a new canvas (plot_canvas_free releases it). Returns 0, or
 * -1 with a message (no drawable point, out of memory). */
int plot_chart(plot_canvas *c, const double *x, const double *y, int64_t n, const plot_opts *o,
               plot_layout *layout, char *err, size_t err_len);

/* Reads `metric` from metrics_path, draws it and writes png_path. *series (if given) receives
 * the counts of what was read (its arrays freed), *layout where the chart went. Returns 0, or
 * -1 with a message. */
int plot_metrics(const char *metrics_path, const char *metric, const char *png_path,
                 const plot_opts *o, plot_series *series, plot_layout *layout, char *err,
                 size_t err_len);

#endif
