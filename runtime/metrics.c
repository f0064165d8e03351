/* runtime/metrics.c — classification, multi-label and regression metrics with scikit-learn's
 * definitions (lathe/train.h), the classification report as text and the confusion matrix as
 * an SVG heat map.
 *
 * scikit-learn conventions kept exactly: labels = classes occurring in y_true or y_pred;
 * precision/recall/F1 of a class with a zero denominator are 0 (zero_division = 0); macro =
 * unweighted mean over the labels, weighted = mean weighted by support; R² of a constant
 * target is 1 for a perfect prediction, else 0; multi-output regression averages per column.
 */
#include "data.h"
#include "rt_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *fail_msg(char **error, const char *msg) {
  if (error) {
    *error = malloc(strlen(msg) + 1);
    if (*error) strcpy(*error, msg);
  }
  return NULL;
}

static double ratio(double num, double den) {
  return den > 0 ? num / den : 0;
}

static void class_scores(lathe_classification *m) {
  int C = m->n_classes, labels = 0;
  memset(&m->macro, 0, sizeof m->macro);
  memset(&m->weighted, 0, sizeof m->weighted);
  for (int c = 0; c < C; c++) {
    int64_t tp = m->confusion[(int64_t)c * C + c], pred = 0, truth = 0;
    for (int k = 0; k < C; k++)
      pred += m->confusion[(int64_t)k * C + c], truth += m->confusion[(int64_t)c * C + k];
    lathe_class_metrics *s = &m->classes[c];
    s->precision = ratio((double)tp, (double)pred);
    s->recall = ratio((double)tp, (double)truth);
    s->f1 = ratio(2.0 * (double)tp, (double)(pred + truth));
    s->support = truth;
    m->present[c] = pred + truth > 0;
    if (!m->present[c]) continue;
    labels++;
    m->macro.precision += s->precision, m->macro.recall += s->recall, m->macro.f1 += s->f1;
    double w = (double)truth;
    m->weighted.precision += w * s->precision, m->weighted.recall += w * s->recall;
    m->weighted.f1 += w * s->f1;
  }
  m->macro.precision /= labels, m->macro.recall /= labels, m->macro.f1 /= labels;
  m->macro.support = m->weighted.support = m->n;
  m->weighted.precision = ratio(m->weighted.precision, (double)m->n);
  m->weighted.recall = ratio(m->weighted.recall, (double)m->n);
  m->weighted.f1 = ratio(m->weighted.f1, (double)m->n);
}

int lathe_classification_compute(const int32_t *y_true, const int32_t *y_pred, int64_t n,
                                 int n_classes, lathe_classification *out, char **error) {
  memset(out, 0, sizeof *out);
  if (n <= 0 || n_classes <= 0 || n_classes > 100000)
    return fail_msg(error, "error: no samples or no classes to compute metrics over\n"), -1;
  for (int64_t i = 0; i < n; i++)
    if (y_true[i] < 0 || y_true[i] >= n_classes || y_pred[i] < 0 || y_pred[i] >= n_classes)
      return fail_msg(error, "error: a class id outside [0, classes)\n"), -1;
  out->n_classes = n_classes;
  out->n = n;
  out->classes = calloc((size_t)n_classes, sizeof *out->classes);
  out->present = calloc((size_t)n_classes, 1);
  out->confusion = calloc((size_t)n_classes * (size_t)n_classes, sizeof *out->confusion);
  if (!out->classes || !out->present || !out->confusion) {
    lathe_classification_free(out);
    return fail_msg(error, "error: out of memory\n"), -1;
  }
  int64_t correct = 0;
  for (int64_t i = 0; i < n; i++) {
    out->confusion[(int64_t)y_true[i] * n_classes + y_pred[i]]++;
    correct += y_true[i] == y_pred[i];
  }
  out->accuracy = (double)correct / (double)n;
  class_scores(out);
  return 0;
}

void lathe_classification_free(lathe_classification *m) {
  free(m->classes);
  free(m->present);
  free(m->confusion);
  memset(m, 0, sizeof *m);
}

/* ---- text report -------------------------------------------------------------------------- */

typedef struct Text {
  char *s;
  size_t len, cap;
} Text;

static void put(Text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(Text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || !t->s) return;
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = (t->len + (size_t)n + 1) * 2;
    char *grown = realloc(t->s, cap);
    if (!grown) {
      free(t->s), t->s = NULL;
      return;
    }
    t->s = grown, t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

static const char *label_name(const char *const *names, int c, char *buf, size_t size) {
  if (names && names[c]) return names[c];
  snprintf(buf, size, "%d", c);
  return buf;
}

static void report_row(Text *t, const char *name, const lathe_class_metrics *s, int width) {
  put(t, "%*s %9.4f %9.4f %9.4f %9lld\n", width, name, s->precision, s->recall, s->f1,
      (long long)s->support);
}

char *lathe_classification_report(const lathe_classification *m, const char *const *names) {
  Text t = {malloc(256), 0, 256};
  char buf[32];
  int width = 12;
  for (int c = 0; c < m->n_classes; c++)
    if (m->present[c]) {
      int n = (int)strlen(label_name(names, c, buf, sizeof buf));
      width = n > width ? (n > 40 ? 40 : n) : width;
    }
  put(&t, "%*s %9s %9s %9s %9s\n", width, "", "precision", "recall", "f1-score", "support");
  for (int c = 0; c < m->n_classes; c++)
    if (m->present[c]) report_row(&t, label_name(names, c, buf, sizeof buf), &m->classes[c], width);
  put(&t, "\n%*s %9s %9s %9.4f %9lld\n", width, "accuracy", "", "", m->accuracy, (long long)m->n);
  report_row(&t, "macro avg", &m->macro, width);
  report_row(&t, "weighted avg", &m->weighted, width);
  put(&t, "\nconfusion matrix (rows: true class, columns: predicted)\n%*s", width, "");
  for (int c = 0; c < m->n_classes; c++)
    if (m->present[c]) put(&t, " %8.8s", label_name(names, c, buf, sizeof buf));
  put(&t, "\n");
  for (int r = 0; r < m->n_classes; r++) {
    if (!m->present[r]) continue;
    put(&t, "%*s", width, label_name(names, r, buf, sizeof buf));
    for (int c = 0; c < m->n_classes; c++)
      if (m->present[c]) put(&t, " %8lld", (long long)m->confusion[(int64_t)r * m->n_classes + c]);
    put(&t, "\n");
  }
  return t.s;
}

/* ---- SVG heat map ------------------------------------------------------------------------- */

static void svg_escape(Text *t, const char *s) {
  for (; *s; s++) {
    if (*s == '<')
      put(t, "&lt;");
    else if (*s == '>')
      put(t, "&gt;");
    else if (*s == '&')
      put(t, "&amp;");
    else if (*s == '"')
      put(t, "&quot;");
    else
      put(t, "%c", *s);
  }
}

int lathe_confusion_svg(const lathe_classification *m, const char *const *names, const char *path,
                        char **error) {
  enum { CELL = 36, MARGIN = 110 };
  int C = m->n_classes, size = MARGIN + C * CELL + 20;
  int64_t max = 1;
  for (int64_t i = 0; i < (int64_t)C * C; i++)
    max = m->confusion[i] > max ? m->confusion[i] : max;
  Text t = {malloc(4096), 0, 4096};
  char buf[32];
  put(&t,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
      "font-family=\"sans-serif\" font-size=\"11\">\n",
      size, size);
  put(&t, "<text x=\"%d\" y=\"14\">predicted class</text>\n", MARGIN);
  put(&t, "<text x=\"4\" y=\"%d\">true class</text>\n", MARGIN - 4);
  for (int r = 0; r < C; r++) {
    put(&t, "<text x=\"4\" y=\"%d\">", MARGIN + r * CELL + CELL / 2 + 4);
    svg_escape(&t, label_name(names, r, buf, sizeof buf));
    put(&t, "</text>\n<text x=\"%d\" y=\"%d\">", MARGIN + r * CELL + 4, MARGIN - 20);
    svg_escape(&t, label_name(names, r, buf, sizeof buf));
    put(&t, "</text>\n");
    for (int c = 0; c < C; c++) {
      int64_t v = m->confusion[(int64_t)r * C + c];
      int shade = 255 - (int)(200.0 * (double)v / (double)max);
      put(&t,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"rgb(%d,%d,255)\" "
          "stroke=\"#999\"/><text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%lld</text>\n",
          MARGIN + c * CELL, MARGIN + r * CELL, CELL, CELL, shade, shade,
          MARGIN + c * CELL + CELL / 2, MARGIN + r * CELL + CELL / 2 + 4, (long long)v);
    }
  }
  put(&t, "</svg>\n");
  if (!t.s) return fail_msg(error, "error: out of memory\n"), -1;
  Diag d;
  diag_init(&d);
  int rc = rt_write_file_atomic(path, t.s, t.len, &d) ? 0 : rt_error_out(&d, error);
  diag_fini(&d);
  free(t.s);
  return rc;
}

/* ---- regression and multi-label ----------------------------------------------------------- */

int lathe_regression_compute(const double *y_true, const double *y_pred, int64_t n, int64_t outputs,
                             lathe_regression *out, char **error) {
  memset(out, 0, sizeof *out);
  if (n <= 0 || outputs <= 0) return fail_msg(error, "error: no samples for metrics\n"), -1;
  out->n = n;
  for (int64_t j = 0; j < outputs; j++) {
    double mean = 0, se = 0, ae = 0, tot = 0;
    for (int64_t i = 0; i < n; i++)
      mean += y_true[i * outputs + j];
    mean /= (double)n;
    for (int64_t i = 0; i < n; i++) {
      double t = y_true[i * outputs + j], e = t - y_pred[i * outputs + j];
      se += e * e, ae += fabs(e), tot += (t - mean) * (t - mean);
    }
    out->mse += se / (double)n;
    out->rmse += sqrt(se / (double)n);
    out->mae += ae / (double)n;
    out->r2 += tot > 0 ? 1 - se / tot : se == 0 ? 1.0 : 0.0;
  }
  out->mse /= (double)outputs, out->rmse /= (double)outputs;
  out->mae /= (double)outputs, out->r2 /= (double)outputs;
  return 0;
}

int lathe_multilabel_compute(const int32_t *y_true, const int32_t *y_pred, int64_t n, int labels,
                             double *f1, double *f1_macro, double *f1_micro, char **error) {
  if (n <= 0 || labels <= 0) return fail_msg(error, "error: no samples for metrics\n"), -1;
  int64_t TP = 0, P = 0, T = 0;
  *f1_macro = 0;
  for (int j = 0; j < labels; j++) {
    int64_t tp = 0, p = 0, t = 0;
    for (int64_t i = 0; i < n; i++) {
      int a = y_true[i * labels + j] != 0, b = y_pred[i * labels + j] != 0;
      tp += a && b, p += b, t += a;
    }
    f1[j] = ratio(2.0 * (double)tp, (double)(p + t));
    *f1_macro += f1[j];
    TP += tp, P += p, T += t;
  }
  *f1_macro /= labels;
  *f1_micro = ratio(2.0 * (double)TP, (double)(P + T));
  return 0;
}

/* ---- the summary -------------------------------------------------------------------------- */

static const char *const task_names[LATHE_TASK_COUNT] = {[LATHE_TASK_AUTO] = "auto",
                                                         [LATHE_TASK_NONE] = "none",
                                                         [LATHE_TASK_CLASSIFY] = "classification",
                                                         [LATHE_TASK_SEQUENCE] = "sequence",
                                                         [LATHE_TASK_MULTILABEL] = "multilabel",
                                                         [LATHE_TASK_REGRESS] = "regression"};

const char *lathe_task_name(int task) {
  return task >= 0 && task < LATHE_TASK_COUNT ? task_names[task] : "?";
}

int lathe_task_parse(const char *name) {
  for (int t = 0; t < LATHE_TASK_COUNT; t++)
    if (strcmp(name, task_names[t]) == 0) return t;
  return -1;
}

int lathe_metrics_get(const lathe_metrics *m, const char *name, double *value, int *higher_better) {
  bool cls = m->task == LATHE_TASK_CLASSIFY || m->task == LATHE_TASK_SEQUENCE ||
             m->task == LATHE_TASK_MULTILABEL;
  bool reg = m->task == LATHE_TASK_REGRESS;
  static const struct {
    const char *name;
    size_t offset;
    int higher, kind; /* kind 0 any, 1 classification, 2 regression */
  } table[] = {
      {"loss", offsetof(lathe_metrics, loss), 0, 0},
      {"accuracy", offsetof(lathe_metrics, accuracy), 1, 1},
      {"precision", offsetof(lathe_metrics, precision), 1, 1},
      {"recall", offsetof(lathe_metrics, recall), 1, 1},
      {"f1", offsetof(lathe_metrics, f1), 1, 1},
      {"mse", offsetof(lathe_metrics, mse), 0, 2},
      {"rmse", offsetof(lathe_metrics, rmse), 0, 2},
      {"mae", offsetof(lathe_metrics, mae), 0, 2},
      {"r2", offsetof(lathe_metrics, r2), 1, 2},
  };
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
    if (strcmp(name, table[i].name) != 0) continue;
    if ((table[i].kind == 1 && !cls) || (table[i].kind == 2 && !reg)) return -1;
    *value = *(const double *)((const char *)m + table[i].offset);
    *higher_better = table[i].higher;
    return 0;
  }
  return -1;
}

/* ---- early stopping ----------------------------------------------------------------------- */

void lathe_early_stop_init(lathe_early_stop *s, int patience, double min_delta, int higher_better) {
  memset(s, 0, sizeof *s);
  s->patience = patience;
  s->min_delta = min_delta;
  s->higher_better = higher_better;
}

int lathe_early_stop_update(lathe_early_stop *s, int epoch, double value, int *stop) {
  double gain = s->higher_better ? value - s->best : s->best - value;
  int better = s->best_epoch == 0 || gain > s->min_delta;
  if (better)
    s->best = value, s->best_epoch = epoch, s->wait = 0;
  else
    s->wait++;
  *stop = s->patience > 0 && s->wait >= s->patience;
  return better;
}
