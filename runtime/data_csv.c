/* runtime/data_csv.c — CSV/TSV datasets with a header row, parsed by libcsv (quoted fields,
 * embedded delimiters, quotes and newlines, CRLF; strict about stray quotes).
 *
 * The header names the columns. The target column (--target NAME, default the last) becomes an
 * array of that name: i32 class ids when its values are all integers, f32 otherwise, and when
 * any value is not a number the strings are class names mapped to ids in sorted order (like
 * scikit-learn's LabelEncoder; the names are kept in the store). The feature columns (--features
 * "a,b" or "2:8", default every other column) become the f32 array "x" (or x_name) of one row
 * each. Errors name file:line (the physical line a record ends on) and the column: a ragged
 * row, a non-numeric or non-finite feature, an unknown column, a file with no data rows.
 */
#include "data.h"

#include <csv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { CSV_MAX_COLS = 1 << 16 };

typedef struct CsvReader {
  const char *file;
  const lathe_data_options *o;
  Diag *d;
  bool failed;
  long line;    /* physical line being fed to the parser (1-based) */
  int64_t row;  /* records seen, the header included */
  int col;      /* field index within the current record */
  char **names; /* header */
  int n_cols;
  int target;      /* column index of the target, or -1 */
  int *feature_of; /* column → position in x, or -1 */
  int n_features;
  float *x;      /* n_rows * n_features */
  char **y;      /* target strings, one per data row */
  char *pending; /* the current record's target string */
  int64_t n_rows, cap_rows;
} CsvReader;

static char *dup_n(const char *s, size_t n) {
  char *c = malloc(n + 1);
  if (c) memcpy(c, s, n), c[n] = '\0';
  return c;
}

static void fail(CsvReader *r) {
  r->failed = true;
}

/* "a,b,c" names or "lo:hi" positions (end exclusive) into feature_of */
static bool select_features(CsvReader *r) {
  const char *spec = r->o->features;
  for (int c = 0; c < r->n_cols; c++)
    r->feature_of[c] = -1;
  long lo = 0, hi = 0;
  char tail = 0;
  if (spec && sscanf(spec, "%ld:%ld%c", &lo, &hi, &tail) == 2) {
    if (lo < 0 || hi > r->n_cols || lo >= hi) {
      rt_error(r->d, "%s: --features %s: expected a range within 0:%d", r->file, spec, r->n_cols);
      return false;
    }
    for (long c = lo; c < hi; c++)
      if (c != r->target) r->feature_of[c] = r->n_features++;
    return true;
  }
  if (!spec) {
    for (int c = 0; c < r->n_cols; c++)
      if (c != r->target) r->feature_of[c] = r->n_features++;
    return true;
  }
  for (const char *p = spec; *p;) {
    size_t n = strcspn(p, ",");
    int c = 0;
    while (c < r->n_cols && (strlen(r->names[c]) != n || strncmp(r->names[c], p, n) != 0))
      c++;
    if (c == r->n_cols) {
      rt_error(r->d,
               "%s: no column '%.*s' (--features); the header has %d columns, the first "
               "'%s'",
               r->file, (int)n, p, r->n_cols, r->names[0]);
      return false;
    }
    if (r->feature_of[c] < 0) r->feature_of[c] = r->n_features++;
    p += n + (p[n] == ',');
  }
  return true;
}

static bool end_header(CsvReader *r) {
  r->target = r->n_cols - 1;
  if (r->o->target && !r->o->target[0])
    r->target = -1; /* "": no target (prediction) */
  else if (r->o->target) {
    for (r->target = 0; r->target < r->n_cols; r->target++)
      if (strcmp(r->names[r->target], r->o->target) == 0) break;
    if (r->target == r->n_cols) {
      rt_error(r->d, "%s:1: no column '%s' (--target) in the header", r->file, r->o->target);
      return false;
    }
  }
  r->feature_of = malloc((size_t)r->n_cols * sizeof *r->feature_of);
  if (!r->feature_of || !select_features(r)) return false;
  if (r->n_features == 0) {
    rt_error(r->d, "%s: no feature columns (every column is the target)", r->file);
    return false;
  }
  return true;
}

static bool grow_rows(CsvReader *r) {
  if (r->n_rows < r->cap_rows) return true;
  int64_t cap = r->cap_rows ? 2 * r->cap_rows : 1024;
  float *x = realloc(r->x, (size_t)(cap * r->n_features) * sizeof *x);
  if (x) r->x = x;
  char **y = realloc(r->y, (size_t)cap * sizeof *y);
  if (y) r->y = y;
  if (!x || !y) return false;
  r->cap_rows = cap;
  return true;
}

static void header_field(CsvReader *r, const char *s, size_t len) {
  if (r->n_cols == CSV_MAX_COLS) {
    rt_error(r->d, "%s:1: more than %d columns", r->file, CSV_MAX_COLS);
    fail(r);
    return;
  }
  char **names = realloc(r->names, (size_t)(r->n_cols + 1) * sizeof *names);
  if (names) r->names = names;
  if (!names || !(names[r->n_cols] = dup_n(s, len))) {
    fail(r);
    return;
  }
  r->n_cols++;
}

static void data_field(CsvReader *r, const char *s, size_t len) {
  if (r->col >= r->n_cols) return; /* reported as ragged when the record ends */
  if (r->col == 0 && !grow_rows(r)) {
    fail(r);
    return;
  }
  if (r->col == r->target && !(r->pending = dup_n(s, len))) fail(r);
  int j = r->feature_of[r->col];
  if (j < 0) return;
  char buf[64], *end = NULL;
  size_t n = len < sizeof buf - 1 ? len : sizeof buf - 1;
  memcpy(buf, s, n), buf[n] = '\0';
  double v = len < sizeof buf && n ? strtod(buf, &end) : 0;
  while (end && (*end == ' ' || *end == '\t'))
    end++;
  if (!end || *end || !isfinite(v)) {
    rt_error(r->d, "%s:%ld: column '%s': expected a finite number, got '%.*s'", r->file, r->line,
             r->names[r->col], (int)(len > 40 ? 40 : len), s);
    fail(r);
    return;
  }
  r->x[r->n_rows * r->n_features + j] = (float)v;
}

static void on_field(void *s, size_t len, void *ctx) {
  CsvReader *r = ctx;
  if (r->failed) return;
  if (r->row == 0)
    header_field(r, s ? s : "", s ? len : 0);
  else
    data_field(r, s ? s : "", s ? len : 0);
  r->col++;
}

static void on_record(int c, void *ctx) {
  CsvReader *r = ctx;
  (void)c;
  if (r->failed) return;
  if (r->row == 0 && !end_header(r))
    fail(r);
  else if (r->row > 0 && r->col != r->n_cols) {
    rt_error(r->d, "%s:%ld: %d fields, expected %d as in the header (a ragged row)", r->file,
             r->line, r->col, r->n_cols);
    fail(r);
  } else if (r->row > 0) {
    r->y[r->n_rows++] = r->pending; /* NULL without a target column */
    r->pending = NULL;
  }
  r->row++;
  r->col = 0;
}

/* feeds text line by line so that errors can name the line */
static bool feed(CsvReader *r, struct csv_parser *p, const char *text, size_t len) {
  for (size_t at = 0; at < len && !r->failed;) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t n = nl ? (size_t)(nl - (text + at)) + 1 : len - at;
    if (csv_parse(p, text + at, n, on_field, on_record, r) != n) {
      rt_error(r->d,
               "%s:%ld: malformed CSV (%s): a quote inside an unquoted field or text "
               "after a closing quote",
               r->file, r->line, csv_strerror(csv_error(p)));
      fail(r);
    }
    at += n;
    r->line++;
  }
  if (r->line > 1) r->line--; /* a last record without a newline ends on the last line */
  if (!r->failed && csv_fini(p, on_field, on_record, r) != 0) {
    rt_error(r->d, "%s:%ld: malformed CSV: unterminated quoted field", r->file, r->line);
    fail(r);
  }
  return !r->failed;
}

static int cmp_str(const void *x, const void *y) {
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* the target strings as numbers; false if any is not one */
static bool numeric_target(CsvReader *r, double *v, bool *integral) {
  *integral = true;
  for (int64_t i = 0; i < r->n_rows; i++) {
    char *end = NULL;
    v[i] = strtod(r->y[i], &end);
    if (end == r->y[i] || *end) return false;
    if (!isfinite(v[i])) {
      rt_error(r->d, "%s: row %lld: target '%s' is %s; targets must be finite", r->file,
               (long long)i + 2, r->names[r->target], r->y[i]);
      fail(r);
      return false;
    }
    *integral = *integral && v[i] == floor(v[i]) && fabs(v[i]) < 2147483647.0;
  }
  return true;
}

/* string targets: sorted unique names become the store's classes, each row its index */
static bool categorical_target(CsvReader *r, lathe_dataset *ds, int32_t *ids) {
  char **sorted = malloc((size_t)r->n_rows * sizeof *sorted);
  if (!sorted) return false;
  memcpy(sorted, r->y, (size_t)r->n_rows * sizeof *sorted);
  qsort(sorted, (size_t)r->n_rows, sizeof *sorted, cmp_str);
  int n = 0;
  for (int64_t i = 0; i < r->n_rows; i++)
    if (i == 0 || strcmp(sorted[i], sorted[n - 1]) != 0) sorted[n++] = sorted[i];
  RtStore *s = ds->store;
  s->classes = calloc((size_t)n, sizeof *s->classes);
  for (int k = 0; s->classes && k < n; k++)
    s->classes[k] = dup_n(sorted[k], strlen(sorted[k])), s->n_classes = k + 1;
  for (int64_t i = 0; i < r->n_rows; i++) {
    char **at = bsearch(&r->y[i], sorted, (size_t)n, sizeof *sorted, cmp_str);
    ids[i] = (int32_t)(at - sorted);
  }
  free(sorted);
  return s->classes != NULL;
}

static bool target_array(CsvReader *r, lathe_dataset *ds) {
  double *v = malloc((size_t)r->n_rows * sizeof *v);
  bool integral = true, numeric = v && numeric_target(r, v, &integral);
  if (!v || r->failed) {
    free(v);
    return false;
  }
  Shape s = {.rank = 1, .dim = {r->n_rows}};
  RtArray a = {.name = dup_n(r->names[r->target], strlen(r->names[r->target])),
               .file = dup_n(r->file, strlen(r->file)),
               .dtype = numeric && !integral ? DT_F32 : DT_I32,
               .per = 1,
               .n = r->n_rows};
  a.row_bytes = 4;
  bool ok = a.name && a.file && tensor_alloc(&a.owned, a.dtype, &s);
  for (int64_t i = 0; ok && numeric && i < r->n_rows; i++) {
    if (a.dtype == DT_F32)
      ((float *)a.owned.data)[i] = (float)v[i];
    else
      ((int32_t *)a.owned.data)[i] = (int32_t)v[i];
  }
  if (ok && !numeric) ok = categorical_target(r, ds, a.owned.data);
  if (ok && !numeric) ds->store->class_array = ds->store->n_arrays; /* the index it is added at */
  free(v);
  a.data = a.owned.data;
  if (!ok) {
    rt_array_fini(&a);
    return false;
  }
  return rt_data_add(ds, &a, r->d);
}

static bool feature_array(CsvReader *r, lathe_dataset *ds) {
  const char *name = r->o->x_name ? r->o->x_name : "x";
  RtArray a = {.name = dup_n(name, strlen(name)),
               .file = dup_n(r->file, strlen(r->file)),
               .dtype = DT_F32,
               .sample = {1, {r->n_features}},
               .per = r->n_features,
               .n = r->n_rows};
  a.row_bytes = (size_t)r->n_features * sizeof(float);
  Shape s = {.rank = 2, .dim = {r->n_rows, r->n_features}};
  bool ok = a.name && a.file && tensor_alloc(&a.owned, DT_F32, &s);
  if (ok) memcpy(a.owned.data, r->x, (size_t)(r->n_rows * r->n_features) * sizeof(float));
  a.data = a.owned.data;
  if (!ok) {
    rt_array_fini(&a);
    return false;
  }
  return rt_data_add(ds, &a, r->d);
}

static void reader_fini(CsvReader *r) {
  for (int c = 0; c < r->n_cols; c++)
    free(r->names[c]);
  for (int64_t i = 0; r->y && i < r->n_rows; i++)
    free(r->y[i]);
  free(r->names), free(r->feature_of), free(r->x), free(r->y), free(r->pending);
}

bool rt_data_parse_csv(lathe_dataset *ds, const char *name, const char *text, size_t len,
                       char delimiter, const lathe_data_options *o, Diag *d) {
  CsvReader r = {.file = name, .o = o, .d = d, .line = 1, .target = -1};
  struct csv_parser p;
  if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI) != 0) return false;
  csv_set_delim(&p, (unsigned char)delimiter);
  bool ok = feed(&r, &p, text, len);
  csv_free(&p);
  if (ok && r.row == 0) {
    rt_error(d, "%s: empty file: expected a header row naming the columns", name);
    ok = false;
  } else if (ok && r.n_rows == 0) {
    rt_error(d, "%s: no data rows after the header", name);
    ok = false;
  }
  ok = ok && feature_array(&r, ds) && (r.target < 0 || target_array(&r, ds));
  if (!ok && !d->n_errors) rt_error(d, "%s: out of memory reading the CSV", name);
  reader_fini(&r);
  return ok;
}

bool rt_data_read_csv(lathe_dataset *ds, const char *path, const lathe_data_options *o, Diag *d) {
  char *text = NULL;
  size_t len = 0;
  if (!rt_read_file(path, &text, &len, d)) return false;
  size_t n = strlen(path);
  char delim = n > 4 && strcmp(path + n - 4, ".tsv") == 0 ? '\t' : ',';
  bool ok = rt_data_parse_csv(ds, path, text, len, delim, o, d);
  free(text);
  return ok;
}

/* ---- class names across files ------------------------------------------------------------ */

void rt_classes_free(char **names, int n) {
  for (int k = 0; names && k < n; k++)
    free(names[k]);
  free(names);
}

bool rt_classes_read(const char *path, char ***names, int *n, Diag *d) {
  char *text = NULL;
  size_t len = 0;
  *names = NULL, *n = 0;
  if (!rt_read_file(path, &text, &len, d)) return false;
  int lines = 0;
  for (size_t i = 0; i < len; i++)
    lines += text[i] == '\n' || (i + 1 == len && text[i] != '\n');
  char **v = lines ? calloc((size_t)lines, sizeof *v) : NULL;
  int k = 0;
  for (size_t at = 0; v && at < len && k < lines; k++) {
    size_t end = at;
    while (end < len && text[end] != '\n')
      end++;
    if (!(v[k] = dup_n(text + at, end - at))) break;
    at = end + 1;
  }
  free(text);
  if (!lines) rt_error(d, "%s: no class names (expected one per line)", path);
  if (!v || k < lines) {
    if (lines) rt_error(d, "out of memory reading %s", path);
    rt_classes_free(v, k);
    return false;
  }
  *names = v, *n = lines;
  return true;
}

/* local class k of s → its position in names; -1 (reported) for a class names does not have */
static bool class_positions(const RtStore *s, char *const *names, int n, int *to, const char *from,
                            Diag *d) {
  for (int k = 0; k < s->n_classes; k++) {
    to[k] = -1;
    for (int j = 0; j < n && to[k] < 0; j++)
      if (strcmp(s->classes[k], names[j]) == 0) to[k] = j;
    if (to[k] >= 0) continue;
    rt_error(d, "%s: class '%s' is not one of the %d classes of %s ('%s', ...)",
             s->arrays[s->class_array].file, s->classes[k], n, from, names[0]);
    return false;
  }
  return true;
}

bool rt_data_use_classes(lathe_dataset *ds, char *const *names, int n, const char *from, Diag *d) {
  if (n < 1) return true;
  RtStore *s = ds->store;
  bool ids_of = s->classes && s->class_array >= 0; /* string labels to re-number */
  char **copy = calloc((size_t)n, sizeof *copy);
  int *to = ids_of ? malloc((size_t)s->n_classes * sizeof *to) : NULL;
  bool ok = copy && (!ids_of || to);
  for (int k = 0; ok && k < n; k++)
    ok = (copy[k] = dup_n(names[k], strlen(names[k]))) != NULL;
  if (!ok) rt_error(d, "out of memory mapping the classes of %s", ds->source);
  ok = ok && (!ids_of || class_positions(s, names, n, to, from, d));
  if (ok && ids_of) {
    RtArray *a = &s->arrays[s->class_array];
    int32_t *ids = a->owned.data; /* a CSV target: owned, i32 */
    for (int64_t i = 0; i < a->n; i++)
      ids[i] = to[ids[i]];
  }
  free(to);
  if (!ok) {
    rt_classes_free(copy, n);
    return false;
  }
  rt_classes_free(s->classes, s->n_classes);
  s->classes = copy, s->n_classes = n;
  return true;
}
