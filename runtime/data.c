/* runtime/data.c — the dataset interface: a view of a shared store of named arrays, opening a
 * spec by file type, validation (equal lengths, finite floats, not empty), seeded and
 * stratified splits, and the public lathe_dataset_* functions of lathe/train.h.
 *
 * Invariant: a lathe_dataset handed out is complete and valid; every failure frees what was
 * built and reports in the Diag.
 */
#include "data.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *c = malloc(n);
  if (c) memcpy(c, s, n);
  return c;
}

int rt_error_out(const Diag *d, char **error) {
  if (error) *error = dup_str(d->n_errors ? diag_text(d) : "error: unknown failure\n");
  return -1;
}

lathe_dataset *rt_data_new(const char *source) {
  lathe_dataset *ds = calloc(1, sizeof *ds);
  RtStore *s = calloc(1, sizeof *s);
  char *src = dup_str(source ? source : "");
  if (!ds || !s || !src) {
    free(ds), free(s), free(src);
    return NULL;
  }
  s->refs = 1;
  s->class_array = -1;
  ds->store = s;
  ds->source = src;
  return ds;
}

void rt_array_fini(RtArray *a) {
  free(a->name);
  free(a->file);
  tensor_free(&a->owned);
  if (a->map) munmap(a->map, a->map_len);
  memset(a, 0, sizeof *a);
}

bool rt_data_add(lathe_dataset *ds, RtArray *a, Diag *d) {
  RtStore *s = ds->store;
  bool ok = true;
  if (rt_data_find(ds, a->name) >= 0) {
    rt_error(d, "%s: a second array named '%s' (each input name may come from one file only)",
             a->file, a->name);
    ok = false;
  } else if (s->n_arrays && a->n != ds->n) {
    rt_error(d,
             "%s has %lld samples but %s has %lld: arrays of a dataset must have the same "
             "length",
             a->file, (long long)a->n, s->arrays[0].file, (long long)ds->n);
    ok = false;
  }
  if (ok && s->n_arrays == s->cap) {
    int cap = s->cap ? 2 * s->cap : 4;
    RtArray *grown = realloc(s->arrays, (size_t)cap * sizeof *grown);
    if (!grown)
      ok = false;
    else
      s->arrays = grown, s->cap = cap;
  }
  if (!ok) {
    rt_array_fini(a);
    return false;
  }
  s->arrays[s->n_arrays++] = *a;
  ds->n = a->n;
  memset(a, 0, sizeof *a);
  return true;
}

int rt_data_find(const lathe_dataset *ds, const char *name) {
  for (int i = 0; i < ds->store->n_arrays; i++)
    if (strcmp(ds->store->arrays[i].name, name) == 0) return i;
  return -1;
}

lathe_array_info rt_array_info(const RtArray *a) {
  return (lathe_array_info){.name = a->name,
                            .dtype = (int)a->dtype,
                            .rank = a->sample.rank,
                            .shape = a->sample.dim,
                            .per = a->per};
}

lathe_dataset *rt_data_view(const lathe_dataset *ds, const int64_t *rows, int64_t n) {
  lathe_dataset *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  v->rows = malloc((size_t)(n ? n : 1) * sizeof *v->rows);
  v->source = dup_str(ds->source);
  if (!v->rows || !v->source) {
    free(v->rows), free(v->source), free(v);
    return NULL;
  }
  for (int64_t i = 0; i < n; i++)
    v->rows[i] = rt_data_row(ds, rows[i]);
  v->n = n;
  v->store = ds->store;
  v->store->refs++;
  return v;
}

void lathe_dataset_free(lathe_dataset *ds) {
  if (!ds) return;
  RtStore *s = ds->store;
  if (s && --s->refs == 0) {
    for (int i = 0; i < s->n_arrays; i++)
      rt_array_fini(&s->arrays[i]);
    for (int i = 0; i < s->n_classes; i++)
      free(s->classes[i]);
    free(s->classes);
    free(s->vocab);
    free(s->arrays);
    free(s);
  }
  free(ds->rows);
  free(ds->source);
  free(ds);
}

/* ---- validation ---------------------------------------------------------------------------- */

static bool finite_array(const RtArray *a, Diag *d) {
  int64_t total = a->n * a->per;
  for (int64_t i = 0; i < total; i++) {
    double v = a->dtype == DT_F32 ? ((const float *)a->data)[i] : ((const double *)a->data)[i];
    if (isfinite(v)) continue;
    rt_error(d,
             "%s: sample %lld of '%s' has %s at position %lld: features and targets must be "
             "finite numbers",
             a->file, (long long)(i / a->per), a->name, isnan(v) ? "a NaN" : "an infinite value",
             (long long)(i % a->per));
    return false;
  }
  return true;
}

bool rt_data_check_finite(const lathe_dataset *ds, Diag *d) {
  for (int i = 0; i < ds->store->n_arrays; i++) {
    const RtArray *a = &ds->store->arrays[i];
    if ((a->dtype == DT_F32 || a->dtype == DT_F64) && !finite_array(a, d)) return false;
  }
  return true;
}

/* ---- opening a spec ------------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* one source of a spec: a file, a directory or a named dataset */
static bool open_one(lathe_dataset *ds, const char *src, const lathe_data_options *o, Diag *d) {
  struct stat st;
  if (strncmp(src, "fashion-mnist", 13) == 0 && (src[13] == '\0' || src[13] == '='))
    return rt_data_read_fashion_mnist(ds, src, o->test_split, d);
  if (rt_data_is_seq_task(src)) return rt_data_read_seq_task(ds, src, o->test_split, o->seed, d);
  if (strncmp(src, "csv:", 4) == 0) return rt_data_read_csv(ds, src + 4, o, d);
  if (rt_data_is_text(src)) return rt_data_read_text(ds, src + 5, o, d);
  if (stat(src, &st) != 0) {
    rt_error(d,
             "dataset '%s' not found: expected a .npy, .npz, .csv, .tsv or .safetensors file, "
             "a directory of .npy files, fashion-mnist[=DIR], reverse|sort[=LEN,VOCAB] or "
             "text=FILE",
             src);
    return false;
  }
  if (S_ISDIR(st.st_mode))
    return rt_data_is_image_folder(src) ? rt_data_read_image_folder(ds, src, o, d)
                                        : rt_data_read_npy_dir(ds, src, d);
  if (ends_with(src, ".npy")) return rt_data_read_npy(ds, src, d);
  if (ends_with(src, ".npz")) return rt_data_read_npz(ds, src, d);
  if (ends_with(src, ".csv") || ends_with(src, ".tsv") || ends_with(src, ".txt"))
    return rt_data_read_csv(ds, src, o, d);
  if (ends_with(src, ".safetensors")) return rt_data_read_safetensors(ds, src, d);
  rt_error(d,
           "%s: unknown dataset file type: expected .npy, .npz, .csv, .tsv or .safetensors "
           "(or csv:FILE for CSV under another name)",
           src);
  return false;
}

lathe_dataset *rt_data_open(const char *spec, const lathe_data_options *o, Diag *d) {
  lathe_data_options defaults;
  if (!o) lathe_data_options_init(&defaults), o = &defaults;
  lathe_dataset *ds = rt_data_new(spec);
  char *copy = dup_str(spec);
  bool ok = ds && copy;
  /* a named dataset's own parameters have commas: it is one source */
  bool named = rt_data_is_seq_task(spec) || strncmp(spec, "fashion-mnist", 13) == 0 ||
               rt_data_is_text(spec); /* a file name may have commas too */
  const char *sep = named ? "" : ",";
  for (char *save = NULL, *src = copy ? strtok_r(copy, sep, &save) : NULL; ok && src;
       src = strtok_r(NULL, sep, &save))
    ok = open_one(ds, src, o, d);
  free(copy);
  if (ok && ds->store->n_arrays == 0) {
    rt_error(d, "dataset '%s' has no arrays", spec);
    ok = false;
  }
  if (ok && ds->n == 0) {
    rt_error(d, "dataset '%s' has no samples", spec);
    ok = false;
  }
  ok = ok && rt_data_check_finite(ds, d);
  if (!ok) {
    if (!ds) rt_error(d, "out of memory opening '%s'", spec);
    lathe_dataset_free(ds);
    return NULL;
  }
  return ds;
}

/* ---- splits ------------------------------------------------------------------------------- */

uint64_t rt_mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static void shuffle_rows(int64_t *v, int64_t n, uint64_t *state) {
  for (int64_t i = n - 1; i > 0; i--) {
    *state = rt_mix64(*state);
    int64_t j = (int64_t)(*state % (uint64_t)(i + 1)), t = v[i];
    v[i] = v[j], v[j] = t;
  }
}

static int64_t label_of(const lathe_dataset *ds, int a, int64_t i) {
  const void *p = rt_data_at(ds, a, i);
  switch (ds->store->arrays[a].dtype) {
  case DT_I32:
    return *(const int32_t *)p;
  case DT_I64:
    return *(const int64_t *)p;
  case DT_U8:
    return *(const uint8_t *)p;
  case DT_I8:
    return *(const int8_t *)p;
  case DT_F32: /* whole floats bound to an integer input (the feed checks they are whole) */
  case DT_F64: {
    double v = ds->store->arrays[a].dtype == DT_F32 ? *(const float *)p : *(const double *)p;
    return v > -9e18 && v < 9e18 ? (int64_t)v : 0; /* the cast of a NaN is undefined */
  }
  default:
    return 0;
  }
}

typedef struct Ranked {
  int64_t label, rank, index; /* class, position in the shuffled order, sample */
} Ranked;

static int cmp_ranked(const void *x, const void *y) {
  const Ranked *a = x, *b = y;
  if (a->label != b->label) return a->label < b->label ? -1 : 1;
  return (a->rank > b->rank) - (a->rank < b->rank);
}

/* how many of a group of k go to validation: round(fraction k), at least 1 when k >= 2, and
 * at least one left for training */
static int64_t val_count(double fraction, int64_t k) {
  int64_t take = (int64_t)llround(fraction * (double)k);
  if (take == 0 && k >= 2) take = 1;
  if (take >= k) take = k - 1;
  return take;
}

/* marks is_val for the samples the split sends to validation; a = stratifying array or -1 */
static bool mark_val(const lathe_dataset *ds, int a, double fraction, uint64_t seed,
                     unsigned char *is_val) {
  int64_t n = ds->n;
  Ranked *r = malloc((size_t)n * sizeof *r);
  int64_t *order = malloc((size_t)n * sizeof *order);
  bool ok = r && order;
  if (ok) {
    uint64_t state = rt_mix64(seed ^ 0x73706c6974ull);
    for (int64_t i = 0; i < n; i++)
      order[i] = i;
    shuffle_rows(order, n, &state);
    for (int64_t i = 0; i < n; i++)
      r[i] = (Ranked){a >= 0 ? label_of(ds, a, order[i]) : 0, i, order[i]};
    qsort(r, (size_t)n, sizeof *r, cmp_ranked);
    for (int64_t lo = 0, hi; lo < n; lo = hi) {
      for (hi = lo; hi < n && r[hi].label == r[lo].label; hi++) {
      }
      int64_t take = val_count(fraction, hi - lo);
      for (int64_t j = lo; j < lo + take; j++)
        is_val[r[j].index] = 1;
    }
  }
  free(r);
  free(order);
  return ok;
}

int lathe_dataset_split(const lathe_dataset *ds, double fraction, uint64_t seed,
                        const char *stratify, lathe_dataset **train, lathe_dataset **val,
                        char **error) {
  Diag d;
  diag_init(&d);
  *train = *val = NULL;
  int a = stratify ? rt_data_find(ds, stratify) : -1;
  if (!(fraction > 0 && fraction < 1))
    rt_error(&d, "the validation fraction must be between 0 and 1, got %g", fraction);
  else if (stratify && a < 0)
    rt_error(&d, "%s: no array '%s' to stratify the split by", ds->source, stratify);
  else if (a >= 0 && ds->store->arrays[a].per != 1)
    rt_error(&d, "%s: array '%s' is not one class id per sample, cannot stratify by it", ds->source,
             stratify);
  else if (ds->n < 2)
    rt_error(&d, "%s: %lld samples cannot be split into training and validation", ds->source,
             (long long)ds->n);
  unsigned char *is_val = d.n_errors ? NULL : calloc((size_t)ds->n, 1);
  int64_t *rows = is_val ? malloc((size_t)ds->n * sizeof *rows) : NULL;
  if (rows && mark_val(ds, a, fraction, seed, is_val)) {
    int64_t nv = 0, nt = 0;
    for (int64_t i = 0; i < ds->n; i++)
      if (is_val[i]) rows[nv++] = i;
    *val = rt_data_view(ds, rows, nv);
    for (int64_t i = 0; i < ds->n; i++)
      if (!is_val[i]) rows[nt++] = i;
    *train = rt_data_view(ds, rows, nt);
  }
  free(is_val);
  free(rows);
  if (!d.n_errors && (!*train || !*val)) rt_error(&d, "out of memory splitting %s", ds->source);
  int rc = d.n_errors ? rt_error_out(&d, error) : 0;
  if (rc) lathe_dataset_free(*train), lathe_dataset_free(*val), *train = *val = NULL;
  diag_fini(&d);
  return rc;
}

/* ---- the public accessors ------------------------------------------------------------------ */

void lathe_data_options_init(lathe_data_options *o) {
  memset(o, 0, sizeof *o);
  o->x_name = "x";
}

lathe_dataset *lathe_dataset_open(const char *spec, const lathe_data_options *o, char **error) {
  Diag d;
  diag_init(&d);
  lathe_dataset *ds = rt_data_open(spec, o, &d);
  if (!ds) rt_error_out(&d, error);
  diag_fini(&d);
  return ds;
}

/* one borrowed array; false (reported) for a bad dtype or shape */
static bool wrap_one(lathe_dataset *ds, const lathe_array_info *in, const void *data, int64_t n,
                     Diag *d) {
  RtArray a = {.dtype = (DType)in->dtype, .n = n, .per = 1, .data = data};
  if (in->dtype < 0 || in->dtype >= DT_COUNT || in->rank < 0 || in->rank >= IR_MAX_RANK ||
      !in->name || !data || n <= 0) {
    rt_error(d, "array %s: expected a name, a dtype, a per-sample rank 0..%d, data and n > 0",
             in->name ? in->name : "(unnamed)", IR_MAX_RANK - 1);
    return false;
  }
  a.sample.rank = in->rank;
  for (int k = 0; k < in->rank; k++) {
    if (in->shape[k] < 1) {
      rt_error(d, "array %s: dimension %d is %lld", in->name, k, (long long)in->shape[k]);
      return false;
    }
    a.sample.dim[k] = in->shape[k], a.per *= in->shape[k];
  }
  a.row_bytes = (size_t)a.per * dtype_size(a.dtype);
  a.name = dup_str(in->name);
  a.file = dup_str(in->name);
  if (!a.name || !a.file) {
    rt_array_fini(&a);
    return false;
  }
  return rt_data_add(ds, &a, d);
}

lathe_dataset *lathe_dataset_wrap(const lathe_array_info *info, const void *const *data,
                                  int n_arrays, int64_t n_samples, char **error) {
  Diag d;
  diag_init(&d);
  lathe_dataset *ds = rt_data_new("(arrays in memory)");
  bool ok = ds != NULL && n_arrays > 0;
  if (ds && n_arrays <= 0) rt_error(&d, "a dataset needs at least one array");
  for (int i = 0; ok && i < n_arrays; i++)
    ok = wrap_one(ds, &info[i], data[i], n_samples, &d);
  ok = ok && rt_data_check_finite(ds, &d);
  if (!ok) {
    lathe_dataset_free(ds);
    ds = NULL;
    rt_error_out(&d, error);
  }
  diag_fini(&d);
  return ds;
}

int64_t lathe_dataset_len(const lathe_dataset *ds) {
  return ds->n;
}

int lathe_dataset_n_arrays(const lathe_dataset *ds) {
  return ds->store->n_arrays;
}

int lathe_dataset_array(const lathe_dataset *ds, int i, lathe_array_info *out) {
  if (i < 0 || i >= ds->store->n_arrays) return -1;
  *out = rt_array_info(&ds->store->arrays[i]);
  return 0;
}

const void *lathe_dataset_sample(const lathe_dataset *ds, int a, int64_t i) {
  if (a < 0 || a >= ds->store->n_arrays || i < 0 || i >= ds->n) return NULL;
  return rt_data_at(ds, a, i);
}

const char *lathe_dataset_class_name(const lathe_dataset *ds, int id) {
  return id >= 0 && id < ds->store->n_classes ? ds->store->classes[id] : NULL;
}
