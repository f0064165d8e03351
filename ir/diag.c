/* ir/diag.c — the diagnostic sink: renders reports chibicc-style into a growing buffer.
 *
 * A report with a location becomes three lines:
 *
 *   model.lathe:3:7: error: expected ')' to close '(' at 3:2
 *     h = relu(dense(x, 256)
 *           ^
 *
 * The caret line copies the tabs of the source line so the caret lands under the column
 * whatever the tab width. A report without a location is just `error: message`.
 *
 * Invariants: buf is NUL-terminated whenever len > 0; n_errors counts every error, rendered
 * or not. When the error count reaches max_errors the line "error: too many errors;
 * stopping" is appended (once: stages stop reporting at diag_full), and anything reported
 * after that is counted but not rendered.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum { DIAG_DEFAULT_MAX_ERRORS = 20 };

void diag_init(Diag *d) {
  memset(d, 0, sizeof *d);
}

void diag_fini(Diag *d) {
  free(d->buf);
  for (int i = 0; i < d->n_sources; i++) {
    free(d->sources[i].name);
    free(d->sources[i].text);
  }
  free(d->sources);
  memset(d, 0, sizeof *d);
}

static char *diag_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (!p) abort(); /* out of memory is not a user error */
  memcpy(p, s, n);
  return p;
}

void diag_add_source(Diag *d, const char *name, const char *text) {
  for (int i = 0; i < d->n_sources; i++) {
    if (strcmp(d->sources[i].name, name) == 0) { /* re-registration replaces the text */
      free(d->sources[i].text);
      d->sources[i].text = diag_strdup(text);
      return;
    }
  }
  if (d->n_sources == d->cap_sources) {
    int cap = d->cap_sources ? 2 * d->cap_sources : 4;
    DiagSource *s = realloc(d->sources, (size_t)cap * sizeof *s);
    if (!s) abort();
    d->sources = s;
    d->cap_sources = cap;
  }
  d->sources[d->n_sources].name = diag_strdup(name);
  d->sources[d->n_sources].text = diag_strdup(text);
  d->n_sources++;
}

/* Appends raw bytes to the buffer, keeping it NUL-terminated. */
static void diag_append(Diag *d, const char *s, size_t n) {
  if (d->len + n + 1 > d->cap) {
    size_t cap = d->cap ? d->cap : 256;
    while (d->len + n + 1 > cap)
      cap *= 2;
    char *b = realloc(d->buf, cap);
    if (!b) abort();
    d->buf = b;
    d->cap = cap;
  }
  memcpy(d->buf + d->len, s, n);
  d->len += n;
  d->buf[d->len] = '\0';
}

static void diag_appendf(Diag *d, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void diag_vappendf(Diag *d, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  char *tmp = malloc((size_t)n + 1);
  if (!tmp) abort();
  vsnprintf(tmp, (size_t)n + 1, fmt, ap);
  diag_append(d, tmp, (size_t)n);
  free(tmp);
}

static void diag_appendf(Diag *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_vappendf(d, fmt, ap);
  va_end(ap);
}

static const char *diag_find_source(const Diag *d, const char *name) {
  for (int i = 0; i < d->n_sources; i++)
    if (strcmp(d->sources[i].name, name) == 0) return d->sources[i].text;
  return NULL;
}

/* The source line and a caret under loc.col; nothing if the line is unknown. A line longer
 * than DIAG_LINE_WINDOW columns (generated or hostile input) is shown around the caret only,
 * with "..." where it was cut. */
enum { DIAG_LINE_WINDOW = 160 };

static void diag_append_caret(Diag *d, SrcLoc loc) {
  const char *text = diag_find_source(d, loc.file);
  if (!text || loc.line == 0) return;
  const char *p = text;
  for (uint32_t line = 1; line < loc.line; line++) {
    p = strchr(p, '\n');
    if (!p) return;
    p++;
  }
  size_t n = strcspn(p, "\r\n");
  size_t col = loc.col > 0 ? loc.col - 1 : 0;
  if (col > n) col = n;
  size_t from = 0, to = n;
  if (n > DIAG_LINE_WINDOW) {
    from = col > DIAG_LINE_WINDOW / 2 ? col - DIAG_LINE_WINDOW / 2 : 0;
    to = from + DIAG_LINE_WINDOW < n ? from + DIAG_LINE_WINDOW : n;
  }
  diag_append(d, from ? "  ..." : "  ", from ? 5 : 2);
  diag_append(d, p + from, to - from);
  diag_append(d, to < n ? "...\n  " : "\n  ", to < n ? 6 : 3);
  if (from) diag_append(d, "   ", 3);
  for (size_t i = from; i < col; i++)
    diag_append(d, p[i] == '\t' ? "\t" : " ", 1);
  diag_append(d, "^\n", 2);
}

/* "file:line:col: level: msg", the caret lines; the error count was done by the caller */
static void diag_render(Diag *d, DiagLevel level, SrcLoc loc, const char *msg) {
  static const char *const names[DIAG_LEVEL_COUNT] = {"error", "warning", "note"};
  const char *level_name = (unsigned)level < DIAG_LEVEL_COUNT ? names[level] : "error";
  if (loc.file && loc.line > 0)
    diag_appendf(d, "%s:%u:%u: %s: ", loc.file, loc.line, loc.col, level_name);
  else if (loc.file)
    diag_appendf(d, "%s: %s: ", loc.file, level_name);
  else
    diag_appendf(d, "%s: ", level_name);
  diag_appendf(d, "%s\n", msg);
  if (loc.file && loc.line > 0) diag_append_caret(d, loc);
}

void diag_report(Diag *d, DiagLevel level, SrcLoc loc, const char *fmt, ...) {
  int max = d->max_errors > 0 ? d->max_errors : DIAG_DEFAULT_MAX_ERRORS;
  if (level == DIAG_ERROR) d->n_errors++;
  if (level == DIAG_WARNING) d->n_warnings++;
  if (d->n_errors > max || (d->n_errors == max && level != DIAG_ERROR)) return;
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  char *msg = malloc(n > 0 ? (size_t)n + 1 : 1);
  if (!msg) abort();
  msg[0] = '\0';
  if (n > 0) vsnprintf(msg, (size_t)n + 1, fmt, ap);
  va_end(ap);
  bool elsewhere = d->site.file && loc.file && strcmp(d->site.file, loc.file) != 0;
  if (level != DIAG_NOTE && elsewhere) { /* at the user's call, then where it arose */
    diag_render(d, level, d->site, msg);
    diag_appendf(d, "%s:%u:%u: note: inside '%s', which this call inlines\n", loc.file,
                 loc.line, loc.col, d->site_fn ? d->site_fn : "?");
    if (loc.line > 0) diag_append_caret(d, loc);
  } else {
    diag_render(d, level, loc, msg);
  }
  free(msg);
  if (level == DIAG_ERROR && d->n_errors == max)
    diag_appendf(d, "error: too many errors; stopping\n");
}

bool diag_full(const Diag *d) {
  int max = d->max_errors > 0 ? d->max_errors : DIAG_DEFAULT_MAX_ERRORS;
  return d->n_errors >= max;
}

void diag_flush(Diag *d, FILE *f) {
  if (d->len > 0) fputs(d->buf, f);
  d->len = 0;
  if (d->buf) d->buf[0] = '\0';
}

const char *diag_text(const Diag *d) {
  return d->len > 0 ? d->buf : "";
}

int diag_edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  int *row = malloc((m + 1) * sizeof *row);
  if (!row) abort();
  for (size_t j = 0; j <= m; j++)
    row[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    int diag = row[0]; /* row[i-1][j-1] */
    row[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  int result = row[m];
  free(row);
  return result;
}

void ir_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "%s:%d: internal error: assertion '%s' failed\n", file, line, expr);
  abort();
}
