/* cli/repl_print.c — printing REPL values the way NumPy does: a type line, then nested
 * brackets with aligned columns; tensors of more than 100 elements show the first and last 3
 * items of each axis around "...".
 *
 *   y: f32[2, 3]
 *   [[ 0.5000 -1.2500  2.0000]
 *    [ 3.0000  0.0000 -0.7500]]
 */
#include <math.h>
#include <string.h>

#include "repl.h"

enum { EDGE = 3, SUMMARIZE_OVER = 100 };

typedef struct Fmt {
  const Tensor *t;
  bool summarize;
  bool sci;  /* %e instead of %f */
  int width; /* of every element */
} Fmt;

static void format_value(const Fmt *f, double v, char *buf, size_t size) {
  if (!dtype_is_float(f->t->dtype)) snprintf(buf, size, "%lld", (long long)v);
  else if (isnan(v) || isinf(v))
    snprintf(buf, size, "%s", isnan(v) ? "nan" : v < 0 ? "-inf" : "inf");
  else snprintf(buf, size, f->sci ? "%.4e" : "%.4f", v);
}

/* whether index i of an axis of size n is shown */
static bool shown(const Fmt *f, int64_t i, int64_t n) {
  return !f->summarize || n <= 2 * EDGE || i < EDGE || i >= n - EDGE;
}

/* width and notation from every element that will be printed */
static void measure(Fmt *f) {
  int64_t n = shape_numel(&f->t->shape);
  double lo = INFINITY, hi = 0;
  for (int64_t i = 0; i < n; i++) {
    double a = fabs(tensor_get(f->t, i));
    if (a > 0 && isfinite(a)) lo = a < lo ? a : lo, hi = a > hi ? a : hi;
  }
  f->sci = dtype_is_float(f->t->dtype) && (hi >= 1e6 || (lo < 1e-4 && lo > 0));
  char buf[64];
  f->width = 1;
  for (int64_t i = 0; i < n; i++) {
    format_value(f, tensor_get(f->t, i), buf, sizeof buf);
    int w = (int)strlen(buf);
    f->width = w > f->width ? w : f->width;
  }
}

/* prints axis `axis` of the block starting at flat index base */
static void print_axis(FILE *out, const Fmt *f, int axis, int64_t base, int indent) {
  const Shape *s = &f->t->shape;
  int64_t n = s->dim[axis], stride = 1;
  for (int k = axis + 1; k < s->rank; k++) stride *= s->dim[k];
  fputc('[', out);
  bool first = true;
  for (int64_t i = 0; i < n; i++) {
    if (!shown(f, i, n)) {
      if (i == EDGE) {
        if (axis == s->rank - 1) fprintf(out, " ...");
        else fprintf(out, "\n%*s...", indent + 1, "");
      }
      continue;
    }
    if (axis == s->rank - 1) {
      char buf[64];
      format_value(f, tensor_get(f->t, base + i * stride), buf, sizeof buf);
      fprintf(out, "%s%*s", first ? "" : " ", f->width, buf);
    } else {
      if (!first)
        for (int k = axis; k < s->rank - 1; k++) fputc('\n', out);
      if (!first || i > 0) fprintf(out, "%*s", indent + 1, "");
      print_axis(out, f, axis + 1, base + i * stride, indent + 1);
    }
    first = false;
  }
  fputc(']', out);
}

void repl_print_tensor(FILE *out, const char *name, const Tensor *t) {
  char shape[200];
  fprintf(out, "%s%s%s%s\n", name ? name : "", name ? ": " : "", dtype_name(t->dtype),
          shape_str(&t->shape, shape, sizeof shape));
  Fmt f = {t, shape_numel(&t->shape) > SUMMARIZE_OVER, false, 1};
  measure(&f);
  if (t->shape.rank == 0) {
    char buf[64];
    format_value(&f, tensor_get(t, 0), buf, sizeof buf);
    fprintf(out, "%s\n", buf);
    return;
  }
  print_axis(out, &f, 0, 0, 0);
  fputc('\n', out);
}
