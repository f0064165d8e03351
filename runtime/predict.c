/* runtime/predict.c — lathe_predict: the "forward" entry over a whole dataset, in batches of
 * the model's batch size (the last one at its own rows for a run-time batch, else padded by
 * repeating samples, its padding dropped), the
 * first output of every sample written to .npy or .csv, atomically.
 */
#include "eval_internal.h"
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

static int first_output(const lathe_entry_info *e) {
  for (int k = 0; k < e->n_args; k++)
    if (e->args[k].role == LATHE_ARG_OUTPUT) return k;
  return -1;
}

/* CSV text of outputs [n, per] (f32/f64): "label,p0.." for scores of C > 1 classes */
static char *csv_text(const lathe_dataset *ds, const Tensor *t, size_t *len) {
  int64_t n = t->shape.dim[0], per = t->shape.rank > 1 ? shape_numel(&t->shape) / n : 1;
  bool scores = t->shape.rank == 2 && per > 1;
  size_t size = (size_t)(n * (per + 1)) * 28 + (size_t)per * 16 + 64, at = 0;
  char *buf = malloc(size);
  if (!buf) return NULL;
  at += (size_t)snprintf(buf, size, "%s", scores ? "label" : "");
  for (int64_t j = 0; j < per; j++)
    at += (size_t)snprintf(buf + at, size - at, "%s%s%lld", j || scores ? "," : "",
                           scores ? "p" : "y", (long long)j);
  at += (size_t)snprintf(buf + at, size - at, "\n");
  for (int64_t i = 0; i < n; i++) {
    int64_t best = 0;
    for (int64_t j = 1; scores && j < per; j++)
      if (tensor_get(t, i * per + j) > tensor_get(t, i * per + best)) best = j;
    const char *name = scores ? lathe_dataset_class_name(ds, (int)best) : NULL;
    if (scores && name)
      at += (size_t)snprintf(buf + at, size - at, "%s", name);
    else if (scores)
      at += (size_t)snprintf(buf + at, size - at, "%lld", (long long)best);
    for (int64_t j = 0; j < per; j++)
      at += (size_t)snprintf(buf + at, size - at, "%s%.9g", j || scores ? "," : "",
                             tensor_get(t, i * per + j));
    at += (size_t)snprintf(buf + at, size - at, "\n");
  }
  *len = at;
  return buf;
}

static bool write_out(const lathe_dataset *ds, const Tensor *t, const char *path, Diag *d) {
  size_t n = strlen(path);
  if (n > 4 && strcmp(path + n - 4, ".npy") == 0) return rt_npy_write(path, t, d);
  if (!(n > 4 && strcmp(path + n - 4, ".csv") == 0)) {
    rt_error(d, "--out %s: expected a .npy or .csv file name", path);
    return false;
  }
  size_t len = 0;
  char *text = csv_text(ds, t, &len);
  bool ok = text && rt_write_file_atomic(path, text, len, d);
  free(text);
  return ok;
}

/* runs f over ds into out (allocated [n, output dims after the batch]) */
static bool run_all(RtFeed *f, int o, void *params, void *state, const lathe_dataset *ds,
                    Tensor *out) {
  const lathe_tensor_info *t = f->e->args[o].tensor;
  Shape s = {.rank = t->rank};
  s.dim[0] = ds->n;
  for (int k = 1; k < t->rank; k++)
    s.dim[k] = t->shape[k];
  size_t row = t->bytes / (size_t)t->shape[0];
  int64_t *index = malloc((size_t)f->batch * sizeof *index);
  bool ok = index && tensor_alloc(out, (DType)t->dtype, &s);
  for (int64_t start = 0; ok && start < ds->n; start += f->batch) {
    int64_t count = ds->n - start < f->batch ? ds->n - start : f->batch;
    for (int64_t i = 0; i < count; i++)
      index[i] = start + i;
    rt_feed_gather(f, ds, index, count);
    rt_feed_call(f, params, state);
    memcpy((char *)out->data + (size_t)start * row, f->buf[o], (size_t)count * row);
  }
  free(index);
  return ok;
}

int lathe_predict(const lathe_model_info *info, void *params, void *state, const lathe_dataset *ds,
                  const char *out_path, char **error) {
  Diag d;
  diag_init(&d);
  RtFeed f = {0};
  Tensor out = {0};
  const lathe_entry_info *e = rt_entry(info, "forward");
  int o = e ? first_output(e) : -1;
  if (o < 0) rt_error(&d, "model '%s' has no forward entry with an output", info->name);
  bool ok = o >= 0 && rt_feed_bind(&f, e, ds, &d);
  if (ok && (f.batch == 0 ||
             (e->args[o].tensor->dtype != LATHE_F32 && e->args[o].tensor->dtype != LATHE_F64))) {
    rt_error(&d, "entry 'forward' must take samples and output floats to predict");
    ok = false;
  }
  ok = ok && run_all(&f, o, params, state, ds, &out) && write_out(ds, &out, out_path, &d);
  if (!ok && !d.n_errors) rt_error(&d, "out of memory predicting %s", ds->source);
  rt_feed_fini(&f);
  tensor_free(&out);
  int rc = ok ? 0 : rt_error_out(&d, error);
  diag_fini(&d);
  return rc;
}
