/* runtime/evaluate.c — what a model predicts and how well: the task inferred from the
 * evaluate entry's inputs and outputs, a pass over a dataset collecting predictions and the
 * loss, the metrics of lathe/train.h over them, and lathe_predict.
 *
 * Batches are the model's batch; the last short batch runs at its own rows when the batch is
 * a run-time one (docs/dynamic-batch.md), else it is padded by repeating samples and only its
 * real samples count.
 */
#include "eval_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool float_info(const lathe_tensor_info *t) {
  return t->dtype == LATHE_F32 || t->dtype == LATHE_F64;
}

static int64_t per_of(const lathe_tensor_info *t) {
  int64_t n = 1;
  for (int k = 1; k < t->rank; k++)
    n *= t->shape[k];
  return n;
}

/* output o is scores [N, ..., C] for targets [N, ...] (leading dims equal) */
static bool scores_for(const lathe_tensor_info *o, const lathe_tensor_info *y) {
  if (!float_info(o) || o->rank != y->rank + 1) return false;
  for (int k = 0; k < y->rank; k++)
    if (o->shape[k] != y->shape[k]) return false;
  return true;
}

static bool same_shape(const lathe_tensor_info *o, const lathe_tensor_info *y) {
  if (!float_info(o) || o->rank != y->rank) return false;
  for (int k = 0; k < y->rank; k++)
    if (o->shape[k] != y->shape[k]) return false;
  return true;
}

/* finds a target input and the output predicting it; kind says which pairing to look for */
static bool pair(RtTask *t, const lathe_entry_info *e, int kind) {
  int n_in = 0;
  for (int k = 0; k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_INPUT) continue;
    const lathe_tensor_info *y = e->args[k].tensor;
    bool first = n_in++ == 0;
    for (int o = 0; o < e->n_args; o++) {
      if (e->args[o].role != LATHE_ARG_OUTPUT) continue;
      const lathe_tensor_info *s = e->args[o].tensor;
      /* the first input holds the features, never the target */
      bool hit = !first && (kind == LATHE_TASK_CLASSIFY ? !float_info(y) && scores_for(s, y)
                                                        : same_shape(s, y));
      if (!hit) continue;
      t->target_arg = k, t->pred_arg = o, t->per = per_of(y);
      t->classes = kind == LATHE_TASK_CLASSIFY ? s->shape[s->rank - 1] : per_of(y);
      return true;
    }
  }
  return false;
}

bool rt_task_infer(RtTask *t, const lathe_entry_info *e, int forced, Diag *d) {
  memset(t, 0, sizeof *t);
  t->target_arg = t->pred_arg = -1;
  t->kind = LATHE_TASK_NONE;
  if (forced == LATHE_TASK_NONE) return true;
  if (pair(t, e, LATHE_TASK_CLASSIFY)) {
    t->kind = t->per > 1 ? LATHE_TASK_SEQUENCE : LATHE_TASK_CLASSIFY;
    if (forced == LATHE_TASK_CLASSIFY || forced == LATHE_TASK_SEQUENCE) t->kind = forced;
  } else if (pair(t, e, LATHE_TASK_REGRESS)) {
    t->kind = forced == LATHE_TASK_MULTILABEL ? LATHE_TASK_MULTILABEL : LATHE_TASK_REGRESS;
  }
  bool cls = t->kind == LATHE_TASK_CLASSIFY || t->kind == LATHE_TASK_SEQUENCE;
  bool want_cls = forced == LATHE_TASK_CLASSIFY || forced == LATHE_TASK_SEQUENCE;
  if ((want_cls && !cls) || (forced == LATHE_TASK_REGRESS && t->kind != LATHE_TASK_REGRESS) ||
      (forced == LATHE_TASK_MULTILABEL && t->kind != LATHE_TASK_MULTILABEL)) {
    rt_error(d, "--task %s: entry '%s' has no %s", lathe_task_name(forced), e->name,
             want_cls ? "integer target input with an output of scores [N, ..., C]"
                      : "float target input (after the features) with an output of its shape");
    return false;
  }
  return true;
}

static double array_value(const RtArray *a, const void *row, int64_t j) {
  return a->dtype == DT_I32   ? ((const int32_t *)row)[j]
         : a->dtype == DT_I64 ? (double)((const int64_t *)row)[j]
         : a->dtype == DT_U8  ? ((const uint8_t *)row)[j]
         : a->dtype == DT_I8  ? ((const int8_t *)row)[j]
         : a->dtype == DT_F32 ? ((const float *)row)[j]
                              : ((const double *)row)[j];
}

/* Class ids in [0, classes); multi-label targets 0 or 1 (a 0.7 would silently count as a yes) */
bool rt_task_check_labels(const RtTask *t, const RtFeed *f, const lathe_dataset *ds, Diag *d) {
  bool ids = t->kind == LATHE_TASK_CLASSIFY || t->kind == LATHE_TASK_SEQUENCE;
  if (!ids && t->kind != LATHE_TASK_MULTILABEL) return true;
  int src = rt_feed_source(f->e, t->target_arg, ds, d);
  if (src < 0) return false;
  const RtArray *a = &ds->store->arrays[src];
  for (int64_t i = 0; i < ds->n; i++) {
    const void *row = rt_data_at(ds, src, i);
    for (int64_t j = 0; j < a->per; j++) {
      double v = array_value(a, row, j);
      if (ids ? v >= 0 && v < (double)t->classes : v == 0 || v == 1) continue;
      if (ids)
        rt_error(d,
                 "%s: sample %lld of '%s' has label %g; expected a class id in [0, %lld) "
                 "(output '%s' of entry '%s' scores %lld classes)",
                 a->file, (long long)rt_data_row(ds, i), a->name, v, (long long)t->classes,
                 f->e->args[t->pred_arg].tensor->name, f->e->name, (long long)t->classes);
      else
        rt_error(d,
                 "%s: sample %lld of '%s' has %g at label %lld; expected 0 or 1 (--task "
                 "multilabel)",
                 a->file, (long long)rt_data_row(ds, i), a->name, v, (long long)j);
      return false;
    }
  }
  return true;
}

static double value_at(int dtype, const void *p, int64_t i) {
  switch (dtype) {
  case LATHE_F32:
    return ((const float *)p)[i];
  case LATHE_F64:
    return ((const double *)p)[i];
  case LATHE_I32:
    return ((const int32_t *)p)[i];
  case LATHE_I64:
    return (double)((const int64_t *)p)[i];
  case LATHE_I8:
    return ((const int8_t *)p)[i];
  default:
    return ((const uint8_t *)p)[i];
  }
}

/* the class of row i of scores [.., classes] (the first of equal maxima, as numpy's argmax) */
static int64_t argmax(const lathe_tensor_info *s, const void *scores, int64_t i, int64_t classes) {
  int64_t best = 0;
  double bv = 0;
  for (int64_t k = 0; k < classes; k++) {
    double v = value_at(s->dtype, scores, i * classes + k);
    if (k == 0 || v > bv) bv = v, best = k;
  }
  return best;
}

/* appends the count real samples of the batch in f to c */
static void collect(RtCollect *c, const RtTask *t, const RtFeed *f, int64_t count) {
  const lathe_tensor_info *y = f->e->args[t->target_arg].tensor;
  const lathe_tensor_info *s = f->e->args[t->pred_arg].tensor;
  int64_t m = count * t->per, base = c->n * t->per;
  for (int64_t i = 0; i < m; i++) {
    double truth = value_at(y->dtype, f->buf[t->target_arg], i);
    if (t->kind == LATHE_TASK_REGRESS || t->kind == LATHE_TASK_MULTILABEL) {
      c->true_v[base + i] = truth;
      c->pred_v[base + i] = value_at(s->dtype, f->buf[t->pred_arg], i);
      continue;
    }
    c->true_id[base + i] = (int32_t)truth;
    c->pred_id[base + i] = (int32_t)argmax(s, f->buf[t->pred_arg], i, t->classes);
  }
  c->n += count;
}

int64_t rt_count_correct(const RtTask *t, const RtFeed *f, int64_t count) {
  const lathe_tensor_info *y = f->e->args[t->target_arg].tensor;
  const lathe_tensor_info *s = f->e->args[t->pred_arg].tensor;
  int64_t correct = 0;
  for (int64_t i = 0; i < count * t->per; i++)
    correct += argmax(s, f->buf[t->pred_arg], i, t->classes) ==
               (int64_t)value_at(y->dtype, f->buf[t->target_arg], i);
  return correct;
}

bool rt_collect_init(RtCollect *c, const RtTask *t, int64_t n) {
  memset(c, 0, sizeof *c);
  if (t->kind == LATHE_TASK_NONE) return true;
  size_t m = (size_t)(n * t->per);
  bool ids = t->kind == LATHE_TASK_CLASSIFY || t->kind == LATHE_TASK_SEQUENCE;
  if (ids) {
    c->true_id = malloc(m * sizeof *c->true_id), c->pred_id = malloc(m * sizeof *c->pred_id);
    return c->true_id && c->pred_id;
  }
  c->true_v = malloc(m * sizeof *c->true_v), c->pred_v = malloc(m * sizeof *c->pred_v);
  return c->true_v && c->pred_v;
}

void rt_collect_fini(RtCollect *c) {
  free(c->true_id), free(c->pred_id), free(c->true_v), free(c->pred_v);
  memset(c, 0, sizeof *c);
}

bool rt_eval_pass(RtFeed *f, const RtTask *t, void *params, void *state, const lathe_dataset *ds,
                  RtCollect *c, double *loss, Diag *d) {
  int64_t *index = malloc((size_t)f->batch * sizeof *index);
  if (!index || !rt_collect_init(c, t, ds->n)) {
    free(index);
    rt_error(d, "out of memory evaluating %s", ds->source);
    return false;
  }
  double sum = 0;
  for (int64_t start = 0; start < ds->n; start += f->batch) {
    int64_t count = ds->n - start < f->batch ? ds->n - start : f->batch;
    for (int64_t i = 0; i < count; i++)
      index[i] = start + i;
    rt_feed_gather(f, ds, index, count);
    sum += rt_feed_call(f, params, state) * (double)count; /* the loss is a batch mean */
    if (t->kind != LATHE_TASK_NONE) collect(c, t, f, count);
  }
  *loss = sum / (double)ds->n;
  free(index);
  return true;
}

const lathe_entry_info *rt_entry(const lathe_model_info *info, const char *name) {
  for (int k = 0; k < info->n_entries; k++)
    if (strcmp(info->entries[k].name, name) == 0) return &info->entries[k];
  return NULL;
}

static bool class_metrics(const RtTask *t, const RtCollect *c, lathe_evaluation *out, bool full,
                          Diag *d) {
  char *err = NULL;
  lathe_classification rep;
  if (lathe_classification_compute(c->true_id, c->pred_id, c->n * t->per, (int)t->classes, &rep,
                                   &err) != 0) {
    rt_error(d, "metrics: %s", err ? err : "out of memory");
    free(err);
    return false;
  }
  out->m.accuracy = rep.accuracy;
  out->m.precision = rep.macro.precision;
  out->m.recall = rep.macro.recall;
  out->m.f1 = rep.macro.f1;
  if (full)
    out->report = rep;
  else
    lathe_classification_free(&rep);
  return true;
}

static bool label_metrics(const RtTask *t, const RtCollect *c, lathe_evaluation *out, Diag *d) {
  int64_t m = c->n * t->per;
  int32_t *yt = malloc((size_t)m * sizeof *yt), *yp = malloc((size_t)m * sizeof *yp);
  double *f1 = malloc((size_t)t->per * sizeof *f1), lo = 0, hi = 0, micro = 0;
  bool ok = yt && yp && f1;
  for (int64_t i = 0; i < m; i++)
    lo = c->pred_v[i] < lo ? c->pred_v[i] : lo, hi = c->pred_v[i] > hi ? c->pred_v[i] : hi;
  double cut = lo >= 0 && hi <= 1 ? 0.5 : 0.0; /* probabilities, else logits */
  int64_t exact = 0;
  for (int64_t i = 0; ok && i < c->n; i++) {
    bool all = true;
    for (int64_t j = 0; j < t->per; j++) {
      int64_t k = i * t->per + j;
      yt[k] = c->true_v[k] > 0.5, yp[k] = c->pred_v[k] > cut;
      all = all && yt[k] == yp[k];
    }
    exact += all;
  }
  ok = ok && lathe_multilabel_compute(yt, yp, c->n, (int)t->per, f1, &out->m.f1, &micro, NULL) == 0;
  out->m.accuracy = (double)exact / (double)c->n; /* subset accuracy, as sklearn's */
  if (ok) out->label_f1 = f1, out->n_labels = (int)t->per, f1 = NULL;
  free(yt), free(yp), free(f1);
  if (!ok) rt_error(d, "out of memory computing metrics");
  return ok;
}

bool rt_eval_metrics(const RtTask *t, const RtCollect *c, double loss, lathe_evaluation *out,
                     bool full, Diag *d) {
  memset(out, 0, sizeof *out);
  out->m.task = t->kind;
  out->m.n = c->n;
  out->m.loss = loss;
  if (t->kind == LATHE_TASK_CLASSIFY || t->kind == LATHE_TASK_SEQUENCE)
    return class_metrics(t, c, out, full, d);
  if (t->kind == LATHE_TASK_MULTILABEL) return label_metrics(t, c, out, d);
  if (t->kind != LATHE_TASK_REGRESS) return true;
  lathe_regression r;
  if (lathe_regression_compute(c->true_v, c->pred_v, c->n, t->per, &r, NULL) != 0) return false;
  out->m.mse = r.mse, out->m.rmse = r.rmse, out->m.mae = r.mae, out->m.r2 = r.r2;
  return true;
}

void lathe_evaluation_free(lathe_evaluation *e) {
  lathe_classification_free(&e->report);
  free(e->label_f1);
  memset(e, 0, sizeof *e);
}

int lathe_evaluate(const lathe_model_info *info, void *params, void *state, const lathe_dataset *ds,
                   int task, lathe_evaluation *out, char **error) {
  Diag d;
  diag_init(&d);
  memset(out, 0, sizeof *out);
  RtFeed f;
  RtTask t;
  RtCollect c = {0};
  double loss = 0;
  const lathe_entry_info *e = rt_entry(info, "evaluate");
  if (!e)
    rt_error(&d, "model '%s' has no evaluate entry (it needs a train block and an output)",
             info->name);
  bool ok = e && rt_feed_bind(&f, e, ds, &d);
  if (ok && f.batch == 0) {
    rt_error(&d, "entry 'evaluate' takes no samples");
    ok = false;
  }
  ok = ok && rt_task_infer(&t, e, task, &d) && rt_task_check_labels(&t, &f, ds, &d) &&
       rt_eval_pass(&f, &t, params, state, ds, &c, &loss, &d) &&
       rt_eval_metrics(&t, &c, loss, out, true, &d);
  if (e) rt_feed_fini(&f);
  rt_collect_fini(&c);
  int rc = ok ? 0 : rt_error_out(&d, error);
  diag_fini(&d);
  return rc;
}
