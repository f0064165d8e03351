/* cli/trainer.c — feeding a dataset to compiled entry points: binding dataset columns to
 * entry arguments, gathering batches, and evaluating loss and accuracy on a split.
 *
 * Binding rule: an entry takes exactly one float input (the samples; its per-sample size
 * must equal the dataset's) and one i32 input (the labels); the batch size is their dim 0.
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

/* Finds the sample, label and score arguments of e; false (reported) if e does not take
 * exactly one float input and one i32[N] input. */
static bool find_args(CliBatch *b, const lathe_entry_info *e, Diag *d) {
  int n_float = 0, n_int = 0;
  for (int k = 0; k < e->n_args; k++) {
    const lathe_tensor_info *t = e->args[k].tensor;
    if (e->args[k].role == LATHE_ARG_INPUT && (t->dtype == LATHE_F32 || t->dtype == LATHE_F64)) {
      b->x_arg = k;
      n_float++;
    } else if (e->args[k].role == LATHE_ARG_INPUT) {
      b->y_arg = k;
      n_int++;
    } else if (e->args[k].role == LATHE_ARG_OUTPUT && b->out_arg < 0 && t->rank == 2) {
      b->out_arg = k; /* class scores: argmax gives the predicted label */
    }
  }
  if (n_float != 1 || n_int != 1) {
    diag_error(d, (SrcLoc){0},
               "entry '%s' takes %d float and %d integer inputs; a dataset feeds "
               "exactly one float input (samples) and one i32[N] input (labels)",
               e->name, n_float, n_int);
    return false;
  }
  const lathe_tensor_info *y = e->args[b->y_arg].tensor;
  if (y->dtype != LATHE_I32 || y->rank != 1) {
    diag_error(d, (SrcLoc){0}, "input '%s' must be i32[N] to receive the dataset's labels",
               y->name);
    return false;
  }
  return true;
}

bool cli_bind(CliBatch *b, const lathe_entry_info *e, const RtDataset *ds, Diag *d) {
  memset(b, 0, sizeof *b);
  b->x_arg = b->y_arg = b->out_arg = -1;
  if (!find_args(b, e, d)) return false;
  const lathe_tensor_info *x = e->args[b->x_arg].tensor, *y = e->args[b->y_arg].tensor;
  b->batch = x->rank ? x->shape[0] : 1;
  if (per_sample(x) != ds->sample_numel || x->rank < 2 || y->shape[0] != b->batch) {
    diag_error(d, (SrcLoc){0},
               "model input '%s' takes %lld values per sample (batch %lld), but "
               "the dataset's samples are %lldx%lld = %lld values; labels '%s' must be i32[%lld]",
               x->name, (long long)per_sample(x), (long long)b->batch, (long long)ds->rows,
               (long long)ds->cols, (long long)ds->sample_numel, y->name, (long long)b->batch);
    return false;
  }
  b->f64 = x->dtype == LATHE_F64;
  b->x = cli_aligned_alloc((size_t)(b->batch * ds->sample_numel) * (b->f64 ? 8 : 4));
  b->y = cli_aligned_alloc((size_t)b->batch * sizeof(int32_t));
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
  const float *src = ds->images.data;
  const int32_t *lab = ds->labels.data;
  int64_t per = ds->sample_numel;
  int32_t *y = b->y;
  for (int64_t i = 0; i < b->batch; i++) {
    int64_t s = index[i < count ? i : i % count]; /* a short last batch repeats samples */
    if (b->f64) {
      double *x = (double *)b->x + i * per;
      for (int64_t j = 0; j < per; j++)
        x[j] = src[s * per + j];
    } else {
      memcpy((float *)b->x + i * per, src + s * per, (size_t)per * sizeof(float));
    }
    y[i] = lab[s];
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

/* Number of rows i < count whose argmax of scores equals the label. */
int64_t cli_count_correct(const CliBatch *b, const lathe_tensor_info *scores, const void *data,
                          int64_t count) {
  int64_t classes = scores->shape[1], correct = 0;
  const int32_t *y = b->y;
  for (int64_t i = 0; i < count && i < b->batch; i++) {
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
  if (!cli_bind(&b, e, ds, d)) {
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
  *acc = b.out_arg >= 0 ? (double)correct / (double)ds->n : 0;
  for (int k = 0; k < CLI_MAX_ARGS; k++)
    free(outs[k]);
  free(index);
  cli_batch_fini(&b);
  return ok && index;
}
