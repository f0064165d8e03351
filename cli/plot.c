/* cli/plot.c — an SVG of the training curves: loss (train and test) and test accuracy per
 * epoch, side by side, written atomically.
 */
#include "cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct Buf {
  char *s;
  size_t len, cap;
} Buf;

static void put(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (b->len + (size_t)n + 1 > b->cap) {
    size_t cap = (b->cap + (size_t)n + 1) * 2;
    char *s = realloc(b->s, cap);
    if (!s) return;
    b->s = s;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

typedef struct Panel {
  double x0, y0, w, h; /* pixel box */
  double lo, hi;       /* value range */
  int n;               /* epochs */
} Panel;

static double px(const Panel *p, int i) { return p->x0 + (p->n > 1 ? p->w * i / (p->n - 1) : 0); }
static double py(const Panel *p, double v) { return p->y0 + p->h - p->h * (v - p->lo) / (p->hi - p->lo); }

static void axes(Buf *b, const Panel *p, const char *title, bool percent) {
  put(b, "<rect x='%g' y='%g' width='%g' height='%g' fill='none' stroke='#444'/>\n", p->x0, p->y0,
      p->w, p->h);
  put(b, "<text x='%g' y='%g' text-anchor='middle' font-size='14'>%s</text>\n", p->x0 + p->w / 2,
      p->y0 - 10, title);
  for (int t = 0; t <= 4; t++) {
    double v = p->lo + (p->hi - p->lo) * t / 4;
    put(b, "<line x1='%g' x2='%g' y1='%g' y2='%g' stroke='#ddd'/>\n", p->x0, p->x0 + p->w,
        py(p, v), py(p, v));
    put(b, "<text x='%g' y='%g' text-anchor='end' font-size='11'>%.3g%s</text>\n", p->x0 - 5,
        py(p, v) + 4, percent ? 100 * v : v, percent ? "%" : "");
  }
  for (int i = 0; i < p->n; i++)
    put(b, "<text x='%g' y='%g' text-anchor='middle' font-size='11'>%d</text>\n", px(p, i),
        p->y0 + p->h + 16, i + 1);
  put(b, "<text x='%g' y='%g' text-anchor='middle' font-size='12'>epoch</text>\n",
      p->x0 + p->w / 2, p->y0 + p->h + 34);
}

static void line(Buf *b, const Panel *p, const double *v, const char *color, const char *label,
                 int legend_row) {
  put(b, "<polyline fill='none' stroke='%s' stroke-width='2' points='", color);
  for (int i = 0; i < p->n; i++) put(b, "%g,%g ", px(p, i), py(p, v[i]));
  put(b, "'/>\n");
  for (int i = 0; i < p->n; i++)
    put(b, "<circle cx='%g' cy='%g' r='3' fill='%s'/>\n", px(p, i), py(p, v[i]), color);
  double ly = p->y0 + 14 + 16 * legend_row;
  put(b, "<line x1='%g' x2='%g' y1='%g' y2='%g' stroke='%s' stroke-width='2'/>\n", p->x0 + p->w - 110,
      p->x0 + p->w - 90, ly - 4, ly - 4, color);
  put(b, "<text x='%g' y='%g' font-size='11'>%s</text>\n", p->x0 + p->w - 85, ly, label);
}

static void range(const double *a, const double *b, int n, double *lo, double *hi) {
  *lo = INFINITY, *hi = -INFINITY;
  for (int i = 0; i < n; i++) {
    *lo = fmin(*lo, fmin(a[i], b ? b[i] : a[i]));
    *hi = fmax(*hi, fmax(a[i], b ? b[i] : a[i]));
  }
  double pad = (*hi - *lo) * 0.1 + 1e-6;
  *lo -= pad, *hi += pad;
}

bool cli_plot_write(const char *path, const char *title, const double *train_loss,
                    const double *test_loss, const double *test_acc, int n, Diag *d) {
  Buf b = {0};
  put(&b, "<svg xmlns='http://www.w3.org/2000/svg' width='900' height='380' "
          "font-family='sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n");
  put(&b, "<text x='450' y='24' text-anchor='middle' font-size='16'>%s</text>\n", title);
  Panel loss = {70, 60, 340, 260, 0, 1, n}, acc = {530, 60, 340, 260, 0, 1, n};
  range(train_loss, test_loss, n, &loss.lo, &loss.hi);
  range(test_acc, NULL, n, &acc.lo, &acc.hi);
  axes(&b, &loss, "loss", false);
  axes(&b, &acc, "test accuracy", true);
  line(&b, &loss, train_loss, "#1f77b4", "train", 0);
  line(&b, &loss, test_loss, "#d62728", "test", 1);
  line(&b, &acc, test_acc, "#2ca02c", "test", 0);
  put(&b, "</svg>\n");
  bool ok = b.s && rt_write_file_atomic(path, b.s, b.len, d);
  free(b.s);
  return ok;
}
