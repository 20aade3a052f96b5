/* plot: the raster canvas, the metrics reader and the chart (see plot.h). */
#include "train/plot.h"

#include "autograd/fmt.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
#pragma GCC diagnostic pop

const plot_rgb PLOT_BG = {255, 255, 255};
const plot_rgb PLOT_FG = {34, 34, 34};
const plot_rgb PLOT_GRID = {226, 226, 226};
const plot_rgb PLOT_RAW = {158, 202, 238};
const plot_rgb PLOT_SMOOTH = {214, 69, 37};

/* ---- canvas ---------------------------------------------------------------------------- */

int plot_canvas_init(plot_canvas *c, int w, int h, plot_rgb bg) {
  memset(c, 0, sizeof *c);
  if (w <= 0 || h <= 0 || w > 16384 || h > 16384) return -1;
  c->px = malloc((size_t)w * (size_t)h * 3);
  if (!c->px) return -1;
  c->w = w;
  c->h = h;
  plot_canvas_unclip(c);
  plot_fill_rect(c, 0, 0, w, h, bg);
  return 0;
}

void plot_canvas_free(plot_canvas *c) {
  free(c->px);
  memset(c, 0, sizeof *c);
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

void plot_canvas_clip(plot_canvas *c, int x0, int y0, int x1, int y1) {
  c->clip_x0 = clampi(x0, 0, c->w);
  c->clip_y0 = clampi(y0, 0, c->h);
  c->clip_x1 = clampi(x1, 0, c->w);
  c->clip_y1 = clampi(y1, 0, c->h);
}

void plot_canvas_unclip(plot_canvas *c) { plot_canvas_clip(c, 0, 0, c->w, c->h); }

void plot_pixel(plot_canvas *c, int x, int y, plot_rgb col) {
  if (x < c->clip_x0 || x >= c->clip_x1 || y < c->clip_y0 || y >= c->clip_y1) return;
  uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
  p[0] = col.r;
  p[1] = col.g;
  p[2] = col.b;
}

plot_rgb plot_get_pixel(const plot_canvas *c, int x, int y) {
  if (x < 0 || x >= c->w || y < 0 || y >= c->h) return (plot_rgb){0, 0, 0};
  const uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
  return (plot_rgb){p[0], p[1], p[2]};
}

void plot_fill_rect(plot_canvas *c, int x0, int y0, int x1, int y1, plot_rgb col) {
  x0 = clampi(x0, c->clip_x0, c->clip_x1);
  x1 = clampi(x1, c->clip_x0, c->clip_x1);
  y0 = clampi(y0, c->clip_y0, c->clip_y1);
  y1 = clampi(y1, c->clip_y0, c->clip_y1);
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) plot_pixel(c, x, y, col);
}

/* A square brush of `width` pixels centred on (x, y). */
static void brush(plot_canvas *c, int x, int y, int width, plot_rgb col) {
  int lo = -(width - 1) / 2;
  for (int dy = lo; dy < lo + width; dy++)
    for (int dx = lo; dx < lo + width; dx++) plot_pixel(c, x + dx, y + dy, col);
}

void plot_line(plot_canvas *c, double x0, double y0, double x1, double y1, int width,
               plot_rgb col) {
  if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1)) return;
  /* Clamp far-away ends (log of tiny values, huge steps) so the walk stays short; the clip
   * rectangle does the exact clipping. The clamped segment keeps its direction only roughly,
   * which is invisible because such ends lie far outside the canvas. */
  const double lim = 4.0 * (c->w + c->h);
  x0 = fmax(-lim, fmin(lim, x0)), x1 = fmax(-lim, fmin(lim, x1));
  y0 = fmax(-lim, fmin(lim, y0)), y1 = fmax(-lim, fmin(lim, y1));
  if (width < 1) width = 1;
  double dx = x1 - x0, dy = y1 - y0;
  int n = (int)ceil(fmax(fabs(dx), fabs(dy)));
  if (n == 0) {
    brush(c, (int)lround(x0), (int)lround(y0), width, col);
    return;
  }
  for (int i = 0; i <= n; i++) { /* DDA: one step per pixel along the major axis */
    double t = (double)i / n;
    brush(c, (int)lround(x0 + t * dx), (int)lround(y0 + t * dy), width, col);
  }
}

void plot_text(plot_canvas *c, int x, int y, const char *s, int scale, plot_rgb col) {
  if (scale < 1) scale = 1;
  for (; *s; s++, x += (PLOT_FONT_W + 1) * scale) {
    unsigned ch = (unsigned char)*s;
    if (ch < 32 || ch > 126) ch = '?';
    const uint8_t *g = plot_font_5x8[ch - 32];
    for (int r = 0; r < PLOT_FONT_H; r++)
      for (int k = 0; k < PLOT_FONT_W; k++)
        if (g[r] & (0x10 >> k))
          plot_fill_rect(c, x + k * scale, y + r * scale, x + (k + 1) * scale, y + (r + 1) * scale,
                         col);
  }
}

int plot_text_width(const char *s, int scale) {
  int n = (int)strlen(s);
  return n ? (n * (PLOT_FONT_W + 1) - 1) * scale : 0;
}

int plot_canvas_write_png(const plot_canvas *c, const char *path, char *err, size_t err_len) {
  size_t len = strlen(path) + 8;
  char *tmp = malloc(len);
  if (!tmp) {
    vt_seterr(err, err_len, "%s: out of memory", path);
    return -1;
  }
  snprintf(tmp, len, "%s.tmp", path);
  if (!stbi_write_png(tmp, c->w, c->h, 3, c->px, c->w * 3)) {
    vt_seterr(err, err_len, "%s: cannot write the PNG (directory missing or not writable?)", tmp);
    remove(tmp);
    free(tmp);
    return -1;
  }
  if (rename(tmp, path)) {
    vt_seterr(err, err_len, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    remove(tmp);
    free(tmp);
    return -1;
  }
  free(tmp);
  return 0;
}

/* ---- reading metrics.jsonl ------------------------------------------------------------- */

typedef struct {
  double x, y;
  int64_t order;
} point;

static int cmp_point(const void *a, const void *b) {
  const point *p = a, *q = b;
  if (p->x != q->x) return p->x < q->x ? -1 : 1;
  return p->order < q->order ? -1 : p->order > q->order;
}

/* A JSON number (integer or real) as a double; false for anything else. */
static bool json_num(const json_t *v, double *out) {
  if (!v || !json_is_number(v)) return false;
  *out = json_number_value(v);
  return isfinite(*out);
}

int plot_series_read(plot_series *s, const char *path, const char *metric, char *err,
                     size_t err_len) {
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "r");
  if (!f) {
    vt_seterr(err, err_len, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  point *pts = NULL;
  int64_t n = 0, cap = 0, lineno = 0;
  char *line = NULL;
  size_t line_cap = 0;
  ssize_t got;
  int rc = 0;
  while ((got = getline(&line, &line_cap, f)) >= 0) {
    lineno++;
    size_t len = (size_t)got;
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
      line[--len] = '\0';
    if (!len) continue;
    s->n_lines++;
    json_error_t jerr;
    json_t *o = json_loadb(line, len, 0, &jerr);
    double x, y;
    if (!o || !json_is_object(o) || !json_num(json_object_get(o, "step"), &x)) {
      if (!s->n_malformed) s->first_malformed_line = lineno;
      s->n_malformed++;
    } else if (!json_num(json_object_get(o, metric), &y)) {
      s->n_missing++;
    } else {
      if (n == cap) {
        int64_t nc = cap ? 2 * cap : 256;
        point *np = realloc(pts, sizeof *pts * (size_t)nc);
        if (!np) {
          json_decref(o);
          vt_seterr(err, err_len, "%s: out of memory at line %lld", path, (long long)lineno);
          rc = -1;
          break;
        }
        pts = np, cap = nc;
      }
      pts[n] = (point){x, y, n};
      n++;
    }
    json_decref(o);
  }
  if (!rc && ferror(f)) {
    vt_seterr(err, err_len, "%s: read error after line %lld", path, (long long)lineno);
    rc = -1;
  }
  free(line);
  fclose(f);
  if (!rc && n == 0) {
    vt_seterr(err, err_len, "%s: no numeric \"%s\" value with a \"step\" in %lld lines", path,
              metric, (long long)s->n_lines);
    rc = -1;
  }
  if (!rc) {
    qsort(pts, (size_t)n, sizeof *pts, cmp_point);
    s->x = malloc(sizeof(double) * (size_t)n);
    s->y = malloc(sizeof(double) * (size_t)n);
    if (!s->x || !s->y) {
      vt_seterr(err, err_len, "%s: out of memory", path);
      rc = -1;
    } else {
      for (int64_t i = 0; i < n; i++) {
        if (s->n && s->x[s->n - 1] == pts[i].x) s->n--; /* repeated step: the last one wins */
        s->x[s->n] = pts[i].x;
        s->y[s->n] = pts[i].y;
        s->n++;
      }
    }
  }
  free(pts);
  if (rc) plot_series_free(s);
  return rc;
}

void plot_series_free(plot_series *s) {
  free(s->x);
  free(s->y);
  s->x = s->y = NULL;
  s->n = 0;
}

double plot_ema_factor(double a, int64_t n) {
  double cap = n > 0 ? 1.0 - 5.0 / (double)n : 0.0;
  return a < cap ? a : cap > 0 ? cap : 0.0;
}

void plot_ema(const double *y, int64_t n, double a, double *out) {
  double m = 0, w = 1;
  for (int64_t i = 0; i < n; i++) {
    m = a * m + (1 - a) * y[i];
    w *= a;
    out[i] = m / (1 - w);
  }
}

/* ---- the chart ------------------------------------------------------------------------- */

double plot_map_x(const plot_layout *l, double x) {
  return l->x0 + (x - l->xmin) / (l->xmax - l->xmin) * (l->x1 - l->x0);
}

double plot_map_y(const plot_layout *l, double y) {
  double v = l->log_y ? log10(y) : y;
  return l->y1 - (v - l->ymin) / (l->ymax - l->ymin) * (l->y1 - l->y0);
}

/* The tick spacing of 1, 2 or 5 times a power of ten giving at most `max_ticks` ticks. */
static double nice_step(double range, int max_ticks) {
  double raw = range / max_ticks, p = pow(10, floor(log10(raw)));
  for (int k = 0; k < 3; k++) {
    double m = (double[]){1, 2, 5}[k] * p;
    if (m >= raw) return m;
  }
  return 10 * p;
}

/* A tick label for value v on an axis with tick spacing `step` whose largest magnitude is
 * `top`: as many decimals as the spacing needs; whole thousands as "k" and millions as "M" on
 * axes that reach 10k and 1M. */
static void tick_label(char *buf, size_t len, double v, double step, double top) {
  if (fabs(v) < step * 1e-9) v = 0;
  double av = fabs(v);
  if (v == 0) {
    snprintf(buf, len, "0");
  } else if (top >= 1e6 && step >= 1e5 && fmod(v, 1e5) == 0) {
    snprintf(buf, len, "%gM", v / 1e6);
  } else if (top >= 1e4 && step >= 1e3 && fmod(v, 1e3) == 0) {
    snprintf(buf, len, "%gk", v / 1e3);
  } else if (av >= 1e7 || (av > 0 && av < 1e-4)) {
    snprintf(buf, len, "%.3g", v);
  } else {
    int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(buf, len, "%.*f", dec, v);
  }
}

typedef struct {
  double v[64]; /* positions in axis units (log10 when logarithmic) */
  double label_v[64];
  int n;
  double step; /* linear spacing, for the label format */
} ticks;

static void linear_ticks(double lo, double hi, int max_ticks, ticks *t) {
  t->step = nice_step(hi - lo, max_ticks);
  t->n = 0;
  for (double v = ceil(lo / t->step) * t->step; v <= hi + t->step * 1e-9 && t->n < 64;
       v += t->step) {
    t->v[t->n] = v;
    t->label_v[t->n++] = v;
  }
}

/* Multiples of powers of ten in [lo, hi] (log10 units): set 0 decades, 1 the 1-2-5 series,
 * 2 every digit 1..9. */
static void log_set(double lo, double hi, int set, ticks *t) {
  static const double mult[3][9] = {{1}, {1, 2, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  static const int n_mult[3] = {1, 3, 9};
  t->n = 0;
  t->step = 0;
  for (int e = (int)floor(lo) - 1; e <= (int)ceil(hi) && t->n < 64; e++)
    for (int k = 0; k < n_mult[set] && t->n < 64; k++) {
      double val = mult[set][k] * pow(10, e), lv = log10(val);
      if (lv >= lo - 1e-9 && lv <= hi + 1e-9) t->v[t->n] = lv, t->label_v[t->n++] = val;
    }
}

/* Ticks of a log10 axis over [lo, hi] (in log10 units): decades when there are 4 or more
 * (thinned when too many), else the 1-2-5 series if it gives 4 or more, else the decades if
 * there are 2, else every digit 1..9, else (less than a factor of ~2 in range) linear values
 * placed logarithmically. */
static void log_ticks(double lo, double hi, int max_ticks, ticks *t) {
  log_set(lo, hi, 0, t);
  if (t->n > max_ticks) {
    int every = (t->n + max_ticks - 1) / max_ticks, m = 0;
    for (int i = 0; i < t->n; i += every) t->v[m] = t->v[i], t->label_v[m++] = t->label_v[i];
    t->n = m;
    return;
  }
  if (t->n >= 4) return;
  int n_decades = t->n;
  log_set(lo, hi, 1, t);
  if (t->n >= 4 && t->n <= max_ticks) return;
  if (n_decades >= 2) {
    log_set(lo, hi, 0, t);
    return;
  }
  log_set(lo, hi, 2, t);
  if (t->n >= 2 && t->n <= max_ticks) return;
  ticks lin;
  linear_ticks(pow(10, lo), pow(10, hi), max_ticks, &lin);
  t->n = 0;
  for (int i = 0; i < lin.n; i++)
    if (lin.v[i] > 0) t->v[t->n] = log10(lin.v[i]), t->label_v[t->n++] = lin.v[i];
  t->step = lin.step;
}

static void log_label(char *buf, size_t len, double v) {
  if (v >= 1e-3 && v < 1e5)
    snprintf(buf, len, "%g", v);
  else
    snprintf(buf, len, "%.0e", v);
}

int plot_chart(plot_canvas *c, const double *x, const double *y, int64_t n, const plot_opts *o,
               plot_layout *layout, char *err, size_t err_len) {
  static const plot_opts defaults = {0};
  if (!o) o = &defaults;
  int W = o->width > 0 ? o->width : 800, H = o->height > 0 ? o->height : 500;
  const int scale = W >= 600 ? 2 : 1; /* text scale: 2 gives 10x14 characters */
  const int ch_w = (PLOT_FONT_W + 1) * scale, ch_h = PLOT_FONT_H * scale;
  plot_layout L = {.log_y = o->log_y};

  /* data ranges over the drawable points */
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  int64_t n_drawn = 0;
  for (int64_t i = 0; i < n; i++) {
    if (!isfinite(x[i]) || !isfinite(y[i]) || (o->log_y && y[i] <= 0)) continue;
    double v = o->log_y ? log10(y[i]) : y[i];
    xmin = fmin(xmin, x[i]), xmax = fmax(xmax, x[i]);
    ymin = fmin(ymin, v), ymax = fmax(ymax, v);
    n_drawn++;
  }
  if (!n_drawn) {
    vt_seterr(err, err_len, "plot: no point to draw (%lld values%s)", (long long)n,
              o->log_y ? ", log scale needs values > 0" : "");
    return -1;
  }
  if (xmax == xmin) xmin -= 1, xmax += 1;
  if (ymax == ymin) {
    double d = o->log_y ? 0.1 : fmax(fabs(ymin) * 0.1, 1e-3);
    ymin -= d, ymax += d;
  }
  double pad = (ymax - ymin) * 0.05;
  L.xmin = xmin, L.xmax = xmax, L.ymin = ymin - pad, L.ymax = ymax + pad;
  L.n_drawn = n_drawn;

  ticks yt, xt;
  int max_yt = (H - 8 * ch_h) / (2 * ch_h);
  if (max_yt < 2) max_yt = 2;
  if (o->log_y)
    log_ticks(L.ymin, L.ymax, max_yt, &yt);
  else
    linear_ticks(L.ymin, L.ymax, max_yt, &yt);
  char lab[64];
  int label_w = 0;
  for (int i = 0; i < yt.n; i++) {
    if (o->log_y && yt.step == 0)
      log_label(lab, sizeof lab, yt.label_v[i]);
    else
      tick_label(lab, sizeof lab, yt.label_v[i], yt.step, fmax(fabs(L.ymin), fabs(L.ymax)));
    int w = plot_text_width(lab, scale);
    label_w = w > label_w ? w : label_w;
  }

  /* layout: title on top, y labels left, x labels and the x axis name below */
  L.x0 = label_w + 3 * ch_w / 2 + 4;
  L.x1 = W - 2 * ch_w;
  L.y0 = 4 * ch_h;
  L.y1 = H - 4 * ch_h;
  if (L.x1 - L.x0 < 20 || L.y1 - L.y0 < 20) {
    vt_seterr(err, err_len, "plot: %d x %d pixels is too small for a chart", W, H);
    return -1;
  }
  int max_xt = (L.x1 - L.x0) / (8 * ch_w);
  linear_ticks(L.xmin, L.xmax, max_xt < 2 ? 2 : max_xt, &xt);

  if (plot_canvas_init(c, W, H, PLOT_BG)) {
    vt_seterr(err, err_len, "plot: out of memory for a %d x %d canvas", W, H);
    return -1;
  }
  /* grid and tick labels (ticks ascend, so labels go bottom-up) */
  int last_label_y = 1 << 20;
  for (int i = 0; i < yt.n; i++) {
    int py = (int)lround(L.y1 - (yt.v[i] - L.ymin) / (L.ymax - L.ymin) * (L.y1 - L.y0));
    if (py < L.y0 || py > L.y1) continue;
    plot_fill_rect(c, L.x0 + 1, py, L.x1 + 1, py + 1, PLOT_GRID);
    plot_fill_rect(c, L.x0 - 4, py, L.x0, py + 1, PLOT_FG);
    if (abs(py - last_label_y) < ch_h + ch_h / 2) continue; /* crowded (log axes): grid line only */
    last_label_y = py;
    if (o->log_y && yt.step == 0)
      log_label(lab, sizeof lab, yt.label_v[i]);
    else
      tick_label(lab, sizeof lab, yt.label_v[i], yt.step, fmax(fabs(L.ymin), fabs(L.ymax)));
    plot_text(c, L.x0 - 6 - plot_text_width(lab, scale), py - ch_h / 2, lab, scale, PLOT_FG);
  }
  for (int i = 0; i < xt.n; i++) {
    int px = (int)lround(plot_map_x(&L, xt.v[i]));
    if (px < L.x0 || px > L.x1) continue;
    plot_fill_rect(c, px, L.y0, px + 1, L.y1, PLOT_GRID);
    plot_fill_rect(c, px, L.y1 + 1, px + 1, L.y1 + 5, PLOT_FG);
    tick_label(lab, sizeof lab, xt.v[i], xt.step, fmax(fabs(L.xmin), fabs(L.xmax)));
    int w = plot_text_width(lab, scale), lx = px - w / 2;
    if (lx + w > W - 2) lx = W - 2 - w;
    plot_text(c, lx, L.y1 + 8, lab, scale, PLOT_FG);
  }
  /* axes (left and bottom) */
  plot_fill_rect(c, L.x0 - 1, L.y0, L.x0, L.y1 + 2, PLOT_FG);
  plot_fill_rect(c, L.x0 - 1, L.y1 + 1, L.x1 + 1, L.y1 + 2, PLOT_FG);

  /* title, axis names, legend */
  const char *title = o->title ? o->title : "";
  char short_title[1024];
  int max_chars = (W - 2 * ch_w) / ch_w;
  if ((int)strlen(title) > max_chars && max_chars > 8) { /* keep the end: the run's name */
    snprintf(short_title, sizeof short_title, "...%s", title + strlen(title) - (max_chars - 3));
    title = short_title;
  }
  int tw = plot_text_width(title, scale);
  plot_text(c, (W - tw) / 2 > 0 ? (W - tw) / 2 : 0, ch_h / 2, title, scale, PLOT_FG);
  const char *xl = o->x_label ? o->x_label : "step";
  plot_text(c, (L.x0 + L.x1 - plot_text_width(xl, scale)) / 2, H - 3 * ch_h / 2 - 2, xl, scale,
            PLOT_FG);
  if (o->y_label) plot_text(c, 4, L.y0 - ch_h - ch_h / 2, o->y_label, scale, PLOT_FG);
  int lx = L.x1 - 19 * ch_w, ly = L.y0 - ch_h - ch_h / 2;
  plot_fill_rect(c, lx, ly + ch_h / 2 - scale, lx + 2 * ch_w, ly + ch_h / 2 + scale, PLOT_RAW);
  plot_text(c, lx + 2 * ch_w + ch_w / 2, ly, "raw", scale, PLOT_FG);
  double smooth = plot_ema_factor(o->smooth, n); /* 0 for 5 points or fewer: no EMA */
  if (smooth > 0) {
    lx += 6 * ch_w + ch_w / 2;
    plot_fill_rect(c, lx, ly + ch_h / 2 - scale, lx + 2 * ch_w, ly + ch_h / 2 + scale, PLOT_SMOOTH);
    char ema_label[32];
    snprintf(ema_label, sizeof ema_label, "EMA %.2g", smooth);
    plot_text(c, lx + 2 * ch_w + ch_w / 2, ly, ema_label, scale, PLOT_FG);
  }

  /* curves, clipped to the plot area: the raw one thin, the EMA on top of it thicker */
  double *ema = NULL;
  if (smooth > 0) {
    ema = malloc(sizeof(double) * (size_t)n);
    if (!ema) {
      plot_canvas_free(c);
      vt_seterr(err, err_len, "plot: out of memory for %lld points", (long long)n);
      return -1;
    }
    plot_ema(y, n, smooth, ema);
  }
  plot_canvas_clip(c, L.x0, L.y0 - 1, L.x1 + 1, L.y1 + 1);
  for (int pass = 0; pass < (ema ? 2 : 1); pass++) {
    const double *v = pass ? ema : y;
    double px = NAN, py = NAN;
    for (int64_t i = 0; i < n; i++) {
      if (!isfinite(x[i]) || !isfinite(v[i]) || (o->log_y && v[i] <= 0)) continue;
      double qx = plot_map_x(&L, x[i]), qy = plot_map_y(&L, v[i]);
      if (isnan(px))
        plot_line(c, qx, qy, qx, qy, pass ? 2 : 1, pass ? PLOT_SMOOTH : PLOT_RAW);
      else
        plot_line(c, px, py, qx, qy, pass ? 2 : 1, pass ? PLOT_SMOOTH : PLOT_RAW);
      px = qx, py = qy;
    }
  }
  plot_canvas_unclip(c);
  free(ema);
  if (layout) *layout = L;
  return 0;
}

int plot_metrics(const char *metrics_path, const char *metric, const char *png_path,
                 const plot_opts *o, plot_series *series, plot_layout *layout, char *err,
                 size_t err_len) {
  plot_series s;
  if (plot_series_read(&s, metrics_path, metric, err, err_len)) {
    if (series) *series = s;
    return -1;
  }
  plot_opts po = o ? *o : (plot_opts){0};
  char title[512];
  if (!po.title) {
    snprintf(title, sizeof title, "%s%s: %s", metric, po.log_y ? " (log)" : "", metrics_path);
    po.title = title;
  }
  if (!po.y_label) po.y_label = metric;
  plot_canvas c;
  int rc = plot_chart(&c, s.x, s.y, s.n, &po, layout, err, err_len);
  if (!rc) {
    rc = plot_canvas_write_png(&c, png_path, err, err_len);
    plot_canvas_free(&c);
  }
  int64_t n = s.n;
  plot_series_free(&s);
  s.n = n; /* the counts stay, the arrays are gone */
  if (series) *series = s;
  return rc;
}
