/* cli/trainer.c — feeding a dataset to compiled entry points: binding dataset columns to
 * entry arguments, gathering batches, and evaluating loss and accuracy on a split.
 *
 * Binding rule: the entry's first input receives the samples (float for images, i32 for token
 * ids; its per-sample size must equal the dataset's), the second input, if the dataset has
 * labels, receives them (i32[N] or i32[N, T] matching the dataset's per-sample label count).
 * A model with a single input trains on the samples alone (labels, if any, are not used: a
 * VAE or GAN on images). The batch size is the samples' dim 0. Accuracy comes from the
 * first output of shape
 * [N, ..., C] whose leading dims equal the labels' (argmax over the last axis, per label).
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

static int64_t per_sample(const lathe_tensor_info *t) {
  int64_t n = 1;
  for (int k = 1; k < t->rank; k++)
    n *= t->shape[k];
  return n;
}

static int64_t ds_per(const Tensor *t) {
  return t->shape.rank ? shape_numel(&t->shape) / t->shape.dim[0] : 1;
}

static bool is_float(const lathe_tensor_info *t) {
  return t->dtype == LATHE_F32 || t->dtype == LATHE_F64;
}

/* out: scores [N, ..., C] with leading dims equal to the labels' [N, ...] */
static bool scores_match(const lathe_tensor_info *s, const lathe_tensor_info *y) {
  if (s->rank != y->rank + 1) return false;
  for (int k = 0; k < y->rank; k++)
    if (s->shape[k] != y->shape[k]) return false;
  return true;
}

static bool bind_error(const lathe_entry_info *e, const RtDataset *ds, Diag *d) {
  diag_error(d, (SrcLoc){0},
             "entry '%s' cannot take this dataset: its first input must take the samples "
             "(%s, %lld values each)%s",
             e->name, ds->images.dtype == DT_I32 ? "i32" : "float", (long long)ds->sample_numel,
             ds->labels.data ? " and its second input the labels (i32, one per sample or "
                               "one per token)"
                             : " and it takes no other input");
  return false;
}

/* Finds the sample, label and score arguments of e; false (reported) if they do not fit ds. */
static bool find_args(CliBatch *b, const lathe_entry_info *e, const RtDataset *ds, Diag *d) {
  int n_in = 0;
  for (int k = 0; k < e->n_args; k++) {
    if (e->args[k].role != LATHE_ARG_INPUT) continue;
    if (n_in == 0) b->x_arg = k;
    if (n_in == 1) b->y_arg = k;
    n_in++;
  }
  if (n_in == 0) return true; /* e.g. a GAN's generator step: noise from randn, batch 0 */
  bool labels = ds->labels.data != NULL && n_in == 2;
  if (n_in != (labels ? 2 : 1)) return bind_error(e, ds, d);
  const lathe_tensor_info *x = e->args[b->x_arg].tensor;
  bool x_ok = ds->images.dtype == DT_I32 ? x->dtype == LATHE_I32 : is_float(x);
  if (!x_ok || x->rank < 1 || per_sample(x) != ds->sample_numel) return bind_error(e, ds, d);
  b->batch = x->shape[0];
  if (!labels) return true;
  const lathe_tensor_info *y = e->args[b->y_arg].tensor;
  if (y->dtype != LATHE_I32 || y->rank < 1 || y->shape[0] != b->batch ||
      per_sample(y) != ds_per(&ds->labels))
    return bind_error(e, ds, d);
  b->y_per = per_sample(y);
  for (int k = 0; k < e->n_args && b->out_arg < 0; k++)
    if (e->args[k].role == LATHE_ARG_OUTPUT && scores_match(e->args[k].tensor, y))
      b->out_arg = k; /* class scores: argmax gives the predicted label */
  return true;
}

bool cli_bind(CliBatch *b, const lathe_entry_info *e, const RtDataset *ds, Diag *d) {
  memset(b, 0, sizeof *b);
  b->x_arg = b->y_arg = b->out_arg = -1;
  if (!find_args(b, e, ds, d)) return false;
  if (b->x_arg < 0) return (b->ws = cli_aligned_alloc(e->workspace_bytes)) != NULL;
  const lathe_tensor_info *x = e->args[b->x_arg].tensor;
  b->f64 = x->dtype == LATHE_F64;
  b->ids = x->dtype == LATHE_I32;
  size_t xs = b->f64 ? 8 : 4;
  b->x = cli_aligned_alloc((size_t)(b->batch * ds->sample_numel) * xs);
  b->y = cli_aligned_alloc((size_t)(b->batch * (b->y_per ? b->y_per : 1)) * sizeof(int32_t));
  b->ws = cli_aligned_alloc(e->workspace_bytes);
  return b->x && b->y && b->ws;
}

void cli_batch_fini(CliBatch *b) {
  free(b->x);
  free(b->y);
  free(b->ws);
  memset(b, 0, sizeof *b);
}

void cli_gather(CliBatch *b, const RtDataset *ds, const int64_t *index, int64_t count) {
  int64_t per = ds->sample_numel, yp = b->y_per;
  for (int64_t i = 0; i < b->batch; i++) {
    int64_t s = index[i < count ? i : i % count]; /* a short last batch repeats samples */
    if (b->ids) {
      memcpy((int32_t *)b->x + i * per, (const int32_t *)ds->images.data + s * per,
             (size_t)per * sizeof(int32_t));
    } else if (b->f64) {
      const float *src = ds->images.data;
      double *x = (double *)b->x + i * per;
      for (int64_t j = 0; j < per; j++)
        x[j] = src[s * per + j];
    } else {
      memcpy((float *)b->x + i * per, (const float *)ds->images.data + s * per,
             (size_t)per * sizeof(float));
    }
    if (yp)
      memcpy((int32_t *)b->y + i * yp, (const int32_t *)ds->labels.data + s * yp,
             (size_t)yp * sizeof(int32_t));
  }
}

/* Calls e on the gathered batch; outputs go to outs[k] buffers allocated by the caller. */
double cli_call_batch(const lathe_entry_info *e, CliBatch *b, CliWeights *w, void **outs) {
  void *args[CLI_MAX_ARGS] = {0};
  for (int k = 0; k < e->n_args && k < CLI_MAX_ARGS; k++) {
    switch (e->args[k].role) {
    case LATHE_ARG_PARAMS:
      args[k] = w->params;
      break;
    case LATHE_ARG_STATE:
      args[k] = w->state;
      break;
    case LATHE_ARG_WORKSPACE:
      args[k] = b->ws;
      break;
    case LATHE_ARG_INPUT:
      args[k] = k == b->x_arg ? b->x : b->y;
      break;
    default:
      args[k] = outs ? outs[k] : NULL;
      break;
    }
  }
  double ret = 0;
  e->call(args, &ret);
  return ret;
}

/* Number of labels of rows i < count whose argmax of scores (over the last axis) equals the
 * label; a row has b->y_per labels. */
int64_t cli_count_correct(const CliBatch *b, const lathe_tensor_info *scores, const void *data,
                          int64_t count) {
  int64_t classes = scores->shape[scores->rank - 1], correct = 0;
  const int32_t *y = b->y;
  if (count > b->batch) count = b->batch;
  for (int64_t i = 0; i < count * b->y_per; i++) {
    int64_t best = 0;
    double bv = 0;
    for (int64_t c = 0; c < classes; c++) {
      double v = scores->dtype == LATHE_F64 ? ((const double *)data)[i * classes + c]
                                            : ((const float *)data)[i * classes + c];
      if (c == 0 || v > bv) bv = v, best = c;
    }
    correct += best == y[i];
  }
  return correct;
}

bool cli_evaluate(const lathe_entry_info *e, CliWeights *w, const RtDataset *ds, double *loss,
                  double *acc, Diag *d) {
  CliBatch b;
  bool bound = cli_bind(&b, e, ds, d);
  if (!bound || b.batch == 0) {
    if (bound) diag_error(d, (SrcLoc){0}, "entry '%s' takes no samples", e->name);
    cli_batch_fini(&b);
    return false;
  }
  void *outs[CLI_MAX_ARGS] = {0};
  bool ok = true;
  for (int k = 0; k < e->n_args && ok; k++)
    if (e->args[k].role == LATHE_ARG_OUTPUT)
      ok = (outs[k] = cli_aligned_alloc(e->args[k].tensor->bytes)) != NULL;
  int64_t *index = malloc((size_t)b.batch * sizeof *index);
  double loss_sum = 0;
  int64_t correct = 0;
  for (int64_t start = 0; ok && index && start < ds->n; start += b.batch) {
    int64_t count = ds->n - start < b.batch ? ds->n - start : b.batch;
    for (int64_t i = 0; i < count; i++)
      index[i] = start + i;
    cli_gather(&b, ds, index, count);
    /* the loss is a batch mean; a short last batch is weighted by its real samples */
    loss_sum += cli_call_batch(e, &b, w, outs) * (double)count;
    if (b.out_arg >= 0)
      correct += cli_count_correct(&b, e->args[b.out_arg].tensor, outs[b.out_arg], count);
  }
  *loss = loss_sum / (double)ds->n;
  *acc = b.out_arg >= 0 ? (double)correct / (double)(ds->n * b.y_per) : 0;
  for (int k = 0; k < CLI_MAX_ARGS; k++)
    free(outs[k]);
  free(index);
  cli_batch_fini(&b);
  return ok && index;
}
