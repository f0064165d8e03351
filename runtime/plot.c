/* runtime/plot.c — an SVG plot of the training curves, written atomically.
 *
 * Two panels side by side, both over epochs 1..n: the left one has the train and test loss,
 * the right one the test accuracy in percent. Each panel has a frame, "nice" ticks (1, 2 or 5
 * times a power of ten) with grid lines and labels, axis titles and a legend. Non-finite
 * values (a diverged loss) are left out and break the line; a series pointer may be NULL
 * (not plotted). The SVG is self-contained (no scripts, no external fonts or styles) and the
 * title is XML-escaped.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { PLOT_W = 960, PLOT_H = 420, PANEL_W = 380, PANEL_H = 300, PANEL_TOP = 60 };

typedef struct SvgBuf {
  char *s;
  size_t len, cap;
  bool oom; /* an allocation failed; the text is incomplete */
} SvgBuf;

static void put(SvgBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(SvgBuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = true;
      return;
    }
    if (b->s && b->len + (size_t)n < b->cap) {
      b->len += (size_t)n;
      return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap <= b->len + (size_t)n)
      cap *= 2;
    char *s = realloc(b->s, cap);
    if (!s) {
      b->oom = true;
      return;
    }
    b->s = s;
    b->cap = cap;
  }
}

static void put_escaped(SvgBuf *b, const char *text) {
  for (const char *c = text; *c; c++) {
    switch (*c) {
    case '<':
      put(b, "&lt;");
      break;
    case '>':
      put(b, "&gt;");
      break;
    case '&':
      put(b, "&amp;");
      break;
    case '"':
      put(b, "&quot;");
      break;
    default:
      if ((unsigned char)*c >= 0x20 || *c == '\t') put(b, "%c", *c);
    }
  }
}

/* ---- scales ------------------------------------------------------------------------------ */

typedef struct Panel {
  double x0, y0, w, h; /* plot area in SVG units */
  int n;               /* epochs */
  double lo, hi, step; /* y range and tick step */
  double scale;        /* value multiplier for display (100 for percent) */
} Panel;

static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

/* y range of the finite values of up to two series, rounded out to whole ticks */
static void y_range(Panel *p, const double *a, const double *b, double clamp_lo, double clamp_hi) {
  double lo = INFINITY, hi = -INFINITY;
  for (int i = 0; i < p->n; i++) {
    for (int k = 0; k < 2; k++) {
      const double *s = k ? b : a;
      if (!s || !isfinite(s[i] * p->scale)) continue;
      lo = fmin(lo, s[i] * p->scale);
      hi = fmax(hi, s[i] * p->scale);
    }
  }
  if (lo > hi) lo = 0, hi = 1;              /* nothing to plot */
  if (hi - lo < 1e-9 * fmax(1, fabs(hi))) { /* flat: pad relative to the magnitude */
    double pad = fmax(0.5, 0.05 * fabs(hi));
    lo -= pad;
    hi += pad;
  }
  if (!isfinite(hi - lo)) lo = -1e300, hi = 1e300;
  p->step = nice_step(hi - lo, 5);
  p->lo = fmax(clamp_lo, floor(lo / p->step) * p->step);
  p->hi = fmin(clamp_hi, ceil(hi / p->step) * p->step);
  if (p->hi <= p->lo) p->hi = p->lo + p->step;
}

static double px(const Panel *p, int i) {
  return p->x0 + (p->n > 1 ? p->w * i / (p->n - 1) : p->w / 2);
}

static double py(const Panel *p, double v) {
  return p->y0 + p->h - p->h * (v * p->scale - p->lo) / (p->hi - p->lo);
}

/* ---- drawing ----------------------------------------------------------------------------- */

static void draw_axes(SvgBuf *b, const Panel *p, const char *ylabel) {
  put(b,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
      "stroke=\"#333\"/>\n",
      p->x0, p->y0, p->w, p->h);
  int decimals = p->step >= 1 ? 0 : (int)ceil(-log10(p->step) - 1e-9);
  int ticks = (int)fmin(100, floor((p->hi - p->lo) / p->step + 1e-6));
  for (int k = 0; k <= ticks; k++) {
    double v = p->lo + k * p->step;
    double y = p->y0 + p->h - p->h * (v - p->lo) / (p->hi - p->lo);
    put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", p->x0, y,
        p->x0 + p->w, y);
    put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.*f</text>\n", p->x0 - 6, y + 4,
        decimals, v);
  }
  int xstep = p->n > 10 ? (int)nice_step(p->n - 1, 8) : 1;
  for (int e = 1; e <= p->n; e += xstep) {
    double x = px(p, e - 1);
    put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n", x,
        p->y0 + p->h, x, p->y0 + p->h + 5);
    put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", x, p->y0 + p->h + 18,
        e);
  }
  put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">epoch</text>\n", p->x0 + p->w / 2,
      p->y0 + p->h + 36);
  put(b,
      "<text transform=\"translate(%.1f %.1f) rotate(-90)\" text-anchor=\"middle\">%s"
      "</text>\n",
      p->x0 - 48, p->y0 + p->h / 2, ylabel);
}

/* one polyline per run of finite values, plus point markers */
static void draw_series(SvgBuf *b, const Panel *p, const double *v, const char *color) {
  if (!v) return;
  bool open = false;
  for (int i = 0; i < p->n; i++) {
    bool ok = isfinite(v[i] * p->scale);
    if (ok && !open)
      put(b,
          "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
          "points=\"",
          color);
    if (ok) put(b, "%.1f,%.1f ", px(p, i), fmin(fmax(py(p, v[i]), p->y0), p->y0 + p->h));
    if (!ok && open) put(b, "\"/>\n");
    open = ok;
  }
  if (open) put(b, "\"/>\n");
  for (int i = 0; p->n <= 40 && i < p->n; i++) {
    if (!isfinite(v[i] * p->scale)) continue;
    put(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px(p, i),
        fmin(fmax(py(p, v[i]), p->y0), p->y0 + p->h), color);
  }
}

/* in the top right corner (losses fall), or bottom right (accuracy rises) */
static void draw_legend(SvgBuf *b, const Panel *p, const char *const *labels,
                        const char *const *colors, const bool *shown, int n, bool bottom) {
  int rows = 0;
  for (int i = 0; i < n; i++)
    rows += shown[i];
  if (rows == 0) return;
  double x = p->x0 + p->w - 120, y = bottom ? p->y0 + p->h - 18 - 18 * rows : p->y0 + 10;
  put(b,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"112\" height=\"%d\" fill=\"white\" "
      "fill-opacity=\"0.85\" stroke=\"#999\"/>\n",
      x, y, 8 + 18 * rows);
  for (int i = 0, r = 0; i < n; i++) {
    if (!shown[i]) continue;
    double ly = y + 16 + 18 * r++;
    put(b,
        "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
        "stroke-width=\"2\"/>\n",
        x + 8, ly - 4, x + 30, ly - 4, colors[i]);
    put(b, "<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", x + 36, ly, labels[i]);
  }
}

bool rt_plot_write(const char *path, const char *title, const double *train_loss,
                   const double *test_loss, const double *test_acc, int n, Diag *d) {
  if (n < 1) {
    rt_error(d, "cannot plot '%s': no epochs to plot", path);
    return false;
  }
  SvgBuf b = {0};
  put(&b,
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" "
      "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      PLOT_W, PLOT_H, PLOT_W, PLOT_H);
  put(&b, "<text x=\"%d\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">", PLOT_W / 2);
  put_escaped(&b, title ? title : "training");
  put(&b, "</text>\n");
  Panel loss = {80, PANEL_TOP, PANEL_W, PANEL_H, n, 0, 0, 0, 1};
  Panel acc = {80 + PANEL_W + 100, PANEL_TOP, PANEL_W, PANEL_H, n, 0, 0, 0, 100};
  y_range(&loss, train_loss, test_loss, -INFINITY, INFINITY);
  y_range(&acc, test_acc, NULL, 0, 100);
  draw_axes(&b, &loss, "loss");
  draw_axes(&b, &acc, "test accuracy (%)");
  static const char *const colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c"};
  static const char *const labels[] = {"train loss", "test loss", "test accuracy"};
  draw_series(&b, &loss, train_loss, colors[0]);
  draw_series(&b, &loss, test_loss, colors[1]);
  draw_series(&b, &acc, test_acc, colors[2]);
  bool shown[3] = {train_loss != NULL, test_loss != NULL, test_acc != NULL};
  draw_legend(&b, &loss, labels, colors, shown, 2, false);
  draw_legend(&b, &acc, labels + 2, colors + 2, shown + 2, 1, true);
  put(&b, "</svg>\n");
  bool ok = !b.oom;
  if (!ok) rt_error(d, "cannot plot '%s': out of memory", path);
  ok = ok && rt_write_file_atomic(path, b.s, b.len, d);
  free(b.s);
  return ok;
}
